//! The audit log: tamper detection, concurrent writers, crashes, failing
//! closed when the log cannot be written, index use, and the
//! `craik receipts` commands as a user sees them.
//!
//! Randomized tests print their seed; rerun one with `CRAIK_TEST_SEED=<n>`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};
use craik::audit::chain::{GENESIS, receipt_hash};
use craik::audit::checkpoint::{self, Checkpoint};
use craik::audit::{
    AuditKey, AuditLog, Filter, NewReceipt, Operator, Receipt, ReceiptKind, SCHEMA_VERSION, Status,
};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rusqlite::types::Value;
use rusqlite::{Connection, params};

use crate::common::{Env, Run, assert_schema, hex_encode};

// ---------------------------------------------------------------------------
// Helpers: seeds, logs built with the library, raw rows.

/// The seed of a randomized test: `CRAIK_TEST_SEED` or a fresh one.
fn seed(test: &str) -> u64 {
    let seed = std::env::var("CRAIK_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("{test}: seed {seed} (rerun with CRAIK_TEST_SEED={seed})");
    seed
}

const COLS: &str = "seq, id, created_at, kind, run_id, capability, status, reason, policy_condition, auth_profile_id, auth_kind, auth_identity_hash, provider_family, pool_id, operator_subject, operator_issuer, operator_email, operator_groups, operator_identity_hash, details, prev_hash, hash";

/// Every column of `receipts`, in table order.
const COLUMNS: [&str; 22] = [
    "seq",
    "id",
    "created_at",
    "kind",
    "run_id",
    "capability",
    "status",
    "reason",
    "policy_condition",
    "auth_profile_id",
    "auth_kind",
    "auth_identity_hash",
    "provider_family",
    "pool_id",
    "operator_subject",
    "operator_issuer",
    "operator_email",
    "operator_groups",
    "operator_identity_hash",
    "details",
    "prev_hash",
    "hash",
];

const KINDS: &[&str] = &[
    "profile_added",
    "profile_removed",
    "secret_migrated",
    "login",
    "logout",
    "grant",
    "grant_revoked",
    "denial",
    "approval_requested",
    "approval",
    "call.started",
    "call.finished",
];

fn with_suffix(p: &Path, suffix: &str) -> PathBuf {
    let mut s = p.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

fn rfc3339(t: chrono::DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn random_id() -> String {
    format!("rcpt_{}", hex_encode(&rand::random::<[u8; 12]>()))
}

fn operators(key: &AuditKey) -> Vec<Operator> {
    let iss = "https://idp.example.com";
    [
        (
            "alice-sub",
            Some("alice@example.com"),
            vec!["eng", "admins"],
        ),
        ("bob-sub", Some("bob@example.com"), vec!["eng"]),
        ("svc-ci", None, vec![]),
    ]
    .into_iter()
    .map(|(sub, email, groups)| Operator {
        subject: sub.to_string(),
        issuer: iss.to_string(),
        email: email.map(str::to_string),
        groups: groups.into_iter().map(str::to_string).collect(),
        identity_hash: key.operator(iss, sub),
    })
    .collect()
}

/// A receipt with varied fields (every optional field set some of the time).
fn random_receipt(rng: &mut StdRng, key: &AuditKey, ops: &[Operator], n: usize) -> NewReceipt {
    const PROFILES: &[(&str, &str, &str)] = &[
        ("openai:ci", "keyring-ref", "openai"),
        ("openai:prod", "api-key", "openai"),
        ("anthropic:work", "secret-ref", "anthropic"),
        ("gemini:ref", "secret-ref", "gemini"),
    ];
    const STATUSES: &[Status] = &[
        Status::Ok,
        Status::Ok,
        Status::Denied,
        Status::Error,
        Status::Failed,
    ];
    let kind = *ReceiptKind::ALL
        .iter()
        .filter(|k| KINDS.contains(&k.as_str()))
        .collect::<Vec<_>>()
        .choose(rng)
        .unwrap();
    let mut r = NewReceipt::new(*kind, *STATUSES.choose(rng).unwrap());
    if rng.gen_bool(0.8) {
        let (id, kind, family) = *PROFILES.choose(rng).unwrap();
        let material = format!("sk-{family}-{}", rng.gen_range(0..4));
        r = r
            .profile(id, kind, family)
            .identity(Some(key.credential_material(family, &material)));
    }
    if rng.gen_bool(0.5) {
        r = r.operator(ops.choose(rng).cloned());
    }
    if rng.gen_bool(0.4) {
        r = r.run(&format!("run-{}", rng.gen_range(0..8)));
    }
    if rng.gen_bool(0.3) {
        r.capability = Some("chat.completions".into());
    }
    if rng.gen_bool(0.2) {
        r = r.reason("outside working hours");
    }
    if rng.gen_bool(0.2) {
        r.policy_condition = Some("request.hour < 18".into());
    }
    if rng.gen_bool(0.1) {
        r.pool_id = Some(format!("pool-{}", rng.gen_range(0..3)));
    }
    r = r.detail("n", n as u64);
    if rng.gen_bool(0.5) {
        r = r
            .detail("method", "POST")
            .detail("path", "/v1/chat/completions")
            .detail("status_code", rng.gen_range(200..600))
            .detail("latency_ms", rng.gen_range(1..5000))
            .detail("model", "gpt-test ✓");
    }
    r
}

/// Builds a log of `n` varied receipts at `path` with the library (single
/// appends and batches), leaves it fully checkpointed into the main file,
/// and returns the receipts.
fn build_log(path: &Path, n: usize, rng: &mut StdRng) -> Vec<Receipt> {
    let key = AuditKey::from_bytes([42; 32]);
    let ops = operators(&key);
    let mut log = AuditLog::open_path(path).expect("open a new log");
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let size = rng.gen_range(1..=8).min(n - out.len());
        let mut batch: Vec<NewReceipt> = (0..size)
            .map(|j| random_receipt(rng, &key, &ops, out.len() + j))
            .collect();
        if size == 1 {
            out.push(log.append(batch.remove(0)).expect("append"));
        } else {
            out.extend(log.append_batch(batch).expect("append_batch"));
        }
    }
    drop(log);
    settle(path);
    out
}

/// Folds any WAL into the main file, so copying the main file copies the log.
fn settle(path: &Path) {
    let c = Connection::open(path).expect("open db");
    c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .expect("checkpoint wal");
    drop(c);
    assert!(
        !with_suffix(path, "-wal").exists(),
        "{}-wal still exists after the last connection closed",
        path.display()
    );
}

/// Replaces `dst` (and its -wal/-shm) with a copy of the database `src`.
fn copy_db(src: &Path, dst: &Path) {
    for s in ["-wal", "-shm"] {
        let _ = fs::remove_file(with_suffix(dst, s));
    }
    fs::copy(src, dst).expect("copy db");
    for s in ["-wal", "-shm"] {
        let from = with_suffix(src, s);
        if from.exists() {
            fs::copy(&from, with_suffix(dst, s)).expect("copy db side file");
        }
    }
}

fn read_row(conn: &Connection, seq: i64) -> rusqlite::Result<Receipt> {
    conn.query_row(
        &format!("SELECT {COLS} FROM receipts WHERE seq = ?1"),
        [seq],
        |r| {
            Ok(Receipt {
                seq: r.get(0)?,
                id: r.get(1)?,
                created_at: r.get(2)?,
                kind: r.get(3)?,
                run_id: r.get(4)?,
                capability: r.get(5)?,
                status: r.get(6)?,
                reason: r.get(7)?,
                policy_condition: r.get(8)?,
                auth_profile_id: r.get(9)?,
                auth_kind: r.get(10)?,
                auth_identity_hash: r.get(11)?,
                provider_family: r.get(12)?,
                pool_id: r.get(13)?,
                operator_subject: r.get(14)?,
                operator_issuer: r.get(15)?,
                operator_email: r.get(16)?,
                operator_groups: r.get(17)?,
                operator_identity_hash: r.get(18)?,
                details: r.get(19)?,
                prev_hash: r.get(20)?,
                hash: r.get(21)?,
            })
        },
    )
}

fn insert_row(conn: &Connection, r: &Receipt) -> rusqlite::Result<()> {
    conn.execute(
        &format!(
            "INSERT INTO receipts ({COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22)"
        ),
        params![
            r.seq,
            r.id,
            r.created_at,
            r.kind,
            r.run_id,
            r.capability,
            r.status,
            r.reason,
            r.policy_condition,
            r.auth_profile_id,
            r.auth_kind,
            r.auth_identity_hash,
            r.provider_family,
            r.pool_id,
            r.operator_subject,
            r.operator_issuer,
            r.operator_email,
            r.operator_groups,
            r.operator_identity_hash,
            r.details,
            r.prev_hash,
            r.hash,
        ],
    )?;
    Ok(())
}

/// A receipt with only the required fields set.
fn blank(kind: &str, status: &str, created_at: &str) -> Receipt {
    Receipt {
        seq: 0,
        id: random_id(),
        created_at: created_at.to_string(),
        kind: kind.to_string(),
        run_id: None,
        capability: None,
        status: status.to_string(),
        reason: None,
        policy_condition: None,
        auth_profile_id: None,
        auth_kind: None,
        auth_identity_hash: None,
        provider_family: None,
        pool_id: None,
        operator_subject: None,
        operator_issuer: None,
        operator_email: None,
        operator_groups: None,
        operator_identity_hash: None,
        details: "{}".to_string(),
        prev_hash: String::new(),
        hash: String::new(),
    }
}

/// Appends a well-formed receipt with plain SQL (to control `created_at`).
fn raw_append(conn: &Connection, mut r: Receipt) -> Receipt {
    let tail: Option<(i64, String)> = conn
        .query_row(
            "SELECT seq, hash FROM receipts ORDER BY seq DESC LIMIT 1",
            [],
            |x| Ok((x.get(0)?, x.get(1)?)),
        )
        .ok();
    let (seq, prev) = tail.unwrap_or((0, GENESIS.to_string()));
    r.seq = seq + 1;
    r.prev_hash = prev;
    r.hash = receipt_hash(&r);
    insert_row(conn, &r).expect("insert receipt");
    r
}

/// Every value of a row but `seq`, as stored.
fn row_values(conn: &Connection, seq: i64) -> rusqlite::Result<Vec<Value>> {
    conn.query_row(
        &format!("SELECT {COLS} FROM receipts WHERE seq = ?1"),
        [seq],
        |r| (1..22).map(|i| r.get::<_, Value>(i)).collect(),
    )
}

fn set_row_values(conn: &Connection, seq: i64, vals: &[Value]) -> rusqlite::Result<()> {
    let sets: Vec<String> = COLUMNS[1..]
        .iter()
        .enumerate()
        .map(|(i, c)| format!("{c} = ?{}", i + 1))
        .collect();
    let mut args: Vec<Value> = vals.to_vec();
    args.push(Value::Integer(seq));
    conn.execute(
        &format!("UPDATE receipts SET {} WHERE seq = ?22", sets.join(", ")),
        rusqlite::params_from_iter(args),
    )?;
    Ok(())
}

/// Moves every row with seq >= `from` by `by` (either direction) without
/// tripping the primary key on the way.
fn shift_seqs(conn: &Connection, from: i64, by: i64) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE receipts SET seq = -(seq + ?2) - 1000000 WHERE seq >= ?1",
        params![from, by],
    )?;
    conn.execute(
        "UPDATE receipts SET seq = -(seq + 1000000) WHERE seq <= -1000000",
        [],
    )?;
    Ok(())
}

// ---------------------------------------------------------------------------
// 1. Tampering.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tamper {
    /// Change one column of one row to a random value.
    Edit,
    /// Change one column and recompute that row's hash (a careful forger).
    Rewrite,
    /// Delete rows in the middle, leaving a gap.
    Delete,
    /// Delete rows in the middle and renumber the rest down.
    DeleteRenumber,
    /// Swap two rows' contents (every column but seq).
    Swap,
    /// Insert a forged row (hash recomputed, linked to its predecessor) in
    /// the middle, renumbering the rest up.
    InsertLinked,
    /// The same, with a prev_hash that does not link.
    InsertUnlinked,
    /// A forged row past the tail, leaving a gap, or not linking.
    InsertPastEnd,
    /// Delete the tail; a checkpoint of the old tail is kept.
    Truncate,
}

/// What verify must report for one mutation.
#[derive(Debug)]
struct Expect {
    desc: String,
    /// The first bad seq may be any of these (empty: any seq).
    seqs: Vec<i64>,
    whats: &'static [&'static str],
    /// Verify with the checkpoint of the untouched log's tail.
    checkpoint: bool,
}

fn random_text(rng: &mut StdRng) -> String {
    const ALPHABET: &[char] = &[
        'a', 'b', 'z', 'A', '0', '9', ' ', '-', ':', '{', '}', '"', '\'', '%', 'é', '✓', '\n',
    ];
    let len = rng.gen_range(1..24);
    (0..len).map(|_| *ALPHABET.choose(rng).unwrap()).collect()
}

/// A new value for a column: NULL, a number, empty or random text, the old
/// text with one character changed, or another row's value.
fn random_value(rng: &mut StdRng, old: &Value, other: &Value) -> Value {
    match rng.gen_range(0..8) {
        0 => Value::Null,
        1 => Value::Integer(rng.gen_range(-3..1_000_000)),
        2 => Value::Real(rng.gen_range(-10.0..10.0)),
        3 => Value::Text(String::new()),
        4 => Value::Text(random_text(rng)),
        5 => other.clone(),
        _ => match old {
            Value::Text(s) if !s.is_empty() => {
                let mut chars: Vec<char> = s.chars().collect();
                let i = rng.gen_range(0..chars.len());
                chars[i] = if chars[i] == 'x' { 'y' } else { 'x' };
                Value::Text(chars.into_iter().collect())
            }
            _ => Value::Text(random_text(rng)),
        },
    }
}

fn quoted(conn: &Connection, col: &str, seq: i64) -> rusqlite::Result<String> {
    conn.query_row(
        &format!("SELECT quote({col}) FROM receipts WHERE seq = ?1"),
        [seq],
        |r| r.get(0),
    )
}

