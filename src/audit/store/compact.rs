//! The compact row of a receipt (schema 6, migrations/0006_compact_rows.sql):
//! how a [`Receipt`] is stored in `receipt_rows`, and read back.
//!
//! A row holds the ids of repeated texts (in `atoms`), the receipt id and
//! hash as bytes, the time as milliseconds, `details` as a template and its
//! values, and no `prev_hash` when it is the hash of the row before. Every
//! one of those forms is used only when it gives back the exact text (the
//! encoder decodes what it made and compares); anything else is stored as
//! the text, so a row always reads back as the receipt that was hashed.
//! The `receipts` view rebuilds the same texts in SQL, for sqlite3.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use chrono::{DateTime, SecondsFormat};
use rusqlite::types::{Value, ValueRef};
use rusqlite::{Connection, OptionalExtension};

use crate::audit::chain::GENESIS;
use crate::audit::{CSV_HEADER, Receipt};

/// The stored columns of `receipt_rows`, in [`Decoder::row`]'s order: a
/// receipt's columns ([`CSV_HEADER`]), with `tmpl` before `details`.
pub(in crate::audit) const RAW: [&str; 23] = {
    let mut out = [""; 23];
    let mut i = 0;
    while i < CSV_HEADER.len() {
        out[if i < 19 { i } else { i + 1 }] = CSV_HEADER[i];
        i += 1;
    }
    out[19] = "tmpl";
    out
};

/// [`RAW`] as a select list, each column prefixed by `alias.`.
pub(in crate::audit) fn raw_columns(alias: &str) -> String {
    RAW.map(|c| format!("{alias}.{c}")).join(", ")
}

/// Stands for a scalar value in a template.
const HOLE: char = '\x1e';
/// Separates a template's values.
const SEP: char = '\x1f';
/// Time texts stored as milliseconds: up to the end of year 9999.
const MAX_MS: i64 = 253_402_300_799_999;

/// The receipt id's 12 bytes, for an id of the form craik writes.
fn id_bytes(id: &str) -> Option<Vec<u8>> {
    let hex = id.strip_prefix("rcpt_")?;
    if hex.len() != 24 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    hex::decode(hex).ok()
}

/// 32 bytes for a hash of 64 lower-case hex digits.
fn hash_bytes(h: &str) -> Option<Vec<u8>> {
    if h.len() != 64 || !h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    hex::decode(h).ok()
}

/// The time text of `ms` milliseconds, as craik writes it.
fn time_text(ms: i64) -> Option<String> {
    if !(0..=MAX_MS).contains(&ms) {
        return None;
    }
    Some(DateTime::from_timestamp_millis(ms)?.to_rfc3339_opts(SecondsFormat::Millis, true))
}

/// Milliseconds for a time text that reads back the same from them.
fn time_ms(t: &str) -> Option<i64> {
    if t.len() != 24 || !t.ends_with('Z') {
        return None;
    }
    let ms = DateTime::parse_from_rfc3339(t).ok()?.timestamp_millis();
    (time_text(ms)?.as_str() == t).then_some(ms)
}

