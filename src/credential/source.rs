//! Turning a profile into credential material, and reporting a profile's
//! health without revealing it.

use serde::Serialize;
use zeroize::Zeroizing;

use crate::profile::{Kind, META_ENV_VAR, META_HANDLE, META_REF, Profile};
use crate::secret::reference::{SecretRef, SecretRefError};
use crate::secret::{SecretError, Secrets};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    #[error("profile {id}: environment variable {var} is not set")]
    EnvMissing { id: String, var: String },
    #[error("profile {id}: {source}")]
    Secret {
        id: String,
        #[source]
        source: SecretError,
    },
    #[error("profile {id}: {source}")]
    Ref {
        id: String,
        #[source]
        source: SecretRefError,
    },
    #[error("profile {id} has no secret material here")]
    NoMaterial { id: String },
    #[error("profile {id}: the stored secret is not valid UTF-8")]
    Encoding { id: String },
    #[error("profile {id}: {why}")]
    OAuth { id: String, why: String },
    /// A `cli-bridge` profile's command gave no credential.
    #[error("profile {id}: {why}")]
    Bridge {
        id: String,
        why: String,
        hint: String,
    },
    /// A `stigmem-ref` profile's node gave no (or a revoked) value.
    #[error("profile {id}: {why}")]
    Stigmem {
        id: String,
        why: String,
        hint: String,
    },
    /// An `oidc-exchange` profile's exchange failed.
    #[error("profile {id}: {why}")]
    Exchange {
        id: String,
        why: String,
        hint: String,
    },
    /// A subscription login imported from an agent that is expired and
    /// could not be refreshed.
    #[error("profile {id}: {why}")]
    AgentLogin {
        id: String,
        agent: String,
        why: String,
    },
}

impl SourceError {
    pub fn hint(&self) -> Option<String> {
        match self {
            SourceError::EnvMissing { var, .. } => {
                Some(format!("export {var} before running craik"))
            }
            SourceError::Secret { source, .. } => source.hint(),
            SourceError::Ref { source, .. } => source.hint(),
            SourceError::NoMaterial { .. } => {
                Some("marker profiles delegate to the provider's own CLI".into())
            }
            SourceError::Encoding { id } => Some(format!(
                "store it again: craik auth add {id} --kind=keyring-ref --force"
            )),
            SourceError::OAuth { id, .. } => Some(format!(
                "check the profile with craik doctor; log in again with craik auth login {}",
                id.split(':').next().unwrap_or_default()
            )),
            SourceError::Bridge { hint, .. }
            | SourceError::Exchange { hint, .. }
            | SourceError::Stigmem { hint, .. } => Some(hint.clone()),
            SourceError::AgentLogin { agent, .. } => Some(format!(
                "sign in with {agent} again, then re-import it: craik agent import {agent}"
            )),
        }
    }
}

/// A profile's redacted health.
#[derive(Debug, Clone, Serialize)]
pub struct Health {
    pub ok: bool,
    /// Where the credential comes from: `env`, `keyutils`, `file`, ...
    pub backend: String,
    /// For example "env var ANTHROPIC_API_KEY is not set", "secret present".
    pub message: String,
}

/// Where a profile's credential comes from, without looking it up.
pub fn backend_label(profile: &Profile, secrets: &Secrets) -> String {
    match profile.kind {
        Kind::ApiKey => "env".into(),
        Kind::KeyringRef => profile
            .meta(META_HANDLE)
            .and_then(|h| secrets.index().ok()?.secrets.get(h).map(|e| e.backend))
            .map(|b| b.to_string())
            .unwrap_or_else(|| "unknown".into()),
        Kind::SecretRef => match profile.meta(META_REF).map(SecretRef::parse) {
            Some(Ok(SecretRef::Env(_))) => "secret-ref:env".into(),
            Some(Ok(SecretRef::File(_))) => "secret-ref:file".into(),
            _ => "secret-ref".into(),
        },
        Kind::Marker => "none".into(),
        Kind::CliBridge => "cli-bridge".into(),
        Kind::OidcExchange => "oidc-exchange".into(),
        Kind::StigmemRef => "stigmem".into(),
        Kind::OAuth => format!(
            "oauth:{}",
            profile
                .meta(crate::profile::oauth_meta::META_SOURCE)
                .unwrap_or("?")
        ),
    }
}

/// The profile's credential material. Marker profiles have none.
pub(crate) fn resolve(
    profile: &Profile,
    secrets: &Secrets,
) -> Result<Zeroizing<String>, SourceError> {
    let id = profile.id.to_string();
    match profile.kind {
        Kind::ApiKey => {
            let var = profile.meta(META_ENV_VAR).unwrap_or_default();
            match std::env::var(var) {
                Ok(v) if !v.is_empty() => Ok(Zeroizing::new(v)),
                _ => Err(SourceError::EnvMissing {
                    id,
                    var: var.to_string(),
                }),
            }
        }
        Kind::KeyringRef => {
            let handle = profile.meta(META_HANDLE).unwrap_or_default();
            let purpose = crate::secret::purpose::profile(&profile.id.to_string());
            let bytes =
                secrets
                    .get_for(handle, &purpose)
                    .map_err(|source| SourceError::Secret {
                        id: id.clone(),
                        source,
                    })?;
            String::from_utf8(bytes.to_vec())
                .map(Zeroizing::new)
                .map_err(|_| SourceError::Encoding { id })
        }
        Kind::SecretRef => {
            let r =
                SecretRef::parse(profile.meta(META_REF).unwrap_or_default()).map_err(|source| {
                    SourceError::Ref {
                        id: id.clone(),
                        source,
                    }
                })?;
            r.resolve()
                .map_err(|source| SourceError::Ref { id, source })
        }
        Kind::Marker => Err(SourceError::NoMaterial { id }),
        Kind::CliBridge => {
            let (command, extract) =
                super::bridge::of(profile).map_err(|why| SourceError::Bridge {
                    id: id.clone(),
                    why,
                    hint: format!("add it again: craik auth add {id} --kind=cli-bridge --command ... --extract ... --force"),
                })?;
            super::bridge::material(&id, &command, &extract).map_err(|e| SourceError::Bridge {
                id,
                hint: e.hint(),
                why: e.to_string(),
            })
        }
        // Needs the operator, the home and a lock: see
        // crate::credential::exchange::access_token.
        Kind::OidcExchange => Err(SourceError::NoMaterial { id }),
        Kind::StigmemRef => {
            let key = match profile.meta(META_HANDLE) {
                Some(h) => Some(
                    secrets
                        .get_for(h, &crate::secret::purpose::stigmem_key(&id))
                        .map_err(|source| SourceError::Secret {
                            id: id.clone(),
                            source,
                        })?,
                ),
                None => None,
            };
            super::stigmem::material(profile, key.as_ref().map(|k| k.as_slice())).map_err(|r| {
                SourceError::Stigmem {
                    id,
                    why: r.why,
                    hint: r.hint,
                }
            })
        }
        // Needs the home (refresh, lock): see crate::credential::oauth::access_token.
        Kind::OAuth => Err(SourceError::OAuth {
            id,
            why: "an OAuth token is obtained through the broker".into(),
        }),
    }
}