/// Sets `col` of row `seq` to a random new value; None when the value was
/// refused by a constraint or did not change anything.
fn edit_column(conn: &Connection, rng: &mut StdRng, n: i64, seq: i64, col: &str) -> Option<String> {
    let before = quoted(conn, col, seq).ok()?;
    let old: Value = conn
        .query_row(
            &format!("SELECT {col} FROM receipts WHERE seq = ?1"),
            [seq],
            |r| r.get(0),
        )
        .ok()?;
    let other: Value = conn
        .query_row(
            &format!("SELECT {col} FROM receipts WHERE seq = ?1"),
            [rng.gen_range(1..=n)],
            |r| r.get(0),
        )
        .ok()?;
    let value = random_value(rng, &old, &other);
    conn.execute(
        &format!("UPDATE receipts SET {col} = ?1 WHERE seq = ?2"),
        params![value, seq],
    )
    .ok()?;
    let after = quoted(conn, col, seq).ok()?;
    (after != before).then(|| format!("{before} -> {after}"))
}

/// Applies one random mutation of kind `t`; None to retry with new choices.
fn try_tamper(conn: &Connection, rng: &mut StdRng, n: i64, t: Tamper) -> Option<Expect> {
    let expect = |desc: String, seqs: Vec<i64>, whats: &'static [&'static str]| {
        Some(Expect {
            desc,
            seqs,
            whats,
            checkpoint: false,
        })
    };
    match t {
        Tamper::Edit => {
            let s = rng.gen_range(1..=n);
            let col = *COLUMNS.choose(rng).unwrap();
            if col == "seq" {
                let id: String = conn
                    .query_row("SELECT id FROM receipts WHERE seq = ?1", [s], |r| r.get(0))
                    .ok()?;
                let to: i64 = if rng.gen_bool(0.7) {
                    n + rng.gen_range(1..1000)
                } else {
                    -rng.gen_range(0..1000)
                };
                conn.execute("UPDATE receipts SET seq = ?1 WHERE seq = ?2", [to, s])
                    .ok()?;
                let now: i64 = conn
                    .query_row("SELECT seq FROM receipts WHERE id = ?1", [&id], |r| {
                        r.get(0)
                    })
                    .ok()?;
                assert_eq!(now, to);
                let desc = format!("row {s}: seq -> {to}");
                if to > n {
                    expect(desc, vec![s], &["missing"])
                } else {
                    // Moved before seq 1: any report will do here; the
                    // precise report is checked in verify_edge_cases.
                    expect(desc, vec![], &[])
                }
            } else {
                let change = edit_column(conn, rng, n, s, col)?;
                expect(format!("row {s}: {col}: {change}"), vec![s], &["modified"])
            }
        }
        Tamper::Rewrite => {
            // Any column but seq and hash; the hash is then recomputed.
            let col = COLUMNS[rng.gen_range(1..21)];
            let s = if col == "prev_hash" {
                rng.gen_range(2..=n)
            } else {
                rng.gen_range(1..=n)
            };
            let change = edit_column(conn, rng, n, s, col)?;
            let r = read_row(conn, s).ok()?;
            conn.execute(
                "UPDATE receipts SET hash = ?1 WHERE seq = ?2",
                params![receipt_hash(&r), s],
            )
            .ok()?;
            let desc = format!("row {s}: {col}: {change}, hash recomputed");
            if col == "prev_hash" {
                // The link s-1 -> s breaks: either side may be named.
                expect(desc, vec![s - 1, s], &["modified", "inserted"])
            } else if s < n {
                expect(desc, vec![s], &["modified"])
            } else {
                Some(Expect {
                    desc: desc + " (tail: checkpoint kept)",
                    seqs: vec![s],
                    whats: &["modified"],
                    checkpoint: true,
                })
            }
        }
        Tamper::Delete | Tamper::DeleteRenumber => {
            let k = rng.gen_range(1..=3);
            let s = rng.gen_range(1..=n - k);
            conn.execute(
                "DELETE FROM receipts WHERE seq >= ?1 AND seq < ?2",
                [s, s + k],
            )
            .ok()?;
            if t == Tamper::Delete {
                expect(
                    format!("rows {s}..{} deleted", s + k - 1),
                    vec![s],
                    &["missing"],
                )
            } else {
                shift_seqs(conn, s + k, -k).ok()?;
                // "missing" is what happened; "reordered" is tolerated here
                // and reported by verify_edge_cases.
                expect(
                    format!("rows {s}..{} deleted, later rows renumbered", s + k - 1),
                    vec![s],
                    &["missing", "reordered"],
                )
            }
        }
        Tamper::Swap => {
            let a = rng.gen_range(1..n);
            let b = if rng.gen_bool(0.5) {
                rng.gen_range(a + 1..=(a + 5).min(n))
            } else {
                rng.gen_range(a + 1..=n)
            };
            let va = row_values(conn, a).ok()?;
            let vb = row_values(conn, b).ok()?;
            // ids are unique: park a's id first.
            conn.execute("UPDATE receipts SET id = id || '~' WHERE seq = ?1", [a])
                .ok()?;
            set_row_values(conn, b, &va).ok()?;
            set_row_values(conn, a, &vb).ok()?;
            // A receipt moved far away may only be recognized as modified.
            expect(
                format!("rows {a} and {b} swapped"),
                vec![a],
                &["reordered", "modified"],
            )
        }
        Tamper::InsertLinked | Tamper::InsertUnlinked => {
            let linked = t == Tamper::InsertLinked;
            let at = if linked {
                rng.gen_range(1..=n)
            } else {
                rng.gen_range(2..=n)
            };
            let mut forged = read_row(conn, rng.gen_range(1..=n)).ok()?;
            forged.id = random_id();
            forged.seq = at;
            forged.kind = KINDS.choose(rng).unwrap().to_string();
            forged.details = r#"{"forged":true}"#.to_string();
            let neighbour = read_row(conn, at).ok()?;
            forged.created_at = neighbour.created_at;
            forged.prev_hash = if !linked {
                hex_encode(&rand::random::<[u8; 32]>())
            } else if at == 1 {
                GENESIS.to_string()
            } else {
                read_row(conn, at - 1).ok()?.hash
            };
            forged.hash = receipt_hash(&forged);
            shift_seqs(conn, at, 1).ok()?;
            insert_row(conn, &forged).ok()?;
            if linked {
                expect(
                    format!("forged row inserted at {at}, linked, later rows renumbered"),
                    vec![at],
                    &["inserted"],
                )
            } else {
                expect(
                    format!("forged row inserted at {at}, not linked, later rows renumbered"),
                    vec![at - 1, at],
                    &["modified", "inserted"],
                )
            }
        }
        Tamper::InsertPastEnd => {
            let tail = read_row(conn, n).ok()?;
            let mut forged = tail.clone();
            forged.id = random_id();
            forged.details = r#"{"forged":true}"#.to_string();
            let gap = rng.gen_bool(0.5);
            if gap {
                forged.seq = n + rng.gen_range(2..20);
                forged.prev_hash = tail.hash;
            } else {
                forged.seq = n + 1;
                forged.prev_hash = hex_encode(&rand::random::<[u8; 32]>());
            }
            forged.hash = receipt_hash(&forged);
            insert_row(conn, &forged).ok()?;
            if gap {
                expect(
                    format!("forged row appended at {} after a gap", forged.seq),
                    vec![n + 1],
                    &["missing"],
                )
            } else {
                expect(
                    format!(
                        "forged row appended at {} with a prev_hash that does not link",
                        n + 1
                    ),
                    vec![n, n + 1],
                    &["modified", "inserted"],
                )
            }
        }
        Tamper::Truncate => {
            let keep = n - rng.gen_range(1..=40.min(n));
            conn.execute("DELETE FROM receipts WHERE seq > ?1", [keep])
                .ok()?;
            Some(Expect {
                desc: format!("truncated to {keep} receipts (checkpoint of {n} kept)"),
                seqs: vec![keep + 1],
                whats: &["truncated"],
                checkpoint: true,
            })
        }
    }
}

fn tamper(path: &Path, rng: &mut StdRng, n: i64, t: Tamper) -> Expect {
    let mut conn = Connection::open(path).expect("open copy");
    for _ in 0..200 {
        let tx = conn.transaction().expect("begin");
        if let Some(e) = try_tamper(&tx, rng, n, t) {
            tx.commit().expect("commit mutation");
            return e;
        }
        // Dropped: rolled back; try other choices.
    }
    panic!("could not apply a {t:?} mutation in 200 tries");
}

/// Whether a report is what `e` allows; Err says why not.
fn judge(e: &Expect, report: &craik::audit::VerifyReport) -> Result<(), String> {
    let Some(d) = &report.damage else {
        return Err(format!(
            "NOT DETECTED (ok={}, verified={})",
            report.ok, report.verified
        ));
    };
    if report.ok {
        return Err(format!("damage {d:?} but ok=true"));
    }
    if !e.seqs.is_empty() && !e.seqs.contains(&d.seq) {
        return Err(format!(
            "named seq {} (expected one of {:?}): {d:?}",
            d.seq, e.seqs
        ));
    }
    if !e.whats.is_empty() && !e.whats.contains(&d.what.as_str()) {
        return Err(format!(
            "said {:?} (expected one of {:?}): {d:?}",
            d.what, e.whats
        ));
    }
    Ok(())
}

/// A home holding `base` as its audit.db and a checkpoint of its tail.
fn home_with_log(base: &Path) -> (Env, PathBuf, Checkpoint) {
    let env = home_with_empty_log();
    copy_db(base, &env.file("audit.db"));
    let cp_file = env.dir.path().join("tail.checkpoint.json");
    env.run(&["receipts", "checkpoint", "--out", cp_file.to_str().unwrap()])
        .ok();
    let trusted = fs::read_to_string(env.file("audit-signing.pub")).expect("public key written");
    let cp = checkpoint::load(&cp_file, Some(trusted.trim())).expect("checkpoint loads");
    (env, cp_file, cp)
}

