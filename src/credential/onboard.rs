//! Provider onboarding: `craik auth setup` and the key-shape checks used
//! when capturing API keys.

use serde::Serialize;

use crate::Error;
use crate::context::Context;
use crate::credential::manage::{self, AddRequest};
use crate::credential::source::Health;
use crate::pool::{self, Strategy};
use crate::profile::{Family, Kind, Profile, ProfileError, ProfileId, ProfileStore};
use crate::provider;
use crate::secret::ExposeSecret as _;

/// The providers `auth setup` and `auth login` know.
pub fn parse_provider(s: &str) -> crate::Result<Family> {
    match s {
        "openai" => Ok(Family::OpenAi),
        "anthropic" => Ok(Family::Anthropic),
        "gemini" => Ok(Family::Gemini),
        "local" | "chat_completions" => Ok(Family::ChatCompletions),
        other => Err(Error::input(
            format!("unknown provider {other:?}"),
            match crate::term::did_you_mean(other, &["openai", "anthropic", "gemini", "local"]) {
                Some(m) => format!(
                    "did you mean {m}? The providers are openai, anthropic, gemini and local"
                ),
                None => "the providers are openai, anthropic, gemini and local".into(),
            },
        )),
    }
}

/// What an API key of a family looks like, for a helpful error when it
/// does not (the value is never echoed).
pub fn check_key_shape(family: Family, key: &str) -> crate::Result<()> {
    let (ok, expected) = match family {
        Family::Anthropic => (
            key.starts_with("sk-ant-api") || key.starts_with("sk-ant-oat"),
            "an Anthropic Console key starting with sk-ant-api (or an OAuth token starting with sk-ant-oat)",
        ),
        Family::OpenAi => (
            key.starts_with("sk-") && key.len() >= 20,
            "an OpenAI key starting with sk- (sk-proj-..., sk-svcacct-...)",
        ),
        Family::Gemini => (
            key.starts_with("AIza") && key.len() >= 30,
            "a Google API key starting with AIza",
        ),
        Family::ChatCompletions => (!key.is_empty(), "a non-empty key"),
    };
    let printable = key.chars().all(|c| c.is_ascii_graphic());
    if ok && printable {
        Ok(())
    } else {
        Err(Error::input(
            format!(
                "that does not look like {} key: expected {expected} (the value was not stored{})",
                match family {
                    Family::OpenAi => "an OpenAI",
                    Family::Anthropic => "an Anthropic",
                    Family::Gemini => "a Gemini",
                    Family::ChatCompletions => "a local endpoint's",
                },
                if printable {
                    ""
                } else {
                    "; it contains spaces or control characters"
                }
            ),
            "check you pasted the right key, whole, with nothing around it",
        ))
    }
}

pub struct SetupRequest {
    pub family: Family,
    pub name: String,
    pub base_url: Option<String>,
    pub env_var: Option<String>,
    pub secret_ref: Option<String>,
    pub allow_local_base_url: bool,
    pub dry_run: bool,
    /// Replace an existing profile (and its pool) of that id.
    pub force: bool,
}

#[derive(Debug, Serialize)]
pub struct SetupResult {
    pub id: String,
    pub kind: String,
    pub pool: String,
    pub base_url: Option<String>,
    pub dry_run: bool,
    pub written: bool,
    pub health: Health,
    /// When the secret is missing: exactly where to put it.
    pub next_step: Option<String>,
}

