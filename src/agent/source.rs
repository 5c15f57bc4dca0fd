//! Where each agent keeps its credential, in its discovery order (the
//! first place that holds one wins), and how to read what it wrote there.
//!
//! Nothing here stores or prints material: [`discover`] returns it in
//! zeroizing strings for [`super::import`], and [`Found::describe`] is
//! what `agent detect` shows. A source file is read only when it is a
//! regular file of the user's, not a symbolic link, and readable by the
//! user alone: a file another user could write, or a link that points
//! elsewhere, would let them choose the credential craik stores.

use std::io::Read;
use std::path::{Path, PathBuf};

use chrono::{DateTime, TimeZone, Utc};
use serde::Serialize;
use serde_json::Value;
use zeroize::Zeroizing;

use super::{Agent, AgentError};
use crate::profile::Family;

/// Source files larger than this are not an agent's credential file.
const MAX_SOURCE_BYTES: u64 = 1 << 20;

/// One place an agent may keep its credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    File(PathBuf),
    Env(&'static str),
    /// A macOS Keychain item (service name).
    Keychain(&'static str),
}

impl Place {
    pub fn label(&self) -> String {
        match self {
            Place::File(p) => p.display().to_string(),
            Place::Env(v) => format!("${v}"),
            Place::Keychain(s) => format!("the macOS Keychain item {s:?}"),
        }
    }
}

/// Subscription (an OAuth login) or API key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialType {
    Subscription,
    ApiKey,
}

impl CredentialType {
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialType::Subscription => "subscription",
            CredentialType::ApiKey => "api_key",
        }
    }
}

/// One credential an agent holds.
pub struct Found {
    pub family: Family,
    pub credential_type: CredentialType,
    /// The API key, or the subscription's access token.
    pub secret: Zeroizing<String>,
    pub refresh: Option<Zeroizing<String>>,
    pub expires_at: Option<DateTime<Utc>>,
    /// The account it belongs to, where the agent records it (an email,
    /// an account id).
    pub account: Option<String>,
    /// The subscription's plan, where the agent records it.
    pub plan: Option<String>,
}

/// What `agent detect` shows of a credential: never material.
#[derive(Debug, Clone, Serialize)]
pub struct Described {
    pub family: String,
    pub credential_type: CredentialType,
    pub expires_at: Option<String>,
    pub expired: bool,
    pub has_refresh_token: bool,
    pub account: Option<String>,
    pub plan: Option<String>,
}

impl Found {
    pub fn expired(&self) -> bool {
        self.expires_at.is_some_and(|t| t <= Utc::now())
    }

    pub fn describe(&self) -> Described {
        Described {
            family: self.family.as_str().to_string(),
            credential_type: self.credential_type,
            expires_at: self.expires_at.map(|t| t.to_rfc3339()),
            expired: self.expired(),
            has_refresh_token: self.refresh.is_some(),
            account: self.account.clone(),
            plan: self.plan.clone(),
        }
    }
}

/// One place looked at, and what was there.
#[derive(Debug, Clone, Serialize)]
pub struct Checked {
    pub place: String,
    /// `found`, `missing`, `empty` (there, but no credential in it).
    pub status: &'static str,
}

/// What one agent holds on this machine.
pub struct Discovery {
    pub agent: Agent,
    /// The place the credentials came from.
    pub place: String,
    pub checked: Vec<Checked>,
    pub credentials: Vec<Found>,
    /// Credentials the agent keeps for providers craik has no family for
    /// (OpenCode's other providers): their provider names.
    pub skipped: Vec<String>,
}

/// The places `agent` keeps its credential, in order. `env` reads an
/// environment variable, `home` is the user's home directory.
pub fn places(agent: Agent, env: &dyn Fn(&str) -> Option<String>, home: &Path) -> Vec<Place> {
    let set = |v: &str| env(v).filter(|s| !s.is_empty());
    let mut out = Vec::new();
    match agent {
        Agent::Claude => {
            if let Some(d) = set("CLAUDE_CONFIG_DIR") {
                out.push(Place::File(PathBuf::from(d).join(".credentials.json")));
            }
            out.push(Place::File(home.join(".claude/.credentials.json")));
            if cfg!(target_os = "macos") {
                out.push(Place::Keychain("Claude Code-credentials"));
            }
            out.push(Place::Env("CLAUDE_CODE_OAUTH_TOKEN"));
        }
        Agent::Codex => {
            if let Some(d) = set("CODEX_HOME") {
                out.push(Place::File(PathBuf::from(d).join("auth.json")));
            }
            out.push(Place::File(home.join(".codex/auth.json")));
        }
        Agent::Gemini => {
            out.push(Place::File(home.join(".gemini/oauth_creds.json")));
            out.push(Place::Env("GEMINI_API_KEY"));
        }
        Agent::OpenCode => {
            if let Some(d) = set("XDG_DATA_HOME") {
                out.push(Place::File(PathBuf::from(d).join("opencode/auth.json")));
            }
            out.push(Place::File(home.join(".local/share/opencode/auth.json")));
        }
        Agent::Amp => {
            out.push(Place::File(home.join(".local/share/amp/secrets.json")));
        }
    }
    out.dedup();
    out
}

