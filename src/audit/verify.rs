//! Verifying the chain: every hash, every link, seq contiguity, and that
//! the log still holds each given checkpoint.

use serde::Serialize;

use super::chain::{digest_with_seq, hex32, receipt_hash};
use super::checkpoint::Checkpoint;
use super::store::compact::{self, Decoder};
use super::store::schema::last_seq;
use super::{AuditError, AuditLog, Result};

/// The first damage found.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Damage {
    /// The first bad seq.
    pub seq: i64,
    /// `modified`, `missing`, `inserted`, `reordered` or `truncated`.
    pub what: String,
    pub detail: String,
}

/// The outcome of `verify`.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub ok: bool,
    /// Receipts whose hash and link checked out before any damage.
    pub verified: i64,
    pub tail_seq: i64,
    pub tail_hash: String,
    pub checkpoints_checked: usize,
    /// The last seq archived and pruned (`receipts prune`): the chain in
    /// the log starts after it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub archived_through: Option<i64>,
    pub damage: Option<Damage>,
    /// Signs of trouble that are not proof (the query index remembering
    /// receipts the log no longer has); `ok` does not depend on them.
    pub warnings: Vec<String>,
}

fn damage(seq: i64, what: &str, detail: String) -> Option<Damage> {
    Some(Damage {
        seq,
        what: what.to_string(),
        detail,
    })
}

/// The warning `verify` gives for a checkpoint that names a receipt since
/// archived and pruned, unless an archive file given checks it
/// ([`super::retention::check_files`]).
pub fn archived_checkpoint_warning(cp: &Checkpoint) -> String {
    format!(
        "checkpoint {} names receipt {}, which was archived and pruned; give the archive that holds it (--archive FILE) to check it",
        cp.source, cp.seq
    )
}

/// The receipt `row` stores, if it is receipt `expected`, reads back,
/// has the right hash and links to `prev`; `None` otherwise, and the full
/// check then says what is wrong.
fn intact(dec: &Decoder<'_>, row: &rusqlite::Row<'_>, expected: i64, prev: &str) -> Option<String> {
    let r = dec.row(row).ok()?;
    (r.seq == expected && r.prev_hash == prev && receipt_hash(&r) == r.hash).then_some(r.hash)
}

/// The rows of `receipt_rows` from `lower` on (up to `upper`), oldest first.
fn rows_sql(upper: bool) -> String {
    format!(
        "SELECT {} FROM main.receipt_rows AS r WHERE r.seq >= ?1{} ORDER BY r.seq",
        compact::raw_columns("r"),
        if upper { " AND r.seq <= ?2" } else { "" }
    )
}

/// Logs at least this long are verified in two halves in parallel.
const PARALLEL_FROM: i64 = 100_000;

/// Descriptors opened for [`read_ahead`], by (device, inode); never closed.
#[cfg(target_os = "linux")]
type Held = std::sync::Mutex<Vec<((u64, u64), std::sync::Arc<std::fs::File>)>>;

