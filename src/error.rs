//! The library's error type: every error knows its exit code and a hint.

use crate::exit;

/// A craik error. Each variant is typed; [`Error::hint`] says what to do and
/// [`Error::exit_code`] maps it to the documented exit codes.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Agent(#[from] crate::agent::AgentError),
    #[error(transparent)]
    Home(#[from] crate::home::HomeError),
    #[error(transparent)]
    Profile(#[from] crate::profile::ProfileError),
    #[error(transparent)]
    Secret(#[from] crate::secret::SecretError),
    #[error(transparent)]
    SecretRef(#[from] crate::secret::reference::SecretRefError),
    #[error(transparent)]
    Source(#[from] crate::credential::source::SourceError),
    #[error(transparent)]
    Duration(#[from] crate::duration::DurationError),
    #[error(transparent)]
    Pool(#[from] crate::pool::PoolError),
    #[error(transparent)]
    Audit(#[from] crate::audit::AuditError),
    #[error(transparent)]
    Operator(#[from] crate::operator::OperatorError),
    #[error(transparent)]
    Policy(#[from] crate::policy::PolicyError),
    /// Denied by policy or by a grant (exit 3; exit 6 when
    /// `login_required`: nobody is logged in and a failing condition is
    /// about who the operator is). `conditions` names every condition
    /// that failed, the first (the receipt's `policy_condition`) first.
    #[error("{message}")]
    Denied {
        message: String,
        hint: String,
        conditions: Vec<String>,
        login_required: bool,
    },
    /// Approval required (exit 4): `mode` is the policy's
    /// `require_approval` (`first_use`, `each_run`), `approve` the command
    /// an approver runs.
    #[error("{message}")]
    ApprovalRequired {
        message: String,
        hint: String,
        mode: String,
        approve: String,
    },
    /// The command `exec` was to run could not be started: exit 127 when
    /// it was not found, 126 when it could not be executed (as shells
    /// do), so a caller cannot mistake it for the command's own failure.
    #[error("cannot run {command}: {why}")]
    Spawn {
        command: String,
        why: String,
        code: i32,
    },
    /// Invalid input given on the command line or standard input.
    #[error("{message}")]
    Input { message: String, hint: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn input(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Error::Input {
            message: message.into(),
            hint: hint.into(),
        }
    }

    /// What the user can do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::Agent(e) => e.hint(),
            Error::Home(e) => e.hint(),
            Error::Profile(e) => e.hint(),
            Error::Secret(e) => e.hint(),
            Error::SecretRef(e) => e.hint(),
            Error::Source(e) => e.hint(),
            Error::Pool(e) => e.hint(),
            Error::Duration(e) => Some(e.hint()),
            Error::Audit(e) => e.hint(),
            Error::Operator(e) => e.hint(),
            Error::Input { hint, .. } => Some(hint.clone()),
            Error::Spawn { code, .. } => Some(if *code == 127 {
                "check the command name and PATH".into()
            } else {
                "check that the file is executable (chmod +x) and is a program".into()
            }),
            Error::Policy(e) => Some(e.hint()),
            Error::Denied { hint, .. } | Error::ApprovalRequired { hint, .. } => Some(hint.clone()),
        }
    }

    /// What a `--json` error carries beyond its message: the failing
    /// conditions of a denial, the mode and the approver's command of an
    /// approval request.
    pub fn json_fields(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut m = serde_json::Map::new();
        match self {
            Error::Denied { conditions, .. } => {
                m.insert(
                    "condition".into(),
                    conditions.first().cloned().unwrap_or_default().into(),
                );
                m.insert("conditions".into(), conditions.clone().into());
            }
            Error::ApprovalRequired { mode, approve, .. } => {
                m.insert("approval_mode".into(), mode.clone().into());
                m.insert("approve".into(), approve.clone().into());
            }
            _ => {}
        }
        m
    }

    /// The documented exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Audit(e) => e.exit_code(),
            Error::Operator(e) => e.exit_code(),
            Error::Agent(e) => e.exit_code(),
            Error::Denied {
                login_required: true,
                ..
            } => exit::LOGIN_REQUIRED,
            Error::Denied { .. } => exit::DENIED,
            Error::Spawn { code, .. } => *code,
            Error::ApprovalRequired { .. } => exit::APPROVAL_REQUIRED,
            Error::Source(_) | Error::SecretRef(_) | Error::Pool(_) => exit::CREDENTIAL_UNAVAILABLE,
            _ => exit::ERROR,
        }
    }
}
