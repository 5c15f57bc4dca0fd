-- craik audit log, schema version 5: the ranges of receipts archived and
-- pruned (craik receipts archive / prune). The log's chain goes on from
-- the last range's hash; each row is signed with the home's checkpoint key
-- (see src/audit/retention.rs for the signed message). An archive file has
-- the same schema, its own range as its last row.
CREATE TABLE archives (
    last_seq    INTEGER PRIMARY KEY,
    first_seq   INTEGER NOT NULL,
    prev_hash   TEXT NOT NULL,
    last_hash   TEXT NOT NULL,
    receipts    INTEGER NOT NULL,
    archived_at TEXT NOT NULL,
    public_key  TEXT NOT NULL,
    signature   TEXT NOT NULL
);
