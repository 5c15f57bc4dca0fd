//! The SQLite store of receipts: the log itself ([`log`]), the group
//! committer the proxy appends through ([`group`]), the derived query
//! index `audit-index.db` ([`index`]) and the lookups served from it
//! ([`query`]).

pub mod group;
pub mod index;
pub(crate) mod log;
pub(crate) mod query;
