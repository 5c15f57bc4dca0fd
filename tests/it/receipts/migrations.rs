//! Schema versions: a log from a newer craik is refused, an older one is
//! migrated on open.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use chrono::Utc;
use craik::audit::SCHEMA_VERSION;
use rusqlite::Connection;

use super::{blank, home_with_empty_log, raw_append, rfc3339, show_json, verified_count};

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
        .prepare(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'receipt_rows'",
        )
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    // Version 3 moved the lookup indexes to audit-index.db and kept the
    // approval gate's partial index; version 4 dropped the index on `id`;
    // version 6 moved the rows to `receipt_rows` (compact), the index with
    // them.
    assert_eq!(
        indexes,
        BTreeSet::from(["receipt_rows_approvals".to_string()])
    );
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

/// A schema-5 log (plain text rows) is converted to compact rows on open:
/// every receipt reads back as it was hashed, the chain verifies, and a row
/// damaged before the upgrade is still found where it was.
#[test]
fn a_schema_5_log_is_converted_to_compact_rows() {
    let sql: String = (1..=5)
        .map(|v| {
            let name = [
                "0001_receipts.sql",
                "0002_approval_index.sql",
                "0003_query_index.sql",
                "0004_no_id_index.sql",
                "0005_archives.sql",
            ][v - 1];
            fs::read_to_string(
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("migrations")
                    .join(name),
            )
            .unwrap()
        })
        .collect();
    for damaged in [false, true] {
        let env = home_with_empty_log();
        let db = env.file("audit.db");
        fs::remove_file(&db).unwrap();
        let old: Vec<_> = {
            let c = Connection::open(&db).unwrap();
            c.execute_batch(&sql).unwrap();
            c.execute_batch("PRAGMA user_version = 5").unwrap();
            (0..30)
                .map(|i| {
                    let mut r = blank(
                        if i % 2 == 0 {
                            "call.started"
                        } else {
                            "call.finished"
                        },
                        "ok",
                        &rfc3339(Utc::now() - chrono::Duration::minutes(60 - i)),
                    );
                    r.auth_profile_id = Some(format!("openai:p{}", i % 3));
                    r.details = format!(r#"{{"attempt":1,"path":"/v1/x","status":{}}}"#, 200 + i);
                    raw_append(&c, r)
                })
                .collect()
        };
        if damaged {
            let c = Connection::open(&db).unwrap();
            c.execute("UPDATE receipts SET kind = X'00ff10' WHERE seq = 20", [])
                .unwrap();
        }
        let r = env.run(&["receipts", "verify"]);
        assert!(r.stderr.contains("from schema 5 to"), "{}", r.stderr);
        if damaged {
            r.code(1);
            assert!(r.stdout.contains("DAMAGED at seq 20: modified"), "{r:?}");
            continue;
        }
        r.ok();
        assert!(r.stdout.contains("verified 30 receipts"), "{}", r.stdout);
        for o in &old {
            let shown = show_json(&env, &o.seq.to_string());
            assert_eq!(shown["hash"], o.hash);
            assert_eq!(shown["id"], o.id);
            assert_eq!(shown["created_at"], o.created_at);
            assert_eq!(
                shown["details"],
                serde_json::from_str::<serde_json::Value>(&o.details).unwrap()
            );
        }
        let c = Connection::open(&db).unwrap();
        let (blobs, templated, linked): (i64, i64, i64) = c
            .query_row(
                "SELECT sum(length(hash) = 32), sum(tmpl IS NOT NULL), sum(prev_hash IS NULL) FROM receipt_rows",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!((blobs, templated, linked), (30, 30, 29));
        let tables: i64 = c
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name = 'receipts_v5'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(tables, 0, "the old table is dropped");
        let free: i64 = c
            .query_row("PRAGMA freelist_count", [], |r| r.get(0))
            .unwrap();
        assert_eq!(free, 0, "the old table's pages are given back");
    }
}
