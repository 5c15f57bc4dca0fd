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
}

/// Why a policy file was refused. Every variant names the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
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
}

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
        if envelope
            .required_operator_issuer
            .as_deref()
            .is_some_and(|s| s.trim().is_empty())
        {
            return Err(PolicyError::EmptyString {
                path: path.to_path_buf(),
                field: "required_operator_issuer",
            });
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
        Ok(Policy {
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