fn cli_verify(env: &Env, checkpoint: Option<&Path>, json: bool) -> Run {
    let mut args = vec!["receipts".to_string(), "verify".to_string()];
    if let Some(cp) = checkpoint {
        args.push("--checkpoint".into());
        args.push(cp.display().to_string());
    }
    if json {
        args.push("--json".into());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    env.run(&args)
}

#[test]
fn tampering_is_always_detected() {
    let seed = seed("tampering_is_always_detected");
    let mut rng = StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base.db");
    let built = build_log(&base, 300, &mut rng);
    let n = built.len() as i64;
    assert!(
        built.iter().any(|r| r.operator_subject.is_some())
            && built.iter().any(|r| r.run_id.is_some()),
        "the log should have varied fields"
    );

    // The untouched log verifies, by the library and the CLI.
    let clean = AuditLog::open_path(&base).unwrap().verify(&[]).unwrap();
    assert!(
        clean.ok && clean.verified == n && clean.tail_seq == n,
        "{clean:?}"
    );
    settle(&base);
    let (env, cp_file, cp) = home_with_log(&base);
    assert_eq!(cp.seq, n);
    let r = cli_verify(&env, Some(&cp_file), false);
    r.ok();
    assert!(
        r.stdout.contains(&format!("verified {n} receipts")),
        "{}",
        r.stdout
    );

    use Tamper::*;
    let plan = [
        Edit,
        Edit,
        Edit,
        Rewrite,
        Rewrite,
        Delete,
        DeleteRenumber,
        Swap,
        InsertLinked,
        InsertUnlinked,
        InsertPastEnd,
        Truncate,
    ];
    let total = plan.len() * 22;
    let scratch = dir.path().join("scratch.db");
    let mut failures: Vec<String> = Vec::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut cli_checked = 0;
    let started = Instant::now();
    for i in 0..total {
        let t = plan[i % plan.len()];
        copy_db(&base, &scratch);
        let e = tamper(&scratch, &mut rng, n, t);
        let cps = if e.checkpoint {
            vec![cp.clone()]
        } else {
            vec![]
        };
        let report = match AuditLog::open_path(&scratch).and_then(|log| log.verify(&cps)) {
            Ok(r) => r,
            Err(err) => {
                failures.push(format!("#{i} {t:?} {}: verify errored: {err}", e.desc));
                continue;
            }
        };
        if let Some(d) = &report.damage {
            *seen.entry(d.what.clone()).or_default() += 1;
        }
        if let Err(why) = judge(&e, &report) {
            failures.push(format!("#{i} {t:?} {}: {why}", e.desc));
            continue;
        }
        // A sample through the real binary: exit 1, first bad seq and what.
        if i % 11 == 0 {
            cli_checked += 1;
            copy_db(&scratch, &env.file("audit.db"));
            let d = report.damage.as_ref().unwrap();
            let cp_arg = e.checkpoint.then_some(cp_file.as_path());
            let json = i % 22 == 0;
            let run = cli_verify(&env, cp_arg, json);
            if run.code != 1 {
                failures.push(format!(
                    "#{i} {t:?} {}: CLI exit {} (want 1)\n{}{}",
                    e.desc, run.code, run.stdout, run.stderr
                ));
            } else if json {
                let v = run.json();
                if v["ok"] != false || v["damage"]["seq"] != d.seq || v["damage"]["what"] != *d.what
                {
                    failures.push(format!("#{i} {t:?} {}: CLI JSON {v}", e.desc));
                }
            } else {
                let want = format!("DAMAGED at seq {}: {}: ", d.seq, d.what);
                if !run.stdout.contains(&want) {
                    failures.push(format!(
                        "#{i} {t:?} {}: CLI output lacks {want:?}:\n{}",
                        e.desc, run.stdout
                    ));
                }
            }
        }
    }
    eprintln!(
        "{total} mutations ({cli_checked} through the CLI) in {:?}; damage reported: {seen:?}",
        started.elapsed()
    );
    assert!(total >= 200);
    assert!(
        failures.is_empty(),
        "seed {seed}: {} of {total} mutations not reported as expected:\n{}",
        failures.len(),
        failures
            .iter()
            .take(25)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// One hand-made mutation of a 50-receipt log, checked through the CLI.
fn check_damage(
    base: &Path,
    env: &Env,
    cp_file: &Path,
    name: &str,
    with_checkpoint: bool,
    mutate: impl FnOnce(&Connection),
    want: &str,
) -> Result<(), String> {
    let db = env.file("audit.db");
    copy_db(base, &db);
    {
        let conn = Connection::open(&db).unwrap();
        mutate(&conn);
    }
    let run = cli_verify(env, with_checkpoint.then_some(cp_file), false);
    if run.code == 1 && run.stdout.contains(want) {
        Ok(())
    } else {
        Err(format!(
            "{name}: want exit 1 and {want:?}; got exit {}\nstdout: {}stderr: {}",
            run.code, run.stdout, run.stderr
        ))
    }
}

/// The clear cases are named exactly: the first bad seq and what happened.
#[test]
fn verify_names_the_first_bad_seq_and_what_happened() {
    let mut rng = StdRng::seed_from_u64(7);
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base.db");
    build_log(&base, 50, &mut rng);
    let (env, cp_file, _) = home_with_log(&base);
    let mut failures = Vec::new();
    let mut case = |name: &str, cp: bool, m: &dyn Fn(&Connection), want: &str| {
        if let Err(e) = check_damage(&base, &env, &cp_file, name, cp, m, want) {
            failures.push(e);
        }
    };
    case(
        "edit a column",
        false,
        &|c| {
            c.execute("UPDATE receipts SET status = 'approved' WHERE seq = 20", [])
                .unwrap();
        },
        "DAMAGED at seq 20: modified:",
    );
    case(
        "a copy of the last row appended after it",
        false,
        &|c| {
            let mut r = read_row(c, 50).unwrap();
            r.seq = 51;
            insert_row(c, &r).unwrap();
        },
        "DAMAGED at seq 51: inserted: receipt 51 is a copy of receipt 50",
    );
    case(
        "rewrite a row and recompute its hash",
        false,
        &|c| {
            let mut r = read_row(c, 20).unwrap();
            r.kind = "approval".into();
            r.hash = receipt_hash(&r);
            c.execute("DELETE FROM receipts WHERE seq = 20", [])
                .unwrap();
            insert_row(c, &r).unwrap();
        },
        "DAMAGED at seq 20: modified:",
    );
    case(
        "delete a middle row",
        false,
        &|c| {
            c.execute("DELETE FROM receipts WHERE seq = 20", [])
                .unwrap();
        },
        "DAMAGED at seq 20: missing:",
    );
    case(
        "insert a forged, linked row and renumber",
        false,
        &|c| {
            let mut f = read_row(c, 20).unwrap();
            f.id = random_id();
            f.kind = "grant".into();
            f.prev_hash = read_row(c, 19).unwrap().hash;
            f.hash = receipt_hash(&f);
            shift_seqs(c, 20, 1).unwrap();
            insert_row(c, &f).unwrap();
        },
        "DAMAGED at seq 20: inserted:",
    );
    case(
        "swap two rows",
        false,
        &|c| {
            let a = row_values(c, 20).unwrap();
            let b = row_values(c, 25).unwrap();
            c.execute("UPDATE receipts SET id = 'parked' WHERE seq = 20", [])
                .unwrap();
            set_row_values(c, 25, &a).unwrap();
            set_row_values(c, 20, &b).unwrap();
        },
        "DAMAGED at seq 20: reordered:",
    );
    case(
        "truncate the tail, checkpoint kept",
        true,
        &|c| {
            c.execute("DELETE FROM receipts WHERE seq > 45", [])
                .unwrap();
        },
        "DAMAGED at seq 46: truncated:",
    );
    case(
        "rewrite the tail and recompute its hash, checkpoint kept",
        true,
        &|c| {
            let mut r = read_row(c, 50).unwrap();
            r.status = "ok-ish".into();
            r.hash = receipt_hash(&r);
            c.execute("DELETE FROM receipts WHERE seq = 50", [])
                .unwrap();
            insert_row(c, &r).unwrap();
        },
        "DAMAGED at seq 50: modified:",
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));

    // Without the checkpoint a truncated tail cannot be seen; with a
    // checkpoint that is still held, the log is clean.
    copy_db(&base, &env.file("audit.db"));
    cli_verify(&env, Some(&cp_file), false).ok();
}

/// Damage at the edges: the first receipt, seqs out of range, rows that
/// are not even text, and deletions hidden by renumbering.
#[test]
fn verify_edge_cases() {
    let mut rng = StdRng::seed_from_u64(11);
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base.db");
    build_log(&base, 50, &mut rng);
    let (env, cp_file, _) = home_with_log(&base);
    let mut failures = Vec::new();
    let mut case = |name: &str, m: &dyn Fn(&Connection), want: &str| {
        if let Err(e) = check_damage(&base, &env, &cp_file, name, false, m, want) {
            failures.push(e);
        }
    };
    case(
        "the first receipt's prev_hash changed, hash recomputed (seq 0 does not exist)",
        &|c| {
            let mut r = read_row(c, 1).unwrap();
            r.prev_hash = "1".repeat(64);
            r.hash = receipt_hash(&r);
            c.execute("DELETE FROM receipts WHERE seq = 1", []).unwrap();
            insert_row(c, &r).unwrap();
        },
        "DAMAGED at seq 1: modified:",
    );
    case(
        "a middle row deleted and the rest renumbered (a deletion, not a reordering)",
        &|c| {
            c.execute("DELETE FROM receipts WHERE seq = 20", [])
                .unwrap();
            shift_seqs(c, 21, -1).unwrap();
        },
        "DAMAGED at seq 20: missing:",
    );
    case(
        "a blob written into a text column",
        &|c| {
            c.execute("UPDATE receipts SET kind = X'00ff10' WHERE seq = 30", [])
                .unwrap();
        },
        "DAMAGED at seq 30: modified:",
    );
    case(
        "invalid UTF-8 written into a text column",
        &|c| {
            c.execute(
                "UPDATE receipts SET reason = CAST(X'c328ff' AS TEXT) WHERE seq = 31",
                [],
            )
            .unwrap();
        },
        "DAMAGED at seq 31: modified:",
    );
    case(
        "receipt 30 renumbered to seq 0 (receipt 1 is not missing)",
        &|c| {
            c.execute("UPDATE receipts SET seq = 0 WHERE seq = 30", [])
                .unwrap();
        },
        "DAMAGED at seq 0: ",
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

// ---------------------------------------------------------------------------
// 2 and 3. Concurrent writers and crashes, in child processes: the test
// binary re-executes itself to run `append_worker`.

const WORKER_DB: &str = "CRAIK_TEST_APPEND_DB";
const WORKER_N: &str = "CRAIK_TEST_APPEND_N";
const WORKER_NAME: &str = "CRAIK_TEST_APPEND_WORKER";
const WORKER_BATCH: &str = "CRAIK_TEST_APPEND_BATCH";

/// Not a test on its own: with CRAIK_TEST_APPEND_DB set it appends
/// CRAIK_TEST_APPEND_N receipts (0: until killed) in batches of 1 to
/// CRAIK_TEST_APPEND_BATCH, printing `committed <seq>` after each durable
/// append. Without the variable it returns at once.
#[test]
fn append_worker() {
    let Ok(db) = std::env::var(WORKER_DB) else {
        return;
    };
    let n: usize = std::env::var(WORKER_N)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let name = std::env::var(WORKER_NAME).unwrap_or_else(|_| "w".into());
    let batch_max: usize = std::env::var(WORKER_BATCH)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
        .max(1);
    fn fail(name: &str, what: &str, e: &dyn std::fmt::Display) -> ! {
        eprintln!("append-worker {name}: {what} failed: {e}");
        std::process::exit(3)
    }
    let mut log = AuditLog::open_path(Path::new(&db)).unwrap_or_else(|e| fail(&name, "open", &e));
    let mut out = std::io::stdout();
    let _ = writeln!(out, "append-worker ready");
    let _ = out.flush();
    let mut rng = StdRng::from_entropy();
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut i, mut batch_no) = (0usize, 0usize);
    while (n == 0 || i < n) && Instant::now() < deadline {
        let mut size = rng.gen_range(1..=batch_max);
        if n > 0 {
            size = size.min(n - i);
        }
        let mut batch: Vec<NewReceipt> = (0..size)
            .map(|k| {
                NewReceipt::new(ReceiptKind::CallFinished, Status::Ok)
                    .profile("openai:ci", "api-key", "openai")
                    .run(&name)
                    .detail("worker", name.as_str())
                    .detail("i", (i + k) as u64)
                    .detail("batch", batch_no as u64)
                    .detail("size", size as u64)
            })
            .collect();
        let res = if size == 1 {
            log.append(batch.remove(0)).map(|r| vec![r])
        } else {
            log.append_batch(batch)
        };
        let rs = res.unwrap_or_else(|e| fail(&name, "append", &e));
        let _ = writeln!(out, "committed {}", rs.last().unwrap().seq);
        let _ = out.flush();
        i += size;
        batch_no += 1;
    }
}

fn spawn_worker(db: &Path, n: usize, name: &str, batch_max: usize) -> Child {
    Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "receipts::append_worker",
            "--exact",
            "--nocapture",
            "--include-ignored",
            "--test-threads=1",
        ])
        .env(WORKER_DB, db)
        .env(WORKER_N, n.to_string())
        .env(WORKER_NAME, name)
        .env(WORKER_BATCH, batch_max.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn worker")
}

fn committed(stdout: &str) -> Vec<i64> {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix("committed "))
        .map(|s| s.trim().parse().expect("seq"))
        .collect()
}

/// count, min and max seq, and the integrity check, by plain SQL.
fn shape(db: &Path) -> (i64, i64, i64, String) {
    let c = Connection::open(db).unwrap();
    let (count, lo, hi) = c
        .query_row(
            "SELECT count(*), coalesce(min(seq), 0), coalesce(max(seq), 0) FROM receipts",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    let integrity: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    (count, lo, hi, integrity)
}

/// Many openers of a log that does not exist yet: every one gets a usable
/// log. Switching the new file to WAL once answered some of them "database
/// is locked" at once (SQLite skips the busy handler where it would
/// deadlock): 39 of this test's 1,600 opens failed before the retry in
/// `configure`.
#[test]
fn a_new_log_opened_by_many_at_once() {
    let mut errors = Vec::new();
    for _ in 0..200 {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("audit.db");
        let start = std::sync::Arc::new(std::sync::Barrier::new(8));
        let openers: Vec<_> = (0..8)
            .map(|_| {
                let (db, start) = (db.clone(), start.clone());
                std::thread::spawn(move || {
                    start.wait();
                    AuditLog::open_path(&db)
                        .map(drop)
                        .map_err(|e| e.to_string())
                })
            })
            .collect();
        errors.extend(openers.into_iter().filter_map(|t| t.join().unwrap().err()));
    }
    assert!(
        errors.is_empty(),
        "{} of 1,600 opens failed: {:?}",
        errors.len(),
        errors.first()
    );
}

#[test]
fn concurrent_writers_never_fork_the_chain() {
    const WORKERS: usize = 8;
    const EACH: usize = 500;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("concurrent.db");
    // Created (and migrated) by the workers themselves, racing.
    let started = Instant::now();
    let children: Vec<(String, Child)> = (0..WORKERS)
        .map(|w| {
            let name = format!("w{w}");
            let c = spawn_worker(&db, EACH, &name, 1);
            (name, c)
        })
        .collect();
    let mut acked: HashMap<String, Vec<i64>> = HashMap::new();
    for (name, c) in children {
        let out = c.wait_with_output().expect("wait worker");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && !stderr.contains("append-worker"),
            "worker {name} failed: {}\n{stderr}\n{}",
            out.status,
            stdout.lines().rev().take(5).collect::<Vec<_>>().join("\n")
        );
        acked.insert(name, committed(&stdout));
    }
    let elapsed = started.elapsed();

    let (count, lo, hi, integrity) = shape(&db);
    assert_eq!(integrity, "ok");
    assert_eq!(
        (count, lo, hi),
        (4000, 1, 4000),
        "rows must be exactly seq 1..4000"
    );
    let log = AuditLog::open_path(&db).unwrap();
    let report = log.verify(&[]).unwrap();
    assert!(
        report.ok && report.verified == 4000 && report.tail_seq == 4000,
        "{report:?}"
    );

    // Every caller got its receipts back, each seq went to one caller, and
    // each worker's receipts are in the log in the order it wrote them.
    let mut all: Vec<i64> = acked.values().flatten().copied().collect();
    all.sort_unstable();
    assert_eq!(all, (1..=4000).collect::<Vec<_>>(), "acknowledged seqs");
    for (name, seqs) in &acked {
        assert_eq!(seqs.len(), EACH, "{name} acknowledged {}", seqs.len());
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{name} out of order");
        let rows = log
            .list(&Filter {
                run: Some(name.clone()),
                ascending: true,
                ..Default::default()
            })
            .unwrap();
        let is: Vec<u64> = rows
            .iter()
            .map(|r| {
                let d: serde_json::Value = serde_json::from_str(&r.details).unwrap();
                d["i"].as_u64().unwrap()
            })
            .collect();
        assert_eq!(
            is,
            (0..EACH as u64).collect::<Vec<_>>(),
            "{name}'s receipts"
        );
        assert_eq!(
            rows.iter().map(|r| r.seq).collect::<Vec<_>>(),
            *seqs,
            "{name}: the log and the acknowledgements disagree"
        );
    }
    eprintln!("8 x 500 concurrent appends in {elapsed:?}");
}

#[test]
fn killed_writers_leave_a_clean_log() {
    let seed = seed("killed_writers_leave_a_clean_log");
    let mut rng = StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("crash.db");
    let mut last_tail = 0i64;
    let mut progressed = 0;
    let mut history = Vec::new();
    for round in 0..20 {
        let name = format!("crash{round}");
        let mut child = spawn_worker(&db, 0, &name, 16);
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel::<String>();
        let reader = std::thread::spawn(move || {
            let mut lines = Vec::new();
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line.clone());
                lines.push(line);
            }
            lines
        });
        // Most kills land while appending; every fourth may land during
        // start-up, opening or migrating.
        if round % 4 != 0 {
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                match rx.recv_timeout(left) {
                    // libtest may print its "test ... " prefix on the same line.
                    Ok(l) if l.ends_with("append-worker ready") => break,
                    Ok(_) => {}
                    Err(e) => {
                        let _ = child.kill();
                        let out = child.wait_with_output().unwrap();
                        panic!(
                            "seed {seed}: worker never became ready ({e}): {}",
                            String::from_utf8_lossy(&out.stderr)
                        );
                    }
                }
            }
        }
        let delay = Duration::from_millis(rng.gen_range(3..=200));
        std::thread::sleep(delay);
        child.kill().expect("SIGKILL");
        let status = child.wait().unwrap();
        let lines = reader.join().unwrap();
        let mut stderr = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
        }
        assert!(
            !stderr.contains("append-worker"),
            "seed {seed}: round {round}: the writer saw an error: {stderr}"
        );
        let acked = committed(&lines.join("\n")).into_iter().max().unwrap_or(0);

        // The log opens, verifies clean, holds every acknowledged receipt,
        // and holds only whole batches.
        let log = AuditLog::open_path(&db)
            .unwrap_or_else(|e| panic!("seed {seed}: round {round}: open after kill: {e}"));
        let report = log.verify(&[]).unwrap();
        assert!(
            report.ok && report.verified == report.tail_seq,
            "seed {seed}: round {round} (killed after {delay:?}): {report:?}"
        );
        let tail = report.tail_seq;
        assert!(
            tail >= acked,
            "seed {seed}: round {round}: receipt {acked} was acknowledged but the log ends at {tail}"
        );
        assert!(tail >= last_tail, "seed {seed}: the log shrank");
        let rows = log
            .list(&Filter {
                run: Some(name.clone()),
                ascending: true,
                ..Default::default()
            })
            .unwrap();
        let mut batches: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
        for r in &rows {
            let d: serde_json::Value = serde_json::from_str(&r.details).unwrap();
            let e = batches
                .entry(d["batch"].as_u64().unwrap())
                .or_insert((0, d["size"].as_u64().unwrap()));
            e.0 += 1;
        }
        for (b, (have, size)) in &batches {
            assert_eq!(
                have, size,
                "seed {seed}: round {round}: batch {b} is partial ({have} of {size})"
            );
        }
        drop(log);
        let (count, lo, hi, integrity) = shape(&db);
        assert_eq!(integrity, "ok", "seed {seed}: round {round}");
        assert!(
            count == hi && (count == 0 || lo == 1),
            "seed {seed}: round {round}: seqs not contiguous: {count} rows, {lo}..{hi}"
        );
        if tail > last_tail {
            progressed += 1;
        }
        history.push(format!(
            "{round}: {delay:?} -> {} new, {status}",
            tail - last_tail
        ));
        last_tail = tail;
    }
    eprintln!("crash rounds: {}", history.join("; "));
    assert!(
        progressed >= 10,
        "seed {seed}: the writer appended in only {progressed} of 20 rounds; kills did not land mid-write: {history:?}"
    );
}

