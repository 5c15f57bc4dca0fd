-- craik audit log, schema version 1: the receipts table and its indexes.
CREATE TABLE receipts (
    seq                    INTEGER PRIMARY KEY,
    id                     TEXT NOT NULL UNIQUE,
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

CREATE INDEX receipts_by_created ON receipts (created_at, seq);
CREATE INDEX receipts_by_operator_subject ON receipts (operator_subject, seq);
CREATE INDEX receipts_by_operator_email ON receipts (operator_email, seq);
CREATE INDEX receipts_by_operator_hash ON receipts (operator_identity_hash, seq);
CREATE INDEX receipts_by_identity_hash ON receipts (auth_identity_hash, seq);
CREATE INDEX receipts_by_profile ON receipts (auth_profile_id, seq);
CREATE INDEX receipts_by_run ON receipts (run_id, seq);
CREATE INDEX receipts_by_kind ON receipts (kind, seq);
