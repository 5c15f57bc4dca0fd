//! The audit log, measured side by side with raw batched SQLite inserts of
//! the same rows on the same machine.
//!
//! Run: `cargo bench --bench receipts` (builds a 1,000,000-receipt log
//! under target/bench-data the first time; later runs reuse it).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use craik::audit::store::group::GroupCommitter;
use craik::audit::{AuditKey, AuditLog, Filter, NewReceipt, Operator, ReceiptKind, Status};

/// A proxied call's receipt (started on even `i`, finished on odd).
fn call(
    key: &AuditKey,
    i: usize,
    subject: &str,
    profile: &str,
    key_text: &str,
    run: &str,
) -> NewReceipt {
    let kind = if i.is_multiple_of(2) {
        ReceiptKind::CallStarted
    } else {
        ReceiptKind::CallFinished
    };
    NewReceipt::new(kind, Status::Ok)
        .profile(profile, "keyring-ref", "openai")
        .identity(Some(key.credential_material("openai", key_text)))
        .run(run)
        .operator(Some(Operator {
            identity_hash: key.operator("https://idp.example.com", subject),
            email: Some(format!("{subject}@example.com")),
            subject: subject.into(),
            issuer: "https://idp.example.com".into(),
            groups: vec!["devs".into()],
            workload: None,
        }))
        .detail("method", "POST")
        .detail("path", "/v1/chat/completions")
        .detail("status", 200)
        .detail("latency_ms", 123)
}

/// The mix of the 1,000,000-receipt log: 50 operators, 20 profiles, a new
/// run every two receipts.
fn sample(key: &AuditKey, i: usize) -> NewReceipt {
    call(
        key,
        i,
        &format!("user{}", i % 50),
        &format!("openai:p{}", i % 20),
        &format!("sk-{}", i % 20),
        &format!("run_{}", i / 2),
    )
}

/// A receipt of one `craik proxy`: one operator, one run, a pool of four.
fn proxy_sample(key: &AuditKey, i: usize) -> NewReceipt {
    let member = format!("openai:team-{}", i % 4);
    call(key, i, "user7", &member, &member, "run_proxy_bench")
}

fn fresh(dir: &Path, name: &str) -> AuditLog {
    let p = dir.join(name);
    let _ = std::fs::remove_file(&p);
    AuditLog::open_path(&p).unwrap()
}

fn raw_reference(dir: &Path, key: &AuditKey, n: usize) -> f64 {
    // The same rows, inserted by plain SQL in one transaction: no chain,
    // no hashing, same table and indexes, same pragmas.
    let log = fresh(dir, "raw.db");
    drop(log);
    let conn = rusqlite::Connection::open(dir.join("raw.db")).unwrap();
    conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;")
        .unwrap();
    let start = Instant::now();
    let tx = conn.unchecked_transaction().unwrap();
    {
        // Compact rows as craik stores them (schema 6): texts as the ids
        // of atoms, id and hash as bytes, the time as milliseconds (the
        // details whole, as text).
        let mut st = tx.prepare("INSERT INTO receipt_rows (seq,id,created_at,kind,run_id,status,auth_profile_id,auth_kind,auth_identity_hash,provider_family,operator_subject,operator_issuer,operator_email,operator_groups,operator_identity_hash,tmpl,details,prev_hash,hash) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,?19)").unwrap();
        for i in 0..n {
            let r = sample(key, i);
            let details = serde_json::to_string(&r.details).unwrap();
            let atom = |s: &str| (s.len() % 200) as i64 + 3;
            st.execute(rusqlite::params![
                i as i64 + 1,
                vec![0u8; 12],
                1_795_305_600_000i64,
                atom(r.kind.as_str()),
                r.run_id.as_deref().map(atom),
                atom(r.status.as_str()),
                r.auth_profile_id.as_deref().map(atom),
                r.auth_kind.as_deref().map(atom),
                r.auth_identity_hash.as_deref().map(atom),
                r.provider_family.as_deref().map(atom),
                10,
                11,
                12,
                13,
                14,
                15,
                details,
                None::<i64>,
                vec![0u8; 32],
            ])
            .unwrap();
        }
    }
    tx.commit().unwrap();
    n as f64 / start.elapsed().as_secs_f64()
}

/// Drops a log's pages (and its WAL's) from the page cache, so that the
/// next read comes from the disk: no root needed, unlike drop_caches.
/// Only with the log closed: closing a descriptor of the file would drop
/// the POSIX locks an open connection holds on it.
#[cfg(target_os = "linux")]
fn evict(db: &Path) -> bool {
    for suffix in ["", "-wal"] {
        if let Ok(f) = std::fs::File::open(format!("{}{suffix}", db.display())) {
            // Only clean pages can be dropped.
            f.sync_all().unwrap();
            rustix::fs::fadvise(&f, 0, None, rustix::fs::Advice::DontNeed).unwrap();
        }
    }
    true
}

#[cfg(not(target_os = "linux"))]
fn evict(_db: &Path) -> bool {
    false
}

