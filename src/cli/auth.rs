//! `craik auth ...`

use std::io::IsTerminal;

use clap::Subcommand;

use craik::auth::{self, AddRequest};
use craik::context::Context;
use craik::profile::{Kind, ProfileId};
use craik::secret::Backend;
use craik::{Error, exit, term};

use super::output;

#[derive(Debug, Subcommand)]
pub enum AuthCommand {
    /// Add a credential profile.
    Add {
        /// The profile id, <provider_family>:<name> (anthropic:work, openai:ci).
        id: String,
        /// api-key, keyring-ref, secret-ref or marker.
        #[arg(long)]
        kind: String,
        /// api-key: the environment variable holding the key (default: the
        /// family's, e.g. OPENAI_API_KEY).
        #[arg(long, value_name = "NAME")]
        env_var: Option<String>,
        /// secret-ref: env:NAME or file:/absolute/path (0600, yours).
        #[arg(long, value_name = "REF")]
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
        #[arg(long)]
        json: bool,
    },
    /// Show every profile with redacted health.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Remove a profile and its stored secret.
    Remove {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Remove one profile, or every profile of a provider family, and their
    /// stored secrets.
    Logout {
        /// A profile id (openai:ci) or a family (openai).
        target: String,
        #[arg(long)]
        json: bool,
    },
    /// The secret store.
    #[command(subcommand)]
    Storage(StorageCommand),
    /// Move every stored secret to another backend.
    MigrateSecrets {
        #[arg(long)]
        dry_run: bool,
        /// keychain, secret-service, keyutils, wincred or file (default: the
        /// backend craik would choose now).
        #[arg(long, value_name = "BACKEND")]
        to: Option<String>,
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
        #[arg(long, requires = "apply")]
        yes: bool,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum StorageCommand {
    /// Which backend is in use, why, and how many secrets it holds.
    Status {
        #[arg(long)]
        json: bool,
    },
}

pub fn run(cmd: AuthCommand) -> craik::Result<i32> {
    let mut ctx = Context::open_default()?;
    match cmd {
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
            let id: ProfileId = id.parse()?;
            let kind: Kind = kind.parse()?;
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
            auth::validate_add(&req)?;
            if kind == Kind::KeyringRef {
                req.secret = Some(if stdin {
                    term::read_secret_stdin()?
                } else {
                    term::prompt_secret(&format!("secret for {}: ", req.id))?
                });
            }
            let p = auth::add_profile(&mut ctx, req)?;
            if json {
                output::json(&serde_json::json!({"added": p.id.to_string(), "kind": p.kind}));
            } else {
                println!("added {} ({})", p.id, p.kind);
            }
            Ok(exit::OK)
        }
        AuthCommand::Status { json } => {
            let rows = auth::status(&ctx)?;
            if json {
                output::json(&serde_json::json!({ "profiles": rows }));
            } else if rows.is_empty() {
                println!("no profiles; add one with: craik auth add <family>:<name> --kind=...");
            } else {
                let mut t = output::table(&[
                    "ID",
                    "FAMILY",
                    "KIND",
                    "BACKEND",
                    "LAST VALIDATED",
                    "HEALTH",
                ]);
                for r in rows {
                    t.add_row(vec![
                        r.id,
                        r.provider_family,
                        r.kind,
                        r.backend,
                        r.last_validated_at.unwrap_or_else(|| "never".into()),
                        format!(
                            "{}{}",
                            if r.health.ok { "ok: " } else { "FAIL: " },
                            r.health.message
                        ),
                    ]);
                }
                output::print_table(&t);
            }
            Ok(exit::OK)
        }
        AuthCommand::Remove { id, json } => {
            let id: ProfileId = id.parse()?;
            let p = auth::remove_profile(&mut ctx, &id)?;
            if json {
                output::json(&serde_json::json!({"removed": [p.id.to_string()]}));
            } else {
                println!("removed {}", p.id);
            }
            Ok(exit::OK)
        }
        AuthCommand::Logout { target, json } => {
            let removed = auth::logout(&mut ctx, &target)?;
            let ids: Vec<String> = removed.iter().map(|p| p.id.to_string()).collect();
            if json {
                output::json(&serde_json::json!({ "removed": ids }));
            } else {
                for id in ids {
                    println!("removed {id}");
                }
            }
            Ok(exit::OK)
        }
        AuthCommand::Storage(StorageCommand::Status { json }) => {
            let s = auth::storage_status(&ctx)?;
            if json {
                output::json(&s);
            } else {
                println!("backend: {} ({})", s.backend, s.reason);
                println!("secrets held: {}", s.secrets);
                for (b, n) in &s.elsewhere {
                    println!("secrets recorded in {b}: {n}");
                }
                for p in &s.probes {
                    println!("probed {}: {}", p.backend, p.state);
                }
                for n in &s.notes {
                    println!("note: {n}");
                }
            }
            Ok(exit::OK)
        }
        AuthCommand::MigrateSecrets { dry_run, to, json } => {
            let to: Option<Backend> = to
                .map(|t| t.parse())
                .transpose()
                .map_err(craik::Error::from)?;
            let m = auth::migrate_secrets(&mut ctx, to, dry_run)?;
            if json {
                output::json(&m);
            } else {
                let verb = if dry_run { "would move" } else { "moved" };
                println!(
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
            if apply && !yes {
                if !std::io::stdin().is_terminal() {
                    return Err(Error::input(
                        "--apply needs confirmation",
                        "pass --apply --yes, or run on a terminal to confirm",
                    ));
                }
                eprint!(
                    "store the values of these environment variables in the secret store? [y/N] "
                );
                let mut line = String::new();
                let _ = std::io::stdin().read_line(&mut line);
                if !matches!(line.trim(), "y" | "Y" | "yes") {
                    eprintln!("nothing changed");
                    return Ok(exit::ERROR);
                }
            }
            let report = auth::migrate_from_env(&mut ctx, apply)?;
            if json {
                output::json(&serde_json::json!({ "applied": apply, "profiles": report }));
            } else if report.is_empty() {
                println!("no api-key profiles to migrate");
            } else {
                for m in &report {
                    println!("{}: {} ({})", m.id, m.outcome, m.env_var);
                }
                if !apply && report.iter().any(|m| m.outcome == "would migrate") {
                    println!("dry run: nothing changed; run with --apply --yes to migrate");
                }
            }
            Ok(exit::OK)
        }
    }
}
