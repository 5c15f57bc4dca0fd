//! Group commit: many threads of one process append receipts through one
//! writer thread, which commits whatever has queued up in one transaction
//! (one fsync). Every caller still waits until its own receipt is durable
//! and gets the error if it is not.

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use super::{AuditError, AuditLog, NewReceipt, Receipt, Result};

type Reply = mpsc::SyncSender<Result<Receipt>>;

/// Most receipts committed in one transaction.
const MAX_BATCH: usize = 512;
/// How long the writer waits for more receipts once it has seen
/// concurrency.
const LINGER: Duration = Duration::from_micros(300);

/// A handle to the writer thread; clone it for each appending thread.
#[derive(Clone)]
pub struct GroupCommitter {
    tx: mpsc::Sender<(NewReceipt, Reply)>,
}

impl GroupCommitter {
    /// Moves `log` to a writer thread.
    pub fn start(mut log: AuditLog) -> GroupCommitter {
        let (tx, rx) = mpsc::channel::<(NewReceipt, Reply)>();
        thread::spawn(move || {
            let mut last_batch = 1;
            while let Ok(first) = rx.recv() {
                let mut batch = vec![first];
                // Under concurrency, linger briefly so the callers woken by
                // the previous commit can join this one; a lone caller
                // (the last batch had one receipt) never waits.
                let linger = if last_batch > 1 {
                    LINGER
                } else {
                    Duration::ZERO
                };
                let deadline = Instant::now() + linger;
                while batch.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(item) => batch.push(item),
                        Err(mpsc::TryRecvError::Disconnected) => break,
                        Err(mpsc::TryRecvError::Empty) => {
                            let now = Instant::now();
                            // Stop once as many as last time have joined.
                            if now >= deadline || batch.len() >= last_batch {
                                break;
                            }
                            match rx.recv_timeout(deadline - now) {
                                Ok(item) => batch.push(item),
                                Err(_) => break,
                            }
                        }
                    }
                }
                last_batch = batch.len();
                let (receipts, replies): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
                match log.append_batch(receipts) {
                    Ok(done) => {
                        for (r, reply) in done.into_iter().zip(replies) {
                            let _ = reply.send(Ok(r));
                        }
                    }
                    Err(e) => {
                        let msg = e.to_string();
                        for reply in replies {
                            let _ = reply.send(Err(AuditError::Unavailable {
                                path: log.path().to_path_buf(),
                                why: msg.clone(),
                            }));
                        }
                    }
                }
            }
        });
        GroupCommitter { tx }
    }

    /// Appends one receipt and waits until it is durable.
    pub fn append(&self, r: NewReceipt) -> Result<Receipt> {
        let (reply, wait) = mpsc::sync_channel(1);
        let gone = || AuditError::Unavailable {
            path: "audit.db".into(),
            why: "the audit writer thread stopped".into(),
        };
        self.tx.send((r, reply)).map_err(|_| gone())?;
        wait.recv().map_err(|_| gone())?
    }
}
