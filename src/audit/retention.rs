//! Retention: archive a range of the log's oldest receipts to a file of
//! their own, with a signed record of the range, then prune them from the
//! log, which keeps the record and goes on from the range's last hash.
//!
//! - `archive` copies receipts `first..=last` (first: the one after the
//!   last range pruned) into a new SQLite file of the log's schema, after
//!   verifying the whole log, and adds the range's record to that file's
//!   `archives` table: first and last seq, the hash before the first and
//!   of the last, the count, the time, and an Ed25519 signature over them
//!   with the home's checkpoint key (the key `receipts checkpoint` uses).
//! - `prune` checks such a file against the log (every receipt's hash and
//!   link recomputed, the record's signature with the home's public key,
//!   its range next after the log's last one, its last hash the log's own
//!   at that seq), then, in one transaction, writes the record into the
//!   log and deletes the range.
//! - `verify` then starts the chain after the last record, and checks the
//!   records (signed, contiguous from seq 1 and the genesis hash); given
//!   the archive files, it checks each against its record as `prune` did.
//!
//! The last receipt is never archived, so the log always has a tail to
//! chain new receipts from.

use std::path::{Path, PathBuf};

use chrono::{SecondsFormat, Utc};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use serde::Serialize;

use super::chain::{GENESIS, receipt_hash};
use super::checkpoint::{Checkpoint, sign, signature_verifies};
use super::store::compact::{self, Atoms, Decoder};
use super::store::schema::{COLUMNS, row_to_receipt};
use super::{AuditError, AuditLog, Result};
use crate::home::Home;
use crate::secret::Secrets;

/// A range archived (and, in a log, pruned): one row of `archives`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Archived {
    pub first_seq: i64,
    pub last_seq: i64,
    /// The hash of receipt `first_seq - 1` (the genesis hash for 1).
    pub prev_hash: String,
    pub last_hash: String,
    pub receipts: i64,
    pub archived_at: String,
    pub public_key: String,
    pub signature: String,
}

impl Archived {
    /// What the signature covers.
    pub fn message(&self) -> Vec<u8> {
        format!(
            "craik-archive v1\n{}\n{}\n{}\n{}\n{}\n{}\n",
            self.first_seq,
            self.prev_hash,
            self.last_seq,
            self.last_hash,
            self.receipts,
            self.archived_at
        )
        .into_bytes()
    }

    fn signed_by(&self, trusted: &str) -> bool {
        self.public_key.trim() == trusted.trim()
            && signature_verifies(&self.public_key, &self.message(), &self.signature)
    }
}

const ARCHIVE_COLUMNS: &str =
    "first_seq, last_seq, prev_hash, last_hash, receipts, archived_at, public_key, signature";

fn row_to_archived(r: &rusqlite::Row<'_>) -> rusqlite::Result<Archived> {
    Ok(Archived {
        first_seq: r.get(0)?,
        last_seq: r.get(1)?,
        prev_hash: r.get(2)?,
        last_hash: r.get(3)?,
        receipts: r.get(4)?,
        archived_at: r.get(5)?,
        public_key: r.get(6)?,
        signature: r.get(7)?,
    })
}

fn records(conn: &Connection) -> rusqlite::Result<Vec<Archived>> {
    let mut st = conn.prepare(&format!(
        "SELECT {ARCHIVE_COLUMNS} FROM main.archives ORDER BY last_seq"
    ))?;
    st.query_map([], row_to_archived)?.collect()
}

fn archive_error(path: &Path, why: impl Into<String>) -> AuditError {
    AuditError::Archive {
        path: path.to_path_buf(),
        why: why.into(),
    }
}

/// Checks that `records` chain from seq 1 and the genesis hash, each
/// signed with `trusted` when given; the first problem found.
pub fn check_records(records: &[Archived], trusted: Option<&str>) -> Option<String> {
    let (mut next, mut prev) = (1, GENESIS.to_string());
    for a in records {
        if a.first_seq != next || a.prev_hash != prev {
            return Some(format!(
                "the archived range {}..={} does not follow the one before it (expected it to start at {next})",
                a.first_seq, a.last_seq
            ));
        }
        if a.receipts != a.last_seq - a.first_seq + 1 {
            return Some(format!(
                "the archived range {}..={} claims {} receipts",
                a.first_seq, a.last_seq, a.receipts
            ));
        }
        if let Some(key) = trusted
            && !a.signed_by(key)
        {
            return Some(format!(
                "the record of the archived range {}..={} is not signed with this home's checkpoint key",
                a.first_seq, a.last_seq
            ));
        }
        next = a.last_seq + 1;
        prev = a.last_hash.clone();
    }
    None
}

impl AuditLog {
    /// The ranges pruned from this log, oldest first.
    pub fn archived(&self) -> Result<Vec<Archived>> {
        records(&self.conn).map_err(|e| AuditError::Query(e.to_string()))
    }