/// `craik auth setup`: a typed profile plus a single-member pool of the
/// same id, then a redacted health report.
pub fn setup(ctx: &mut Context, req: SetupRequest) -> crate::Result<SetupResult> {
    let id = ProfileId::new(req.family, &req.name)?;
    if req.family == Family::ChatCompletions && req.base_url.is_none() {
        return Err(Error::input(
            "local needs --base-url",
            "for example: craik auth setup local --base-url http://127.0.0.1:11434/v1",
        ));
    }
    if req.env_var.is_some() && req.secret_ref.is_some() {
        return Err(Error::input(
            "--env-var and --secret-ref are alternatives",
            "pass one of them",
        ));
    }
    let kind = if req.secret_ref.is_some() {
        Kind::SecretRef
    } else {
        Kind::ApiKey
    };
    let env_var = (kind == Kind::ApiKey).then(|| {
        req.env_var
            .clone()
            .unwrap_or_else(|| provider::info(req.family).source_var.to_string())
    });
    let add = AddRequest {
        id: id.clone(),
        kind,
        env_var: env_var.clone(),
        secret_ref: req.secret_ref.clone(),
        secret: None,
        base_url: req.base_url.clone(),
        allow_local_base_url: req.allow_local_base_url,
        force: req.force,
        command: Vec::new(),
        extract: None,
        exchange: None,
        stigmem: None,
    };
    manage::validate_add(&add)?;
    let existing = ProfileStore::new(&ctx.home).load()?.get(&id).cloned();
    if existing.is_some() && !req.dry_run && !req.force {
        return Err(crate::profile::ProfileError::Exists(id).into());
    }
    let profile = if req.dry_run {
        let mut p = Profile::new(id.clone(), kind);
        if let Some(v) = &env_var {
            p.metadata
                .insert(crate::profile::META_ENV_VAR.into(), v.clone());
        }
        if let Some(r) = &req.secret_ref {
            p.metadata
                .insert(crate::profile::META_REF.into(), r.clone());
        }
        p.base_url = req.base_url.clone();
        p
    } else {
        let p = manage::add_profile(ctx, add)?;
        pool::create(&ctx.home, &id, Strategy::Failover, &[(id.clone(), 1)], true)?;
        p
    };
    let health = super::health(&profile, &ctx.secrets);
    let next_step = (!health.ok).then(|| match (&env_var, &req.secret_ref) {
        (Some(v), _) => format!(
            "put the key in the environment variable {v} (export {v}=...), or store it in the secret store: craik auth migrate-from-env --apply --yes"
        ),
        (None, Some(r)) => format!(
            "make {r} resolve: for file: references, write the key to the file and chmod 600 it; for env: references, export the variable"
        ),
        _ => "store the key".to_string(),
    });
    Ok(SetupResult {
        id: id.to_string(),
        kind: kind.to_string(),
        pool: id.to_string(),
        base_url: provider::base_url(&profile),
        dry_run: req.dry_run,
        written: !req.dry_run,
        health,
        next_step,
    })
}

/// Default OAuth issuer for `craik auth login openai` (override with
/// `--issuer`).
pub const OPENAI_ISSUER: &str = "https://auth.openai.com";
/// Default OAuth client for `craik auth login openai`: the public client
/// of OpenAI's Codex CLI (override with `--client-id`).
pub const OPENAI_CLIENT_ID: &str = "app_EMoamEEZ73f0CkXaXp7hrann";
/// The page where the provider's console creates an API key (none for
/// `local`, whose keys are the endpoint's own).
pub fn key_page(family: Family) -> Option<&'static str> {
    match family {
        Family::OpenAi => Some("https://platform.openai.com/api-keys"),
        Family::Anthropic => Some("https://console.anthropic.com/settings/keys"),
        Family::Gemini => Some("https://aistudio.google.com/apikey"),
        Family::ChatCompletions => None,
    }
}

/// The marker profile that delegates to the Claude CLI.
pub const CLAUDE_MARKER: &str = "anthropic:claude-cli";

/// What `craik auth login` was asked.
#[derive(Debug, Default)]
pub struct LoginRequest {
    pub mode: Option<Mode>,
    pub no_browser: bool,
    pub env_var: Option<String>,
    pub secret_ref: Option<String>,
    pub stdin: bool,
    pub dry_run: bool,
    pub name: Option<String>,
    pub base_url: Option<String>,
    /// Allow a loopback or private base URL (implied for local).
    pub allow_local_base_url: bool,
    pub issuer: Option<String>,
    pub client_id: Option<String>,
    pub project_id: Option<String>,
    pub service_account: Option<PathBuf>,
}

/// The flow craik picked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Flow {
    /// An API key read from stdin, a hidden prompt or (openai) the
    /// environment, stored in the secret store.
    ApiKey,
    /// A profile that reads the key from an env var or secret reference.
    Reference,
    OAuth,
    ClaudeCli,
    Adc,
    ServiceAccount,
}

