//! Team mode: every home's receipts in one PostgreSQL store, each home on
//! its own chain, nobody able to rewrite another's (docs/team.md).
//!
//! Durability: a receipt is durable in the home's own `audit.db` before
//! the credential leaves (as without a team), then shipped, verbatim (the
//! same seq and hashes), to the home's chain in PostgreSQL. Shipping runs
//! after every craik command that may have written receipts and in a
//! running proxy; it resumes from the chain's head, so a cut connection or
//! a server restart mid-batch loses and duplicates nothing (a batch is one
//! transaction; the database refuses a receipt that does not follow its
//! chain's head). What is not shipped yet is the backlog; at
//! `max_backlog` (10,000 by default) new authorizations are refused
//! (exit 5) until it drains.

pub mod store;

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::audit::Receipt;
use crate::audit::chain::receipt_hash;
use crate::context::Context;
use crate::exit;
use crate::home::Home;
use crate::secret::Secrets;
use crate::secret::seal::{Domain, SealKey};
use store::Db;

pub const CONFIG_FILE: &str = "team.json";
pub const STATE_FILE: &str = "team-state.json";
/// Receipts not yet shipped at which new authorizations stop.
pub const DEFAULT_MAX_BACKLOG: i64 = 10_000;
/// Receipts per shipping transaction.
const BATCH: usize = 1_000;
/// The secret store's purpose for the database password.
pub const PASSWORD_PURPOSE: &str = "team database password";

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TeamError {
    #[error("this home is not in a team")]
    NotJoined,
    #[error("the team store URL: {0}")]
    Url(String),
    #[error("the team store: {0}")]
    Config(String),
    #[error("the team store is unreachable: {0}")]
    Unreachable(String),
    #[error("the team store refused: {0}")]
    Db(String),
    #[error("home {0} is not registered in the team store")]
    NotRegistered(String),
    #[error("the team store has no craik schema (version {found}, this craik needs {needed})")]
    Schema { found: i64, needed: i64 },
    #[error(
        "{backlog} receipts are not in the team store yet (the limit is {max}); new calls wait until they are"
    )]
    Backlog { backlog: i64, max: i64 },
    #[error("this home's chain in the team store differs from its audit log at seq {seq}: {why}")]
    Diverged { seq: i64, why: String },
    #[error("team.json was written or edited outside craik")]
    ConfigForged,
    #[error(
        "the team's grants are unknown: the team store does not answer ({why}) and this home's copy of them is {age}"
    )]
    GrantsUnknown { why: String, age: String },
    #[error("the policy in force names the team store {pinned}, and this home {found}")]
    NotPinned { pinned: String, found: String },
}

impl TeamError {
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            TeamError::NotJoined => {
                "join one: craik team join --url postgres://USER@HOST/DB --password-stdin".into()
            }
            TeamError::Url(_) => {
                "write it as postgres://USER@HOST:PORT/DB, with no password in it".into()
            }
            TeamError::Config(_) => "check --ca-file and the URL".into(),
            TeamError::Unreachable(_) | TeamError::Backlog { .. } => {
                "see craik team status; receipts stay in this home's audit log and are shipped when the server answers".into()
            }
            TeamError::Db(_) => {
                "check the login's grants (GRANT craik_writer TO ...; see docs/team.md)".into()
            }
            TeamError::NotRegistered(_) => "run craik team join again".into(),
            TeamError::Schema { .. } => {
                "have someone with DDL rights run craik team init against it".into()
            }
            TeamError::Diverged { .. } => {
                "this home's log or the store was changed: check both with craik receipts verify and craik receipts verify --team".into()
            }
            TeamError::ConfigForged => {
                "join again: craik team join --url ... (a receipt records the refusal)".into()
            }
            TeamError::GrantsUnknown { .. } => {
                "calls wait until the team store answers again: see craik team status".into()
            }
            TeamError::NotPinned { pinned, .. } => {
                format!("join it: craik team join --url {pinned} --password-stdin")
            }
        })
    }

    pub fn exit_code(&self) -> i32 {
        match self {
            TeamError::Backlog { .. }
            | TeamError::GrantsUnknown { .. }
            | TeamError::NotPinned { .. } => exit::AUDIT_UNAVAILABLE,
            _ => exit::ERROR,
        }
    }
}

/// `team.json`: where this home ships, as whom. Sealed: an edit (another
/// server, a larger backlog) is refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamConfig {
    pub version: u32,
    /// `postgres://USER@HOST:PORT/DB`, no password.
    pub audit_url: String,
    /// This home's chain.
    pub home_id: String,
    /// The database password's handle in the secret store, if any
    /// (otherwise a `.pgpass` file, or none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_handle: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    pub max_backlog: i64,
    /// Joined to read only (an auditor's `craik_reader` login): no chain
    /// of its own, nothing shipped.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reader: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seal: Option<String>,
}

