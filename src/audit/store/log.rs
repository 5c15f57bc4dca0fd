//! The SQLite audit log: opening, migrations and appends.

use std::cell::OnceCell;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use rand::RngCore;
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};

use super::compact::{self, Decoder};
use super::schema::{self, last_seq};
use super::{INDEX_NOTICE_FROM, Notice, index};
use crate::audit::chain::{GENESIS, receipt_hash};
use crate::audit::{AuditError, NewReceipt, Receipt, ReceiptKind, Result};
use crate::home::Home;

pub const AUDIT_FILE: &str = "audit.db";

/// A migration's step in Rust, run after its SQL in the same transaction.
type Step = fn(&Connection) -> rusqlite::Result<()>;

/// The numbered migrations in `migrations/`, applied in order.
const MIGRATIONS: &[(i64, &str, Option<Step>)] = &[
    (
        1,
        include_str!("../../../migrations/0001_receipts.sql"),
        None,
    ),
    (
        2,
        include_str!("../../../migrations/0002_approval_index.sql"),
        None,
    ),
    (
        3,
        include_str!("../../../migrations/0003_query_index.sql"),
        None,
    ),
    (
        4,
        include_str!("../../../migrations/0004_no_id_index.sql"),
        None,
    ),
    (
        5,
        include_str!("../../../migrations/0005_archives.sql"),
        None,
    ),
    (
        6,
        include_str!("../../../migrations/0006_compact_rows.sql"),
        Some(compact::convert),
    ),
];

/// The schema version from which receipts are compact rows.
const COMPACT_ROWS: i64 = 6;

/// The schema version this craik writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS[MIGRATIONS.len() - 1].0;

/// How long a writer waits for another process's transaction.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// An open audit log.
pub struct AuditLog {
    pub(in crate::audit) conn: Connection,
    pub(in crate::audit) path: PathBuf,
    /// A second connection with the query index attached (see
    /// [`super::index`]), opened on first use; `None` if the index cannot
    /// be used, and queries then read the log alone.
    query: OnceCell<Option<Connection>>,
    /// Whether appends bring the index up to date now and then. The group
    /// committer's writer leaves that to its checkpointer thread.
    pub(in crate::audit) inline_index: bool,
    /// Where [`Notice`]s go.
    pub(in crate::audit) notice: fn(&Notice),
    /// Opened only to be read ([`AuditLog::open_for_reading`]): appends
    /// are refused, and queries read the log without the query index.
    read_only: bool,
    /// The ids of the texts appends and lookups have named.
    atoms: compact::Atoms,
}

fn now_rfc3339() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A schema entry: (type, name, sql).
type SchemaObject = (String, String, Option<String>);

/// Every schema object in `conn`'s main database but SQLite's own
/// statistics tables.
fn schema_objects(conn: &Connection) -> rusqlite::Result<std::collections::BTreeSet<SchemaObject>> {
    let mut st = conn.prepare(
        "SELECT type, name, sql FROM main.sqlite_master WHERE name NOT LIKE 'sqlite\\_stat%' ESCAPE '\\'",
    )?;
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect()
}

/// What the migrations create, from an empty database in memory migrated
/// the same way (once per process).
fn expected_schema() -> &'static std::collections::BTreeSet<SchemaObject> {
    static EXPECTED: std::sync::OnceLock<std::collections::BTreeSet<SchemaObject>> =
        std::sync::OnceLock::new();
    EXPECTED.get_or_init(|| {
        let conn = Connection::open_in_memory().expect("an in-memory database");
        for (_, sql, step) in MIGRATIONS {
            conn.execute_batch(sql).expect("the migrations apply");
            if let Some(step) = step {
                step(&conn).expect("the migrations apply");
            }
        }
        schema_objects(&conn).expect("the schema reads")
    })
}

/// Seqs that share the 24 bits an id carries.
const ID_SEQ_SPAN: i64 = 1 << 24;
/// How many spans of seqs [`AuditLog::get`] tries for an id (logs of up
/// to 2^34 receipts).
const MAX_ID_SPANS: i64 = 1 << 10;

/// The low 24 bits of the seq that an id of the current form
/// (`rcpt_` + 12 hex of milliseconds + 6 of seq + 6 random) names.
fn id_seq_bits(id: &str) -> Option<i64> {
    let hex = id.strip_prefix("rcpt_")?;
    if hex.len() != 24 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    i64::from_str_radix(&hex[12..18], 16).ok()
}

/// `rcpt_` and 24 hex digits: the time in milliseconds (48 bits), the low
/// 24 bits of `seq`, then 24 random bits. Ids made later sort later; the
/// seq part keeps two receipts of one log in the same millisecond apart
/// without relying on chance, and lets [`AuditLog::get`] find a receipt by
/// id through its seq (`id` has no index since schema 4); the random part
/// keeps ids of different logs apart.
fn new_receipt_id(seq: i64) -> String {
    let ms = Utc::now().timestamp_millis().clamp(0, (1 << 48) - 1) as u64;
    let seq = (seq as u64) & 0xff_ffff;
    let mut b = [0u8; 3];
    rand::thread_rng().fill_bytes(&mut b);
    format!("rcpt_{ms:012x}{seq:06x}{}", hex::encode(b))
}

/// The kinds the approval gate looks up, each in the log's own partial
/// index `receipts_approvals` (migrations/0003_query_index.sql).
pub const APPROVAL_KINDS: [ReceiptKind; 2] =
    [ReceiptKind::Approval, ReceiptKind::ApprovalRequested];

