//! `craik doctor`: read-only checks, each ok / warn / fail with a hint.
//! Never prints a secret and never writes anything.

use std::path::{Path, PathBuf};

use chrono::{DateTime, TimeZone, Utc};
use serde::Serialize;

use crate::audit::SCHEMA_VERSION;
use crate::context::Context;
use crate::profile::{Kind, META_ENV_VAR, META_HANDLE, META_REF, ProfileStore};
use crate::secret::reference::SecretRef;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Ok,
    Warn,
    Fail,
}

#[derive(Debug, Serialize)]
pub struct Check {
    pub name: String,
    pub level: Level,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

fn check(
    name: impl Into<String>,
    level: Level,
    message: impl Into<String>,
    hint: Option<String>,
) -> Check {
    Check {
        name: name.into(),
        level,
        message: message.into(),
        hint,
    }
}

/// The derived query index beside the log (`audit-index.db`). It is
/// never trusted alone, so being out of step with the log or unreadable is
/// a warning; others being able to read it is a failure, as for the log.
fn query_index(log: &Path) -> Check {
    use crate::audit::store::index::{self, Status};
    let name = "query index";
    let path = index::index_path(log);
    if path.exists()
        && let Err(why) = owner_only(&path)
    {
        // It names operators and credentials' identity hashes, like the log.
        return check(
            name,
            Level::Fail,
            format!("{}: {why}", path.display()),
            Some("chmod 600 it (or delete it; the next craik receipts query rebuilds it)".into()),
        );
    }
    match index::status(log) {
        Status::Missing => check(
            name,
            Level::Ok,
            "not built yet (the first query builds it)",
            None,
        ),
        Status::Covers { upto, total } => check(
            name,
            Level::Ok,
            format!(
                "matches the log; holds receipts 1-{upto} of {total} (queries read the rest from the log)"
            ),
            None,
        ),
        Status::Stale => check(
            name,
            Level::Warn,
            "no longer matches the log (the next query rebuilds it)",
            None,
        ),
        Status::Unreadable(why) => check(
            name,
            Level::Warn,
            format!("unreadable ({why}); queries read the log instead"),
            Some("delete audit-index.db; the next craik receipts query rebuilds it".into()),
        ),
    }
}

/// Reads an expiry in epoch seconds, epoch milliseconds or RFC 3339.
pub fn parse_expiry(v: &serde_json::Value) -> Option<DateTime<Utc>> {
    match v {
        serde_json::Value::Number(n) => {
            let x = n.as_i64().or_else(|| n.as_f64().map(|f| f as i64))?;
            // Milliseconds from about 2001 on are larger than 10^12.
            if x > 100_000_000_000 {
                Utc.timestamp_millis_opt(x).single()
            } else {
                Utc.timestamp_opt(x, 0).single()
            }
        }
        serde_json::Value::String(s) => DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|d| d.with_timezone(&Utc))
            .or_else(|| s.parse::<i64>().ok().and_then(|x| parse_expiry(&x.into()))),
        _ => None,
    }
}

/// Where the Claude CLI keeps its OAuth credentials.
pub fn claude_credentials_path() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("CLAUDE_CONFIG_DIR") {
        return Some(PathBuf::from(d).join(".credentials.json"));
    }
    std::env::home_dir().map(|h| h.join(".claude/.credentials.json"))
}

fn owner_only(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if m.uid() != crate::home::current_uid() {
        return Err("not owned by you".into());
    }
    if m.mode() & 0o077 != 0 {
        return Err(format!(
            "mode {:04o} lets others read it",
            m.mode() & 0o7777
        ));
    }
    Ok(())
}

