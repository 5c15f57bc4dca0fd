//! How a profile becomes credential material: the sources (environment,
//! keyring reference, secret reference, marker), OAuth refresh and minting,
//! adding/removing/migrating profiles, and onboarding (`auth setup`,
//! `auth login`).

pub mod agent_login;
pub mod bridge;
pub mod exchange;
pub mod manage;
pub mod oauth;
pub mod onboard;
pub mod source;
pub mod stigmem;

pub use source::{Health, SourceError, backend_label};

use zeroize::Zeroizing;

use crate::context::Context;

use crate::profile::{Kind, META_ENV_VAR, META_HANDLE, META_REF, Profile};
use crate::secret::Secrets;
use crate::secret::reference::SecretRef;

/// Checks that the credential is there, without returning it.
pub fn health(profile: &Profile, secrets: &Secrets) -> Health {
    let backend = source::backend_label(profile, secrets);
    let (ok, message) = match profile.kind {
        Kind::ApiKey => {
            let var = profile.meta(META_ENV_VAR).unwrap_or("?");
            match std::env::var_os(var) {
                Some(v) if !v.is_empty() => (true, format!("env var {var} is set")),
                Some(_) => (false, format!("env var {var} is empty")),
                None => (false, format!("env var {var} is not set")),
            }
        }
        Kind::KeyringRef => match profile.meta(META_HANDLE).map(|h| secrets.exists(h)) {
            Some(Ok(true)) => (true, "secret present".to_string()),
            Some(Ok(false)) => (false, "secret missing from the store".to_string()),
            Some(Err(e)) => (false, format!("secret store: {e}")),
            None => (false, "no handle".to_string()),
        },
        Kind::SecretRef => match profile.meta(META_REF).map(SecretRef::parse) {
            Some(Ok(r)) => match r.check() {
                Ok(()) => (true, format!("{r} resolves")),
                Err(e) => (false, e.to_string()),
            },
            _ => (false, "bad reference".to_string()),
        },
        Kind::Marker => (
            true,
            "no secret (delegated to the provider's CLI)".to_string(),
        ),
        Kind::OAuth => oauth::health(profile),
        Kind::CliBridge => bridge::health(profile),
        Kind::OidcExchange => exchange::health(profile),
        Kind::StigmemRef => stigmem::health(profile),
    };
    Health {
        ok,
        backend,
        message,
    }
}

/// A profile's credential material: OAuth tokens are refreshed or minted
/// first when needed; everything else comes from its source.
///
/// Only the broker's pipeline calls this, once the receipt that starts the
/// call is durable ([`crate::broker::pipeline`]); nothing else in craik
/// hands material out.
/// `operator` is the one the call was authorized for: an `oidc-exchange`
/// profile exchanges that operator's token, and no other.
pub(crate) fn material(
    ctx: &mut Context,
    p: &Profile,
    operator: Option<&crate::audit::Operator>,
) -> crate::Result<crate::secret::SecretString> {
    let read = match p.kind {
        Kind::OAuth => oauth::access_token(ctx, p)?,
        Kind::OidcExchange => exchange::access_token(ctx, p, operator)?,
        _ => source::resolve(p, &ctx.secrets)?,
    };
    Ok(crate::secret::hold(&read))
}

/// The identity hash of a profile's credential (`material` when the
/// caller has it, as `auth add` does, else read now), for the receipts of
/// profile changes. The material never leaves this function.
pub(crate) fn identity_hash(
    ctx: &mut Context,
    profile: &Profile,
    material: Option<&str>,
) -> crate::Result<Option<String>> {
    let family = profile.provider_family.as_str();
    let material: Option<Zeroizing<String>> = match material {
        Some(m) => Some(Zeroizing::new(m.to_string())),
        // A bridge is not run for a profile change: running it is a call.
        None if matches!(
            profile.kind,
            Kind::Marker | Kind::CliBridge | Kind::OidcExchange | Kind::StigmemRef
        ) =>
        {
            None
        }
        None => source::resolve(profile, &ctx.secrets).ok(),
    };
    match material {
        Some(m) => Ok(Some(ctx.audit_key()?.credential_material(family, &m))),
        None => Ok(None),
    }
}

/// What an approval binds to: the credential the profile uses now, as a
/// keyed hash. For a stored or referenced secret it is the material's
/// identity hash (a different key under the same profile is a different
/// credential); for an OAuth profile, whose token rotates, a cli-bridge
/// (its command's answer may rotate too) and a marker, it is how the
/// profile names the credential (its kind, handles, token
/// endpoint, base URL and when it was added). The material never leaves
/// this function.
pub(crate) fn binding(ctx: &mut Context, profile: &Profile) -> crate::Result<String> {
    use crate::profile::oauth_meta::{META_EXPIRES, META_LAST_REFRESH};
    let family = profile.provider_family.as_str();
    if !matches!(
        profile.kind,
        Kind::OAuth | Kind::Marker | Kind::CliBridge | Kind::OidcExchange | Kind::StigmemRef
    ) && let Some(h) = identity_hash(ctx, profile, None)?
    {
        // The same key sent elsewhere is not what was approved either.
        let endpoint = crate::provider::base_url(profile).unwrap_or_default();
        return Ok(ctx
            .audit_key()?
            .credential_profile(family, &format!("{h} {endpoint}")));
    }
    let meta: std::collections::BTreeMap<&str, &str> = profile
        .metadata
        .iter()
        .filter(|(k, _)| {
            let moving = [
                META_EXPIRES,
                META_LAST_REFRESH,
                crate::profile::exchange::META_EXCHANGED_FOR,
            ]
            .contains(&k.as_str());
            // An exchange's cached token comes and goes; the profile names
            // the same credential before and after.
            let cached = profile.kind == Kind::OidcExchange
                && k.as_str() == crate::profile::oauth_meta::META_ACCESS;
            !moving && !cached
        })
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let fingerprint = serde_json::json!({
        "id": profile.id.to_string(),
        "kind": profile.kind.as_str(),
        "base_url": profile.base_url,
        "metadata": meta,
        "created_at": matches!(
        profile.kind,
        Kind::OAuth | Kind::Marker | Kind::CliBridge | Kind::OidcExchange | Kind::StigmemRef
    )
            .then(|| profile.created_at.to_rfc3339()),
    })
    .to_string();
    Ok(ctx.audit_key()?.credential_profile(family, &fingerprint))
}