/// The user's home directory (`HOME`).
pub fn user_home() -> Result<PathBuf, AgentError> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .ok_or_else(|| {
            AgentError::Unsupported(
                "HOME is not set, so the agents' files cannot be found".into(),
                "set HOME, or name the file with --from PATH".into(),
            )
        })
}

/// Finds `agent`'s credential: in `from` when given (a file in the
/// agent's own format), else the first place of its discovery order that
/// holds one.
pub fn discover(agent: Agent, from: Option<&Path>) -> Result<Discovery, AgentError> {
    let list = match from {
        Some(p) => vec![Place::File(p.to_path_buf())],
        None => places(agent, &|v| std::env::var(v).ok(), &user_home()?),
    };
    let mut checked = Vec::new();
    for place in &list {
        let label = place.label();
        let parsed = match place {
            Place::File(path) => match read_source(path)? {
                None => {
                    checked.push(Checked {
                        place: label,
                        status: "missing",
                    });
                    continue;
                }
                Some(bytes) => parse(agent, Some(path), &label, &bytes)?,
            },
            Place::Env(var) => match std::env::var(var).ok().filter(|s| !s.is_empty()) {
                None => {
                    checked.push(Checked {
                        place: label,
                        status: "missing",
                    });
                    continue;
                }
                Some(token) => (
                    vec![from_token(agent, &label, Zeroizing::new(token))?],
                    vec![],
                ),
            },
            Place::Keychain(service) => match keychain(service) {
                None => {
                    checked.push(Checked {
                        place: label,
                        status: "missing",
                    });
                    continue;
                }
                Some(bytes) => parse(agent, None, &label, &bytes)?,
            },
        };
        let (credentials, skipped) = parsed;
        if credentials.is_empty() && skipped.is_empty() {
            checked.push(Checked {
                place: label,
                status: "empty",
            });
            continue;
        }
        checked.push(Checked {
            place: label.clone(),
            status: "found",
        });
        return Ok(Discovery {
            agent,
            place: label,
            checked,
            credentials,
            skipped,
        });
    }
    Err(AgentError::NotFound { agent, checked })
}

/// The places looked at, for a message: `PLACE (status), ...`.
pub fn list(checked: &[Checked]) -> String {
    checked
        .iter()
        .map(|c| format!("{} ({})", c.place, c.status))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Reads a source file: `None` when it does not exist. Refuses a symbolic
/// link, anything but a regular file, a file of another user, and a file
/// group or others may read.
pub fn read_source(path: &Path) -> Result<Option<Zeroizing<Vec<u8>>>, AgentError> {
    use rustix::fs::{Mode, OFlags};
    let label = path.display().to_string();
    let refused = |why: &str, hint: String| AgentError::Refused {
        place: label.clone(),
        why: why.into(),
        hint,
    };
    let fd = match rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT) => return Ok(None),
        Err(rustix::io::Errno::LOOP) => {
            return Err(refused(
                "it is a symbolic link",
                format!(
                    "name the file it points to: --from {}",
                    std::fs::canonicalize(path)
                        .map(|p| p.display().to_string())
                        .unwrap_or_else(|_| "PATH".into())
                ),
            ));
        }
        Err(e) => {
            return Err(AgentError::Unreadable {
                place: label,
                why: e.to_string(),
            });
        }
    };
    let st = rustix::fs::fstat(&fd).map_err(|e| AgentError::Unreadable {
        place: label.clone(),
        why: e.to_string(),
    })?;
    if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::RegularFile {
        return Err(refused(
            "it is not a regular file",
            "name the agent's credential file with --from PATH".into(),
        ));
    }
    if st.st_uid != crate::home::current_uid() {
        return Err(refused(
            "it belongs to another user",
            "import only your own agent's files".into(),
        ));
    }
    if st.st_mode & 0o077 != 0 {
        return Err(refused(
            "group or others may read or write it",
            format!("make it yours alone, then import again: chmod 600 {label}"),
        ));
    }
    if st.st_size as u64 > MAX_SOURCE_BYTES {
        return Err(AgentError::Unreadable {
            place: label,
            why: "it is larger than 1 MiB".into(),
        });
    }
    let mut bytes = Zeroizing::new(Vec::new());
    std::fs::File::from(fd)
        .take(MAX_SOURCE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| AgentError::Unreadable {
            place: label,
            why: e.to_string(),
        })?;
    Ok(Some(bytes))
}

