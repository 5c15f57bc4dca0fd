//! `craik team`: the PostgreSQL team store (docs/team.md).

use std::path::PathBuf;

use clap::{Args, Subcommand};

use craik::exit;
use craik::team;

use super::output::{self, outln};

#[derive(Debug, Subcommand)]
pub enum TeamCommand {
    /// Create the team store's tables, roles and triggers (needs DDL
    /// rights; run once per database, by its administrator).
    Init(InitArgs),
    /// Join this home to a team store: register its chain as this
    /// login's and ship its receipts there from now on.
    Join(JoinArgs),
    /// The team store, this home's chain in it, and what is not shipped.
    Status {
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Name the person (the issuer and subject of their ID token) a
    /// database login belongs to: approvals and grants from another
    /// machine count only when the login that shipped them is the person
    /// they name. The store's administrator's command.
    #[command(subcommand)]
    Member(MemberCommand),
    /// The logins the administrator named, and who each is.
    Members {
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Copy this home's receipts into its chain now (all of them, once;
    /// running it again ships only what is new), then check the chain.
    MigrateLocal {
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum MemberCommand {
    /// Name the person a login belongs to (again: replaces it).
    Add(MemberAddArgs),
    /// Take a login out of the members: its approvals and grants stop
    /// counting on other machines.
    Remove(MemberRemoveArgs),
}

/// The administrator's connection.
#[derive(Debug, Args)]
pub struct AdminArgs {
    /// postgres://USER@HOST:PORT/DB of the store's administrator (default:
    /// CRAIK_AUDIT_URL); no password in it.
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    /// Read the administrator's password from standard input (else a
    /// .pgpass file, or none).
    #[arg(long)]
    password_stdin: bool,
    /// A CA certificate (PEM) to trust for the server's TLS.
    #[arg(long, value_name = "FILE")]
    ca_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct MemberAddArgs {
    /// The database login (a craik_writer).
    login: String,
    /// The subject (sub) of the person's ID token.
    #[arg(long, value_name = "SUB")]
    subject: String,
    /// Their identity provider's issuer URL (default: CRAIK_OIDC_ISSUER).
    #[arg(long, value_name = "URL")]
    issuer: Option<String>,
    /// A group other machines count for them (repeatable): approver and
    /// admin rules read these, never the groups a receipt claims.
    #[arg(long = "group", value_name = "G")]
    groups: Vec<String>,
    #[command(flatten)]
    admin: AdminArgs,
}

#[derive(Debug, Args)]
pub struct MemberRemoveArgs {
    /// The database login.
    login: String,
    #[command(flatten)]
    admin: AdminArgs,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// postgres://USER@HOST:PORT/DB (default: CRAIK_AUDIT_URL); no
    /// password in it.
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    /// Read the database password from standard input (else a .pgpass
    /// file, or none).
    #[arg(long)]
    password_stdin: bool,
    /// A CA certificate (PEM) to trust for the server's TLS.
    #[arg(long, value_name = "FILE")]
    ca_file: Option<PathBuf>,
    /// The team's shared audit key, as a secret reference (env:NAME or
    /// file:PATH holding 64 hex digits): the store keeps a check of it,
    /// and every home must join with it, so identity hashes agree.
    #[arg(long, value_name = "REF")]
    audit_key: Option<String>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct JoinArgs {
    /// postgres://USER@HOST:PORT/DB (default: CRAIK_AUDIT_URL); no
    /// password in it.
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    /// Read the database password from standard input; it is kept in the
    /// secret store (else a .pgpass file, or none).
    #[arg(long)]
    password_stdin: bool,
    /// A CA certificate (PEM) to trust for the server's TLS.
    #[arg(long, value_name = "FILE")]
    ca_file: Option<PathBuf>,
    /// A name for this home in the team's listings (default: the host
    /// name).
    #[arg(long, value_name = "NAME")]
    label: Option<String>,
    /// Join to read only, with an auditor's craik_reader login: this home
    /// gets no chain of its own and ships nothing.
    #[arg(long)]
    reader: bool,
    /// The team's shared audit key (env:NAME or file:PATH), when its
    /// store was made with one: it becomes this home's audit key.
    #[arg(long, value_name = "REF")]
    audit_key: Option<String>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

fn url_of(url: Option<String>) -> craik::Result<String> {
    url.or_else(|| {
        std::env::var("CRAIK_AUDIT_URL")
            .ok()
            .filter(|v| !v.trim().is_empty())
    })
    .ok_or_else(|| {
        craik::Error::input(
            "no team store named",
            "pass --url postgres://USER@HOST:PORT/DB or set CRAIK_AUDIT_URL",
        )
    })
}

/// Reads a secret reference given for an audit key (never the key in
/// argv).
fn audit_key(r: Option<&str>) -> craik::Result<Option<zeroize::Zeroizing<String>>> {
    let Some(r) = r else {
        return Ok(None);
    };
    let bad = |e: String| {
        craik::Error::input(
            format!("--audit-key: {e}"),
            "name where the key is: --audit-key env:NAME or --audit-key file:PATH",
        )
    };
    let parsed = craik::secret::reference::SecretRef::parse(r).map_err(|e| bad(e.to_string()))?;
    Ok(Some(parsed.resolve().map_err(|e| bad(e.to_string()))?))
}

fn password(stdin: bool) -> craik::Result<Option<String>> {
    if !stdin {
        return Ok(None);
    }
    let p = craik::term::read_secret_stdin()?;
    Ok(Some(p.as_str().to_string()))
}

pub fn run(cmd: TeamCommand) -> craik::Result<i32> {
    match cmd {
        TeamCommand::Init(a) => {
            let url = url_of(a.url)?;
            let pw = password(a.password_stdin)?;
            let key = audit_key(a.audit_key.as_deref())?;
            let version = team::init(
                &url,
                pw.as_deref(),
                a.ca_file.as_deref(),
                key.as_deref().map(String::as_str),
            )?;
            if a.json {
                output::json(&serde_json::json!({"schema_version": version}));
            } else {
                outln!("the team store at {url} has craik's schema (version {version})");
                outln!(
                    "grant its roles to your team's logins: GRANT craik_writer TO alice; GRANT craik_reader TO auditor;"
                );
            }
            Ok(exit::OK)
        }
        TeamCommand::Join(a) => {
            let mut ctx = super::context()?;
            let url = url_of(a.url)?;
            let pw = password(a.password_stdin)?;
            let label = a.label.unwrap_or_else(|| {
                std::fs::read_to_string("/etc/hostname")
                    .map(|h| h.trim().to_string())
                    .unwrap_or_default()
            });
            let j = team::join(
                &mut ctx,
                &url,
                team::JoinOptions {
                    password: pw,
                    ca_file: a.ca_file,
                    label,
                    reader: a.reader,
                    audit_key: audit_key(a.audit_key.as_deref())?,
                },
            )?;
            let shipped = team::ship(&mut ctx)?.unwrap_or_default();
            if a.json {
                output::json(&serde_json::json!({
                    "home_id": j.config.home_id, "audit_url": j.config.audit_url,
                    "shipped": shipped.shipped, "head": shipped.head,
                }));
            } else if j.config.reader {
                outln!("joined {url} to read (receipts list, export and verify --team)");
            } else {
                outln!(
                    "joined {url} as home {}; {} receipt(s) shipped, its chain holds {}",
                    j.config.home_id,
                    shipped.shipped,
                    shipped.head
                );
            }
            Ok(exit::OK)
        }
        TeamCommand::Status { json } => {
            let mut ctx = super::context()?;
            let s = team::status(&mut ctx)?;
            if json {
                output::json(&serde_json::to_value(&s).unwrap_or_default());
            } else {
                outln!("team store: {}", s.audit_url);
                outln!("home:       {}", s.home_id);
                outln!(
                    "receipts:   {} here, {} in the store, {} not shipped (limit {})",
                    s.local_seq,
                    s.shipped_seq,
                    s.backlog,
                    s.max_backlog
                );
                outln!(
                    "server:     {}",
                    if s.reachable {
                        "answers"
                    } else {
                        "does not answer"
                    }
                );
                if let Some(t) = s.last_shipped_at {
                    outln!("shipped:    {}", t.to_rfc3339());
                }
                if let Some(e) = &s.last_error {
                    outln!("last error: {}", craik::term::printable(e));
                }
            }
            Ok(if s.reachable { exit::OK } else { exit::ERROR })
        }
        TeamCommand::Member(MemberCommand::Add(a)) => {
            let issuer = a
                .issuer
                .or_else(|| {
                    std::env::var("CRAIK_OIDC_ISSUER")
                        .ok()
                        .filter(|v| !v.trim().is_empty())
                })
                .ok_or_else(|| {
                    craik::Error::input(
                        "no issuer named",
                        "pass --issuer URL (the iss of the person's ID token) or set CRAIK_OIDC_ISSUER",
                    )
                })?;
            let url = url_of(a.admin.url)?;
            let pw = password(a.admin.password_stdin)?;
            team::add_member(
                &url,
                pw.as_deref(),
                a.admin.ca_file.as_deref(),
                &a.login,
                &team::store::Person {
                    issuer: issuer.clone(),
                    subject: a.subject.clone(),
                    groups: a.groups.clone(),
                },
            )?;
            outln!(
                "login {} is {} of {issuer} in the team store, in groups [{}]",
                a.login,
                a.subject,
                a.groups.join(", ")
            );
            Ok(exit::OK)
        }
        TeamCommand::Member(MemberCommand::Remove(a)) => {
            let url = url_of(a.admin.url)?;
            let pw = password(a.admin.password_stdin)?;
            if team::remove_member(&url, pw.as_deref(), a.admin.ca_file.as_deref(), &a.login)? {
                outln!("login {} is no longer a member", a.login);
                Ok(exit::OK)
            } else {
                Err(craik::Error::input(
                    format!("login {} is not a member", a.login),
                    "list the members with: craik team members",
                ))
            }
        }
        TeamCommand::Members { json } => {
            let ctx = super::context()?;
            let list = team::members(&ctx)?;
            if json {
                output::json(&serde_json::json!({ "members": list }));
            } else if list.is_empty() {
                outln!(
                    "no members named; the administrator names them with: craik team member add"
                );
            } else {
                let mut t = output::table(&["LOGIN", "SUBJECT", "ISSUER", "GROUPS", "ADDED", "BY"]);
                for m in list {
                    t.add_row(vec![
                        m.login,
                        m.subject,
                        m.issuer,
                        m.groups.join(", "),
                        m.added_at,
                        m.added_by,
                    ]);
                }
                output::print_table(&t);
            }
            Ok(exit::OK)
        }
        TeamCommand::MigrateLocal { json } => {
            let mut ctx = super::context()?;
            let shipped = team::ship(&mut ctx)?.ok_or(team::TeamError::NotJoined)?;
            let home_id = team::config(&ctx.home)?
                .map(|c| c.home_id)
                .unwrap_or_default();
            let chains = team::verify(&mut ctx, &[])?;
            let mine = chains.iter().find(|c| c.home_id == home_id);
            let ok = mine.is_some_and(|c| c.damage.is_none() && c.receipts == shipped.head)
                && shipped.head == shipped.local;
            if json {
                output::json(&serde_json::json!({
                    "shipped": shipped.shipped, "head": shipped.head, "local": shipped.local,
                    "verified": ok,
                }));
            } else {
                outln!(
                    "{} receipt(s) shipped; the chain holds {} of this home's {}, {}",
                    shipped.shipped,
                    shipped.head,
                    shipped.local,
                    if ok { "verified" } else { "NOT verified" }
                );
            }
            Ok(if ok { exit::OK } else { exit::ERROR })
        }
    }
}
