//! Provider onboarding: `craik auth setup` and the key-shape checks used
//! when capturing API keys.

use serde::Serialize;

use crate::Error;
use crate::auth::{self, AddRequest};
use crate::context::Context;
use crate::pool::{self, Strategy};
use crate::profile::{Family, Kind, Profile, ProfileId, ProfileStore};
use crate::provider;
use crate::source::{self, Health};

/// The providers `auth setup` and `auth login` know.
pub fn parse_provider(s: &str) -> crate::Result<Family> {
    match s {
        "openai" => Ok(Family::OpenAi),
        "anthropic" => Ok(Family::Anthropic),
        "gemini" => Ok(Family::Gemini),
        "local" | "chat_completions" => Ok(Family::ChatCompletions),
        other => Err(Error::input(
            format!("unknown provider {other:?}"),
            "use openai, anthropic, gemini or local",
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
                "that does not look like a {family} key: expected {expected} (the value was not stored{})",
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
            .unwrap_or_else(|| provider::info(req.family).env_api_key.to_string())
    });
    let add = AddRequest {
        id: id.clone(),
        kind,
        env_var: env_var.clone(),
        secret_ref: req.secret_ref.clone(),
        secret: None,
        base_url: req.base_url.clone(),
        allow_local_base_url: req.allow_local_base_url,
        force: false,
    };
    auth::validate_add(&add)?;
    let existing = ProfileStore::new(&ctx.home).load()?.get(&id).cloned();
    if existing.is_some() && !req.dry_run {
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
        let p = auth::add_profile(ctx, add)?;
        pool::create(&ctx.home, &id, Strategy::Failover, &[(id.clone(), 1)], true)?;
        p
    };
    let health = source::health(&profile, &ctx.secrets);
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
