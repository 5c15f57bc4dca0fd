//! Workload identity: a CI job or a pod as the operator, with no human
//! and no stored secret.
//!
//! The token comes from where the platform puts it: GitHub Actions'
//! `ACTIONS_ID_TOKEN_REQUEST_URL` (asked with `ACTIONS_ID_TOKEN_REQUEST_TOKEN`
//! as Bearer and `audience=` added), a Kubernetes projected service-account
//! token (`/var/run/secrets/tokens/craik`, re-read when it rotates), or any
//! file. It is validated like an operator's ID token against its issuer's
//! JWKS, with the issuer pinned: GitHub's by default, otherwise named by
//! `--issuer` or `CRAIK_WORKLOAD_ISSUER` (a token's own `iss` is never
//! enough: anyone can run an issuer). craik never stores the token: the
//! session (`workload-session.json`, sealed) holds the verified claims until
//! the token expires, and whatever needs the token again (an `oidc-exchange`
//! profile) reads it again from its source.

use std::path::PathBuf;

use chrono::{DateTime, TimeZone, Utc};
use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::OperatorError;
use super::token::{self, WorkloadClaims};
use crate::audit::{AuditKey, NewReceipt, Operator, ReceiptKind, Status, Workload};
use crate::context::Context;
use crate::home::Home;
use crate::secret::Secrets;
use crate::secret::seal::{Domain, SealKey};

pub const SESSION_FILE: &str = "workload-session.json";
/// GitHub Actions' issuer, the default for `--workload github`.
pub const GITHUB_ISSUER: &str = "https://token.actions.githubusercontent.com";
/// Where a pod finds its projected token by default
/// (`CRAIK_WORKLOAD_TOKEN_FILE` names another).
pub const KUBERNETES_TOKEN_FILE: &str = "/var/run/secrets/tokens/craik";
/// The audience asked for and required by default.
pub const DEFAULT_AUDIENCE: &str = "craik";
/// A session is renewed from its source this close to expiry.
pub const RENEW_WINDOW_SECS: i64 = 30;
/// The longest token read from a file or GitHub's answer.
const MAX_TOKEN_BYTES: usize = 64 * 1024;
/// Claims every JWT has; receipts leave them out of a login's claims.
const REGISTERED: &[&str] = &["iss", "sub", "aud", "exp", "iat", "nbf", "jti"];

/// Where the workload's token comes from. File paths are absolute,
/// resolved when the source is named (a later command from another
/// directory, or with another `CRAIK_WORKLOAD_TOKEN_FILE`, reads the same
/// file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Github,
    Kubernetes(PathBuf),
    File(PathBuf),
}

