//! Concurrent writers and crashes, in child processes: the test binary
//! re-executes itself to run `append_worker`. And many openers of a log
//! that does not exist yet.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use craik::audit::{AuditLog, Filter, NewReceipt, ReceiptKind, Status};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rusqlite::Connection;

use super::seed;

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
            "receipts::concurrency::append_worker",
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
