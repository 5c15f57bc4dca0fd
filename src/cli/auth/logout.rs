//! `craik auth logout`.

use super::*;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A profile id (openai:ci) or a family (openai).
    pub target: String,
    /// List what would be removed; remove nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Remove a whole family without asking.
    #[arg(long)]
    pub yes: bool,
    /// Print the outcome as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(mut ctx: Context, args: Args) -> craik::Result<i32> {
    let Args {
        target,
        dry_run,
        yes,
        json,
    } = args;
    let plan = manage::logout_plan(&ctx, &target)?;
    let names: Vec<String> = plan.iter().map(|p| p.to_string()).collect();
    if dry_run {
        if json {
            output::json(&serde_json::json!({ "would_remove": names, "dry_run": true }));
        } else {
            for id in &names {
                outln!("would remove {id}");
            }
        }
        return Ok(exit::OK);
    }
    if !target.contains(':')
        && !yes
        && !confirmed(
            &format!(
                "remove {} profile(s) and their stored secrets ({})? (craik logout ends your operator login instead)",
                names.len(),
                names.join(", ")
            ),
            Error::input(
                format!(
                    "auth logout {target} removes every {target} profile ({})",
                    names.join(", ")
                ),
                "pass --yes to remove them, or --dry-run to list them; to end your operator login run craik logout",
            ),
        )?
    {
        return Ok(exit::ERROR);
    }
    let removed = manage::logout(&mut ctx, &target)?;
    let ids: Vec<String> = removed.iter().map(|p| p.id.to_string()).collect();
    if json {
        output::json(&serde_json::json!({ "removed": ids }));
    } else {
        for id in ids {
            outln!("removed {id}");
        }
    }
    Ok(exit::OK)
}