impl Flow {
    /// How the profile gets its credential, in words.
    pub fn describe(self) -> &'static str {
        match self {
            Flow::ApiKey => "an API key kept in the secret store",
            Flow::Reference => "a key read at use time from the variable or file named",
            Flow::OAuth => "an OAuth sign-in, refreshed by craik",
            Flow::ClaudeCli => "the Claude CLI's own login",
            Flow::Adc => "Google application default credentials",
            Flow::ServiceAccount => "a Google service account",
        }
    }
}

/// How `auth login --mode` asks to sign in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    ApiKey,
    OAuth,
    ClaudeCli,
    Adc,
    ServiceAccount,
}

impl Mode {
    pub const ALL: [Mode; 5] = [
        Mode::ApiKey,
        Mode::OAuth,
        Mode::ClaudeCli,
        Mode::Adc,
        Mode::ServiceAccount,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::ApiKey => "api-key",
            Mode::OAuth => "oauth",
            Mode::ClaudeCli => "claude-cli",
            Mode::Adc => "adc",
            Mode::ServiceAccount => "service-account",
        }
    }
}

/// Picks the strongest flow the provider supports, given the flags.
pub fn pick_flow(family: Family, req: &LoginRequest) -> crate::Result<Flow> {
    let reference = req.env_var.is_some() || req.secret_ref.is_some();
    let mode = req.mode;
    let bad_mode = |m: Mode| {
        Err(Error::input(
            format!("--mode={} does not apply to {family}", m.as_str()),
            "openai: api-key, oauth; anthropic: claude-cli, api-key; gemini: adc, service-account, api-key; local: api-key",
        ))
    };
    Ok(match (family, mode) {
        (_, Some(Mode::ApiKey)) if reference => Flow::Reference,
        (_, Some(Mode::ApiKey)) => Flow::ApiKey,
        (_, None) if reference => Flow::Reference,
        (Family::OpenAi, Some(Mode::OAuth)) => Flow::OAuth,
        (Family::OpenAi, None) => {
            let env_key = std::env::var_os("OPENAI_API_KEY").is_some_and(|v| !v.is_empty());
            if req.no_browser || req.dry_run || env_key || req.stdin {
                Flow::ApiKey
            } else {
                Flow::OAuth
            }
        }
        (Family::Anthropic, None | Some(Mode::ClaudeCli)) => Flow::ClaudeCli,
        (Family::Gemini, Some(Mode::ServiceAccount)) => Flow::ServiceAccount,
        (Family::Gemini, None) if req.service_account.is_some() => Flow::ServiceAccount,
        (Family::Gemini, None | Some(Mode::Adc)) => Flow::Adc,
        (Family::ChatCompletions, None) => Flow::ApiKey,
        (_, Some(m)) => return bad_mode(m),
    })
}

#[derive(Debug, Serialize)]
pub struct LoginResult {
    pub profile: String,
    pub kind: String,
    pub flow: Flow,
    pub written: bool,
    pub note: Option<String>,
}

fn on_path(cmd: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(cmd).is_file()))
}

use std::path::PathBuf;

/// Stores a captured key as a `keyring-ref` profile (replacing one of the
/// same id) plus its single-member pool.
fn store_key(
    ctx: &mut Context,
    id: &ProfileId,
    key: &str,
    base_url: Option<String>,
    allow_local: bool,
) -> crate::Result<()> {
    let existing = ProfileStore::new(&ctx.home).load()?.get(id).cloned();
    let base_url = base_url.or_else(|| existing.as_ref().and_then(|p| p.base_url.clone()));
    manage::add_profile(
        ctx,
        AddRequest {
            id: id.clone(),
            kind: Kind::KeyringRef,
            env_var: None,
            secret_ref: None,
            secret: Some(zeroize::Zeroizing::new(key.to_string())),
            base_url,
            allow_local_base_url: allow_local,
            force: true,
            command: Vec::new(),
            extract: None,
            exchange: None,
            stigmem: None,
        },
    )?;
    pool::create(&ctx.home, id, Strategy::Failover, &[(id.clone(), 1)], true)?;
    Ok(())
}