fn sealed_bytes(c: &TeamConfig) -> Vec<u8> {
    serde_json::to_vec(&TeamConfig {
        seal: None,
        ..c.clone()
    })
    .expect("config serializes")
}

/// This home's team configuration, if it joined one.
pub fn config(home: &Home) -> crate::Result<Option<TeamConfig>> {
    let Some(bytes) = home.read(CONFIG_FILE)? else {
        return Ok(None);
    };
    let c: TeamConfig = serde_json::from_slice(&bytes)
        .map_err(|e| TeamError::Config(format!("{CONFIG_FILE}: {e}")))?;
    let key = SealKey::load(&Secrets::new(home))?;
    if !c
        .seal
        .as_deref()
        .is_some_and(|s| key.verify(Domain::Team, &sealed_bytes(&c), s))
    {
        return Err(TeamError::ConfigForged.into());
    }
    Ok(Some(c))
}

fn save_config(ctx: &Context, c: &TeamConfig) -> crate::Result<()> {
    let key = SealKey::load(&ctx.secrets)?;
    let sealed = TeamConfig {
        seal: Some(key.seal(Domain::Team, &sealed_bytes(c))),
        ..c.clone()
    };
    let mut bytes = serde_json::to_vec_pretty(&sealed).expect("config serializes");
    bytes.push(b'\n');
    ctx.home.write_atomic(CONFIG_FILE, &bytes)?;
    Ok(())
}

/// `team-state.json`: how far shipping got, and its last error. Sealed:
/// one that does not verify counts as nothing shipped, so an edit can
/// only make the backlog gate stricter.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ShipState {
    /// The chain's head in the team store, as last seen.
    pub shipped_seq: i64,
    pub last_shipped_at: Option<DateTime<Utc>>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seal: Option<String>,
}

fn state_bytes(s: &ShipState) -> Vec<u8> {
    serde_json::to_vec(&ShipState {
        seal: None,
        ..s.clone()
    })
    .unwrap_or_default()
}

fn state(home: &Home) -> ShipState {
    let Some(s) = home
        .read(STATE_FILE)
        .ok()
        .flatten()
        .and_then(|b| serde_json::from_slice::<ShipState>(&b).ok())
    else {
        return ShipState::default();
    };
    let sealed = SealKey::load(&Secrets::new(home)).is_ok_and(|k| {
        s.seal
            .as_deref()
            .is_some_and(|seal| k.verify(Domain::Team, &state_bytes(&s), seal))
    });
    if sealed { s } else { ShipState::default() }
}

fn save_state(home: &Home, s: &ShipState) {
    let Ok(key) = SealKey::load(&Secrets::new(home)) else {
        return;
    };
    let sealed = ShipState {
        seal: Some(key.seal(Domain::Team, &state_bytes(s))),
        ..s.clone()
    };
    if let Ok(bytes) = serde_json::to_vec_pretty(&sealed) {
        let _ = home.write_atomic(STATE_FILE, &bytes);
    }
}

/// Reads a `.pgpass`-style file (`PGPASSFILE`, else `~/.pgpass`): the
/// password of the first line matching host, port, database and user
/// (`*` matches anything; `\:` and `\\` escape).
fn pgpass(url: &str) -> Option<String> {
    let config: postgres::Config = url.parse().ok()?;
    let host = match config.get_hosts().first()? {
        postgres::config::Host::Tcp(h) => h.clone(),
        postgres::config::Host::Unix(_) => "localhost".into(),
    };
    let port = config
        .get_ports()
        .first()
        .copied()
        .unwrap_or(5432)
        .to_string();
    let user = config.get_user()?.to_string();
    let db = config.get_dbname().unwrap_or(&user).to_string();
    let path = std::env::var_os("PGPASSFILE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".pgpass")))?;
    // Like libpq: a file others can read is ignored.
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(&path).ok()?;
    if meta.mode() & 0o077 != 0 {
        return None;
    }
    let text = std::fs::read_to_string(&path).ok()?;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let mut fields = Vec::new();
        let mut cur = String::new();
        let mut chars = line.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => cur.extend(chars.next()),
                ':' if fields.len() < 4 => fields.push(std::mem::take(&mut cur)),
                c => cur.push(c),
            }
        }
        fields.push(cur);
        if fields.len() != 5 {
            continue;
        }
        let want = [&host, &port, &db, &user];
        if fields[..4]
            .iter()
            .zip(want)
            .all(|(f, w)| f == "*" || f == w)
        {
            return Some(fields[4].clone());
        }
    }
    None
}

fn password(secrets: &Secrets, c: &TeamConfig) -> crate::Result<Option<String>> {
    match &c.password_handle {
        Some(h) => {
            let bytes = secrets.get_for(h, PASSWORD_PURPOSE)?;
            Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
        }
        None => Ok(pgpass(&c.audit_url)),
    }
}