    /// The damage when the records of the ranges pruned from this log are
    /// not each signed with `trusted` (the home's checkpoint key): without
    /// that check a record anyone could write into audit.db would vouch
    /// for receipts deleted with it. `verify` alone checks only that the
    /// records chain.
    pub fn archived_damage(&self, trusted: &str) -> Result<Option<super::Damage>> {
        Ok(
            check_records(&self.archived()?, Some(trusted)).map(|why| super::Damage {
                seq: 1,
                what: "archived".into(),
                detail: why,
            }),
        )
    }

    /// [`AuditLog::verify`], and with `trusted` the records of the ranges
    /// pruned signed with it ([`AuditLog::archived_damage`]).
    pub fn verify_signed(
        &self,
        checkpoints: &[Checkpoint],
        trusted: Option<&str>,
    ) -> Result<super::VerifyReport> {
        let mut report = self.verify(checkpoints)?;
        if report.damage.is_none()
            && let Some(key) = trusted
            && let Some(d) = self.archived_damage(key)?
        {
            report.ok = false;
            report.damage = Some(d);
        }
        Ok(report)
    }

    /// Where the chain in this log starts from: the last pruned seq and
    /// its hash, or (0, the genesis hash).
    pub fn base(&self) -> Result<(i64, String)> {
        Ok(self
            .archived()?
            .pop()
            .map(|a| (a.last_seq, a.last_hash))
            .unwrap_or((0, GENESIS.to_string())))
    }
}

/// The seq of the last receipt at or before `until` (RFC 3339, as the log
/// writes times).
pub fn last_before(log: &AuditLog, until: &str) -> Result<Option<i64>> {
    log.conn
        .query_row(
            "SELECT seq FROM receipts WHERE created_at <= ?1 ORDER BY seq DESC LIMIT 1",
            [until],
            |r| r.get(0),
        )
        .optional()
        .map_err(|e| AuditError::Query(e.to_string()))
}

/// Copies receipts from the one after the last pruned range through
/// `through` into a new file `out` (0600, refused if it exists), with the
/// range's signed record. The log is verified first and not changed.
pub fn archive(
    home: &Home,
    secrets: &Secrets,
    log: &AuditLog,
    through: i64,
    out: &Path,
) -> Result<Archived> {
    let (base, prev_hash) = log.base()?;
    let (tail, _, _) = log.tail()?.ok_or_else(|| {
        archive_error(log.path(), "the log is empty; there is nothing to archive")
    })?;
    if through <= base {
        return Err(archive_error(
            log.path(),
            format!(
                "receipts up to {base} are archived already; the log starts at {}",
                base + 1
            ),
        ));
    }
    if through >= tail {
        return Err(archive_error(
            log.path(),
            format!(
                "receipt {through} is the log's last or beyond it (the last is {tail}); the last receipt stays, to chain new ones from"
            ),
        ));
    }
    // Checked against the automatic checkpoint too: a log rewritten with
    // every hash recomputed is a chain, and archiving then pruning the
    // rewritten range would leave verify nothing to compare.
    let held = super::checkpoint::held_auto(home, &super::checkpoint::public_key(secrets)?)?;
    let report = log.verify(&held)?;
    if let Some(d) = report.damage {
        return Err(archive_error(
            log.path(),
            format!(
                "the log is damaged at seq {} ({}); craik will not archive it",
                d.seq, d.what
            ),
        ));
    }
    let last_hash: String = log
        .conn
        .query_row("SELECT hash FROM receipts WHERE seq = ?1", [through], |r| {
            r.get(0)
        })
        .map_err(|e| AuditError::Query(e.to_string()))?;
    let mut record = Archived {
        first_seq: base + 1,
        last_seq: through,
        prev_hash,
        last_hash,
        receipts: through - base,
        archived_at: Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
        public_key: String::new(),
        signature: String::new(),
    };
    let (public_key, signature) = sign(home, secrets, &record.message())?;
    // The earlier records, which the archive copies, signed with this key.
    if let Some(d) = log.archived_damage(&public_key)? {
        return Err(archive_error(
            log.path(),
            format!(
                "the log is damaged ({}); craik will not archive it",
                d.detail
            ),
        ));
    }
    record.public_key = public_key;
    record.signature = signature;

    super::create_new_private(out).map_err(|e| {
        archive_error(
            out,
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                "it exists already; an archive is never written over".to_string()
            } else {
                e.to_string()
            },
        )
    })?;
    let written = (|| -> Result<()> {
        // The log's schema, by the log's own migrations.
        drop(AuditLog::open_path(out)?);
        let conn = Connection::open_with_flags(
            out,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| archive_error(out, e.to_string()))?;
        let q = |e: rusqlite::Error| archive_error(out, e.to_string());
        conn.execute_batch("PRAGMA journal_mode=DELETE; PRAGMA synchronous=FULL;")
            .map_err(q)?;
        conn.execute("ATTACH DATABASE ?1 AS log", [log.path().to_string_lossy()])
            .map_err(q)?;
        let tx = conn.unchecked_transaction().map_err(q)?;
        tx.execute(
            &format!(
                "INSERT INTO main.archives ({ARCHIVE_COLUMNS}) SELECT {ARCHIVE_COLUMNS} FROM log.archives"
            ),
            [],
        )
        .map_err(q)?;
        insert_record(&tx, "main", &record).map_err(q)?;
        let copied = copy_rows(&tx, record.first_seq, record.last_seq).map_err(q)?;
        tx.commit().map_err(q)?;
        conn.execute("DETACH DATABASE log", []).map_err(q)?;
        if copied as i64 != record.receipts {
            return Err(archive_error(
                out,
                format!("copied {copied} receipts of {}", record.receipts),
            ));
        }
        Ok(())
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(out);
        return Err(e);
    }
    // Read back as prune will.
    check_file(out, None)?;
    Ok(record)
}

