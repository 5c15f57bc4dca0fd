//! Group commit: many callers in one process append receipts through one
//! writer, and every caller still waits until its own receipt is durable
//! (and gets the error if it is not).
//!
//! Three threads share the work, so that writing one batch overlaps making
//! the previous one durable:
//!
//! - the **writer** owns the connection and commits whatever has queued up
//!   in one transaction. Its connection runs `synchronous=NORMAL`, so a
//!   commit writes the WAL frames without waiting for the disk;
//! - the **syncer** then makes the WAL durable with one `fdatasync` for every
//!   batch committed since its last one, and only then answers the callers
//!   of those batches. A receipt is acknowledged only after an `fdatasync`
//!   of the WAL that began after its commit had written its frames, which is
//!   the guarantee `synchronous=FULL` gives. If an `fdatasync` fails, the
//!   committer refuses every later receipt (after a failed `fdatasync` the
//!   kernel's page cache can no longer be trusted to reach the disk);
//! - the **checkpointer** copies the WAL back into `audit.db` (a `PASSIVE`
//!   checkpoint on its own connection) once [`CHECKPOINT_COMMITS`] commits
//!   have gathered or receipts pause (it looks every 50 ms), so the bulk
//!   of checkpointing leaves the path of a call. The writer
//!   keeps SQLite's own automatic checkpoint as a backstop at 10,000
//!   frames. The same thread brings the query index ([`super::index`]) up
//!   to date in bulk, so the writer never does.
//!
//! After a checkpointer round that found 2 MiB or more in the WAL, the
//! writer copies the few frames committed since then itself, between two
//! commits, so that its next commit starts the WAL over from the
//! beginning: SQLite restarts the WAL only when every frame is in
//! `audit.db`, which a checkpoint running beside a steady stream of
//! commits never achieves alone. Without it the WAL grew until the
//! 10,000-frame backstop (40 MB within about a second of the 16-writer
//! benchmark), and each `fdatasync` on the way extended the file, which
//! also commits the filesystem's journal; a WAL started over is
//! overwritten in place.
//!
//! Callers that append in a loop (threads in [`GroupCommitter::append`],
//! tasks through [`GroupCommitter::submit_looping`]) come back together
//! once answered. The writer waits up to 200 µs for them to
//! queue again (parked: the last one back wakes it, not each of them),
//! and the syncer up to 300 µs for the commit of any that have queued, so
//! that they keep sharing one `fdatasync` instead of splitting into
//! cohorts that need one each.
//!
//! A caller may mark a receipt *deferred* (`call.finished`, written after the
//! response has gone): it is committed with the next urgent receipt, or after
//! at most [`DEFER`], and its caller is still answered only once it is
//! durable. This keeps the disk free for the `call.started` receipts that
//! calls wait on.

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::index;
use crate::audit::{AuditError, AuditLog, NewReceipt, Receipt, Result};