/// The length of the JSON scalar (string, number, true, false, null) at
/// the start of `s`, if one is there.
fn scalar_len(s: &[u8]) -> Option<usize> {
    match *s.first()? {
        b'"' => {
            let mut i = 1;
            while i < s.len() {
                match s[i] {
                    b'\\' => i += 2,
                    b'"' => return Some(i + 1),
                    // JSON escapes control characters; a raw one (a NUL,
                    // where SQLite's text functions stop) is not this form.
                    0..=0x1f => return None,
                    _ => i += 1,
                }
            }
            None
        }
        b'-' | b'0'..=b'9' => Some(
            s.iter()
                .position(|b| !matches!(b, b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'))
                .unwrap_or(s.len()),
        ),
        _ => ["true", "false", "null"]
            .iter()
            .find(|w| s.starts_with(w.as_bytes()))
            .map(|w| w.len()),
    }
}

/// `details` as (template, values): every scalar value (after a `:` or in
/// an array) replaced by [`HOLE`] in the template, the values joined by
/// [`SEP`]. `None` when the text is not of the compact form serde_json
/// writes, or holds either separator.
fn split_details(details: &str) -> Option<(String, String)> {
    if details.contains([HOLE, SEP]) {
        return None;
    }
    let b = details.as_bytes();
    let (mut tmpl, mut vals) = (String::new(), String::new());
    let mut stack: Vec<u8> = Vec::new();
    let mut value_next = false;
    let mut holes = 0usize;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b'{' | b'[' => {
                stack.push(c);
                tmpl.push(c as char);
                value_next = c == b'[';
                i += 1;
            }
            b'}' | b']' => {
                stack.pop()?;
                tmpl.push(c as char);
                value_next = false;
                i += 1;
            }
            b':' => {
                tmpl.push(':');
                value_next = true;
                i += 1;
            }
            b',' => {
                tmpl.push(',');
                value_next = stack.last() == Some(&b'[');
                i += 1;
            }
            _ => {
                let n = scalar_len(&b[i..])?;
                let tok = &details[i..i + n];
                if value_next {
                    if holes > 0 {
                        vals.push(SEP);
                    }
                    holes += 1;
                    tmpl.push(HOLE);
                    vals.push_str(tok);
                } else {
                    tmpl.push_str(tok);
                }
                value_next = false;
                i += n;
            }
        }
    }
    if !stack.is_empty() {
        return None;
    }
    Some((tmpl, vals))
}

/// The details text of a template and its values; `None` when they do
/// not fit together.
fn join_details(tmpl: &str, vals: &str) -> Option<String> {
    let mut parts = tmpl.split(HOLE);
    let mut out = String::with_capacity(tmpl.len() + vals.len());
    out.push_str(parts.next()?);
    let mut rest = parts.peekable();
    if rest.peek().is_none() {
        return vals.is_empty().then_some(out);
    }
    let mut values = vals.split(SEP);
    for part in rest {
        out.push_str(values.next()?);
        out.push_str(part);
    }
    values.next().is_none().then_some(out)
}

/// A row that cannot be read back: `RAW[col]` and what is wrong with it.
fn conversion(col: usize, what: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        col,
        rusqlite::types::Type::Null,
        format!("{} {what}", RAW[col]).into(),
    )
}

/// Reads rows of `receipt_rows` back as receipts: atoms looked up once
/// each, and a `prev_hash` left out taken from the row before (the one
/// read just before when it is seq − 1, else looked up).
pub(in crate::audit) struct Decoder<'c> {
    conn: &'c Connection,
    /// The database holding the rows (`main`, or an attached name).
    db: &'static str,
    atoms: RefCell<HashMap<i64, Rc<str>>>,
    last: RefCell<Option<(i64, String)>>,
}

impl<'c> Decoder<'c> {
    pub(in crate::audit) fn new(conn: &'c Connection) -> Decoder<'c> {
        Decoder::of(conn, "main")
    }

    pub(in crate::audit) fn of(conn: &'c Connection, db: &'static str) -> Decoder<'c> {
        Decoder {
            conn,
            db,
            atoms: RefCell::default(),
            last: RefCell::default(),
        }
    }

    fn atom(&self, row: &rusqlite::Row<'_>, col: usize) -> rusqlite::Result<Option<String>> {
        let Some(id) = row.get::<_, Option<i64>>(col)? else {
            return Ok(None);
        };
        if let Some(s) = self.atoms.borrow().get(&id) {
            return Ok(Some(s.to_string()));
        }
        let s: Option<String> = self
            .conn
            .prepare_cached(&format!("SELECT s FROM {}.atoms WHERE id = ?1", self.db))?
            .query_row([id], |r| r.get(0))
            .optional()?;
        let s = s.ok_or_else(|| conversion(col, &format!("names atom {id}, which is missing")))?;
        self.atoms.borrow_mut().insert(id, Rc::from(s.as_str()));
        Ok(Some(s))
    }

