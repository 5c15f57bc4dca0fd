//! Provider families: the one table of per-family facts.

use crate::profile::Family;

/// What craik knows about a provider family.
#[derive(Debug, Clone, Copy)]
pub struct FamilyInfo {
    pub family: Family,
    /// `None` when the profile must give its own base URL.
    pub default_base_url: Option<&'static str>,
    /// The environment variable clients read their API key from.
    pub env_api_key: &'static str,
    /// The variable an `api-key` profile reads by default: the clients'
    /// own, except for local endpoints, which must never pick up a real
    /// OpenAI key from `OPENAI_API_KEY`.
    pub source_var: &'static str,
    /// The environment variable clients read the base URL from.
    pub env_base_url: &'static str,
    /// The path of the family's cheap test call (GET).
    pub test_path: &'static str,
}

pub const FAMILIES: [FamilyInfo; 4] = [
    FamilyInfo {
        family: Family::OpenAi,
        default_base_url: Some("https://api.openai.com/v1"),
        env_api_key: "OPENAI_API_KEY",
        source_var: "OPENAI_API_KEY",
        env_base_url: "OPENAI_BASE_URL",
        test_path: "/models",
    },
    FamilyInfo {
        family: Family::Anthropic,
        default_base_url: Some("https://api.anthropic.com"),
        env_api_key: "ANTHROPIC_API_KEY",
        source_var: "ANTHROPIC_API_KEY",
        env_base_url: "ANTHROPIC_BASE_URL",
        test_path: "/v1/models",
    },
    FamilyInfo {
        family: Family::Gemini,
        default_base_url: Some("https://generativelanguage.googleapis.com"),
        env_api_key: "GEMINI_API_KEY",
        source_var: "GEMINI_API_KEY",
        env_base_url: "GOOGLE_GEMINI_BASE_URL",
        test_path: "/v1beta/models",
    },
    FamilyInfo {
        family: Family::ChatCompletions,
        default_base_url: None,
        env_api_key: "OPENAI_API_KEY",
        source_var: "LOCAL_API_KEY",
        env_base_url: "OPENAI_BASE_URL",
        test_path: "/models",
    },
];

pub fn info(family: Family) -> &'static FamilyInfo {
    FAMILIES
        .iter()
        .find(|f| f.family == family)
        .expect("every family is in the table")
}

/// Every environment variable through which a provider credential might
/// reach a child process; `craik exec` removes them all before injecting
/// the one it means to.
pub const CREDENTIAL_ENV_VARS: &[&str] = &[
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_AUTH_TOKEN",
    "ANTHROPIC_TOKEN",
    "CLAUDE_CODE_OAUTH_TOKEN",
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
    "GOOGLE_OAUTH_ACCESS_TOKEN",
    "GOOGLE_CLOUD_ACCESS_TOKEN",
    // A path to a Google credential file (ADC, a service-account key).
    "GOOGLE_APPLICATION_CREDENTIALS",
    // GitHub Actions' OIDC request: with both, a child could get the
    // job's workload token and be the operator craik admits.
    "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
    "ACTIONS_ID_TOKEN_REQUEST_URL",
];

/// Every environment variable a client reads a provider's base URL from.
/// Beside an injected credential a base URL decides where it goes, so no
/// child inherits one; craik sets its own when it means to.
pub const BASE_URL_ENV_VARS: &[&str] = &[
    "OPENAI_BASE_URL",
    "OPENAI_API_BASE",
    "ANTHROPIC_BASE_URL",
    "GOOGLE_GEMINI_BASE_URL",
    "GEMINI_BASE_URL",
];

/// Request headers that carry a client's credential; the proxy strips them
/// all before injecting the real one.
pub const CREDENTIAL_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "x-api-key",
    "x-goog-api-key",
    "api-key",
];

/// Hop-by-hop headers (RFC 9110 section 7.6.1, plus the legacy
/// `Proxy-Connection` and the proxy authentication pair): they belong to
/// one connection, so the proxy forwards none of them in either direction,
/// nor any header a message's `Connection` header names.
pub const HOP_BY_HOP_HEADERS: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-authorization",
    "proxy-authenticate",
];

