//! `craik agent import` and `craik agent detect`: the credentials agents
//! keep, moved into craik's secret store under profiles.
//!
//! An API key becomes a `keyring-ref` profile; a subscription login an
//! `oauth` profile with `oauth_source` `agent` (its access and refresh
//! tokens under two handles). The profile keeps only handles and
//! metadata: the agent, the credential type, where it came from, the
//! expiry, the account and plan where the agent records them. Importing
//! again replaces an earlier import of the same agent in place (grants,
//! creation time and handles kept, so approvals stay bound), and refuses
//! to touch a profile made any other way.

use std::path::Path;

use serde::Serialize;
use zeroize::Zeroizing;

use super::source::{self, Checked, CredentialType, Described, Discovery, Found};
use super::{Agent, AgentError};
use crate::audit::{ReceiptKind, Status};
use crate::context::Context;
use crate::profile::oauth_meta::{
    META_ACCESS, META_EXPIRES, META_LAST_REFRESH, META_REFRESH, META_SOURCE, META_TOKEN_ENDPOINT,
};
use crate::profile::{Kind, META_HANDLE, Profile, ProfileId, ProfileStore};

pub use crate::profile::oauth_meta::{META_AGENT, META_IMPORTED_FROM, SOURCE_AGENT};

/// Metadata keys of an imported profile.
pub const META_CREDENTIAL_TYPE: &str = "credential_type";
pub const META_ACCOUNT: &str = "account";
pub const META_PLAN: &str = "plan";

/// What `agent import` was asked.
pub struct ImportRequest<'a> {
    pub agent: Agent,
    pub from: Option<&'a Path>,
    /// The profile name (default: the agent's name).
    pub name: Option<String>,
    pub dry_run: bool,
    /// Where the profile's calls go (default: the provider's; an earlier
    /// import's is kept).
    pub base_url: Option<String>,
    /// Where craik refreshes a subscription login (default: the agent
    /// vendor's token endpoint; an earlier import's is kept).
    pub token_url: Option<String>,
    pub allow_local_base_url: bool,
}

/// Where a subscription login's calls go when the import does not say:
/// Codex's ChatGPT login talks to chatgpt.com's backend, Gemini CLI's
/// Google login to Code Assist; Claude's to Anthropic's public API.
fn subscription_base_url(agent: Agent) -> Option<&'static str> {
    match agent {
        // Codex's paths start at /backend-api (see agent run).
        Agent::Codex => Some("https://chatgpt.com"),
        Agent::Gemini => Some("https://cloudcode-pa.googleapis.com"),
        _ => None,
    }
}

/// One profile an import made (or would make).
#[derive(Debug, Serialize)]
pub struct Imported {
    pub id: String,
    pub kind: String,
    #[serde(flatten)]
    pub credential: Described,
    /// An earlier import of the same agent was replaced.
    pub replaced: bool,
}

#[derive(Debug, Serialize)]
pub struct ImportResult {
    pub agent: String,
    pub place: String,
    pub dry_run: bool,
    pub checked: Vec<Checked>,
    pub profiles: Vec<Imported>,
    /// Providers the agent keeps credentials for that craik has no family
    /// for.
    pub skipped: Vec<String>,
    pub warnings: Vec<String>,
}

/// The profile name an import uses by default.
pub fn default_name(agent: Agent) -> &'static str {
    agent.as_str()
}