/// Whether receipts name operators by their keyed identity hash only
/// (`CRAIK_RECEIPT_OPERATOR=hash`): no subject, email or groups in clear.
pub fn operator_names_hidden() -> bool {
    std::env::var("CRAIK_RECEIPT_OPERATOR").is_ok_and(|v| v == "hash")
}

/// What the approval gate looks up: receipts of `kinds` with status ok,
/// for a profile (or for none), and for a run when given.
struct Lookup<'a> {
    profile: Option<&'a str>,
    kinds: &'a [ReceiptKind],
    /// `None`: any run; `Some(None)`: receipts of no run.
    run: Option<Option<&'a str>>,
    /// Whatever the status (not only ok).
    any_status: bool,
    newest_first: bool,
}

impl Lookup<'_> {
    /// The query over `receipt_rows`, with the atoms' ids given: ?1 the
    /// profile (unless it is none), ?2 the status ok (unless any status
    /// goes), ?3 the run (when it is a run). Approval kinds get the term
    /// that lets SQLite use the partial index `receipt_rows_approvals` (its
    /// WHERE, verbatim); any other kind gets a scan of the log.
    fn sql(&self, kinds: &[i64]) -> String {
        let profile = if self.profile.is_some() {
            "r.auth_profile_id = ?1"
        } else {
            "r.auth_profile_id IS ?1"
        };
        let kinds: Vec<String> = kinds.iter().map(i64::to_string).collect();
        let status = if self.any_status {
            " AND ?2 IS NOT NULL"
        } else {
            " AND r.status = ?2"
        };
        let run = match self.run {
            None => " AND ?3 IS NULL",
            Some(_) => " AND r.run_id IS ?3",
        };
        let approval = if self.kinds.iter().all(|k| APPROVAL_KINDS.contains(k)) {
            " AND r.kind IN (1, 2)"
        } else {
            ""
        };
        format!(
            "SELECT {} FROM main.receipt_rows AS r WHERE {profile} AND r.kind IN ({}){status}{run}{approval} ORDER BY r.seq {}",
            compact::raw_columns("r"),
            kinds.join(", "),
            if self.newest_first { "DESC" } else { "ASC" }
        )
    }

    /// At most `limit` receipts that match and that `keep` keeps, in the
    /// lookup's order. No receipt matches a text that is no atom.
    fn run(
        &self,
        conn: &Connection,
        atoms: &compact::Atoms,
        limit: usize,
        keep: impl Fn(&Receipt) -> bool,
    ) -> rusqlite::Result<Vec<Receipt>> {
        let find = |s: &str| atoms.find(conn, s);
        let profile = match self.profile {
            Some(p) => match find(p)? {
                Some(id) => Some(id),
                None => return Ok(Vec::new()),
            },
            None => None,
        };
        let mut kinds = Vec::new();
        for k in self.kinds {
            kinds.extend(find(k.as_str())?);
        }
        let run = match self.run {
            Some(Some(r)) => match find(r)? {
                Some(id) => Some(id),
                None => return Ok(Vec::new()),
            },
            _ => None,
        };
        let Some(ok) = find("ok")? else {
            return Ok(Vec::new());
        };
        if kinds.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let mut st = conn.prepare_cached(&self.sql(&kinds))?;
        let mut rows = st.query(rusqlite::params![profile, ok, run])?;
        let dec = Decoder::new(conn);
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let r = dec.row(row)?;
            if keep(&r) {
                out.push(r);
                if out.len() == limit {
                    break;
                }
            }
        }
        Ok(out)
    }
}

/// The last row's seq, hash and created_at, as texts.
fn last_row(conn: &Connection) -> rusqlite::Result<Option<(i64, String, String)>> {
    conn.prepare_cached(
        "SELECT seq, hash, created_at FROM main.receipt_rows ORDER BY seq DESC LIMIT 1",
    )?
    .query_row([], |r| {
        Ok((
            r.get(0)?,
            compact::hash_value(r.get_ref(1)?, 1)?,
            compact::time_value(r.get_ref(2)?, 2)?,
        ))
    })
    .optional()
}

/// The text of `details`' top-level `key`, if it is a string.
fn detail_text(r: &Receipt, key: &str) -> Option<String> {
    match serde_json::from_str::<serde_json::Value>(&r.details)
        .ok()?
        .get(key)?
    {
        serde_json::Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

/// Why a missing or empty `audit.db` at `path` once held receipts, if
/// the home shows it: a checkpoint was signed here, or the query index
/// copied some. Deleting or emptying the log must not pass for a new one.
fn lost_log(home: &Home, path: &Path) -> Option<String> {
    let gone = match path.symlink_metadata() {
        Err(e) => e.kind() == std::io::ErrorKind::NotFound,
        Ok(m) => m.is_file() && m.len() == 0,
    };
    if !gone {
        return None;
    }
    held_receipts(home, path)
}

/// Why the home shows the log at `path` has held receipts, if it does: a
/// checkpoint was signed here, or the query index copied some. A log
/// found empty then (deleted, emptied, or replaced by a blank database)
/// was lost, not new.
fn held_receipts(home: &Home, path: &Path) -> Option<String> {
    if home
        .path(crate::audit::checkpoint::PUBLIC_KEY_FILE)
        .exists()
    {
        return Some("a checkpoint of it was signed here (audit-signing.pub)".into());
    }
    index::last_indexed(path)
        .map(|(upto, _)| format!("its query index copied receipts up to seq {upto}"))
}

/// Whether the database at `path` holds a receipt, read without writing
/// anything; `None` when it cannot be told (it will not open read-only).
fn holds_receipts(path: &Path) -> Option<bool> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .ok()?;
    conn.busy_timeout(BUSY_TIMEOUT).ok()?;
    let has_table: bool = conn
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM main.sqlite_master WHERE type IN ('table', 'view') AND name = 'receipts')",
            [],
            |r| r.get(0),
        )
        .ok()?;
    if !has_table {
        return Some(false);
    }
    conn.query_row("SELECT EXISTS (SELECT 1 FROM main.receipts)", [], |r| {
        r.get(0)
    })
    .ok()
}