/// Inserts (or replaces) a profile made by a login flow, with its receipt.
fn put_profile(ctx: &mut Context, profile: Profile, identity: Option<String>) -> crate::Result<()> {
    ctx.audit()?;
    let operator = crate::operator::current(ctx)?;
    let home = ctx.home.clone();
    let id = profile.id.clone();
    let old = ProfileStore::new(&home).update(|f| {
        let old = f.get(&id).cloned();
        ctx.record(
            crate::audit::NewReceipt::new(
                crate::audit::ReceiptKind::ProfileAdded,
                crate::audit::Status::Ok,
            )
            .profile(
                &id.to_string(),
                profile.kind.as_str(),
                profile.provider_family.as_str(),
            )
            .identity(identity.clone())
            .operator(operator.clone())
            .detail("replaced", old.is_some()),
        )?;
        f.upsert(profile.clone());
        Ok(old)
    })?;
    // A replaced profile's stored secrets go.
    if let Some(old) = old {
        for k in [
            crate::profile::META_HANDLE,
            crate::credential::oauth::META_ACCESS,
            crate::credential::oauth::META_REFRESH,
        ] {
            if let Some(h) = old.meta(k)
                && profile.meta(k) != Some(h)
            {
                let _ = ctx.secrets.delete(h);
            }
        }
    }
    pool::create(&ctx.home, &id, Strategy::Failover, &[(id.clone(), 1)], true)?;
    Ok(())
}