/// Most receipts committed in one transaction.
const MAX_BATCH: usize = 512;
/// Longest a deferred receipt waits for an urgent one to share its commit.
pub const DEFER: Duration = Duration::from_millis(5);
/// Longest the syncer waits for the commit in progress to join its
/// `fdatasync`.
const SYNC_WAIT: Duration = Duration::from_millis(2);
/// How soon after the syncer answered several callers the writer expects
/// them back, and how long it waits for them at most.
const REJOIN_WINDOW: Duration = Duration::from_millis(1);
const REJOIN_WAIT: Duration = Duration::from_micros(200);
/// Longest the syncer waits for the commit of receipts that looping
/// callers have queued, so that one fdatasync covers them too.
const LOOP_SYNC_WAIT: Duration = Duration::from_micros(300);
/// How often the checkpointer runs while receipts arrive.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(50);
/// Commits the checkpointer lets gather in the WAL before it copies them
/// into `audit.db` while receipts keep coming (when a round sees none, it
/// copies whatever is there). Each checkpoint costs two `fsync`s (the WAL,
/// then `audit.db`) and, once it caught up with the writer, a third on the
/// writer's thread when its next commit starts the WAL over: at a steady
/// 50 requests/s, checkpointing every round made that 40-60 `fsync`s a
/// second beside the 100 `fdatasync`s the receipts need, and the calls
/// queued behind them (docs/benchmarks.md). Under load a round sees more
/// than this anyway, so it changes nothing there.
const CHECKPOINT_COMMITS: u64 = 256;
/// The query index is brought up to date when a checkpointer round saw no
/// commit, and at least this often while receipts keep coming: in bulk,
/// so that many receipts share each index page, and away from the commits
/// callers wait on while a burst lasts.
const INDEX_AT_LEAST_EVERY: Duration = Duration::from_secs(1);
/// Pages of the query index's WAL after which the checkpointer's catch-up
/// checkpoints it (SQLite's default is 1,000). Each checkpoint ends with an
/// `fsync` of the index file that the next receipt's `fdatasync` queues
/// behind; small ones often kept the proxy's slowest calls from the 100-400
/// ms stalls that the default's few-megabyte flushes caused now and then
/// (docs/benchmarks.md).
const INDEX_AUTOCHECKPOINT: u32 = 128;
/// Frames in the WAL from which the writer copies what the checkpointer
/// left, so that the WAL starts over (2 MiB of 4 KiB pages). Not at every
/// round: that copy ends with an `fsync` of `audit.db` on the writer's
/// thread, which the next commit waits behind.
const RESTART_FRAMES: i64 = 512;
/// The writer's page cache, in KiB (SQLite's default is 2,000). Measured
/// in the 16-writer benchmark: the average commit of about 16 receipts
/// took 251-261 µs with 32 MiB against 299-334 µs with 2 or 8 MiB (three
/// alternating runs each), with fewer pages read back from the WAL. Only
/// a cap: pages are allocated as the log is written.
const WRITER_CACHE_KIB: u32 = 32_768;
/// WAL frames after which the writer checkpoints itself (SQLite's
/// `wal_autocheckpoint`), should the checkpointer fall behind.
const WRITER_AUTOCHECKPOINT: u32 = 10_000;

/// Where a caller's answer goes.
enum Reply {
    /// A task, or a thread holding a [`Pending`].
    Task(oneshot::Sender<Result<Receipt>>),
    /// A thread in [`GroupCommitter::append`], waiting parked.
    Thread(ThreadReply),
}

impl Reply {
    fn send(self, answer: Result<Receipt>) {
        match self {
            Reply::Task(tx) => {
                // A task that stopped waiting has nobody to tell.
                let _ = tx.send(answer);
            }
            Reply::Thread(mut t) => t.answer(Some(answer)),
        }
    }
}

/// The answer to a thread appending in a loop. It waits parked, and one
/// `unpark` wakes it: the syncer answers up to 16 such callers after each
/// `fdatasync`, and a oneshot's blocking receive costs a lock, a condition
/// variable and a wake for each.
struct Slot {
    /// `Some(None)`: dropped unanswered (the writer is gone).
    answer: Mutex<Option<Option<Result<Receipt>>>>,
    thread: thread::Thread,
}

impl Slot {
    fn wait(&self) -> Option<Result<Receipt>> {
        loop {
            if let Some(a) = self
                .answer
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take()
            {
                return a;
            }
            thread::park();
        }
    }
}

/// The writer's and syncer's end of a [`Slot`]; answers "gone" if dropped
/// unanswered, so its thread never waits for ever.
struct ThreadReply(Option<Arc<Slot>>);

impl ThreadReply {
    fn answer(&mut self, answer: Option<Result<Receipt>>) {
        if let Some(slot) = self.0.take() {
            *slot.answer.lock().unwrap_or_else(PoisonError::into_inner) = Some(answer);
            slot.thread.unpark();
        }
    }
}

impl Drop for ThreadReply {
    fn drop(&mut self) {
        self.answer(None);
    }
}

/// How a caller waits.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Commit at once ([`GroupCommitter::submit`]).
    Now,
    /// May wait up to [`DEFER`] for company ([`GroupCommitter::submit_deferred`]).
    Deferred,
    /// A thread appending in a loop ([`GroupCommitter::append`]): it will be
    /// back right after its answer, and may wait for the others answered
    /// with it.
    Loop,
}

struct Job {
    receipt: NewReceipt,
    reply: Reply,
    mode: Mode,
    queued: Instant,
}

/// What the writer hands the syncer: committed receipts awaiting
/// durability, each with whether its caller appends in a loop.
type Committed = Vec<(Reply, Receipt, bool)>;

