//! `craik receipts stats`.

use super::*;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Count every home's chain in the team store (a craik_reader login
    /// suffices), with a count per home.
    #[arg(long)]
    pub team: bool,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: Context, args: Args) -> craik::Result<i32> {
    let Args { team, json } = args;
    let s = if team {
        craik::team::stats(&ctx)?
    } else {
        open_log(&ctx)?.stats()?
    };
    if json {
        output::json(&s);
    } else {
        outln!("receipts: {}", s.total);
        for (title, map) in [
            ("by kind", &s.by_kind),
            ("by status", &s.by_status),
            ("by profile", &s.by_profile),
            ("by operator", &s.by_operator),
            ("by home", &s.by_home),
        ] {
            if title == "by home" && !team {
                continue;
            }
            if map.is_empty() {
                outln!("{title}: none");
                continue;
            }
            outln!("{title}:");
            for (k, n) in map {
                // Other homes wrote these in a team store.
                outln!("  {}: {n}", craik::term::printable(k));
            }
        }
    }
    Ok(exit::OK)
}