fn absolute(p: &std::path::Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

impl Source {
    /// `github`, `kubernetes` or `file:PATH`.
    pub fn parse(s: &str) -> Result<Source, OperatorError> {
        match s {
            "github" => Ok(Source::Github),
            "kubernetes" => Ok(Source::Kubernetes(absolute(
                &std::env::var_os("CRAIK_WORKLOAD_TOKEN_FILE")
                    .filter(|v| !v.is_empty())
                    .map(PathBuf::from)
                    .unwrap_or_else(|| PathBuf::from(KUBERNETES_TOKEN_FILE)),
            ))),
            _ => match s.strip_prefix("file:") {
                Some(p) if !p.is_empty() => Ok(Source::File(absolute(std::path::Path::new(p)))),
                _ => Err(OperatorError::BadWorkload(s.to_string())),
            },
        }
    }

    pub fn label(&self) -> String {
        match self {
            Source::Github => "github".into(),
            Source::Kubernetes(_) => "kubernetes".into(),
            Source::File(p) => format!("file:{}", p.display()),
        }
    }

    /// The token's file, for a file source.
    pub fn file(&self) -> Option<&std::path::Path> {
        match self {
            Source::Github => None,
            Source::Kubernetes(p) | Source::File(p) => Some(p),
        }
    }
}

/// Which token to get and what it must say.
#[derive(Debug, Clone)]
pub struct WorkloadConfig {
    pub source: Source,
    pub issuer: String,
    pub audience: String,
    pub ca_file: Option<PathBuf>,
}

fn env(k: &str) -> Option<String> {
    std::env::var(k).ok().filter(|v| !v.trim().is_empty())
}

impl WorkloadConfig {
    /// Flags win over `CRAIK_WORKLOAD_ISSUER` and `CRAIK_WORKLOAD_AUDIENCE`.
    pub fn resolve(
        source: Source,
        issuer: Option<String>,
        audience: Option<String>,
    ) -> Result<WorkloadConfig, OperatorError> {
        let issuer = issuer
            .or_else(|| env("CRAIK_WORKLOAD_ISSUER"))
            .or_else(|| (source == Source::Github).then(|| GITHUB_ISSUER.to_string()))
            .ok_or(OperatorError::NoWorkloadIssuer)?;
        super::check_issuer(&issuer)?;
        let audience = audience
            .or_else(|| env("CRAIK_WORKLOAD_AUDIENCE"))
            .unwrap_or_else(|| DEFAULT_AUDIENCE.to_string());
        Ok(WorkloadConfig {
            source,
            issuer,
            audience,
            ca_file: env("CRAIK_OIDC_CA_FILE").map(PathBuf::from),
        })
    }

    /// `CRAIK_WORKLOAD`, when set: every command is then run as the
    /// workload, with no `craik login` first.
    pub fn from_env() -> Result<Option<WorkloadConfig>, OperatorError> {
        match env("CRAIK_WORKLOAD") {
            None => Ok(None),
            Some(s) => Ok(Some(WorkloadConfig::resolve(
                Source::parse(&s)?,
                None,
                None,
            )?)),
        }
    }
}

/// The workload's current token, from its source. Never stored by craik.
pub fn token(config: &WorkloadConfig) -> Result<SecretString, OperatorError> {
    let raw = match config.source.file() {
        Some(path) => read_token_file(path)?,
        None => github_token(config)?,
    };
    Ok(SecretString::from(raw))
}

fn read_token_file(path: &std::path::Path) -> Result<String, OperatorError> {
    use std::io::Read as _;
    let bad = |why: String| {
        OperatorError::Workload(format!(
            "cannot read the token file {}: {why}",
            path.display()
        ))
    };
    // A projected token is a symlink into `..data`; following it is how
    // the kubelet's rotation is seen.
    let f = std::fs::File::open(path).map_err(|e| bad(e.to_string()))?;
    let mut bytes = Vec::new();
    f.take(MAX_TOKEN_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| bad(e.to_string()))?;
    if bytes.len() > MAX_TOKEN_BYTES {
        return Err(bad(format!("it is larger than {MAX_TOKEN_BYTES} bytes")));
    }
    let s = String::from_utf8(bytes).map_err(|_| bad("it is not UTF-8".into()))?;
    let t = s.trim();
    if t.is_empty() {
        return Err(bad("it is empty".into()));
    }
    Ok(t.to_string())
}

/// GitHub Actions' protocol: `GET $ACTIONS_ID_TOKEN_REQUEST_URL&audience=A`
/// with `Authorization: Bearer $ACTIONS_ID_TOKEN_REQUEST_TOKEN`, answered
/// with `{"value": "<jwt>"}`.
fn github_token(config: &WorkloadConfig) -> Result<String, OperatorError> {
    let (Some(url), Some(bearer)) = (
        env("ACTIONS_ID_TOKEN_REQUEST_URL"),
        env("ACTIONS_ID_TOKEN_REQUEST_TOKEN"),
    ) else {
        return Err(OperatorError::Workload(
            "ACTIONS_ID_TOKEN_REQUEST_URL and ACTIONS_ID_TOKEN_REQUEST_TOKEN are not set (the job needs permissions: id-token: write)".into(),
        ));
    };
    let mut url = url::Url::parse(&url)
        .map_err(|_| OperatorError::Workload("ACTIONS_ID_TOKEN_REQUEST_URL is not a URL".into()))?;
    // The request token goes only where https (or loopback) protects it.
    super::check_issuer(url.as_str()).map_err(|_| {
        OperatorError::Workload(
            "ACTIONS_ID_TOKEN_REQUEST_URL must use https (plain http only on loopback)".into(),
        )
    })?;
    url.query_pairs_mut()
        .append_pair("audience", &config.audience);
    let http = super::http::client(config.ca_file.as_deref())?;
    let resp = http
        .get(url)
        .bearer_auth(bearer)
        .header("Accept", "application/json")
        .send()
        .map_err(|e| OperatorError::Workload(format!("asking GitHub for a token failed: {e}")))?;
    let status = resp.status();
    let mut bytes = Vec::new();
    {
        use std::io::Read as _;
        resp.take(MAX_TOKEN_BYTES as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| OperatorError::Workload(format!("reading GitHub's answer failed: {e}")))?;
    }
    if !status.is_success() {
        return Err(OperatorError::Workload(format!(
            "GitHub's token endpoint answered HTTP {}",
            status.as_u16()
        )));
    }
    if bytes.len() > MAX_TOKEN_BYTES {
        return Err(OperatorError::Workload(
            "GitHub's answer is too large".into(),
        ));
    }
    serde_json::from_slice::<Value>(&bytes)
        .ok()
        .and_then(|v| v.get("value").and_then(Value::as_str).map(str::to_string))
        .filter(|v| !v.is_empty())
        .ok_or_else(|| OperatorError::Workload("GitHub's answer has no token value".into()))
}

/// The source of the workload in use (`CRAIK_WORKLOAD`, else the
/// session's), for the sandbox to hide its token file.
pub fn source_in_use(home: &Home) -> Option<Source> {
    match env("CRAIK_WORKLOAD") {
        Some(s) => Source::parse(&s).ok(),
        None => load(home).ok()??.config().ok().map(|c| c.source),
    }
}

/// The session: who the workload is, until its token expires.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadSession {
    pub version: u32,
    /// `github`, `kubernetes` or `file:PATH`.
    pub source: String,
    pub issuer: String,
    pub audience: String,
    pub subject: String,
    /// Every claim of the token (none of them a secret: a JWT's payload).
    pub claims: Map<String, Value>,
    pub expires_at: DateTime<Utc>,
    pub acquired_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    /// The token's file (absolute), for `kubernetes` and `file:` sources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_file: Option<String>,
    /// A keyed hash of what the session was made from: the token itself
    /// for a file source, this job's `ACTIONS_ID_TOKEN_REQUEST_*` for
    /// GitHub. The session is used only while its source still gives the
    /// same: another job sharing the home, a rotated or replaced token
    /// file, makes a new login.
    pub binding: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seal: Option<String>,
}