/// Asks the kernel, from a thread of its own, to read the whole log into
/// the page cache while a full verify runs, when it fits in half the
/// memory available (Linux only; elsewhere nothing).
///
/// Why: the verify walks the table in seq order, and in a log that has
/// been migrated (or that held indexes once) those pages lie scattered in
/// the file, so a verify of a log not in the page cache read it a page at
/// a time: 6.50 s for the 1,000,000-receipt bench log against 1.28 s
/// cached, while `dd` reads the 1.2 GB file in 0.7 s. With the hint the
/// uncached verify took 2.5-2.9 s (docs/benchmarks.md). A log larger than
/// half the memory available is left to the kernel's own read-ahead, so
/// as not to evict the cache.
#[cfg(target_os = "linux")]
fn read_ahead(path: &std::path::Path) {
    use std::os::unix::fs::MetadataExt;
    use std::sync::{Arc, OnceLock, PoisonError};

    // Closing any descriptor of a file drops every POSIX lock this process
    // holds on it, SQLite's included. So the descriptor the hints use is
    // opened once per file and never closed, as SQLite keeps its own.
    static HELD: OnceLock<Held> = OnceLock::new();
    let Ok(meta) = std::fs::metadata(path) else {
        return;
    };
    let Some(len) = std::num::NonZeroU64::new(meta.len()) else {
        return;
    };
    if mem_available().is_none_or(|avail| len.get() > avail / 2) {
        return;
    }
    let key = (meta.dev(), meta.ino());
    let file = {
        let mut held = HELD
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match held.iter().find(|(k, _)| *k == key) {
            Some((_, f)) => f.clone(),
            None => {
                let Ok(f) = std::fs::File::open(path) else {
                    return;
                };
                let f = Arc::new(f);
                // Kept under the file it turned out to be, even if the
                // path was replaced meanwhile: it is never closed.
                let opened = f.metadata().map(|m| (m.dev(), m.ino())).unwrap_or(key);
                held.push((opened, f.clone()));
                if opened != key {
                    return;
                }
                f
            }
        }
    };
    let _ = std::thread::Builder::new()
        .name("craik-audit-read-ahead".into())
        .spawn(move || {
            // In windows no larger than Linux's default read-ahead: one
            // hint reads at most the device's read-ahead size.
            let mut at = 0;
            while at < len.get() {
                let _ = rustix::fs::fadvise(
                    &*file,
                    at,
                    std::num::NonZeroU64::new(READ_AHEAD_WINDOW),
                    rustix::fs::Advice::WillNeed,
                );
                at += READ_AHEAD_WINDOW;
            }
        });
}

#[cfg(not(target_os = "linux"))]
fn read_ahead(_path: &std::path::Path) {}

/// Bytes hinted at a time: Linux's default read-ahead.
#[cfg(target_os = "linux")]
const READ_AHEAD_WINDOW: u64 = 128 << 10;

/// `MemAvailable` of /proc/meminfo, in bytes.
#[cfg(target_os = "linux")]
fn mem_available() -> Option<u64> {
    mem_available_in(&std::fs::read_to_string("/proc/meminfo").ok()?)
}