// ---------------------------------------------------------------------------
// 4. Fail closed.

/// Undo steps, run in reverse order when asked or when dropped (so a
/// failing test does not leave mounts or immutable files behind).
#[derive(Default)]
struct Cleanup(Vec<Box<dyn FnOnce()>>);

impl Cleanup {
    fn push(&mut self, f: impl FnOnce() + 'static) {
        self.0.push(Box::new(f));
    }

    fn run(&mut self) {
        while let Some(f) = self.0.pop() {
            f();
        }
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        self.run();
    }
}

fn sh(program: &str, args: &[&str]) -> Result<(), String> {
    match Command::new(program).args(args).output() {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(format!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Err(format!("{program}: {e}")),
    }
}

fn writable(p: &Path) -> bool {
    fs::OpenOptions::new().append(true).open(p).is_ok()
}

fn secret_count(env: &Env) -> i64 {
    let r = env.run(&["auth", "storage", "status", "--json"]);
    r.ok();
    r.json()["secrets"].as_i64().expect("secrets count")
}

fn verified_count(env: &Env) -> i64 {
    let r = env.run(&["receipts", "verify", "--json"]);
    r.ok();
    let v = r.json();
    assert_eq!(v["ok"], true, "{v}");
    v["verified"].as_i64().unwrap()
}

/// Adds a profile, makes audit.db unwritable with `apply` (Err: the
/// mechanism is not available here), checks that adding and removing a
/// profile fail with exit 5 and change nothing, then undoes it and checks
/// that the same action now works.
fn check_fail_closed(
    name: &str,
    env: &Env,
    apply: impl FnOnce(&Env, &mut Cleanup) -> Result<(), String>,
) -> Result<(), String> {
    eprintln!("fail-closed variant: {name}");
    let add_x = ["auth", "add", "openai:x", "--kind=keyring-ref", "--stdin"];
    let add_y = ["auth", "add", "openai:y", "--kind=keyring-ref", "--stdin"];
    env.run_stdin(&add_x, Some("sk-fail-closed-x\n")).ok();
    let profiles = fs::read(env.file("auth-profiles.json")).unwrap();
    let secrets = secret_count(env);
    let receipts = verified_count(env);
    assert_eq!(receipts, 1);

    let mut undo = Cleanup::default();
    apply(env, &mut undo)?;

    let add = env.run_stdin(&add_y, Some("sk-fail-closed-y\n"));
    add.code(5).error_with_hint("audit log unavailable");
    assert!(
        add.stderr.contains("writable") || add.stderr.contains("disk"),
        "{name}: the hint should say what to check: {}",
        add.stderr
    );
    env.run(&["auth", "remove", "openai:x"])
        .code(5)
        .error_with_hint("audit log unavailable");
    assert_eq!(
        fs::read(env.file("auth-profiles.json")).unwrap(),
        profiles,
        "{name}: auth-profiles.json changed"
    );
    // Reading needs no receipt: an unwritable log is still read, unless
    // it is no file at all.
    if name == "directory" {
        env.run(&["receipts", "verify"])
            .code(1)
            .error_with_hint("is not a regular file");
    } else {
        assert_eq!(
            verified_count(env),
            receipts,
            "{name}: verify while unwritable"
        );
        check_reads(env, receipts);
    }

    undo.run();
    assert_eq!(
        secret_count(env),
        secrets,
        "{name}: the secret store changed"
    );
    assert_eq!(verified_count(env), receipts, "{name}: the log changed");
    assert_eq!(
        fs::read(env.file("auth-profiles.json")).unwrap(),
        profiles,
        "{name}: auth-profiles.json changed"
    );
    // It was the unwritable log that refused the action.
    env.run_stdin(&add_y, Some("sk-fail-closed-y\n")).ok();
    assert_eq!(verified_count(env), receipts + 1, "{name}");
    assert_eq!(secret_count(env), secrets + 1, "{name}");
    Ok(())
}

/// A home with an empty audit log, made through the library (reading
/// commands make none).
fn home_with_empty_log() -> Env {
    let env = Env::new();
    fs::create_dir_all(&env.home).unwrap();
    fs::set_permissions(&env.home, fs::Permissions::from_mode(0o700)).unwrap();
    AuditLog::open_path(&env.file("audit.db")).unwrap();
    env
}

/// A home with `n` api-key profiles `openai:p0`… added: `n` receipts.
fn home_with_profiles(n: usize) -> Env {
    let env = Env::new();
    for i in 0..n {
        env.run(&["auth", "add", &format!("openai:p{i}"), "--kind=api-key"])
            .ok();
    }
    env
}

/// The commands that only read the log work on a log holding `receipts`
/// receipts.
fn check_reads(env: &Env, receipts: i64) {
    let listed = env.run(&["receipts", "list", "--json"]);
    listed.ok();
    assert_eq!(
        listed.json()["receipts"].as_array().unwrap().len() as i64,
        receipts
    );
    let shown = env.run(&["receipts", "show", "1", "--json"]);
    shown.ok();
    assert_eq!(shown.json()["seq"], 1);
    let stats = env.run(&["receipts", "stats", "--json"]);
    stats.ok();
    assert_eq!(stats.json()["total"].as_i64(), Some(receipts));
    let export = env.run(&["receipts", "export", "--format", "jsonl"]);
    export.ok();
    assert_eq!(export.stdout.lines().count() as i64, receipts);
    let hash = env.run_stdin(&["receipts", "hash", "--family", "openai"], Some("sk-x"));
    hash.ok();
    assert!(hash.stdout.starts_with("hmac-sha256:"), "{}", hash.stdout);
}

/// A copy of a home on a read-only mount (an auditor's evidence copy):
/// every reading command works on it, checkpoints included, and an action
/// is refused as for any log that cannot be written.
#[test]
fn a_read_only_copy_is_read() {
    let env = home_with_profiles(5);
    let cp = env.dir.path().join("cp.json");
    env.run(&["receipts", "checkpoint", "--out", cp.to_str().unwrap()])
        .ok();
    assert!(
        !env.file("audit.db-wal").exists(),
        "the log was closed cleanly, so no -wal file is left"
    );
    let ro = env.dir.path().join("ro");
    fs::create_dir(&ro).unwrap();
    let (src, dst) = (env.home.to_str().unwrap(), ro.to_str().unwrap());
    sh("mount", &["--bind", src, dst])
        .expect("this test mounts a read-only copy of the home: it runs as root, with mount");
    let mut undo = Cleanup::default();
    let d = dst.to_string();
    undo.push(move || {
        let _ = sh("umount", &[&d]);
    });
    sh("mount", &["-o", "remount,ro,bind", dst]).expect("remount read-only");
    assert!(!writable(&ro.join("audit.db")), "the mount is read-only");

    let mut copy = Env::new();
    copy.set("CRAIK_HOME", dst);
    copy.home = ro.clone();
    // The same secret store (the copy's encrypted file and password).
    let r = copy.run(&[
        "receipts",
        "verify",
        "--checkpoint",
        cp.to_str().unwrap(),
        "--json",
    ]);
    r.ok();
    assert_eq!(r.json()["verified"], 5);
    assert_eq!(r.json()["ok"], true);
    check_reads(&copy, 5);
    // Read without the query index: patterns are matched on the log itself.
    let r = copy.run(&["receipts", "list", "--profile", "openai:p*", "--json"]);
    r.ok();
    assert_eq!(r.json()["receipts"].as_array().unwrap().len(), 5);
    let r = copy.run(&["receipts", "list", "--profile", "open*", "--json"]);
    r.ok();
    assert_eq!(r.json()["receipts"].as_array().unwrap().len(), 0);
    assert_eq!(
        copy.run_stdin(&["receipts", "hash", "--family", "openai"], Some("sk-x"))
            .stdout,
        env.run_stdin(&["receipts", "hash", "--family", "openai"], Some("sk-x"))
            .stdout,
        "the copy hashes with the same key"
    );
    copy.run(&["auth", "add", "openai:more", "--kind=api-key"])
        .code(5)
        .error_with_hint("audit log unavailable");
    undo.run();
}

/// An audit.db that is no database (overwritten, cut short): the reading
/// commands say they cannot read it (exit 1, with what to do), actions are
/// refused (exit 5), and the file is left exactly as it was.
#[test]
fn a_file_that_is_no_database() {
    for damage in ["garbage", "cut short"] {
        let env = home_with_profiles(30);
        let db = env.file("audit.db");
        match damage {
            "garbage" => {
                let mut rng = StdRng::seed_from_u64(9);
                let bytes: Vec<u8> = (0..40_000).map(|_| rng.r#gen()).collect();
                fs::write(&db, bytes).unwrap();
            }
            _ => {
                let f = fs::OpenOptions::new().write(true).open(&db).unwrap();
                f.set_len(8192).unwrap();
            }
        }
        let before = fs::read(&db).unwrap();
        for args in [
            &["receipts", "verify"][..],
            &["receipts", "list"],
            &["receipts", "stats"],
        ] {
            env.run(args)
                .code(1)
                .error_with_hint("cannot read the audit log");
            let r = env.run(args);
            assert!(
                r.stderr.contains("restore audit.db from a backup"),
                "{damage} {args:?}: {}",
                r.stderr
            );
        }
        env.run(&["auth", "add", "openai:more", "--kind=api-key"])
            .code(5)
            .error_with_hint("audit log unavailable");
        assert_eq!(fs::read(&db).unwrap(), before, "{damage}: audit.db changed");
    }
}

#[test]
fn unwritable_audit_log_fails_closed() {
    let mut used: Vec<&str> = Vec::new();
    let mut unavailable: Vec<String> = Vec::new();
    let mut note = |name: &'static str, r: Result<(), String>| match r {
        Ok(()) => used.push(name),
        Err(e) => unavailable.push(format!("{name}: {e}")),
    };

    // audit.db replaced by a directory.
    {
        let env = Env::new();
        note(
            "directory",
            check_fail_closed("directory", &env, |env, undo| {
                let db = env.file("audit.db");
                let saved = env.dir.path().join("audit.db.saved");
                fs::rename(&db, &saved).unwrap();
                fs::create_dir(&db).unwrap();
                undo.push(move || {
                    fs::remove_dir(&db).unwrap();
                    fs::rename(&saved, &db).unwrap();
                });
                Ok(())
            }),
        );
    }

    // A read-only file: chmod works for other users, not for root.
    if !rustix::process::geteuid().is_root() {
        let env = Env::new();
        note(
            "chmod 0400",
            check_fail_closed("chmod 0400", &env, |env, undo| {
                let db = env.file("audit.db");
                fs::set_permissions(&db, fs::Permissions::from_mode(0o400)).unwrap();
                undo.push(move || {
                    fs::set_permissions(&db, fs::Permissions::from_mode(0o600)).unwrap();
                });
                Ok(())
            }),
        );
    }

    // An immutable file (stops root too, where the filesystem supports it).
    {
        let env = Env::new();
        note(
            "chattr +i",
            check_fail_closed("chattr +i", &env, |env, undo| {
                let db = env.file("audit.db");
                let p = db.to_str().unwrap().to_string();
                sh("chattr", &["+i", &p])?;
                undo.push(move || {
                    let _ = sh("chattr", &["-i", &p]);
                });
                if writable(&db) {
                    return Err("audit.db is still writable after chattr +i".into());
                }
                Ok(())
            }),
        );
    }

    // A read-only bind mount over audit.db.
    {
        let env = Env::new();
        note(
            "read-only bind mount",
            check_fail_closed("read-only bind mount", &env, |env, undo| {
                let db = env.file("audit.db");
                let p = db.to_str().unwrap().to_string();
                sh("mount", &["--bind", &p, &p])?;
                let q = p.clone();
                undo.push(move || {
                    let _ = sh("umount", &[&q]);
                });
                sh("mount", &["-o", "remount,ro,bind", &p])?;
                if writable(&db) {
                    return Err("audit.db is still writable after the ro remount".into());
                }
                Ok(())
            }),
        );
    }

    // A full disk: the home on a tiny tmpfs, filled up.
    {
        let mut env = Env::new();
        let mut mounts = Cleanup::default();
        let fs_dir = env.dir.path().join("tinyfs");
        fs::create_dir(&fs_dir).unwrap();
        let mounted = sh(
            "mount",
            &[
                "-t",
                "tmpfs",
                "-o",
                "size=1m,mode=0700",
                "craik-test-tinyfs",
                fs_dir.to_str().unwrap(),
            ],
        );
        let r = mounted.and_then(|()| {
            let p = fs_dir.display().to_string();
            mounts.push(move || {
                let _ = sh("umount", &["-l", &p]);
            });
            let home = fs_dir.join("home");
            env.set("CRAIK_HOME", home.to_str().unwrap());
            env.home = home;
            let filler = fs_dir.join("filler");
            check_fail_closed("full tmpfs", &env, move |_, undo| {
                let mut f = fs::File::create(&filler).unwrap();
                let chunk = vec![0u8; 64 * 1024];
                let err = loop {
                    if let Err(e) = f.write_all(&chunk) {
                        break e;
                    }
                };
                drop(f);
                undo.push(move || fs::remove_file(&filler).unwrap());
                if err.raw_os_error() != Some(28) {
                    return Err(format!("filling the tmpfs failed with {err}, not ENOSPC"));
                }
                Ok(())
            })
        });
        note("full tmpfs", r);
        drop(mounts);
    }

    eprintln!("fail-closed mechanisms used: {used:?}; unavailable: {unavailable:?}");
    assert!(used.contains(&"directory"), "{unavailable:?}");
    assert!(
        used.len() >= 2,
        "no way to make audit.db unwritable besides replacing it with a directory worked here; unavailable: {unavailable:?}"
    );
}

// ---------------------------------------------------------------------------
// 5. Queries use indexes.

#[test]
fn queries_use_indexes() {
    let mut rng = StdRng::seed_from_u64(5);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("q.db");
    let built = build_log(&db, 300, &mut rng);
    let log = AuditLog::open_path(&db).unwrap();
    let key = AuditKey::from_bytes([42; 32]);
    let alice = operators(&key).remove(0);
    let identity = built
        .iter()
        .find_map(|r| r.auth_identity_hash.clone())
        .unwrap();
    let now = Utc::now();
    let f = Filter {
        limit: Some(100),
        ..Default::default()
    };
    let cases: Vec<(&str, Filter, bool)> = vec![
        (
            "operator subject",
            Filter {
                operator: Some(alice.subject.clone()),
                ..f.clone()
            },
            false,
        ),
        (
            "operator email",
            Filter {
                operator: alice.email.clone(),
                ..f.clone()
            },
            false,
        ),
        (
            "operator hash",
            Filter {
                operator_hash: Some(alice.identity_hash.clone()),
                ..f.clone()
            },
            false,
        ),
        (
            "identity hash",
            Filter {
                identity_hash: Some(identity.clone()),
                ..f.clone()
            },
            false,
        ),
        (
            "profile",
            Filter {
                profile: Some("openai:ci".into()),
                ..f.clone()
            },
            false,
        ),
        (
            "profile glob",
            Filter {
                profile: Some("openai:*".into()),
                ..f.clone()
            },
            false,
        ),
        (
            "profile and kind",
            Filter {
                profile: Some("openai:ci".into()),
                kind: Some("call.finished".into()),
                ..f.clone()
            },
            false,
        ),
        (
            "run",
            Filter {
                run: Some("run-3".into()),
                ..f.clone()
            },
            false,
        ),
        (
            "operator and time",
            Filter {
                operator: Some(alice.subject.clone()),
                since: Some(now - chrono::Duration::hours(1)),
                ..f.clone()
            },
            false,
        ),
        (
            "since",
            Filter {
                since: Some(now - chrono::Duration::hours(1)),
                ..f.clone()
            },
            true,
        ),
        (
            "until",
            Filter {
                until: Some(now - chrono::Duration::days(1)),
                ..f.clone()
            },
            true,
        ),
        (
            "since and until",
            Filter {
                since: Some(now - chrono::Duration::days(2)),
                until: Some(now - chrono::Duration::days(1)),
                ..f.clone()
            },
            true,
        ),
    ];
    let mut failures = Vec::new();
    for (name, filter, time) in &cases {
        // The plan of the query over the index (alias e, read back from
        // the log as r), then that of the log's tail after the index.
        let plan = log.explain(filter).unwrap();
        let scan = plan.iter().any(|l| l.starts_with("SCAN"));
        let search = plan
            .iter()
            .any(|l| l.starts_with("SEARCH e USING") && l.contains("INDEX entries_by_"));
        let read_back = plan
            .iter()
            .any(|l| l == "SEARCH r USING INTEGER PRIMARY KEY (rowid=?)");
        let tail = plan
            .iter()
            .any(|l| l == "SEARCH r USING INTEGER PRIMARY KEY (rowid>?)");
        let by_created = plan.iter().any(|l| l.contains("entries_by_created"));
        if scan || !search || !read_back || !tail || (*time && !by_created) {
            failures.push(format!("{name}: {plan:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "queries that do not search an index:\n{}",
        failures.join("\n")
    );

    // The approval gate's lookups use the log's partial index.
    for kind in [ReceiptKind::Approval, ReceiptKind::ApprovalRequested] {
        for with_run in [false, true] {
            let plan = log.explain_find(kind, with_run).unwrap();
            assert!(
                plan.iter()
                    .any(|l| l.starts_with("SEARCH receipts USING INDEX receipts_approvals")),
                "find({kind}, run: {with_run}): {plan:?}"
            );
        }
    }

    // And the indexed queries return the right receipts.
    let by_op = log
        .list(&Filter {
            operator: alice.email.clone(),
            limit: Some(1000),
            ..Default::default()
        })
        .unwrap();
    let want: Vec<i64> = built
        .iter()
        .rev()
        .filter(|r| r.operator_email == alice.email)
        .map(|r| r.seq)
        .collect();
    assert!(!want.is_empty());
    assert_eq!(by_op.iter().map(|r| r.seq).collect::<Vec<_>>(), want);
    let glob = log
        .list(&Filter {
            profile: Some("openai:*".into()),
            limit: Some(1000),
            ..Default::default()
        })
        .unwrap();
    let want: Vec<i64> = built
        .iter()
        .rev()
        .filter(|r| {
            r.auth_profile_id
                .as_deref()
                .is_some_and(|p| p.starts_with("openai:"))
        })
        .map(|r| r.seq)
        .collect();
    assert_eq!(glob.iter().map(|r| r.seq).collect::<Vec<_>>(), want);
}

// ---------------------------------------------------------------------------
// 6. The commands.

const ISSUER: &str = "https://idp.example.com";

/// A home with eleven receipts:
///  1  10 days ago  login         ok      alice
///  2   5 days ago  grant         ok      bob      anthropic:work  run-old
///  3   2 days ago  denial        denied  alice    openai:prod
///  4   now         call.started  ok      alice    openai:ci       run-7
///  5   now         call.finished error   alice    openai:ci       run-7
///  6   now         approval      ok      bob      anthropic:work
///  7   now         denial        denied  -        openai:prod
///  8   now         profile_added (craik auth add openai:a, key K1)
///  9   now         profile_added (openai:b, key K1)
/// 10   now         profile_added (openai:c, key K2)
/// 11   now         profile_removed (openai:c)
struct Fixture {
    env: Env,
    alice_hash: String,
}

const K1: &str = "sk-fixture-key-one";
const K2: &str = "sk-fixture-key-two";

fn fixture() -> Fixture {
    let env = home_with_empty_log();
    let db = env.file("audit.db");
    let key = AuditKey::from_bytes([9; 32]);
    let ops = operators(&key);
    let (alice, bob) = (ops[0].clone(), ops[1].clone());
    let with_op = |mut r: Receipt, o: &Operator| {
        r.operator_subject = Some(o.subject.clone());
        r.operator_issuer = Some(o.issuer.clone());
        r.operator_email = o.email.clone();
        r.operator_groups = Some(serde_json::to_string(&o.groups).unwrap());
        r.operator_identity_hash = Some(o.identity_hash.clone());
        r
    };
    {
        let conn = Connection::open(&db).unwrap();
        let ago = |d: i64| rfc3339(Utc::now() - chrono::Duration::days(d));
        raw_append(&conn, with_op(blank("login", "ok", &ago(10)), &alice));
        let mut r = with_op(blank("grant", "ok", &ago(5)), &bob);
        r.auth_profile_id = Some("anthropic:work".into());
        r.provider_family = Some("anthropic".into());
        r.run_id = Some("run-old".into());
        raw_append(&conn, r);
        let mut r = with_op(blank("denial", "denied", &ago(2)), &alice);
        r.auth_profile_id = Some("openai:prod".into());
        r.provider_family = Some("openai".into());
        r.reason = Some("outside working hours".into());
        raw_append(&conn, r);
    }
    {
        let mut log = AuditLog::open_path(&db).unwrap();
        log.append(
            NewReceipt::new(ReceiptKind::CallStarted, Status::Ok)
                .profile("openai:ci", "api-key", "openai")
                .operator(Some(alice.clone()))
                .run("run-7")
                .detail("model", "gpt-test"),
        )
        .unwrap();
        log.append_batch(vec![
            NewReceipt::new(ReceiptKind::CallFinished, Status::Error)
                .profile("openai:ci", "api-key", "openai")
                .operator(Some(alice.clone()))
                .run("run-7")
                .detail("status_code", 500),
            NewReceipt::new(ReceiptKind::Approval, Status::Ok)
                .profile("anthropic:work", "secret-ref", "anthropic")
                .operator(Some(bob)),
            NewReceipt::new(ReceiptKind::Denial, Status::Denied).profile(
                "openai:prod",
                "api-key",
                "openai",
            ),
        ])
        .unwrap();
    }
    for (id, k) in [("openai:a", K1), ("openai:b", K1), ("openai:c", K2)] {
        env.run_stdin(
            &["auth", "add", id, "--kind=keyring-ref", "--stdin"],
            Some(&format!("{k}\n")),
        )
        .ok();
    }
    env.run(&["auth", "remove", "openai:c"]).ok();
    Fixture {
        env,
        alice_hash: alice.identity_hash,
    }
}

/// `receipts list --json <args>`: the seqs, each receipt schema-checked.
fn list(env: &Env, args: &[&str]) -> Vec<i64> {
    let mut all = vec!["receipts", "list", "--json"];
    all.extend_from_slice(args);
    let r = env.run(&all);
    r.ok();
    let v = r.json();
    v["receipts"]
        .as_array()
        .unwrap_or_else(|| panic!("no receipts array: {v}"))
        .iter()
        .map(|x| {
            assert_schema("receipt.schema.json", x);
            x["seq"].as_i64().unwrap()
        })
        .collect()
}

fn show_json(env: &Env, id: &str) -> serde_json::Value {
    let r = env.run(&["receipts", "show", id, "--json"]);
    r.ok();
    r.json()
}

#[test]
fn receipts_list_filters() {
    let fx = fixture();
    let env = &fx.env;
    let desc = |r: std::ops::RangeInclusive<i64>| r.rev().collect::<Vec<_>>();
    assert_eq!(list(env, &[]), desc(1..=11));
    assert_eq!(
        list(env, &["--operator", "alice@example.com"]),
        [5, 4, 3, 1]
    );
    assert_eq!(list(env, &["--operator", "alice-sub"]), [5, 4, 3, 1]);
    assert_eq!(list(env, &["--operator", "bob@example.com"]), [6, 2]);
    assert_eq!(list(env, &["--operator", "nobody@example.com"]), [0; 0]);
    assert_eq!(
        list(env, &["--operator-hash", &fx.alice_hash]),
        [5, 4, 3, 1]
    );
    assert_eq!(
        list(env, &["--profile", "openai:*"]),
        [11, 10, 9, 8, 7, 5, 4, 3]
    );
    assert_eq!(list(env, &["--profile", "openai:ci"]), [5, 4]);
    assert_eq!(list(env, &["--profile", "anthropic:*"]), [6, 2]);
    // Patterns as in policies: `*` stops at ':', `**` does not.
    assert_eq!(list(env, &["--profile", "open*"]), Vec::<i64>::new());
    assert_eq!(
        list(env, &["--profile", "open**"]),
        [11, 10, 9, 8, 7, 5, 4, 3]
    );
    assert_eq!(list(env, &["--profile", "*:ci"]), [5, 4]);
    assert_eq!(list(env, &["--profile", "openai:c?"]), [5, 4]);
    for bad in ["openai:[ab]*", "openai:wo[r]k", "", "a b"] {
        env.run(&["receipts", "list", "--profile", bad])
            .code(1)
            .error_with_hint("profile patterns are as in policies");
    }
    assert_eq!(list(env, &["--kind", "profile_added"]), [10, 9, 8]);
    assert_eq!(list(env, &["--kind", "denial"]), [7, 3]);
    assert_eq!(list(env, &["--status", "denied"]), [7, 3]);
    assert_eq!(list(env, &["--status", "error"]), [5]);
    assert_eq!(list(env, &["--run", "run-7"]), [5, 4]);
    assert_eq!(list(env, &["--since", "24h"]), desc(4..=11));
    assert_eq!(list(env, &["--since", "7d"]), desc(2..=11));
    let four_days_ago = rfc3339(Utc::now() - chrono::Duration::days(4));
    assert_eq!(list(env, &["--until", &four_days_ago]), [2, 1]);
    assert_eq!(list(env, &["--since", "6d", "--until", "1d"]), [3, 2]);
    assert_eq!(list(env, &["--limit", "2"]), [11, 10]);
    assert_eq!(
        list(env, &["--profile", "openai:*", "--status", "denied"]),
        [7, 3]
    );
    assert_eq!(
        list(
            env,
            &[
                "--operator",
                "alice@example.com",
                "--since",
                "24h",
                "--limit",
                "1"
            ]
        ),
        [5]
    );

    // The identity hash of the profiles' key finds their receipts.
    let k1 = show_json(env, "8")["auth_identity_hash"].clone();
    assert_eq!(
        list(env, &["--identity-hash", k1.as_str().unwrap()]),
        [9, 8]
    );

    // --jsonl: one schema-valid receipt per line, same order.
    let r = env.run(&["receipts", "list", "--jsonl", "--profile", "openai:*"]);
    r.ok();
    let seqs: Vec<i64> = r
        .stdout
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("a JSON line");
            assert_schema("receipt.schema.json", &v);
            v["seq"].as_i64().unwrap()
        })
        .collect();
    assert_eq!(seqs, [11, 10, 9, 8, 7, 5, 4, 3]);

    // --csv: a header naming every field, then one row per receipt.
    let r = env.run(&["receipts", "list", "--csv", "--run", "run-7"]);
    r.ok();
    let mut rd = csv::Reader::from_reader(r.stdout.as_bytes());
    let header: Vec<String> = rd.headers().unwrap().iter().map(str::to_string).collect();
    assert_eq!(header, COLUMNS);
    let rows: Vec<csv::StringRecord> = rd.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(&rows[0][0], "5");
    assert_eq!(&rows[0][3], "call.finished");
    assert_eq!(&rows[0][16], "alice@example.com");

    // The table.
    let r = env.run(&["receipts", "list", "--kind", "denial"]);
    r.ok();
    assert!(
        r.stdout.contains("SEQ") && r.stdout.contains("openai:prod"),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains("call.started"), "{}", r.stdout);

    // Bad input is refused with a hint.
    env.run(&["receipts", "list", "--since", "yesterday"])
        .code(1)
        .error_with_hint("yesterday");
    let usage = env.run(&["receipts", "list", "--json", "--csv"]);
    usage.code(2);

    // A kind no receipt has (mistyped) is told apart from one that matched
    // nothing under the other filters.
    let r = env.run(&["receipts", "list", "--kind", "call-started", "--json"]);
    r.ok();
    assert_eq!(r.json()["receipts"], serde_json::json!([]));
    assert!(
        r.stderr
            .contains("no receipt in this log has kind \"call-started\"")
            && r.stderr.contains("call.started"),
        "{}",
        r.stderr
    );
    let r = env.run(&[
        "receipts",
        "list",
        "--kind",
        "denial",
        "--run",
        "no-such-run",
    ]);
    r.ok();
    assert_eq!(r.stderr, "", "a known kind that matched nothing");
    // Filters that could match nothing are refused, not answered empty.
    for (flag, value) in [
        ("--identity-hash", "0123abcd"),
        ("--operator-hash", "hmac-sha256:00"),
    ] {
        env.run(&["receipts", "list", flag, value])
            .code(1)
            .error_with_hint("is not an identity hash");
    }
    env.run(&["receipts", "list", "--since", "1h", "--until", "2d"])
        .code(1)
        .error_with_hint("is after --until");
}

#[test]
fn receipts_show_stats_export() {
    let fx = fixture();
    let env = &fx.env;

    // show: by seq and by id, the same receipt, schema-valid.
    let by_seq = show_json(env, "4");
    assert_schema("receipt.schema.json", &by_seq);
    assert_eq!(by_seq["seq"], 4);
    assert_eq!(by_seq["kind"], "call.started");
    assert_eq!(by_seq["run_id"], "run-7");
    assert_eq!(by_seq["operator_email"], "alice@example.com");
    assert_eq!(
        by_seq["operator_groups"],
        serde_json::json!(["eng", "admins"])
    );
    assert_eq!(by_seq["details"]["model"], "gpt-test");
    let id = by_seq["id"].as_str().unwrap();
    assert_eq!(show_json(env, id), by_seq);
    let added = show_json(env, "8");
    assert_schema("receipt.schema.json", &added);
    assert_eq!(added["kind"], "profile_added");
    assert_eq!(added["auth_profile_id"], "openai:a");
    assert_eq!(added["auth_kind"], "keyring-ref");
    assert_eq!(added["provider_family"], "openai");
    assert_eq!(added["prev_hash"], show_json(env, "7")["hash"]);
    let r = env.run(&["receipts", "show", "4"]);
    r.ok();
    for s in ["call.started", "run-7", "alice@example.com", id] {
        assert!(r.stdout.contains(s), "show lacks {s}:\n{}", r.stdout);
    }
    env.run(&["receipts", "show", "999"])
        .code(1)
        .error_with_hint("no receipt 999");
    env.run(&["receipts", "show", "rcpt_000000000000000000000000"])
        .code(1)
        .error_with_hint("no receipt");

    // stats.
    let r = env.run(&["receipts", "stats", "--json"]);
    r.ok();
    let s = r.json();
    assert_eq!(s["total"], 11);
    assert_eq!(s["by_kind"]["profile_added"], 3);
    assert_eq!(s["by_kind"]["profile_removed"], 1);
    assert_eq!(s["by_kind"]["denial"], 2);
    assert_eq!(s["by_status"]["ok"], 8);
    assert_eq!(s["by_status"]["denied"], 2);
    assert_eq!(s["by_status"]["error"], 1);
    assert_eq!(s["by_profile"]["openai:ci"], 2);
    assert_eq!(s["by_profile"]["openai:c"], 2);
    assert_eq!(s["by_operator"]["alice@example.com"], 4);
    assert_eq!(s["by_operator"]["bob@example.com"], 2);
    let r = env.run(&["receipts", "stats"]);
    r.ok();
    assert!(r.stdout.contains("receipts: 11"), "{}", r.stdout);

    // export jsonl: every receipt, oldest first, each as `show --json`.
    let r = env.run(&["receipts", "export", "--format", "jsonl"]);
    r.ok();
    let lines: Vec<serde_json::Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(
        lines
            .iter()
            .map(|v| v["seq"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        (1..=11).collect::<Vec<_>>()
    );
    for v in &lines {
        assert_schema("receipt.schema.json", v);
    }
    assert_eq!(lines[3], by_seq);
    let r = env.run(&["receipts", "export", "--format", "jsonl", "--since", "24h"]);
    r.ok();
    let seqs: Vec<i64> = r
        .stdout
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"]
                .as_i64()
                .unwrap()
        })
        .collect();
    assert_eq!(seqs, (4..=11).collect::<Vec<_>>());

    // export csv.
    let r = env.run(&["receipts", "export", "--format", "csv", "--since", "3d"]);
    r.ok();
    let mut rd = csv::Reader::from_reader(r.stdout.as_bytes());
    assert_eq!(rd.headers().unwrap().iter().collect::<Vec<_>>(), COLUMNS);
    let seqs: Vec<i64> = rd
        .records()
        .map(|x| x.unwrap()[0].parse().unwrap())
        .collect();
    assert_eq!(seqs, (3..=11).collect::<Vec<_>>());
    let r = env.run(&["receipts", "export", "--format", "csv"]);
    r.ok();
    let mut rd = csv::Reader::from_reader(r.stdout.as_bytes());
    let rows: Vec<csv::StringRecord> = rd.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 11);
    assert_eq!(&rows[7][9], "openai:a");
    assert_eq!(&rows[7][21], added["hash"].as_str().unwrap());
    env.run(&["receipts", "export", "--format", "xml"]).code(2);
}

#[test]
fn receipts_checkpoint_and_verify() {
    let fx = fixture();
    let env = &fx.env;
    let r = env.run(&["receipts", "verify"]);
    r.ok();
    assert!(r.stdout.contains("verified 11 receipts"), "{}", r.stdout);

    let cp = env.dir.path().join("cp-11.json");
    let cp_s = cp.to_str().unwrap();
    let r = env.run(&["receipts", "checkpoint", "--out", cp_s, "--json"]);
    r.ok();
    let v = r.json();
    let tail = show_json(env, "11");
    assert_eq!(v["seq"], 11);
    assert_eq!(v["hash"], tail["hash"]);
    let public = fs::read_to_string(env.file("audit-signing.pub")).unwrap();
    assert_eq!(v["public_key"].as_str().unwrap(), public.trim());
    let file: serde_json::Value = serde_json::from_slice(&fs::read(&cp).unwrap()).unwrap();
    assert_eq!(file["seq"], 11);
    assert_eq!(file["hash"], tail["hash"]);
    assert_eq!(file["public_key"], v["public_key"]);

    let r = env.run(&["receipts", "verify", "--checkpoint", cp_s]);
    r.ok();
    assert!(
        r.stdout.contains("verified 11 receipts") && r.stdout.contains("1 checkpoint(s) held"),
        "{}",
        r.stdout
    );
    // A later receipt does not disturb an older checkpoint; the same key
    // signs the next one.
    env.run_stdin(
        &["auth", "add", "openai:d", "--kind=keyring-ref", "--stdin"],
        Some("sk-later\n"),
    )
    .ok();
    let cp12 = env.dir.path().join("cp-12.json");
    env.run(&["receipts", "checkpoint", "--out", cp12.to_str().unwrap()])
        .ok();
    let r = env.run(&[
        "receipts",
        "verify",
        "--checkpoint",
        cp_s,
        "--checkpoint",
        cp12.to_str().unwrap(),
        "--json",
    ]);
    r.ok();
    let v = r.json();
    assert_eq!(v["ok"], true);
    assert_eq!(v["verified"], 12);
    assert_eq!(v["checkpoints_checked"], 2);
    assert_eq!(
        fs::read_to_string(env.file("audit-signing.pub")).unwrap(),
        public
    );

    // A checkpoint whose fields were changed, or whose signature was, is refused.
    for (field, value) in [
        ("seq", serde_json::json!(10)),
        ("hash", serde_json::json!("0".repeat(64))),
        ("created_at", serde_json::json!("2020-01-01T00:00:00.000Z")),
    ] {
        let mut f = file.clone();
        f[field] = value;
        let bad = env.dir.path().join(format!("bad-{field}.json"));
        fs::write(&bad, serde_json::to_vec(&f).unwrap()).unwrap();
        env.run(&["receipts", "verify", "--checkpoint", bad.to_str().unwrap()])
            .code(1)
            .error_with_hint("signature does not verify");
    }
    let mut f = file.clone();
    let mut sig = base64_decode(f["signature"].as_str().unwrap());
    sig[5] ^= 0x40;
    f["signature"] = serde_json::json!(base64_encode(&sig));
    let bad = env.dir.path().join("bad-signature.json");
    fs::write(&bad, serde_json::to_vec(&f).unwrap()).unwrap();
    env.run(&["receipts", "verify", "--checkpoint", bad.to_str().unwrap()])
        .code(1)
        .error_with_hint("signature does not verify");

    // A checkpoint signed by another home's key is refused here.
    let other = fixture();
    let foreign = other.env.dir.path().join("foreign.json");
    other
        .env
        .run(&["receipts", "checkpoint", "--out", foreign.to_str().unwrap()])
        .ok();
    env.run(&[
        "receipts",
        "verify",
        "--checkpoint",
        foreign.to_str().unwrap(),
    ])
    .code(1)
    .error_with_hint("key other than");
    // Not a checkpoint at all.
    env.run(&[
        "receipts",
        "verify",
        "--checkpoint",
        env.file("auth-profiles.json").to_str().unwrap(),
    ])
    .code(1)
    .error_with_hint("not a checkpoint");

    // Whose key: --public-key names the one to trust (base64, or a file
    // holding it), in place of this home's audit-signing.pub.
    let ours = fs::read_to_string(env.file("audit-signing.pub")).unwrap();
    let ours_file = env.dir.path().join("ours.pub");
    fs::write(&ours_file, &ours).unwrap();
    let foreign_s = foreign.to_str().unwrap();
    for key in [ours.trim(), ours_file.to_str().unwrap()] {
        env.run(&[
            "receipts",
            "verify",
            "--checkpoint",
            foreign_s,
            "--public-key",
            key,
        ])
        .code(1)
        .error_with_hint("key other than");
    }
    let theirs = fs::read_to_string(other.env.file("audit-signing.pub")).unwrap();
    let r = env.run(&[
        "receipts",
        "verify",
        "--checkpoint",
        foreign_s,
        "--public-key",
        theirs.trim(),
        "--json",
    ]);
    // Their checkpoint is of their log: a seq this log may not hold with
    // that hash, so only the key check is asserted here.
    assert!(!r.stderr.contains("warning"), "{}", r.stderr);
    assert!(
        !r.stderr.contains("key other than"),
        "their key accepted their checkpoint: {}",
        r.stderr
    );
    env.run(&["receipts", "verify", "--public-key", "not-a-key"])
        .code(1)
        .error_with_hint("is neither an Ed25519 public key");
    // With no audit-signing.pub and no --public-key, a checkpoint is checked
    // against the key it names, and verify says that this proves nothing.
    fs::remove_file(env.file("audit-signing.pub")).unwrap();
    let r = env.run(&["receipts", "verify", "--checkpoint", cp_s, "--json"]);
    r.ok();
    assert!(
        r.stderr
            .contains("is checked only against the key it names")
            && r.stderr.contains("--public-key"),
        "{}",
        r.stderr
    );
    assert_eq!(r.json()["checkpoints"][0]["key_trusted"], false);
    assert!(
        r.json()["warnings"][0]
            .as_str()
            .is_some_and(|w| w.contains("checked only against the key it names")),
        "{}",
        r.stdout
    );
    let r = env.run(&[
        "receipts",
        "verify",
        "--checkpoint",
        cp_s,
        "--public-key",
        ours.trim(),
        "--json",
    ]);
    r.ok();
    assert_eq!(r.stderr, "");
    assert_eq!(r.json()["checkpoints"][0]["key_trusted"], true);
    fs::write(env.file("audit-signing.pub"), &ours).unwrap();
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

fn base64_encode(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn cli_hash(env: &Env, family: &str, input: &str) -> String {
    let r = env.run_stdin(&["receipts", "hash", "--family", family], Some(input));
    r.ok();
    let h = r.stdout.trim().to_string();
    assert!(
        h.starts_with("hmac-sha256:")
            && h.len() == 12 + 64
            && h[12..]
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()),
        "not an identity hash: {h:?}"
    );
    assert!(!r.stdout.contains(input.trim()) && !r.stderr.contains(input.trim()));
    h
}

#[test]
fn receipts_hash_matches_the_log() {
    let fx = fixture();
    let env = &fx.env;
    let a = show_json(env, "8")["auth_identity_hash"].clone();
    let b = show_json(env, "9")["auth_identity_hash"].clone();
    let c = show_json(env, "10")["auth_identity_hash"].clone();
    let removed = show_json(env, "11")["auth_identity_hash"].clone();
    assert!(a.is_string() && c.is_string(), "{a} {c}");
    assert_eq!(a, b, "the same key under two profile names hashes the same");
    assert_ne!(a, c, "different keys hash differently");
    assert_eq!(removed, c, "profile_removed names the same credential");

    let h1 = cli_hash(env, "openai", &format!("{K1}\n"));
    assert_eq!(h1, a.as_str().unwrap());
    assert_eq!(
        cli_hash(env, "openai", K1),
        h1,
        "a trailing newline is not part of the key"
    );
    assert_eq!(cli_hash(env, "openai", K2), c.as_str().unwrap());
    assert_ne!(
        cli_hash(env, "anthropic", K1),
        h1,
        "the family is hashed too"
    );
    assert_eq!(list(env, &["--identity-hash", &h1]), [9, 8]);

    let op = env.run_stdin(
        &["receipts", "hash", "--operator-issuer", ISSUER],
        Some("alice-sub\n"),
    );
    op.ok();
    assert!(op.stdout.trim().starts_with("hmac-sha256:"));
    env.run_stdin(&["receipts", "hash", "--family", "openai"], Some(""))
        .code(1)
        .error_with_hint("standard input");
    env.run_stdin(&["receipts", "hash"], Some(K1)).code(2);
    env.run_stdin(
        &["receipts", "hash", "--operator-issuer", " "],
        Some("alice-sub"),
    )
    .code(1)
    .error_with_hint("--operator-issuer is empty");

    // Without a shared key two homes hash alike only by accident.
    let other = Env::new();
    assert_ne!(cli_hash(&other, "openai", K1), h1);

    // CRAIK_AUDIT_KEY makes two homes hash alike, in `hash` and in the log.
    let shared = "0123456789abcdef".repeat(4);
    let mut homes = vec![Env::new(), Env::new()];
    let mut hashes = Vec::new();
    for h in &mut homes {
        h.set("SHARED_AUDIT_KEY", &shared);
        h.set("CRAIK_AUDIT_KEY", "env:SHARED_AUDIT_KEY");
        h.run_stdin(
            &[
                "auth",
                "add",
                "openai:shared",
                "--kind=keyring-ref",
                "--stdin",
            ],
            Some("sk-shared-key\n"),
        )
        .ok();
        let logged = show_json(h, "1")["auth_identity_hash"]
            .as_str()
            .unwrap()
            .to_string();
        let computed = cli_hash(h, "openai", "sk-shared-key");
        assert_eq!(logged, computed);
        hashes.push(computed);
    }
    assert_eq!(hashes[0], hashes[1]);
    assert_ne!(hashes[0], cli_hash(&other, "openai", "sk-shared-key"));
    // A key that is not 32 bytes is refused, failing closed.
    let mut bad = Env::new();
    bad.set("SHARED_AUDIT_KEY", "abcd");
    bad.set("CRAIK_AUDIT_KEY", "env:SHARED_AUDIT_KEY");
    bad.run_stdin(
        &["auth", "add", "openai:x", "--kind=keyring-ref", "--stdin"],
        Some("sk-x\n"),
    )
    .code(5)
    .error_with_hint("CRAIK_AUDIT_KEY");
    assert!(!bad.file("auth-profiles.json").exists());
}

#[test]
fn a_long_index_catch_up_is_announced() {
    let env = home_with_empty_log();
    // 50,047 receipts the query index has not seen, as in a copied log.
    Connection::open(env.file("audit.db"))
        .unwrap()
        .execute_batch(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 50047)
             INSERT INTO receipts (seq, id, created_at, kind, status, details, prev_hash, hash)
             SELECT i, 'rcpt_' || i, '2026-12-01T00:00:00.000Z', 'profile_added', 'ok', '{}', 'p', 'h' || i FROM n",
        )
        .unwrap();
    // The next append, receipt 50,048, passes a multiple of 64, where an
    // append brings the index up to date: not one this far behind, which
    // is left to the next query.
    env.run_stdin(
        &["auth", "add", "openai:x", "--kind=keyring-ref", "--stdin"],
        Some("sk-x\n"),
    )
    .ok();
    let r = env.run(&["receipts", "list", "--limit", "1", "--json"]);
    r.ok();
    let notice = format!(
        "craik: bringing the query index of {} up to date (50048 receipts to copy)",
        env.file("audit-index.db").display()
    );
    assert!(r.stderr.contains(&notice), "{}", r.stderr);
    // The notice stays off stdout.
    let listed: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(
        listed["receipts"].as_array().map(Vec::len),
        Some(1),
        "{}",
        r.stdout
    );
    let again = env.run(&["receipts", "list", "--limit", "1"]);
    again.ok();
    assert!(!again.stderr.contains("query index"), "{}", again.stderr);
}

#[test]
fn schema_versions() {
    const { assert!(SCHEMA_VERSION > 1) };

    // A log from a newer craik is refused, for reading and for writing.
    let env = home_with_empty_log();
    {
        let c = Connection::open(env.file("audit.db")).unwrap();
        c.execute_batch("PRAGMA user_version = 99").unwrap();
    }
    let r = env.run(&["receipts", "list"]);
    r.code(5).error_with_hint("newer craik");
    assert!(r.stderr.contains("99"), "{}", r.stderr);
    env.run(&["receipts", "verify"])
        .code(5)
        .error_with_hint("newer craik");
    env.run_stdin(
        &["auth", "add", "openai:x", "--kind=keyring-ref", "--stdin"],
        Some("sk-x\n"),
    )
    .code(5)
    .error_with_hint("newer craik");
    assert!(!env.file("auth-profiles.json").exists());
    let c = Connection::open(env.file("audit.db")).unwrap();
    let v: i64 = c
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, 99, "a newer log must not be touched");
    drop(c);

    // A version 1 log is migrated on open, its receipts kept.
    let env = home_with_empty_log();
    let db = env.file("audit.db");
    fs::remove_file(&db).unwrap();
    let v1 = fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/0001_receipts.sql"),
    )
    .unwrap();
    let old = {
        let c = Connection::open(&db).unwrap();
        c.execute_batch(&v1).unwrap();
        c.execute_batch("PRAGMA user_version = 1").unwrap();
        let mut r = blank(
            "profile_added",
            "ok",
            &rfc3339(Utc::now() - chrono::Duration::days(30)),
        );
        r.auth_profile_id = Some("openai:old".into());
        raw_append(&c, r)
    };
    let r = env.run(&["receipts", "verify"]);
    r.ok();
    assert!(r.stdout.contains("verified 1 receipts"), "{}", r.stdout);
    // The user is told once, before the upgrade runs.
    let notice = format!(
        "craik: upgrading the audit log {} from schema 1 to {SCHEMA_VERSION} (1 receipts)",
        db.display()
    );
    assert!(r.stderr.contains(&notice), "{}", r.stderr);
    let again = env.run(&["receipts", "verify"]);
    again.ok();
    assert!(!again.stderr.contains("upgrading"), "{}", again.stderr);
    let c = Connection::open(&db).unwrap();
    let v: i64 = c
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, SCHEMA_VERSION);
    let indexes: BTreeSet<String> = c
        .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'receipts'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    // Version 3 moved the lookup indexes to audit-index.db and kept the
    // approval gate's partial index; version 4 dropped the index on `id`.
    assert_eq!(indexes, BTreeSet::from(["receipts_approvals".to_string()]));
    drop(c);
    // The migrated log keeps working: old receipt, new receipts chained on.
    assert_eq!(show_json(&env, "1")["hash"], old.hash);
    // An id of an older form is still found (by reading the log).
    assert_eq!(show_json(&env, &old.id)["seq"], 1);
    env.run_stdin(
        &["auth", "add", "openai:new", "--kind=keyring-ref", "--stdin"],
        Some("sk-new\n"),
    )
    .ok();
    assert_eq!(show_json(&env, "2")["prev_hash"], old.hash);
    assert_eq!(verified_count(&env), 2);
}