struct Shared {
    path: PathBuf,
    /// Set once an `fdatasync` has failed: nothing is acknowledged after it.
    poisoned: AtomicBool,
    /// Commits since the checkpointer last ran.
    commits: AtomicU64,
    /// True while the writer commits: a syncer about to start waits for
    /// that one commit, so one `fdatasync` covers it too.
    committing: AtomicBool,
    /// How many looping callers the syncer answered last, when
    /// (nanoseconds after `epoch`), and how many have queued a receipt
    /// since: they come back together, and the writer waits briefly for
    /// them rather than commit the first alone.
    released: AtomicUsize,
    released_at: AtomicU64,
    arrived: AtomicUsize,
    /// The writer thread, woken by the last of them to queue again.
    writer: OnceLock<thread::Thread>,
    /// Receipts of looping callers queued and not yet answered.
    outstanding: AtomicUsize,
    /// Set by the checkpointer after a round whose checkpoint found
    /// [`RESTART_FRAMES`] or more in the WAL: the writer then copies the
    /// rest (see the module's documentation).
    checkpointed: AtomicBool,
    epoch: Instant,
    /// The seq of the last receipt committed.
    last_seq: std::sync::atomic::AtomicI64,
    /// Called by the checkpointer after a round that saw commits, with the
    /// last seq ([`GroupCommitter::after_commits`]).
    after_commits: OnceLock<AfterCommits>,
}

type AfterCommits = Box<dyn Fn(i64) + Send + Sync>;

impl Shared {
    fn error(&self, why: impl Into<String>) -> AuditError {
        AuditError::Unavailable {
            path: self.path.clone(),
            why: why.into(),
        }
    }

    fn poisoned_error(&self) -> AuditError {
        self.error("an earlier fdatasync of the audit log failed, so craik accepts no more receipts in this process; check the disk, then restart")
    }
}

/// A handle to the writer; clone it for each appending thread or task.
#[derive(Clone)]
pub struct GroupCommitter {
    tx: mpsc::Sender<Job>,
    shared: Arc<Shared>,
}

/// A receipt on its way to the log; resolves once it is durable.
pub struct Pending {
    rx: oneshot::Receiver<Result<Receipt>>,
    shared: Arc<Shared>,
}

impl Pending {
    /// Waits (blocking the thread) until the receipt is durable. Not for
    /// async code: use [`Pending::wait`] there.
    pub fn wait_blocking(self) -> Result<Receipt> {
        let Pending { rx, shared } = self;
        rx.blocking_recv().map_err(|_| writer_gone(&shared))?
    }

    /// Waits until the receipt is durable.
    pub async fn wait(self) -> Result<Receipt> {
        let Pending { rx, shared } = self;
        rx.await.map_err(|_| writer_gone(&shared))?
    }
}

fn writer_gone(shared: &Shared) -> AuditError {
    shared.error("the audit writer stopped")
}

impl GroupCommitter {
    /// Moves `log` to the writer thread, and starts the syncer and the
    /// checkpointer.
    pub fn start(mut log: AuditLog) -> Result<GroupCommitter> {
        // The checkpointer keeps the query index current, off the writer.
        log.inline_index = false;
        let shared = Arc::new(Shared {
            path: log.path().to_path_buf(),
            poisoned: AtomicBool::new(false),
            commits: AtomicU64::new(0),
            committing: AtomicBool::new(false),
            released: AtomicUsize::new(0),
            released_at: AtomicU64::new(0),
            arrived: AtomicUsize::new(0),
            writer: OnceLock::new(),
            outstanding: AtomicUsize::new(0),
            checkpointed: AtomicBool::new(false),
            epoch: Instant::now(),
            last_seq: std::sync::atomic::AtomicI64::new(0),
            after_commits: OnceLock::new(),
        });
        log.conn
            .execute_batch(&format!(
                "PRAGMA synchronous=NORMAL; PRAGMA wal_autocheckpoint={WRITER_AUTOCHECKPOINT}; PRAGMA cache_size=-{WRITER_CACHE_KIB};"
            ))
            .map_err(|e| shared.error(e.to_string()))?;
        let wal = WalFile::new(&shared.path);
        let (tx, rx) = mpsc::channel::<Job>();
        let (sync_tx, sync_rx) = mpsc::channel::<Committed>();
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        {
            let s = shared.clone();
            thread::Builder::new()
                .name("craik-audit-writer".into())
                .spawn(move || writer(log, rx, sync_tx, s, stop_tx))
                .map_err(|e| cannot_start(&shared, &e))?;
        }
        {
            let s = shared.clone();
            thread::Builder::new()
                .name("craik-audit-sync".into())
                .spawn(move || syncer(wal, sync_rx, s))
                .map_err(|e| cannot_start(&shared, &e))?;
        }
        {
            let s = shared.clone();
            thread::Builder::new()
                .name("craik-audit-checkpoint".into())
                .spawn(move || checkpointer(stop_rx, s))
                .map_err(|e| cannot_start(&shared, &e))?;
        }
        Ok(GroupCommitter { tx, shared })
    }

