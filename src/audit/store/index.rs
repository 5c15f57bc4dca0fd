//! The query index: the columns receipts are looked up by (time, kind,
//! status, run, profile, credential identity hash, operator subject, email
//! and hash, pool), copied out of the log into `audit-index.db` beside it,
//! with one index per lookup. Compact: each text is stored once (in
//! `names`, or `operators` for the three that name an operator) and an
//! entry holds its id, so the index costs a fraction of the log's bytes
//! per receipt (docs/benchmarks.md).
//!
//! Why a second file: a receipt's caller waits for its commit and for the
//! `fdatasync` of the log's WAL. With nine lookup indexes in the log, each
//! commit also wrote a leaf page of every index, which made the commit
//! about three times slower and the `fdatasync` carry about three times
//! the bytes (see docs/benchmarks.md). The index is written in bulk, later,
//! by whoever can, under its own lock, and never synced on a caller's path.
//!
//! The log stays the record; the index is derived from it, may be deleted
//! at any time, and is rebuilt when it no longer matches the log (its last
//! entry's hash is checked against the log before each use). Queries never
//! trust it alone:
//! - every row it names is read back from `receipts` and the filter is
//!   checked again on that row, so a stale or forged entry can hide a
//!   receipt from a listing but never invent or misattribute one;
//! - receipts after the last indexed seq (the *tail*) are read from the log
//!   itself, so results are complete however far the index lags.
//!
//! Kept current by: the proxy's checkpointer thread, a process appending
//! alone on every [`INLINE_EVERY`]th receipt, and each query before it
//! runs. A failure to update it never fails an append or a query, and a
//! query that fails on a damaged index file is run again over the log
//! alone (see `query.rs`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use super::schema::{self, last_seq};

/// A process appending alone brings the index up to date whenever an
/// append passes a multiple of this seq.
pub(in crate::audit) const INLINE_EVERY: i64 = 64;
/// How long a query waits for another process's catch-up of the index
/// before it reads the tail from the log instead.
pub(in crate::audit) const QUERY_BUSY: Duration = Duration::from_millis(500);
/// Receipts copied per transaction, so that one catch-up of a long tail
/// does not hold the index's lock for long.
const CHUNK: i64 = 20_000;
/// The index schema; an index file of another version is rebuilt.
/// (2: `pool_id`, for the audit page's pool filter. 3: compact entries:
/// times as milliseconds, every other value as the id of its text in
/// `names` or `operators`, and no index entry for an absent value.)
const INDEX_VERSION: i64 = 3;

/// The index's columns of a receipt, from the log's `receipts` as `r`,
/// with its names already in `idx.names` and `idx.operators`. A time
/// that is not of the form the log writes stays text (and no time range
/// on the index side matches it; the log's own rows are checked again).
const ENTRY: &str = "r.seq,
    CASE WHEN r.created_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9]Z'
        THEN coalesce(unixepoch(substr(r.created_at, 1, 19)) * 1000 + CAST(substr(r.created_at, 21, 3) AS INTEGER), r.created_at)
        ELSE r.created_at END,
    (SELECT id FROM idx.names WHERE s = r.kind),
    (SELECT id FROM idx.names WHERE s = r.status),
    (SELECT id FROM idx.names WHERE s = r.run_id),
    (SELECT id FROM idx.names WHERE s = r.auth_profile_id),
    (SELECT id FROM idx.names WHERE s = r.auth_identity_hash),
    (SELECT id FROM idx.operators WHERE key = json_array(r.operator_subject, r.operator_email, r.operator_identity_hash)
        AND coalesce(r.operator_subject, r.operator_email, r.operator_identity_hash) IS NOT NULL),
    (SELECT id FROM idx.names WHERE s = r.pool_id)";

/// The texts a range of receipts names, added to `idx.names` (once each).
const NAMES: &str = "INSERT OR IGNORE INTO idx.names (s)
    SELECT kind FROM main.receipts WHERE seq > ?1 AND seq <= ?2
    UNION SELECT status FROM main.receipts WHERE seq > ?1 AND seq <= ?2
    UNION SELECT run_id FROM main.receipts WHERE seq > ?1 AND seq <= ?2 AND run_id IS NOT NULL
    UNION SELECT auth_profile_id FROM main.receipts WHERE seq > ?1 AND seq <= ?2 AND auth_profile_id IS NOT NULL
    UNION SELECT auth_identity_hash FROM main.receipts WHERE seq > ?1 AND seq <= ?2 AND auth_identity_hash IS NOT NULL
    UNION SELECT pool_id FROM main.receipts WHERE seq > ?1 AND seq <= ?2 AND pool_id IS NOT NULL";