/// The query index (audit-index.db) is derived from the log and never
/// trusted alone: deleted, lagging, forged or outdated, listings stay right
/// (a forged entry may hide a receipt, never invent one).
#[test]
fn query_index_is_derived_and_never_trusted() {
    let mut rng = StdRng::seed_from_u64(11);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("q.db");
    let idx = dir.path().join("q-index.db");
    let built = build_log(&db, 300, &mut rng);
    let key = AuditKey::from_bytes([42; 32]);
    let alice = operators(&key).remove(0);
    let by_alice = Filter {
        operator: Some(alice.subject.clone()),
        limit: Some(1000),
        ..Default::default()
    };
    let want: Vec<i64> = built
        .iter()
        .rev()
        .filter(|r| r.operator_subject.as_deref() == Some(alice.subject.as_str()))
        .map(|r| r.seq)
        .collect();
    assert!(want.len() > 10);
    let seqs = |f: &Filter| -> Vec<i64> {
        let log = AuditLog::open_path(&db).unwrap();
        log.list(f).unwrap().iter().map(|r| r.seq).collect()
    };
    assert_eq!(seqs(&by_alice), want);
    assert!(idx.exists(), "the first query builds {}", idx.display());
    let mode = fs::metadata(&idx).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "index file mode");
    let mode = fs::metadata(&db).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "log file mode");
    // Made under a temporary name and linked into place: none is left.
    let dir = db.parent().unwrap();
    let left: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".craik-new-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");

    // Deleted: rebuilt.
    for suffix in ["", "-wal", "-shm"] {
        let _ = fs::remove_file(format!("{}{suffix}", idx.display()));
    }
    assert_eq!(seqs(&by_alice), want);

    // Lagging, and locked by another process's catch-up: the query reads
    // the tail from the log itself.
    let c = Connection::open(&idx).unwrap();
    let upto = 100i64;
    let hash: String = Connection::open(&db)
        .unwrap()
        .query_row("SELECT hash FROM receipts WHERE seq = ?1", [upto], |r| {
            r.get(0)
        })
        .unwrap();
    c.execute("DELETE FROM entries WHERE seq > ?1", [upto])
        .unwrap();
    c.execute(
        "UPDATE state SET upto = ?1, upto_hash = ?2",
        params![upto, hash],
    )
    .unwrap();
    c.execute_batch("BEGIN IMMEDIATE").unwrap();
    assert_eq!(seqs(&by_alice), want, "index up to 100 and locked");
    let asc: Vec<i64> = want.iter().rev().copied().collect();
    assert_eq!(
        seqs(&Filter {
            ascending: true,
            ..by_alice.clone()
        }),
        asc
    );
    assert_eq!(
        seqs(&Filter {
            limit: Some(3),
            ..by_alice.clone()
        }),
        want[..3]
    );
    c.execute_batch("COMMIT").unwrap();

    // Forged: an entry naming alice for someone else's receipt does not
    // make that receipt hers; one hiding her receipt only hides it.
    assert_eq!(seqs(&by_alice), want);
    let other = built
        .iter()
        .find(|r| r.operator_subject.as_deref() != Some(alice.subject.as_str()))
        .unwrap()
        .seq;
    c.execute(
        "UPDATE entries SET operator_subject = ?1 WHERE seq = ?2",
        params![alice.subject, other],
    )
    .unwrap();
    c.execute(
        "UPDATE entries SET operator_subject = 'mallory' WHERE seq = ?1",
        [want[0]],
    )
    .unwrap();
    let got = seqs(&by_alice);
    assert!(!got.contains(&other), "forged entry listed: {got:?}");
    assert_eq!(got, want[1..]);

    // The log no longer holds the receipt the index ends at (rewritten
    // here): the index is rebuilt from the log, and the forgeries go.
    Connection::open(&db)
        .unwrap()
        .execute("UPDATE receipts SET hash = 'x' WHERE seq = 300", [])
        .unwrap();
    assert_eq!(seqs(&by_alice), want);

    // Damaged: the index's state still matches the log but its entries
    // table is gone, so the query over the index fails and the log alone
    // answers; then pages of the file overwritten, then its header.
    c.execute_batch("DROP TABLE entries").unwrap();
    assert_eq!(seqs(&by_alice), want, "entries table gone");
    let log = AuditLog::open_path(&db).unwrap();
    assert_eq!(log.stats().unwrap().total, 300, "stats, entries table gone");
    drop(log);
    drop(c);
    for suffix in ["", "-wal", "-shm"] {
        let _ = fs::remove_file(format!("{}{suffix}", idx.display()));
    }
    let _ = seqs(&by_alice);
    for suffix in ["-wal", "-shm"] {
        let _ = fs::remove_file(format!("{}{suffix}", idx.display()));
    }
    let len = fs::metadata(&idx).unwrap().len();
    assert!(len > 3 * 4096, "index file of {len} bytes");
    let mut bytes = fs::read(&idx).unwrap();
    for b in &mut bytes[2 * 4096..len as usize - 4096] {
        *b = 0x5a;
    }
    fs::write(&idx, &bytes).unwrap();
    assert_eq!(seqs(&by_alice), want, "index pages damaged");
    let log = AuditLog::open_path(&db).unwrap();
    assert_eq!(
        log.stats().unwrap().total,
        300,
        "stats, index pages damaged"
    );
    drop(log);
    bytes[..100].fill(0x5a);
    fs::write(&idx, &bytes).unwrap();
    assert_eq!(seqs(&by_alice), want, "index header damaged");
    for suffix in ["", "-wal", "-shm"] {
        let _ = fs::remove_file(format!("{}{suffix}", idx.display()));
    }
    assert_eq!(seqs(&by_alice), want);
    let c = Connection::open(&idx).unwrap();

    // Stats agree with the log while the index lags.
    let log = AuditLog::open_path(&db).unwrap();
    let hash: String = Connection::open(&db)
        .unwrap()
        .query_row("SELECT hash FROM receipts WHERE seq = 250", [], |r| {
            r.get(0)
        })
        .unwrap();
    c.execute("DELETE FROM entries WHERE seq > 250", [])
        .unwrap();
    c.execute("UPDATE state SET upto = 250, upto_hash = ?1", [hash])
        .unwrap();
    c.execute_batch("BEGIN IMMEDIATE").unwrap();
    let s = log.stats().unwrap();
    assert_eq!(s.total, 300);
    let ok = built.iter().filter(|r| r.status == "ok").count() as i64;
    assert_eq!(s.by_status.get("ok").copied().unwrap_or(0), ok);
    c.execute_batch("COMMIT").unwrap();
}