    fn required(&self, row: &rusqlite::Row<'_>, col: usize) -> rusqlite::Result<String> {
        self.atom(row, col)?
            .ok_or_else(|| conversion(col, "is missing"))
    }

    /// The hash of the row before `seq`, as the view gives it.
    fn hash_before(&self, seq: i64) -> rusqlite::Result<String> {
        if let Some((s, h)) = &*self.last.borrow()
            && *s == seq - 1
        {
            return Ok(h.clone());
        }
        let prev: Option<Value> = self
            .conn
            .prepare_cached(&format!(
                "SELECT hash FROM {}.receipt_rows WHERE seq < ?1 ORDER BY seq DESC LIMIT 1",
                self.db
            ))?
            .query_row([seq], |r| r.get(0))
            .optional()?;
        match prev {
            None => Ok(GENESIS.to_string()),
            Some(v) => hash_value(ValueRef::from(&v), 22),
        }
    }

    /// A row of [`RAW`]'s columns as the receipt it stores.
    pub(in crate::audit) fn row(&self, row: &rusqlite::Row<'_>) -> rusqlite::Result<Receipt> {
        let seq: i64 = row.get(0)?;
        let id = match row.get_ref(1)? {
            ValueRef::Blob(b) => format!("rcpt_{}", hex::encode(b)),
            _ => row.get(1)?,
        };
        let created_at = match row.get_ref(2)? {
            ValueRef::Integer(ms) => {
                time_text(ms).ok_or_else(|| conversion(2, "is out of range"))?
            }
            _ => row.get(2)?,
        };
        let details = match row.get::<_, Option<i64>>(19)? {
            None => row.get(20)?,
            Some(t) => {
                let tmpl = self.required(row, 19)?;
                let vals: String = row.get(20)?;
                // Only the form the encoder makes: splitting the text again
                // must give back this template and these values. Any other
                // (a NUL in a value, which SQLite's own functions stop at,
                // so that the view would show less than was hashed) is
                // refused, and verify names the row.
                read_details(&tmpl, &vals).ok_or_else(|| {
                    conversion(
                        20,
                        &format!("are not in the form of their template (atom {t})"),
                    )
                })?
            }
        };
        let prev_hash = match row.get_ref(21)? {
            ValueRef::Null => self.hash_before(seq)?,
            v => hash_value(v, 21)?,
        };
        let hash = hash_value(row.get_ref(22)?, 22)?;
        let r = Receipt {
            seq,
            id,
            created_at,
            kind: self.required(row, 3)?,
            run_id: self.atom(row, 4)?,
            capability: self.atom(row, 5)?,
            status: self.required(row, 6)?,
            reason: row.get(7)?,
            policy_condition: self.atom(row, 8)?,
            auth_profile_id: self.atom(row, 9)?,
            auth_kind: self.atom(row, 10)?,
            auth_identity_hash: self.atom(row, 11)?,
            provider_family: self.atom(row, 12)?,
            pool_id: self.atom(row, 13)?,
            operator_subject: self.atom(row, 14)?,
            operator_issuer: self.atom(row, 15)?,
            operator_email: self.atom(row, 16)?,
            operator_groups: self.atom(row, 17)?,
            operator_identity_hash: self.atom(row, 18)?,
            details,
            prev_hash,
            hash,
        };
        *self.last.borrow_mut() = Some((r.seq, r.hash.clone()));
        Ok(r)
    }
}

/// A stored hash (or prev_hash) as text: bytes in lower-case hex.
pub(in crate::audit) fn hash_value(v: ValueRef<'_>, col: usize) -> rusqlite::Result<String> {
    match v {
        ValueRef::Blob(b) => Ok(hex::encode(b)),
        ValueRef::Text(t) => std::str::from_utf8(t)
            .map(str::to_string)
            .map_err(|_| conversion(col, "is not UTF-8")),
        ValueRef::Null => Err(conversion(col, "is missing")),
        _ => Err(conversion(col, "is not text")),
    }
}

