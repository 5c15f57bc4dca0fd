//! The receipts table as the store's modules read it: its columns, a row
//! as a [`Receipt`], the last seq, and the SQL functions every connection
//! registers (profile patterns for `receipts list --profile`).

use rusqlite::Connection;

use crate::audit::Receipt;
use crate::pattern;

pub(in crate::audit) const COLUMNS: &str = "seq, id, created_at, kind, run_id, capability, status, reason, policy_condition, auth_profile_id, auth_kind, auth_identity_hash, provider_family, pool_id, operator_subject, operator_issuer, operator_email, operator_groups, operator_identity_hash, details, prev_hash, hash";

pub(in crate::audit) fn row_to_receipt(row: &rusqlite::Row<'_>) -> rusqlite::Result<Receipt> {
    Ok(Receipt {
        seq: row.get(0)?,
        id: row.get(1)?,
        created_at: row.get(2)?,
        kind: row.get(3)?,
        run_id: row.get(4)?,
        capability: row.get(5)?,
        status: row.get(6)?,
        reason: row.get(7)?,
        policy_condition: row.get(8)?,
        auth_profile_id: row.get(9)?,
        auth_kind: row.get(10)?,
        auth_identity_hash: row.get(11)?,
        provider_family: row.get(12)?,
        pool_id: row.get(13)?,
        operator_subject: row.get(14)?,
        operator_issuer: row.get(15)?,
        operator_email: row.get(16)?,
        operator_groups: row.get(17)?,
        operator_identity_hash: row.get(18)?,
        details: row.get(19)?,
        prev_hash: row.get(20)?,
        hash: row.get(21)?,
    })
}

/// The last seq in the log on `conn` (0 when it is empty).
pub(in crate::audit) fn last_seq(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("SELECT coalesce(max(seq), 0) FROM main.receipts", [], |r| {
        r.get(0)
    })
}

/// Registers `craik_profile_match(pattern, id)` on a connection that runs
/// queries: the profile patterns of policies (`*` within a part, `**`
/// across `:`, `?` one character), compiled once per statement.
pub(in crate::audit) fn add_functions(conn: &rusqlite::Connection) -> rusqlite::Result<()> {
    use rusqlite::functions::FunctionFlags;
    use rusqlite::types::ValueRef;
    conn.create_scalar_function(
        "craik_profile_match",
        2,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            let re = ctx.get_or_create_aux(0, |v| -> std::result::Result<_, BoxError> {
                Ok(pattern::compile(v.as_str()?)?)
            })?;
            Ok(match ctx.get_raw(1) {
                ValueRef::Text(t) => std::str::from_utf8(t).is_ok_and(|id| re.is_match(id)),
                _ => false,
            })
        },
    )
}

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;
