//! `craik agent ...`: detect, import and run coding agents.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use craik::agent::import::{Detected, ImportRequest, ImportResult};
use craik::agent::run::RunRequest;
use craik::agent::{self, Agent};
use craik::broker::Target;
use craik::exit;
use craik::profile::ProfileId;

use super::auth::WaitArg;
use super::output::{self, errln, outln};

#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    /// What each agent keeps on this machine (material is never shown).
    Detect {
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Move an agent's credential into craik's secret store, under a
    /// profile (default name: the agent's).
    Import {
        /// claude, codex, gemini, opencode or amp.
        #[arg(value_parser = agent::parse)]
        agent: Agent,
        /// Read this file (in the agent's own format) instead of looking
        /// in the agent's places.
        #[arg(long, value_name = "PATH")]
        from: Option<PathBuf>,
        /// The profile name (default: the agent's name, e.g. anthropic:claude).
        #[arg(long, value_name = "N")]
        name: Option<String>,
        /// Show what would be imported; store nothing.
        #[arg(long)]
        dry_run: bool,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run an agent (claude, codex, gemini) through craik's proxy: it
    /// holds only the proxy's address and token, never the credential.
    Run(RunArgs),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// claude, codex or gemini.
    #[arg(value_parser = agent::parse)]
    agent: Agent,
    #[command(flatten)]
    target: RunTarget,
    /// The run id (default: a fresh run_<hex>).
    #[arg(long, value_name = "R")]
    run: Option<String>,
    #[command(flatten)]
    wait: WaitArg,
    /// An extra policy envelope (repeatable).
    #[arg(long = "policy", value_name = "FILE")]
    policies: Vec<PathBuf>,
    /// Run the agent under bubblewrap (see docs/security.md).
    #[arg(long)]
    sandbox: bool,
    /// Keep the agent's home in DIR (made 0700) instead of a temporary
    /// directory removed after the run.
    #[arg(long, value_name = "DIR")]
    keep_home: Option<PathBuf>,
    /// Leave the agent's telemetry and update checks on (off by default).
    #[arg(long)]
    allow_vendor_traffic: bool,
    /// The agent's own arguments (after --).
    #[arg(last = true, value_name = "ARGS")]
    args: Vec<String>,
}

/// Which credential (default: the profile `agent import` writes).
#[derive(Debug, Args)]
#[group(required = false, multiple = false)]
pub struct RunTarget {
    /// A profile id.
    #[arg(long, value_name = "ID")]
    profile: Option<String>,
    /// A pool id.
    #[arg(long, value_name = "P")]
    pool: Option<String>,
}

pub fn run(cmd: AgentCommand) -> craik::Result<i32> {
    match cmd {
        AgentCommand::Detect { json } => {
            let ctx = super::context()?;
            let found = agent::import::detect(&ctx)?;
            if json {
                output::json(&serde_json::json!({ "agents": found }));
            } else {
                for d in &found {
                    print_detected(d);
                }
            }
            Ok(exit::OK)
        }
        AgentCommand::Import {
            agent,
            from,
            name,
            dry_run,
            json,
        } => {
            let mut ctx = super::context()?;
            let result = agent::import::import(
                &mut ctx,
                ImportRequest {
                    agent,
                    from: from.as_deref(),
                    name,
                    dry_run,
                },
            )?;
            if json {
                output::json(&result);
            } else {
                print_imported(&result);
            }
            for w in &result.warnings {
                errln!("craik: warning: {w}");
            }
            Ok(exit::OK)
        }
        AgentCommand::Run(args) => {
            let mut ctx = super::context()?;
            let target = match (&args.target.profile, &args.target.pool) {
                (Some(p), _) => Some(Target::Profile(p.parse::<ProfileId>()?)),
                (None, Some(p)) => Some(Target::Pool(p.parse::<ProfileId>()?)),
                _ => None,
            };
            agent::run::run(
                &mut ctx,
                RunRequest {
                    agent: args.agent,
                    target,
                    run: args.run.unwrap_or_else(craik::approval::new_run_id),
                    policy_files: args.policies,
                    wait: args.wait.duration()?,
                    sandbox: args.sandbox,
                    keep_home: args.keep_home,
                    allow_vendor_traffic: args.allow_vendor_traffic,
                    args: args.args,
                },
            )
        }
    }
}

fn describe(c: &craik::agent::source::Described) -> String {
    let mut parts = vec![c.family.clone()];
    if let Some(p) = &c.plan {
        parts.push(format!("plan {p}"));
    }
    if let Some(a) = &c.account {
        parts.push(format!("account {a}"));
    }
    match (&c.expires_at, c.expired) {
        (Some(t), true) => parts.push(format!("EXPIRED {t}")),
        (Some(t), false) => parts.push(format!("expires {t}")),
        _ => {}
    }
    if c.has_refresh_token {
        parts.push("refresh token".into());
    }
    format!(
        "{} ({})",
        c.credential_type.as_str().replace('_', " "),
        parts.join(", ")
    )
}

fn print_detected(d: &Detected) {
    match (&d.place, &d.error) {
        (Some(place), _) => {
            let creds: Vec<String> = d.credentials.iter().map(describe).collect();
            outln!("{:<9} found at {place}: {}", d.agent, creds.join("; "));
            if !d.skipped.is_empty() {
                outln!(
                    "          skipped (no craik provider family): {}",
                    d.skipped.join(", ")
                );
            }
            match (&d.profile, d.imported) {
                (Some(p), true) => outln!("          imported as {p}"),
                (Some(p), false) => {
                    outln!(
                        "          not imported (craik agent import {} -> {p})",
                        d.agent
                    )
                }
                (None, _) => outln!("          not imported (craik agent import {})", d.agent),
            }
        }
        (None, Some(e)) => {
            outln!("{:<9} REFUSED: {e}", d.agent);
            if let Some(h) = &d.hint {
                outln!("          hint: {h}");
            }
        }
        (None, None) => {
            let places: Vec<&str> = d.checked.iter().map(|c| c.place.as_str()).collect();
            outln!(
                "{:<9} nothing found (looked in: {})",
                d.agent,
                places.join(", ")
            );
        }
    }
}

fn print_imported(r: &ImportResult) {
    let verb = if r.dry_run {
        "would import"
    } else {
        "imported"
    };
    for p in &r.profiles {
        outln!(
            "{verb} {}'s {} from {} as {} (kind {}{})",
            r.agent,
            describe(&p.credential),
            r.place,
            p.id,
            p.kind,
            if p.replaced {
                ", replacing the earlier import"
            } else {
                ""
            }
        );
    }
    if r.profiles.is_empty() {
        outln!("nothing to import from {}", r.place);
    }
    if !r.skipped.is_empty() {
        outln!(
            "skipped (craik has no provider family for them): {}",
            r.skipped.join(", ")
        );
    }
}