/// The disk's own cost of what each group commit waits for: six WAL-sized
/// frames (a 24-byte header and a 4 KiB page each; a commit of 16 receipts
/// writes about 5.75) written in place into a file allocated beforehand,
/// then `fdatasync`, 2,000 times: back to back, and with 600 µs between
/// syncs, about the part of a 16-writer cycle spent away from the disk
/// (this disk is slower after a pause). The 16 writers' figures are only
/// comparable between runs whose references are alike.
fn disk_reference(dir: &Path, when: &str) {
    use std::os::unix::fs::FileExt;
    const FRAME: u64 = 24 + 4096;
    const FRAMES: u64 = 2_048;
    let path = dir.join("fdatasync-reference");
    let f = std::fs::File::create(&path).unwrap();
    f.write_all_at(&vec![0u8; (FRAMES * FRAME) as usize], 0)
        .unwrap();
    f.sync_all().unwrap();
    let mut frame = 0;
    let mut run = |pause: Duration| {
        let mut times = Vec::with_capacity(2_000);
        for _ in 0..2_000 {
            for _ in 0..6 {
                let at = 32 + frame * FRAME;
                f.write_all_at(&[7u8; 24], at).unwrap();
                f.write_all_at(&[9u8; 4096], at + 24).unwrap();
                frame = (frame + 1) % (FRAMES - 1);
            }
            let start = Instant::now();
            f.sync_data().unwrap();
            times.push(start.elapsed());
            std::thread::sleep(pause);
        }
        let mean = times.iter().sum::<Duration>() / times.len() as u32;
        format!(
            "p50 {} µs, mean {} µs",
            median(times).as_micros(),
            mean.as_micros()
        )
    };
    let (back_to_back, paused) = (run(Duration::ZERO), run(Duration::from_micros(600)));
    drop(f);
    std::fs::remove_file(&path).unwrap();
    println!(
        "| reference, {when}: 6 WAL frames written in place + fdatasync (2,000) | back to back {back_to_back}; 600 µs apart {paused} | - |"
    );
}

#[derive(Clone, Copy, Debug)]
enum Writers {
    /// Threads in [`GroupCommitter::append`].
    Threads,
    /// Tokio tasks awaiting [`GroupCommitter::submit_looping`].
    Tasks,
}

