//! Credential profiles and their store, `auth-profiles.json`.
//!
//! A profile names a credential and says how to obtain it; it never holds
//! secret material, only handles and references.

pub mod bridge;
pub mod exchange;
mod id;
pub mod stigmem;
mod store;
mod url_check;

use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use id::{Family, Kind, MAX_NAME_LEN, ProfileId, valid_env_name};
pub use store::{PROFILES_FILE, ProfileFile, ProfileStore};
pub use url_check::{BaseUrlError, check_base_url};

/// Errors about profiles and `auth-profiles.json`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProfileError {
    #[error("invalid profile id {id:?}: {why}")]
    InvalidId { id: String, why: String },
    #[error("unknown provider family {0:?}")]
    UnknownFamily(String),
    #[error("unknown credential kind {0:?}")]
    UnknownKind(String),
    #[error("{path}: {detail}")]
    Corrupt { path: PathBuf, detail: String },
    #[error("profile {0} already exists")]
    Exists(ProfileId),
    #[error("no profile {0}")]
    NotFound(String),
    /// No such profile, but one with a close id exists.
    #[error("no profile {id}")]
    NotFoundNear { id: String, near: String },
    #[error("profile {id}: {detail}")]
    Invalid { id: String, detail: String },
    #[error(transparent)]
    BaseUrl(#[from] BaseUrlError),
    /// `auth-profiles.json` was not written by craik with this home's key.
    #[error("{path} refused: {why} (edited outside craik, or written by a craik before seals)")]
    Unsealed { path: PathBuf, why: String },
}

impl ProfileError {
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            ProfileError::InvalidId { .. } => {
                "ids look like anthropic:work or openai:ci (family: openai, anthropic, gemini, chat_completions or local; name: letters, digits, '.', '_', '-')".into()
            }
            ProfileError::UnknownFamily(_) => {
                "use one of openai, anthropic, gemini, chat_completions, local".into()
            }
            ProfileError::UnknownKind(_) => format!(
                "use one of {}",
                Kind::ALL.map(|k| k.as_str()).join(", ")
            ),
            ProfileError::Corrupt { .. } => {
                "the file was left as it was; fix it by hand (see schemas/auth-profiles.schema.json) or restore it from a backup".into()
            }
            ProfileError::Exists(id) => {
                format!("pass --force to replace it, or remove it first: craik auth remove {id}")
            }
            ProfileError::NotFound(_) => "list the profiles with: craik auth status".into(),
            ProfileError::NotFoundNear { near, .. } => {
                format!("did you mean {near}? (list the profiles with: craik auth status)")
            }
            ProfileError::Invalid { .. } => "see craik auth add --help".into(),
            ProfileError::BaseUrl(e) => return e.hint(),
            ProfileError::Unsealed { .. } => {
                "restore the file from a backup; if the change is yours, accept it with: craik auth reseal (a receipt records it)".into()
            }
        })
    }
}

/// Which operators may use a profile. A profile nobody ever granted is
/// open to everyone policy allows; once granted it stays `restricted`,
/// even after its last grant is revoked, until it is opened again
/// explicitly (`craik auth grant <id> --to-everyone`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grants {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subjects: Vec<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub restricted: bool,
    /// The issuer the granted subjects and groups are of (the granting
    /// operator's): the same names from another identity provider are
    /// other people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// The admins policies named when the grants were last changed: later
    /// changes need them too, whichever policies are passed then.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub admins: Vec<Admins>,
}

/// One envelope's `admin_groups` and `admin_subjects`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Admins {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subjects: Vec<String>,
}

impl Admins {
    pub fn admit(&self, op: &crate::audit::Operator) -> bool {
        self.subjects.contains(&op.subject) || op.groups.iter().any(|g| self.groups.contains(g))
    }
}

impl Grants {
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty() && self.subjects.is_empty()
    }

    /// Whether only granted operators may use the profile.
    pub fn restricts(&self) -> bool {
        self.restricted || !self.is_empty()
    }

    /// Whether `op` is granted the profile (by subject or a group).
    pub fn admit(&self, op: &crate::audit::Operator) -> bool {
        self.issuer.as_ref().is_none_or(|i| *i == op.issuer)
            && (self.subjects.contains(&op.subject)
                || op.groups.iter().any(|g| self.groups.contains(g)))
    }

    fn open(&self) -> bool {
        !self.restricts() && self.admins.is_empty() && self.issuer.is_none()
    }
}

/// One credential profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub id: ProfileId,
    pub kind: Kind,
    pub provider_family: Family,
    /// Non-secret settings: `env_var`, `handle`, `ref`, ...
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    pub created_at: DateTime<Utc>,
    #[serde(default)]
    pub last_used_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub last_validated_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub last_status: Option<String>,
    #[serde(default, skip_serializing_if = "Grants::open")]
    pub grants: Grants,
}