/// A stored time as text (milliseconds written out).
pub(in crate::audit) fn time_value(v: ValueRef<'_>, col: usize) -> rusqlite::Result<String> {
    match v {
        ValueRef::Integer(ms) => time_text(ms).ok_or_else(|| conversion(col, "is out of range")),
        ValueRef::Text(t) => std::str::from_utf8(t)
            .map(str::to_string)
            .map_err(|_| conversion(col, "is not UTF-8")),
        _ => Err(conversion(col, "is not a time")),
    }
}

/// Atom ids by text, for a connection that appends: those committed, and
/// those of the transaction under way (kept apart until it commits, as a
/// rollback takes them back).
#[derive(Default)]
pub(in crate::audit) struct Atoms {
    committed: RefCell<HashMap<String, i64>>,
    pending: HashMap<String, i64>,
}

impl Atoms {
    /// The id of `s`, added to `atoms` if it is not there.
    pub(in crate::audit) fn intern(&mut self, conn: &Connection, s: &str) -> rusqlite::Result<i64> {
        if let Some(id) = self
            .committed
            .get_mut()
            .get(s)
            .or_else(|| self.pending.get(s))
        {
            return Ok(*id);
        }
        let found: Option<i64> = conn
            .prepare_cached("SELECT id FROM main.atoms WHERE s = ?1")?
            .query_row([s], |r| r.get(0))
            .optional()?;
        let id = match found {
            Some(id) => id,
            None => {
                conn.prepare_cached("INSERT INTO main.atoms (s) VALUES (?1)")?
                    .execute([s])?;
                conn.last_insert_rowid()
            }
        };
        self.pending.insert(s.to_string(), id);
        Ok(id)
    }

    /// The id of `s` if it is an atom, without adding it.
    pub(in crate::audit) fn find(
        &self,
        conn: &Connection,
        s: &str,
    ) -> rusqlite::Result<Option<i64>> {
        if let Some(id) = self.committed.borrow().get(s) {
            return Ok(Some(*id));
        }
        let found: Option<i64> = conn
            .prepare_cached("SELECT id FROM main.atoms WHERE s = ?1")?
            .query_row([s], |r| r.get(0))
            .optional()?;
        if let Some(id) = found {
            self.committed.borrow_mut().insert(s.to_string(), id);
        }
        Ok(found)
    }

    fn opt(&mut self, conn: &Connection, s: &Option<String>) -> rusqlite::Result<Value> {
        Ok(match s {
            Some(s) => Value::Integer(self.intern(conn, s)?),
            None => Value::Null,
        })
    }

    /// The transaction committed: its atoms are known for good.
    pub(in crate::audit) fn commit(&mut self) {
        self.committed.get_mut().extend(self.pending.drain());
    }

    /// The transaction rolled back: its atoms are gone.
    pub(in crate::audit) fn rollback(&mut self) {
        self.pending.clear();
    }