/// Copies the log's receipts `first..=last` (the log attached as `log`)
/// into the archive's rows, each decoded and stored again (the atoms' ids
/// are the archive's own); returns how many.
fn copy_rows(conn: &Connection, first: i64, last: i64) -> rusqlite::Result<usize> {
    let dec = Decoder::of(conn, "log");
    let mut atoms = Atoms::default();
    let mut read = conn.prepare(&format!(
        "SELECT {} FROM log.receipt_rows AS r WHERE r.seq >= ?1 AND r.seq <= ?2 ORDER BY r.seq",
        compact::raw_columns("r")
    ))?;
    let mut insert = conn.prepare(&compact::insert_sql("main"))?;
    let mut rows = read.query([first, last])?;
    let (mut copied, mut prev) = (0, None);
    while let Some(row) = rows.next()? {
        let r = dec.row(row)?;
        // Linked to the row before only where it is: a broken link is
        // copied as it is.
        let linked = prev.as_ref() == Some(&r.prev_hash);
        insert.execute(rusqlite::params_from_iter(atoms.encode(conn, &r, linked)?))?;
        prev = Some(r.hash);
        copied += 1;
    }
    Ok(copied)
}

fn insert_record(conn: &Connection, db: &str, a: &Archived) -> rusqlite::Result<usize> {
    conn.execute(
        &format!(
            "INSERT INTO {db}.archives ({ARCHIVE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
        ),
        params![
            a.first_seq,
            a.last_seq,
            a.prev_hash,
            a.last_hash,
            a.receipts,
            a.archived_at,
            a.public_key,
            a.signature
        ],
    )
}

/// Reads an archive file and checks it whole: its records (signed with
/// `trusted` when given, contiguous from seq 1), and every receipt of its
/// last record's range, each hash recomputed and each link followed from
/// the record's first hash to its last. Returns its records, its own last.
pub fn check_file(path: &Path, trusted: Option<&str>) -> Result<Vec<Archived>> {
    let bad = |why: String| archive_error(path, why);
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| bad(e.to_string()))?;
    let recs = records(&conn).map_err(|e| bad(format!("not a craik archive ({e})")))?;
    let Some(own) = recs.last().cloned() else {
        return Err(bad(
            "it records no archived range; it is not a craik archive".into(),
        ));
    };
    if let Some(why) = check_records(&recs, trusted) {
        return Err(bad(why));
    }
    // An archive written before schema 6 holds a plain `receipts` table.
    let compact_rows: bool = conn
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'receipt_rows')",
            [],
            |r| r.get(0),
        )
        .map_err(|e| bad(e.to_string()))?;
    let sql = if compact_rows {
        format!(
            "SELECT {} FROM receipt_rows AS r ORDER BY r.seq",
            compact::raw_columns("r")
        )
    } else {
        format!("SELECT {COLUMNS} FROM receipts ORDER BY seq")
    };
    let mut st = conn.prepare(&sql).map_err(|e| bad(e.to_string()))?;
    let mut rows = st.query([]).map_err(|e| bad(e.to_string()))?;
    let dec = Decoder::new(&conn);
    let (mut expected, mut prev) = (own.first_seq, own.prev_hash.clone());
    while let Some(row) = rows.next().map_err(|e| bad(e.to_string()))? {
        let r = if compact_rows {
            dec.row(row)
        } else {
            row_to_receipt(row)
        }
        .map_err(|e| bad(format!("receipt {expected}: {e}")))?;
        if r.seq != expected {
            return Err(bad(format!(
                "receipt {expected} is missing (the next one held is {})",
                r.seq
            )));
        }
        if r.prev_hash != prev || receipt_hash(&r) != r.hash {
            return Err(bad(format!(
                "receipt {} was changed after it was archived",
                r.seq
            )));
        }
        prev = r.hash;
        expected += 1;
    }
    if expected != own.last_seq + 1 || prev != own.last_hash {
        return Err(bad(format!(
            "it holds receipts {}..={} but its record names {}..={}",
            own.first_seq,
            expected - 1,
            own.first_seq,
            own.last_seq
        )));
    }
    Ok(recs)
}

