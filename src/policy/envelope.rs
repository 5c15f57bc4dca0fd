//! Policy envelopes: parsing and validation. A field left out allows
//! everything; an empty list is an error (leave the field out); an unknown
//! field is an error naming it, so a typo can never weaken a policy.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::pattern::{PatternError, PatternSet};
use crate::profile::Kind;

/// When the first live use of a profile needs a second person.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequireApproval {
    #[default]
    Never,
    FirstUse,
    EachRun,
}

impl RequireApproval {
    pub fn as_str(self) -> &'static str {
        match self {
            RequireApproval::Never => "never",
            RequireApproval::FirstUse => "first_use",
            RequireApproval::EachRun => "each_run",
        }
    }
}

/// An envelope as written (`schemas/policy-envelope.schema.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    pub version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_operator: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_operator_issuer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_operator_groups: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_operator_subjects: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_credential_kinds: Option<Vec<Kind>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_credential_profiles: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub denied_credential_profiles: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_approval: Option<RequireApproval>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_profiles: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approver_groups: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub separate_approver: Option<bool>,
    /// How long an approval holds (`30m`, `8h`, `7d`); default 8h for
    /// `each_run`, no limit for `first_use`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_ttl: Option<String>,
    /// Who may grant, revoke and open profiles: an operator in one of
    /// these groups or subjects (of every envelope that names any).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_groups: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_subjects: Option<Vec<String>>,
    /// Only a workload operator (CI job, pod) whose token one of these
    /// issuers signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_workload_issuers: Option<Vec<String>>,
    /// Only a workload operator whose token's claims match: claim (a
    /// dotted path into nested objects) to a glob or a list of globs (any
    /// may match); every claim named must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bound_claims: Option<std::collections::BTreeMap<String, ClaimGlobs>>,
    /// The team store (`postgres://HOST:PORT/DB`, any user) whose approvals
    /// and grants count: a home must ship there (its `team.json`), else
    /// calls under this envelope are refused (exit 5); without it, nothing
    /// from a team store counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team_store: Option<String>,
}

/// A `bound_claims` value: one glob, or several of which one must match.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    untagged,
    expecting = "a bound_claims value: a glob string or a list of glob strings"
)]
pub enum ClaimGlobs {
    One(String),
    Any(Vec<String>),
}

impl ClaimGlobs {
    pub fn patterns(&self) -> &[String] {
        match self {
            ClaimGlobs::One(s) => std::slice::from_ref(s),
            ClaimGlobs::Any(v) => v,
        }
    }
}

/// One `bound_claims` entry, compiled.
#[derive(Debug, Clone)]
pub struct BoundClaim {
    pub claim: String,
    pub patterns: Vec<String>,
    pub set: globset::GlobSet,
}