    /// The values of `r`'s row in [`RAW`]'s order; `linked` leaves
    /// `prev_hash` out (it is the hash of the row before).
    pub(in crate::audit) fn encode(
        &mut self,
        conn: &Connection,
        r: &Receipt,
        linked: bool,
    ) -> rusqlite::Result<[Value; 23]> {
        let text = |s: &str| Value::Text(s.to_string());
        let id = id_bytes(&r.id).map_or_else(|| text(&r.id), Value::Blob);
        let created_at = time_ms(&r.created_at).map_or_else(|| text(&r.created_at), Value::Integer);
        let (tmpl, details) = match template_form(&r.details) {
            Some((t, v)) => (Value::Integer(self.intern(conn, &t)?), Value::Text(v)),
            None => (Value::Null, text(&r.details)),
        };
        let hash = |h: &str| hash_bytes(h).map_or_else(|| text(h), Value::Blob);
        Ok([
            Value::Integer(r.seq),
            id,
            created_at,
            Value::Integer(self.intern(conn, &r.kind)?),
            self.opt(conn, &r.run_id)?,
            self.opt(conn, &r.capability)?,
            Value::Integer(self.intern(conn, &r.status)?),
            r.reason.clone().map_or(Value::Null, Value::Text),
            self.opt(conn, &r.policy_condition)?,
            self.opt(conn, &r.auth_profile_id)?,
            self.opt(conn, &r.auth_kind)?,
            self.opt(conn, &r.auth_identity_hash)?,
            self.opt(conn, &r.provider_family)?,
            self.opt(conn, &r.pool_id)?,
            self.opt(conn, &r.operator_subject)?,
            self.opt(conn, &r.operator_issuer)?,
            self.opt(conn, &r.operator_email)?,
            self.opt(conn, &r.operator_groups)?,
            self.opt(conn, &r.operator_identity_hash)?,
            tmpl,
            details,
            if linked {
                Value::Null
            } else {
                hash(&r.prev_hash)
            },
            hash(&r.hash),
        ])
    }
}

/// `details` as the log stores it and reads it back: through a template
/// and its values when the encoder takes that form, else as the text.
/// Always `details` itself; for the fuzz target and tests.
#[doc(hidden)]
pub fn stored_details(details: &str) -> Option<String> {
    match template_form(details) {
        Some((t, v)) => read_details(&t, &v),
        None => Some(details.to_string()),
    }
}

/// `details` as a template and its values when they join back into it.
/// The split is a function of the text, so the decoder's own check (the
/// rebuilt text splits into the same parts) then holds too, and is not
/// made again on the write path.
fn template_form(details: &str) -> Option<(String, String)> {
    split_details(details).filter(|(t, v)| join_details(t, v).as_deref() == Some(details))
}

/// A template and its values read back, in the encoder's form only.
fn read_details(tmpl: &str, vals: &str) -> Option<String> {
    join_details(tmpl, vals)
        .filter(|d| split_details(d).is_some_and(|(t2, v2)| t2 == tmpl && v2 == vals))
}

/// [`read_details`] of arbitrary parts (for the fuzz target): never
/// panics, and what it accepts splits back into the same parts.
#[doc(hidden)]
pub fn read_parts(tmpl: &str, vals: &str) -> Option<String> {
    read_details(tmpl, vals)
}

/// The insert of one row of [`RAW`]'s values.
pub(in crate::audit) fn insert_sql(db: &str) -> String {
    let holes: Vec<String> = (1..=RAW.len()).map(|i| format!("?{i}")).collect();
    format!(
        "INSERT INTO {db}.receipt_rows ({}) VALUES ({})",
        RAW.join(", "),
        holes.join(", ")
    )
}

