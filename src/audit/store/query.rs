//! Queries over the log: list, export (streaming) and stats. Every filter
//! is served by the query index (see [`super::index`] and the EXPLAIN
//! QUERY PLAN test), plus a walk of the log's tail after the index's last
//! seq.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use rusqlite::types::Value;
use serde::Serialize;

use super::compact::{self, Decoder};
use super::{INDEX_NOTICE_FROM, Notice, index};
use crate::audit::{AuditError, AuditLog, Receipt, Result};
use crate::pattern;

/// What to select. Every field narrows the result.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Subject or email.
    pub operator: Option<String>,
    pub operator_hash: Option<String>,
    /// A profile id, or a pattern as in policies: `*` any characters but
    /// `:`, `**` any characters, `?` one character; case-sensitive here
    /// (policies ignore case).
    pub profile: Option<String>,
    pub identity_hash: Option<String>,
    pub kind: Option<String>,
    pub status: Option<String>,
    pub run: Option<String>,
    /// A pool id: receipts of calls the pool chose a profile for.
    pub pool: Option<String>,
    /// Only receipts before this seq (a page of a listing).
    pub before: Option<i64>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub limit: Option<usize>,
    /// Oldest first (export) instead of newest first (list).
    pub ascending: bool,
}

/// How far back a relative time may reach.
const MAX_AGO: std::time::Duration = std::time::Duration::from_secs(200 * 366 * 24 * 3600);

/// `RFC 3339`, or a duration before now (`30s`, `15m`, `24h`, `7d`, `2w`,
/// `1h30m`: see [`crate::duration`]).
pub fn parse_time(s: &str) -> Result<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    let ago = crate::duration::parse(s, MAX_AGO).map_err(|e| match e {
        crate::duration::DurationError::TooLong { .. } => {
            AuditError::Time(format!("the time {s:?} reaches back more than 200 years"))
        }
        _ => AuditError::Time(format!("cannot read the time {s:?}")),
    })?;
    let ago = Duration::from_std(ago)
        .map_err(|_| AuditError::Time(format!("cannot read the time {s:?}")))?;
    Ok(Utc::now() - ago)
}