/// `craik auth login <provider>`. `read_key` supplies a captured key
/// (stdin or a hidden prompt); `on_event` is told the browser URL.
pub fn login(
    ctx: &mut Context,
    family: Family,
    req: &LoginRequest,
    read_key: impl FnOnce() -> crate::Result<zeroize::Zeroizing<String>>,
    on_event: impl FnMut(&crate::operator::LoginEvent),
) -> crate::Result<LoginResult> {
    let flow = pick_flow(family, req)?;
    let name = req.name.clone().unwrap_or_else(|| "default".to_string());
    // One rule for every flow: a loopback or private endpoint needs
    // --allow-local-base-url (local endpoints excepted).
    let allow_local = req.allow_local_base_url || family == Family::ChatCompletions;
    if let Some(url) = &req.base_url {
        crate::profile::check_base_url(url, allow_local).map_err(ProfileError::from)?;
    }
    match flow {
        Flow::Reference => {
            let r = setup(
                ctx,
                SetupRequest {
                    family,
                    name,
                    base_url: req.base_url.clone(),
                    env_var: req.env_var.clone(),
                    secret_ref: req.secret_ref.clone(),
                    allow_local_base_url: allow_local,
                    dry_run: req.dry_run,
                    // A login replaces the profile, as its other flows do.
                    force: true,
                },
            )?;
            Ok(LoginResult {
                profile: r.id,
                kind: r.kind,
                flow,
                written: r.written,
                note: r.next_step,
            })
        }
        Flow::ApiKey => {
            let id = ProfileId::new(family, &name)?;
            if family == Family::ChatCompletions
                && req.base_url.is_none()
                && ProfileStore::new(&ctx.home)
                    .load()?
                    .get(&id)
                    .and_then(|p| p.base_url.clone())
                    .is_none()
            {
                return Err(Error::input(
                    format!("{id} needs a base URL"),
                    "pass --base-url, or run craik auth setup local --base-url URL first",
                ));
            }
            let from_env = family == Family::OpenAi
                && !req.stdin
                && std::env::var("OPENAI_API_KEY").is_ok_and(|v| !v.is_empty());
            let key = if from_env {
                zeroize::Zeroizing::new(std::env::var("OPENAI_API_KEY").unwrap_or_default())
            } else {
                read_key()?
            };
            check_key_shape(family, key.trim())?;
            if !req.dry_run {
                store_key(ctx, &id, key.trim(), req.base_url.clone(), allow_local)?;
            }
            Ok(LoginResult {
                profile: id.to_string(),
                kind: Kind::KeyringRef.to_string(),
                flow,
                written: !req.dry_run,
                note: from_env.then(|| "stored the key from OPENAI_API_KEY in the secret store; you can unset the variable now".to_string()),
            })
        }
        Flow::ClaudeCli => {
            let id: ProfileId = CLAUDE_MARKER.parse()?;
            if !on_path("claude") {
                return Err(Error::input(
                    "the Claude CLI (claude) is not on PATH",
                    "install Claude Code, run `claude` once to sign in, then run craik auth login anthropic again",
                ));
            }
            if !req.dry_run {
                put_profile(ctx, Profile::new(id.clone(), Kind::Marker), None)?;
            }
            Ok(LoginResult {
                profile: id.to_string(),
                kind: Kind::Marker.to_string(),
                flow,
                written: !req.dry_run,
                note: Some("calls through this profile run with the Claude CLI's own session; craik removes ANTHROPIC_API_KEY, ANTHROPIC_TOKEN, ANTHROPIC_AUTH_TOKEN and CLAUDE_CODE_OAUTH_TOKEN from the child".into()),
            })
        }
        Flow::OAuth => {
            let id = ProfileId::new(family, &name)?;
            let config = crate::operator::OidcConfig {
                issuer: req
                    .issuer
                    .clone()
                    .unwrap_or_else(|| OPENAI_ISSUER.to_string()),
                client_id: req
                    .client_id
                    .clone()
                    .unwrap_or_else(|| OPENAI_CLIENT_ID.to_string()),
                scopes_chosen: true,
                scopes: ["openid", "profile", "email", "offline_access"]
                    .map(String::from)
                    .to_vec(),
                groups_claim: "groups".into(),
                ca_file: std::env::var("CRAIK_OIDC_CA_FILE").ok().map(PathBuf::from),
            };
            crate::operator::check_issuer(&config.issuer)?;
            if req.dry_run {
                return Ok(LoginResult {
                    profile: id.to_string(),
                    kind: Kind::OAuth.to_string(),
                    flow,
                    written: false,
                    note: None,
                });
            }
            ctx.audit()?;
            let mut issuer = crate::operator::Issuer::open(&ctx.home, &config)?;
            let tokens = crate::operator::browser_login(&mut issuer, on_event)?;
            let token_endpoint = issuer
                .metadata
                .token_endpoint()
                .map(|u| u.url().to_string())
                .ok_or_else(|| {
                    Error::input("the issuer has no token endpoint", "check --issuer")
                })?;
            let access = ctx.secrets.put(
                &crate::secret::purpose::oauth_access(&id.to_string()),
                tokens.access_token.expose_secret().as_bytes(),
            )?;
            let refresh = match &tokens.refresh_token {
                Some(rt) => Some(ctx.secrets.put(
                    &crate::secret::purpose::oauth_refresh(&id.to_string()),
                    rt.expose_secret().as_bytes(),
                )?),
                None => None,
            };
            let now = Utc::now();
            let expires = now
                + chrono::Duration::seconds(
                    tokens
                        .expires_in
                        .map(|d| d.as_secs())
                        .unwrap_or(3600)
                        .min(86_400) as i64,
                );
            let mut p = Profile::new(id.clone(), Kind::OAuth);
            let m = &mut p.metadata;
            m.insert(crate::credential::oauth::META_SOURCE.into(), "oidc".into());
            m.insert(crate::credential::oauth::META_ACCESS.into(), access.clone());
            if let Some(r) = &refresh {
                m.insert(crate::credential::oauth::META_REFRESH.into(), r.clone());
            }
            m.insert(
                crate::credential::oauth::META_TOKEN_ENDPOINT.into(),
                token_endpoint,
            );
            m.insert(
                crate::credential::oauth::META_ISSUER.into(),
                config.issuer.clone(),
            );
            m.insert(
                crate::credential::oauth::META_CLIENT_ID.into(),
                config.client_id.clone(),
            );
            m.insert(
                crate::credential::oauth::META_EXPIRES.into(),
                expires.to_rfc3339(),
            );
            m.insert(
                crate::credential::oauth::META_LAST_REFRESH.into(),
                now.to_rfc3339(),
            );
            p.base_url = req.base_url.clone();
            let identity = ctx.audit_key()?.credential_account(
                family.as_str(),
                &format!("{}|{}", tokens.claims.issuer, tokens.claims.subject),
            );
            if let Err(e) = put_profile(ctx, p, Some(identity)) {
                let _ = ctx.secrets.delete(&access);
                if let Some(r) = refresh {
                    let _ = ctx.secrets.delete(&r);
                }
                return Err(e);
            }
            Ok(LoginResult {
                profile: id.to_string(),
                kind: Kind::OAuth.to_string(),
                flow,
                written: true,
                note: Some(format!(
                    "signed in as {}",
                    tokens.claims.email.unwrap_or(tokens.claims.subject)
                )),
            })
        }
        Flow::Adc | Flow::ServiceAccount => {
            let id = ProfileId::new(family, &name)?;
            let (source, path) = if flow == Flow::ServiceAccount {
                let path = req.service_account.clone().ok_or_else(|| {
                    Error::input(
                        "--mode=service-account needs --service-account FILE",
                        "pass the service-account key file",
                    )
                })?;
                ("service-account", path)
            } else {
                let path = std::env::var_os("GOOGLE_APPLICATION_CREDENTIALS")
                    .filter(|p| !p.is_empty())
                    .map(PathBuf::from)
                    .or_else(|| std::env::home_dir().map(|h| h.join(".config/gcloud/application_default_credentials.json")))
                    .filter(|p| p.exists())
                    .ok_or_else(|| {
                        Error::input(
                            "no Application Default Credentials found (GOOGLE_APPLICATION_CREDENTIALS is not set and the gcloud ADC file does not exist)",
                            "run: gcloud auth application-default login, or use --service-account FILE",
                        )
                    })?;
                ("adc", path)
            };
            let path = std::fs::canonicalize(&path)
                .map_err(|e| Error::input(format!("{}: {e}", path.display()), "check the path"))?;
            check_google_file(&path, flow == Flow::ServiceAccount)?;
            if !req.dry_run {
                let mut p = Profile::new(id.clone(), Kind::OAuth);
                p.metadata
                    .insert(crate::credential::oauth::META_SOURCE.into(), source.into());
                p.metadata.insert(
                    crate::credential::oauth::META_PATH.into(),
                    path.display().to_string(),
                );
                if let Some(proj) = &req.project_id {
                    p.metadata
                        .insert(crate::credential::oauth::META_PROJECT.into(), proj.clone());
                }
                p.base_url = req.base_url.clone();
                put_profile(ctx, p, None)?;
            }
            Ok(LoginResult {
                profile: id.to_string(),
                kind: Kind::OAuth.to_string(),
                flow,
                written: !req.dry_run,
                note: Some("access tokens are minted at use time and cached until shortly before they expire; craik stores no Google refresh token".into()),
            })
        }
    }
}

