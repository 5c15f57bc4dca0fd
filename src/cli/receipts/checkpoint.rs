//! `craik receipts checkpoint`.

use super::*;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where to write it (default: standard output).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Sign the heads of every chain in the team store instead (after
    /// verifying them all).
    #[arg(long)]
    pub team: bool,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(mut ctx: Context, args: Args) -> craik::Result<i32> {
    let Args { out, team, json } = args;
    if team {
        let cp = craik::team::checkpoint(&mut ctx)?;
        let text = serde_json::to_string_pretty(&cp).expect("checkpoint serializes") + "\n";
        if let Some(path) = &out {
            craik::home::write_atomic_path(path, text.as_bytes())?;
        }
        if json {
            output::json(&serde_json::json!({
                "chains": cp.chains, "created_at": cp.created_at,
                "public_key": cp.public_key, "file": out, "checkpoint": cp,
            }));
        } else if out.is_none() {
            out!("{text}");
        } else {
            outln!("team checkpoint of {} chain(s) written", cp.chains.len());
        }
        return Ok(exit::OK);
    }
    let log = open_log(&ctx)?;
    let cp = craik::audit::checkpoint::make(&ctx.home, &ctx.secrets, &log)?;
    let text = serde_json::to_string_pretty(&cp).expect("checkpoint serializes") + "\n";
    if let Some(path) = &out {
        craik::home::write_atomic_path(path, text.as_bytes())?;
    }
    if json {
        output::json(&serde_json::json!({
            "seq": cp.seq, "hash": cp.hash, "created_at": cp.created_at,
            "public_key": cp.public_key, "file": out,
            "checkpoint": cp,
        }));
    } else if out.is_none() {
        out!("{text}");
    } else {
        outln!("checkpoint of seq {} written", cp.seq);
    }
    Ok(exit::OK)
}