/// A log of at least 100,000 receipts is verified in two halves at once;
/// damage in either half, or where they meet, is still found and named.
#[test]
fn long_logs_are_verified_in_halves() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("long.db");
    let n: i64 = 100_010;
    let mid = n / 2;
    {
        let mut log = AuditLog::open_path(&base).unwrap();
        let mut i = 0;
        while i < n {
            let batch: Vec<NewReceipt> = (i..(i + 10_000).min(n))
                .map(|j| {
                    NewReceipt::new(ReceiptKind::CallStarted, Status::Ok)
                        .run(&format!("run_{}", j / 2))
                        .detail("n", j)
                })
                .collect();
            i += batch.len() as i64;
            log.append_batch(batch).unwrap();
        }
    }
    settle(&base);
    let report = AuditLog::open_path(&base).unwrap().verify(&[]).unwrap();
    assert!(
        report.ok && report.verified == n && report.tail_seq == n,
        "{report:?}"
    );
    let cases: Vec<(&str, String, i64, &str)> = vec![
        (
            "first half",
            "UPDATE receipts SET status = 'denied' WHERE seq = 10".into(),
            10,
            "modified",
        ),
        (
            "second half",
            "UPDATE receipts SET run_id = 'x' WHERE seq = 90000".into(),
            90_000,
            "modified",
        ),
        (
            "the last of the first half",
            format!("UPDATE receipts SET details = '{{}}' WHERE seq = {mid}"),
            mid,
            "modified",
        ),
        (
            "the first of the second half",
            format!("DELETE FROM receipts WHERE seq = {}", mid + 1),
            mid + 1,
            "missing",
        ),
        (
            "below seq 1",
            "UPDATE receipts SET seq = 0 WHERE seq = 1".into(),
            0,
            "inserted",
        ),
    ];
    for (name, sql, seq, what) in cases {
        let copy = dir.path().join("tampered.db");
        fs::copy(&base, &copy).unwrap();
        Connection::open(&copy)
            .unwrap()
            .execute_batch(&sql)
            .unwrap();
        let r = AuditLog::open_path(&copy).unwrap().verify(&[]).unwrap();
        let d = r
            .damage
            .clone()
            .unwrap_or_else(|| panic!("{name}: not detected: {r:?}"));
        assert!(!r.ok, "{name}");
        assert_eq!((d.seq, d.what.as_str()), (seq, what), "{name}: {d:?}");
        for suffix in ["", "-wal", "-shm"] {
            let _ = fs::remove_file(format!("{}{suffix}", copy.display()));
        }
    }
}

