//! Profile ids (`<provider_family>:<name>`), provider families and kinds.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::ProfileError;

/// A provider family: decides base URL, headers and environment names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Family {
    #[serde(rename = "openai")]
    OpenAi,
    #[serde(rename = "anthropic")]
    Anthropic,
    #[serde(rename = "gemini")]
    Gemini,
    /// Any OpenAI-compatible chat-completions endpoint; alias `local`.
    #[serde(rename = "chat_completions", alias = "local")]
    ChatCompletions,
}

impl Family {
    pub const ALL: [Family; 4] = [
        Family::OpenAi,
        Family::Anthropic,
        Family::Gemini,
        Family::ChatCompletions,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Family::OpenAi => "openai",
            Family::Anthropic => "anthropic",
            Family::Gemini => "gemini",
            Family::ChatCompletions => "chat_completions",
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Family {
    type Err = ProfileError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "openai" => Ok(Family::OpenAi),
            "anthropic" => Ok(Family::Anthropic),
            "gemini" => Ok(Family::Gemini),
            "chat_completions" | "local" => Ok(Family::ChatCompletions),
            other => Err(ProfileError::UnknownFamily(other.to_string())),
        }
    }
}

/// How a profile's credential is obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Kind {
    /// Read from an environment variable (metadata `env_var`) at use time.
    #[serde(rename = "api-key")]
    ApiKey,
    /// Kept in the secret store under an opaque handle (metadata `handle`).
    #[serde(rename = "keyring-ref")]
    KeyringRef,
    /// Metadata `ref` is `env:NAME` or `file:PATH`, resolved at use time.
    #[serde(rename = "secret-ref")]
    SecretRef,
    /// No secret: the provider's own CLI handles the credential.
    #[serde(rename = "marker")]
    Marker,
    /// OAuth access tokens, refreshed or minted at use time (metadata
    /// `oauth_source`: `oidc`, `adc` or `service-account`).
    #[serde(rename = "oauth")]
    OAuth,
    /// What a command prints (metadata `command`, a JSON array of its
    /// arguments, and `extract`), run at use time.
    #[serde(rename = "cli-bridge")]
    CliBridge,
    /// The operator's (a workload's) token exchanged at use time for the
    /// credential (RFC 8693; metadata `exchange_url`, `audience`).
    #[serde(rename = "oidc-exchange")]
    OidcExchange,
    /// A fact read from a stigmem node at each use (metadata `node_url`,
    /// `entity`, `scope`, `relation`, `timeout_ms`; the node's API key
    /// under `handle`).
    #[serde(rename = "stigmem-ref")]
    StigmemRef,
}

impl Kind {
    /// The kinds `auth add --kind` makes (oauth profiles come from
    /// `auth login` and `agent import`).
    pub const ALL: [Kind; 7] = [
        Kind::ApiKey,
        Kind::KeyringRef,
        Kind::SecretRef,
        Kind::Marker,
        Kind::CliBridge,
        Kind::OidcExchange,
        Kind::StigmemRef,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::ApiKey => "api-key",
            Kind::KeyringRef => "keyring-ref",
            Kind::SecretRef => "secret-ref",
            Kind::Marker => "marker",
            Kind::OAuth => "oauth",
            Kind::CliBridge => "cli-bridge",
            Kind::OidcExchange => "oidc-exchange",
            Kind::StigmemRef => "stigmem-ref",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Kind {
    type Err = ProfileError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Kind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| ProfileError::UnknownKind(s.to_string()))
    }
}

/// `<provider_family>:<name>`. The alias family `local` is normalized to
/// `chat_completions`, so `local:llama` and `chat_completions:llama` are the
/// same profile.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProfileId {
    family: Family,
    name: String,
}

/// Longest accepted name part of an id.
pub const MAX_NAME_LEN: usize = 64;

impl ProfileId {
    pub fn new(family: Family, name: &str) -> Result<Self, ProfileError> {
        validate_name(name).map_err(|why| ProfileError::InvalidId {
            id: format!("{family}:{name}"),
            why,
        })?;
        Ok(ProfileId {
            family,
            name: name.to_string(),
        })
    }

    pub fn family(&self) -> Family {
        self.family
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

fn validate_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the name after ':' is empty".into());
    }
    if name.len() > MAX_NAME_LEN {
        return Err(format!("the name is longer than {MAX_NAME_LEN} characters"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "the name contains {c:?}; use letters, digits, '.', '_' and '-'"
        ));
    }
    Ok(())
}

impl FromStr for ProfileId {
    type Err = ProfileError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = |why: String| ProfileError::InvalidId {
            id: s.to_string(),
            why,
        };
        let (family, name) = s
            .split_once(':')
            .ok_or_else(|| invalid("expected <provider_family>:<name>".into()))?;
        let family = family.parse::<Family>().map_err(|_| {
            invalid(format!(
                "unknown provider family {family:?}; expected one of openai, anthropic, gemini, chat_completions, local"
            ))
        })?;
        validate_name(name).map_err(invalid)?;
        Ok(ProfileId {
            family,
            name: name.to_string(),
        })
    }
}

impl fmt::Display for ProfileId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.family, self.name)
    }
}

impl Serialize for ProfileId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ProfileId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

pub use crate::secret::reference::valid_env_name;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        let id: ProfileId = "anthropic:work".parse().unwrap();
        assert_eq!(id.family(), Family::Anthropic);
        assert_eq!(id.to_string(), "anthropic:work");
        assert_eq!(
            "local:llama".parse::<ProfileId>().unwrap().to_string(),
            "chat_completions:llama"
        );
        for bad in [
            "",
            "anthropic",
            "anthropic:",
            ":x",
            "nope:x",
            "openai:a b",
            "openai:a:b",
            "openai:é",
            "OPENAI:x",
        ] {
            assert!(bad.parse::<ProfileId>().is_err(), "{bad}");
        }
        assert!("openai:A-z_0.9".parse::<ProfileId>().is_ok());
        let long = format!("openai:{}", "a".repeat(65));
        assert!(long.parse::<ProfileId>().is_err());
    }

    #[test]
    fn env_names() {
        assert!(valid_env_name("OPENAI_API_KEY"));
        assert!(valid_env_name("_X1"));
        assert!(!valid_env_name("1X"));
        assert!(!valid_env_name("A-B"));
        assert!(!valid_env_name(""));
    }
}