/// Checks a Google credential file: owner-only and of the expected type.
fn check_google_file(path: &std::path::Path, service_account: bool) -> crate::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path)
        .map_err(|e| Error::input(format!("{}: {e}", path.display()), "check the path"))?;
    if m.mode() & 0o077 != 0 || m.uid() != crate::home::current_uid() {
        return Err(Error::input(
            format!(
                "{} can be read by others (mode {:04o})",
                path.display(),
                m.mode() & 0o7777
            ),
            format!("chmod 600 {}", path.display()),
        ));
    }
    let v: serde_json::Value = std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| {
            Error::input(
                format!("{} is not JSON", path.display()),
                "point at a Google credential file",
            )
        })?;
    let t = v.get("type").and_then(|t| t.as_str()).unwrap_or_default();
    let ok = if service_account {
        t == "service_account" && v.get("private_key").is_some() && v.get("client_email").is_some()
    } else {
        matches!(t, "service_account" | "authorized_user")
    };
    if ok {
        Ok(())
    } else {
        Err(Error::input(
            format!(
                "{} is not a {} credential file",
                path.display(),
                if service_account {
                    "service-account key"
                } else {
                    "Google"
                }
            ),
            "download a service-account key, or run gcloud auth application-default login",
        ))
    }
}

use chrono::Utc;

