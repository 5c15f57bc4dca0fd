//! Compact rows (schema 6): what a receipt costs on disk, and the
//! `receipts` view that gives any SQLite reader (Debian's sqlite3 here)
//! the exact texts craik hashed, and takes its edits as edits.

use std::path::Path;
use std::process::Command;

use craik::audit::{AuditLog, NewReceipt, Operator, ReceiptKind, Status};
use rusqlite::Connection;

use crate::common::require_tool;

/// A proxied call's two receipts, shaped as `craik proxy` writes them.
fn call_pair(i: usize) -> [NewReceipt; 2] {
    let op = Operator {
        subject: "user-7".into(),
        issuer: "https://idp.example".into(),
        email: Some("dev7@example.com".into()),
        groups: vec!["devs".into()],
        identity_hash: format!("hmac-sha256:{}", "7e".repeat(32)),
        workload: None,
    };
    let member = format!("openai:team-{}", i % 4);
    let hash = format!("hmac-sha256:{:064x}", i % 4);
    let base = |kind| {
        NewReceipt::new(kind, Status::Ok)
            .profile(&member, "api-key", "openai")
            .identity(Some(hash.clone()))
            .operator(Some(op.clone()))
            .run("run_proxy_0123456789abcdef")
    };
    let started = base(ReceiptKind::CallStarted)
        .detail("method", "POST")
        .detail("path", "/v1/chat/completions")
        .detail("attempt", 1)
        .detail("model", "gpt-4o-mini");
    let finished = base(ReceiptKind::CallFinished)
        .detail("started", format!("rcpt_{:024x}", i))
        .detail("method", "POST")
        .detail("path", "/v1/chat/completions")
        .detail("model", "gpt-4o-mini")
        .detail("bytes_in", 180 + i % 50)
        .detail("attempt", 1)
        .detail("status", 200)
        .detail("bytes_out", 900 + i % 300)
        .detail("latency_ms", 3 + i % 7)
        .detail("ttfb_ms", 1 + i % 3);
    [started, finished]
}

fn log_of_calls(db: &Path, calls: usize) {
    let mut log = AuditLog::open_path(db).unwrap();
    let pairs: Vec<NewReceipt> = (0..calls).flat_map(call_pair).collect();
    // Commits of 16, as the proxy's group commit makes them under load.
    for batch in pairs.chunks(16) {
        log.append_batch(batch.to_vec()).unwrap();
    }
}

/// The budget is 300 bytes per receipt, log and query index
/// together; schema 5 took ~600 for the log alone.
#[test]
fn a_proxied_call_costs_under_200_bytes_a_receipt_in_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    let calls = 3_000;
    log_of_calls(&db, calls);
    let c = Connection::open(&db).unwrap();
    c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);").unwrap();
    drop(c);
    let per = std::fs::metadata(&db).unwrap().len() as f64 / (2 * calls) as f64;
    assert!(per < 200.0, "{per:.0} bytes per receipt in audit.db");
    // And every one reads back and verifies.
    let log = AuditLog::open_path(&db).unwrap();
    let report = log.verify(&[]).unwrap();
    assert!(
        report.ok && report.verified == (2 * calls) as i64,
        "{report:?}"
    );
}