    /// Runs `f` with the last committed seq, off the writer, after each
    /// round of the checkpointer (every 50 ms) that saw commits: for the
    /// automatic signed checkpoint ([`crate::audit::checkpoint::auto`]),
    /// which the store cannot make itself. Set once; later calls are
    /// ignored.
    pub fn after_commits(&self, f: impl Fn(i64) + Send + Sync + 'static) {
        let _ = self.shared.after_commits.set(Box::new(f));
    }

    fn enqueue(&self, r: NewReceipt, mode: Mode, reply: Reply) {
        let job = Job {
            receipt: r,
            reply,
            mode,
            queued: Instant::now(),
        };
        // If the writer is gone the job (and its reply) is dropped, and
        // waiting reports that.
        if mode == Mode::Loop {
            self.shared.outstanding.fetch_add(1, Ordering::SeqCst);
        }
        let _ = self.tx.send(job);
        // Counted once queued. A writer waiting for the callers answered
        // together sleeps until the last of them is back, rather than wake
        // for each.
        if mode == Mode::Loop {
            let arrived = self.shared.arrived.fetch_add(1, Ordering::SeqCst) + 1;
            if arrived == self.shared.released.load(Ordering::SeqCst)
                && let Some(w) = self.shared.writer.get()
            {
                w.unpark();
            }
        }
    }

    fn pending(&self, r: NewReceipt, mode: Mode) -> Pending {
        let (tx, rx) = oneshot::channel();
        self.enqueue(r, mode, Reply::Task(tx));
        Pending {
            rx,
            shared: self.shared.clone(),
        }
    }

    /// Queues a receipt to be committed at once.
    pub fn submit(&self, r: NewReceipt) -> Pending {
        self.pending(r, Mode::Now)
    }

    /// Queues a receipt that may wait up to [`DEFER`] for company.
    pub fn submit_deferred(&self, r: NewReceipt) -> Pending {
        self.pending(r, Mode::Deferred)
    }

    /// Queues a receipt for a task that appends in a loop, as
    /// [`GroupCommitter::append`] does for threads: its next receipt may
    /// wait up to 200 µs for the other callers answered with it, so that
    /// they share one commit.
    pub fn submit_looping(&self, r: NewReceipt) -> Pending {
        self.pending(r, Mode::Loop)
    }

    /// Appends one receipt and blocks until it is durable: for threads
    /// that append in a loop. Their next receipts may wait up to 200 µs
    /// for the other callers answered with them, so that they share one
    /// commit. Async code uses [`GroupCommitter::submit`], which never waits.
    pub fn append(&self, r: NewReceipt) -> Result<Receipt> {
        let slot = Arc::new(Slot {
            answer: Mutex::new(None),
            thread: thread::current(),
        });
        self.enqueue(
            r,
            Mode::Loop,
            Reply::Thread(ThreadReply(Some(slot.clone()))),
        );
        slot.wait()
            .unwrap_or_else(|| Err(writer_gone(&self.shared)))
    }
}

fn cannot_start(shared: &Shared, e: &std::io::Error) -> AuditError {
    shared.error(format!("cannot start the audit writer: {e}"))
}