/// A WAL file shorter than this holds no frame: its 32-byte header, and
/// one frame of the smallest page (24 + 512 bytes).
const WAL_FIRST_FRAME_END: u64 = 32 + 24 + 512;

impl AuditLog {
    /// Opens (creating and migrating as needed) `<home>/audit.db`.
    pub fn open(home: &Home) -> Result<AuditLog> {
        AuditLog::open_noting(home, |_| {})
    }

    /// [`AuditLog::open`], telling `notice` before slow, one-off work.
    /// A log that is missing or empty where the home shows it held
    /// receipts is [`AuditError::Lost`]: no new chain starts in its place.
    pub fn open_noting(home: &Home, notice: fn(&Notice)) -> Result<AuditLog> {
        let path = home.path(AUDIT_FILE);
        home.check_file(AUDIT_FILE)
            .map_err(|e| AuditError::Unavailable {
                path: path.clone(),
                why: e.to_string(),
            })?;
        if let Some(why) = lost_log(home, &path) {
            return Err(AuditError::Lost {
                path,
                why,
                reading: false,
            });
        }
        AuditLog::open_path_expecting(&path, notice, held_receipts(home, &path))
    }

    /// Opens an audit log at an explicit path.
    pub fn open_path(path: &Path) -> Result<AuditLog> {
        AuditLog::open_path_noting(path, |_| {})
    }

    /// [`AuditLog::open_path`], telling `notice` before slow, one-off work.
    pub fn open_path_noting(path: &Path, notice: fn(&Notice)) -> Result<AuditLog> {
        AuditLog::open_path_expecting(path, notice, None)
    }

    /// Opens the log at `path`; `held` says why it must hold receipts,
    /// when something shows it did. One that holds none then (a blank
    /// database put in its place, a file SQLite reads as empty) is
    /// [`AuditError::Lost`], before anything is written to it.
    fn open_path_expecting(
        path: &Path,
        notice: fn(&Notice),
        held: Option<String>,
    ) -> Result<AuditLog> {
        // Looked at read-only first: a file found empty is left exactly as
        // it was (opening it to write would switch it to WAL).
        if let Some(why) = &held
            && holds_receipts(path) == Some(false)
        {
            return Err(AuditError::Lost {
                path: path.to_path_buf(),
                why: why.clone(),
                reading: false,
            });
        }
        let unavailable = |why: String| AuditError::Unavailable {
            path: path.to_path_buf(),
            why,
        };
        // Create the file ourselves so it is 0600 from the start; SQLite
        // gives the -wal and -shm files the same mode.
        if !path.exists() {
            crate::audit::create_private(path).map_err(|e| unavailable(e.to_string()))?;
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| unavailable(e.to_string()))?;
        let mut log = AuditLog {
            conn,
            path: path.to_path_buf(),
            query: OnceCell::new(),
            inline_index: true,
            notice,
            read_only: false,
            atoms: compact::Atoms::default(),
        };
        // SQLite silently falls back to read-only when it cannot write the
        // file; a log that cannot take receipts must fail closed here.
        if log.conn.is_readonly(rusqlite::MAIN_DB).unwrap_or(true) {
            return Err(unavailable("the database is read-only".into()));
        }
        log.configure().map_err(|e| unavailable(e.to_string()))?;
        if let Some(why) = held {
            log.refuse_if_empty(why, false)?;
        }
        schema::add_functions(&log.conn).map_err(|e| unavailable(e.to_string()))?;
        log.migrate()?;
        log.check_schema(false)?;
        Ok(log)
    }