fn open(secrets: &Secrets, c: &TeamConfig) -> crate::Result<Db> {
    let pw = password(secrets, c)?;
    Ok(Db::connect(
        &c.audit_url,
        pw.as_deref(),
        c.ca_file.as_deref().map(std::path::Path::new),
    )?)
}

/// Whether `url` (a home's `audit_url`) is the store `pin` names (an
/// envelope's `team_store`): the same hosts, ports and database, whoever
/// the user (each member logs in as their own).
pub fn same_store(pin: &str, url: &str) -> bool {
    let parse = |u: &str| -> Option<(Vec<String>, Vec<u16>, String)> {
        let c: postgres::Config = u.parse().ok()?;
        let hosts = c
            .get_hosts()
            .iter()
            .map(|h| match h {
                postgres::config::Host::Tcp(h) => h.to_ascii_lowercase(),
                postgres::config::Host::Unix(p) => p.display().to_string(),
            })
            .collect();
        let mut ports = c.get_ports().to_vec();
        if ports.is_empty() {
            ports.push(5432);
        }
        Some((hosts, ports, c.get_dbname().unwrap_or_default().to_string()))
    };
    match (parse(pin), parse(url)) {
        (Some(a), Some(b)) => !a.0.is_empty() && !a.2.is_empty() && a == b,
        _ => false,
    }
}

/// This home's team and a connection to its store; `None` when the home
/// is in no team.
pub fn connect(ctx: &Context) -> crate::Result<Option<(TeamConfig, Db)>> {
    let Some(c) = config(&ctx.home)? else {
        return Ok(None);
    };
    let db = open(&ctx.secrets, &c)?;
    Ok(Some((c, db)))
}

/// The administrator's connection (`team init`, `team member`): the URL's
/// user, with `password` or a `.pgpass` line.
fn admin(
    url: &str,
    password: Option<&str>,
    ca_file: Option<&std::path::Path>,
) -> crate::Result<Db> {
    let pw = password.map(str::to_string).or_else(|| pgpass(url));
    Ok(Db::connect(url, pw.as_deref(), ca_file)?)
}

/// `craik team member add`: names the person a login belongs to. Only the
/// store's administrator (the tables' owner) may.
pub fn add_member(
    url: &str,
    password: Option<&str>,
    ca_file: Option<&std::path::Path>,
    login: &str,
    person: &store::Person,
) -> crate::Result<()> {
    let (issuer, subject) = (person.issuer.as_str(), person.subject.as_str());
    for (what, v) in [("login", login), ("issuer", issuer), ("subject", subject)]
        .into_iter()
        .chain(person.groups.iter().map(|g| ("group", g.as_str())))
    {
        if v.trim().is_empty() || v.chars().any(char::is_control) {
            return Err(crate::Error::input(
                format!("an empty or unprintable {what}"),
                "name the login, and the issuer and subject of the person's ID token (craik whoami shows them)",
            ));
        }
    }
    let mut db = admin(url, password, ca_file)?;
    needs_schema(&mut db)?;
    db.add_member(login, issuer, subject, &person.groups)?;
    Ok(())
}

/// `craik team member remove`: whether the login was a member.
pub fn remove_member(
    url: &str,
    password: Option<&str>,
    ca_file: Option<&std::path::Path>,
    login: &str,
) -> crate::Result<bool> {
    let mut db = admin(url, password, ca_file)?;
    needs_schema(&mut db)?;
    Ok(db.remove_member(login)?)
}

/// `craik team members`: the logins the administrator named, read through
/// this home's own login.
pub fn members(ctx: &Context) -> crate::Result<Vec<store::Member>> {
    let (_, mut db) = connect(ctx)?.ok_or(TeamError::NotJoined)?;
    Ok(db.members()?)
}

fn needs_schema(db: &mut Db) -> Result<(), TeamError> {
    let found = db.schema_version()?;
    let needed = store::MIGRATIONS.last().map(|m| m.0).unwrap_or(0);
    if found < needed {
        return Err(TeamError::Schema { found, needed });
    }
    Ok(())
}

pub const GRANTS_FILE: &str = "team-grants.json";
/// How old this home's copy of the team's grants may be when the store
/// does not answer: past that, calls wait for it (exit 5), so cutting the
/// store off does not undo a revocation for long.
pub const GRANTS_MAX_AGE_SECS: i64 = 300;
/// How often an unchanged copy is written again (its age is what counts
/// when the store does not answer).
const GRANTS_REFRESH_SECS: i64 = 60;

/// A grant or revocation an admin made for the whole team (`auth grant
/// --team`), as the server vouches for it: shipped by the login of the
/// home whose chain holds it, the member it names; `groups` are the
/// member's in the roster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TeamGrant {
    pub home_id: String,
    /// `grant` or `grant_revoked`.
    pub kind: String,
    pub profile: String,
    pub issuer: String,
    pub subject: String,
    pub groups: Vec<String>,
    pub details: serde_json::Value,
    /// When the server took it: grants apply in this order.
    pub shipped_at: String,
    pub receipt: String,
}