impl WorkloadSession {
    /// The operator as receipts and policies see it.
    pub fn operator(&self, key: &AuditKey) -> Operator {
        Operator {
            subject: self.subject.clone(),
            issuer: self.issuer.clone(),
            email: None,
            groups: Vec::new(),
            identity_hash: key.operator(&self.issuer, &self.subject),
            workload: Some(Workload {
                source: self.source.clone(),
                claims: self.claims.clone(),
            }),
        }
    }

    pub fn expired(&self) -> bool {
        self.expires_at <= Utc::now()
    }

    fn near_expiry(&self) -> bool {
        (self.expires_at - Utc::now()).num_seconds() < RENEW_WINDOW_SECS
    }

    /// The configuration it was made with (to renew it, or to read its
    /// token again for an exchange).
    pub fn config(&self) -> Result<WorkloadConfig, OperatorError> {
        let source = match (self.source.as_str(), &self.token_file) {
            ("kubernetes", Some(f)) => Source::Kubernetes(PathBuf::from(f)),
            (s, _) => Source::parse(s)?,
        };
        Ok(WorkloadConfig {
            source,
            issuer: self.issuer.clone(),
            audience: self.audience.clone(),
            ca_file: self.ca_file.clone().map(PathBuf::from),
        })
    }

    fn matches(&self, c: &WorkloadConfig) -> bool {
        self.source == c.source.label()
            && self.token_file.as_deref().map(std::path::Path::new) == c.source.file()
            && self.issuer == c.issuer
            && self.audience == c.audience
    }