    /// Opens `<home>/audit.db` to read it: as [`AuditLog::open`] does
    /// when the log can be written, else read-only (a copy on a read-only
    /// mount, a file kept immutable), for the commands that only read.
    /// What cannot be read at all, such as a file that is not a database,
    /// is [`AuditError::Unreadable`].
    pub fn open_for_reading(home: &Home, notice: fn(&Notice)) -> Result<AuditLog> {
        let path = home.path(AUDIT_FILE);
        if let Some(why) = lost_log(home, &path) {
            return Err(AuditError::Lost {
                path,
                why,
                reading: true,
            });
        }
        // No log yet: read as empty, without making one.
        if path.symlink_metadata().map_or_else(
            |e| e.kind() == std::io::ErrorKind::NotFound,
            |m| m.is_file() && m.len() == 0,
        ) {
            return AuditLog::empty(&path, notice);
        }
        let opened = match AuditLog::open_noting(home, notice) {
            Err(AuditError::Lost { path, why, .. }) => Err(AuditError::Lost {
                path,
                why,
                reading: true,
            }),
            Err(AuditError::Foreign { path, objects, .. }) => Err(AuditError::Foreign {
                path,
                objects,
                reading: true,
            }),
            // Not a regular file (a directory, a link): refused as it is.
            Err(AuditError::Unavailable { path, why })
                if path.symlink_metadata().is_ok_and(|m| !m.is_file()) =>
            {
                Err(AuditError::Unreadable { path, why })
            }
            Err(AuditError::Unavailable { why, .. }) if path.is_file() => {
                AuditLog::open_read_only(&path, notice).map_err(|e| match e {
                    AuditError::Unreadable { path, why: ro } => AuditError::Unreadable {
                        path,
                        why: if ro == why {
                            ro
                        } else {
                            format!("{why}; read-only: {ro}")
                        },
                    },
                    other => other,
                })
            }
            other => other,
        }?;
        if opened.read_only
            && let Some(why) = held_receipts(home, &path)
        {
            opened.refuse_if_empty(why, true)?;
        }
        Ok(opened)
    }

    /// An empty log in memory, named `path`, read-only: what a log that
    /// does not exist yet holds.
    fn empty(path: &Path, notice: fn(&Notice)) -> Result<AuditLog> {
        let unavailable = |e: rusqlite::Error| AuditError::Unavailable {
            path: path.to_path_buf(),
            why: e.to_string(),
        };
        let conn = Connection::open_in_memory().map_err(unavailable)?;
        schema::add_functions(&conn).map_err(unavailable)?;
        let mut log = AuditLog {
            conn,
            path: path.to_path_buf(),
            query: OnceCell::from(None),
            inline_index: false,
            notice,
            read_only: true,
            atoms: compact::Atoms::default(),
        };
        // The schema only: appends stay refused.
        log.migrate()?;
        Ok(log)
    }

    /// Opens the log at `path` read-only. A log closed cleanly (no `-wal`
    /// file beside it, or one too short to hold a frame) where SQLite
    /// cannot make its `-shm` file (a directory that cannot be written, a
    /// full disk) is opened as immutable, since SQLite can otherwise not
    /// open a WAL database there; with frames in a `-wal` file it never
    /// is, as SQLite would then ignore the receipts still in them.
    pub fn open_read_only(path: &Path, notice: fn(&Notice)) -> Result<AuditLog> {
        let unreadable = |e: rusqlite::Error| AuditError::Unreadable {
            path: path.to_path_buf(),
            why: e.to_string(),
        };
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let open = |conn: Connection| -> rusqlite::Result<(Connection, i64)> {
            conn.busy_timeout(BUSY_TIMEOUT)?;
            conn.execute_batch("PRAGMA trusted_schema=OFF;")?;
            schema::add_functions(&conn)?;
            // Reads the header and the schema: a file that is no database
            // fails here rather than in the first query.
            let version = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
            conn.query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(()))?;
            Ok((conn, version))
        };
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        let (conn, version) = match Connection::open_with_flags(path, flags).and_then(open) {
            Ok(c) => c,
            Err(e) if std::fs::metadata(&wal).map_or(true, |m| m.len() < WAL_FIRST_FRAME_END) => {
                let mut uri = url::Url::from_file_path(path)
                    .map_err(|()| unreadable(e))?
                    .to_string();
                uri.push_str("?immutable=1");
                Connection::open_with_flags(uri, flags | OpenFlags::SQLITE_OPEN_URI)
                    .and_then(open)
                    .map_err(unreadable)?
            }
            Err(e) => return Err(unreadable(e)),
        };
        if version > SCHEMA_VERSION {
            return Err(AuditError::NewerSchema {
                path: path.to_path_buf(),
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        if version != SCHEMA_VERSION {
            return Err(AuditError::Unreadable {
                path: path.to_path_buf(),
                why: format!(
                    "schema version {version} is upgraded to {SCHEMA_VERSION} only when the log can be written; read a writable copy"
                ),
            });
        }
        let log = AuditLog {
            conn,
            path: path.to_path_buf(),
            query: OnceCell::from(None),
            inline_index: false,
            notice,
            read_only: true,
            atoms: compact::Atoms::default(),
        };
        log.check_schema(true)?;
        Ok(log)
    }

    /// [`AuditError::Lost`] when the log holds no receipt (no table, or an
    /// empty one) although `why` shows it held some.
    fn refuse_if_empty(&self, why: String, reading: bool) -> Result<()> {
        let has_table: bool = self
            .conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM main.sqlite_master WHERE type IN ('table', 'view') AND name = 'receipts')",
                [],
                |r| r.get(0),
            )
            .map_err(|e| self.unavailable(e))?;
        let empty = !has_table
            || !self
                .conn
                .query_row("SELECT EXISTS (SELECT 1 FROM main.receipts)", [], |r| {
                    r.get::<_, bool>(0)
                })
                .map_err(|e| self.unavailable(e))?;
        if empty {
            return Err(AuditError::Lost {
                path: self.path.clone(),
                why,
                reading,
            });
        }
        Ok(())
    }