/// `team-grants.json`: the last copy read, sealed (an edit is no copy).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct GrantsCopy {
    pulled_at: DateTime<Utc>,
    grants: Vec<TeamGrant>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    seal: Option<String>,
}

fn copy_bytes(c: &GrantsCopy) -> Vec<u8> {
    serde_json::to_vec(&GrantsCopy {
        seal: None,
        ..c.clone()
    })
    .unwrap_or_default()
}

fn read_grants(db: &mut Db) -> Result<Vec<TeamGrant>, TeamError> {
    let mut out = Vec::new();
    // In the order the server took them (the SQL's).
    for row in db.team_grants()? {
        let d: serde_json::Value = serde_json::from_str(&row.receipt.details).unwrap_or_default();
        if d.get("team") != Some(&serde_json::Value::Bool(true)) {
            continue;
        }
        // The maker as the server vouches for them, with the groups the
        // roster gives them (not those the receipt claims).
        let Some(p) = row.person().cloned() else {
            continue;
        };
        let r = row.receipt;
        out.push(TeamGrant {
            home_id: row.home_id,
            kind: r.kind,
            profile: r.auth_profile_id.unwrap_or_default(),
            issuer: p.issuer,
            subject: p.subject,
            groups: p.groups,
            details: d,
            shipped_at: row.shipped_at,
            receipt: r.id,
        });
    }
    Ok(out)
}

/// The team's grants (oldest first), read from the store now, else this
/// home's sealed copy if it is at most [`GRANTS_MAX_AGE_SECS`] old (else
/// exit 5); `None` when the home is in no team.
pub fn grants(ctx: &Context) -> crate::Result<Option<Vec<TeamGrant>>> {
    let Some(c) = config(&ctx.home)? else {
        return Ok(None);
    };
    let key = SealKey::load(&ctx.secrets)?;
    let copy = ctx
        .home
        .read(GRANTS_FILE)
        .ok()
        .flatten()
        .and_then(|b| serde_json::from_slice::<GrantsCopy>(&b).ok())
        .filter(|c| {
            c.seal
                .as_deref()
                .is_some_and(|s| key.verify(Domain::TeamGrants, &copy_bytes(c), s))
        });
    let age = copy
        .as_ref()
        .map(|c| (Utc::now() - c.pulled_at).num_seconds());
    match open(&ctx.secrets, &c).and_then(|mut db| Ok(read_grants(&mut db)?)) {
        Ok(grants) => {
            // Rewritten when the grants changed, or to keep the copy fresh
            // (a running proxy re-authorizes when the file changes).
            let same = copy.as_ref().is_some_and(|c| c.grants == grants)
                && age.is_some_and(|a| (0..GRANTS_REFRESH_SECS).contains(&a));
            if !same {
                let mut fresh = GrantsCopy {
                    pulled_at: Utc::now(),
                    grants: grants.clone(),
                    seal: None,
                };
                fresh.seal = Some(key.seal(Domain::TeamGrants, &copy_bytes(&fresh)));
                if let Ok(bytes) = serde_json::to_vec(&fresh) {
                    let _ = ctx.home.write_atomic(GRANTS_FILE, &bytes);
                }
            }
            Ok(Some(grants))
        }
        Err(e) => match (copy, age) {
            (Some(c), Some(a)) if (0..=GRANTS_MAX_AGE_SECS).contains(&a) => Ok(Some(c.grants)),
            (_, age) => Err(TeamError::GrantsUnknown {
                why: e.to_string(),
                age: match age {
                    Some(a) => format!("{a}s old (at most {GRANTS_MAX_AGE_SECS}s counts)"),
                    None => "missing".into(),
                },
            }
            .into()),
        },
    }
}

/// `craik team init`: applies the schema (DDL rights needed) and, given
/// a shared audit key, records its check so that every home joining hashes
/// identities alike. Returns the schema version.
pub fn init(
    url: &str,
    password: Option<&str>,
    ca_file: Option<&std::path::Path>,
    audit_key: Option<&str>,
) -> crate::Result<i64> {
    let check = match audit_key {
        Some(raw) => Some(crate::audit::identity::AuditKey::parse(raw)?.team_check()),
        None => None,
    };
    let mut db = admin(url, password, ca_file)?;
    let version = db.migrate()?;
    if let Some(c) = check {
        db.set_audit_key_check(&c)?;
    }
    Ok(version)
}

/// How a home joins (`craik team join`).
#[derive(Default)]
pub struct JoinOptions {
    /// The login's password, for the secret store.
    pub password: Option<String>,
    pub ca_file: Option<PathBuf>,
    pub label: String,
    /// Read only (a craik_reader login).
    pub reader: bool,
    /// The team's shared audit key, to adopt as this home's.
    pub audit_key: Option<zeroize::Zeroizing<String>>,
}

/// What `team join` did.
pub struct Joined {
    pub config: TeamConfig,
    /// Receipts of this home already in its chain.
    pub head: i64,
}

