//! The proxy's group committer (`craik::audit::store::group`): every caller is
//! answered only once its receipt is durable, deferred receipts land on
//! their own, the chain stays contiguous under concurrency, and once the
//! WAL cannot be made durable nothing more is acknowledged.

use std::io::Read;
use std::time::{Duration, Instant};

use craik::audit::store::group::{DEFER, GroupCommitter};
use craik::audit::{AuditLog, NewReceipt, ReceiptKind, Status};
use rusqlite::Connection;

fn receipt(i: usize) -> NewReceipt {
    NewReceipt::new(
        if i.is_multiple_of(2) {
            ReceiptKind::CallStarted
        } else {
            ReceiptKind::CallFinished
        },
        Status::Ok,
    )
    .profile("openai:team", "keyring-ref", "openai")
    .run("run-group")
    .detail("n", i)
}

/// Rows as another process sees them (a fresh connection).
fn rows(db: &std::path::Path) -> Vec<(i64, String)> {
    let c = Connection::open(db).unwrap();
    let mut st = c
        .prepare("SELECT seq, details FROM receipts ORDER BY seq")
        .unwrap();
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn concurrent_callers_get_one_contiguous_chain() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    let gc = GroupCommitter::start(AuditLog::open_path(&db).unwrap()).unwrap();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let gc = gc.clone();
            std::thread::spawn(move || {
                let mut seqs = Vec::new();
                for i in 0..100 {
                    let n = t * 100 + i;
                    let r = if i % 3 == 0 {
                        gc.submit_deferred(receipt(n)).wait_blocking()
                    } else {
                        gc.append(receipt(n))
                    }
                    .expect("no error may reach a caller");
                    seqs.push(r.seq);
                }
                seqs
            })
        })
        .collect();
    let mut seqs: Vec<i64> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    seqs.sort();
    assert_eq!(seqs, (1..=800).collect::<Vec<_>>());
    drop(gc);
    let on_disk = rows(&db);
    assert_eq!(on_disk.len(), 800);
    let report = AuditLog::open_path(&db).unwrap().verify(&[]).unwrap();
    assert!(report.ok, "{report:?}");
    assert_eq!(report.verified, 800);
}

/// Tasks appending in a loop (`submit_looping`, as the benchmark's 16
/// writers do): each is answered with its own receipt, only once another
/// connection can read it, and the chain stays contiguous.
#[test]
fn looping_tasks_get_their_own_receipts_in_one_chain() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    let gc = GroupCommitter::start(AuditLog::open_path(&db).unwrap()).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let mut seqs: Vec<i64> = rt.block_on(async {
        let tasks: Vec<_> = (0..16)
            .map(|t| {
                let gc = gc.clone();
                let db = db.clone();
                tokio::spawn(async move {
                    let mut seqs = Vec::new();
                    for i in 0..40 {
                        let n = t * 40 + i;
                        let r = gc
                            .submit_looping(receipt(n))
                            .wait()
                            .await
                            .expect("no error may reach a caller");
                        let details: serde_json::Value = serde_json::from_str(&r.details).unwrap();
                        assert_eq!(details["n"], n, "answered with another's receipt");
                        if i % 10 == 0 {
                            let seen = rows(&db);
                            assert!(
                                seen.iter().any(|(seq, _)| *seq == r.seq),
                                "receipt {} acknowledged but not in the log",
                                r.seq
                            );
                        }
                        seqs.push(r.seq);
                    }
                    seqs
                })
            })
            .collect();
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        all
    });
    seqs.sort();
    assert_eq!(seqs, (1..=640).collect::<Vec<_>>());
    drop(gc);
    let report = AuditLog::open_path(&db).unwrap().verify(&[]).unwrap();
    assert!(report.ok, "{report:?}");
    assert_eq!(report.verified, 640);
}

#[test]
fn a_deferred_receipt_alone_lands_within_its_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    let gc = GroupCommitter::start(AuditLog::open_path(&db).unwrap()).unwrap();
    let t = Instant::now();
    let r = gc.submit_deferred(receipt(1)).wait_blocking().unwrap();
    let took = t.elapsed();
    assert_eq!(r.seq, 1);
    // It waited for company (none came), then was committed on its own.
    assert!(
        took >= DEFER,
        "answered after {took:?}, before the deadline"
    );
    assert!(took < Duration::from_secs(5), "answered after {took:?}");
    assert_eq!(rows(&db).len(), 1, "acknowledged but not in the log");
    // An urgent receipt does not wait for the deadline, and takes along a
    // deferred one queued before it.
    let deferred = gc.submit_deferred(receipt(2));
    let urgent = gc.append(receipt(3)).unwrap();
    let deferred = deferred.wait_blocking().unwrap();
    assert_eq!((deferred.seq, urgent.seq), (2, 3));
}