/// `craik doctor` reports the query index: not built, how far it covers
/// the log, readable by others (a failure), out of step with the log or
/// unreadable (warnings: queries then read the log).
#[test]
fn doctor_reports_the_query_index() {
    let env = Env::new();
    let add = |id: &str| {
        env.run_stdin(
            &["auth", "add", id, "--kind=keyring-ref", "--stdin"],
            Some("sk-doctor-index\n"),
        )
        .ok();
    };
    let index_check = |code: i32| -> (String, String) {
        let r = env.run(&["doctor", "--json"]);
        r.code(code);
        let v = r.json();
        let c = v["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "query index")
            .unwrap_or_else(|| panic!("no query index check: {v}"))
            .clone();
        (
            c["level"].as_str().unwrap().to_string(),
            c["message"].as_str().unwrap().to_string(),
        )
    };
    add("openai:a");
    let index = env.file("audit-index.db");
    assert!(!index.exists());
    let (level, message) = index_check(0);
    assert_eq!(level, "ok");
    assert!(message.contains("not built yet"), "{message}");

    env.run(&["receipts", "list"]).ok();
    assert_eq!(
        index_check(0),
        (
            "ok".into(),
            "matches the log; holds receipts 1-1 of 1 (queries read the rest from the log)".into()
        )
    );
    add("openai:b");
    let (_, message) = index_check(0);
    assert!(message.contains("holds receipts 1-1 of 2"), "{message}");

    fs::set_permissions(&index, fs::Permissions::from_mode(0o644)).unwrap();
    let (level, message) = index_check(1);
    assert_eq!(level, "fail");
    assert!(message.contains("lets others read it"), "{message}");
    fs::set_permissions(&index, fs::Permissions::from_mode(0o600)).unwrap();

    Connection::open(&index)
        .unwrap()
        .execute("UPDATE state SET upto_hash = 'forged'", [])
        .unwrap();
    let (level, message) = index_check(0);
    assert_eq!(level, "warn");
    assert!(message.contains("no longer matches the log"), "{message}");

    fs::write(&index, vec![0x5a; 8192]).unwrap();
    let _ = fs::remove_file(env.file("audit-index.db-wal"));
    let _ = fs::remove_file(env.file("audit-index.db-shm"));
    let (level, message) = index_check(0);
    assert_eq!(level, "warn");
    assert!(message.contains("unreadable"), "{message}");
    // Queries still answer, from the log.
    let r = env.run(&["receipts", "list", "--json"]);
    r.ok();
    assert_eq!(
        r.json()["receipts"].as_array().map(Vec::len),
        Some(2),
        "{}",
        r.stdout
    );
}

/// Without a checkpoint, receipts cut from the end of the log leave a
/// chain that verifies; the query index, which copied them, still names
/// the last one, and verify warns (exit 0: the index is no proof, and a
/// log restored from a backup looks the same). The query that then
/// rebuilds the index says so first.
#[test]
fn verify_warns_when_the_index_remembers_more() {
    let env = home_with_profiles(12);
    // A query brings the index up to date (seq 12).
    env.run(&["receipts", "list"]).ok();
    let r = env.run(&["receipts", "verify", "--json"]);
    r.ok();
    assert_eq!(r.stderr, "", "no warning while the log is whole");
    assert_eq!(r.json()["warnings"], serde_json::json!([]));
    let c = Connection::open(env.file("audit.db")).unwrap();
    c.execute("DELETE FROM receipts WHERE seq > 9", []).unwrap();
    drop(c);
    let r = env.run(&["receipts", "verify", "--json"]);
    r.ok();
    assert_eq!(r.json()["verified"], 9);
    let w = r.json()["warnings"][0]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        w.contains("held receipts up to seq 12") && w.contains("ends at seq 9"),
        "{w}"
    );
    assert!(
        r.stderr.contains("craik: warning: the query index"),
        "{}",
        r.stderr
    );
    let r = env.run(&["receipts", "list"]);
    r.ok();
    assert!(
        r.stderr.contains("warning: the query index")
            && r.stderr.contains("rebuilt from the log now"),
        "{}",
        r.stderr
    );
}