    /// Refuses a log holding any schema object the migrations did not
    /// create, or one they created in another form: a trigger that turns
    /// appends into no-ops, a view, an index or table of someone else's.
    /// `reading` picks the error's exit code (1 for a command that only
    /// reads, 5 for an action).
    pub fn check_schema(&self, reading: bool) -> Result<()> {
        let found = schema_objects(&self.conn).map_err(|e| self.unavailable(e))?;
        let foreign: Vec<String> = found
            .difference(expected_schema())
            .map(|(kind, name, _)| {
                if expected_schema()
                    .iter()
                    .any(|(k, n, _)| k == kind && n == name)
                {
                    format!("{kind} {name} (altered)")
                } else {
                    format!("{kind} {name}")
                }
            })
            .collect();
        let mut foreign = foreign;
        // The approval gate's partial index names the approval kinds by the
        // ids migration 6 gave them: texts changed under those ids would
        // hide every approval (and verify, finding no receipt of them,
        // would not say so).
        if foreign.is_empty() && found.iter().any(|(k, n, _)| k == "table" && n == "atoms") {
            let fixed: Vec<String> = self
                .conn
                .prepare("SELECT s FROM main.atoms WHERE id IN (1, 2) ORDER BY id")
                .and_then(|mut st| st.query_map([], |r| r.get(0))?.collect())
                .map_err(|e| self.unavailable(e))?;
            if fixed != ["approval", "approval_requested"] {
                foreign.push("atoms 1 and 2 (altered: they must name the approval kinds)".into());
            }
        }
        if foreign.is_empty() {
            return Ok(());
        }
        Err(AuditError::Foreign {
            path: self.path.clone(),
            objects: foreign,
            reading,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The connection queries use, with the index attached, if usable.
    pub(in crate::audit) fn query_conn(&self) -> Option<&Connection> {
        self.query
            .get_or_init(|| index::open(&self.path, index::QUERY_BUSY).ok())
            .as_ref()
    }

    /// Brings the query index up to date with the log; returns the seq it
    /// now covers. Queries do this themselves; this is for callers that
    /// want the work done ahead of them.
    pub fn refresh_index(&self) -> Result<i64> {
        let conn = self
            .query_conn()
            .ok_or_else(|| AuditError::Query("the query index cannot be opened".into()))?;
        index::refresh(conn).map_err(|e| AuditError::Query(format!("query index: {e}")))
    }

    fn configure(&self) -> rusqlite::Result<()> {
        self.conn.busy_timeout(BUSY_TIMEOUT)?;
        // Processes creating a log at once race to switch a new file from
        // the rollback journal to WAL, and there SQLite answers a reader
        // that would deadlock with a writer SQLITE_BUSY at once, without
        // its busy handler: try again until the busy timeout.
        let deadline = Instant::now() + BUSY_TIMEOUT;
        let mode: String = loop {
            match self
                .conn
                .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            {
                Err(rusqlite::Error::SqliteFailure(e, _))
                    if e.code == rusqlite::ErrorCode::DatabaseBusy && Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(5));
                }
                other => break other?,
            }
        };
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(rusqlite::Error::InvalidQuery);
        }
        self.conn.execute_batch(
            "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; PRAGMA trusted_schema=OFF;",
        )?;
        Ok(())
    }

    fn unavailable(&self, e: impl std::fmt::Display) -> AuditError {
        AuditError::Unavailable {
            path: self.path.clone(),
            why: e.to_string(),
        }
    }