/// Query parameters that carry a credential (Gemini's `?key=`).
pub const CREDENTIAL_QUERY_PARAMS: &[&str] = &["key"];

/// Whether an Anthropic credential is an OAuth token rather than an API key.
pub fn is_anthropic_oauth(credential: &str) -> bool {
    credential.starts_with("sk-ant-oat")
}

/// Whether a Gemini credential is an API key (`AIza...`) rather than an
/// OAuth access token.
pub fn is_google_api_key(credential: &str) -> bool {
    credential.starts_with("AIza")
}

impl FamilyInfo {
    /// The headers that carry `credential` for this family. `client_has`
    /// tells whether the client already sent a header (by lowercase name).
    pub fn auth_headers(
        &self,
        credential: &str,
        client_has: impl Fn(&str) -> Option<String>,
    ) -> Vec<(&'static str, String)> {
        match self.family {
            Family::Anthropic => {
                let mut h = Vec::new();
                if is_anthropic_oauth(credential) {
                    h.push(("authorization", format!("Bearer {credential}")));
                    let beta = match client_has("anthropic-beta") {
                        Some(b) if b.split(',').any(|x| x.trim() == "oauth-2025-04-20") => b,
                        Some(b) if !b.trim().is_empty() => format!("{b},oauth-2025-04-20"),
                        _ => "oauth-2025-04-20".to_string(),
                    };
                    h.push(("anthropic-beta", beta));
                } else {
                    h.push(("x-api-key", credential.to_string()));
                }
                if client_has("anthropic-version").is_none() {
                    h.push(("anthropic-version", "2023-06-01".to_string()));
                }
                h
            }
            Family::Gemini if is_google_api_key(credential) => {
                vec![("x-goog-api-key", credential.to_string())]
            }
            _ => vec![("authorization", format!("Bearer {credential}"))],
        }
    }

    /// The environment a child gets for `credential` (name, value).
    pub fn exec_env(&self, credential: &str) -> Vec<(&'static str, String)> {
        let var = if self.family == Family::Anthropic && is_anthropic_oauth(credential) {
            "CLAUDE_CODE_OAUTH_TOKEN"
        } else if self.family == Family::Gemini && !is_google_api_key(credential) {
            // An OAuth access token, not an API key.
            "GOOGLE_OAUTH_ACCESS_TOKEN"
        } else {
            self.env_api_key
        };
        vec![(var, credential.to_string())]
    }
}

/// The base URL a profile's calls go to.
pub fn base_url(profile: &crate::profile::Profile) -> Option<String> {
    profile.base_url.clone().or_else(|| {
        info(profile.provider_family)
            .default_base_url
            .map(str::to_string)
    })
}

/// Joins a base URL and a request path (and query) without losing the
/// base's own path (`https://api.openai.com/v1` + `/models`).
pub fn join(base: &str, path_and_query: &str) -> String {
    format!("{}{}", base.trim_end_matches('/'), path_and_query)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_per_family() {
        let none = |_: &str| None;
        let a = info(Family::Anthropic).auth_headers("sk-ant-api03-x", none);
        assert_eq!(a[0], ("x-api-key", "sk-ant-api03-x".to_string()));
        assert_eq!(a[1], ("anthropic-version", "2023-06-01".to_string()));
        let o = info(Family::Anthropic).auth_headers("sk-ant-oat01-x", |h| {
            (h == "anthropic-version").then(|| "2024".into())
        });
        assert_eq!(o[0].1, "Bearer sk-ant-oat01-x");
        assert_eq!(o[1], ("anthropic-beta", "oauth-2025-04-20".to_string()));
        assert_eq!(o.len(), 2);
        let g = info(Family::Gemini).auth_headers("AIzaXYZ", none);
        assert_eq!(g[0].0, "x-goog-api-key");
        let g = info(Family::Gemini).auth_headers("ya29.token", none);
        assert_eq!(g[0].1, "Bearer ya29.token");
        assert_eq!(
            info(Family::Anthropic).exec_env("sk-ant-oat01-x")[0].0,
            "CLAUDE_CODE_OAUTH_TOKEN"
        );
        assert_eq!(
            join("https://api.openai.com/v1/", "/models?x=1"),
            "https://api.openai.com/v1/models?x=1"
        );
    }
}
