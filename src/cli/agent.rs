//! `craik agent ...`: detect, import and run coding agents.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use craik::agent::config::{AgentConfig, Mode};
use craik::agent::env::{EnvRequest, Format};
use craik::agent::import::{Detected, ImportRequest, ImportResult};
use craik::agent::run::RunRequest;
use craik::agent::{self, Agent};
use craik::broker::Target;
use craik::exit;
use craik::profile::ProfileId;

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
        /// Where the profile's calls go (default: the provider's, or what
        /// an earlier import of the agent set).
        #[arg(long, value_name = "URL")]
        base_url: Option<String>,
        /// Where craik refreshes a subscription login (default: the
        /// agent vendor's token endpoint, or what an earlier import set).
        #[arg(long, value_name = "URL")]
        token_url: Option<String>,
        /// Allow http:// loopback base and token URLs (a local gateway or
        /// test server).
        #[arg(long)]
        allow_local_base_url: bool,
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
    /// Write the credential and settings an agent needs to a file (0600)
    /// for a process craik does not start, e.g. docker run --env-file.
    /// The reader holds the real credential; never written to stdout.
    Env(EnvArgs),
    /// The agents' modes per scope (agent-config.json).
    #[command(subcommand)]
    Config(ConfigCommand),
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Set the mode for a scope (any of --agent, --workspace, --role;
    /// none: every run).
    Set {
        /// sync, api_key, oauth_token (claude only) or ignore.
        #[arg(value_parser = super::choice(&Mode::ALL, Mode::as_str))]
        mode: Mode,
        /// Only this agent.
        #[arg(long, value_parser = agent::parse)]
        agent: Option<Agent>,
        /// Only runs in this directory or under it.
        #[arg(long, value_name = "W")]
        workspace: Option<PathBuf>,
        /// Only runs with this --role.
        #[arg(long, value_name = "R")]
        role: Option<String>,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// The rules, and the mode each agent gets here (and why).
    Show {
        /// Resolve for this directory (default: the working directory).
        #[arg(long, value_name = "W")]
        workspace: Option<PathBuf>,
        /// Resolve for this role.
        #[arg(long, value_name = "R")]
        role: Option<String>,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// claude, codex or gemini.
    #[arg(value_parser = agent::parse)]
    agent: Agent,
    #[command(flatten)]
    target: RunTarget,
    /// sync, api_key, oauth_token (claude only) or ignore (default: what
    /// the credential named implies, else agent-config.json's scopes,
    /// else sync).
    #[arg(long, value_parser = super::choice(&Mode::ALL, Mode::as_str))]
    mode: Option<Mode>,
    /// The workspace the scopes match (default: the working directory).
    #[arg(long, value_name = "W")]
    workspace: Option<PathBuf>,
    /// The role the scopes match.
    #[arg(long, value_name = "R")]
    role: Option<String>,
    #[command(flatten)]
    call: super::broker::CallOpts,
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

#[derive(Debug, Args)]
pub struct EnvArgs {
    /// claude, codex or gemini.
    #[arg(value_parser = agent::parse)]
    agent: Agent,
    #[command(flatten)]
    target: EnvTarget,
    /// docker (KEY=value), shell (export KEY='value') or json.
    #[arg(long, value_parser = super::choice(&Format::ALL, Format::as_str))]
    format: Format,
    /// The env file to write (0600; replaced atomically).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Also write the agent's own files into DIR (made 0700), for a
    /// container to mount as its home (codex needs it).
    #[arg(long, value_name = "DIR")]
    home_dir: Option<PathBuf>,
    #[command(flatten)]
    call: super::broker::CallOpts,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

/// Which credential `agent env` writes.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct EnvTarget {
    /// A profile id.
    #[arg(long, value_name = "ID", add = clap_complete::engine::ArgValueCandidates::new(super::complete::profiles))]
    profile: Option<String>,
    /// A pool id.
    #[arg(long, value_name = "P", add = clap_complete::engine::ArgValueCandidates::new(super::complete::pools))]
    pool: Option<String>,
}

/// Which credential (default: the profile `agent import` writes).
#[derive(Debug, Args)]
#[group(required = false, multiple = false)]
pub struct RunTarget {
    /// A profile id.
    #[arg(long, value_name = "ID", add = clap_complete::engine::ArgValueCandidates::new(super::complete::profiles))]
    profile: Option<String>,
    /// A pool id.
    #[arg(long, value_name = "P", add = clap_complete::engine::ArgValueCandidates::new(super::complete::pools))]
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
            base_url,
            token_url,
            allow_local_base_url,
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
                    base_url,
                    token_url,
                    allow_local_base_url,
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
        AgentCommand::Config(cmd) => config(cmd),
        AgentCommand::Env(args) => {
            let mut ctx = super::context()?;
            let target = match (&args.target.profile, &args.target.pool) {
                (Some(p), _) => Target::Profile(p.parse::<ProfileId>()?),
                (None, Some(p)) => Target::Pool(p.parse::<ProfileId>()?),
                _ => {
                    return Err(craik::Error::input(
                        "name --profile or --pool",
                        "craik agent env claude --profile anthropic:work --format docker --out FILE",
                    ));
                }
            };
            let result = agent::env::write_env(
                &mut ctx,
                EnvRequest {
                    agent: args.agent,
                    call: args.call.spec(target, craik::broker::Capability::Export)?,
                    format: args.format,
                    out: args.out,
                    home_dir: args.home_dir,
                },
            )?;
            if args.json {
                output::json(&result);
            } else {
                outln!(
                    "wrote {} ({}) for {} from {}: {}",
                    result.out,
                    result.format,
                    result.agent,
                    result.profile,
                    result.variables.join(", ")
                );
                if !result.home_files.is_empty() {
                    outln!(
                        "and in the home directory: {}",
                        result.home_files.join(", ")
                    );
                }
                errln!(
                    "craik: the file holds the credential itself: keep it out of images and logs, and delete it after use"
                );
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
            let (run, policy_files, wait) = args.call.parts()?;
            agent::run::run(
                &mut ctx,
                RunRequest {
                    agent: args.agent,
                    target,
                    run,
                    policy_files,
                    wait,
                    sandbox: args.sandbox,
                    keep_home: args.keep_home,
                    allow_vendor_traffic: args.allow_vendor_traffic,
                    mode: args.mode,
                    workspace: args.workspace,
                    role: args.role,
                    args: args.args,
                },
            )
        }
    }
}

fn config(cmd: ConfigCommand) -> craik::Result<i32> {
    let ctx = super::context()?;
    match cmd {
        ConfigCommand::Set {
            mode,
            agent,
            workspace,
            role,
            json,
        } => {
            let rule = craik::agent::config::set(
                &ctx.home,
                &ctx.secrets,
                mode,
                agent,
                workspace.as_deref(),
                role.as_deref(),
            )?;
            if json {
                output::json(&rule);
            } else {
                outln!("{}: mode {}", rule.scope(), rule.mode.as_str());
            }
        }
        ConfigCommand::Show {
            workspace,
            role,
            json,
        } => {
            let cfg = AgentConfig::load(&ctx.home, &ctx.secrets)?;
            let dir = match workspace {
                Some(w) => w,
                None => std::env::current_dir().map_err(|e| {
                    craik::Error::input(
                        format!("cannot read the working directory: {e}"),
                        "pass --workspace",
                    )
                })?,
            };
            let ws = craik::agent::config::workspace_path(&dir)?;
            let here: Vec<_> = Agent::RUNNABLE
                .iter()
                .map(|a| cfg.resolve(*a, &ws, role.as_deref()))
                .collect();
            if json {
                output::json(&serde_json::json!({
                    "rules": cfg.rules,
                    "workspace": ws,
                    "role": role,
                    "resolved": here,
                }));
            } else {
                if cfg.rules.is_empty() {
                    outln!("no rules (every agent runs in mode sync)");
                }
                for r in &cfg.rules {
                    outln!("{:<11} {}", r.mode.as_str(), r.scope());
                }
                outln!(
                    "here ({}{}):",
                    ws.display(),
                    role.as_deref()
                        .map(|r| format!(", role {r}"))
                        .unwrap_or_default()
                );
                for r in &here {
                    outln!("  {:<7} {} (scope: {})", r.agent, r.mode.as_str(), r.scope);
                }
            }
        }
    }
    Ok(exit::OK)
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
