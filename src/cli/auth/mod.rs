//! `craik auth ...`

mod add;
mod approvals;
mod approve;
mod check;
mod grant;
mod login;
mod logout;
mod migrate_from_env;
mod migrate_secrets;
mod remove;
mod reseal;
mod revoke;
mod setup;
mod status;
mod test;

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
    Add(add::Args),
    /// Show every profile with redacted health.
    Status(status::Args),
    /// Remove a profile and its stored secret.
    Remove(remove::Args),
    /// Remove one profile, or every profile of a provider family, and their
    /// stored secrets.
    /// (Not `craik logout`, which ends the operator's login.) A family
    /// asks on a terminal first, and needs --yes without one.
    Logout(logout::Args),
    /// The secret store.
    #[command(subcommand)]
    Storage(StorageCommand),
    /// Run the full authorization (policy, grants, approval) for a profile
    /// without touching its credential. Exit 0 allowed, 3 denied, 4
    /// approval required.
    Check(check::Args),
    /// Approve a pending request: the first use of a profile, or a run.
    Approve(approve::Args),
    /// List approval requests and their approvals.
    Approvals(approvals::Args),
    /// Make the family's test call with a profile (or a pool member).
    Test(test::Args),
    /// Credential pools.
    #[command(subcommand)]
    Pool(PoolCommand),
    /// Sign in to a provider with the strongest flow it supports.
    Login(login::Args),
    /// Guided setup: a typed profile and a single-member pool for a
    /// provider, then a redacted health report.
    Setup(setup::Args),
    /// Let an operator group or subject use a profile (it stays restricted
    /// to those granted, even after the last grant is revoked). Needs a
    /// login: a policy's admin, or (with none named) an operator allowed to
    /// use the profile, never granting themselves.
    Grant(grant::Args),
    /// Take a grant back (the profile stays restricted). Needs a login,
    /// with the same rights as grant.
    Revoke(revoke::Args),
    /// Accept auth-profiles.json as it is now after a change made outside
    /// craik (which craik refuses until then): seals it again and writes a
    /// receipt. Only for a change that is yours.
    Reseal(reseal::Args),
    /// Move every stored secret to another backend.
    MigrateSecrets(migrate_secrets::Args),
    /// Move keys from environment variables into the secret store.
    MigrateFromEnv(migrate_from_env::Args),
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

/// What `auth grant` and `auth revoke` ask for.
struct GrantCmd<'a> {
    id: &'a str,
    groups: &'a [String],
    subjects: &'a [String],
    change: craik::approval::GrantChange,
    policies: &'a [std::path::PathBuf],
    team: bool,
    json: bool,
}

fn grants(ctx: &mut Context, cmd: GrantCmd<'_>) -> craik::Result<i32> {
    let GrantCmd {
        id,
        groups,
        subjects,
        change,
        policies,
        team,
        json,
    } = cmd;
    let id: ProfileId = id.parse()?;
    let g = craik::approval::change_grants(ctx, &id, groups, subjects, change, policies, team)?;
    let scope = if team { " (team)" } else { "" };
    if json {
        output::json(&serde_json::json!({"profile": id.to_string(), "grants": g, "team": team}));
    } else if !g.restricts() {
        outln!("{id}{scope}: open to every operator policy allows");
    } else {
        outln!(
            "{id}{scope}: granted to groups [{}], subjects [{}]{}",
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
    let ctx = super::context()?;
    match cmd {
        AuthCommand::Add(a) => add::run(ctx, a),
        AuthCommand::Status(a) => status::run(ctx, a),
        AuthCommand::Remove(a) => remove::run(ctx, a),
        AuthCommand::Logout(a) => logout::run(ctx, a),
        AuthCommand::Check(a) => check::run(ctx, a),
        AuthCommand::Approve(a) => approve::run(ctx, a),
        AuthCommand::Approvals(a) => approvals::run(ctx, a),
        AuthCommand::Test(a) => test::run(ctx, a),
        AuthCommand::Login(a) => login::run(ctx, a),
        AuthCommand::Setup(a) => setup::run(ctx, a),
        AuthCommand::Grant(a) => grant::run(ctx, a),
        AuthCommand::Revoke(a) => revoke::run(ctx, a),
        AuthCommand::Reseal(a) => reseal::run(ctx, a),
        AuthCommand::MigrateSecrets(a) => migrate_secrets::run(ctx, a),
        AuthCommand::MigrateFromEnv(a) => migrate_from_env::run(ctx, a),
        AuthCommand::Pool(cmd) => pool(&ctx, cmd),
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
    }
}