/// The operators a range of receipts names, added to `idx.operators`.
const OPERATORS: &str = "INSERT OR IGNORE INTO idx.operators (key, subject, email, identity_hash)
    SELECT DISTINCT json_array(operator_subject, operator_email, operator_identity_hash), operator_subject, operator_email, operator_identity_hash
    FROM main.receipts WHERE seq > ?1 AND seq <= ?2
    AND coalesce(operator_subject, operator_email, operator_identity_hash) IS NOT NULL";

const SCHEMA: &str = "
DROP TABLE IF EXISTS idx.entries;
DROP TABLE IF EXISTS idx.state;
DROP TABLE IF EXISTS idx.names;
DROP TABLE IF EXISTS idx.operators;
-- Every text the entries name (kinds, statuses, runs, profiles, credential
-- identity hashes, pools), stored once.
CREATE TABLE idx.names (
    id INTEGER PRIMARY KEY,
    s  TEXT NOT NULL UNIQUE
);
-- Every operator the entries name: subject, email and identity hash.
CREATE TABLE idx.operators (
    id            INTEGER PRIMARY KEY,
    key           TEXT NOT NULL UNIQUE,
    subject       TEXT,
    email         TEXT,
    identity_hash TEXT
);
CREATE INDEX idx.operators_by_subject ON operators (subject);
CREATE INDEX idx.operators_by_email ON operators (email);
CREATE INDEX idx.operators_by_hash ON operators (identity_hash);
-- One row per receipt: its time in milliseconds and ids of `names` and
-- `operators`. An index holds the rowid (seq) after its column, so each
-- lookup by value comes out in seq order; a receipt without a value has
-- no entry in that value's index.
CREATE TABLE idx.entries (
    seq                INTEGER PRIMARY KEY,
    created_at         INTEGER NOT NULL,
    kind               INTEGER NOT NULL,
    status             INTEGER NOT NULL,
    run_id             INTEGER,
    auth_profile_id    INTEGER,
    auth_identity_hash INTEGER,
    operator           INTEGER,
    pool_id            INTEGER
);
CREATE INDEX idx.entries_by_created ON entries (created_at);
CREATE INDEX idx.entries_by_kind ON entries (kind);
CREATE INDEX idx.entries_by_run ON entries (run_id) WHERE run_id IS NOT NULL;
CREATE INDEX idx.entries_by_profile ON entries (auth_profile_id) WHERE auth_profile_id IS NOT NULL;
CREATE INDEX idx.entries_by_identity_hash ON entries (auth_identity_hash) WHERE auth_identity_hash IS NOT NULL;
CREATE INDEX idx.entries_by_operator ON entries (operator) WHERE operator IS NOT NULL;
CREATE INDEX idx.entries_by_pool ON entries (pool_id) WHERE pool_id IS NOT NULL;
-- The last seq copied and its hash in the log: a log that no longer has
-- that receipt (replaced, truncated, rewritten) gets a fresh index.
CREATE TABLE idx.state (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    upto      INTEGER NOT NULL,
    upto_hash TEXT NOT NULL
);
INSERT INTO idx.state VALUES (1, 0, '');
";

/// `audit.db` → `audit-index.db` (any other name: `<name>-index.db`).
pub fn index_path(log: &Path) -> PathBuf {
    let name = log
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = name.strip_suffix(".db").unwrap_or(&name);
    log.with_file_name(format!("{stem}-index.db"))
}

