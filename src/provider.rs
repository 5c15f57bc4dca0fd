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
        env_base_url: "OPENAI_BASE_URL",
        test_path: "/models",
    },
    FamilyInfo {
        family: Family::Anthropic,
        default_base_url: Some("https://api.anthropic.com"),
        env_api_key: "ANTHROPIC_API_KEY",
        env_base_url: "ANTHROPIC_BASE_URL",
        test_path: "/v1/models",
    },
    FamilyInfo {
        family: Family::Gemini,
        default_base_url: Some("https://generativelanguage.googleapis.com"),
        env_api_key: "GEMINI_API_KEY",
        env_base_url: "GOOGLE_GEMINI_BASE_URL",
        test_path: "/v1beta/models",
    },
    FamilyInfo {
        family: Family::ChatCompletions,
        default_base_url: None,
        env_api_key: "OPENAI_API_KEY",
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
