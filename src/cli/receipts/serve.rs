//! `craik receipts serve`.

use super::*;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where to listen: a loopback address (port 0: any free one).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    pub listen: String,
    /// The team's store instead of this home's log.
    #[arg(long)]
    pub team: bool,
}

pub fn run(ctx: Context, args: Args) -> craik::Result<i32> {
    if args.team {
        return Err(Error::input(
            "the audit page cannot serve the team store yet",
            "drop --team to serve this home's log; check the team's chains with craik receipts verify --team",
        ));
    }
    let listen = match args.listen.strip_prefix("localhost:") {
        Some(port) => format!("127.0.0.1:{port}"),
        None => args.listen.clone(),
    };
    let addr: std::net::SocketAddr = listen.parse().map_err(|_| {
        Error::input(
            format!("cannot read the listen address {:?}", args.listen),
            "write it as 127.0.0.1:PORT",
        )
    })?;
    let page = craik::page::Page::bind(addr)?;
    // The log must open before the address is handed out.
    drop(open_log(&ctx)?);
    outln!("craik audit page: {}", page.url());
    errln!("open it in a browser on this machine (the address carries its token); Ctrl-C stops it");
    page.serve(ctx)?;
    Ok(exit::OK)
}
