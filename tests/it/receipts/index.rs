//! The query index: queries search indexes, the index is derived from
//! the log and never trusted alone, its catch-up is announced, doctor
//! reports it, and verify warns when it remembers more than the log holds.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use chrono::Utc;
use craik::audit::{AuditKey, AuditLog, Filter, ReceiptKind};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rusqlite::{Connection, params};

use super::{build_log, home_with_empty_log, home_with_profiles, operators};
use crate::common::Env;

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
            "run and kind",
            Filter {
                run: Some("run-3".into()),
                kind: Some("call.finished".into()),
                ..f.clone()
            },
            false,
        ),
        (
            "pool",
            Filter {
                pool: Some("team".into()),
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
        // With a run (or a pool), that index: the kind's would walk every
        // receipt of the kind.
        let wrong = (filter.run.is_some() && !plan.iter().any(|l| l.contains("entries_by_run")))
            || (filter.pool.is_some() && !plan.iter().any(|l| l.contains("entries_by_pool")));
        // Sorting every match before the first page: only a profile
        // pattern (several profiles) may, when it does not walk.
        let sorts = plan.iter().any(|l| l.contains("USE TEMP B-TREE")) && !name.contains("glob");
        if scan || !search || !read_back || !tail || (*time && !by_created) || wrong || sorts {
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
                    .any(|l| l.starts_with("SEARCH r USING INDEX receipt_rows_approvals")),
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
        "UPDATE entries SET operator = (SELECT operator FROM entries WHERE seq = ?1) WHERE seq = ?2",
        params![want[0], other],
    )
    .unwrap();
    c.execute(
        "UPDATE entries SET operator = NULL WHERE seq = ?1",
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

/// A profile pattern that matches much of the log is found by walking the
/// index along seq (craik counts the matches first); one that matches
/// little, through the profile index. Both give what the pattern selects
/// from the whole log, newest (or oldest) first.
#[test]
fn a_pattern_page_is_the_same_walked_or_searched() {
    let mut rng = StdRng::seed_from_u64(11);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("w.db");
    build_log(&db, 2_000, &mut rng);
    let log = AuditLog::open_path(&db).unwrap();
    log.refresh_index().unwrap();
    let all = log.list(&Filter::default()).unwrap();
    for pattern in ["openai:*", "**", "*:ci", "anthropic:?*", "nobody:*"] {
        let compiled = craik::pattern::compile(pattern).unwrap();
        let matching: Vec<i64> = all
            .iter()
            .filter(|r| {
                r.auth_profile_id
                    .as_deref()
                    .is_some_and(|p| compiled.is_match(p))
            })
            .map(|r| r.seq)
            .collect();
        for (limit, ascending) in [(5, false), (5, true), (100, false), (1, true)] {
            let got: Vec<i64> = log
                .list(&Filter {
                    profile: Some(pattern.into()),
                    limit: Some(limit),
                    ascending,
                    ..Default::default()
                })
                .unwrap()
                .iter()
                .map(|r| r.seq)
                .collect();
            let mut want = matching.clone();
            if ascending {
                want.reverse();
            }
            want.truncate(limit);
            assert_eq!(got, want, "{pattern} limit {limit} ascending {ascending}");
        }
    }
}
