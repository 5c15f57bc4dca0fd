//! Tampering: every mutation of the log is reported by verify, the clear
//! cases by the first bad seq and what happened, in short logs and in
//! long ones verified in halves.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use craik::audit::chain::{GENESIS, receipt_hash};
use craik::audit::checkpoint::{self, Checkpoint};
use craik::audit::{AuditLog, NewReceipt, ReceiptKind, Status};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rusqlite::types::Value;
use rusqlite::{Connection, params};

use super::{
    COLUMNS, KINDS, build_log, copy_db, home_with_empty_log, insert_row, random_id, read_row,
    row_values, seed, set_row_values, settle, shift_seqs,
};
use crate::common::{Env, Run, hex_encode};

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
