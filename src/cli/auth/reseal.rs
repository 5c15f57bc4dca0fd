//! `craik auth reseal`.

use super::*;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Reseal without asking (needed without a terminal).
    #[arg(long)]
    pub yes: bool,
    /// Print the outcome as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(mut ctx: Context, args: Args) -> craik::Result<i32> {
    let Args { yes, json } = args;
    if !yes {
        let file = craik::profile::ProfileStore::new(&ctx.home).load_unchecked()?;
        errln!("auth-profiles.json holds:");
        for p in manage::reseal_summary(&file)
            .as_array()
            .into_iter()
            .flatten()
        {
            errln!("  {}", craik::term::printable(&p.to_string()));
        }
        if !confirmed(
            "seal auth-profiles.json as it is now, trusting every change made to it outside craik?",
            Error::input(
                "reseal needs confirmation",
                "pass --yes, or run on a terminal to confirm",
            ),
        )? {
            return Ok(exit::ERROR);
        }
    }
    let n = manage::reseal(&mut ctx)?.len();
    if json {
        output::json(&serde_json::json!({"resealed": true, "profiles": n}));
    } else {
        outln!("resealed auth-profiles.json ({n} profile(s)); a receipt records it");
    }
    Ok(exit::OK)
}