/// `craik agent import`.
pub fn import(ctx: &mut Context, req: ImportRequest) -> crate::Result<ImportResult> {
    for url in [&req.base_url, &req.token_url].into_iter().flatten() {
        crate::profile::check_base_url(url, req.allow_local_base_url)
            .map_err(crate::profile::ProfileError::from)?;
    }
    let found = source::discover(req.agent, req.from)?;
    let name = req
        .name
        .clone()
        .unwrap_or_else(|| default_name(req.agent).to_string());
    // The lock a refresh of these profiles takes: an import that read the
    // agent's file before a concurrent refresh rotated the login then sees
    // craik's newer login below, and keeps it.
    let _locks = if req.dry_run {
        Vec::new()
    } else {
        found
            .credentials
            .iter()
            .map(|f| {
                let id = ProfileId::new(f.family, &name)?;
                Ok(ctx.home.lock(&format!("oauth-{id}"))?)
            })
            .collect::<crate::Result<Vec<_>>>()?
    };
    let existing = ProfileStore::new(&ctx.home).load()?;
    let mut plan = Vec::new();
    for f in &found.credentials {
        let id = ProfileId::new(f.family, &name)?;
        let old = existing.get(&id).cloned();
        if let Some(o) = &old
            && o.meta(META_AGENT) != Some(req.agent.as_str())
        {
            return Err(AgentError::Taken {
                id: id.to_string(),
                agent: req.agent,
            }
            .into());
        }
        plan.push((id, old));
    }
    let mut warnings = Vec::new();
    let mut profiles = Vec::new();
    if !req.dry_run && !plan.is_empty() {
        // Fail closed before touching anything.
        ctx.audit()?;
    }
    for (f, (id, old)) in found.credentials.iter().zip(plan) {
        if f.expired() {
            warnings.push(format!(
                "{id}: the {} token expired at {}; the agent refreshes it on its next run, or sign in with {} again and re-import",
                req.agent,
                f.expires_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
                req.agent.program()
            ));
        }
        let kind = match f.credential_type {
            CredentialType::ApiKey => Kind::KeyringRef,
            CredentialType::Subscription => Kind::OAuth,
        };
        // craik refreshed this login, and the agent's file holds nothing
        // newer: the login craik wrote back, or an older one whose refresh
        // token may be spent. Keep craik's (and its refresh mark).
        let newer = old.as_ref().filter(|o| {
            o.kind == kind
                && kind == Kind::OAuth
                && o.meta(META_LAST_REFRESH).is_some()
                && o.meta(META_ACCOUNT) == f.account.as_deref()
                && o.meta(META_EXPIRES)
                    .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                    .zip(f.expires_at)
                    .is_some_and(|(mine, theirs)| mine.timestamp() >= theirs.timestamp())
        });
        if newer.is_some() {
            warnings.push(format!(
                "{id}: kept the login craik refreshed; the one in {} is not newer",
                found.place
            ));
        } else if !req.dry_run {
            store(
                ctx,
                req.agent,
                &found,
                f,
                &id,
                old.as_ref(),
                (req.base_url.as_deref(), req.token_url.as_deref()),
            )?;
        }
        profiles.push(Imported {
            id: id.to_string(),
            kind: kind.to_string(),
            credential: f.describe(),
            replaced: old.is_some() && newer.is_none(),
        });
    }
    Ok(ImportResult {
        agent: req.agent.to_string(),
        place: found.place.clone(),
        dry_run: req.dry_run,
        checked: found.checked,
        profiles,
        skipped: found.skipped,
        warnings,
    })
}