    /// The claims a login receipt names: all but the registered ones.
    fn claims_for_receipt(&self) -> Value {
        Value::Object(
            self.claims
                .iter()
                .filter(|(k, _)| !REGISTERED.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        )
    }
}

fn sealed_bytes(s: &WorkloadSession) -> Vec<u8> {
    serde_json::to_vec(&WorkloadSession {
        seal: None,
        ..s.clone()
    })
    .expect("session serializes")
}

/// Reads the session file; one whose seal does not verify is refused.
pub fn load(home: &Home) -> crate::Result<Option<WorkloadSession>> {
    let Some(bytes) = home.read(SESSION_FILE)? else {
        return Ok(None);
    };
    let path = home.path(SESSION_FILE);
    let s: WorkloadSession =
        serde_json::from_slice(&bytes).map_err(|e| OperatorError::SessionCorrupt {
            path: path.clone(),
            why: e.to_string(),
        })?;
    let key = SealKey::load(&Secrets::new(home))?;
    if !s
        .seal
        .as_deref()
        .is_some_and(|seal| key.verify(Domain::Workload, &sealed_bytes(&s), seal))
    {
        return Err(OperatorError::SessionForged {
            path,
            why: "it does not match its seal".into(),
        }
        .into());
    }
    Ok(Some(s))
}

fn save(ctx: &Context, s: &WorkloadSession) -> crate::Result<()> {
    let key = SealKey::load(&ctx.secrets)?;
    let sealed = WorkloadSession {
        seal: Some(key.seal(Domain::Workload, &sealed_bytes(s))),
        ..s.clone()
    };
    let mut bytes = serde_json::to_vec_pretty(&sealed).expect("session serializes");
    bytes.push(b'\n');
    ctx.home.write_atomic(SESSION_FILE, &bytes)?;
    Ok(())
}

/// `workload-cache.json`: the workload issuer's JWKS, sealed (a JWKS any
/// process of the user put there would let it forge the workload).
const KEYS_FILE: &str = "workload-cache.json";
/// How long cached keys are used before an unknown `kid` or this age
/// fetches them again.
const KEYS_TTL_SECS: i64 = 3600;
/// The largest discovery document or JWKS read.
const MAX_DOC_BYTES: usize = 1024 * 1024;

#[derive(Clone, Serialize, Deserialize)]
struct KeysCache {
    issuer: String,
    fetched_at: i64,
    jwks: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    seal: Option<String>,
}

impl KeysCache {
    fn sealed_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(&KeysCache {
            seal: None,
            ..self.clone()
        })
        .unwrap_or_default()
    }
}

fn get_json(
    http: &reqwest::blocking::Client,
    url: &str,
    what: &str,
) -> Result<Value, OperatorError> {
    let bad = |why: String| OperatorError::Jwks(format!("{what} {url}: {why}"));
    let resp = http
        .get(url)
        .header("Accept", "application/json")
        .send()
        .map_err(|e| bad(super::flow::one_line(&e.to_string())))?;
    if !resp.status().is_success() {
        return Err(bad(format!("HTTP {}", resp.status().as_u16())));
    }
    let mut bytes = Vec::new();
    {
        use std::io::Read as _;
        resp.take(MAX_DOC_BYTES as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| bad(super::flow::one_line(&e.to_string())))?;
    }
    if bytes.len() > MAX_DOC_BYTES {
        return Err(bad("larger than 1 MiB".into()));
    }
    serde_json::from_slice(&bytes).map_err(|_| bad("not JSON".into()))
}

/// The issuer's keys: from the sealed cache unless `refetch`, else by
/// discovery (`{issuer}/.well-known/openid-configuration`, whose `issuer`
/// must be the one pinned, then its `jwks_uri`). Only `issuer` and
/// `jwks_uri` are read from the document: GitHub's and Kubernetes' have no
/// authorization endpoint.
fn keys(
    home: &Home,
    config: &WorkloadConfig,
    refetch: bool,
) -> Result<jsonwebtoken::jwk::JwkSet, OperatorError> {
    let seal = super::flow::seal_key(home);
    if !refetch
        && let Ok(Some(bytes)) = home.read(KEYS_FILE)
        && let Ok(cache) = serde_json::from_slice::<KeysCache>(&bytes)
        && cache.issuer == config.issuer
        && Utc::now().timestamp() - cache.fetched_at < KEYS_TTL_SECS
        && let (Some(k), Some(s)) = (&seal, &cache.seal)
        && k.verify(Domain::OidcCache, &cache.sealed_bytes(), s)
        && let Ok(jwks) = token::parse_jwks(cache.jwks.to_string().as_bytes())
    {
        return Ok(jwks);
    }
    let http = super::http::client(config.ca_file.as_deref())?;
    let discovery = format!(
        "{}/.well-known/openid-configuration",
        config.issuer.trim_end_matches('/')
    );
    let doc = get_json(&http, &discovery, "discovery")?;
    if doc.get("issuer").and_then(Value::as_str) != Some(config.issuer.as_str()) {
        return Err(OperatorError::Discovery {
            issuer: config.issuer.clone(),
            why: "the discovery document names another issuer".into(),
        });
    }
    let jwks_uri =
        doc.get("jwks_uri")
            .and_then(Value::as_str)
            .ok_or_else(|| OperatorError::Discovery {
                issuer: config.issuer.clone(),
                why: "the discovery document has no jwks_uri".into(),
            })?;
    super::check_issuer(jwks_uri)
        .map_err(|_| OperatorError::Jwks(format!("jwks_uri {jwks_uri:?} is not https")))?;
    let jwks_json = get_json(&http, jwks_uri, "JWKS")?;
    let jwks = token::parse_jwks(jwks_json.to_string().as_bytes()).map_err(OperatorError::Jwks)?;
    if let Some(k) = seal {
        let mut cache = KeysCache {
            issuer: config.issuer.clone(),
            fetched_at: Utc::now().timestamp(),
            jwks: jwks_json,
            seal: None,
        };
        cache.seal = Some(k.seal(Domain::OidcCache, &cache.sealed_bytes()));
        if let Ok(bytes) = serde_json::to_vec(&cache) {
            // A cache: failing to write it is not an error.
            let _ = home.write_atomic(KEYS_FILE, &bytes);
        }
    }
    Ok(jwks)
}