/// Metadata key of an `api-key` profile: the environment variable.
/// Metadata keys of `oauth` profiles.
pub mod oauth_meta {
    pub const META_SOURCE: &str = "oauth_source";
    pub const META_ACCESS: &str = "access_handle";
    pub const META_REFRESH: &str = "refresh_handle";
    pub const META_TOKEN_ENDPOINT: &str = "token_endpoint";
    pub const META_EXPIRES: &str = "expires_at";
    pub const META_LAST_REFRESH: &str = "last_refresh_at";
    pub const META_CLIENT_ID: &str = "client_id";
    pub const META_ISSUER: &str = "issuer";
    pub const META_PATH: &str = "path";
    pub const META_PROJECT: &str = "project_id";
    /// The agent an imported profile came from (`craik agent import`).
    pub const META_AGENT: &str = "agent";
    /// The `oauth_source` of a subscription login imported from an agent.
    pub const SOURCE_AGENT: &str = "agent";
    /// Where an imported credential came from (a file's path, a variable).
    pub const META_IMPORTED_FROM: &str = "imported_from";
}

pub const META_ENV_VAR: &str = "env_var";
/// Metadata key of a `keyring-ref` profile: the secret store handle.
pub const META_HANDLE: &str = "handle";
/// Metadata key of a `secret-ref` profile: `env:NAME` or `file:PATH`.
pub const META_REF: &str = "ref";

impl Profile {
    pub fn new(id: ProfileId, kind: Kind) -> Profile {
        Profile {
            provider_family: id.family(),
            id,
            kind,
            metadata: BTreeMap::new(),
            base_url: None,
            created_at: Utc::now(),
            last_used_at: None,
            last_validated_at: None,
            last_status: None,
            grants: Grants::default(),
        }
    }

    pub fn meta(&self, key: &str) -> Option<&str> {
        self.metadata.get(key).map(String::as_str)
    }

    /// A receipt about this profile: its id, kind and family filled in.
    pub fn receipt(
        &self,
        kind: crate::audit::ReceiptKind,
        status: crate::audit::Status,
    ) -> crate::audit::NewReceipt {
        crate::audit::NewReceipt::new(kind, status).profile(
            &self.id.to_string(),
            self.kind.as_str(),
            self.provider_family.as_str(),
        )
    }

    /// Checks the profile is internally consistent (what the schema cannot).
    pub fn validate(&self) -> Result<(), ProfileError> {
        let invalid = |detail: String| ProfileError::Invalid {
            id: self.id.to_string(),
            detail,
        };
        if self.provider_family != self.id.family() {
            return Err(invalid(format!(
                "provider_family {} does not match the id",
                self.provider_family
            )));
        }
        match self.kind {
            Kind::ApiKey => match self.meta(META_ENV_VAR) {
                Some(v) if valid_env_name(v) => {}
                Some(v) => return Err(invalid(format!("env_var {v:?} is not a valid name"))),
                None => return Err(invalid("kind api-key needs metadata env_var".into())),
            },
            Kind::KeyringRef => {
                if !self
                    .meta(META_HANDLE)
                    .is_some_and(crate::secret::valid_handle)
                {
                    return Err(invalid(
                        "kind keyring-ref needs a valid metadata handle".into(),
                    ));
                }
            }
            Kind::SecretRef => match self.meta(META_REF) {
                Some(r) => {
                    crate::secret::reference::SecretRef::parse(r)
                        .map_err(|e| invalid(format!("metadata ref: {e}")))?;
                }
                None => return Err(invalid("kind secret-ref needs metadata ref".into())),
            },
            Kind::Marker => {}
            Kind::CliBridge => {
                bridge::of(self).map_err(invalid)?;
            }
            Kind::OidcExchange => {
                exchange::of(self).map_err(invalid)?;
            }
            Kind::StigmemRef => {
                stigmem::of(self).map_err(invalid)?;
                if let Some(h) = self.meta(META_HANDLE)
                    && !crate::secret::valid_handle(h)
                {
                    return Err(invalid("metadata handle is not a valid handle".into()));
                }
            }
            Kind::OAuth => match self.meta(oauth_meta::META_SOURCE) {
                Some("oidc") => {
                    for k in [oauth_meta::META_ACCESS, oauth_meta::META_TOKEN_ENDPOINT] {
                        if self.meta(k).is_none() {
                            return Err(invalid(format!(
                                "an oidc oauth profile needs metadata {k}"
                            )));
                        }
                    }
                }
                // A subscription login imported from an agent.
                Some(oauth_meta::SOURCE_AGENT) => {
                    if self.meta(oauth_meta::META_ACCESS).is_none() {
                        return Err(invalid(
                            "an agent oauth profile needs metadata access_handle".into(),
                        ));
                    }
                }
                Some("adc") | Some("service-account") => {
                    if self.meta(oauth_meta::META_PATH).is_none() {
                        return Err(invalid("a Google oauth profile needs metadata path".into()));
                    }
                }
                _ => {
                    return Err(invalid(
                        "kind oauth needs metadata oauth_source: oidc, agent, adc or service-account"
                            .into(),
                    ));
                }
            },
        }
        if let Some(url) = &self.base_url {
            url::Url::parse(url).map_err(|e| invalid(format!("base_url {url:?}: {e}")))?;
        }
        Ok(())
    }
}

/// Masks a metadata value for display: enough to recognize, not to copy.
pub fn mask(value: &str) -> String {
    let n = value.chars().count();
    if n <= 8 {
        "****".into()
    } else {
        let head: String = value.chars().take(3).collect();
        let tail: String = value.chars().skip(n - 2).collect();
        format!("{head}…{tail}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks() {
        assert_eq!(mask("short"), "****");
        assert_eq!(mask("ANTHROPIC_API_KEY"), "ANT…EY");
    }
}
