//! `craik auth migrate-from-env`.

use super::*;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Show what would be migrated (the default).
    #[arg(long, conflicts_with = "apply")]
    pub dry_run: bool,
    /// Migrate (needs --yes, or a confirmation on a terminal).
    #[arg(long)]
    pub apply: bool,
    /// Do it without asking.
    #[arg(long, requires = "apply")]
    pub yes: bool,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(mut ctx: Context, args: Args) -> craik::Result<i32> {
    let Args {
        dry_run: _,
        apply,
        yes,
        json,
    } = args;
    if apply
        && !yes
        && !confirmed(
            "store the values of these environment variables in the secret store?",
            Error::input(
                "--apply needs confirmation",
                "pass --apply --yes, or run on a terminal to confirm",
            ),
        )?
    {
        return Ok(exit::ERROR);
    }
    let report = manage::migrate_from_env(&mut ctx, apply)?;
    if json {
        output::json(&serde_json::json!({ "applied": apply, "profiles": report }));
    } else if report.is_empty() {
        outln!("no api-key profiles to migrate");
    } else {
        for m in &report {
            outln!("{}: {} ({})", m.id, m.outcome, m.env_var);
        }
        if !apply && report.iter().any(|m| m.outcome == "would migrate") {
            outln!("dry run: nothing changed; run with --apply --yes to migrate");
        }
    }
    Ok(exit::OK)
}