#[test]
fn receipts_queued_at_shutdown_still_land() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    let gc = GroupCommitter::start(AuditLog::open_path(&db).unwrap()).unwrap();
    let pending: Vec<_> = (0..20).map(|i| gc.submit_deferred(receipt(i))).collect();
    drop(gc);
    for p in pending {
        p.wait_blocking().expect("queued before shutdown");
    }
    assert_eq!(rows(&db).len(), 20);
}

#[test]
fn nothing_is_acknowledged_once_the_wal_cannot_be_synced() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    let gc = GroupCommitter::start(AuditLog::open_path(&db).unwrap()).unwrap();
    gc.append(receipt(0)).unwrap();
    // The WAL is unlinked under the writer: SQLite goes on writing to the
    // open file, but its durability can no longer be established.
    let wal = dir.path().join("audit.db-wal");
    std::fs::remove_file(&wal).unwrap();
    let err = gc.append(receipt(1)).unwrap_err();
    assert_eq!(err.exit_code(), 5, "{err}");
    assert!(err.to_string().contains("audit.db-wal"), "{err}");
    // Sticky: a later receipt is refused too, even with the file back.
    std::fs::write(&wal, b"").unwrap();
    let err = gc.append(receipt(2)).unwrap_err();
    assert_eq!(err.exit_code(), 5, "{err}");
    assert!(err.to_string().contains("an earlier fdatasync"), "{err}");
}

/// The committer's writer never touches the query index; its checkpointer
/// brings it up to date (here: when receipts stop coming).
#[test]
fn the_checkpointer_keeps_the_query_index_current() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    let index = dir.path().join("audit-index.db");
    let gc = GroupCommitter::start(AuditLog::open_path(&db).unwrap()).unwrap();
    for i in 0..100 {
        gc.append(receipt(i)).unwrap();
    }
    let upto = || -> i64 {
        Connection::open_with_flags(&index, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .ok()
            .and_then(|c| c.query_row("SELECT upto FROM state", [], |r| r.get(0)).ok())
            .unwrap_or(0)
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while upto() < 100 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(upto(), 100, "{} not brought up to date", index.display());
    drop(gc);
}

/// Under a steady stream of receipts the WAL is started over again and
/// again (so it is overwritten in place instead of growing), not only
/// once the stream pauses. SQLite counts the restarts in the WAL header's
/// checkpoint sequence number (bytes 12..16, big-endian). (20,000
/// receipts: compact rows fill the 512 frames a restart waits for only
/// every ~5,000 of them.)
#[test]
fn a_steady_stream_keeps_starting_the_wal_over() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    let wal = dir.path().join("audit.db-wal");
    let gc = GroupCommitter::start(AuditLog::open_path(&db).unwrap()).unwrap();
    let writers: Vec<_> = (0..8)
        .map(|t| {
            let gc = gc.clone();
            std::thread::spawn(move || {
                for i in 0..2_500 {
                    gc.append(receipt(t * 2_500 + i)).unwrap();
                }
            })
        })
        .collect();
    let mut restarts = Vec::new();
    let mut largest = 0;
    while writers.iter().any(|w| !w.is_finished()) {
        std::thread::sleep(Duration::from_millis(10));
        let mut header = [0u8; 16];
        if let Ok(mut f) = std::fs::File::open(&wal) {
            largest = largest.max(f.metadata().unwrap().len());
            if f.read_exact(&mut header).is_ok() {
                restarts.push(u32::from_be_bytes(header[12..16].try_into().unwrap()));
            }
        }
    }
    for w in writers {
        w.join().unwrap();
    }
    drop(gc);
    let most = restarts.iter().copied().max().unwrap_or(0);
    assert!(
        most >= 3,
        "the WAL was started over {most} times while 20,000 receipts streamed in \
         (largest WAL {largest} bytes; samples {restarts:?})"
    );
    let report = AuditLog::open_path(&db).unwrap().verify(&[]).unwrap();
    assert!(report.ok && report.verified == 20_000, "{report:?}");
}
