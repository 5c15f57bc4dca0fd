//! The library's error type: every error knows its exit code and a hint.

use crate::exit;

/// A craik error. Each variant is typed; [`Error::hint`] says what to do and
/// [`Error::exit_code`] maps it to the documented exit codes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
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
    #[error(transparent)]
    Team(#[from] crate::team::TeamError),
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
    /// Something that should not fail did (the runtime, a socket's own
    /// address, the HTTP client's setup): `what` craik was doing, and the
    /// cause as its source.
    #[error("{what}")]
    Internal {
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A state the code rules out was reached (a bug in craik).
    #[error("{0}")]
    Bug(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn input(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Error::Input {
            message: message.into(),
            hint: hint.into(),
        }
    }

    /// `command` could not be started: 127 when it was not found, else
    /// 126, as shells say.
    pub fn spawn(command: &str, e: &std::io::Error) -> Self {
        Error::Spawn {
            command: command.to_string(),
            code: if e.kind() == std::io::ErrorKind::NotFound {
                127
            } else {
                126
            },
            why: e.to_string(),
        }
    }

    /// An internal failure while doing `what`, caused by `source`.
    pub fn internal(
        what: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Error::Internal {
            what: what.into(),
            source: source.into(),
        }
    }

    /// The message with its causes, each once: `what: cause: cause`.
    pub fn chain(&self) -> String {
        let mut msg = self.to_string();
        let mut cause = std::error::Error::source(self);
        while let Some(c) = cause {
            let t = c.to_string();
            if !msg.contains(&t) {
                msg.push_str(": ");
                msg.push_str(&t);
            }
            cause = c.source();
        }
        msg
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
            Error::Team(e) => e.hint(),
            Error::Input { hint, .. } => Some(hint.clone()),
            Error::Internal { .. } | Error::Bug(_) => Some(
                "this is not something you did: run it again, and if it persists report it with this error line"
                    .into(),
            ),
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
            Error::Team(e) => e.exit_code(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_internal_failure_prints_its_cause_once() {
        let e = Error::internal(
            "cannot start the async runtime",
            std::io::Error::other("no threads left"),
        );
        assert_eq!(e.chain(), "cannot start the async runtime: no threads left");
        assert!(e.hint().unwrap().contains("report it"));
        assert_eq!(e.exit_code(), exit::ERROR);
        // A transparent wrapper whose text already holds its cause adds
        // nothing.
        let e = Error::from(crate::duration::DurationError::Zero {
            text: "0s".into(),
            max: std::time::Duration::from_secs(60),
        });
        assert_eq!(e.chain(), e.to_string());
    }
}