/// One Anthropic credential source considered by `--provider anthropic`.
#[derive(Debug, Clone, Serialize)]
pub struct SourceCheck {
    pub source: String,
    pub active: bool,
    /// Why it was passed over (when not active).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub passed_over: Option<String>,
}

/// The Anthropic sources in order: the Claude CLI marker profile, then
/// `CLAUDE_CODE_OAUTH_TOKEN`, `ANTHROPIC_TOKEN`, `ANTHROPIC_API_KEY`. The
/// first that resolves is active.
pub fn anthropic_sources(ctx: &Context) -> crate::Result<(Vec<SourceCheck>, Option<Profile>)> {
    let mut out = Vec::new();
    let mut chosen: Option<Profile> = None;
    let marker: ProfileId = CLAUDE_MARKER.parse()?;
    let stored = ProfileStore::new(&ctx.home).load()?.get(&marker).cloned();
    let why = match &stored {
        None => Some(
            "no anthropic:claude-cli profile (craik auth login anthropic makes one)".to_string(),
        ),
        Some(_) if !on_path("claude") => Some("the claude CLI is not on PATH".to_string()),
        Some(_) => None,
    };
    if why.is_none() {
        chosen = stored;
    }
    out.push(SourceCheck {
        source: CLAUDE_MARKER.into(),
        active: why.is_none(),
        passed_over: why,
    });
    // The profile `auth login anthropic` / `auth setup anthropic` made.
    let default: ProfileId = ProfileId::new(Family::Anthropic, "default")?;
    let stored_default = ProfileStore::new(&ctx.home).load()?.get(&default).cloned();
    let why = match &stored_default {
        _ if chosen.is_some() => Some(format!("an earlier source ({CLAUDE_MARKER}) is active")),
        None => Some("no anthropic:default profile".to_string()),
        Some(p) => {
            let h = super::health(p, &ctx.secrets);
            (!h.ok).then_some(h.message)
        }
    };
    if why.is_none() {
        chosen = stored_default;
    }
    out.push(SourceCheck {
        source: default.to_string(),
        active: why.is_none(),
        passed_over: why,
    });
    for var in ANTHROPIC_ENV_SOURCES {
        let set = std::env::var_os(var).is_some_and(|v| !v.is_empty());
        let why = if chosen.is_some() {
            Some(format!(
                "an earlier source ({}) is active",
                out.iter()
                    .find(|s| s.active)
                    .map(|s| s.source.as_str())
                    .unwrap_or("?")
            ))
        } else if !set {
            Some(format!("{var} is not set"))
        } else {
            None
        };
        if why.is_none() {
            chosen = Some(env_source_profile(var)?);
        }
        out.push(SourceCheck {
            source: format!("env:{var}"),
            active: why.is_none(),
            passed_over: why,
        });
    }
    Ok((out, chosen))
}

/// The variables `--provider anthropic` reads, in its order.
const ANTHROPIC_ENV_SOURCES: [&str; 3] = [
    "CLAUDE_CODE_OAUTH_TOKEN",
    "ANTHROPIC_TOKEN",
    "ANTHROPIC_API_KEY",
];

/// The implicit profile `anthropic:env.<VAR>` of an environment source.
fn env_source_profile(var: &str) -> crate::Result<Profile> {
    let mut p = Profile::new(
        ProfileId::new(Family::Anthropic, &format!("env.{var}"))?,
        Kind::ApiKey,
    );
    p.metadata
        .insert(crate::profile::META_ENV_VAR.into(), var.into());
    Ok(p)
}

/// The implicit profile `id` names, when it is one of `--provider
/// anthropic`'s environment sources (`anthropic:env.ANTHROPIC_API_KEY`),
/// so a denial's hint (`policy explain --profile ...`) and `auth approve`
/// find it although it is not stored.
pub fn implicit_profile(id: &ProfileId) -> Option<Profile> {
    let var = id.name().strip_prefix("env.")?;
    (id.family() == Family::Anthropic && ANTHROPIC_ENV_SOURCES.contains(&var))
        .then(|| env_source_profile(var).ok())?
}