/// Why a policy file was refused. Every variant names the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    #[error("policy {path}: cannot read it: {why}")]
    Read { path: PathBuf, why: String },
    #[error("policy {path}: line {line} column {column}: {why}")]
    Parse {
        path: PathBuf,
        line: usize,
        column: usize,
        why: String,
    },
    #[error("policy {path}: {field} is an empty list")]
    EmptyList { path: PathBuf, field: &'static str },
    #[error("policy {path}: {field}: {source}")]
    Pattern {
        path: PathBuf,
        field: &'static str,
        #[source]
        source: PatternError,
    },
    #[error("policy {path}: unsupported version {version} (this craik reads version 1)")]
    Version { path: PathBuf, version: u32 },
    #[error("policy {path}: {field} is empty")]
    EmptyString { path: PathBuf, field: &'static str },
    #[error("policy {path}: bound_claims.{claim}: {why}")]
    BoundClaim {
        path: PathBuf,
        claim: String,
        why: String,
    },
    #[error("policy {path}: approval_ttl: {source}")]
    Ttl {
        path: PathBuf,
        #[source]
        source: crate::duration::DurationError,
    },
    /// A policy file someone else could have written (another owner, a
    /// group/world-writable file, a symlink).
    #[error("policy {path}: {why}")]
    Unsafe {
        path: PathBuf,
        why: String,
        hint: String,
    },
}

impl PolicyError {
    pub fn hint(&self) -> String {
        match self {
            PolicyError::EmptyList { field, .. } => format!(
                "leave the field out to allow everything; an empty {field} would be ambiguous"
            ),
            PolicyError::Pattern { .. } => {
                "patterns use * (any characters but ':'), ** (any characters) and ? (one character)".into()
            }
            PolicyError::Unsafe { hint, .. } => hint.clone(),
            PolicyError::Ttl { source, .. } => source.hint(),
            PolicyError::BoundClaim { .. } => {
                "a bound claim's value is a glob or a non-empty list of globs: * any characters, ? one, [abc] a class, {a,b} either".into()
            }
            _ => "fix the file (see docs/policy.md and schemas/policy-envelope.schema.json); craik refuses every authorization until it parses".into(),
        }
    }
}

/// An envelope checked and with its patterns compiled.
#[derive(Debug, Clone)]
pub struct Policy {
    pub source: PathBuf,
    pub envelope: Envelope,
    pub allowed_profiles: Option<PatternSet>,
    pub denied_profiles: Option<PatternSet>,
    pub approval_profiles: Option<PatternSet>,
    /// `approval_ttl`, read.
    pub approval_ttl: Option<std::time::Duration>,
    /// `bound_claims`, compiled (empty when the field is left out).
    pub bound_claims: Vec<BoundClaim>,
}

/// The longest `approval_ttl`.
pub const MAX_APPROVAL_TTL: std::time::Duration = std::time::Duration::from_secs(366 * 24 * 3600);

fn non_empty<T>(path: &Path, field: &'static str, v: &Option<Vec<T>>) -> Result<(), PolicyError> {
    match v {
        Some(l) if l.is_empty() => Err(PolicyError::EmptyList {
            path: path.to_path_buf(),
            field,
        }),
        _ => Ok(()),
    }
}

fn compile(
    path: &Path,
    field: &'static str,
    v: &Option<Vec<String>>,
) -> Result<Option<PatternSet>, PolicyError> {
    v.as_ref()
        .map(|l| {
            PatternSet::new(l).map_err(|source| PolicyError::Pattern {
                path: path.to_path_buf(),
                field,
                source,
            })
        })
        .transpose()
}

fn compile_claims(
    path: &Path,
    claims: Option<&std::collections::BTreeMap<String, ClaimGlobs>>,
) -> Result<Vec<BoundClaim>, PolicyError> {
    let Some(claims) = claims else {
        return Ok(Vec::new());
    };
    if claims.is_empty() {
        return Err(PolicyError::EmptyList {
            path: path.to_path_buf(),
            field: "bound_claims",
        });
    }
    let bad = |claim: &str, why: String| PolicyError::BoundClaim {
        path: path.to_path_buf(),
        claim: claim.to_string(),
        why,
    };
    claims
        .iter()
        .map(|(claim, globs)| {
            if claim.trim().is_empty() {
                return Err(bad(claim, "the claim name is empty".into()));
            }
            let patterns = globs.patterns().to_vec();
            if patterns.is_empty() {
                return Err(bad(claim, "the list of globs is empty".into()));
            }
            let mut b = globset::GlobSetBuilder::new();
            for p in &patterns {
                if p.is_empty() {
                    return Err(bad(claim, "a glob is empty".into()));
                }
                // `*` crosses `/` (refs/heads/*, my-org/*), as in Vault.
                let g = globset::GlobBuilder::new(p)
                    .literal_separator(false)
                    .backslash_escape(true)
                    .build()
                    .map_err(|e| bad(claim, format!("{p:?}: {}", e.kind())))?;
                b.add(g);
            }
            let set = b.build().map_err(|e| bad(claim, e.to_string()))?;
            Ok(BoundClaim {
                claim: claim.clone(),
                patterns,
                set,
            })
        })
        .collect()
}

impl Policy {
    /// Parses and checks an envelope's bytes; `path` names it in errors.
    pub fn parse(bytes: &[u8], path: &Path) -> Result<Policy, PolicyError> {
        let envelope: Envelope = serde_json::from_slice(bytes).map_err(|e| {
            let msg = e.to_string();
            let why = match msg.rfind(" at line ") {
                Some(i) => msg[..i].to_string(),
                None => msg,
            };
            PolicyError::Parse {
                path: path.to_path_buf(),
                line: e.line(),
                column: e.column(),
                why,
            }
        })?;
        if envelope.version != 1 {
            return Err(PolicyError::Version {
                path: path.to_path_buf(),
                version: envelope.version,
            });
        }
        for (field, v) in [
            (
                "required_operator_issuer",
                &envelope.required_operator_issuer,
            ),
            ("team_store", &envelope.team_store),
        ] {
            if v.as_deref().is_some_and(|s| s.trim().is_empty()) {
                return Err(PolicyError::EmptyString {
                    path: path.to_path_buf(),
                    field,
                });
            }
        }
        non_empty(
            path,
            "allowed_operator_groups",
            &envelope.allowed_operator_groups,
        )?;
        non_empty(
            path,
            "allowed_operator_subjects",
            &envelope.allowed_operator_subjects,
        )?;
        non_empty(
            path,
            "allowed_credential_kinds",
            &envelope.allowed_credential_kinds,
        )?;
        non_empty(
            path,
            "allowed_credential_profiles",
            &envelope.allowed_credential_profiles,
        )?;
        non_empty(
            path,
            "denied_credential_profiles",
            &envelope.denied_credential_profiles,
        )?;
        non_empty(path, "approval_profiles", &envelope.approval_profiles)?;
        non_empty(path, "approver_groups", &envelope.approver_groups)?;
        non_empty(path, "admin_groups", &envelope.admin_groups)?;
        non_empty(path, "admin_subjects", &envelope.admin_subjects)?;
        non_empty(
            path,
            "allowed_workload_issuers",
            &envelope.allowed_workload_issuers,
        )?;
        let bound_claims = compile_claims(path, envelope.bound_claims.as_ref())?;
        // Claims mean something only from an issuer the policy trusts: a
        // token from any issuer can carry any claim.
        if !bound_claims.is_empty() && envelope.allowed_workload_issuers.is_none() {
            return Err(PolicyError::BoundClaim {
                path: path.to_path_buf(),
                claim: bound_claims[0].claim.clone(),
                why: "bound_claims needs allowed_workload_issuers in the same envelope (claims are only as good as the issuer that signed them)".into(),
            });
        }
        for (field, list) in [
            ("allowed_operator_groups", &envelope.allowed_operator_groups),
            (
                "allowed_operator_subjects",
                &envelope.allowed_operator_subjects,
            ),
            ("approver_groups", &envelope.approver_groups),
            ("admin_groups", &envelope.admin_groups),
            ("admin_subjects", &envelope.admin_subjects),
            (
                "allowed_workload_issuers",
                &envelope.allowed_workload_issuers,
            ),
        ] {
            if list.iter().flatten().any(|v| v.trim().is_empty()) {
                return Err(PolicyError::EmptyString {
                    path: path.to_path_buf(),
                    field,
                });
            }
        }
        let approval_ttl = envelope
            .approval_ttl
            .as_deref()
            .map(|t| crate::duration::parse_nonzero(t, MAX_APPROVAL_TTL))
            .transpose()
            .map_err(|source| PolicyError::Ttl {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(Policy {
            approval_ttl,
            bound_claims,
            source: path.to_path_buf(),
            allowed_profiles: compile(
                path,
                "allowed_credential_profiles",
                &envelope.allowed_credential_profiles,
            )?,
            denied_profiles: compile(
                path,
                "denied_credential_profiles",
                &envelope.denied_credential_profiles,
            )?,
            approval_profiles: compile(path, "approval_profiles", &envelope.approval_profiles)?,
            envelope,
        })
    }

    /// What is valid but almost certainly not meant: patterns that can
    /// match no profile id (`opneai:*`, `prod` without `:`).
    pub fn warnings(&self) -> Vec<String> {
        let mut families: Vec<&str> = crate::profile::Family::ALL
            .iter()
            .map(|f| f.as_str())
            .collect();
        families.push("local");
        let mut out = Vec::new();
        for (field, list) in [
            (
                "allowed_credential_profiles",
                &self.envelope.allowed_credential_profiles,
            ),
            (
                "denied_credential_profiles",
                &self.envelope.denied_credential_profiles,
            ),
            ("approval_profiles", &self.envelope.approval_profiles),
        ] {
            for p in list.iter().flatten() {
                if !crate::pattern::can_match_a_family(p, &families) {
                    out.push(format!(
                        "{field}: {p:?} can match no profile id (ids are <family>:<name>, family one of {})",
                        families.join(", ")
                    ));
                }
            }
        }
        out
    }

    pub fn load(path: &Path) -> Result<Policy, PolicyError> {
        // The same rules as the home's files: a policy another user, a
        // group or a link could change is not one to decide by.
        crate::home::check_owner_only(path, false).map_err(|e| {
            use crate::home::HomeError;
            let p = path.display();
            let (why, hint) = match &e {
                HomeError::Symlink { .. } => (
                    "is a symlink, which someone could point elsewhere".to_string(),
                    "pass the path of the file itself".to_string(),
                ),
                HomeError::Writable { mode, .. } => (
                    format!("can be written by group or others (mode {mode:04o})"),
                    format!("run: chmod go-w {p}"),
                ),
                HomeError::NotOwned { owner, .. } => (
                    format!("belongs to another user (uid {owner})"),
                    format!("copy it to a file of your own: cp {p} ./policy.json"),
                ),
                other => (other.to_string(), "pass a regular file you own".to_string()),
            };
            PolicyError::Unsafe {
                path: path.to_path_buf(),
                why: format!("{why}; craik decides only by a policy nobody else can change"),
                hint,
            }
        })?;
        let bytes = std::fs::read(path).map_err(|e| PolicyError::Read {
            path: path.to_path_buf(),
            why: e.to_string(),
        })?;
        Policy::parse(&bytes, path)
    }
}

#[cfg(test)]
mod tests {
    //! Tables of envelopes the parser refuses, and what it says.

    use super::*;

    const FILE: &str = "team/policy.json";

    fn parse(json: &str) -> Result<Policy, PolicyError> {
        Policy::parse(json.as_bytes(), Path::new(FILE))
    }

    const LIST_FIELDS: [&str; 9] = [
        "allowed_operator_groups",
        "allowed_operator_subjects",
        "allowed_credential_kinds",
        "allowed_credential_profiles",
        "denied_credential_profiles",
        "approval_profiles",
        "approver_groups",
        "admin_groups",
        "admin_subjects",
    ];

    const PATTERN_FIELDS: [&str; 3] = [
        "allowed_credential_profiles",
        "denied_credential_profiles",
        "approval_profiles",
    ];

    #[test]
    fn unknown_fields_are_named() {
        let cases = [
            (
                r#"{"version": 1, "allowed_operator_grups": ["x"]}"#,
                "allowed_operator_grups",
                1,
            ),
            (
                r#"{"version": 1, "required_operators": true}"#,
                "required_operators",
                1,
            ),
            (r#"{"Version": 1}"#, "Version", 1),
            (
                "{\n  \"version\": 1,\n  \"denied_profiles\": [\"*:prod-*\"]\n}",
                "denied_profiles",
                3,
            ),
            (
                r#"{"version": 1, "require_approval": "first_use", "approvers": ["leads"]}"#,
                "approvers",
                1,
            ),
        ];
        for (json, field, want_line) in cases {
            match parse(json) {
                Err(e @ PolicyError::Parse { line, .. }) => {
                    let msg = e.to_string();
                    assert!(
                        msg.contains(&format!("unknown field `{field}`")),
                        "{json}: {msg}"
                    );
                    assert!(
                        msg.starts_with(&format!("policy {FILE}: line {want_line} ")),
                        "{msg}"
                    );
                    assert_eq!(line, want_line, "{json}");
                    assert!(e.hint().contains("docs/policy.md"), "{}", e.hint());
                }
                other => panic!("{json}: {other:?}"),
            }
        }
    }

    #[test]
    fn empty_lists_are_refused() {
        for field in LIST_FIELDS {
            let json = format!(r#"{{"version": 1, "{field}": []}}"#);
            let e = parse(&json).expect_err(&json);
            assert_eq!(
                e,
                PolicyError::EmptyList {
                    path: FILE.into(),
                    field,
                },
                "{json}"
            );
            assert_eq!(
                e.to_string(),
                format!("policy {FILE}: {field} is an empty list")
            );
            assert!(e.hint().contains("leave the field out"), "{}", e.hint());
            assert!(e.hint().contains(field), "{}", e.hint());
            // One item is enough.
            let item = if field == "allowed_credential_kinds" {
                "marker"
            } else {
                "a:b"
            };
            let json = format!(r#"{{"version": 1, "{field}": ["{item}"]}}"#);
            parse(&json).unwrap_or_else(|e| panic!("{json}: {e}"));
        }
    }

    #[test]
    fn bad_patterns_are_refused() {
        let long = "a".repeat(201);
        let cases: [(&str, PatternError); 6] = [
            ("", PatternError::Empty),
            ("openai:***", PatternError::Stars("openai:***".into())),
            (
                "openai:[ab]",
                PatternError::Char {
                    pattern: "openai:[ab]".into(),
                    ch: '[',
                },
            ),
            (
                "openai:a b",
                PatternError::Char {
                    pattern: "openai:a b".into(),
                    ch: ' ',
                },
            ),
            (
                "openai/x",
                PatternError::Char {
                    pattern: "openai/x".into(),
                    ch: '/',
                },
            ),
            (&long, PatternError::TooLong(long.clone())),
        ];
        for field in PATTERN_FIELDS {
            for (pattern, want) in &cases {
                // A bad pattern after a good one is still found.
                let json = serde_json::json!({
                    "version": 1,
                    field: ["openai:*", pattern],
                })
                .to_string();
                match parse(&json) {
                    Err(e @ PolicyError::Pattern { .. }) => {
                        let PolicyError::Pattern {
                            field: f, source, ..
                        } = &e
                        else {
                            unreachable!()
                        };
                        assert_eq!((*f, source), (field, want), "{json}");
                        assert!(
                            e.to_string()
                                .starts_with(&format!("policy {FILE}: {field}: ")),
                            "{e}"
                        );
                        assert!(e.hint().contains("** (any characters)"), "{}", e.hint());
                    }
                    other => panic!("{json}: {other:?}"),
                }
            }
        }
        // The longest pattern allowed, and every character allowed.
        let ok = format!("openai:{}", "a".repeat(193));
        assert_eq!(ok.len(), 200);
        for pattern in [ok.as_str(), "Aa0.-_:*?", "**", "*:*"] {
            for field in PATTERN_FIELDS {
                let json = serde_json::json!({"version": 1, field: [pattern]}).to_string();
                parse(&json).unwrap_or_else(|e| panic!("{json}: {e}"));
            }
        }
    }

    #[test]
    fn other_refusals() {
        let cases: [(&str, &str); 12] = [
            (
                r#"{"version": 2}"#,
                "unsupported version 2 (this craik reads version 1)",
            ),
            (r#"{"version": 0}"#, "unsupported version 0"),
            (r#"{}"#, "missing field `version`"),
            (
                r#"{"version": 1, "required_operator_issuer": ""}"#,
                "required_operator_issuer is empty",
            ),
            (
                r#"{"version": 1, "required_operator_issuer": " \t"}"#,
                "required_operator_issuer is empty",
            ),
            (
                r#"{"version": 1, "allowed_credential_kinds": ["api_key"]}"#,
                "unknown variant `api_key`",
            ),
            (
                r#"{"version": 1, "require_approval": "always"}"#,
                "unknown variant `always`",
            ),
            (
                r#"{"version": 1, "require_approval": "FirstUse"}"#,
                "unknown variant `FirstUse`",
            ),
            (
                r#"{"version": 1, "allowed_operator_groups": "prod"}"#,
                "invalid type",
            ),
            (
                r#"{"version": 1, "required_operator": "yes"}"#,
                "invalid type",
            ),
            (r#"{"version": 1,}"#, "trailing comma"),
            ("", "EOF while parsing"),
        ];
        for (json, want) in cases {
            let e = parse(json).expect_err(json);
            let msg = e.to_string();
            assert!(msg.starts_with(&format!("policy {FILE}: ")), "{msg}");
            assert!(msg.contains(want), "{json}: {msg}");
            assert!(
                e.hint().contains("refuses every authorization"),
                "{}",
                e.hint()
            );
        }
    }

    #[test]
    fn fields_left_out_allow_everything() {
        let p = parse(r#"{"version": 1}"#).unwrap();
        assert_eq!(
            serde_json::to_value(&p.envelope).unwrap(),
            serde_json::json!({"version": 1}),
            "nothing set"
        );
        assert!(p.allowed_profiles.is_none() && p.denied_profiles.is_none());
        assert!(p.approval_profiles.is_none());
        assert_eq!(
            p.envelope.require_approval.unwrap_or_default(),
            RequireApproval::Never
        );
        assert_eq!(p.source, Path::new(FILE));
    }

    #[test]
    fn a_full_envelope_round_trips() {
        // The example in DESIGN.md, and every other field.
        let json = r#"{
            "version": 1,
            "required_operator": true,
            "required_operator_issuer": "https://idp.example.com",
            "allowed_operator_groups": ["prod-deploy"],
            "allowed_operator_subjects": ["alice"],
            "allowed_credential_kinds": ["secret-ref", "oauth"],
            "allowed_credential_profiles": ["anthropic:prod-*"],
            "denied_credential_profiles": ["*:personal-*"],
            "require_approval": "first_use",
            "approval_profiles": ["**"],
            "approver_groups": ["leads"],
            "separate_approver": true,
            "approval_ttl": "12h",
            "admin_groups": ["security"],
            "admin_subjects": ["root"],
            "team_store": "postgres://alice@db.example/craik"
        }"#;
        let p = parse(json).unwrap();
        let e = &p.envelope;
        assert_eq!(
            e.allowed_credential_kinds,
            Some(vec![Kind::SecretRef, Kind::OAuth])
        );
        assert_eq!(e.require_approval, Some(RequireApproval::FirstUse));
        let allowed = p.allowed_profiles.as_ref().unwrap();
        assert!(allowed.is_match("anthropic:prod-eu") && !allowed.is_match("anthropic:dev"));
        assert!(
            p.denied_profiles
                .as_ref()
                .unwrap()
                .is_match("openai:personal-x")
        );
        assert!(p.approval_profiles.as_ref().unwrap().is_match("gemini:x"));
        assert_eq!(
            p.approval_ttl,
            Some(std::time::Duration::from_secs(12 * 3600))
        );
        let again = parse(&serde_json::to_string(e).unwrap()).unwrap();
        assert_eq!(&again.envelope, e);
        let mut fields: Vec<String> = serde_json::to_value(e)
            .unwrap()
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        fields.sort();
        let mut want: Vec<&str> = LIST_FIELDS.to_vec();
        want.extend([
            "version",
            "required_operator",
            "required_operator_issuer",
            "require_approval",
            "separate_approver",
            "approval_ttl",
            "team_store",
        ]);
        want.sort();
        assert_eq!(fields, want, "every field of the schema is set here");
        for (mode, name) in [
            (RequireApproval::Never, "never"),
            (RequireApproval::FirstUse, "first_use"),
            (RequireApproval::EachRun, "each_run"),
        ] {
            assert_eq!(mode.as_str(), name);
            assert_eq!(serde_json::to_value(mode).unwrap(), name);
        }
        assert!(RequireApproval::Never < RequireApproval::FirstUse);
        assert!(RequireApproval::FirstUse < RequireApproval::EachRun);
    }
}
