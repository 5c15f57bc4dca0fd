//! `craik auth approve`.

use super::*;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(add = clap_complete::engine::ArgValueCandidates::new(crate::cli::complete::profiles))]
    pub id: String,
    /// The run id (default: a fresh run_<hex>).
    #[arg(long, value_name = "RUN", require_equals = false)]
    pub run: String,
    /// An extra policy file in force (repeatable).
    #[arg(long = "policy", value_name = "FILE")]
    pub policies: Vec<std::path::PathBuf>,
    /// Approve a request made on another machine of the team: the newest
    /// for the profile and run in another home's chain in the team store.
    #[arg(long)]
    pub team: bool,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(mut ctx: Context, args: Args) -> craik::Result<i32> {
    let Args {
        id,
        run,
        policies,
        team,
        json,
    } = args;
    let id: ProfileId = id.parse()?;
    let a = craik::approval::approve(&mut ctx, &id, &run, &policies, team)?;
    if json {
        output::json(&a);
    } else if a.new {
        outln!(
            "approved {} for run {}{} ({}{})",
            a.profile,
            a.run,
            a.home
                .as_deref()
                .map(|h| format!(" of home {h:?}"))
                .unwrap_or_default(),
            a.receipt,
            a.expires_at
                .as_deref()
                .map(|e| format!(", until {e}"))
                .unwrap_or_default()
        );
    } else {
        outln!(
            "already approved {} for run {} by {}",
            a.profile,
            a.run,
            a.approver.as_deref().unwrap_or("-")
        );
    }
    Ok(exit::OK)
}