/// A time as the log writes it (clamped to the years 0000-9999, the
/// range the form holds).
fn ts(t: &DateTime<Utc>) -> String {
    let last = DateTime::<Utc>::from_timestamp_millis(253_402_300_799_999).expect("9999-12-31");
    let first = DateTime::<Utc>::from_timestamp_millis(-62_167_219_200_000).expect("0000-01-01");
    (*t).clamp(first, last)
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The milliseconds of a time argument of the form [`ts`] writes, as the
/// query index stores times.
const MS: &str = "(unixepoch(substr(?, 1, 19)) * 1000 + CAST(substr(?, 21, 3) AS INTEGER))";

/// Whether a `--profile` value is a pattern rather than an id.
fn is_pattern(p: &str) -> bool {
    p.contains(['*', '?'])
}

/// A GLOB that matches every id `p` matches (and more: its `*` crosses
/// `:`); `p` has passed [`pattern::compile`], so it holds no `[`.
fn glob_superset(p: &str) -> String {
    p.replace("**", "*")
}

impl Filter {
    /// Refuses a `profile` that policies would refuse as a pattern (every
    /// profile id is a valid pattern): it could match nothing.
    pub fn check(&self) -> Result<()> {
        if let Some(p) = &self.profile {
            pattern::compile(p).map_err(|e| AuditError::Filter(format!("--profile: {e}")))?;
        }
        Ok(())
    }

    /// The filter's conditions on table alias `t`, and their arguments:
    /// `e` is the query index's entries (values as ids of `idx.names` and
    /// `idx.operators`, times in milliseconds), any other alias the log's
    /// receipts. Both sides take the same arguments in the same order.
    /// With `walk`, a profile pattern is matched row by row along seq
    /// rather than through the profile index (see [`Filter::walk`]).
    fn conds(&self, t: &str, walk: bool, ops: &Operators) -> (Vec<String>, Vec<Value>) {
        let index = t == "e";
        let mut conds: Vec<String> = Vec::new();
        let mut args: Vec<Value> = Vec::new();
        // A condition on the entries and the same on the log, each with
        // `$t` for the alias and `?` for the argument.
        let mut push = |on_index: &str, on_log: &str, v: &str| {
            args.push(Value::Text(v.to_string()));
            let cond = if index { on_index } else { on_log };
            conds.push(
                cond.replace('?', &format!("?{}", args.len()))
                    .replace("$t", t),
            );
        };
        // A column that holds a name's id in the index.
        let name = |col: &str, plus: bool| {
            let plus = if plus { "+" } else { "" };
            (
                format!("{plus}$t.{col} = (SELECT id FROM idx.names WHERE s = ?)"),
                format!("$t.{col} = ?"),
            )
        };
        if let Some(op) = &self.operator {
            let col = if op.contains('@') { "email" } else { "subject" };
            push(
                &ops.by_operator.as_deref().map_or_else(
                    || format!("$t.operator IN (SELECT id FROM idx.operators WHERE {col} = ?)"),
                    Operators::term,
                ),
                &format!("$t.operator_{col} = ?"),
                op,
            );
        }
        if let Some(h) = &self.operator_hash {
            push(
                &ops.by_hash.as_deref().map_or_else(
                    || {
                        "$t.operator IN (SELECT id FROM idx.operators WHERE identity_hash = ?)"
                            .into()
                    },
                    Operators::term,
                ),
                "$t.operator_identity_hash = ?",
                h,
            );
        }
        if let Some(p) = &self.profile {
            let p = &crate::pattern::normalize_alias(p);
            if is_pattern(p) {
                // GLOB for the index's range (it matches a superset), the
                // policies' own matching for the answer.
                let plus = if walk { "+" } else { "" };
                push(
                    &format!(
                        "{plus}$t.auth_profile_id IN (SELECT id FROM idx.names WHERE s GLOB ?)"
                    ),
                    &format!("{plus}$t.auth_profile_id GLOB ?"),
                    &glob_superset(p),
                );
                push(
                    "craik_profile_match(?, (SELECT s FROM idx.names WHERE id = $t.auth_profile_id))",
                    "craik_profile_match(?, $t.auth_profile_id)",
                    p,
                );
            } else {
                let (i, l) = name("auth_profile_id", false);
                push(&i, &l, p);
            }
        }
        if let Some(h) = &self.identity_hash {
            let (i, l) = name("auth_identity_hash", false);
            push(&i, &l, h);
        }
        if let Some(k) = &self.kind {
            // Beside a narrower condition, the kind's index would win the
            // planner's guess and walk every receipt of that kind newest
            // first (half the log for call.finished): `+` keeps it out.
            let (i, l) = name("kind", self.narrowed());
            push(&i, &l, k);
        }
        if let Some(s) = &self.status {
            let (i, l) = name("status", false);
            push(&i, &l, s);
        }
        if let Some(r) = &self.run {
            let (i, l) = name("run_id", false);
            push(&i, &l, r);
        }
        if let Some(p) = &self.pool {
            let (i, l) = name("pool_id", false);
            push(&i, &l, p);
        }
        if let Some(b) = &self.before {
            let c = "$t.seq < CAST(? AS INTEGER)";
            push(c, c, &b.to_string());
        }
        if let Some(t) = &self.since {
            push(
                &format!("$t.created_at >= {MS}"),
                "$t.created_at >= ?",
                &ts(t),
            );
        }
        if let Some(t) = &self.until {
            push(
                &format!("$t.created_at <= {MS}"),
                "$t.created_at <= ?",
                &ts(t),
            );
        }
        (conds, args)
    }

    /// Whether a condition narrower than a kind is set (an operator, a
    /// profile, a credential, a run, a pool).
    fn narrowed(&self) -> bool {
        self.operator.is_some()
            || self.operator_hash.is_some()
            || self.profile.is_some()
            || self.identity_hash.is_some()
            || self.run.is_some()
            || self.pool.is_some()
    }

    fn dir(&self) -> &'static str {
        if self.ascending { "ASC" } else { "DESC" }
    }

    /// The query over the index: each entry that matches, read back from
    /// the log and checked again there (the last argument is the index's
    /// last seq).
    fn indexed_sql(&self, walk: bool, ops: &Operators) -> (String, Vec<Value>) {
        let (mut conds, args) = self.conds("e", walk, ops);
        let (again, _) = self.conds("r", walk, ops);
        conds.extend(again);
        conds.insert(0, format!("e.seq <= ?{}", args.len() + 1));
        let dir = self.dir();
        // created_at is non-decreasing along seq (the log enforces it), so
        // ordering by (created_at, seq) is chain order and lets a time-range
        // query walk its index.
        let only_time = self.operator.is_none()
            && self.operator_hash.is_none()
            && self.profile.is_none()
            && self.identity_hash.is_none()
            && self.run.is_none()
            && self.pool.is_none()
            && (self.since.is_some() || self.until.is_some());
        let order = if only_time {
            format!("e.created_at {dir}, e.seq {dir}")
        } else {
            format!("e.seq {dir}")
        };
        // The filter is checked again on the log's view (r), and the row
        // read as stored (x) is decoded by craik.
        let sql = format!(
            "SELECT {} FROM idx.entries AS e CROSS JOIN main.receipts AS r ON r.seq = e.seq CROSS JOIN main.receipt_rows AS x ON x.seq = e.seq WHERE {} ORDER BY {order}",
            compact::raw_columns("x"),
            conds.join(" AND ")
        );
        (sql, args)
    }

    /// The query over the log itself, for receipts after the seq given as
    /// the last argument (all of them when the index is not used).
    fn tail_sql(&self) -> (String, Vec<Value>) {
        let (conds, args) = self.conds("r", false, &Operators::default());
        let mut sql = format!(
            "SELECT {} FROM main.receipts AS r CROSS JOIN main.receipt_rows AS x ON x.seq = r.seq WHERE r.seq > ?{}",
            compact::raw_columns("x"),
            args.len() + 1
        );
        for c in conds {
            sql.push_str(" AND ");
            sql.push_str(&c);
        }
        sql.push_str(&format!(" ORDER BY r.seq {}", self.dir()));
        (sql, args)
    }

    /// Whether the index serves this filter: it does when the filter has a
    /// condition other than status (a plain listing walks the log by seq).
    fn uses_index(&self) -> bool {
        let f = Filter {
            status: None,
            limit: None,
            ascending: false,
            ..self.clone()
        };
        !f.conds("e", false, &Operators::default()).0.is_empty()
    }

    /// Whether a page of a profile pattern's receipts is found faster by
    /// walking the index newest first (or oldest) and matching each row,
    /// than by reading the pattern's whole range of the profile index and
    /// sorting it by seq. The walk reads about `limit × total ÷ matches`
    /// entries, the range `matches`: it wins once the pattern matches more
    /// than √(limit × total), which a count through the index up to that
    /// many tells cheaply.
    fn walk(&self, conn: &rusqlite::Connection, upto: i64) -> bool {
        let (Some(p), Some(limit)) = (&self.profile, self.limit) else {
            return false;
        };
        let p = crate::pattern::normalize_alias(p);
        if !is_pattern(&p) {
            return false;
        }
        let enough = ((limit as f64) * (upto as f64)).sqrt().ceil() as i64;
        conn.query_row(
            "SELECT count(*) FROM (SELECT 1 FROM idx.entries WHERE auth_profile_id IN (SELECT id FROM idx.names WHERE s GLOB ?1) AND seq <= ?2 LIMIT ?3)",
            rusqlite::params![glob_superset(&p), upto, enough],
            |r| r.get::<_, i64>(0),
        )
        .is_ok_and(|n| n >= enough)
    }
}