/// `craik team join`: registers this home's chain as this login's and
/// writes `team.json`. The password, when given, goes to the secret store.
pub fn join(ctx: &mut Context, url: &str, opts: JoinOptions) -> crate::Result<Joined> {
    let JoinOptions {
        password,
        ca_file,
        label,
        reader,
        audit_key,
    } = opts;
    let label = label.as_str();
    // The team's shared audit key, checked against the store's record of
    // it, is adopted before anything is hashed.
    let mut db = {
        let pw = password.clone().or_else(|| pgpass(url));
        Db::connect(url, pw.as_deref(), ca_file.as_deref())?
    };
    needs_schema(&mut db)?;
    let team_check = db.audit_key_check()?;
    match (&team_check, &audit_key) {
        (Some(want), Some(raw)) => {
            let k = crate::audit::identity::AuditKey::parse(raw)?;
            if k.team_check() != *want {
                return Err(crate::Error::input(
                    "this is not the team's audit key (the team store's check of it differs)",
                    "ask the team store's administrator for the key team init was given",
                ));
            }
            crate::audit::identity::AuditKey::adopt(&ctx.secrets, raw)?;
        }
        (None, Some(_)) => {
            return Err(crate::Error::input(
                "the team store names no shared audit key",
                "its administrator sets one with: craik team init --audit-key REF (or join without --audit-key)",
            ));
        }
        (Some(want), None) => {
            if ctx.audit_key()?.team_check() != *want {
                return Err(crate::Error::input(
                    "the team hashes identities with a shared audit key, and this home's is another",
                    "join with it: craik team join ... --audit-key env:NAME (or file:PATH)",
                ));
            }
        }
        (None, None) => {}
    }
    ctx.audit()?;
    let existing = config(&ctx.home).ok().flatten();
    let home_id = match &existing {
        Some(c) => c.home_id.clone(),
        None => {
            let mut b = [0u8; 16];
            rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut b);
            hex::encode(b)
        }
    };
    // A chain in the store starts at receipt 1: a home whose oldest
    // receipts were archived and pruned before it joined could never ship
    // them, and its backlog would grow until it stopped every call.
    if !reader {
        let (pruned, _) = ctx.audit()?.0.base()?;
        let stored = match &existing {
            Some(_) => match db.head(&home_id) {
                Ok((seq, _)) => seq,
                Err(TeamError::NotRegistered(_)) => 0,
                Err(e) => return Err(e.into()),
            },
            None => 0,
        };
        if stored < pruned {
            return Err(crate::Error::input(
                format!(
                    "this home's receipts 1 to {pruned} were archived and pruned, and a home's chain in the team store starts at receipt 1"
                ),
                "join from a home whose log was never pruned (a new CRAIK_HOME); this one's log and archives still verify with craik receipts verify --archive FILE",
            ));
        }
    }
    let head = if reader {
        // Reads at least something, so a login without the reader role
        // is found now, not at the first query.
        db.chains()?;
        0
    } else {
        db.register(&home_id, label)?;
        db.head(&home_id)?.0
    };
    let password_handle = match password {
        Some(p) => Some(ctx.secrets.put(PASSWORD_PURPOSE, p.as_bytes())?),
        None => None,
    };
    let c = TeamConfig {
        version: 1,
        audit_url: url.to_string(),
        home_id,
        password_handle,
        ca_file: ca_file.map(|p| p.display().to_string()),
        max_backlog: DEFAULT_MAX_BACKLOG,
        reader,
        seal: None,
    };
    let operator = crate::operator::current(ctx).ok().flatten();
    ctx.record(
        crate::audit::NewReceipt::new(
            crate::audit::ReceiptKind::TeamJoined,
            crate::audit::Status::Ok,
        )
        .operator(operator)
        .detail("audit_url", c.audit_url.as_str())
        .detail("home_id", c.home_id.as_str())
        .detail("reader", reader)
        .detail("shared_audit_key", team_check.is_some())
        .detail(
            "previous_url",
            existing.as_ref().map(|o| o.audit_url.clone()),
        ),
    )?;
    save_config(ctx, &c)?;
    if let Some(old) = existing.and_then(|o| o.password_handle)
        && Some(&old) != c.password_handle.as_ref()
    {
        let _ = ctx.secrets.delete(&old);
    }
    Ok(Joined { config: c, head })
}

/// What one shipping round did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Shipped {
    pub shipped: i64,
    pub head: i64,
    pub local: i64,
}

/// Ships what the team store lacks of this home's chain; `None` when the
/// home is in no team. The result (or the error) is kept in
/// `team-state.json` for `team status`.
pub fn ship(ctx: &mut Context) -> crate::Result<Option<Shipped>> {
    let Some(c) = config(&ctx.home)?.filter(|c| !c.reader) else {
        return Ok(None);
    };
    let _lock = ctx.home.lock("team-ship")?;
    let mut st = state(&ctx.home);
    st.last_attempt_at = Some(Utc::now());
    let result = ship_to(ctx, &c, &mut st);
    if let Err(e) = &result {
        st.last_error = Some(e.to_string());
    }
    save_state(&ctx.home, &st);
    result.map(Some)
}