#[cfg(any(target_os = "linux", test))]
fn mem_available_in(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// Checks the rows from `lower` on (up to `upper`, when given) in place,
/// expecting seq `first` first and a link to `prev`: the last row's hash
/// and the seq after it, or `None` at the first row that needs the full
/// check.
fn intact_rows(
    conn: &rusqlite::Connection,
    lower: i64,
    upper: Option<i64>,
    first: i64,
    prev: &str,
) -> Option<(String, i64)> {
    let mut stmt = conn.prepare(&rows_sql(upper.is_some())).ok()?;
    let mut rows = match upper {
        Some(u) => stmt.query([lower, u]),
        None => stmt.query([lower]),
    }
    .ok()?;
    let dec = Decoder::new(conn);
    let mut expected = first;
    let mut prev = prev.to_string();
    while let Some(row) = rows.next().ok()? {
        prev = intact(&dec, row, expected, &prev)?;
        expected += 1;
    }
    if upper.is_some_and(|u| expected != u + 1) {
        return None;
    }
    Some((prev, expected))
}

impl AuditLog {
    /// The fast path of `verify` for a whole log of `max_seq` receipts:
    /// seq 1..=mid on this connection and the rest on a second one, each
    /// in place; the first half must end at the hash the second half
    /// starts from. `None` if anything needs the full check.
    fn intact_in_halves(&self, base: (i64, &str), max_seq: i64) -> Option<(String, i64)> {
        let mid = base.0 + (max_seq - base.0) / 2;
        let at_mid = self.hash_at(mid).ok()??;
        let path = self.path.clone();
        let second = at_mid.clone();
        std::thread::scope(|scope| {
            let other = scope.spawn(move || {
                let conn = rusqlite::Connection::open_with_flags(
                    &path,
                    rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
                        | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )
                .ok()?;
                intact_rows(&conn, mid + 1, None, mid + 1, &second)
            });
            // From the start: every row, even one moved below seq 1.
            let first = intact_rows(&self.conn, i64::MIN, Some(mid), base.0 + 1, base.1);
            let rest = other.join().ok()?;
            match first {
                Some((h, _)) if h == at_mid => rest,
                _ => None,
            }
        })
    }

    fn hash_at(&self, seq: i64) -> Result<Option<String>> {
        use rusqlite::OptionalExtension;
        self.conn
            .query_row("SELECT hash FROM receipts WHERE seq = ?1", [seq], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| AuditError::Query(e.to_string()))
    }

    /// Whether the row stored at `seq` is self-consistent at that seq.
    fn valid_at(&self, seq: i64) -> Result<bool> {
        Ok(self.row_at(seq).is_some_and(|r| receipt_hash(&r) == r.hash))
    }

    /// The stored row at `seq`, if it can be read.
    fn row_at(&self, seq: i64) -> Option<super::Receipt> {
        use rusqlite::OptionalExtension;
        let dec = Decoder::new(&self.conn);
        self.conn
            .query_row(
                &format!(
                    "SELECT {} FROM main.receipt_rows AS r WHERE r.seq = ?1",
                    compact::raw_columns("r")
                ),
                [seq],
                |r| dec.row(r),
            )
            .optional()
            .ok()
            .flatten()
    }

    /// Recomputes the whole chain and checks the checkpoints.
    pub fn verify(&self, checkpoints: &[Checkpoint]) -> Result<VerifyReport> {
        // The index's state before the log's tail is read: the log only
        // grows, so an index that held no more than the log then never
        // looks ahead of it.
        let indexed = super::store::index::last_indexed(&self.path);
        let mut report = self.verify_from(1, checkpoints)?;
        if let Some((upto, hash)) = indexed
            && let Some(w) =
                super::store::index::lost_since_indexed(&self.conn, &self.path, upto, &hash)
        {
            report.warnings.push(w);
        }
        Ok(report)
    }

    /// Verifies the last `n` receipts (hashes, links, contiguity), taking
    /// the receipt before them as given (`craik doctor`).
    pub fn verify_tail(&self, n: i64) -> Result<VerifyReport> {
        let max_seq = last_seq(&self.conn).map_err(|e| AuditError::Query(e.to_string()))?;
        self.verify_from(max_seq - n + 1, &[])
    }

    fn verify_from(&self, from: i64, checkpoints: &[Checkpoint]) -> Result<VerifyReport> {
        let q = |e: rusqlite::Error| AuditError::Query(e.to_string());
        let max_seq = last_seq(&self.conn).map_err(q)?;
        // The chain starts after the ranges archived and pruned, if any
        // (see retention.rs); their records must chain from seq 1.
        let archived = self.archived()?;
        let mut found: Option<Damage> = super::retention::check_records(&archived, None)
            .and_then(|why| damage(archived.first().map_or(1, |a| a.first_seq), "archived", why));
        let (base, base_hash) = self.base()?;
        let from = from.max(base + 1);
        let whole = from == base + 1;
        let mut expected = from;
        let mut prev_hash = if whole {
            base_hash.clone()
        } else {
            self.hash_at(from - 1)?.unwrap_or_default()
        };
        if whole {
            read_ahead(&self.path);
        }
        // A long, intact log is checked in two halves at once; any doubt,
        // and the sequential pass below finds and names the damage.
        let fast = if whole && found.is_none() && max_seq - base >= PARALLEL_FROM {
            self.intact_in_halves((base, &base_hash), max_seq)
        } else {
            None
        };
        if found.is_some() {
            // The records of what was pruned are damaged: said above.
        } else if let Some((last, next)) = fast {
            prev_hash = last;
            expected = next;
        } else {
            let mut stmt = self.conn.prepare(&rows_sql(false)).map_err(q)?;
            let dec = Decoder::new(&self.conn);
            // From the start: every row, even one moved below seq 1.
            let lower = if whole { i64::MIN } else { from };
            let mut rows = stmt.query([lower]).map_err(q)?;
            while let Some(row) = rows.next().map_err(q)? {
                // The common case, checked in place without copying the row.
                if let Some(hash) = intact(&dec, row, expected, &prev_hash) {
                    prev_hash = hash;
                    expected += 1;
                    continue;
                }
                let seq: i64 = match row.get(0) {
                    Ok(s) => s,
                    Err(_) => {
                        found = damage(
                            expected,
                            "modified",
                            format!("the receipt after {} has an unreadable seq", expected - 1),
                        );
                        break;
                    }
                };
                let r = match dec.row(row) {
                    Ok(r) => r,
                    Err(e) => {
                        found = damage(
                            seq,
                            "modified",
                            format!("receipt {seq} cannot be read: {e}"),
                        );
                        break;
                    }
                };
                if r.seq < expected {
                    found = damage(
                        r.seq,
                        "inserted",
                        format!(
                            "a receipt sits at seq {}, outside the chain (which starts at {})",
                            r.seq,
                            base + 1
                        ),
                    );
                    break;
                }
                if r.seq != expected {
                    found = damage(
                        expected,
                        "missing",
                        format!(
                            "receipts {expected}..{} are missing (the next receipt is {})",
                            r.seq - 1,
                            r.seq
                        ),
                    );
                    break;
                }
                let h = receipt_hash(&r);
                if h != r.hash {
                    found = self.classify_mismatch(&r, max_seq)?;
                    break;
                }
                if r.prev_hash != prev_hash && r.seq == 1 {
                    found = damage(
                        1,
                        "modified",
                        "receipt 1's prev_hash is not the genesis hash (64 zeros)".into(),
                    );
                    break;
                }
                if r.prev_hash != prev_hash {
                    found = damage(
                        r.seq - 1,
                        "modified",
                        format!(
                            "receipt {} does not link to receipt {}: {} was rewritten with a recomputed hash, or {} was forged",
                            r.seq,
                            r.seq - 1,
                            r.seq - 1,
                            r.seq
                        ),
                    );
                    break;
                }
                prev_hash = r.hash;
                expected += 1;
            }
        }
        let verified = expected - from;
        let mut checked = 0;
        let mut warnings = Vec::new();
        if found.is_none() {
            (found, checked, warnings) =
                self.check_checkpoints(checkpoints, base, &archived, max_seq)?;
        }
        Ok(VerifyReport {
            ok: found.is_none(),
            verified,
            tail_seq: max_seq,
            tail_hash: if found.is_none() {
                prev_hash
            } else {
                String::new()
            },
            checkpoints_checked: checked,
            archived_through: (base > 0).then_some(base),
            damage: found,
            warnings,
        })
    }

    /// Whether the log (its chain starting after `base`, with `archived`
    /// records, ending at `max_seq`) still holds each checkpoint: the
    /// first damage, how many were checked, and warnings for those that
    /// name an archived receipt no record ends at.
    fn check_checkpoints(
        &self,
        checkpoints: &[Checkpoint],
        base: i64,
        archived: &[super::retention::Archived],
        max_seq: i64,
    ) -> Result<(Option<Damage>, usize, Vec<String>)> {
        let mut found = None;
        let mut checked = 0;
        let mut warnings = Vec::new();
        for cp in checkpoints {
            checked += 1;
            if cp.seq <= base {
                // Archived: its hash is the record's when the range
                // ended there; otherwise only the archive can tell.
                match archived.iter().find(|a| a.last_seq == cp.seq) {
                    Some(a) if a.last_hash == cp.hash => {}
                    Some(_) => {
                        found = damage(
                            cp.seq,
                            "modified",
                            format!(
                                "the archived receipt {} has another hash in the log's record of its range than checkpoint {} recorded",
                                cp.seq, cp.source
                            ),
                        );
                        break;
                    }
                    None => warnings.push(archived_checkpoint_warning(cp)),
                }
                continue;
            }
            if cp.seq > max_seq {
                found = damage(
                    max_seq + 1,
                    "truncated",
                    format!(
                        "checkpoint {} names receipt {} but the log ends at {max_seq}",
                        cp.source, cp.seq
                    ),
                );
                break;
            }
            match self.hash_at(cp.seq)? {
                Some(h) if h == cp.hash => {}
                _ => {
                    found = damage(
                        cp.seq,
                        "modified",
                        format!(
                            "receipt {} no longer has the hash that checkpoint {} recorded (the log was rewritten, or the checkpoint is of another log)",
                            cp.seq, cp.source
                        ),
                    );
                    break;
                }
            }
        }
        Ok((found, checked, warnings))
    }

    /// Whether the log still holds each of `checkpoints` (not the chain
    /// between them: see [`AuditLog::verify`]); the first damage if not.
    pub fn checkpoints_damage(&self, checkpoints: &[Checkpoint]) -> Result<Option<Damage>> {
        let max_seq = last_seq(&self.conn).map_err(|e| AuditError::Query(e.to_string()))?;
        let (base, _) = self.base()?;
        let archived = self.archived()?;
        Ok(self
            .check_checkpoints(checkpoints, base, &archived, max_seq)?
            .0)
    }

    /// A row whose hash does not match its contents: edited in place, or a
    /// receipt moved to another seq (swapped, or renumbered around an
    /// insertion or deletion)?
    fn classify_mismatch(&self, r: &super::Receipt, max_seq: i64) -> Result<Option<Damage>> {
        let window = 64;
        let lo = (r.seq - window).max(1);
        let hi = (r.seq + window).min(max_seq + window);
        for s in lo..=hi {
            if s == r.seq || hex32(&digest_with_seq(r, s)) != r.hash {
                continue;
            }
            // The receipt belongs at seq s.
            if s < r.seq && self.row_at(s).is_some_and(|at| at.hash == r.hash) {
                // Receipt s itself is still at s: this row is a copy.
                return Ok(damage(
                    r.seq,
                    "inserted",
                    format!(
                        "receipt {} is a copy of receipt {s} ({}), inserted after it",
                        r.seq, r.id
                    ),
                ));
            }
            if s < r.seq && self.valid_at(s)? {
                return Ok(damage(
                    s,
                    "inserted",
                    format!(
                        "receipt {} was inserted: receipt {} now sits at {} (it was {s})",
                        s, r.id, r.seq
                    ),
                ));
            }
            if s > r.seq {
                // Moved down by d: rows were deleted and the rest
                // renumbered if the next row moved down by d too (or there
                // is none); otherwise two receipts swapped places.
                let d = s - r.seq;
                let shifted = match self.row_at(r.seq + 1) {
                    None => true,
                    Some(next) => hex32(&digest_with_seq(&next, r.seq + 1 + d)) == next.hash,
                };
                if !shifted {
                    return Ok(damage(
                        r.seq,
                        "reordered",
                        format!("receipt {} belongs at seq {s} but sits at {}", r.id, r.seq),
                    ));
                }
                return Ok(damage(
                    r.seq,
                    "missing",
                    format!(
                        "receipt {} belongs at seq {s}: receipts before it were deleted and the rest renumbered",
                        r.id
                    ),
                ));
            }
            return Ok(damage(
                r.seq,
                "reordered",
                format!("receipt {} belongs at seq {s} but sits at {}", r.id, r.seq),
            ));
        }
        Ok(damage(
            r.seq,
            "modified",
            format!("receipt {}'s contents do not match its hash", r.seq),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::mem_available_in;

    #[test]
    fn reads_the_memory_available() {
        let info = "MemTotal:       24683904 kB\nMemFree:        22229420 kB\nMemAvailable:   24268072 kB\n";
        assert_eq!(mem_available_in(info), Some(24_268_072 * 1024));
        // Nothing to go by: no read-ahead.
        assert_eq!(mem_available_in("MemTotal: 1 kB\n"), None);
        assert_eq!(mem_available_in("MemAvailable: lots kB\n"), None);
        assert_eq!(
            mem_available_in("MemAvailable: 18446744073709551615 kB\n"),
            None
        );
    }
}