/// The ids in the index of the operators a filter names, looked up before
/// the query: with `operator IN (SELECT ...)` SQLite cannot tell that one
/// operator comes back, and sorts every receipt of it before the first
/// page (91 ms for a first page of 50 among 20,000 of an operator's
/// receipts); with the ids written out, one id walks the operator's index
/// in seq order. `None` where they could not be read: the subquery then.
#[derive(Default)]
struct Operators {
    by_operator: Option<Vec<i64>>,
    by_hash: Option<Vec<i64>>,
}

impl Operators {
    fn of(conn: &rusqlite::Connection, filter: &Filter) -> Operators {
        let ids = |col: &str, v: &str| -> Option<Vec<i64>> {
            let mut st = conn
                .prepare(&format!(
                    "SELECT id FROM idx.operators WHERE {col} = ?1 ORDER BY id"
                ))
                .ok()?;
            st.query_map([v], |r| r.get(0))
                .ok()?
                .collect::<rusqlite::Result<Vec<i64>>>()
                .ok()
        };
        Operators {
            by_operator: filter
                .operator
                .as_deref()
                .and_then(|op| ids(if op.contains('@') { "email" } else { "subject" }, op)),
            by_hash: filter
                .operator_hash
                .as_deref()
                .and_then(|h| ids("identity_hash", h)),
        }
    }

    /// The entries' term for `ids`; its `?` (the operator's text, which
    /// the log's side checks) is only bound.
    fn term(ids: &[i64]) -> String {
        let ids: Vec<String> = ids.iter().map(i64::to_string).collect();
        format!("$t.operator IN ({}) AND ? IS NOT NULL", ids.join(", "))
    }
}