fn ship_to(ctx: &mut Context, c: &TeamConfig, st: &mut ShipState) -> crate::Result<Shipped> {
    let mut db = open(&ctx.secrets, c)?;
    let (mut head, head_hash) = db.head(&c.home_id)?;
    let log = ctx.audit()?;
    // The store's head must be this log's receipt at that seq (or, when
    // it is the last one pruned, the archive record's hash of it).
    if head > 0 {
        let (pruned, pruned_hash) = log.0.base()?;
        let mine = if head == pruned {
            pruned_hash
        } else {
            log.0
                .get(&head.to_string())
                .map_err(|e| TeamError::Diverged {
                    seq: head,
                    why: format!("this log has no receipt {head}: {e}"),
                })?
                .hash
        };
        if mine != head_hash {
            return Err(TeamError::Diverged {
                seq: head,
                why: "the hashes differ".into(),
            }
            .into());
        }
    }
    let local = log.0.tail()?.map(|t| t.0).unwrap_or(0);
    if head > local {
        return Err(TeamError::Diverged {
            seq: local + 1,
            why: format!("the store's chain goes on to seq {head}, this log ends at {local}"),
        }
        .into());
    }
    // Only a head that is this log's counts as shipped.
    st.shipped_seq = head;
    let mut shipped = 0;
    loop {
        let batch = ctx.audit()?.0.after(head, BATCH)?;
        let Some(last) = batch.last() else { break };
        let last = last.seq;
        db.append(&c.home_id, &batch)?;
        shipped += batch.len() as i64;
        head = last;
        st.shipped_seq = head;
        st.last_shipped_at = Some(Utc::now());
    }
    st.last_error = None;
    Ok(Shipped {
        shipped,
        head,
        local,
    })
}

/// After a command: ships when the home is in a team, quietly (a failure
/// is kept for `team status`, and the backlog gate decides what it means).
pub fn ship_quietly(ctx: &mut Context) {
    if ctx.home.path(CONFIG_FILE).exists() {
        let _ = ship(ctx);
    }
}

/// The pipeline's gate: refuses a new authorization when the backlog is
/// at `max_backlog`, after trying to ship it.
pub fn check_backlog(ctx: &mut Context) -> crate::Result<()> {
    let Some(mut c) = config(&ctx.home)?.filter(|c| !c.reader) else {
        return Ok(());
    };
    // `CRAIK_TEAM_MAX_BACKLOG` can only lower the limit.
    if let Some(n) = std::env::var("CRAIK_TEAM_MAX_BACKLOG")
        .ok()
        .and_then(|v| v.parse::<i64>().ok())
        .filter(|n| *n >= 0)
    {
        c.max_backlog = c.max_backlog.min(n);
    }
    let local = ctx.audit()?.0.tail()?.map(|t| t.0).unwrap_or(0);
    let backlog_now = |home: &Home| {
        let shipped = state(home).shipped_seq;
        if shipped > local {
            local
        } else {
            local - shipped
        }
    };
    if backlog_now(&ctx.home) < c.max_backlog {
        return Ok(());
    }
    let _ = ship(ctx);
    let backlog = backlog_now(&ctx.home);
    if backlog < c.max_backlog {
        return Ok(());
    }
    Err(TeamError::Backlog {
        backlog,
        max: c.max_backlog,
    }
    .into())
}

