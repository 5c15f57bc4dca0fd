//! The audit log: tamper detection, concurrent writers, crashes, failing
//! closed when the log cannot be written, index use, and the
//! `craik receipts` commands as a user sees them.
//!
//! Randomized tests print their seed; rerun one with `CRAIK_TEST_SEED=<n>`.
//!
//! This file holds the helpers shared by the topics, one file each.

mod checkpoints;
mod compact;
mod concurrency;
mod export;
mod faults;
mod index;
mod keys;
mod list;
mod migrations;
mod retention;
mod tamper;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::{SecondsFormat, Utc};
use craik::audit::chain::{GENESIS, receipt_hash};
use craik::audit::{AuditKey, AuditLog, NewReceipt, Operator, Receipt, ReceiptKind, Status};
use rand::Rng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rusqlite::types::Value;
use rusqlite::{Connection, params};

use crate::common::{Env, assert_schema, hex_encode};

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
        workload: None,
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

/// Rewrites the log at `db` as an agent would: `edit` changes receipt 1,
/// then every hash from it on is recomputed and the rows put back through
/// the `receipts` view, so the chain is consistent again and only a
/// checkpoint can tell.
pub(crate) fn rewrite_log(db: &Path, edit: impl FnOnce(&mut Receipt)) {
    let mut rows: Vec<Receipt> = {
        let log = AuditLog::open_path(db).unwrap();
        let n = log.tail().unwrap().unwrap().0;
        (1..=n).map(|s| log.get(&s.to_string()).unwrap()).collect()
    };
    edit(&mut rows[0]);
    let mut prev = rows[0].prev_hash.clone();
    for r in &mut rows {
        r.prev_hash = prev.clone();
        r.hash = receipt_hash(r);
        prev = r.hash.clone();
    }
    let c = Connection::open(db).unwrap();
    c.execute("DELETE FROM receipts", []).unwrap();
    for r in &rows {
        insert_row(&c, r).unwrap();
    }
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
// Shared by several topics: undo steps, homes, and the commands' fixture.

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

fn verified_count(env: &Env) -> i64 {
    let r = env.run(&["receipts", "verify", "--json"]);
    r.ok();
    let v = r.json();
    assert_eq!(v["ok"], true, "{v}");
    v["verified"].as_i64().unwrap()
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
