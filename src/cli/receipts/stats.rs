//! `craik receipts stats`.

use super::*;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: Context, args: Args) -> craik::Result<i32> {
    let Args { json } = args;
    let s = open_log(&ctx)?.stats()?;
    if json {
        output::json(&s);
    } else {
        outln!("receipts: {}", s.total);
        for (title, map) in [
            ("by kind", &s.by_kind),
            ("by status", &s.by_status),
            ("by profile", &s.by_profile),
            ("by operator", &s.by_operator),
        ] {
            if map.is_empty() {
                outln!("{title}: none");
                continue;
            }
            outln!("{title}:");
            for (k, n) in map {
                outln!("  {k}: {n}");
            }
        }
    }
    Ok(exit::OK)
}
