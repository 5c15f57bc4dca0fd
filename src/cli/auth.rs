//! `craik auth ...`

use std::io::IsTerminal;

use clap::Subcommand;

use craik::context::Context;
use craik::credential::manage::{self, AddRequest};
use craik::credential::onboard::Mode;
use craik::pool::Strategy;
use craik::profile::{Kind, ProfileId};
use craik::secret::Backend;
use craik::{Error, exit, term};

use super::output::{self, errln, outln};

#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)]
pub enum AuthCommand {
    /// Add a credential profile.
    Add {
        /// The profile id, <provider_family>:<name> (anthropic:work, openai:ci).
        id: String,
        /// What holds the credential.
        #[arg(long, value_parser = super::choice(&Kind::ALL, Kind::as_str))]
        kind: Kind,
        /// api-key: the environment variable holding the key (default: the
        /// family's, e.g. OPENAI_API_KEY).
        #[arg(long, value_name = "NAME")]
        env_var: Option<String>,
        /// secret-ref: env:NAME (or just NAME) or file:/absolute/path
        /// (0600, yours).
        #[arg(long, value_name = "REF", value_parser = super::secret_ref_value)]
        secret_ref: Option<String>,
        /// keyring-ref: read the secret from standard input.
        #[arg(long)]
        stdin: bool,
        /// The provider endpoint, when not the family's default.
        #[arg(long, value_name = "URL")]
        base_url: Option<String>,
        /// Allow a base URL on a loopback or private address.
        #[arg(long)]
        allow_local_base_url: bool,
        /// Replace an existing profile with the same id.
        #[arg(long)]
        force: bool,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show every profile with redacted health.
    Status {
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a profile and its stored secret.
    Remove {
        #[arg(add = clap_complete::engine::ArgValueCandidates::new(super::complete::profiles))]
        id: String,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove one profile, or every profile of a provider family, and their
    /// stored secrets.
    /// (Not `craik logout`, which ends the operator's login.) A family
    /// asks on a terminal first, and needs --yes without one.
    Logout {
        /// A profile id (openai:ci) or a family (openai).
        target: String,
        /// List what would be removed; remove nothing.
        #[arg(long)]
        dry_run: bool,
        /// Remove a whole family without asking.
        #[arg(long)]
        yes: bool,
        /// Print the outcome as JSON.
        #[arg(long)]
        json: bool,
    },
    /// The secret store.
    #[command(subcommand)]
    Storage(StorageCommand),
    /// Run the full authorization (policy, grants, approval) for a profile
    /// without touching its credential. Exit 0 allowed, 3 denied, 4
    /// approval required.
    Check {
        #[arg(add = clap_complete::engine::ArgValueCandidates::new(super::complete::profiles))]
        id: String,
        /// The run id (default: a fresh run_<hex>, printed).
        #[arg(long, value_name = "R")]
        run: Option<String>,
        /// An extra policy envelope (repeatable).
        #[arg(long = "policy", value_name = "FILE")]
        policies: Vec<std::path::PathBuf>,
        #[command(flatten)]
        wait: WaitArg,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Approve a pending request: the first use of a profile, or a run.
    Approve {
        #[arg(add = clap_complete::engine::ArgValueCandidates::new(super::complete::profiles))]
        id: String,
        /// The run id (default: a fresh run_<hex>).
        #[arg(long, value_name = "RUN", require_equals = false)]
        run: String,
        /// An extra policy file in force (repeatable).
        #[arg(long = "policy", value_name = "FILE")]
        policies: Vec<std::path::PathBuf>,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List approval requests and their approvals.
    Approvals {
        /// Only requests nobody has approved yet.
        #[arg(long)]
        pending: bool,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Make the family's test call with a profile (or a pool member).
    Test {
        /// A profile or pool id.
        #[arg(add = clap_complete::engine::ArgValueCandidates::new(super::complete::targets))]
        id: String,
        /// The run id (default: a fresh run_<hex>).
        #[arg(long, value_name = "R")]
        run: Option<String>,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Credential pools.
    #[command(subcommand)]
    Pool(PoolCommand),
    /// Sign in to a provider with the strongest flow it supports.
    Login {
        /// openai, anthropic, gemini or local.
        #[arg(value_parser = super::provider_value)]
        provider: String,
        /// Which flow (default: the strongest the provider supports).
        #[arg(long, value_parser = super::choice(&Mode::ALL, Mode::as_str))]
        mode: Option<Mode>,
        /// Capture an API key instead of a browser flow, and open no
        /// browser (not even the provider's key page).
        #[arg(long)]
        no_browser: bool,
        /// The environment variable an api-key profile reads.
        #[arg(long, value_name = "NAME", conflicts_with = "secret_ref")]
        env_var: Option<String>,
        /// Read the key at use time from env:NAME (or just NAME) or
        /// file:/absolute/path (0600, yours).
        #[arg(long, value_name = "REF", value_parser = super::secret_ref_value)]
        secret_ref: Option<String>,
        /// Read the API key from standard input.
        #[arg(long)]
        stdin: bool,
        /// Validate the shape; write nothing.
        #[arg(long)]
        dry_run: bool,
        /// The profile name (default: default).
        #[arg(long, value_name = "N")]
        name: Option<String>,
        /// The provider endpoint, when not the family's default.
        #[arg(long, value_name = "URL")]
        base_url: Option<String>,
        /// Allow a loopback or private base URL (implied for local).
        #[arg(long)]
        allow_local_base_url: bool,
        /// openai: the OAuth issuer (default https://auth.openai.com).
        #[arg(long, value_name = "URL")]
        issuer: Option<String>,
        /// openai: the OAuth client id.
        #[arg(long, value_name = "ID")]
        client_id: Option<String>,
        /// gemini: the Google Cloud project.
        #[arg(long, value_name = "ID")]
        project_id: Option<String>,
        /// gemini: a service-account key file (JWT bearer grant).
        #[arg(long, value_name = "FILE")]
        service_account: Option<std::path::PathBuf>,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Guided setup: a typed profile and a single-member pool for a
    /// provider, then a redacted health report.
    Setup {
        /// openai, anthropic, gemini or local.
        #[arg(value_parser = super::provider_value)]
        provider: String,
        /// The profile name (default: default).
        #[arg(long, value_name = "N", default_value = "default")]
        name: String,
        /// The provider endpoint, when not the family's default.
        #[arg(long, value_name = "URL")]
        base_url: Option<String>,
        /// The environment variable an api-key profile reads.
        #[arg(long, value_name = "NAME", conflicts_with = "secret_ref")]
        env_var: Option<String>,
        /// Read the key at use time from env:NAME (or just NAME) or
        /// file:/absolute/path (0600, yours).
        #[arg(long, value_name = "REF", value_parser = super::secret_ref_value)]
        secret_ref: Option<String>,
        /// Allow a loopback or private base URL.
        #[arg(long)]
        allow_local_base_url: bool,
        /// Validate the shape; write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Replace a profile (and its pool) of the same id.
        #[arg(long)]
        force: bool,
        /// Print the outcome as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Let an operator group or subject use a profile (it stays restricted
    /// to those granted, even after the last grant is revoked). Needs a
    /// login: a policy's admin, or (with none named) an operator allowed to
    /// use the profile, never granting themselves.
    #[command(group(clap::ArgGroup::new("whom").required(true).multiple(true).args(["groups", "subjects", "to_everyone"])))]
    Grant {
        #[arg(add = clap_complete::engine::ArgValueCandidates::new(super::complete::profiles))]
        id: String,
        /// Grant to everyone in this group (repeatable).
        #[arg(long = "to-group", value_name = "G")]
        groups: Vec<String>,
        /// Grant to this operator subject (repeatable).
        #[arg(long = "to-subject", value_name = "S")]
        subjects: Vec<String>,
        /// Open the profile again to everyone policy allows (drops every
        /// grant; a receipt records it).
        #[arg(long, conflicts_with_all = ["groups", "subjects"])]
        to_everyone: bool,
        /// An extra policy file in force (repeatable), as for auth check.
        #[arg(long = "policy", value_name = "FILE")]
        policies: Vec<std::path::PathBuf>,
        /// Print the grants as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Take a grant back (the profile stays restricted). Needs a login,
    /// with the same rights as grant.
    #[command(group(clap::ArgGroup::new("whom").required(true).multiple(true).args(["groups", "subjects"])))]
    Revoke {
        #[arg(add = clap_complete::engine::ArgValueCandidates::new(super::complete::profiles))]
        id: String,
        /// Revoke this group's grant (repeatable).
        #[arg(long = "group", value_name = "G")]
        groups: Vec<String>,
        /// Revoke this subject's grant (repeatable).
        #[arg(long = "subject", value_name = "S")]
        subjects: Vec<String>,
        /// An extra policy file in force (repeatable), as for auth check.
        #[arg(long = "policy", value_name = "FILE")]
        policies: Vec<std::path::PathBuf>,
        /// Print the grants as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Accept auth-profiles.json as it is now after a change made outside
    /// craik (which craik refuses until then): seals it again and writes a
    /// receipt. Only for a change that is yours.
    Reseal {
        /// Reseal without asking (needed without a terminal).
        #[arg(long)]
        yes: bool,
        /// Print the outcome as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Move every stored secret to another backend.
    MigrateSecrets {
        /// Show what would be done; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// keychain, secret-service, keyutils, wincred or file (default: the
        /// backend craik would choose now).
        #[arg(long, value_name = "BACKEND")]
        to: Option<String>,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Move keys from environment variables into the secret store.
    MigrateFromEnv {
        /// Show what would be migrated (the default).
        #[arg(long, conflicts_with = "apply")]
        dry_run: bool,
        /// Migrate (needs --yes, or a confirmation on a terminal).
        #[arg(long)]
        apply: bool,
        /// Do it without asking.
        #[arg(long, requires = "apply")]
        yes: bool,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Said when a `local:` id was typed: it is stored under its family's name.
const LOCAL_ALIAS: &str = "(local is an alias: the profile is listed, matched and receipted as chat_completions:, and either name finds it)";

/// `--wait[=DURATION]` (default 10m when given bare).
#[derive(Debug, clap::Args)]
pub struct WaitArg {
    /// Wait for an approval (default 10m) instead of exiting 4.
    #[arg(long, value_name = "DURATION", num_args = 0..=1, default_missing_value = "10m", require_equals = true, value_parser = wait_value)]
    pub wait: Option<std::time::Duration>,
}

/// `--wait`'s value: a bad one is a usage error (exit 2), with the hint.
fn wait_value(s: &str) -> Result<std::time::Duration, String> {
    craik::approval::parse_wait(s).map_err(|e| {
        let hint = e.hint().unwrap_or_default();
        format!("{e} (hint: {hint})")
    })
}

impl WaitArg {
    pub fn duration(&self) -> craik::Result<Option<std::time::Duration>> {
        Ok(self.wait)
    }
}

#[derive(Debug, Subcommand)]
pub enum PoolCommand {
    /// Create a pool of profiles of one family.
    Create {
        /// The pool id (same form as a profile id: openai:team).
        id: String,
        /// How a member is picked for each call.
        #[arg(long, value_parser = super::choice(&Strategy::ALL, Strategy::as_str))]
        strategy: Strategy,
        /// A member, ID[=WEIGHT] (repeatable).
        #[arg(long = "member", value_name = "ID[=WEIGHT]", required = true)]
        members: Vec<String>,
        /// Replace an existing pool.
        #[arg(long)]
        force: bool,
    },
    /// Every pool with its members' health.
    Status {
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a pool (its member profiles stay).
    Remove {
        #[arg(add = clap_complete::engine::ArgValueCandidates::new(super::complete::pools))]
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum StorageCommand {
    /// Which backend is in use, why, and how many secrets it holds.
    Status {
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
}

fn pool(ctx: &Context, cmd: PoolCommand) -> craik::Result<i32> {
    use craik::pool::{self, PoolStore};
    match cmd {
        PoolCommand::Create {
            id,
            strategy,
            members,
            force,
        } => {
            let id: ProfileId = id.parse()?;
            let members = members
                .iter()
                .map(|m| pool::parse_member(m))
                .collect::<craik::Result<Vec<_>>>()?;
            let p = pool::create(&ctx.home, &id, strategy, &members, force)?;
            outln!("created pool {} ({} members)", p.id, p.members.len());
        }
        PoolCommand::Status { json } => {
            let f = PoolStore::new(&ctx.home).load()?;
            if json {
                output::json(&f);
            } else if f.pools.is_empty() {
                outln!("no pools");
            } else {
                let mut t = output::table(&[
                    "POOL",
                    "STRATEGY",
                    "MEMBER",
                    "WEIGHT",
                    "FAILURES",
                    "BACKOFF UNTIL",
                    "LAST",
                ]);
                for p in &f.pools {
                    for m in &p.members {
                        t.add_row(vec![
                            p.id.to_string(),
                            p.strategy.as_str().to_string(),
                            m.profile.to_string(),
                            m.weight.to_string(),
                            m.health.consecutive_failures.to_string(),
                            m.health
                                .backoff_until
                                .map(|t| t.to_rfc3339())
                                .unwrap_or_default(),
                            m.health
                                .last_outcome
                                .map(|o| o.as_str().to_string())
                                .unwrap_or_default(),
                        ]);
                    }
                }
                output::print_table(&t);
            }
        }
        PoolCommand::Remove { id } => {
            let id: ProfileId = id.parse()?;
            pool::remove(&ctx.home, &id)?;
            outln!("removed pool {id}");
        }
    }
    Ok(exit::OK)
}

/// Asks `question` on the terminal: true to go on; false (after saying
/// nothing changed) when the answer is no; `refusal` when nobody can
/// answer (no terminal, and no --yes).
fn confirmed(question: &str, refusal: Error) -> craik::Result<bool> {
    match term::confirm(question) {
        None => Err(refusal),
        Some(false) => {
            errln!("nothing changed");
            Ok(false)
        }
        Some(true) => Ok(true),
    }
}

fn grants(
    ctx: &mut Context,
    id: &str,
    groups: &[String],
    subjects: &[String],
    change: craik::approval::GrantChange,
    policies: &[std::path::PathBuf],
    json: bool,
) -> craik::Result<i32> {
    let id: ProfileId = id.parse()?;
    let g = craik::approval::change_grants(ctx, &id, groups, subjects, change, policies)?;
    if json {
        output::json(&serde_json::json!({"profile": id.to_string(), "grants": g}));
    } else if !g.restricts() {
        outln!("{id}: open to every operator policy allows");
    } else {
        outln!(
            "{id}: granted to groups [{}], subjects [{}]{}",
            g.groups.join(", "),
            g.subjects.join(", "),
            if g.is_empty() {
                " (nobody: restricted until granted again or opened with --to-everyone)"
            } else {
                ""
            }
        );
    }
    Ok(exit::OK)
}

pub fn run(cmd: AuthCommand) -> craik::Result<i32> {
    let mut ctx = super::context()?;
    match cmd {
        AuthCommand::Check {
            id,
            run,
            policies,
            wait,
            json,
        } => {
            let id: ProfileId = id.parse()?;
            let run = run.unwrap_or_else(craik::approval::new_run_id);
            let spec = craik::broker::CallSpec {
                target: craik::broker::Target::Profile(id),
                run: run.clone(),
                policy_files: policies,
                capability: craik::broker::Capability::Check,
                wait: wait.duration()?,
            };
            if !json {
                errln!("run: {run}");
            }
            let spinner = (spec.wait.is_some() && std::io::stderr().is_terminal()).then(|| {
                let pb = indicatif::ProgressBar::new_spinner();
                pb.set_message(format!("waiting for approval of run {run}"));
                pb
            });
            let result = spec.resolve(&ctx, &[]).and_then(|r| {
                r.authorize(&mut ctx, || {
                    if let Some(pb) = &spinner {
                        pb.tick();
                    }
                })
            });
            if let Some(pb) = &spinner {
                pb.finish_and_clear();
            }
            let a = match result {
                Ok(a) => a,
                Err(e) => {
                    if json {
                        let mut out = serde_json::json!({
                            "allowed": false, "run": run, "exit_code": e.exit_code(),
                            "error": e.to_string(),
                        });
                        if let Some(o) = out.as_object_mut() {
                            o.extend(e.json_fields());
                        }
                        output::json(&out);
                    }
                    return Err(e);
                }
            };
            let profile = a.profile().id.to_string();
            let operator = a.operator().map(|o| o.subject.clone());
            let approval = a.approval().map(str::to_string);
            let conditions = a.evaluation().conditions.clone();
            a.record(&mut ctx)?;
            if json {
                output::json(&serde_json::json!({
                    "allowed": true, "run": run, "profile": profile,
                    "operator": operator, "approval": approval,
                    "conditions": conditions,
                }));
            } else {
                outln!(
                    "allowed: {} for {} (run {})",
                    profile,
                    operator.as_deref().unwrap_or("no operator"),
                    run
                );
            }
            Ok(exit::OK)
        }
        AuthCommand::Approve {
            id,
            run,
            policies,
            json,
        } => {
            let id: ProfileId = id.parse()?;
            let a = craik::approval::approve(&mut ctx, &id, &run, &policies)?;
            if json {
                output::json(&a);
            } else if a.new {
                outln!(
                    "approved {} for run {} ({}{})",
                    a.profile,
                    a.run,
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
        AuthCommand::Test { id, run, json } => {
            let id: ProfileId = id.parse()?;
            let spec = craik::broker::CallSpec {
                target: craik::broker::Target::guess(&ctx, &id)?,
                run: run.unwrap_or_else(craik::approval::new_run_id),
                policy_files: vec![],
                capability: craik::broker::Capability::Test,
                wait: None,
            };
            let r = craik::broker::test_call::test(&mut ctx, &spec)?;
            if json {
                output::json(&r);
            } else {
                outln!(
                    "{}: {} (HTTP {}, {} ms, run {})",
                    r.profile,
                    r.status,
                    r.http_status
                        .map(|s| s.to_string())
                        .unwrap_or_else(|| "-".into()),
                    r.latency_ms,
                    r.run
                );
            }
            Ok(r.exit_code())
        }
        AuthCommand::Pool(cmd) => pool(&ctx, cmd),
        AuthCommand::Login {
            provider,
            mode,
            no_browser,
            env_var,
            secret_ref,
            stdin,
            dry_run,
            name,
            base_url,
            allow_local_base_url,
            issuer,
            client_id,
            project_id,
            service_account,
            json,
        } => {
            let family = craik::credential::onboard::parse_provider(&provider)?;
            let req = craik::credential::onboard::LoginRequest {
                mode,
                no_browser,
                env_var,
                secret_ref,
                stdin,
                dry_run,
                name,
                base_url,
                allow_local_base_url,
                issuer,
                client_id,
                project_id,
                service_account,
            };
            let flow = craik::credential::onboard::pick_flow(family, &req)?;
            if flow == craik::credential::onboard::Flow::OAuth && !dry_run {
                let client = req
                    .client_id
                    .as_deref()
                    .unwrap_or(craik::credential::onboard::OPENAI_CLIENT_ID);
                let notice = format!(
                    "note: the consent screen will name the OAuth client craik uses ({client}); pass --client-id to use your own"
                );
                if json {
                    output::json_line(&serde_json::json!({"event": "notice", "message": notice}));
                } else {
                    errln!("{notice}");
                }
            }
            let r = craik::credential::onboard::login(
                &mut ctx,
                family,
                &req,
                || {
                    if stdin {
                        return term::read_secret_stdin();
                    }
                    // Typing a key on a terminal: show where to create one.
                    if let Some(page) = craik::credential::onboard::key_page(family)
                        && std::io::IsTerminal::is_terminal(&std::io::stdin())
                    {
                        if !no_browser && term::open_browser(page) {
                            errln!(
                                "opened {page} in your browser: create a key there and paste it here"
                            );
                        } else {
                            errln!("create a key at {page} and paste it here");
                        }
                    }
                    term::prompt_secret(&format!("{provider} API key: "))
                },
                |e| match e {
                    craik::operator::LoginEvent::Browser { url, opened } if json => {
                        output::json_line(
                            &serde_json::json!({"event": "browser", "url": url, "opened": opened}),
                        )
                    }
                    craik::operator::LoginEvent::Browser { url, .. } => {
                        outln!("Open this URL in a browser to sign in:\n{url}")
                    }
                    _ => {}
                },
            )?;
            if json {
                let mut v = serde_json::to_value(&r).unwrap_or_default();
                v["event"] = "done".into();
                output::json_line(&v);
            } else {
                let verb = if r.written { "wrote" } else { "would write" };
                outln!("{verb} profile {}: {}", r.profile, r.flow.describe());
                if let Some(n) = &r.note {
                    outln!("{n}");
                }
            }
            Ok(exit::OK)
        }
        AuthCommand::Setup {
            provider,
            name,
            base_url,
            env_var,
            secret_ref,
            allow_local_base_url,
            dry_run,
            force,
            json,
        } => {
            let r = craik::credential::onboard::setup(
                &mut ctx,
                craik::credential::onboard::SetupRequest {
                    family: craik::credential::onboard::parse_provider(&provider)?,
                    name,
                    base_url,
                    env_var,
                    secret_ref,
                    allow_local_base_url,
                    dry_run,
                    force,
                },
            )?;
            if json {
                output::json(&r);
            } else {
                let verb = if r.dry_run { "would write" } else { "wrote" };
                outln!("{verb} profile {} ({}) and pool {}", r.id, r.kind, r.pool);
                if provider == "local" {
                    outln!("{LOCAL_ALIAS}");
                }
                if let Some(b) = &r.base_url {
                    outln!("base URL: {b}");
                }
                outln!(
                    "credential: {}{}",
                    if r.health.ok { "ok: " } else { "missing: " },
                    r.health.message
                );
                if let Some(n) = &r.next_step {
                    outln!("next: {n}");
                }
            }
            Ok(exit::OK)
        }
        AuthCommand::Approvals { pending, json } => {
            let list = craik::approval::approvals(&mut ctx, pending)?;
            if json {
                output::json(&serde_json::json!({ "approvals": list }));
            } else if list.is_empty() {
                outln!("no approval requests");
            } else {
                let mut t = output::table(&[
                    "PROFILE",
                    "RUN",
                    "REQUESTED BY",
                    "REQUESTED AT",
                    "APPROVED BY",
                    "EXPIRES",
                    "STATE",
                ]);
                for l in list {
                    t.add_row(vec![
                        l.profile,
                        l.run,
                        l.requested_by.unwrap_or_default(),
                        l.requested_at,
                        l.approved_by.unwrap_or_default(),
                        l.expires_at.unwrap_or_else(|| "-".into()),
                        l.state.to_string(),
                    ]);
                }
                output::print_table(&t);
            }
            Ok(exit::OK)
        }
        AuthCommand::Grant {
            id,
            groups,
            subjects,
            to_everyone,
            policies,
            json,
        } => {
            let change = if to_everyone {
                craik::approval::GrantChange::Open
            } else {
                craik::approval::GrantChange::Grant
            };
            grants(&mut ctx, &id, &groups, &subjects, change, &policies, json)
        }
        AuthCommand::Revoke {
            id,
            groups,
            subjects,
            policies,
            json,
        } => grants(
            &mut ctx,
            &id,
            &groups,
            &subjects,
            craik::approval::GrantChange::Revoke,
            &policies,
            json,
        ),
        AuthCommand::Reseal { yes, json } => {
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
        AuthCommand::Add {
            id,
            kind,
            env_var,
            secret_ref,
            stdin,
            base_url,
            allow_local_base_url,
            force,
            json,
        } => {
            let typed_local = id.starts_with("local:");
            let id: ProfileId = id.parse()?;
            if stdin && kind != Kind::KeyringRef {
                return Err(Error::input(
                    format!("--stdin does not apply to --kind={kind}"),
                    "only keyring-ref stores a secret; api-key and secret-ref read theirs at use time",
                ));
            }
            let mut req = AddRequest {
                id,
                kind,
                env_var,
                secret_ref,
                secret: None,
                base_url,
                allow_local_base_url,
                force,
            };
            manage::validate_add(&req)?;
            if kind == Kind::KeyringRef {
                req.secret = Some(if stdin {
                    term::read_secret_stdin()?
                } else {
                    term::prompt_secret(&format!("secret for {}: ", req.id))?
                });
            }
            let p = manage::add_profile(&mut ctx, req)?;
            if json {
                output::json(&serde_json::json!({"added": p.id.to_string(), "kind": p.kind}));
            } else {
                outln!("added {} ({})", p.id, p.kind);
                if typed_local {
                    outln!("{LOCAL_ALIAS}");
                }
            }
            Ok(exit::OK)
        }
        AuthCommand::Status { json } => {
            let rows = manage::status(&ctx)?;
            let (sources, _) = craik::credential::onboard::anthropic_sources(&ctx)?;
            // The Anthropic sources matter only where Anthropic is used.
            let show_sources = rows.iter().any(|r| r.provider_family == "anthropic")
                || sources.iter().any(|s| s.active);
            if json {
                output::json(
                    &serde_json::json!({ "profiles": rows, "anthropic_sources": sources }),
                );
            } else if rows.is_empty() {
                outln!("no profiles; add one with: craik auth add <family>:<name> --kind=...");
            } else {
                let mut t =
                    output::table(&["ID", "FAMILY", "KIND", "BACKEND", "LAST TEST", "HEALTH"]);
                for r in rows {
                    // A failed `auth test` (a 401) outweighs "secret present".
                    let failed_test = r.last_status.as_deref().filter(|s| *s != "ok");
                    t.add_row(vec![
                        r.id,
                        r.provider_family,
                        r.kind,
                        r.backend,
                        match (&r.last_status, &r.last_validated_at) {
                            (Some(s), Some(t)) => format!("{s} at {t}"),
                            _ => "never".into(),
                        },
                        match failed_test {
                            Some(s) => {
                                format!("FAIL: the last auth test ended {s}; {}", r.health.message)
                            }
                            None => format!(
                                "{}{}",
                                if r.health.ok { "ok: " } else { "FAIL: " },
                                r.health.message
                            ),
                        },
                    ]);
                }
                output::print_table(&t);
            }
            if !json && show_sources {
                match sources.iter().find(|s| s.active) {
                    Some(a) => outln!("anthropic source (--provider anthropic): {}", a.source),
                    None => outln!("anthropic source (--provider anthropic): none resolves"),
                }
                for s in sources.iter().filter(|s| !s.active) {
                    outln!(
                        "  passed over {}: {}",
                        s.source,
                        s.passed_over.as_deref().unwrap_or("")
                    );
                }
            }
            Ok(exit::OK)
        }
        AuthCommand::Remove { id, json } => {
            let id: ProfileId = id.parse()?;
            let p = manage::remove_profile(&mut ctx, &id)?;
            if json {
                output::json(&serde_json::json!({"removed": [p.id.to_string()]}));
            } else {
                outln!("removed {}", p.id);
            }
            Ok(exit::OK)
        }
        AuthCommand::Logout {
            target,
            dry_run,
            yes,
            json,
        } => {
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
        AuthCommand::Storage(StorageCommand::Status { json }) => {
            let s = manage::storage_status(&ctx)?;
            if json {
                output::json(&s);
            } else {
                outln!("backend: {} ({})", s.backend, s.reason);
                outln!("secrets held: {}", s.secrets);
                for (b, n) in &s.elsewhere {
                    outln!("secrets recorded in {b}: {n}");
                }
                for p in &s.probes {
                    outln!("probed {}: {}", p.backend, p.state);
                }
                for n in &s.notes {
                    outln!("note: {n}");
                }
            }
            Ok(exit::OK)
        }
        AuthCommand::MigrateSecrets { dry_run, to, json } => {
            let to: Option<Backend> = to
                .map(|t| t.parse())
                .transpose()
                .map_err(craik::Error::from)?;
            let m = manage::migrate_secrets(&mut ctx, to, dry_run)?;
            if json {
                output::json(&m);
            } else {
                let verb = if dry_run { "would move" } else { "moved" };
                outln!(
                    "{verb} {} secret(s) to {}; {} already there",
                    m.moved.len(),
                    m.to,
                    m.already.len()
                );
            }
            Ok(exit::OK)
        }
        AuthCommand::MigrateFromEnv {
            dry_run: _,
            apply,
            yes,
            json,
        } => {
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
    }
}