/// Reads the workload's token and validates it (one JWKS refetch on an
/// unknown key).
pub fn verify(
    home: &Home,
    config: &WorkloadConfig,
) -> Result<(SecretString, WorkloadClaims), OperatorError> {
    let raw = token(config)?;
    let now = Utc::now().timestamp();
    let check = |jwks: &jsonwebtoken::jwk::JwkSet| {
        token::validate_workload(
            raw.expose_secret(),
            jwks,
            &config.issuer,
            &config.audience,
            now,
        )
    };
    let claims = match check(&keys(home, config, false)?) {
        Err(token::TokenError::UnknownKid(_)) => check(&keys(home, config, true)?),
        other => other,
    }
    .map_err(OperatorError::WorkloadToken)?;
    Ok((raw, claims))
}

/// The binding of a source as it is now (see [`WorkloadSession::binding`]):
/// `raw` is the token just read, for a file source; GitHub's comes from
/// the job's environment. `None`: nothing to bind to (GitHub's variables
/// are not set: this is not that job).
fn binding(home: &Home, config: &WorkloadConfig, raw: Option<&str>) -> Option<String> {
    let key = super::flow::seal_key(home)?;
    let mut bytes = config.source.label().into_bytes();
    bytes.push(0);
    match &config.source {
        Source::Github => {
            bytes.extend(env("ACTIONS_ID_TOKEN_REQUEST_URL")?.as_bytes());
            bytes.push(0);
            bytes.extend(env("ACTIONS_ID_TOKEN_REQUEST_TOKEN")?.as_bytes());
        }
        Source::Kubernetes(_) | Source::File(_) => match raw {
            Some(t) => bytes.extend(t.as_bytes()),
            None => bytes.extend(token(config).ok()?.expose_secret().as_bytes()),
        },
    }
    Some(key.seal(Domain::Workload, &bytes))
}

/// `craik login --workload`: reads and validates the token, writes the
/// `login` receipt (flow `workload`, the source, the claims) and the
/// session. A token that fails leaves a failed `login` receipt.
pub fn login(ctx: &mut Context, config: &WorkloadConfig) -> crate::Result<WorkloadSession> {
    ctx.audit()?;
    let (raw, claims) = match verify(&ctx.home, config) {
        Ok(v) => v,
        Err(e) => {
            let r = NewReceipt::new(ReceiptKind::Login, Status::Failed)
                .reason(e.to_string())
                .detail("flow", "workload")
                .detail("workload_source", config.source.label())
                .detail("issuer", config.issuer.as_str())
                .detail("error", e.code());
            let _ = ctx.record(r);
            return Err(e.into());
        }
    };
    let binding = binding(&ctx.home, config, Some(raw.expose_secret()))
        .ok_or_else(|| OperatorError::Workload("cannot bind the session to its source".into()))?;
    drop(raw);
    let s = WorkloadSession {
        version: 1,
        source: config.source.label(),
        token_file: config.source.file().map(|p| p.display().to_string()),
        binding,
        issuer: claims.issuer,
        audience: config.audience.clone(),
        subject: claims.subject,
        claims: claims.claims,
        expires_at: Utc
            .timestamp_opt(claims.expires_at, 0)
            .single()
            .unwrap_or_else(Utc::now),
        acquired_at: Utc::now(),
        ca_file: config.ca_file.as_ref().map(|p| p.display().to_string()),
        seal: None,
    };
    let mut receipt = NewReceipt::new(ReceiptKind::Login, Status::Ok)
        .operator(Some(s.operator(ctx.audit_key()?)))
        .detail("flow", "workload")
        .detail("issuer", s.issuer.as_str())
        .detail("audience", s.audience.as_str())
        .detail("expires_at", s.expires_at.to_rfc3339());
    // With receipts naming operators by hash only, the claims (an actor's
    // name, a pod's) stay out too.
    if std::env::var("CRAIK_RECEIPT_OPERATOR").as_deref() != Ok("hash") {
        receipt = receipt.detail("claims", s.claims_for_receipt());
    }
    ctx.record(receipt)?;
    save(ctx, &s)?;
    Ok(s)
}