#[cfg(target_os = "macos")]
fn keychain(service: &str) -> Option<Zeroizing<Vec<u8>>> {
    let out = std::process::Command::new("security")
        .args(["find-generic-password", "-s", service, "-w"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    (out.status.success() && !out.stdout.is_empty()).then(|| Zeroizing::new(out.stdout))
}

#[cfg(not(target_os = "macos"))]
fn keychain(_service: &str) -> Option<Zeroizing<Vec<u8>>> {
    None
}

/// An expiry as agents write it: seconds or milliseconds since the epoch
/// (a number or a string of digits), or RFC 3339.
pub fn parse_expiry(v: &Value) -> Option<DateTime<Utc>> {
    let n = match v {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => match s.trim().parse::<f64>() {
            Ok(n) => n,
            Err(_) => {
                return DateTime::parse_from_rfc3339(s.trim())
                    .ok()
                    .map(|d| d.with_timezone(&Utc));
            }
        },
        _ => return None,
    };
    if !n.is_finite() || n <= 0.0 {
        return None;
    }
    // Milliseconds from 1973 on; seconds until the year 5138.
    let ms = if n >= 1e11 { n } else { n * 1000.0 };
    Utc.timestamp_millis_opt(ms as i64).single()
}

/// The `exp` of a JWT, read without checking its signature (for display
/// and refresh timing only; craik never trusts it for anything else).
fn jwt_expiry(token: &str) -> Option<DateTime<Utc>> {
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let v: Value = serde_json::from_slice(&bytes).ok()?;
    parse_expiry(v.get("exp")?)
}

fn jwt_claim(token: &str, path: &[&str]) -> Option<String> {
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let mut v: Value = serde_json::from_slice(&bytes).ok()?;
    for p in path {
        v = v.get(p)?.clone();
    }
    v.as_str().map(str::to_string)
}

fn text(v: &Value, key: &str) -> Option<Zeroizing<String>> {
    v.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(|s| Zeroizing::new(s.to_string()))
}

/// Checks a credential's shape; the value is never shown.
fn shape(place: &str, what: &str, value: &str, ok: bool, expected: &str) -> Result<(), AgentError> {
    if ok && !value.is_empty() && value.chars().all(|c| c.is_ascii_graphic()) {
        Ok(())
    } else {
        Err(AgentError::Shape {
            place: place.into(),
            what: what.into(),
            expected: expected.into(),
        })
    }
}

/// An API key for `family`, shape-checked.
fn api_key(family: Family, place: &str, key: Zeroizing<String>) -> Result<Found, AgentError> {
    let (ok, expected) = match family {
        Family::Anthropic => (
            key.starts_with("sk-ant-api"),
            "an Anthropic API key (sk-ant-api...)",
        ),
        Family::OpenAi => (key.starts_with("sk-"), "an OpenAI API key (sk-...)"),
        Family::Gemini => (key.starts_with("AIza"), "a Google API key (AIza...)"),
        Family::ChatCompletions => (true, "a key"),
    };
    shape(place, "the API key", &key, ok, expected)?;
    Ok(Found {
        family,
        credential_type: CredentialType::ApiKey,
        secret: key,
        refresh: None,
        expires_at: None,
        account: None,
        plan: None,
    })
}

/// An Anthropic subscription (Claude) OAuth token pair, shape-checked.
fn claude_oauth(
    place: &str,
    access: Zeroizing<String>,
    refresh: Option<Zeroizing<String>>,
    expires_at: Option<DateTime<Utc>>,
    plan: Option<String>,
) -> Result<Found, AgentError> {
    shape(
        place,
        "the access token",
        &access,
        access.starts_with("sk-ant-oat"),
        "a Claude OAuth access token (sk-ant-oat...)",
    )?;
    if let Some(r) = &refresh {
        shape(
            place,
            "the refresh token",
            r,
            r.starts_with("sk-ant-ort"),
            "a Claude OAuth refresh token (sk-ant-ort...)",
        )?;
    }
    Ok(Found {
        family: Family::Anthropic,
        credential_type: CredentialType::Subscription,
        secret: access,
        refresh,
        expires_at,
        account: None,
        plan,
    })
}

/// A token from an environment variable.
fn from_token(agent: Agent, place: &str, token: Zeroizing<String>) -> Result<Found, AgentError> {
    match agent {
        Agent::Claude if token.starts_with("sk-ant-api") => {
            api_key(Family::Anthropic, place, token)
        }
        Agent::Claude => claude_oauth(place, token, None, None, None),
        Agent::Gemini => api_key(Family::Gemini, place, token),
        _ => Err(AgentError::Unreadable {
            place: place.into(),
            why: "this agent keeps no token in the environment".into(),
        }),
    }
}

/// Credentials in an agent's file, and providers skipped.
pub type Parsed = (Vec<Found>, Vec<String>);

/// Reads an agent's credential file (`bytes`, from `place`; `path` is
/// where it is on disk, for a file the agent keeps beside it). Any bytes
/// give credentials or a typed error, never a panic (fuzzed).
pub fn parse(
    agent: Agent,
    path: Option<&Path>,
    place: &str,
    bytes: &[u8],
) -> Result<Parsed, AgentError> {
    let v: Value = serde_json::from_slice(bytes).map_err(|_| AgentError::Unreadable {
        place: place.into(),
        why: "it is not JSON".into(),
    })?;
    parse_file(agent, path, place, &v)
}

fn parse_file(
    agent: Agent,
    path: Option<&Path>,
    place: &str,
    v: &Value,
) -> Result<Parsed, AgentError> {
    let unreadable = |why: &str| AgentError::Unreadable {
        place: place.into(),
        why: why.into(),
    };
    if !v.is_object() {
        return Err(unreadable("it is not a JSON object"));
    }
    match agent {
        Agent::Claude => {
            let Some(o) = v.get("claudeAiOauth") else {
                return Ok((vec![], vec![]));
            };
            let access = text(o, "accessToken")
                .ok_or_else(|| unreadable("claudeAiOauth has no accessToken"))?;
            let plan = o
                .get("subscriptionType")
                .and_then(Value::as_str)
                .map(str::to_string);
            let expires = o.get("expiresAt").and_then(parse_expiry);
            Ok((
                vec![claude_oauth(
                    place,
                    access,
                    text(o, "refreshToken"),
                    expires,
                    plan,
                )?],
                vec![],
            ))
        }
        Agent::Codex => {
            let key = text(v, "OPENAI_API_KEY");
            let tokens = v.get("tokens").filter(|t| t.is_object());
            let mode = v.get("auth_mode").and_then(Value::as_str);
            let use_tokens = tokens.is_some() && (mode != Some("apikey") || key.is_none());
            if use_tokens {
                let t = tokens.expect("checked");
                let access = text(t, "access_token")
                    .ok_or_else(|| unreadable("tokens has no access_token"))?;
                let refresh = text(t, "refresh_token");
                shape(
                    place,
                    "the access token",
                    &access,
                    access.split('.').count() == 3,
                    "a ChatGPT login's access token (a JWT)",
                )?;
                let id_token = text(t, "id_token");
                let claim = |k: &str| {
                    id_token
                        .as_deref()
                        .and_then(|j| jwt_claim(j, &["https://api.openai.com/auth", k]))
                };
                Ok((
                    vec![Found {
                        family: Family::OpenAi,
                        credential_type: CredentialType::Subscription,
                        expires_at: jwt_expiry(&access),
                        secret: access,
                        refresh,
                        account: t
                            .get("account_id")
                            .and_then(Value::as_str)
                            .map(str::to_string),
                        plan: claim("chatgpt_plan_type"),
                    }],
                    vec![],
                ))
            } else if let Some(k) = key {
                Ok((vec![api_key(Family::OpenAi, place, k)?], vec![]))
            } else {
                Ok((vec![], vec![]))
            }
        }
        Agent::Gemini => {
            let access =
                text(v, "access_token").ok_or_else(|| unreadable("it has no access_token"))?;
            let refresh = text(v, "refresh_token");
            if refresh.is_none() {
                return Err(AgentError::Shape {
                    place: place.into(),
                    what: "the file".into(),
                    expected: "a Google OAuth login (JSON with a refresh_token)".into(),
                });
            }
            shape(place, "the access token", &access, true, "an access token")?;
            // The signed-in account, from the file beside it (optional).
            let account = path
                .and_then(Path::parent)
                .map(|d| d.join("google_accounts.json"))
                .and_then(|p| read_source(&p).ok().flatten())
                .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
                .and_then(|a| a.get("active").and_then(Value::as_str).map(str::to_string));
            Ok((
                vec![Found {
                    family: Family::Gemini,
                    credential_type: CredentialType::Subscription,
                    secret: access,
                    refresh,
                    expires_at: v.get("expiry_date").and_then(parse_expiry),
                    account,
                    plan: None,
                }],
                vec![],
            ))
        }
        Agent::OpenCode => {
            let mut found = Vec::new();
            let mut skipped = Vec::new();
            for (provider, entry) in v.as_object().expect("checked") {
                let family = match provider.as_str() {
                    "anthropic" => Family::Anthropic,
                    "openai" => Family::OpenAi,
                    "google" | "gemini" => Family::Gemini,
                    _ => {
                        skipped.push(provider.clone());
                        continue;
                    }
                };
                let at = format!("{place} ({provider})");
                match entry.get("type").and_then(Value::as_str) {
                    Some("api") => {
                        let key = text(entry, "key")
                            .ok_or_else(|| unreadable(&format!("{provider} has no key")))?;
                        found.push(api_key(family, &at, key)?);
                    }
                    Some("oauth") => {
                        let access = text(entry, "access")
                            .ok_or_else(|| unreadable(&format!("{provider} has no access")))?;
                        let refresh = text(entry, "refresh");
                        let expires = entry.get("expires").and_then(parse_expiry);
                        if family == Family::Anthropic {
                            found.push(claude_oauth(&at, access, refresh, expires, None)?);
                        } else {
                            shape(&at, "the access token", &access, true, "an access token")?;
                            found.push(Found {
                                family,
                                credential_type: CredentialType::Subscription,
                                secret: access,
                                refresh,
                                expires_at: expires,
                                account: entry
                                    .get("accountId")
                                    .and_then(Value::as_str)
                                    .map(str::to_string),
                                plan: None,
                            });
                        }
                    }
                    _ => skipped.push(provider.clone()),
                }
            }
            Ok((found, skipped))
        }
        Agent::Amp => {
            if v.as_object()
                .expect("checked")
                .keys()
                .any(|k| k.starts_with("apiKey@"))
            {
                Err(AgentError::NoFamily {
                    agent,
                    place: place.into(),
                    provider: "ampcode.com".into(),
                })
            } else {
                Ok((vec![], vec![]))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiries_in_seconds_milliseconds_and_rfc3339() {
        let s = parse_expiry(&serde_json::json!(1_900_000_000)).unwrap();
        let ms = parse_expiry(&serde_json::json!(1_900_000_000_000u64)).unwrap();
        let txt = parse_expiry(&serde_json::json!("2030-03-17T17:46:40Z")).unwrap();
        let digits = parse_expiry(&serde_json::json!("1900000000000")).unwrap();
        assert_eq!(s, ms);
        assert_eq!(s, txt);
        assert_eq!(s, digits);
        assert!(parse_expiry(&serde_json::json!("soon")).is_none());
        assert!(parse_expiry(&serde_json::json!(-5)).is_none());
        assert!(parse_expiry(&serde_json::json!(null)).is_none());
    }

    #[test]
    fn discovery_order() {
        let env = |v: &str| (v == "CLAUDE_CONFIG_DIR").then(|| "/cfg".to_string());
        let p = places(Agent::Claude, &env, Path::new("/h"));
        assert_eq!(p[0], Place::File("/cfg/.credentials.json".into()));
        assert_eq!(p[1], Place::File("/h/.claude/.credentials.json".into()));
        assert_eq!(p.last(), Some(&Place::Env("CLAUDE_CODE_OAUTH_TOKEN")));
        let none = |_: &str| None;
        assert_eq!(
            places(Agent::Codex, &none, Path::new("/h")),
            vec![Place::File("/h/.codex/auth.json".into())]
        );
    }
}