/// The home and every file in it readable by the user alone: a home,
/// secret store or audit log that group or others can read fails.
fn home_check(ctx: &Context) -> Check {
    use std::os::unix::fs::MetadataExt;
    let root = ctx.home.root();
    let mut open = Vec::new();
    if let Ok(m) = std::fs::symlink_metadata(root)
        && m.mode() & 0o077 != 0
    {
        open.push(format!(
            "{} (mode {:04o})",
            root.display(),
            m.mode() & 0o7777
        ));
    }
    let mut files: Vec<_> = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.path(), e.metadata().ok()?)))
        .filter(|(_, m)| m.is_file() && m.mode() & 0o077 != 0)
        .collect();
    files.sort_by(|a, b| a.0.cmp(&b.0));
    for (p, m) in &files {
        open.push(format!("{} (mode {:04o})", p.display(), m.mode() & 0o7777));
    }
    if open.is_empty() {
        return check(
            "home",
            Level::Ok,
            format!("{} and its files are owner-only", root.display()),
            None,
        );
    }
    let mut chmod = format!("chmod 700 {}", root.display());
    if !files.is_empty() {
        chmod = format!(
            "{chmod}; chmod 600 {}",
            files
                .iter()
                .map(|(p, _)| p.display().to_string())
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    check(
        "home",
        Level::Fail,
        format!("readable by group or others: {}", open.join(", ")),
        Some(chmod),
    )
}

/// Runs every check.
pub fn run(ctx: &mut Context) -> Vec<Check> {
    let mut out = Vec::new();
    out.push(home_check(ctx));
    if let Some(secs) = crate::secret::unlock::remaining(&ctx.home) {
        out.push(check(
            "secret store",
            Level::Ok,
            format!(
                "unlocked (craik unlock) for about {} more; a child run without --sandbox could read its key",
                crate::duration::short(std::time::Duration::from_secs(secs))
            ),
            Some("craik lock ends it now".into()),
        ));
    }

    // Profiles and what they reference.
    match ProfileStore::new(&ctx.home).load() {
        Err(e) => out.push(check("profiles", Level::Fail, e.to_string(), e.hint())),
        Ok(file) => {
            out.push(check(
                "profiles",
                Level::Ok,
                format!("{} profile(s) parse", file.profiles.len()),
                None,
            ));
            for p in &file.profiles {
                let name = format!("profile {}", p.id);
                // The provider's own answer, when `auth test` last asked.
                if let Some(s) = p.last_status.as_deref().filter(|s| *s != "ok") {
                    out.push(check(
                        format!("{name} last test"),
                        Level::Fail,
                        format!(
                            "the last auth test ended {s}{}",
                            p.last_validated_at
                                .map(|t| format!(" at {}", t.to_rfc3339()))
                                .unwrap_or_default()
                        ),
                        Some(format!(
                            "replace the credential (craik auth add {} --force), then: craik auth test {}",
                            p.id, p.id
                        )),
                    ));
                }
                match p.kind {
                    Kind::ApiKey => {
                        let var = p.meta(META_ENV_VAR).unwrap_or("?");
                        if std::env::var_os(var).is_some_and(|v| !v.is_empty()) {
                            out.push(check(
                                name,
                                Level::Ok,
                                format!("env var {var} is set"),
                                None,
                            ));
                        } else {
                            out.push(check(
                                name,
                                Level::Warn,
                                format!("env var {var} is not set"),
                                Some(format!("export {var}=... or craik auth migrate-from-env")),
                            ));
                        }
                    }
                    Kind::SecretRef => match p.meta(META_REF).map(SecretRef::parse) {
                        Some(Ok(r)) => match r.check() {
                            Ok(()) => out.push(check(
                                name,
                                Level::Ok,
                                format!("{r} resolves and is owner-only"),
                                None,
                            )),
                            Err(e) => out.push(check(name, Level::Fail, e.to_string(), e.hint())),
                        },
                        _ => out.push(check(name, Level::Fail, "bad secret reference", None)),
                    },
                    Kind::KeyringRef => {
                        let h = p.meta(META_HANDLE).unwrap_or_default();
                        match ctx.secrets.exists(h) {
                            Ok(true) => out.push(check(name, Level::Ok, "secret present", None)),
                            Ok(false) => out.push(check(
                                name,
                                Level::Fail,
                                "secret missing from the store",
                                Some(format!(
                                    "store it again: craik auth add {} --kind=keyring-ref --force",
                                    p.id
                                )),
                            )),
                            Err(e) => out.push(check(
                                name,
                                Level::Fail,
                                format!("secret store: {e}"),
                                e.hint(),
                            )),
                        }
                    }
                    Kind::Marker => out.push(check(
                        name,
                        Level::Ok,
                        "delegates to the provider's CLI",
                        None,
                    )),
                    Kind::CliBridge => {
                        let (ok, msg) = crate::credential::bridge::health(p);
                        let level = if ok { Level::Ok } else { Level::Fail };
                        let hint = (!ok).then(|| "install the command, or fix it: craik auth add ID --kind=cli-bridge --command ... --force".to_string());
                        out.push(check(name, level, msg, hint));
                    }
                    Kind::StigmemRef => {
                        let (ok, msg) = crate::credential::stigmem::health(p);
                        let level = if ok { Level::Ok } else { Level::Fail };
                        let hint = (!ok).then(|| "add it again: craik auth add ID --kind=stigmem-ref --node URL --entity E --force".to_string());
                        out.push(check(name, level, msg, hint));
                    }
                    Kind::OidcExchange => {
                        let (ok, msg) = crate::credential::exchange::health(p);
                        let level = if ok { Level::Ok } else { Level::Fail };
                        let hint = (!ok).then(|| "add it again: craik auth add ID --kind=oidc-exchange --exchange-url URL --audience A --force".to_string());
                        out.push(check(name, level, msg, hint));
                    }
                    Kind::OAuth => {
                        let (ok, msg) = crate::credential::oauth::health(p);
                        let level = if ok { Level::Ok } else { Level::Fail };
                        let hint = (!ok).then(|| format!("craik auth login {}", p.provider_family));
                        out.push(check(name, level, msg, hint));
                    }
                }
            }
        }
    }

    // Agent CLI credential files: readable, owner-only, not expired.
    if let Some(path) = claude_credentials_path().filter(|p| p.exists()) {
        let name = "claude credentials";
        match owner_only(&path) {
            Err(why) => out.push(check(
                name,
                Level::Fail,
                format!("{}: {why}", path.display()),
                Some(format!("chmod 600 {}", path.display())),
            )),
            Ok(()) => {
                let expiry = std::fs::read(&path)
                    .ok()
                    .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                    .and_then(|v| {
                        v.get("claudeAiOauth")
                            .and_then(|o| o.get("expiresAt"))
                            .and_then(parse_expiry)
                    });
                match expiry {
                    Some(t) if t < Utc::now() => out.push(check(
                        name,
                        Level::Warn,
                        format!("the Claude OAuth token expired at {}", t.to_rfc3339()),
                        Some("run claude once to refresh it".into()),
                    )),
                    Some(t) => out.push(check(
                        name,
                        Level::Ok,
                        format!("owner-only; the OAuth token expires at {}", t.to_rfc3339()),
                        None,
                    )),
                    None => out.push(check(
                        name,
                        Level::Ok,
                        "owner-only; no expiry to inspect",
                        None,
                    )),
                }
            }
        }
    }

    // Which Anthropic source `--provider anthropic` would use.
    if let Ok((sources, _)) = crate::credential::onboard::anthropic_sources(ctx) {
        let passed: Vec<String> = sources
            .iter()
            .filter(|s| !s.active)
            .map(|s| format!("{} ({})", s.source, s.passed_over.as_deref().unwrap_or("")))
            .collect();
        match sources.iter().find(|s| s.active) {
            Some(a) => out.push(check(
                "anthropic source",
                Level::Ok,
                format!("{} is active; passed over: {}", a.source, passed.join("; ")),
                None,
            )),
            None => out.push(check(
                "anthropic source",
                Level::Ok,
                format!("none resolves: {}", passed.join("; ")),
                None,
            )),
        }
    }

    // The secret store.
    match ctx.secrets.selection() {
        Err(e) => out.push(check("secret store", Level::Fail, e.to_string(), e.hint())),
        Ok(sel) => {
            let level = if sel.backend.volatile() {
                Level::Warn
            } else {
                Level::Ok
            };
            let hint = sel.backend.volatile().then(|| "kernel-keyring secrets do not survive a reboot; craik auth migrate-secrets --to file (or secret-service)".to_string());
            out.push(check(
                "secret store",
                level,
                format!("{} ({})", sel.backend, sel.reason),
                hint,
            ));
        }
    }

    // The audit log.
    let audit_path = ctx.home.path(crate::audit::AUDIT_FILE);
    if !audit_path.exists() {
        out.push(check(
            "audit log",
            Level::Ok,
            "no receipts yet (audit.db is made on first use)",
            None,
        ));
    } else {
        match ctx.open_audit_log() {
            Err(e) => out.push(check("audit log", Level::Fail, e.to_string(), e.hint())),
            Ok(log) => {
                let version = log.schema_version().unwrap_or(0);
                if version != SCHEMA_VERSION {
                    out.push(check(
                        "audit log",
                        Level::Fail,
                        format!("schema version {version}, expected {SCHEMA_VERSION}"),
                        None,
                    ));
                }
                match log.verify_tail(1000) {
                    Ok(r) if r.ok => out.push(check(
                        "audit log",
                        Level::Ok,
                        format!(
                            "opens, schema {version}, the last {} receipt(s) verify",
                            r.verified
                        ),
                        None,
                    )),
                    Ok(r) => {
                        let d = r
                            .damage
                            .unwrap_or_else(|| unreachable!("not ok means damage"));
                        out.push(check(
                            "audit log",
                            Level::Fail,
                            format!("damaged at seq {}: {}: {}", d.seq, d.what, d.detail),
                            Some(
                                "run craik receipts verify; restore audit.db from a backup".into(),
                            ),
                        ))
                    }
                    Err(e) => out.push(check("audit log", Level::Fail, e.to_string(), e.hint())),
                }
            }
        }
        // The automatic checkpoint, gone although this home signed one.
        if let Ok(crate::audit::checkpoint::AutoCheckpoint {
            missing: Some(e), ..
        }) = crate::audit::checkpoint::load_auto(&ctx.home, None, false, false)
        {
            out.push(check(
                "audit checkpoint",
                Level::Fail,
                e.to_string(),
                e.hint(),
            ));
        }
        out.push(query_index(&audit_path));
    }

    // Policies in force.
    match crate::policy::load_in_force(&ctx.home, &[]) {
        Ok(p) => out.push(check(
            "policies",
            Level::Ok,
            match p.len() {
                0 => "no policy in force".to_string(),
                1 => "1 policy in force parses".to_string(),
                n => format!("{n} policies in force parse"),
            },
            None,
        )),
        Err(e) => out.push(check("policies", Level::Fail, e.to_string(), e.hint())),
    }

    // The operator session, and the IdP.
    let session = crate::operator::session::load(&ctx.home);
    let mut issuer = std::env::var("CRAIK_OIDC_ISSUER")
        .ok()
        .filter(|s| !s.is_empty());
    match session {
        Err(e) => out.push(check(
            "operator session",
            Level::Fail,
            e.to_string(),
            e.hint(),
        )),
        Ok(None) => out.push(check("operator session", Level::Ok, "not logged in", None)),
        Ok(Some(s)) => {
            issuer.get_or_insert(s.issuer.clone());
            if s.expired() && s.refresh_token_handle.is_none() {
                out.push(check(
                    "operator session",
                    Level::Warn,
                    format!("{} expired at {}", s.subject, s.expires_at.to_rfc3339()),
                    Some("run craik login".into()),
                ));
            } else if s.expired() {
                out.push(check(
                    "operator session",
                    Level::Ok,
                    format!(
                        "{}: the ID token expired at {}; it will be refreshed",
                        s.subject,
                        s.expires_at.to_rfc3339()
                    ),
                    None,
                ));
            } else {
                out.push(check(
                    "operator session",
                    Level::Ok,
                    format!("{} until {}", s.subject, s.expires_at.to_rfc3339()),
                    None,
                ));
            }
        }
    }
    if let Some(iss) = issuer {
        let ca = std::env::var("CRAIK_OIDC_CA_FILE").ok().map(PathBuf::from);
        let url = format!(
            "{}/.well-known/openid-configuration",
            iss.trim_end_matches('/')
        );
        let result = crate::operator::http_client(ca.as_deref())
            .map_err(|e| e.to_string())
            .and_then(|c| c.get(&url).send().map_err(|e| e.to_string()))
            .and_then(|r| {
                if r.status().is_success() {
                    let body = r.text().map_err(|e| e.to_string())?;
                    serde_json::from_str::<serde_json::Value>(&body).map_err(|e| e.to_string())
                } else {
                    Err(format!("HTTP {}", r.status()))
                }
            });
        match result {
            Ok(doc) if doc.get("issuer").and_then(|v| v.as_str()) == Some(iss.as_str()) => {
                out.push(check("identity provider", Level::Ok, format!("{iss} publishes its discovery document"), None))
            }
            Ok(_) => out.push(check("identity provider", Level::Fail, format!("{url} names another issuer"), Some("check CRAIK_OIDC_ISSUER".into()))),
            Err(e) => out.push(check("identity provider", Level::Fail, format!("{url}: {e}"), Some("check the issuer URL and the network (and CRAIK_OIDC_CA_FILE for a private CA)".into()))),
        }
    }
    out
}
