//! The SQLite store of receipts: the log itself ([`log`]), the group
//! committer the proxy appends through ([`group`]), the derived query
//! index `audit-index.db` ([`index`]) and the lookups served from it
//! ([`query`]).

pub mod compact;
pub mod group;
pub mod index;
pub(crate) mod log;
pub(crate) mod query;
pub(in crate::audit) mod schema;

use std::path::PathBuf;

/// Slow, one-off work an open log is about to do, for the caller to tell
/// the user about (the CLI prints it on stderr).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// An existing log's schema upgrade: it runs once, inside one
    /// transaction, and takes about a minute for a million receipts
    /// (schema 4 copies the table).
    Migrating {
        path: PathBuf,
        from: i64,
        to: i64,
        receipts: i64,
    },
    /// A query first brings the query index up to date, and it lacks at
    /// least [`INDEX_NOTICE_FROM`] receipts (a copied or migrated log, a
    /// deleted index): about 30 s for a million.
    Indexing { path: PathBuf, behind: i64 },
    /// The query index copied receipts the log no longer holds; the query
    /// about to run rebuilds it.
    IndexMismatch { warning: String },
}

/// Receipts the query index may lack before a query says it is catching up.
pub const INDEX_NOTICE_FROM: i64 = 50_000;

impl std::fmt::Display for Notice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Notice::Migrating {
                path,
                from,
                to,
                receipts,
            } => write!(
                f,
                "upgrading the audit log {} from schema {from} to {to} ({receipts} receipts); this runs once, and can take about a minute per million receipts",
                path.display()
            ),
            Notice::Indexing { path, behind } => write!(
                f,
                "bringing the query index of {} up to date ({behind} receipts to copy); this can take about 30 s per million receipts",
                path.display()
            ),
            Notice::IndexMismatch { warning } => write!(
                f,
                "warning: {warning}; the query index is rebuilt from the log now, so check the log against a checkpoint kept elsewhere (craik receipts verify --checkpoint)"
            ),
        }
    }
}