/// A log deleted or emptied where the home shows it held receipts (its
/// query index copied some, or a checkpoint was signed): reading says so
/// (exit 1), and no action starts a new chain in its place (exit 5),
/// until the evidence is moved aside on purpose. A home that never had a
/// log reads as empty and makes no file.
#[test]
fn a_deleted_or_emptied_log_is_not_a_new_one() {
    for (how, evidence) in [
        ("emptied", "query index copied receipts up to seq 12"),
        ("deleted", "query index copied receipts up to seq 12"),
        ("deleted after a checkpoint", "audit-signing.pub"),
    ] {
        let env = home_with_profiles(12);
        let db = env.file("audit.db");
        if how == "deleted after a checkpoint" {
            let cp = env.dir.path().join("cp.json");
            env.run(&["receipts", "checkpoint", "--out", cp.to_str().unwrap()])
                .ok();
            let _ = fs::remove_file(env.file("audit-index.db"));
        } else {
            env.run(&["receipts", "list"]).ok();
        }
        for suffix in ["-wal", "-shm"] {
            let _ = fs::remove_file(with_suffix(&db, suffix));
        }
        if how == "emptied" {
            fs::OpenOptions::new()
                .write(true)
                .open(&db)
                .unwrap()
                .set_len(0)
                .unwrap();
        } else {
            fs::remove_file(&db).unwrap();
        }
        for args in [&["receipts", "verify"][..], &["receipts", "list"]] {
            let r = env.run(args);
            r.code(1).error_with_hint("is missing or empty");
            assert!(r.stderr.contains(evidence), "{how}: {}", r.stderr);
        }
        env.run(&["auth", "add", "openai:more", "--kind=api-key"])
            .code(5)
            .error_with_hint("will not start a new chain");
        assert_eq!(
            fs::metadata(&db).map(|m| m.len()).unwrap_or(0),
            0,
            "{how}: nothing was written in its place"
        );
        // Moved aside on purpose: a new log starts.
        for f in ["audit-index.db", "audit-signing.pub"] {
            let _ = fs::rename(env.file(f), env.dir.path().join(f));
        }
        env.run(&["auth", "add", "openai:more", "--kind=api-key"])
            .ok();
        assert_eq!(verified_count(&env), 1, "{how}");
    }
    // A home that never had a log: read as empty, nothing created.
    let env = Env::new();
    env.run(&["auth", "add", "openai:nolog", "--kind=marker"])
        .code(0);
    let fresh = Env::new();
    fs::create_dir_all(&fresh.home).unwrap();
    fs::set_permissions(&fresh.home, fs::Permissions::from_mode(0o700)).unwrap();
    let r = fresh.run(&["receipts", "verify", "--json"]);
    r.ok();
    assert_eq!(r.json()["verified"], 0);
    fresh.run(&["receipts", "list"]).ok();
    assert!(
        !fresh.file("audit.db").exists() && !fresh.file("audit-index.db").exists(),
        "reading made no log"
    );
}

/// `checkpoint --out` onto a full disk: an error that names the file it
/// was to write (not its temporary name) and says to free space, and
/// nothing left behind.
#[test]
fn a_checkpoint_onto_a_full_disk() {
    let env = home_with_profiles(2);
    let tiny = env.dir.path().join("tiny");
    fs::create_dir(&tiny).unwrap();
    let t = tiny.to_str().unwrap().to_string();
    sh(
        "mount",
        &["-t", "tmpfs", "-o", "size=64k", "craik-test-tiny", &t],
    )
    .expect("this test mounts a tiny tmpfs: it runs as root, with mount");
    let mut undo = Cleanup::default();
    let u = t.clone();
    undo.push(move || {
        let _ = sh("umount", &["-l", &u]);
    });
    let mut f = fs::File::create(tiny.join("filler")).unwrap();
    let chunk = vec![0u8; 4096];
    while f.write_all(&chunk).is_ok() {}
    drop(f);
    let out = tiny.join("cp.json");
    let r = env.run(&["receipts", "checkpoint", "--out", out.to_str().unwrap()]);
    r.code(1).error_with_hint("free some space");
    assert!(
        r.stderr
            .contains(&format!("{}: No space left on device", out.display()))
            && !r.stderr.contains(".tmp-"),
        "{}",
        r.stderr
    );
    let left: Vec<_> = fs::read_dir(&tiny)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["filler"], "nothing left behind");
    undo.run();
}

/// A secret store that will not open (a wrong password) names the key it
/// could not get and passes on the store's own hint.
#[test]
fn keys_behind_a_wrong_password() {
    let mut env = home_with_profiles(1);
    env.set("CRAIK_KEYRING_PASSWORD", "not-the-password");
    let r = env.run(&["receipts", "checkpoint"]);
    r.code(1)
        .error_with_hint("checkpoint signing key unavailable");
    assert!(
        r.stderr.contains("check CRAIK_KEYRING_PASSWORD"),
        "{}",
        r.stderr
    );
    let r = env.run_stdin(&["receipts", "hash", "--family", "openai"], Some("sk-x"));
    r.code(5).error_with_hint("audit key unavailable");
    assert!(
        r.stderr.contains("check CRAIK_KEYRING_PASSWORD"),
        "{}",
        r.stderr
    );
}

/// `checkpoint --out` never replaces what is not a regular file: a pipe,
/// a symlink, a directory (or, as root, a device such as /dev/null).
#[test]
fn a_checkpoint_never_replaces_what_is_not_a_file() {
    use std::os::unix::fs::FileTypeExt;
    let env = home_with_profiles(1);
    let d = env.dir.path();
    sh("mkfifo", &[d.join("pipe").to_str().unwrap()]).expect("mkfifo (coreutils)");
    std::os::unix::fs::symlink(d.join("elsewhere"), d.join("link")).unwrap();
    fs::create_dir(d.join("dir")).unwrap();
    for name in ["pipe", "link", "dir"] {
        let p = d.join(name);
        env.run(&["receipts", "checkpoint", "--out", p.to_str().unwrap()])
            .code(1)
            .error_with_hint("is not a regular file");
        let t = p.symlink_metadata().unwrap().file_type();
        assert!(
            t.is_fifo() || t.is_symlink() || t.is_dir(),
            "{name} was replaced"
        );
    }
    assert!(
        !d.join("elsewhere").exists(),
        "nothing written through the link"
    );
    // A regular file is replaced whole, as before.
    let f = d.join("cp.json");
    fs::write(&f, "old").unwrap();
    env.run(&["receipts", "checkpoint", "--out", f.to_str().unwrap()])
        .ok();
    assert!(fs::read_to_string(&f).unwrap().contains("\"signature\""));
}