fn sqlite3(db: &Path, sql: &str) -> String {
    require_tool("sqlite3", "apt-get install sqlite3");
    let out = Command::new("sqlite3").arg(db).arg(sql).output().unwrap();
    assert!(
        out.status.success(),
        "sqlite3 {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn sqlite3_reads_and_edits_the_receipts_through_the_view() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    log_of_calls(&db, 20);
    {
        // Details of every shape: nested, arrays, escapes, text that looks
        // like a separator, empty.
        let mut log = AuditLog::open_path(&db).unwrap();
        log.append(
            NewReceipt::new(ReceiptKind::Denial, Status::Denied)
                .reason("policy \"x\" said no")
                .detail(
                    "nested",
                    serde_json::json!({"a": [1, -2.5e3, true, null, "\u{1e}\u{1f}"], "b": {}}),
                )
                .detail("quote", "a \"b\" \\ c, d: {e} [f]")
                .detail("unicode", "été ✓"),
        )
        .unwrap();
        log.append(NewReceipt::new(ReceiptKind::Logout, Status::Ok))
            .unwrap();
    }
    let log = AuditLog::open_path(&db).unwrap();
    let n = 42;
    // Every column of every receipt, as sqlite3 (Debian's, older than the
    // SQLite craik is built with) reads it from the view: what craik shows.
    let cols = "seq, id, created_at, kind, run_id, capability, status, reason, policy_condition, auth_profile_id, auth_kind, auth_identity_hash, provider_family, pool_id, operator_subject, operator_issuer, operator_email, operator_groups, operator_identity_hash, details, prev_hash, hash";
    let json = sqlite3(
        &db,
        &format!(
            "SELECT json_group_array(json_array({cols})) FROM (SELECT * FROM receipts ORDER BY seq)"
        ),
    );
    let rows: Vec<Vec<serde_json::Value>> = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(rows.len(), n);
    for row in &rows {
        let seq = row[0].as_i64().unwrap();
        let r = log.get(&seq.to_string()).unwrap();
        let text = |v: &Option<String>| v.clone().map_or(serde_json::Value::Null, Into::into);
        let want: Vec<serde_json::Value> = vec![
            r.seq.into(),
            r.id.clone().into(),
            r.created_at.clone().into(),
            r.kind.clone().into(),
            text(&r.run_id),
            text(&r.capability),
            r.status.clone().into(),
            text(&r.reason),
            text(&r.policy_condition),
            text(&r.auth_profile_id),
            text(&r.auth_kind),
            text(&r.auth_identity_hash),
            text(&r.provider_family),
            text(&r.pool_id),
            text(&r.operator_subject),
            text(&r.operator_issuer),
            text(&r.operator_email),
            text(&r.operator_groups),
            text(&r.operator_identity_hash),
            r.details.clone().into(),
            r.prev_hash.clone().into(),
            r.hash.clone().into(),
        ];
        assert_eq!(row, &want, "receipt {seq}");
    }
    // Stored compact: ids and hashes as bytes, times as milliseconds, the
    // links left out but the first, the details under templates.
    let forms = sqlite3(
        &db,
        "SELECT count(*), sum(typeof(id) = 'blob'), sum(typeof(created_at) = 'integer'), sum(length(hash) = 32), sum(prev_hash IS NULL), sum(tmpl IS NOT NULL) FROM receipt_rows",
    );
    assert_eq!(
        forms.trim(),
        format!("{n}|{n}|{n}|{n}|{}|{}", n - 1, n),
        "{forms}"
    );
    assert_eq!(
        sqlite3(&db, "SELECT count(DISTINCT tmpl) FROM receipt_rows").trim(),
        "4",
        "the two call shapes, the denial, the logout's {{}}: each template once"
    );
    drop(log);

    // An edit through the view is an edit: verify names it.
    let env = super::home_with_empty_log();
    let home_db = env.file("audit.db");
    super::copy_db(&db, &home_db);
    env.run(&["receipts", "verify"]).ok();
    sqlite3(
        &home_db,
        "UPDATE receipts SET reason = 'nothing to see' WHERE seq = 7",
    );
    let r = env.run(&["receipts", "verify"]);
    r.code(1);
    assert!(r.stdout.contains("DAMAGED at seq 7: modified"), "{r:?}");
    // A deletion through the view leaves the next row's link as it was,
    // so verify says what happened (not that 11 was rewritten).
    super::copy_db(&db, &home_db);
    sqlite3(&home_db, "DELETE FROM receipts WHERE seq = 11");
    let r = env.run(&["receipts", "verify"]);
    r.code(1);
    assert!(r.stdout.contains("DAMAGED at seq 11: missing"), "{r:?}");
    // An insert through the view lands as plain text and reads back.
    super::copy_db(&db, &home_db);
    sqlite3(
        &home_db,
        "INSERT INTO receipts (seq, id, created_at, kind, status, details, prev_hash, hash) \
         SELECT 43, 'forged', '2026-01-01T00:00:00.000Z', 'approval', 'ok', '{}', hash, 'x' FROM receipts WHERE seq = 42",
    );
    let r = env.run(&["receipts", "verify"]);
    r.code(1);
    assert!(r.stdout.contains("DAMAGED at seq 43: modified"), "{r:?}");
    let shown = env.run(&["receipts", "show", "43", "--json"]);
    shown.ok();
    assert_eq!(shown.json()["id"], "forged");
}

/// A template's values with a NUL after a value: SQLite's text functions
/// stop at it, so the view would show `{"note":"safe"}` while the hash
/// covers `"real":"hidden"` too. craik reads only the form its encoder
/// writes, so verify names the row instead of calling it intact.
#[test]
fn a_row_the_view_would_show_otherwise_is_damage() {
    let env = super::home_with_profiles(3);
    let db = env.file("audit.db");
    let last = {
        let log = AuditLog::open_path(&db).unwrap();
        let n = log.tail().unwrap().unwrap().0;
        log.get(&n.to_string()).unwrap()
    };
    let mut forged = last.clone();
    forged.seq = last.seq + 1;
    forged.prev_hash = last.hash.clone();
    forged.details = "{\"note\":\"safe\"\0,\"real\":\"hidden\"}".into();
    forged.hash = craik::audit::chain::receipt_hash(&forged);
    let c = Connection::open(&db).unwrap();
    c.execute(
        "INSERT INTO atoms (s) VALUES ('{\"note\":' || char(30) || '}')",
        [],
    )
    .unwrap();
    let tmpl = c.last_insert_rowid();
    c.execute(
        "INSERT INTO receipt_rows SELECT seq + 1, id, created_at, kind, run_id, capability, status, reason, policy_condition, auth_profile_id, auth_kind, auth_identity_hash, provider_family, pool_id, operator_subject, operator_issuer, operator_email, operator_groups, operator_identity_hash, ?1, ?2, NULL, ?3 FROM receipt_rows WHERE seq = ?4",
        rusqlite::params![tmpl, "\"safe\"\0,\"real\":\"hidden\"", forged.hash, last.seq],
    )
    .unwrap();
    drop(c);
    let r = env.run(&["receipts", "verify"]);
    r.code(1);
    assert!(
        r.stdout
            .contains(&format!("DAMAGED at seq {}: modified", forged.seq)),
        "{r:?}"
    );
    let shown = env.run(&["receipts", "show", &forged.seq.to_string(), "--json"]);
    assert_ne!(shown.code, 0, "{shown:?}");
    assert!(!shown.stdout.contains("safe"), "{shown:?}");
}