fn writer(
    mut log: AuditLog,
    rx: mpsc::Receiver<Job>,
    sync_tx: mpsc::Sender<Committed>,
    shared: Arc<Shared>,
    _stop_checkpointer: mpsc::Sender<()>,
) {
    let _ = shared.writer.set(thread::current());
    let mut pending: Vec<Job> = Vec::new();
    let mut open = true;
    while open || !pending.is_empty() {
        if open {
            let next = match pending.first() {
                None => rx.recv().map_err(|_| mpsc::RecvTimeoutError::Disconnected),
                Some(oldest) => {
                    let wait = (oldest.queued + DEFER).saturating_duration_since(Instant::now());
                    rx.recv_timeout(wait)
                }
            };
            match next {
                Ok(job) => pending.push(job),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => open = false,
            }
            open &= drain(&rx, &mut pending);
        }
        let now = Instant::now();
        let due = !open
            || pending.len() >= MAX_BATCH
            || pending
                .iter()
                .any(|j| j.mode != Mode::Deferred || j.queued + DEFER <= now);
        if !due || pending.is_empty() {
            continue;
        }
        // Callers just answered together come back together: give them a
        // moment to join, instead of committing the first alone and making
        // the rest wait for the next fdatasync.
        let since = (shared.epoch.elapsed().as_nanos() as u64)
            .saturating_sub(shared.released_at.load(Ordering::SeqCst));
        let released = shared.released.load(Ordering::SeqCst);
        if open
            && released > 1
            && since < REJOIN_WINDOW.as_nanos() as u64
            && !pending.iter().any(|j| j.mode == Mode::Now)
        {
            // Parked, not blocked on the channel, so that each arrival
            // does not wake this thread: the last one back unparks it.
            let deadline = Instant::now() + REJOIN_WAIT;
            loop {
                open &= drain(&rx, &mut pending);
                let left = deadline.saturating_duration_since(Instant::now());
                if !open
                    || pending.len() >= MAX_BATCH
                    || shared.arrived.load(Ordering::SeqCst) >= released
                    || left.is_zero()
                {
                    break;
                }
                thread::park_timeout(left);
            }
        }
        let take = pending.len().min(MAX_BATCH);
        let batch: Vec<Job> = pending.drain(..take).collect();
        if shared.poisoned.load(Ordering::SeqCst) {
            let looping = batch.iter().filter(|j| j.mode == Mode::Loop).count();
            shared.outstanding.fetch_sub(looping, Ordering::SeqCst);
            for j in batch {
                j.reply.send(Err(shared.poisoned_error()));
            }
            continue;
        }
        let (receipts, replies): (Vec<_>, Vec<_>) = batch
            .into_iter()
            .map(|j| (j.receipt, (j.reply, j.mode == Mode::Loop)))
            .unzip();
        shared.committing.store(true, Ordering::SeqCst);
        let appended = log.append_batch(receipts);
        // Before the hand-over: the syncer, woken by it, must not wait for
        // this commit any more.
        shared.committing.store(false, Ordering::SeqCst);
        match appended {
            Ok(done) => {
                if let Some(last) = done.last() {
                    shared.last_seq.store(last.seq, Ordering::SeqCst);
                }
                shared.commits.fetch_add(1, Ordering::Relaxed);
                let committed: Committed = replies
                    .into_iter()
                    .zip(done)
                    .map(|((reply, looping), r)| (reply, r, looping))
                    .collect();
                if let Err(mpsc::SendError(committed)) = sync_tx.send(committed) {
                    for (reply, _, _) in committed {
                        reply.send(Err(shared.error("the audit syncer stopped")));
                    }
                }
                // While the syncer makes this batch durable, and only when
                // nothing else waits to be committed: copy what the
                // checkpointer left, so the next commit starts the WAL
                // over. A checkpoint that fails changes nothing (SQLite
                // moves its mark only after audit.db is synced).
                if pending.is_empty() && shared.checkpointed.swap(false, Ordering::SeqCst) {
                    let _ = log
                        .conn
                        .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
                }
            }
            Err(e) => {
                let why = e.to_string();
                let looping = replies.iter().filter(|(_, l)| *l).count();
                shared.outstanding.fetch_sub(looping, Ordering::SeqCst);
                for (reply, _) in replies {
                    reply.send(Err(shared.error(why.clone())));
                }
            }
        }
    }
    // Dropping sync_tx lets the syncer finish what is queued and stop;
    // dropping _stop_checkpointer stops the checkpointer.
}

/// Moves what has queued into `pending`, up to [`MAX_BATCH`], without
/// waiting; false once every sender is gone.
fn drain(rx: &mpsc::Receiver<Job>, pending: &mut Vec<Job>) -> bool {
    while pending.len() < MAX_BATCH {
        match rx.try_recv() {
            Ok(job) => pending.push(job),
            Err(mpsc::TryRecvError::Empty) => break,
            Err(mpsc::TryRecvError::Disconnected) => return false,
        }
    }
    true
}