/// Prunes the range archived in `file` from the log, after checking the
/// file whole against the log and its record against `trusted` (this
/// home's public key). Returns the record, now in the log.
pub fn prune(log: &mut AuditLog, file: &Path, trusted: &str) -> Result<Archived> {
    let recs = check_file(file, Some(trusted))?;
    let own = recs.last().cloned().expect("check_file found a record");
    let earlier = &recs[..recs.len() - 1];
    let path = log.path().to_path_buf();
    let mismatch = |why: String| archive_error(file, why);
    if log.archived()? != earlier {
        return Err(mismatch(
            "its earlier records are not the log's: it is an archive of another log, or of this one before another prune".into(),
        ));
    }
    // The index is brought up to date first, so that it keeps matching
    // the log's tail after the prune (it is then trimmed).
    let _ = log.refresh_index();
    let q = |e: rusqlite::Error| AuditError::Unavailable {
        path: path.clone(),
        why: e.to_string(),
    };
    let tx = log
        .conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(q)?;
    let at: Option<String> = tx
        .query_row(
            "SELECT hash FROM receipts WHERE seq = ?1",
            [own.last_seq],
            |r| r.get(0),
        )
        .optional()
        .map_err(q)?;
    if at.as_deref() != Some(own.last_hash.as_str()) {
        return Err(mismatch(format!(
            "the log's receipt {} is not the one archived (another hash, or none): it is an archive of another log",
            own.last_seq
        )));
    }
    let tail: i64 = tx
        .query_row("SELECT max(seq) FROM receipts", [], |r| r.get(0))
        .map_err(q)?;
    if own.last_seq >= tail {
        return Err(mismatch(
            "it reaches the log's last receipt, which stays".into(),
        ));
    }
    insert_record(&tx, "main", &own).map_err(q)?;
    // The first receipt kept names its prev_hash (the last one pruned's
    // hash) if it took it from the row before.
    tx.execute(
        "UPDATE receipt_rows SET prev_hash = (SELECT hash FROM receipt_rows WHERE seq = ?1) \
         WHERE seq = (SELECT min(seq) FROM receipt_rows WHERE seq > ?1) AND prev_hash IS NULL",
        [own.last_seq],
    )
    .map_err(q)?;
    tx.execute("DELETE FROM receipt_rows WHERE seq <= ?1", [own.last_seq])
        .map_err(q)?;
    tx.commit().map_err(q)?;
    // Best effort: the pruned rows' index entries, and the space.
    if let Some(c) = log.query_conn() {
        let _ = c.execute("DELETE FROM idx.entries WHERE seq <= ?1", [own.last_seq]);
    }
    let _ = log
        .conn
        .execute_batch("PRAGMA wal_checkpoint(TRUNCATE); VACUUM;");
    Ok(own)
}

/// The archive files given to `verify`, each checked whole and against
/// the log's record of its range; and each checkpoint that names a
/// receipt one of them holds, against that receipt's hash there. Returns
/// the checkpoints so checked.
pub fn check_files<'a>(
    log: &AuditLog,
    files: &[PathBuf],
    trusted: Option<&str>,
    checkpoints: &'a [Checkpoint],
) -> Result<Vec<&'a Checkpoint>> {
    let in_log = log.archived()?;
    let mut checked = Vec::new();
    for f in files {
        let recs = check_file(f, trusted)?;
        let own = recs.last().expect("check_file found a record");
        if !in_log.contains(own) {
            return Err(archive_error(
                f,
                format!(
                    "the log has no record of the range {}..={} it holds (or records it otherwise)",
                    own.first_seq, own.last_seq
                ),
            ));
        }
        let conn = Connection::open_with_flags(
            f,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| archive_error(f, e.to_string()))?;
        for cp in checkpoints
            .iter()
            .filter(|cp| (own.first_seq..=own.last_seq).contains(&cp.seq))
        {
            let hash: String = conn
                .query_row("SELECT hash FROM receipts WHERE seq = ?1", [cp.seq], |r| {
                    r.get(0)
                })
                .map_err(|e| archive_error(f, e.to_string()))?;
            if hash != cp.hash {
                return Err(archive_error(
                    f,
                    format!(
                        "its receipt {} has another hash than checkpoint {} recorded",
                        cp.seq, cp.source
                    ),
                ));
            }
            checked.push(cp);
        }
    }
    Ok(checked)
}
