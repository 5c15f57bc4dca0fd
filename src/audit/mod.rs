//! Receipts: the tamper-evident audit log.
//!
//! Every decision and every use of a credential appends a [`Receipt`] to
//! `<CRAIK_HOME>/audit.db` (SQLite, WAL, `synchronous=FULL`; the proxy's
//! [`group`] committer uses `NORMAL` plus its own `fdatasync` of the WAL
//! before it answers). Receipts form a hash chain: `hash` is SHA-256 over a
//! canonical encoding of every other field, `prev_hash` included (see
//! [`chain`]). Operators and credentials are named by keyed identity hashes
//! ([`identity`]), never by secret material. Lookups go through a derived
//! query index in `audit-index.db` ([`index`]).
//! The API returns an error whenever a receipt cannot be made durable;
//! callers must then refuse the action ([`AuditError::exit_code`] is 5).

pub mod chain;
pub use store::{group, index};
pub mod checkpoint;
pub mod identity;
mod receipt;
pub mod retention;
pub mod store;
mod verify;

use std::path::{Path, PathBuf};

pub use checkpoint::Checkpoint;
pub use identity::AuditKey;
pub use receipt::{
    CSV_HEADER, NewReceipt, Operator, Receipt, ReceiptKind, Status, Workload, csv_row,
};
pub use store::log::{AUDIT_FILE, AuditLog, SCHEMA_VERSION};
pub use store::query::{Filter, Stats, parse_time};
pub use store::{INDEX_NOTICE_FROM, Notice};
pub use verify::{Damage, VerifyReport, archived_checkpoint_warning};

use crate::exit;

/// Errors of the audit log.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    #[error("audit log unavailable ({path}): {why}")]
    Unavailable { path: PathBuf, why: String },
    /// The secret store holding the audit key would not open for want of
    /// the right password: a store error (exit 1), not an audit one.
    #[error("{0}")]
    StorePassword(crate::secret::SecretError),
    /// The log is missing or empty where the home shows it held receipts.
    #[error(
        "{path} is missing or empty, but {why}: it was deleted or emptied, and craik will not start a new chain in its place"
    )]
    Lost {
        path: PathBuf,
        why: String,
        /// For a command that only reads (exit 1, not 5).
        reading: bool,
    },
    /// The log cannot even be read (a command that only reads).
    #[error("cannot read the audit log {path}: {why}")]
    Unreadable { path: PathBuf, why: String },
    #[error(
        "{path} was written by a newer craik (schema version {found}; this craik knows up to {supported})"
    )]
    NewerSchema {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    /// `hint`: the secret store's own, when it said why.
    #[error("audit key unavailable: {why}")]
    Key { why: String, hint: Option<String> },
    #[error("checkpoint signing key unavailable: {why}")]
    SigningKey { why: String, hint: Option<String> },
    #[error("no receipt {0}")]
    NotFound(String),
    #[error("checkpoint {path}: {why}")]
    Checkpoint { path: PathBuf, why: String },
    /// `receipts checkpoint` cannot write one.
    #[error("cannot checkpoint {path}: {why}")]
    CannotCheckpoint { path: PathBuf, why: String },
    /// The automatic checkpoint is gone although this home signs them.
    #[error(
        "{path} is missing although this home has a checkpoint signing key: a rewrite of the log before it would not show"
    )]
    CheckpointMissing { path: PathBuf },
    #[error("cannot read the audit log: {0}")]
    Query(String),
    #[error("{0}")]
    Time(String),
    /// `verify --public-key` names no key.
    #[error("{0}")]
    PublicKey(String),
    /// A filter that cannot be run (`receipts list --profile`).
    #[error("{0}")]
    Filter(String),
    /// The log holds schema objects the migrations did not create (a
    /// trigger that silences appends, a view, an altered table).
    #[error(
        "{path} holds {} craik did not create: {}; craik will not use a log whose appends something else can change",
        if objects.len() == 1 { "a schema object" } else { "schema objects" },
        objects.join(", ")
    )]
    Foreign {
        path: PathBuf,
        objects: Vec<String>,
        /// For a command that only reads (exit 1, not 5).
        reading: bool,
    },
    /// An append did not land as written.
    #[error("{path}: {why}")]
    Tampered { path: PathBuf, why: String },
    /// `receipts archive`, `prune` or `verify --archive` refused a file.
    #[error("archive {path}: {why}")]
    Archive { path: PathBuf, why: String },
}