/// The WAL file, opened for `fdatasync`; reopened (and its directory
/// synced) whenever the path names another inode than the one held.
struct WalFile {
    path: PathBuf,
    dir: PathBuf,
    held: Option<(File, u64)>,
}

impl WalFile {
    fn new(db: &Path) -> WalFile {
        let mut name = db.as_os_str().to_owned();
        name.push("-wal");
        WalFile {
            path: PathBuf::from(name),
            dir: crate::home::dir_of(db).to_path_buf(),
            held: None,
        }
    }

    fn sync(&mut self) -> std::io::Result<()> {
        let ino = inode_of(&self.path)?;
        if self.held.as_ref().is_none_or(|(_, held)| *held != ino) {
            let f = File::open(&self.path)?;
            let opened = f.metadata()?.ino();
            // A WAL file new to us may be new on disk: make its name durable.
            File::open(&self.dir)?.sync_all()?;
            self.held = Some((f, opened));
        }
        let (f, _) = self.held.as_ref().expect("opened above");
        f.sync_data()
    }
}

/// The inode number at `path`, and nothing else. A full `stat` before each
/// `fdatasync` made that `fdatasync` write the WAL's inode as well, almost
/// every time: since Linux 6.13 a file whose timestamps were read after its
/// last change gets a fine-grained timestamp at its next write, so every
/// commit changed the inode, and ext4 without a journal (as on these
/// machines) writes a changed inode in place during the `fdatasync`, as a
/// third round trip to the disk. Asking for the inode number only leaves
/// the timestamps coarse, changing once per clock tick: in a block trace of
/// the 16-writer benchmark, 30% of the `fdatasync`s wrote the inode instead
/// of 98% (docs/benchmarks.md).
///
/// Where `statx` is missing (kernels before 4.11, some seccomp profiles of
/// older container runtimes: rustix then says `ENOSYS`) or gives no inode
/// number, a plain `stat`.
#[cfg(target_os = "linux")]
fn inode_of(path: &Path) -> std::io::Result<u64> {
    use rustix::fs::{AtFlags, CWD, StatxFlags, statx};
    match statx(CWD, path, AtFlags::empty(), StatxFlags::INO) {
        Ok(st) if st.stx_mask & StatxFlags::INO.bits() != 0 => Ok(st.stx_ino),
        Ok(_) | Err(rustix::io::Errno::NOSYS) => Ok(std::fs::metadata(path)?.ino()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(not(target_os = "linux"))]
fn inode_of(path: &Path) -> std::io::Result<u64> {
    Ok(std::fs::metadata(path)?.ino())
}

fn syncer(mut wal: WalFile, rx: mpsc::Receiver<Committed>, shared: Arc<Shared>) {
    while let Ok(first) = rx.recv() {
        let mut groups = vec![first];
        while let Ok(g) = rx.try_recv() {
            groups.push(g);
        }
        // A commit in progress would otherwise need an fdatasync of its
        // own right after this one: wait for it (that one only, so that a
        // steady stream cannot hold the sync back).
        if shared.committing.load(Ordering::SeqCst) {
            if let Ok(g) = rx.recv_timeout(SYNC_WAIT) {
                groups.push(g);
            }
            while let Ok(g) = rx.try_recv() {
                groups.push(g);
            }
        }
        // Callers appending in a loop that have queued a receipt not yet
        // committed: their commit is moments away, so let one fdatasync
        // cover them too rather than split the callers into two cohorts
        // that each need one.
        let mut looping = groups.iter().flatten().filter(|(_, _, l)| *l).count();
        let deadline = Instant::now() + LOOP_SYNC_WAIT;
        while shared.outstanding.load(Ordering::SeqCst) > looping {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match rx.recv_timeout(left) {
                Ok(g) => {
                    looping += g.iter().filter(|(_, _, l)| *l).count();
                    groups.push(g);
                }
                Err(_) => break,
            }
        }
        let outcome = if shared.poisoned.load(Ordering::SeqCst) {
            Err(shared.poisoned_error())
        } else {
            wal.sync().map_err(|e| {
                shared.poisoned.store(true, Ordering::SeqCst);
                shared.error(format!("fdatasync of {}: {e}", wal.path.display()))
            })
        };
        // Before answering: those answered may queue again at once.
        shared.arrived.store(0, Ordering::SeqCst);
        shared.outstanding.fetch_sub(looping, Ordering::SeqCst);
        shared.released.store(looping, Ordering::SeqCst);
        shared
            .released_at
            .store(shared.epoch.elapsed().as_nanos() as u64, Ordering::SeqCst);
        for (reply, receipt, _) in groups.into_iter().flatten() {
            reply.send(match &outcome {
                Ok(()) => Ok(receipt),
                Err(e) => Err(shared.error(e.to_string())),
            });
        }
    }
}

fn checkpointer(stop: mpsc::Receiver<()>, shared: Arc<Shared>) {
    let mut conn: Option<(rusqlite::Connection, bool)> = None;
    let mut indexed_at = Instant::now();
    let mut unindexed = false;
    // Commits not yet checkpointed.
    let mut gathered: u64 = 0;
    loop {
        let stopping = !matches!(
            stop.recv_timeout(CHECKPOINT_EVERY),
            Err(mpsc::RecvTimeoutError::Timeout)
        );
        let commits = shared.commits.swap(0, Ordering::Relaxed);
        unindexed |= commits > 0;
        gathered += commits;
        if commits == 0 && !unindexed && gathered == 0 {
            if stopping {
                return;
            }
            continue;
        }
        if conn.is_none() {
            // The query index attached, when it can be; a plain connection
            // still checkpoints.
            conn = index::open(&shared.path, Duration::from_millis(100))
                .and_then(|c| {
                    c.execute_batch(&format!(
                        "PRAGMA wal_autocheckpoint={INDEX_AUTOCHECKPOINT};"
                    ))
                    .map(|()| c)
                })
                .map(|c| (c, true))
                .or_else(|_| {
                    rusqlite::Connection::open_with_flags(
                        &shared.path,
                        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE
                            | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
                    )
                    .map(|c| (c, false))
                })
                .and_then(|(c, indexed)| {
                    // FULL: the checkpoint syncs the WAL before and audit.db after.
                    c.execute_batch("PRAGMA main.synchronous=FULL;")?;
                    c.busy_timeout(Duration::from_millis(100))?;
                    Ok((c, indexed))
                })
                .ok();
        }
        // A checkpoint that fails (busy, or the disk) leaves the WAL as it
        // is: the receipts are durable there, and the writer's own
        // automatic checkpoint remains.
        if let Some((c, indexed)) = &conn {
            // (busy, frames in the WAL, frames copied)
            let due = gathered > 0 && (gathered >= CHECKPOINT_COMMITS || commits == 0 || stopping);
            if due {
                gathered = 0;
            }
            let checkpointed = due
                && c.query_row("PRAGMA main.wal_checkpoint(PASSIVE)", [], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
                })
                .is_ok_and(|(busy, frames)| busy == 0 && frames >= RESTART_FRAMES);
            // The query index in bulk: when a round saw no commit, at least
            // every INDEX_AT_LEAST_EVERY, and once more when the committer
            // stops; queries read whatever it lacks from the log.
            if !*indexed {
                unindexed = false;
            } else if stopping || commits == 0 || indexed_at.elapsed() >= INDEX_AT_LEAST_EVERY {
                let _ = index::refresh(c);
                unindexed = false;
                indexed_at = Instant::now();
            }
            // Only now, after the index's catch-up: its read of the log
            // would keep SQLite from starting the WAL over.
            if checkpointed {
                shared.checkpointed.store(true, Ordering::SeqCst);
            }
        }
        if commits > 0
            && let Some(f) = shared.after_commits.get()
        {
            f(shared.last_seq.load(Ordering::SeqCst));
        }
        if stopping {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The WAL is reopened when its path names another file: the inode
    /// number asked for alone must be the one `stat` gives, and change when
    /// the file is replaced.
    #[test]
    fn inode_of_follows_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("audit.db-wal");
        assert!(inode_of(&p).is_err(), "no file, no inode");
        std::fs::write(&p, b"one").unwrap();
        let first = inode_of(&p).unwrap();
        assert_eq!(first, std::fs::metadata(&p).unwrap().ino());
        let keep = std::fs::File::open(&p).unwrap();
        std::fs::remove_file(&p).unwrap();
        std::fs::write(&p, b"two").unwrap();
        let second = inode_of(&p).unwrap();
        assert_eq!(second, std::fs::metadata(&p).unwrap().ino());
        assert_ne!(first, second);
        drop(keep);
    }
}