/// Stores one credential: its receipt first, then the secrets, then the
/// profile.
fn store(
    ctx: &mut Context,
    agent: Agent,
    found: &Discovery,
    f: &Found,
    id: &ProfileId,
    old: Option<&Profile>,
    (base_url, token_url): (Option<&str>, Option<&str>),
) -> crate::Result<()> {
    let operator = crate::operator::current(ctx)?;
    let kind = match f.credential_type {
        CredentialType::ApiKey => Kind::KeyringRef,
        CredentialType::Subscription => Kind::OAuth,
    };
    let mut profile = Profile::new(id.clone(), kind);
    let same_kind = old.filter(|o| o.kind == kind);
    if let Some(o) = old {
        profile.created_at = o.created_at;
        profile.grants = o.grants.clone();
    }
    // A subscription and an API key of one agent talk to different APIs:
    // a base URL set for the one is not kept for the other.
    profile.base_url = base_url
        .map(str::to_string)
        .or_else(|| same_kind.and_then(|o| o.base_url.clone()))
        .or_else(|| {
            (kind == Kind::OAuth)
                .then(|| subscription_base_url(agent).map(str::to_string))
                .flatten()
        });
    let meta = &mut profile.metadata;
    meta.insert(META_AGENT.into(), agent.to_string());
    meta.insert(
        META_CREDENTIAL_TYPE.into(),
        f.credential_type.as_str().into(),
    );
    meta.insert(META_IMPORTED_FROM.into(), found.place.clone());
    if let Some(a) = &f.account {
        meta.insert(META_ACCOUNT.into(), a.clone());
    }
    if let Some(p) = &f.plan {
        meta.insert(META_PLAN.into(), p.clone());
    }
    if let Some(t) = f.expires_at {
        meta.insert(META_EXPIRES.into(), t.to_rfc3339());
    }
    let sid = id.to_string();
    // (handle key, purpose, value): the handles an earlier import made
    // are kept (replaced in place after the receipt); new ones are made
    // now and dropped again if the receipt cannot be written.
    let mut secrets: Vec<(&str, String, &Zeroizing<String>)> = Vec::new();
    match kind {
        Kind::KeyringRef => {
            secrets.push((
                META_HANDLE,
                crate::secret::purpose::profile(&sid),
                &f.secret,
            ));
        }
        _ => {
            profile
                .metadata
                .insert(META_SOURCE.into(), SOURCE_AGENT.into());
            // Where craik refreshes it: what this import or an earlier
            // one named, else the agent vendor's endpoint.
            let endpoint = token_url
                .map(str::to_string)
                .or_else(|| {
                    same_kind
                        .and_then(|o| o.meta(META_TOKEN_ENDPOINT))
                        .map(str::to_string)
                })
                .or_else(|| {
                    crate::credential::agent_login::vendor(agent.as_str())
                        .map(|v| v.token_url.to_string())
                });
            if let (Some(e), Some(_)) = (endpoint, &f.refresh) {
                profile.metadata.insert(META_TOKEN_ENDPOINT.into(), e);
            }
            secrets.push((
                META_ACCESS,
                crate::secret::purpose::oauth_access(&sid),
                &f.secret,
            ));
            if let Some(r) = &f.refresh {
                secrets.push((META_REFRESH, crate::secret::purpose::oauth_refresh(&sid), r));
            }
        }
    }
    let mut made = Vec::new();
    let mut replace = Vec::new();
    for (key, purpose, value) in &secrets {
        let kept = old
            .filter(|o| o.kind == kind)
            .and_then(|o| o.meta(key))
            .filter(|h| ctx.secrets.exists(h).unwrap_or(false))
            .map(str::to_string);
        let handle = match kept {
            Some(h) => {
                replace.push((h.clone(), *value));
                h
            }
            None => {
                let h = ctx.secrets.put(purpose, value.as_bytes())?;
                made.push(h.clone());
                h
            }
        };
        profile.metadata.insert((*key).into(), handle);
    }
    profile.validate()?;
    let receipt =
        crate::credential::identity_hash(ctx, &profile, Some(&f.secret)).and_then(|identity| {
            ctx.record(
                profile
                    .receipt(ReceiptKind::ProfileAdded, Status::Ok)
                    .identity(identity)
                    .operator(operator.clone())
                    .detail("agent", agent.as_str())
                    .detail("credential_type", f.credential_type.as_str())
                    .detail("imported_from", found.place.as_str())
                    .detail("replaced", old.is_some())
                    .detail("base_url", profile.base_url.as_deref().unwrap_or_default())
                    .detail(
                        "token_endpoint",
                        profile.meta(META_TOKEN_ENDPOINT).unwrap_or_default(),
                    ),
            )
        });
    if let Err(e) = receipt {
        for h in made {
            let _ = ctx.secrets.delete(&h);
        }
        return Err(e);
    }
    for (h, value) in replace {
        ctx.secrets.replace(&h, value.as_bytes())?;
    }
    // Handles of the earlier import this one no longer uses (a refresh
    // token the new login lacks, a kind that changed).
    let stale: Vec<String> = old
        .map(|o| {
            [META_HANDLE, META_ACCESS, META_REFRESH]
                .iter()
                .filter_map(|k| o.meta(k))
                .filter(|h| !profile.metadata.values().any(|v| v == h))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let home = ctx.home.clone();
    ProfileStore::new(&home).update(|file| {
        file.upsert(profile.clone());
        Ok(())
    })?;
    for h in stale {
        let _ = ctx.secrets.delete(&h);
    }
    Ok(())
}

/// What `agent detect` shows of one agent.
#[derive(Debug, Serialize)]
pub struct Detected {
    pub agent: String,
    /// Where its credentials are, when found.
    pub place: Option<String>,
    pub checked: Vec<Checked>,
    pub credentials: Vec<Described>,
    pub skipped: Vec<String>,
    /// Why nothing can be imported, when something is there but refused
    /// or unreadable.
    pub error: Option<String>,
    pub hint: Option<String>,
    /// The profile an import would write (and whether it exists).
    pub profile: Option<String>,
    pub imported: bool,
}

/// `craik agent detect`: every agent's credentials on this machine,
/// without importing or printing material.
pub fn detect(ctx: &Context) -> crate::Result<Vec<Detected>> {
    let store = ProfileStore::new(&ctx.home).load()?;
    let mut out = Vec::new();
    for agent in Agent::ALL {
        let d = match source::discover(agent, None) {
            Ok(found) => {
                let profile = agent
                    .family()
                    .and_then(|f| ProfileId::new(f, default_name(agent)).ok());
                let imported = profile.as_ref().is_some_and(|id| {
                    store
                        .get(id)
                        .is_some_and(|p| p.meta(META_AGENT) == Some(agent.as_str()))
                });
                Detected {
                    agent: agent.to_string(),
                    place: Some(found.place.clone()),
                    credentials: found.credentials.iter().map(Found::describe).collect(),
                    checked: found.checked,
                    skipped: found.skipped,
                    error: None,
                    hint: None,
                    profile: profile.map(|p| p.to_string()),
                    imported,
                }
            }
            Err(AgentError::NotFound { checked, .. }) => Detected {
                agent: agent.to_string(),
                place: None,
                checked,
                credentials: vec![],
                skipped: vec![],
                error: None,
                hint: None,
                profile: None,
                imported: false,
            },
            Err(e) => Detected {
                agent: agent.to_string(),
                place: None,
                checked: vec![],
                credentials: vec![],
                skipped: vec![],
                hint: e.hint(),
                error: Some(e.to_string()),
                profile: None,
                imported: false,
            },
        };
        out.push(d);
    }
    Ok(out)
}