/// The workload operator, if any: with `CRAIK_WORKLOAD` set, the workload
/// it names; otherwise the one `craik login --workload` made. Its session
/// is used while its source still gives what it was made from (the same
/// token file, the same GitHub job) and its token has more than 30 s
/// left; otherwise the token is read and validated again (a new `login`
/// receipt). A session whose source is gone is deleted (exit 6).
pub fn current(ctx: &mut Context) -> crate::Result<Option<WorkloadSession>> {
    let wanted = WorkloadConfig::from_env()?;
    let loaded = match load(&ctx.home) {
        Ok(s) => s,
        Err(e) => return Err(super::session::refuse_forged(ctx, e)),
    };
    let config = match (wanted, &loaded) {
        (Some(c), _) => c,
        (None, Some(s)) => s.config()?,
        (None, None) => return Ok(None),
    };
    let usable = |s: &WorkloadSession, home: &Home| {
        s.matches(&config)
            && !s.near_expiry()
            && binding(home, &config, None).as_deref() == Some(s.binding.as_str())
    };
    if let Some(s) = &loaded
        && usable(s, &ctx.home)
    {
        return Ok(loaded);
    }
    let _lock = ctx.home.lock(SESSION_FILE)?;
    // Another process logged in again while this one waited.
    let now = load(&ctx.home).ok().flatten();
    if let Some(s) = &now
        && Some(s) != loaded.as_ref()
        && usable(s, &ctx.home)
    {
        return Ok(now);
    }
    match login(ctx, &config) {
        Ok(s) => Ok(Some(s)),
        Err(e) => match now {
            // The session's own source failed: it is not kept past that.
            Some(s) if s.matches(&config) => {
                ctx.home.remove(SESSION_FILE)?;
                Err(OperatorError::Expired(format!(
                    "the workload's session no longer matches its source, and its token could not be read again: {e}"
                ))
                .into())
            }
            _ => Err(e),
        },
    }
}

/// `craik login --workload` from the command line: [`login`] under the
/// session's lock.
pub fn login_now(ctx: &mut Context, config: &WorkloadConfig) -> crate::Result<WorkloadSession> {
    let _lock = ctx.home.lock(SESSION_FILE)?;
    login(ctx, config)
}

/// What `craik logout` did with a workload session.
pub enum Logout {
    Removed(Box<WorkloadSession>),
    /// A refused (unsealed) session file, removed without trusting it.
    RemovedRefused,
}

/// `craik logout` for a workload: the session goes (there is nothing to
/// revoke: the token belongs to the platform), with a `logout` receipt.
pub fn logout(ctx: &mut Context) -> crate::Result<Option<Logout>> {
    let _lock = ctx.home.lock(SESSION_FILE)?;
    let s = match load(&ctx.home) {
        Ok(Some(s)) => Some(s),
        Ok(None) => return Ok(None),
        Err(crate::Error::Operator(
            OperatorError::SessionForged { .. } | OperatorError::SessionCorrupt { .. },
        )) => None,
        Err(e) => return Err(e),
    };
    let mut r = NewReceipt::new(ReceiptKind::Logout, Status::Ok).detail("revocation", "none");
    r = match &s {
        Some(s) => r.operator(Some(s.operator(ctx.audit_key()?))),
        None => r.reason("removed a refused workload session"),
    };
    ctx.record(r)?;
    ctx.home.remove(SESSION_FILE)?;
    Ok(Some(match s {
        Some(s) => Logout::Removed(Box::new(s)),
        None => Logout::RemovedRefused,
    }))
}