/// Opens a second connection to the log with the index attached as `idx`
/// (creating the index file, 0600, and its schema as needed).
pub(in crate::audit) fn open(log: &Path, busy: Duration) -> rusqlite::Result<Connection> {
    let path = index_path(log);
    if !path.exists() {
        // Created here so it is 0600 from the start, like the log.
        let _ = crate::audit::create_private(&path);
    }
    let conn = Connection::open_with_flags(
        log,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(busy)?;
    schema::add_functions(&conn)?;
    conn.execute_batch("PRAGMA trusted_schema=OFF;")?;
    conn.execute("ATTACH DATABASE ?1 AS idx", [path.to_string_lossy()])?;
    if conn.is_readonly("idx")? {
        return Err(rusqlite::Error::InvalidQuery);
    }
    // WAL with NORMAL: a crash may lose the last copies (they are copied
    // again) but cannot corrupt the file; nothing here is ever fsynced on
    // a caller's path.
    conn.query_row("PRAGMA idx.journal_mode=WAL", [], |_| Ok(()))?;
    conn.execute_batch("PRAGMA idx.synchronous=NORMAL;")?;
    let version: i64 = conn.query_row("PRAGMA idx.user_version", [], |r| r.get(0))?;
    if version != INDEX_VERSION {
        let tx = conn.unchecked_transaction()?;
        let again: i64 = tx.query_row("PRAGMA idx.user_version", [], |r| r.get(0))?;
        if again != INDEX_VERSION {
            tx.execute_batch(SCHEMA)?;
            tx.execute_batch(&format!("PRAGMA idx.user_version = {INDEX_VERSION}"))?;
        }
        tx.commit()?;
    }
    Ok(conn)
}

/// The seq up to which the index holds every receipt of the log, checked
/// against the log (0 when it holds nothing usable). Inside a transaction,
/// call this before reading the log, so the log's snapshot is no older
/// than the index's.
pub(in crate::audit) fn upto(conn: &Connection) -> rusqlite::Result<i64> {
    let (upto, hash): (i64, String) = conn.query_row(
        "SELECT upto, upto_hash FROM idx.state WHERE id = 1",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    Ok(if matches_log(conn, upto, &hash)? {
        upto
    } else {
        0
    })
}

/// How many of the log's receipts the index lacks, if it can tell.
pub(in crate::audit) fn behind(conn: &Connection) -> Option<i64> {
    let upto = upto(conn).ok()?;
    Some(last_seq(conn).ok()? - upto)
}

/// Whether the log still holds the index's last entry: its receipt `upto`
/// with hash `hash` (an empty index always matches). `conn` has the log
/// as `main`.
fn matches_log(conn: &Connection, upto: i64, hash: &str) -> rusqlite::Result<bool> {
    Ok(upto == 0 || log_hash(conn, upto)?.as_deref() == Some(hash))
}

fn log_hash(conn: &Connection, seq: i64) -> rusqlite::Result<Option<String>> {
    conn.query_row(
        "SELECT hash FROM main.receipts WHERE seq = ?1",
        [seq],
        |r| r.get(0),
    )
    .optional()
}

/// Copies every receipt after the index's last one into it; returns the
/// seq the index is now complete up to. Takes only the index's write lock:
/// the log is read from a snapshot, so appends never wait for this.
pub(in crate::audit) fn refresh(conn: &Connection) -> rusqlite::Result<i64> {
    loop {
        let tx = conn.unchecked_transaction()?;
        // The index's write lock first, so two processes never copy the
        // same receipts; then its state, then the log.
        tx.execute("UPDATE idx.state SET upto = upto WHERE id = 1", [])?;
        let mut from = upto(&tx)?;
        if from == 0 {
            tx.execute("DELETE FROM idx.entries", [])?;
        }
        // The chunk's range of seqs, its names, then its entries.
        let to: i64 = tx.query_row(
            "SELECT coalesce(max(seq), ?1) FROM (SELECT seq FROM main.receipts WHERE seq > ?1 ORDER BY seq LIMIT ?2)",
            [from, CHUNK],
            |r| r.get(0),
        )?;
        tx.execute(NAMES, [from, to])?;
        tx.execute(OPERATORS, [from, to])?;
        let copied = tx.execute(
            &format!(
                "INSERT INTO idx.entries SELECT {ENTRY} FROM main.receipts AS r WHERE r.seq > ?1 AND r.seq <= ?2 ORDER BY r.seq"
            ),
            [from, to],
        )? as i64;
        if copied > 0 {
            from = tx.query_row("SELECT max(seq) FROM idx.entries", [], |r| r.get(0))?;
            let hash = log_hash(&tx, from)?.unwrap_or_default();
            tx.execute(
                "UPDATE idx.state SET upto = ?1, upto_hash = ?2 WHERE id = 1",
                rusqlite::params![from, hash],
            )?;
        } else {
            tx.execute(
                "UPDATE idx.state SET upto = ?1 WHERE id = 1 AND upto <> ?1",
                [from],
            )?;
        }
        tx.commit()?;
        if copied < CHUNK {
            return Ok(from);
        }
    }
}

/// The last receipt the index file beside `log` holds (seq and hash in
/// the log), read without writing; `None` without a usable index.
pub(in crate::audit) fn last_indexed(log: &Path) -> Option<(i64, String)> {
    let path = index_path(log);
    if !path.exists() {
        return None;
    }
    let ro = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let idx = Connection::open_with_flags(&path, ro).ok()?;
    let version: i64 = idx
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .ok()?;
    if version != INDEX_VERSION {
        return None;
    }
    idx.query_row("SELECT upto, upto_hash FROM state WHERE id = 1", [], |r| {
        Ok((r.get(0)?, r.get(1)?))
    })
    .ok()
    .filter(|(upto, _)| *upto > 0)
}

/// A warning when the log on `conn` (at `log`) no longer holds receipt
/// `upto` with `hash`, which its index once copied: receipts cut from the
/// end of the log, or the log rewritten, or restored from an older backup.
/// Not proof (the index is not protected, and a restore is legitimate),
/// but the one trace such a cut leaves without a checkpoint.
pub(in crate::audit) fn lost_since_indexed(
    conn: &Connection,
    log: &Path,
    upto: i64,
    hash: &str,
) -> Option<String> {
    if matches_log(conn, upto, hash).ok()? {
        return None;
    }
    let last = last_seq(conn).ok()?;
    let index = index_path(log);
    Some(if last < upto {
        format!(
            "the query index {} held receipts up to seq {upto}, but the log ends at seq {last}: receipts may have been cut from its end, unless audit.db was restored from an older backup",
            index.display()
        )
    } else {
        format!(
            "the query index {} copied receipt {upto} with another hash than the log holds now: the log may have been rewritten, unless audit.db was restored from a backup",
            index.display()
        )
    })
}

/// [`lost_since_indexed`] on a connection with the index attached, before
/// a refresh rebuilds the index and the trace is gone.
pub(in crate::audit) fn lost_before_refresh(conn: &Connection, log: &Path) -> Option<String> {
    let (upto, hash): (i64, String) = conn
        .query_row(
            "SELECT upto, upto_hash FROM idx.state WHERE id = 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .ok()?;
    if upto == 0 {
        return None;
    }
    lost_since_indexed(conn, log, upto, &hash)
}

/// What `craik doctor` reports of the index, read without writing.
#[derive(Debug, PartialEq, Eq)]
pub enum Status {
    /// No index file yet: the first query builds it.
    Missing,
    /// It holds receipts 1 to `upto` of the log's `total`, checked against
    /// the log (the rest is read from the log until it catches up).
    Covers { upto: i64, total: i64 },
    /// It no longer matches the log (or is of another version): the next
    /// query rebuilds it.
    Stale,
    /// It cannot be read: queries read the log instead.
    Unreadable(String),
}

/// Reads the index's state and checks it against the log, opening both
/// read-only.
pub fn status(log: &Path) -> Status {
    let path = index_path(log);
    if !path.exists() {
        return Status::Missing;
    }
    let ro = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let read = || -> rusqlite::Result<Status> {
        let idx = Connection::open_with_flags(&path, ro)?;
        let version: i64 = idx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version != INDEX_VERSION {
            return Ok(Status::Stale);
        }
        let (upto, hash): (i64, String) =
            idx.query_row("SELECT upto, upto_hash FROM state WHERE id = 1", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
        let log = Connection::open_with_flags(log, ro)?;
        let total = last_seq(&log)?;
        Ok(if matches_log(&log, upto, &hash)? {
            Status::Covers { upto, total }
        } else {
            Status::Stale
        })
    };
    read().unwrap_or_else(|e| Status::Unreadable(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::index_path;
    use std::path::Path;

    #[test]
    fn index_file_names() {
        assert_eq!(
            index_path(Path::new("/h/audit.db")),
            Path::new("/h/audit-index.db")
        );
        assert_eq!(
            index_path(Path::new("/h/log")),
            Path::new("/h/log-index.db")
        );
    }
}
