-- craik audit log, schema version 4: `id` loses its UNIQUE index. Every
-- commit rewrote that index's leaf and interior pages: a commit of 16
-- receipts wrote 7.9 WAL frames with it and 5.2 without (docs/benchmarks.md),
-- and each of those bytes is in the fdatasync a caller waits on. An id is
-- covered by the receipt's hash like every other field, and ids of the
-- current form carry the low 24 bits of their seq, so `receipts show <id>`
-- finds them through the primary key (src/audit/log.rs, `AuditLog::get`).
--
-- SQLite cannot drop a column constraint's index, so the table is copied
-- into one without it, row for row, inside the migration's transaction.
CREATE TABLE receipts_v4 (
    seq                    INTEGER PRIMARY KEY,
    id                     TEXT NOT NULL,
    created_at             TEXT NOT NULL,
    kind                   TEXT NOT NULL,
    run_id                 TEXT,
    capability             TEXT,
    status                 TEXT NOT NULL,
    reason                 TEXT,
    policy_condition       TEXT,
    auth_profile_id        TEXT,
    auth_kind              TEXT,
    auth_identity_hash     TEXT,
    provider_family        TEXT,
    pool_id                TEXT,
    operator_subject       TEXT,
    operator_issuer        TEXT,
    operator_email         TEXT,
    operator_groups        TEXT,
    operator_identity_hash TEXT,
    details                TEXT NOT NULL,
    prev_hash              TEXT NOT NULL,
    hash                   TEXT NOT NULL
);
INSERT INTO receipts_v4 (seq, id, created_at, kind, run_id, capability, status, reason, policy_condition, auth_profile_id, auth_kind, auth_identity_hash, provider_family, pool_id, operator_subject, operator_issuer, operator_email, operator_groups, operator_identity_hash, details, prev_hash, hash)
    SELECT seq, id, created_at, kind, run_id, capability, status, reason, policy_condition, auth_profile_id, auth_kind, auth_identity_hash, provider_family, pool_id, operator_subject, operator_issuer, operator_email, operator_groups, operator_identity_hash, details, prev_hash, hash
    FROM receipts ORDER BY seq;
DROP TABLE receipts;
ALTER TABLE receipts_v4 RENAME TO receipts;
CREATE INDEX receipts_approvals ON receipts (auth_profile_id, kind, seq)
    WHERE kind IN ('approval', 'approval_requested');