/// The second half of migration 6: every row of the schema-5 table
/// `receipts_v5` into `receipt_rows`, then that table dropped. A row that
/// does not read as a receipt (damaged before) goes in through the view as
/// it is, so that `verify` still finds it.
pub(in crate::audit) fn convert(conn: &Connection) -> rusqlite::Result<()> {
    use super::schema::{COLUMNS, row_to_receipt};
    let mut atoms = Atoms::default();
    let mut insert = conn.prepare(&insert_sql("main"))?;
    let mut read = conn.prepare(&format!("SELECT {COLUMNS} FROM receipts_v5 ORDER BY seq"))?;
    let mut rows = read.query([])?;
    let mut prev: Option<String> = None;
    while let Some(row) = rows.next()? {
        match row_to_receipt(row) {
            Ok(r) => {
                let linked = prev.as_deref() == Some(r.prev_hash.as_str());
                insert.execute(rusqlite::params_from_iter(atoms.encode(conn, &r, linked)?))?;
                prev = Some(r.hash);
            }
            Err(_) => {
                let seq: Value = row.get(0)?;
                conn.execute(
                    &format!("INSERT INTO receipts ({COLUMNS}) SELECT {COLUMNS} FROM receipts_v5 WHERE seq = ?1"),
                    [seq],
                )?;
                prev = None;
            }
        }
    }
    drop(rows);
    drop(read);
    drop(insert);
    conn.execute_batch("DROP TABLE receipts_v5;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn details_split_into_a_template_and_back() {
        for d in [
            "{}",
            r#"{"a":1}"#,
            r#"{"approval":"rcpt_0","bytes":12,"ok":true,"x":null,"list":["a",2,{"k":"v"}],"nested":{"deep":[1.5e3,-2]}}"#,
            r#"{"s":"with \"quotes\" and \\ and , : { } [ ]"}"#,
            r#"{"empty":"","arr":[],"obj":{}}"#,
            r#"{"u":"\u001e"}"#,
        ] {
            let (t, v) = split_details(d).unwrap_or_else(|| panic!("{d}"));
            assert_eq!(join_details(&t, &v).as_deref(), Some(d), "{d}");
            assert!(!t.contains('"') || d.contains("\":"), "{t}");
        }
        // Keys stay in the template: receipts of one shape share it.
        let (a, _) = split_details(r#"{"bytes":1,"status":200}"#).unwrap();
        let (b, _) = split_details(r#"{"bytes":99,"status":502}"#).unwrap();
        assert_eq!(a, b);
        // Not of that form: stored as text.
        for d in [
            "{\"a\":\x1f1}",
            "{\"a\":tru}",
            "{\"a\":1",
            "{\"a\":1}}",
            "[1 2]",
        ] {
            let kept = split_details(d).filter(|(t, v)| join_details(t, v).as_deref() == Some(d));
            assert!(kept.is_none(), "{d:?}");
        }
    }

    #[test]
    fn times_ids_and_hashes_round_trip_or_stay_text() {
        for t in [
            "2026-12-06T22:17:44.123Z",
            "1970-01-01T00:00:00.000Z",
            "9999-12-31T23:59:59.999Z",
        ] {
            let ms = time_ms(t).unwrap_or_else(|| panic!("{t}"));
            assert_eq!(time_text(ms).as_deref(), Some(t));
        }
        for t in [
            "2026-12-06T22:17:44Z",
            "2026-12-06T22:17:44.123+00:00",
            "later",
            "1969-12-31T23:59:59.999Z",
        ] {
            assert_eq!(time_ms(t), None, "{t}");
        }
        assert!(id_bytes("rcpt_0123456789abcdef01234567").is_some());
        assert!(id_bytes("rcpt_0123456789ABCDEF01234567").is_none());
        assert!(hash_bytes(&"ab".repeat(32)).is_some());
        assert!(hash_bytes(&"AB".repeat(32)).is_none());
    }

    #[test]
    fn any_text_is_stored_as_itself() {
        use rand::{Rng, SeedableRng};
        let alphabet: Vec<char> = "{}[]:,\"\\ a1-.eE+tfnrul\x1e\x1f\0é".chars().collect();
        let mut rng = rand::rngs::StdRng::seed_from_u64(23);
        let mut templated = 0;
        for _ in 0..200_000 {
            let len = rng.gen_range(0..24);
            let s: String = (0..len)
                .map(|_| alphabet[rng.gen_range(0..alphabet.len())])
                .collect();
            assert_eq!(stored_details(&s).as_deref(), Some(s.as_str()), "{s:?}");
            if split_details(&s).is_some() {
                templated += 1;
            }
            // Arbitrary parts: no panic, and what is read splits back.
            let cut = rng.gen_range(0..=s.len());
            if let (Some(t), Some(v)) = (s.get(..cut), s.get(cut..))
                && let Some(d) = read_parts(t, v)
            {
                assert_eq!(split_details(&d), Some((t.to_string(), v.to_string())));
            }
        }
        assert!(templated > 1_000, "{templated}");
    }
}