/// 16 writers appending `per` receipts each to a fresh log at `db`, each
/// waiting for its receipt to be durable before the next; receipts/s.
fn sixteen_writers(
    db: &Path,
    key: &Arc<AuditKey>,
    sample: fn(&AuditKey, usize) -> NewReceipt,
    writers: Writers,
    per: usize,
) -> f64 {
    let _ = std::fs::remove_file(db);
    let gc = GroupCommitter::start(AuditLog::open_path(db).unwrap()).unwrap();
    let start = Instant::now();
    match writers {
        Writers::Threads => {
            let threads: Vec<_> = (0..16)
                .map(|t| {
                    let gc = gc.clone();
                    let key = key.clone();
                    std::thread::spawn(move || {
                        for i in 0..per {
                            gc.append(sample(&key, t * per + i)).unwrap();
                        }
                    })
                })
                .collect();
            for t in threads {
                t.join().unwrap();
            }
        }
        Writers::Tasks => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .build()
                .unwrap();
            rt.block_on(async {
                let tasks: Vec<_> = (0..16)
                    .map(|t| {
                        let gc = gc.clone();
                        let key = key.clone();
                        tokio::spawn(async move {
                            for i in 0..per {
                                let r = sample(&key, t * per + i);
                                gc.submit_looping(r).wait().await.unwrap();
                            }
                        })
                    })
                    .collect();
                for t in tasks {
                    t.await.unwrap();
                }
            });
        }
    }
    let rate = (16 * per) as f64 / start.elapsed().as_secs_f64();
    drop(gc);
    rate
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let key = AuditKey::from_bytes([42; 32]);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    println!("| measurement | result | target |");
    println!("| --- | --- | --- |");

    let raw = raw_reference(dir, &key, 100_000);
    println!(
        "| reference: raw batched SQLite inserts, 100,000 rows, one transaction | {raw:.0} rows/s | - |"
    );

    // One writer, each receipt durable before the next.
    let mut log = fresh(dir, "single.db");
    let n = 2_000;
    let start = Instant::now();
    for i in 0..n {
        log.append(sample(&key, i)).unwrap();
    }
    let single = n as f64 / start.elapsed().as_secs_f64();
    println!(
        "| one writer, each receipt durable before the next ({n}) | {single:.0} receipts/s | - |"
    );

    // 16 concurrent writers in one process with group commit: the
    // receipts of one proxy (one operator session, one run, a pool of four
    // members), and the same with the mix of the 1,000,000-receipt log
    // (50 operators, 20 profiles, a new run every two receipts), which
    // spreads every commit over many more index pages. Each both as 16
    // threads and as 16 tasks on a 2-thread tokio runtime (as in `craik
    // proxy`), one after the other.
    let key = Arc::new(key);
    disk_reference(dir, "before the 16 writers");
    for (idx, (what, sample)) in [
        (
            "one proxy's receipts",
            proxy_sample as fn(&AuditKey, usize) -> NewReceipt,
        ),
        ("the mixed receipts of the 1,000,000 log", sample),
    ]
    .into_iter()
    .enumerate()
    {
        for writers in [Writers::Threads, Writers::Tasks] {
            let name = format!("group-{idx}-{writers:?}.db");
            let per = 4_000;
            let group = sixteen_writers(&dir.join(&name), &key, sample, writers, per);
            println!(
                "| 16 writer {}, group commit, each waits for durability, {what} ({}) | {group:.0} receipts/s | >= 20,000/s: {} |",
                match writers {
                    Writers::Threads => "threads",
                    Writers::Tasks => "tasks (2 runtime threads)",
                },
                16 * per,
                if group >= 20_000.0 { "met" } else { "NOT met" }
            );
            let check = AuditLog::open_path(&dir.join(&name))
                .unwrap()
                .verify(&[])
                .unwrap();
            assert!(check.ok && check.verified == (16 * per) as i64);
        }
    }
    disk_reference(dir, "after them");

    // A 1,000,000-receipt log, kept between runs.
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-data");
    std::fs::create_dir_all(&data).unwrap();
    let big = data.join("receipts-1m.db");
    let mut log = AuditLog::open_path(&big).unwrap();
    let have = log.tail().unwrap().map(|t| t.0).unwrap_or(0) as usize;
    if have < 1_000_000 {
        let start = Instant::now();
        let mut i = have;
        while i < 1_000_000 {
            let batch: Vec<_> = (i..(i + 10_000).min(1_000_000))
                .map(|j| sample(&key, j))
                .collect();
            i += batch.len();
            log.append_batch(batch).unwrap();
        }
        println!(
            "| (built the 1,000,000-receipt log in batches of 10,000) | {:.1} s | - |",
            start.elapsed().as_secs_f64()
        );
    }
    // First with the log's pages dropped from the page cache (as for an
    // auditor checking a log written days ago), then with them cached.
    for cached in [false, true] {
        if !cached {
            drop(log);
            let evicted = evict(&big);
            log = AuditLog::open_path(&big).unwrap();
            if !evicted {
                println!(
                    "| verify 1,000,000 receipts, log not in the page cache | not measured (evicting needs Linux) | < 3 s |"
                );
                continue;
            }
        }
        let start = Instant::now();
        let report = log.verify(&[]).unwrap();
        let v = start.elapsed();
        assert!(report.ok && report.verified == 1_000_000, "{report:?}");
        println!(
            "| verify 1,000,000 receipts, log {} the page cache | {:.2} s | < 3 s: {} |",
            if cached { "in" } else { "not in" },
            v.as_secs_f64(),
            if v < Duration::from_secs(3) {
                "met"
            } else {
                "NOT met"
            }
        );
    }

    // The query index is derived from the log (audit-index.db); appends
    // keep it current, a migrated or copied log gets it on first query.
    let start = Instant::now();
    log.refresh_index().unwrap();
    println!(
        "| bring the query index up to date (nothing to do when it is) | {:.2} s | - |",
        start.elapsed().as_secs_f64()
    );
    drop(log);
    let start = Instant::now();
    let index = craik::audit::store::index::index_path(&big);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", index.display()));
    }
    let log = AuditLog::open_path(&big).unwrap();
    log.refresh_index().unwrap();
    println!(
        "| build the query index of 1,000,000 receipts from scratch | {:.2} s | - |",
        start.elapsed().as_secs_f64()
    );

    let last = log.tail().unwrap().unwrap();
    let since =
        craik::audit::AuditLog::parse_created(&last.2).unwrap() - chrono::Duration::minutes(1);
    let queries: Vec<(&str, Filter)> = vec![
        (
            "by operator (email)",
            Filter {
                operator: Some("user7@example.com".into()),
                limit: Some(50),
                ..Default::default()
            },
        ),
        (
            "by operator (subject)",
            Filter {
                operator: Some("user7".into()),
                limit: Some(50),
                ..Default::default()
            },
        ),
        (
            "by identity hash",
            Filter {
                identity_hash: Some(key.credential_material("openai", "sk-3")),
                limit: Some(50),
                ..Default::default()
            },
        ),
        (
            "by time range (last minute)",
            Filter {
                since: Some(since),
                limit: Some(50),
                ..Default::default()
            },
        ),
    ];
    for (name, f) in queries {
        let runs: Vec<Duration> = (0..21)
            .map(|_| {
                let s = Instant::now();
                let rows = log.list(&f).unwrap();
                assert!(!rows.is_empty());
                s.elapsed()
            })
            .collect();
        let m = median(runs);
        println!(
            "| `receipts list` {name}, first page of 50, 1,000,000 receipts (median of 21) | {:.3} ms | < 10 ms: {} |",
            m.as_secs_f64() * 1000.0,
            if m < Duration::from_millis(10) {
                "met"
            } else {
                "NOT met"
            }
        );
    }
}