/// Runs one query, giving each row to `f` while `left` allows; false once
/// `f` wants no more (the reader went away) or the limit is reached.
fn stream(
    conn: &rusqlite::Connection,
    sql: &str,
    args: Vec<Value>,
    left: &mut Option<usize>,
    f: &mut impl FnMut(Receipt) -> std::io::Result<()>,
) -> Result<bool> {
    if *left == Some(0) {
        return Ok(false);
    }
    let q = |e: rusqlite::Error| AuditError::Query(e.to_string());
    let mut stmt = conn.prepare(sql).map_err(q)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(args)).map_err(q)?;
    let dec = Decoder::new(conn);
    while let Some(row) = rows.next().map_err(q)? {
        let r = dec.row(row).map_err(q)?;
        if let Err(e) = f(r) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(false);
            }
            return Err(AuditError::Query(e.to_string()));
        }
        if let Some(n) = left {
            *n -= 1;
            if *n == 0 {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

/// Streams `filter`'s receipts: from the index up to `upto` (none when 0)
/// and from the log after it, in the filter's order.
fn stream_filter(
    conn: &rusqlite::Connection,
    filter: &Filter,
    upto: i64,
    f: &mut impl FnMut(Receipt) -> std::io::Result<()>,
) -> Result<()> {
    let mut left = filter.limit;
    let mut parts = vec![filter.tail_sql()];
    if upto > 0 {
        // The tail holds the newest receipts.
        let at = if filter.ascending { 0 } else { 1 };
        let ops = Operators::of(conn, filter);
        parts.insert(at, filter.indexed_sql(filter.walk(conn, upto), &ops));
    }
    for (sql, mut args) in parts {
        args.push(Value::Integer(upto));
        if !stream(conn, &sql, args, &mut left, f)? {
            break;
        }
    }
    Ok(())
}

/// Counts by kind, status, profile and operator.
#[derive(Debug, Default, Serialize)]
pub struct Stats {
    pub total: i64,
    pub by_kind: BTreeMap<String, i64>,
    pub by_status: BTreeMap<String, i64>,
    pub by_profile: BTreeMap<String, i64>,
    pub by_operator: BTreeMap<String, i64>,
    /// `--team`: receipts per home (its label and id).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub by_home: BTreeMap<String, i64>,
}

impl AuditLog {
    /// The connection for queries and whether it has the index attached,
    /// after bringing the index up to date when it can (the log's own
    /// connection when the index cannot be opened).
    fn for_query(&self) -> (&rusqlite::Connection, bool) {
        match self.query_conn() {
            Some(c) => {
                if let Some(behind) = index::behind(c)
                    && behind >= INDEX_NOTICE_FROM
                {
                    (self.notice)(&Notice::Indexing {
                        path: index::index_path(&self.path),
                        behind,
                    });
                }
                // A rebuild erases the one trace of receipts cut from the
                // log's end: say so first.
                if let Some(warning) = index::lost_before_refresh(c, &self.path) {
                    (self.notice)(&Notice::IndexMismatch { warning });
                }
                let _ = index::refresh(c);
                (c, true)
            }
            None => (&self.conn, false),
        }
    }

    /// The SQL plans of a filter's queries: the one over the index, then
    /// the one over the log's tail (for tests and `--explain`).
    pub fn explain(&self, filter: &Filter) -> Result<Vec<String>> {
        let (conn, indexed) = self.for_query();
        let q = |e: rusqlite::Error| AuditError::Query(e.to_string());
        let mut out = Vec::new();
        let mut plans = vec![filter.tail_sql()];
        if indexed && filter.uses_index() {
            plans.insert(0, filter.indexed_sql(false, &Operators::of(conn, filter)));
        }
        for (sql, mut args) in plans {
            args.push(Value::Integer(0));
            let mut stmt = conn
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .map_err(q)?;
            let rows = stmt
                .query_map(rusqlite::params_from_iter(args), |r| r.get::<_, String>(3))
                .map_err(q)?;
            for r in rows {
                out.push(r.map_err(q)?);
            }
        }
        Ok(out)
    }

    /// Receipts matching `filter`.
    pub fn list(&self, filter: &Filter) -> Result<Vec<Receipt>> {
        let mut out = Vec::new();
        self.for_each(filter, |r| {
            out.push(r);
            Ok(())
        })?;
        Ok(out)
    }

    /// Streams receipts matching `filter` to `f`, one at a time: newest
    /// first, or oldest first with `ascending`.
    pub fn for_each(
        &self,
        filter: &Filter,
        mut f: impl FnMut(Receipt) -> std::io::Result<()>,
    ) -> Result<()> {
        filter.check()?;
        let (conn, indexed) = self.for_query();
        let q = |e: rusqlite::Error| AuditError::Query(e.to_string());
        // One read transaction: the index's snapshot first, then the log's
        // (no older), so the tail holds exactly what the index lacks.
        let tx = conn.unchecked_transaction().map_err(q)?;
        let upto = if indexed && filter.uses_index() {
            index::upto(&tx).unwrap_or(0)
        } else {
            0
        };
        let emitted = std::cell::Cell::new(0usize);
        let mut counted = |r: Receipt| {
            emitted.set(emitted.get() + 1);
            f(r)
        };
        match stream_filter(&tx, filter, upto, &mut counted) {
            // A damaged index file: the same query over the log alone, if
            // nothing was given out yet.
            Err(_) if upto > 0 && emitted.get() == 0 => stream_filter(&tx, filter, 0, &mut counted),
            other => other,
        }
    }

    /// The kinds of receipt the log holds, sorted (to tell a `--kind` that
    /// matched nothing from one no receipt has). Reads the whole log.
    pub fn kinds(&self) -> Result<Vec<String>> {
        let q = |e: rusqlite::Error| AuditError::Query(e.to_string());
        let mut st = self
            .conn
            .prepare("SELECT DISTINCT kind FROM receipts ORDER BY kind")
            .map_err(q)?;
        let kinds = st
            .query_map([], |r| r.get(0))
            .map_err(q)?
            .collect::<rusqlite::Result<Vec<String>>>()
            .map_err(q)?;
        Ok(kinds)
    }

    pub fn stats(&self) -> Result<Stats> {
        let (conn, indexed) = self.for_query();
        let q = |e: rusqlite::Error| AuditError::Query(e.to_string());
        let tx = conn.unchecked_transaction().map_err(q)?;
        let upto = if indexed {
            index::upto(&tx).unwrap_or(0)
        } else {
            0
        };
        match stats_from(&tx, upto) {
            // A damaged index file: count over the log alone.
            Err(_) if upto > 0 => stats_from(&tx, 0),
            other => other,
        }
    }
}

/// Counts from the index up to `upto` (none when 0) and the log after it.
fn stats_from(tx: &rusqlite::Connection, upto: i64) -> Result<Stats> {
    let q = |e: rusqlite::Error| AuditError::Query(e.to_string());
    // Counted in the index up to `upto` (by its ids, each id's text looked
    // up once), and in the log after it.
    let counts = |col: &str, on_index: &str| -> Result<Vec<(Option<String>, i64)>> {
        let tail = format!(
            "SELECT {col} AS k, count(*) AS n FROM main.receipts WHERE seq > ?1 GROUP BY 1"
        );
        let sql = if upto > 0 {
            let (key, text) = on_index.split_once(" => ").unwrap_or((on_index, on_index));
            let text = text.replace("$k", "g.k");
            format!(
                "SELECT k, sum(n) FROM ({tail} UNION ALL SELECT {text} AS k, g.n FROM (SELECT {key} AS k, count(*) AS n FROM idx.entries WHERE seq <= ?1 GROUP BY 1) AS g) GROUP BY k"
            )
        } else {
            tail
        };
        let mut stmt = tx.prepare(&sql).map_err(q)?;
        let rows = stmt
            .query_map([upto], |r| {
                Ok((r.get::<_, Option<String>>(0)?, r.get::<_, i64>(1)?))
            })
            .map_err(q)?;
        rows.collect::<rusqlite::Result<_>>().map_err(q)
    };
    let mut s = Stats {
        total: counts("'all'", "'all'")?.iter().map(|(_, n)| n).sum(),
        ..Default::default()
    };
    let name = |col: &str| format!("{col} => (SELECT s FROM idx.names WHERE id = $k)");
    for (col, on_index, map) in [
        ("kind", name("kind"), &mut s.by_kind),
        ("status", name("status"), &mut s.by_status),
        (
            "auth_profile_id",
            name("auth_profile_id"),
            &mut s.by_profile,
        ),
        (
            "coalesce(operator_email, operator_subject)",
            "operator => (SELECT coalesce(email, subject) FROM idx.operators WHERE id = $k)".into(),
            &mut s.by_operator,
        ),
    ] {
        for (k, n) in counts(col, &on_index)? {
            if let Some(k) = k {
                map.insert(k, n);
            }
        }
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert!(parse_time("24h").is_ok());
        assert!(parse_time("7d").is_ok());
        assert!(parse_time("2026-01-31T12:00:00Z").is_ok());
        // Found by cargo fuzz: a multi-byte last character must not panic.
        for bad in ["", "h", "ƍŉ", "1ŉ", "-1h", "99999999999d", "201y"] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
    }
}