    /// The applied schema version (0 for a new database).
    pub fn schema_version(&self) -> Result<i64> {
        self.conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| self.unavailable(e))
    }

    fn migrate(&mut self) -> Result<()> {
        let current = self.schema_version()?;
        if current > SCHEMA_VERSION {
            return Err(AuditError::NewerSchema {
                path: self.path.clone(),
                found: current,
                supported: SCHEMA_VERSION,
            });
        }
        if current == SCHEMA_VERSION {
            return Ok(());
        }
        // Told before the write lock is taken, so that a slow reader of
        // the notice holds up no writer. A new log (version 0) has
        // nothing to upgrade.
        if current > 0 {
            let receipts = last_seq(&self.conn).map_err(|e| self.unavailable(e))?;
            (self.notice)(&Notice::Migrating {
                path: self.path.clone(),
                from: current,
                to: SCHEMA_VERSION,
                receipts,
            });
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| AuditError::Unavailable {
                path: self.path.clone(),
                why: e.to_string(),
            })?;
        // Another process may have migrated while we waited for the lock.
        let current: i64 = tx
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| AuditError::Unavailable {
                path: self.path.clone(),
                why: e.to_string(),
            })?;
        for (version, sql, step) in MIGRATIONS {
            if *version > current {
                tx.execute_batch(sql)
                    .and_then(|_| step.map_or(Ok(()), |step| step(&tx)))
                    .and_then(|_| tx.execute_batch(&format!("PRAGMA user_version = {version}")))
                    .map_err(|e| AuditError::Unavailable {
                        path: self.path.clone(),
                        why: format!("migration {version}: {e}"),
                    })?;
            }
        }
        tx.commit().map_err(|e| self.unavailable(e))?;
        // Migration 6 leaves the schema-5 table's pages free inside the
        // file (587 MB of a 743 MB file for 1,000,000 receipts): given
        // back once, best effort (1 s for that log; another process's
        // reader makes it wait or give up, and the log is fine either way).
        if (1..COMPACT_ROWS).contains(&current) {
            let _ = self
                .conn
                .execute_batch("VACUUM; PRAGMA wal_checkpoint(TRUNCATE);");
        }
        Ok(())
    }

    /// The last receipt's (seq, hash, created_at).
    pub fn tail(&self) -> Result<Option<(i64, String, String)>> {
        last_row(&self.conn).map_err(|e| self.unavailable(e))
    }

    /// Up to `limit` receipts after `seq`, oldest first (what the team
    /// store lacks).
    pub fn after(&self, seq: i64, limit: usize) -> Result<Vec<Receipt>> {
        let mut st = self
            .conn
            .prepare_cached(&format!(
                "SELECT {} FROM main.receipt_rows AS r WHERE r.seq > ?1 ORDER BY r.seq LIMIT ?2",
                compact::raw_columns("r")
            ))
            .map_err(|e| self.unavailable(e))?;
        let dec = Decoder::new(&self.conn);
        let rows = st
            .query_map(params![seq, limit as i64], |r| dec.row(r))
            .map_err(|e| self.unavailable(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.unavailable(e))
    }

    /// Appends one receipt durably and returns it.
    pub fn append(&mut self, r: NewReceipt) -> Result<Receipt> {
        Ok(self.append_batch(vec![r])?.remove(0))
    }

    /// Appends receipts in one transaction (group commit): all become
    /// durable together, or none does.
    pub fn append_batch(&mut self, batch: Vec<NewReceipt>) -> Result<Vec<Receipt>> {
        match self.append_checked(batch, |_, _| Ok(None))? {
            Ok(v) => Ok(v),
            Err(_) => unreachable!("no check, so always appended"),
        }
    }

    /// Runs `check` inside the write transaction; if it finds a receipt,
    /// nothing is appended and that receipt comes back as the inner `Err`.
    fn append_checked(
        &mut self,
        batch: Vec<NewReceipt>,
        check: impl FnOnce(
            &rusqlite::Transaction<'_>,
            &mut compact::Atoms,
        ) -> rusqlite::Result<Option<Receipt>>,
    ) -> Result<std::result::Result<Vec<Receipt>, Receipt>> {
        let hash_only = operator_names_hidden();
        if self.read_only {
            return Err(self.unavailable("opened read-only"));
        }
        let path = self.path.clone();
        let unavailable = |e: rusqlite::Error| AuditError::Unavailable {
            path: path.clone(),
            why: e.to_string(),
        };
        // Atoms of a transaction that did not commit are gone with it.
        self.atoms.rollback();
        let atoms = &mut self.atoms;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(unavailable)?;
        if let Some(existing) = check(&tx, atoms).map_err(unavailable)? {
            return Ok(Err(existing));
        }
        let tail = last_row(&tx).map_err(unavailable)?;
        // The first row of a log names its prev_hash; every later one is
        // linked to the row before it.
        let mut linked = tail.is_some();
        let (mut seq, mut prev_hash, mut last_time) = match tail {
            Some((s, h, t)) => (s, h, t),
            None => (0, GENESIS.to_string(), String::new()),
        };
        let mut out = Vec::with_capacity(batch.len());
        {
            let mut stmt = tx
                .prepare_cached(&compact::insert_sql("main"))
                .map_err(unavailable)?;
            for n in batch {
                seq += 1;
                // created_at never goes backwards along the chain, so time
                // order and chain order agree (queries rely on it).
                let mut created_at = now_rfc3339();
                if created_at < last_time {
                    created_at = last_time.clone();
                }
                last_time = created_at.clone();
                let mut op = n.operator;
                if let Some(o) = op.as_mut().filter(|_| hash_only) {
                    // Only the keyed identity hash (and the issuer it is
                    // of) names the operator.
                    o.subject.clear();
                    o.email = None;
                    o.groups.clear();
                }
                let mut r = Receipt {
                    seq,
                    id: new_receipt_id(seq),
                    created_at,
                    kind: n.kind.as_str().to_string(),
                    run_id: n.run_id,
                    capability: n.capability,
                    status: n.status.as_str().to_string(),
                    reason: n.reason,
                    policy_condition: n.policy_condition,
                    auth_profile_id: n.auth_profile_id,
                    auth_kind: n.auth_kind,
                    auth_identity_hash: n.auth_identity_hash,
                    provider_family: n.provider_family,
                    pool_id: n.pool_id,
                    operator_subject: op
                        .as_ref()
                        .filter(|_| !hash_only)
                        .map(|o| o.subject.clone()),
                    operator_issuer: op.as_ref().map(|o| o.issuer.clone()),
                    operator_email: op.as_ref().and_then(|o| o.email.clone()),
                    operator_groups: op
                        .as_ref()
                        .filter(|_| !hash_only)
                        .map(|o| serde_json::to_string(&o.groups).expect("groups serialize")),
                    operator_identity_hash: op.as_ref().map(|o| o.identity_hash.clone()),
                    details: serde_json::to_string(&n.details).expect("details serialize"),
                    prev_hash: prev_hash.clone(),
                    hash: String::new(),
                };
                r.hash = receipt_hash(&r);
                let row = atoms.encode(&tx, &r, linked).map_err(unavailable)?;
                stmt.execute(rusqlite::params_from_iter(row))
                    .map_err(unavailable)?;
                linked = true;
                prev_hash = r.hash.clone();
                out.push(r);
            }
        }
        // Every row must have landed as written: a trigger or view planted
        // after this connection opened (RAISE(IGNORE), an INSTEAD OF) could
        // otherwise turn the insert into a silent no-op or a rewrite, and
        // the credential would go out with no receipt.
        if let (Some(first), Some(last)) = (out.first(), out.last()) {
            let landed: Vec<(i64, String)> = tx
                .prepare_cached(
                    "SELECT seq, hash FROM main.receipt_rows WHERE seq >= ?1 ORDER BY seq",
                )
                .and_then(|mut st| {
                    st.query_map([first.seq], |r| {
                        Ok((r.get(0)?, compact::hash_value(r.get_ref(1)?, 1)?))
                    })?
                    .collect()
                })
                .map_err(unavailable)?;
            let wrote = out.iter().map(|r| (r.seq, r.hash.clone()));
            if landed.len() != out.len() || !landed.iter().cloned().eq(wrote) {
                drop(tx);
                return Err(AuditError::Tampered {
                    path: self.path.clone(),
                    why: format!(
                        "receipts {}..={} did not land as written (the log holds {} rows from seq {}); something in the database rewrote or dropped them",
                        first.seq,
                        last.seq,
                        landed.len(),
                        first.seq
                    ),
                });
            }
        }
        tx.commit().map_err(unavailable)?;
        self.atoms.commit();
        if self.inline_index && !out.is_empty() {
            let first = out[0].seq;
            if seq / index::INLINE_EVERY != (first - 1) / index::INLINE_EVERY {
                // Best effort, and never waiting: the receipts are
                // durable, a lagging index only makes the next query read
                // a longer tail, and if the index is locked another
                // process is bringing it up to date already. An index far
                // behind (a copied or migrated log) is left to the next
                // query, which says it is catching up, rather than hold
                // this append for as long as that takes.
                if let Some(c) = self.query_conn() {
                    if c.busy_timeout(Duration::ZERO).is_ok()
                        && index::behind(c).is_some_and(|b| b < INDEX_NOTICE_FROM)
                    {
                        let _ = index::refresh(c);
                    }
                    let _ = c.busy_timeout(index::QUERY_BUSY);
                }
            }
        }
        Ok(Ok(out))
    }

    /// Appends `r` unless a receipt of the same kind for the same profile
    /// and run (status ok) exists, atomically: of two processes approving
    /// the same request at once, one appends and the other gets the
    /// existing receipt. Returns the receipt and whether it is new.
    pub fn append_once(&mut self, r: NewReceipt) -> Result<(Receipt, bool)> {
        let kind = r.kind;
        let profile = r.auth_profile_id.clone();
        let run = r.run_id.clone();
        match self.append_checked(vec![r], |tx, atoms| {
            let q = Lookup {
                profile: profile.as_deref(),
                kinds: &[kind],
                run: Some(run.as_deref()),
                any_status: false,
                newest_first: false,
            };
            Ok(q.run(tx, atoms, 1, |_| true)?.pop())
        })? {
            Ok(mut v) => Ok((v.remove(0), true)),
            Err(existing) => Ok((existing, false)),
        }
    }

    /// Appends an `approval` of the request `request` unless one exists,
    /// atomically: of two approvers at once, one appends and the other
    /// gets the existing receipt. Returns the receipt and whether it is
    /// new.
    pub fn append_approval(&mut self, r: NewReceipt, request: &str) -> Result<(Receipt, bool)> {
        let profile = r.auth_profile_id.clone();
        let run = r.run_id.clone();
        match self.append_checked(vec![r], |tx, atoms| {
            let q = Lookup {
                profile: profile.as_deref(),
                kinds: &[ReceiptKind::Approval],
                run: Some(run.as_deref()),
                any_status: false,
                newest_first: false,
            };
            Ok(q.run(tx, atoms, 1, |r| {
                detail_text(r, "request").as_deref() == Some(request)
            })?
            .pop())
        })? {
            Ok(mut v) => Ok((v.remove(0), true)),
            Err(existing) => Ok((existing, false)),
        }
    }

    /// Whether a call or a proxy session went through on the approval
    /// `approval` (a receipt id): `auth approvals` shows it as used. Reads
    /// the profile's receipts (no index holds details).
    pub fn approval_used(&self, profile: &str, approval: &str) -> Result<bool> {
        let q = Lookup {
            profile: Some(profile),
            kinds: &[ReceiptKind::CallStarted, ReceiptKind::Authorization],
            run: None,
            // Whatever came of the call, it went through on the approval.
            any_status: true,
            newest_first: false,
        };
        q.run(&self.conn, &self.atoms, 1, |r| {
            detail_text(r, "approval").as_deref() == Some(approval)
        })
        .map(|v| !v.is_empty())
        .map_err(|e| self.unavailable(e))
    }

    /// Receipts of `kind` (status ok) for a profile, and for a run when
    /// given, newest first, at most `limit`.
    pub fn find_recent(
        &self,
        profile: &str,
        kind: ReceiptKind,
        run: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Receipt>> {
        let q = Lookup {
            profile: Some(profile),
            kinds: &[kind],
            run: run.map(Some),
            any_status: false,
            newest_first: true,
        };
        q.run(&self.conn, &self.atoms, limit, |_| true)
            .map_err(|e| self.unavailable(e))
    }

    /// The first receipt of `kind` (status ok) for a profile, and for a run
    /// when given.
    pub fn find(
        &self,
        profile: &str,
        kind: ReceiptKind,
        run: Option<&str>,
    ) -> Result<Option<Receipt>> {
        let q = Lookup {
            profile: Some(profile),
            kinds: &[kind],
            run: run.map(Some),
            any_status: false,
            newest_first: false,
        };
        q.run(&self.conn, &self.atoms, 1, |_| true)
            .map(|mut v| v.pop())
            .map_err(|e| self.unavailable(e))
    }

    /// The SQL plan of [`AuditLog::find`] (for tests).
    pub fn explain_find(&self, kind: ReceiptKind, with_run: bool) -> Result<Vec<String>> {
        let q = Lookup {
            profile: Some("p"),
            kinds: &[kind],
            run: with_run.then_some(Some("r")),
            any_status: false,
            newest_first: false,
        };
        let kind_id: i64 = self
            .conn
            .query_row(
                "SELECT coalesce((SELECT id FROM atoms WHERE s = ?1), 0)",
                [kind.as_str()],
                |r| r.get(0),
            )
            .map_err(|e| self.unavailable(e))?;
        let sql = format!("EXPLAIN QUERY PLAN {}", q.sql(&[kind_id]));
        let mut stmt = self.conn.prepare(&sql).map_err(|e| self.unavailable(e))?;
        let rows = stmt
            .query_map(params![7, 8, with_run.then_some(9)], |r| {
                r.get::<_, String>(3)
            })
            .map_err(|e| self.unavailable(e))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(|e| self.unavailable(e))
    }

    /// A receipt by id (`rcpt_…`) or by seq. `id` has no index (schema
    /// 4): an id of the current form names the low 24 bits of its seq, so
    /// it is looked up by primary key; any other id (made by an earlier
    /// craik, or not found that way) by reading the log.
    pub fn get(&self, id_or_seq: &str) -> Result<Receipt> {
        let sql = format!(
            "SELECT {} FROM main.receipt_rows AS r WHERE ",
            compact::raw_columns("r")
        );
        let dec = Decoder::new(&self.conn);
        let found = if let Ok(seq) = id_or_seq.parse::<i64>() {
            self.conn
                .query_row(&(sql + "r.seq = ?1"), [seq], |r| dec.row(r))
                .optional()
        } else {
            let by_seq = || -> rusqlite::Result<Option<Receipt>> {
                let Some(low) = id_seq_bits(id_or_seq) else {
                    return Ok(None);
                };
                // Seqs of real logs stay far below this many spans; a row
                // planted at a huge seq must not make this loop endless
                // (the scan below still finds it).
                let max = last_seq(&self.conn)?.min(ID_SEQ_SPAN * MAX_ID_SPANS);
                let mut st = self.conn.prepare(&format!("{sql}r.seq = ?1"))?;
                let mut seq = low;
                while seq <= max {
                    if let Some(r) = st.query_row([seq], |r| dec.row(r)).optional()?
                        && r.id == id_or_seq
                    {
                        return Ok(Some(r));
                    }
                    seq += ID_SEQ_SPAN;
                }
                Ok(None)
            };
            match by_seq() {
                Ok(None) => self.find_id(id_or_seq),
                other => other,
            }
        };
        found
            .map_err(|e| self.unavailable(e))?
            .ok_or_else(|| AuditError::NotFound(id_or_seq.to_string()))
    }

    /// A receipt by id, reading the whole log: an id stored as bytes is
    /// compared as bytes, one stored as text as text.
    fn find_id(&self, id: &str) -> rusqlite::Result<Option<Receipt>> {
        let dec = Decoder::new(&self.conn);
        let bytes = id
            .strip_prefix("rcpt_")
            .filter(|h| !h.bytes().any(|b| b.is_ascii_uppercase()))
            .and_then(|h| hex::decode(h).ok());
        let mut st = self.conn.prepare(&format!(
            "SELECT {} FROM main.receipt_rows AS r WHERE r.id = ?1 OR r.id = ?2 ORDER BY r.seq LIMIT 1",
            compact::raw_columns("r")
        ))?;
        Ok(st
            .query_row(params![id, bytes], |r| dec.row(r))
            .optional()?
            .filter(|r| r.id == id))
    }

    /// Parses a receipt time back.
    pub fn parse_created(s: &str) -> Option<DateTime<Utc>> {
        DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|d| d.with_timezone(&Utc))
    }
}

#[cfg(test)]
mod tests {
    use super::{ID_SEQ_SPAN, id_seq_bits, new_receipt_id};

    #[test]
    fn receipt_ids_keep_the_schema_form_and_sort_by_time_then_seq() {
        let ids: Vec<String> = (1..=1000).map(new_receipt_id).collect();
        for id in &ids {
            let hex = id.strip_prefix("rcpt_").expect("prefix");
            assert_eq!(hex.len(), 24, "{id}");
            assert!(
                hex.bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
            );
        }
        // Made one after another: never equal, and in order.
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    }

    #[test]
    fn an_id_names_the_low_bits_of_its_seq() {
        for seq in [1, 2, 255, ID_SEQ_SPAN - 1, ID_SEQ_SPAN, ID_SEQ_SPAN + 7] {
            assert_eq!(id_seq_bits(&new_receipt_id(seq)), Some(seq % ID_SEQ_SPAN));
        }
        // Ids of older forms, and anything else, name no seq.
        for other in [
            "rcpt_018f2a3b4c5d6e7f8a9b",
            "rcpt_0123456789abcdef0123456z",
            "rcpt_",
            "",
            "rcpt_\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}",
        ] {
            assert_eq!(id_seq_bits(other), None, "{other}");
        }
    }
}