/// `craik team status`.
#[derive(Debug, Serialize)]
pub struct Status {
    pub audit_url: String,
    pub home_id: String,
    pub local_seq: i64,
    /// The chain's head in the store, live (or as last seen when the
    /// server does not answer).
    pub shipped_seq: i64,
    pub backlog: i64,
    pub max_backlog: i64,
    pub reachable: bool,
    pub last_shipped_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

pub fn status(ctx: &mut Context) -> crate::Result<Status> {
    let c = config(&ctx.home)?.ok_or(TeamError::NotJoined)?;
    let shipped = if c.reader {
        open(&ctx.secrets, &c).and_then(|mut db| Ok(db.chains().map(|_| None)?))
    } else {
        ship(ctx)
    };
    let st = state(&ctx.home);
    let local = ctx.audit()?.0.tail()?.map(|t| t.0).unwrap_or(0);
    Ok(Status {
        audit_url: c.audit_url.clone(),
        home_id: c.home_id.clone(),
        local_seq: local,
        shipped_seq: st.shipped_seq,
        backlog: local - st.shipped_seq,
        max_backlog: c.max_backlog,
        reachable: shipped.is_ok(),
        last_shipped_at: st.last_shipped_at,
        last_error: st.last_error,
    })
}

/// `receipts list/export --team`: every chain's receipts matching
/// `filter` (a profile pattern as in `receipts list`; `limit` counts
/// across chains), each with its home id, to `f`.
pub fn query(
    ctx: &mut Context,
    filter: &crate::audit::store::query::Filter,
    mut f: impl FnMut(&str, Receipt) -> std::io::Result<()>,
) -> crate::Result<()> {
    let c = config(&ctx.home)?.ok_or(TeamError::NotJoined)?;
    let pattern = match filter.profile.as_ref().filter(|p| p.contains(['*', '?'])) {
        Some(p) => Some(
            crate::pattern::PatternSet::new(std::slice::from_ref(p)).map_err(|e| {
                crate::Error::input(format!("--profile {p:?}: {e}"), "patterns use *, ** and ?")
            })?,
        ),
        None => None,
    };
    let mut db = open(&ctx.secrets, &c)?;
    let mut left = filter.limit.unwrap_or(usize::MAX);
    db.query(filter, |home, r| {
        if left == 0 {
            return Ok(false);
        }
        if let Some(set) = &pattern
            && !r
                .auth_profile_id
                .as_deref()
                .is_some_and(|id| set.is_match(id))
        {
            return Ok(true);
        }
        left -= 1;
        f(&home, r).map_err(|e| TeamError::Config(format!("writing the output: {e}")))?;
        Ok(left > 0)
    })?;
    Ok(())
}

/// `receipts stats --team`: counts over every chain (a read-only login
/// suffices).
pub fn stats(ctx: &Context) -> crate::Result<crate::audit::store::query::Stats> {
    let (_, mut db) = connect(ctx)?.ok_or(TeamError::NotJoined)?;
    Ok(db.stats()?)
}

/// A team checkpoint: every chain's head, signed with the signing home's
/// checkpoint key. Kept outside the store, it catches a rewrite of a
/// chain with recomputed hashes, or a chain cut back, by whoever can
/// change the database.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamCheckpoint {
    pub version: u32,
    pub kind: String,
    pub created_at: String,
    pub chains: Vec<ChainHead>,
    pub public_key: String,
    pub signature: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainHead {
    pub home_id: String,
    pub seq: i64,
    pub hash: String,
}

fn checkpoint_message(created_at: &str, chains: &[ChainHead]) -> Vec<u8> {
    let mut m = format!("craik-team-checkpoint v1\n{created_at}\n");
    for c in chains {
        m.push_str(&format!("{} {} {}\n", c.home_id, c.seq, c.hash));
    }
    m.into_bytes()
}

/// `craik receipts checkpoint --team`: verifies every chain (a damaged
/// store is never signed), then signs their heads.
pub fn checkpoint(ctx: &mut Context) -> crate::Result<TeamCheckpoint> {
    let reports = verify(ctx, &[])?;
    if let Some((r, (seq, what))) = reports
        .iter()
        .find_map(|r| r.damage.as_ref().map(|d| (r, d)))
    {
        return Err(TeamError::Diverged {
            seq: *seq,
            why: format!(
                "home {}'s chain is damaged ({what}); craik will not sign it",
                r.home_id
            ),
        }
        .into());
    }
    // The heads verify checked, in its snapshot: nothing appended since
    // is signed unverified.
    let mut chains: Vec<ChainHead> = reports
        .iter()
        .map(|r| ChainHead {
            home_id: r.home_id.clone(),
            seq: r.receipts,
            hash: r.head_hash.clone(),
        })
        .collect();
    chains.sort_by(|a, b| a.home_id.cmp(&b.home_id));
    let created_at = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let (public_key, signature) = crate::audit::checkpoint::sign(
        &ctx.home,
        &ctx.secrets,
        &checkpoint_message(&created_at, &chains),
    )?;
    Ok(TeamCheckpoint {
        version: 1,
        kind: "team".into(),
        created_at,
        chains,
        public_key,
        signature,
    })
}

/// Reads a team checkpoint and checks its signature against `trusted`
/// (else the key it names, which proves nothing about who signed).
pub fn load_checkpoint(
    path: &std::path::Path,
    trusted: Option<&str>,
) -> crate::Result<TeamCheckpoint> {
    let bad = |why: String| TeamError::Config(format!("team checkpoint {}: {why}", path.display()));
    let bytes = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    let cp: TeamCheckpoint =
        serde_json::from_slice(&bytes).map_err(|e| bad(format!("not a team checkpoint: {e}")))?;
    if cp.version != 1 || cp.kind != "team" {
        return Err(bad("not a version 1 team checkpoint".into()).into());
    }
    if let Some(t) = trusted
        && t.trim() != cp.public_key.trim()
    {
        return Err(bad("signed by a key other than the trusted one (--public-key, else this home's audit-signing.pub)".into()).into());
    }
    if !crate::audit::checkpoint::signature_verifies(
        &cp.public_key,
        &checkpoint_message(&cp.created_at, &cp.chains),
        &cp.signature,
    ) {
        return Err(bad("the signature does not verify".into()).into());
    }
    Ok(cp)
}

/// One chain's verification.
#[derive(Debug, Serialize)]
pub struct ChainReport {
    pub home_id: String,
    pub label: String,
    pub receipts: i64,
    /// The hash of the last receipt verified.
    #[serde(skip)]
    pub head_hash: String,
    /// The first damage found: seq and what.
    pub damage: Option<(i64, String)>,
}

/// `craik receipts verify --team`: every chain in the store, each receipt's
/// hash recomputed and linked to the one before (a read-only login
/// suffices). Uses this home's team config for where and as whom.
/// With `checkpoints`, each chain must also still hold, at each signed
/// head's seq, the receipt with that hash.
pub fn verify(
    ctx: &mut Context,
    checkpoints: &[TeamCheckpoint],
) -> crate::Result<Vec<ChainReport>> {
    let c = config(&ctx.home)?.ok_or(TeamError::NotJoined)?;
    let mut db = open(&ctx.secrets, &c)?;
    // One snapshot: heads and receipts as they were together, however
    // much is shipped meanwhile.
    db.snapshot()?;
    let mut out = Vec::new();
    let chains = db.chains()?;
    // A chain a checkpoint signed that the store no longer has.
    for cp in checkpoints {
        for h in &cp.chains {
            if !chains.iter().any(|(id, _, _)| *id == h.home_id) {
                out.push(ChainReport {
                    home_id: h.home_id.clone(),
                    label: String::new(),
                    receipts: 0,
                    head_hash: String::new(),
                    damage: Some((
                        1,
                        format!(
                            "missing: the chain a team checkpoint signed at seq {} is gone",
                            h.seq
                        ),
                    )),
                });
            }
        }
    }
    for (home_id, label, head) in chains {
        let signed: Vec<&ChainHead> = checkpoints
            .iter()
            .flat_map(|cp| cp.chains.iter())
            .filter(|h| h.home_id == home_id)
            .collect();
        let mut prev = (0i64, crate::audit::chain::GENESIS.to_string());
        let mut damage = None;
        'chain: loop {
            let batch = db.receipts_after(&home_id, prev.0, head, 5_000)?;
            if batch.is_empty() {
                break;
            }
            for r in batch {
                let r = match r {
                    Ok(r) => r,
                    Err(seq) => {
                        damage = Some((seq, "modified: the row does not read as a receipt".into()));
                        break 'chain;
                    }
                };
                let why = if r.seq != prev.0 + 1 {
                    Some(format!("missing: expected seq {}", prev.0 + 1))
                } else if r.prev_hash != prev.1 {
                    Some("its prev_hash is not the hash before it".to_string())
                } else if receipt_hash(&r) != r.hash {
                    Some("modified: its hash does not match its fields".to_string())
                } else if signed.iter().any(|h| h.seq == r.seq && h.hash != r.hash) {
                    Some(
                        "rewritten: not the receipt a team checkpoint signed at this seq"
                            .to_string(),
                    )
                } else {
                    None
                };
                if let Some(w) = why {
                    damage = Some((r.seq, w));
                    break 'chain;
                }
                prev = (r.seq, r.hash);
            }
        }
        if damage.is_none() && prev.0 != head {
            damage = Some((prev.0 + 1, format!("truncated: the chain's head is {head}")));
        }
        if damage.is_none()
            && let Some(seq) = db.foreign_rows(&home_id)?
        {
            damage = Some((
                seq,
                "inserted: shipped by another login than the one the home is registered to"
                    .to_string(),
            ));
        }
        if damage.is_none()
            && let Some(h) = signed.iter().find(|h| h.seq > prev.0)
        {
            damage = Some((
                prev.0 + 1,
                format!(
                    "truncated: a team checkpoint signed this chain up to seq {}",
                    h.seq
                ),
            ));
        }
        out.push(ChainReport {
            home_id,
            label,
            receipts: prev.0,
            head_hash: prev.1,
            damage,
        });
    }
    db.end()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::same_store;

    #[test]
    fn a_pin_names_a_store_whoever_logs_in() {
        let pin = "postgres://db.example:5433/craik";
        assert!(same_store(pin, "postgres://alice@db.example:5433/craik"));
        assert!(same_store(pin, "postgres://bob@DB.example:5433/craik"));
        assert!(same_store(
            "postgres://db.example/craik",
            "postgres://alice@db.example:5432/craik"
        ));
        for other in [
            "postgres://alice@db.example:5434/craik",
            "postgres://alice@evil.example:5433/craik",
            "postgres://alice@db.example:5433/other",
            "postgres://alice@127.0.0.1:5433/craik",
            "not a url",
        ] {
            assert!(!same_store(pin, other), "{other}");
        }
        assert!(!same_store(
            "postgres://db.example:5433",
            "postgres://a@db.example:5433"
        ));
    }
}