impl AuditError {
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            AuditError::StorePassword(e) => return e.hint(),
            AuditError::Unavailable { .. } => {
                "the action was refused because its receipt could not be written; check that audit.db and its directory are writable and the disk is not full, and if audit.db is damaged (craik receipts verify), restore it from a backup".into()
            }
            AuditError::Lost { .. } => {
                "restore audit.db from a backup; to start a new log on purpose, move audit.db, audit-index.db, audit-signing.pub and audit-checkpoint.json aside".into()
            }
            AuditError::Unreadable { .. } => {
                "check that the file is a craik audit log with its -wal file beside it; if it is damaged, restore audit.db from a backup".into()
            }
            AuditError::NewerSchema { .. } => "upgrade craik to read this audit log".into(),
            AuditError::Key { hint: Some(h), .. } | AuditError::SigningKey { hint: Some(h), .. } => {
                h.clone()
            }
            AuditError::Key { hint: None, .. } => {
                "check the secret store (craik auth storage status) or CRAIK_AUDIT_KEY".into()
            }
            AuditError::SigningKey { hint: None, .. } => {
                "check the secret store (craik auth storage status)".into()
            }
            AuditError::NotFound(_) => "list receipts with: craik receipts list".into(),
            AuditError::Checkpoint { .. } => {
                "pass a checkpoint file written by craik receipts checkpoint".into()
            }
            AuditError::CheckpointMissing { path } => format!(
                "verify against a checkpoint kept elsewhere (--checkpoint FILE --public-key KEY); once the log is known good, put a new one back with: craik receipts checkpoint --out {}",
                path.display()
            ),
            AuditError::CannotCheckpoint { .. } => {
                "checkpoint a log that holds receipts and verifies (craik receipts verify), from a home that can be written".into()
            }
            AuditError::Query(_) => {
                "check the log with craik receipts verify; restore audit.db from a backup if it is damaged".into()
            }
            AuditError::PublicKey(_) => {
                "give the key's base64, as in audit-signing.pub, or the path of a copy of that file".into()
            }
            AuditError::Filter(_) => {
                "profile patterns are as in policies: * any characters but ':', ** any characters, ? one character".into()
            }
            AuditError::Foreign { .. } | AuditError::Tampered { .. } => {
                "someone changed the log's schema: keep a copy of audit.db as evidence, then restore it from a backup, or drop the object with sqlite3 and check the log with craik receipts verify --checkpoint against a checkpoint kept elsewhere".into()
            }
            AuditError::Archive { .. } => {
                "archive with craik receipts archive --until TIME --out FILE, then prune with craik receipts prune --archive FILE; keep the file (and a copy) where the agent cannot write".into()
            }
            AuditError::Time(_) => {
                "times are RFC 3339 (2026-01-31T12:00:00Z) or relative (30m, 24h, 7d, 2w, 1h30m)".into()
            }
        })
    }

    pub fn exit_code(&self) -> i32 {
        match self {
            AuditError::Unavailable { .. }
            | AuditError::NewerSchema { .. }
            | AuditError::Key { .. }
            | AuditError::Tampered { .. }
            | AuditError::Foreign { reading: false, .. }
            | AuditError::Lost { reading: false, .. } => exit::AUDIT_UNAVAILABLE,
            _ => exit::ERROR,
        }
    }
}

pub type Result<T, E = AuditError> = std::result::Result<T, E>;

impl AuditError {
    /// The audit key could not be had, for a reason of our own.
    fn key(why: impl Into<String>) -> AuditError {
        AuditError::Key {
            why: why.into(),
            hint: None,
        }
    }

    /// The secret store could not give the audit key.
    fn key_from_store(e: crate::secret::SecretError) -> AuditError {
        use crate::secret::SecretError as S;
        match e {
            S::WrongPassword { .. } | S::NoPassword | S::PasswordMismatch => {
                AuditError::StorePassword(e)
            }
            e => AuditError::Key {
                why: e.to_string(),
                hint: e.hint(),
            },
        }
    }
}

/// Creates `path` empty and 0600 unless it exists, without ever holding a
/// descriptor of it. Closing any descriptor of a file drops every POSIX
/// lock this process holds on it, and another thread's SQLite connection
/// may open (and lock) the new file the moment it appears: so it is made
/// under a temporary name, closed, and moved into place without replacing
/// anything. Where the file system cannot do that, it is created in place
/// as before.
/// A new file at `path`, 0600; an error if something is there already.
fn create_new_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map(drop)
}

fn create_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    // into_temp_path closes it; on failure the temporary name is removed.
    let tmp = tempfile::Builder::new()
        .prefix(".craik-new-")
        .permissions(std::fs::Permissions::from_mode(0o600))
        .tempfile_in(crate::home::dir_of(path))?
        .into_temp_path();
    match tmp.persist_noclobber(path) {
        Ok(()) => Ok(()),
        Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(_) => match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
        {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(e),
        },
    }
}
