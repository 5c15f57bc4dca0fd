//! Retention: `receipts archive` copies the oldest receipts to a file with
//! a signed record of the range, `receipts prune` deletes them from the log
//! once the file checks out, and `verify` goes on checking what remains,
//! and the archives against it.

use std::fs;

use rusqlite::Connection;

use super::{home_with_profiles, list, show_json};

fn size_of_log(env: &crate::common::Env) -> u64 {
    ["audit.db", "audit.db-wal"]
        .iter()
        .map(|f| fs::metadata(env.file(f)).map_or(0, |m| m.len()))
        .sum()
}

#[test]
fn archive_prune_and_verify_what_remains_against_the_archive() {
    let env = home_with_profiles(300);
    let dir = env.dir.path();
    let a1 = dir.join("archive-1.db");
    let a1_s = a1.to_str().unwrap();
    let before = size_of_log(&env);
    let hash_200 = show_json(&env, "200")["hash"].as_str().unwrap().to_string();
    let external = dir.join("cp-300.json");
    env.run(&[
        "receipts",
        "checkpoint",
        "--out",
        external.to_str().unwrap(),
    ])
    .ok();

    // The last receipt always stays; seq 0 or one archived is refused.
    let r = env.run(&["receipts", "archive", "--through", "300", "--out", a1_s]);
    r.code(1);
    assert!(r.stderr.contains("the last receipt stays"), "{}", r.stderr);
    assert!(!a1.exists(), "nothing written on refusal");
    let r = env.run(&["receipts", "archive", "--out", a1_s]);
    r.code(2);

    // Archive 1..=200: the file holds them, with the signed record; the
    // log is unchanged (plus the archive's own receipt).
    let r = env.run(&[
        "receipts",
        "archive",
        "--through",
        "200",
        "--out",
        a1_s,
        "--json",
    ]);
    r.ok();
    let v = r.json();
    assert_eq!(
        (v["first_seq"].as_i64(), v["last_seq"].as_i64()),
        (Some(1), Some(200))
    );
    assert_eq!(v["last_hash"], hash_200.as_str());
    let mode = fs::metadata(&a1).unwrap().permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o600
    );
    let c = Connection::open(&a1).unwrap();
    let n: i64 = c
        .query_row("SELECT count(*) FROM receipts", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 200);
    drop(c);
    assert_eq!(list(&env, &["--kind", "receipts_archived"]).len(), 1);
    // Never written over.
    let r = env.run(&["receipts", "archive", "--through", "100", "--out", a1_s]);
    r.code(1);
    assert!(r.stderr.contains("exists already"), "{}", r.stderr);

    // A doctored copy is refused by prune, and the log keeps everything.
    let bad = dir.join("doctored.db");
    fs::copy(&a1, &bad).unwrap();
    Connection::open(&bad)
        .unwrap()
        .execute(
            "UPDATE receipts SET reason = 'nothing to see' WHERE seq = 150",
            [],
        )
        .unwrap();
    let r = env.run(&["receipts", "prune", "--archive", bad.to_str().unwrap()]);
    r.code(1);
    assert!(r.stderr.contains("receipt 150 was changed"), "{}", r.stderr);
    assert_eq!(show_json(&env, "1")["seq"], 1, "nothing pruned");

    // Prune: the log loses 1..=200, keeps the record, and shrinks.
    let r = env.run(&["receipts", "prune", "--archive", a1_s]);
    r.ok();
    assert!(
        r.stdout.contains("pruned receipts 1 to 200"),
        "{}",
        r.stdout
    );
    let after = size_of_log(&env);
    assert!(after < before, "the log shrank: {before} -> {after} bytes");
    let r = env.run(&["receipts", "show", "150"]);
    r.code(1);
    let seqs = list(&env, &["--limit", "1000"]);
    assert_eq!(seqs.iter().min(), Some(&201), "{seqs:?}");
    assert_eq!(list(&env, &["--kind", "receipts_pruned"]).len(), 1);
    let stats = env.run(&["receipts", "stats", "--json"]);
    stats.ok();
    assert_eq!(stats.json()["total"], seqs.len() as i64);

    // Verify: the rest of the chain, from the record's hash; with the
    // archive, the archive too; the checkpoint of seq 300 still holds.
    let r = env.run(&["receipts", "verify", "--json"]);
    r.ok();
    let v = r.json();
    assert_eq!(v["archived_through"], 200);
    assert_eq!(v["verified"].as_i64(), Some(seqs.len() as i64));
    let r = env.run(&[
        "receipts",
        "verify",
        "--archive",
        a1_s,
        "--checkpoint",
        external.to_str().unwrap(),
    ]);
    r.ok();
    assert!(
        r.stdout
            .contains("receipts 1 to 200 archived and pruned, 1 archive file(s) checked"),
        "{}",
        r.stdout
    );
    let r = env.run(&["receipts", "verify", "--archive", bad.to_str().unwrap()]);
    r.code(1);

    // New receipts chain on; a second archive follows the first.
    env.run(&["auth", "add", "openai:later", "--kind=api-key"])
        .ok();
    let a2 = dir.join("archive-2.db");
    let a2_s = a2.to_str().unwrap();
    env.run(&["receipts", "archive", "--through", "250", "--out", a2_s])
        .ok();
    // The first archive again: its range is pruned already.
    let r = env.run(&["receipts", "prune", "--archive", a1_s]);
    r.code(1);
    env.run(&["receipts", "prune", "--archive", a2_s]).ok();
    let r = env.run(&["receipts", "verify", "--archive", a1_s, "--archive", a2_s]);
    r.ok();
    assert!(
        r.stdout.contains("receipts 1 to 250 archived"),
        "{}",
        r.stdout
    );

    // A checkpoint kept elsewhere that names a receipt since pruned: only
    // the archive holding it can check it, and verify says so until given.
    let a3 = dir.join("archive-3.db");
    let a3_s = a3.to_str().unwrap();
    env.run(&["receipts", "archive", "--through", "301", "--out", a3_s])
        .ok();
    env.run(&["receipts", "prune", "--archive", a3_s]).ok();
    let cp_s = external.to_str().unwrap();
    let r = env.run(&["receipts", "verify", "--checkpoint", cp_s]);
    r.ok();
    assert!(
        r.stderr
            .contains("names receipt 300, which was archived and pruned"),
        "{}",
        r.stderr
    );
    let r = env.run(&[
        "receipts",
        "verify",
        "--checkpoint",
        cp_s,
        "--archive",
        a1_s,
        "--archive",
        a2_s,
        "--archive",
        a3_s,
    ]);
    r.ok();
    assert!(!r.stderr.contains("archived and pruned"), "{}", r.stderr);
    assert!(
        r.stdout.contains("receipts 1 to 301 archived"),
        "{}",
        r.stdout
    );

    // What an agent with write access to the home could try, and what
    // verify then says.
    let db = env.file("audit.db");
    let saved = fs::read(&db).unwrap();
    let tamper = |sql: &str, what: &str| {
        fs::write(&db, &saved).unwrap();
        let _ = fs::remove_file(env.file("audit.db-wal"));
        let _ = fs::remove_file(env.file("audit.db-shm"));
        Connection::open(&db).unwrap().execute_batch(sql).unwrap();
        let r = env.run(&["receipts", "verify", "--json"]);
        r.code(1);
        let v = r.json();
        assert_eq!(v["ok"], false, "{sql}: {v}");
        assert_eq!(v["damage"]["what"], what, "{sql}: {v}");
    };
    // Cut more than was archived, claiming it was.
    tamper(
        "DELETE FROM receipts WHERE seq <= 304; UPDATE archives SET last_seq = 304, receipts = 9 WHERE last_seq = 301",
        "archived",
    );
    // Drop the record of a pruned range.
    tamper("DELETE FROM archives WHERE last_seq = 301", "missing");
    // Forge a record in the home's name without its key.
    tamper(
        "UPDATE archives SET archived_at = '2020-01-01T00:00:00.000Z' WHERE last_seq = 200",
        "archived",
    );
    // Plant a record of a range never archived, chaining on, and delete
    // the receipts it claims. Verify says so; and neither a new checkpoint
    // nor an archive is signed over it (before, `receipts checkpoint`
    // would have vouched for the cut log, and the audit page called it
    // verified).
    let plant = "INSERT INTO archives (first_seq, last_seq, prev_hash, last_hash, receipts, archived_at, public_key, signature) \
         SELECT 302, t.seq - 3, a.last_hash, (SELECT hash FROM receipts WHERE seq = t.seq - 3), t.seq - 304, '2026-01-01T00:00:00.000Z', a.public_key, a.signature \
         FROM archives a, (SELECT max(seq) AS seq FROM receipts) t WHERE a.last_seq = 301; \
         DELETE FROM receipts WHERE seq <= (SELECT max(seq) - 3 FROM receipts);";
    tamper(plant, "archived");
    let r = env.run(&[
        "receipts",
        "checkpoint",
        "--out",
        dir.join("cp-after.json").to_str().unwrap(),
    ]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("craik will not sign it"), "{r:?}");
    assert!(!dir.join("cp-after.json").exists());
    let tail: i64 = Connection::open(&db)
        .unwrap()
        .query_row("SELECT max(seq) FROM receipts", [], |r| r.get(0))
        .unwrap();
    let through = (tail - 1).to_string();
    let r = env.run(&[
        "receipts",
        "archive",
        "--through",
        &through,
        "--out",
        dir.join("archive-4.db").to_str().unwrap(),
    ]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("craik will not archive it"), "{r:?}");
}

/// A log rewritten with every hash after the edit recomputed is a chain
/// again: only the automatic checkpoint shows the rewrite. Archiving it
/// (and then pruning the rewritten range) or signing a fresh checkpoint of
/// it would put the rewrite beyond verify's reach, so both refuse.
#[test]
fn a_rewritten_log_is_neither_archived_nor_checkpointed() {
    let env = home_with_profiles(12);
    super::rewrite_log(&env.file("audit.db"), |r| {
        r.auth_profile_id = Some("openai:someone-else".into())
    });
    let _ = fs::remove_file(env.file("audit-index.db"));
    let r = env.run(&["receipts", "verify"]);
    r.code(1);
    assert!(
        r.stdout.contains("no longer has the hash that checkpoint"),
        "{r:?}"
    );
    let out = env.dir.path().join("rewritten.db");
    let r = env.run(&[
        "receipts",
        "archive",
        "--through",
        "5",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("craik will not archive it"), "{r:?}");
    assert!(!out.exists());
    let cp = env.dir.path().join("cp.json");
    let r = env.run(&["receipts", "checkpoint", "--out", cp.to_str().unwrap()]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("craik will not sign it"), "{r:?}");
    // And verify still says so.
    env.run(&["receipts", "verify"]).code(1);
}
