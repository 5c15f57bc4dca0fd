-- craik audit log, schema version 6: compact rows (issue 23, "receipts
-- that cost less on disk"). A receipt took ~600 bytes, most of them texts
-- repeated from row to row and hashes stored as hex, twice.
--
-- - `atoms` holds each repeated text once (kinds, statuses, runs, profiles,
--   credential and operator identity hashes, operators' names, the key
--   layout of `details`); a row holds their ids.
-- - `receipt_rows` holds the receipts: an id of the form `rcpt_` + 24 hex
--   as its 12 bytes, `created_at` as milliseconds when it reads back as
--   the same text, `hash` as its 32 bytes, `prev_hash` NULL when it is the
--   hash of the row before, and `details` as the id of its template (its
--   JSON with each scalar value replaced by \x1e) and the values, joined
--   by \x1f. Any value craik would not write in that form (an older
--   craik's, one written through the view below) is kept as it is, text.
-- - `receipts` is a view that gives back every receipt exactly as it was
--   hashed, for sqlite3 and any other reader. Writes to it go through the
--   triggers below, which store the plain form, and keep the link of the
--   row after an edited or deleted one as it was. craik itself reads and
--   writes `receipt_rows` (src/audit/store/compact.rs); the chain's hash
--   covers the same texts as before, so no hash changes.
--
-- The rows of the schema-5 table are converted by craik after this script
-- (`compact::convert`), then that table is dropped.
DROP INDEX IF EXISTS receipts_approvals;
ALTER TABLE receipts RENAME TO receipts_v5;

CREATE TABLE atoms (
    id INTEGER PRIMARY KEY,
    s  TEXT NOT NULL UNIQUE
);
-- Fixed ids for the two kinds the approval gate looks up, so that its
-- partial index can name them.
INSERT INTO atoms (id, s) VALUES (1, 'approval'), (2, 'approval_requested');

CREATE TABLE receipt_rows (
    seq                    INTEGER PRIMARY KEY,
    id                     NOT NULL,
    created_at             NOT NULL,
    kind                   INTEGER NOT NULL,
    run_id                 INTEGER,
    capability             INTEGER,
    status                 INTEGER NOT NULL,
    reason                 TEXT,
    policy_condition       INTEGER,
    auth_profile_id        INTEGER,
    auth_kind              INTEGER,
    auth_identity_hash     INTEGER,
    provider_family        INTEGER,
    pool_id                INTEGER,
    operator_subject       INTEGER,
    operator_issuer        INTEGER,
    operator_email         INTEGER,
    operator_groups        INTEGER,
    operator_identity_hash INTEGER,
    tmpl                   INTEGER,
    details                TEXT NOT NULL,
    prev_hash,
    hash                   NOT NULL
);
CREATE INDEX receipt_rows_approvals ON receipt_rows (auth_profile_id, kind, seq)
    WHERE kind IN (1, 2);

CREATE VIEW receipts AS SELECT r.seq AS seq,
    CASE typeof(r.id) WHEN 'blob' THEN 'rcpt_' || lower(hex(r.id)) ELSE r.id END AS id,
    CASE typeof(r.created_at) WHEN 'integer'
        THEN strftime('%Y-%m-%dT%H:%M:%S', r.created_at / 1000, 'unixepoch') || '.' || printf('%03d', r.created_at % 1000) || 'Z'
        ELSE r.created_at END AS created_at,
    (SELECT s FROM atoms WHERE id = r.kind) AS kind,
    (SELECT s FROM atoms WHERE id = r.run_id) AS run_id,
    (SELECT s FROM atoms WHERE id = r.capability) AS capability,
    (SELECT s FROM atoms WHERE id = r.status) AS status,
    r.reason AS reason,
    (SELECT s FROM atoms WHERE id = r.policy_condition) AS policy_condition,
    (SELECT s FROM atoms WHERE id = r.auth_profile_id) AS auth_profile_id,
    (SELECT s FROM atoms WHERE id = r.auth_kind) AS auth_kind,
    (SELECT s FROM atoms WHERE id = r.auth_identity_hash) AS auth_identity_hash,
    (SELECT s FROM atoms WHERE id = r.provider_family) AS provider_family,
    (SELECT s FROM atoms WHERE id = r.pool_id) AS pool_id,
    (SELECT s FROM atoms WHERE id = r.operator_subject) AS operator_subject,
    (SELECT s FROM atoms WHERE id = r.operator_issuer) AS operator_issuer,
    (SELECT s FROM atoms WHERE id = r.operator_email) AS operator_email,
    (SELECT s FROM atoms WHERE id = r.operator_groups) AS operator_groups,
    (SELECT s FROM atoms WHERE id = r.operator_identity_hash) AS operator_identity_hash,
    CASE WHEN r.tmpl IS NULL THEN r.details ELSE (
        WITH RECURSIVE x(o, t, v) AS (
            SELECT '', (SELECT s FROM atoms WHERE id = r.tmpl), r.details || char(31)
            UNION ALL
            SELECT o || substr(t, 1, instr(t, char(30)) - 1) || substr(v, 1, instr(v, char(31)) - 1),
                   substr(t, instr(t, char(30)) + 1), substr(v, instr(v, char(31)) + 1)
            FROM x WHERE instr(t, char(30)) > 0)
        SELECT o || t FROM x WHERE instr(t, char(30)) = 0) END AS details,
    coalesce(CASE typeof(r.prev_hash) WHEN 'blob' THEN lower(hex(r.prev_hash)) ELSE r.prev_hash END,
        (SELECT CASE typeof(p.hash) WHEN 'blob' THEN lower(hex(p.hash)) ELSE p.hash END
            FROM receipt_rows AS p WHERE p.seq < r.seq ORDER BY p.seq DESC LIMIT 1),
        '0000000000000000000000000000000000000000000000000000000000000000') AS prev_hash,
    CASE typeof(r.hash) WHEN 'blob' THEN lower(hex(r.hash)) ELSE r.hash END AS hash
FROM receipt_rows AS r;

CREATE TRIGGER receipts_insert INSTEAD OF INSERT ON receipts BEGIN
    INSERT OR IGNORE INTO atoms (s) VALUES (NEW.kind), (NEW.run_id), (NEW.capability),
        (NEW.status), (NEW.policy_condition), (NEW.auth_profile_id), (NEW.auth_kind),
        (NEW.auth_identity_hash), (NEW.provider_family), (NEW.pool_id), (NEW.operator_subject),
        (NEW.operator_issuer), (NEW.operator_email), (NEW.operator_groups),
        (NEW.operator_identity_hash);
    INSERT INTO receipt_rows (seq, id, created_at, kind, run_id, capability, status, reason, policy_condition, auth_profile_id, auth_kind, auth_identity_hash, provider_family, pool_id, operator_subject, operator_issuer, operator_email, operator_groups, operator_identity_hash, tmpl, details, prev_hash, hash)
    VALUES (NEW.seq, NEW.id, NEW.created_at,
        (SELECT id FROM atoms WHERE s = NEW.kind), (SELECT id FROM atoms WHERE s = NEW.run_id),
        (SELECT id FROM atoms WHERE s = NEW.capability), (SELECT id FROM atoms WHERE s = NEW.status),
        NEW.reason, (SELECT id FROM atoms WHERE s = NEW.policy_condition),
        (SELECT id FROM atoms WHERE s = NEW.auth_profile_id), (SELECT id FROM atoms WHERE s = NEW.auth_kind),
        (SELECT id FROM atoms WHERE s = NEW.auth_identity_hash), (SELECT id FROM atoms WHERE s = NEW.provider_family),
        (SELECT id FROM atoms WHERE s = NEW.pool_id), (SELECT id FROM atoms WHERE s = NEW.operator_subject),
        (SELECT id FROM atoms WHERE s = NEW.operator_issuer), (SELECT id FROM atoms WHERE s = NEW.operator_email),
        (SELECT id FROM atoms WHERE s = NEW.operator_groups), (SELECT id FROM atoms WHERE s = NEW.operator_identity_hash),
        NULL, NEW.details, NEW.prev_hash, NEW.hash);
END;

CREATE TRIGGER receipts_update INSTEAD OF UPDATE ON receipts BEGIN
    UPDATE receipt_rows SET prev_hash = OLD.hash
        WHERE seq = (SELECT min(seq) FROM receipt_rows WHERE seq > OLD.seq) AND prev_hash IS NULL;
    INSERT OR IGNORE INTO atoms (s) VALUES (NEW.kind), (NEW.run_id), (NEW.capability),
        (NEW.status), (NEW.policy_condition), (NEW.auth_profile_id), (NEW.auth_kind),
        (NEW.auth_identity_hash), (NEW.provider_family), (NEW.pool_id), (NEW.operator_subject),
        (NEW.operator_issuer), (NEW.operator_email), (NEW.operator_groups),
        (NEW.operator_identity_hash);
    UPDATE receipt_rows SET seq = NEW.seq, id = NEW.id, created_at = NEW.created_at,
        kind = (SELECT id FROM atoms WHERE s = NEW.kind), run_id = (SELECT id FROM atoms WHERE s = NEW.run_id),
        capability = (SELECT id FROM atoms WHERE s = NEW.capability), status = (SELECT id FROM atoms WHERE s = NEW.status),
        reason = NEW.reason, policy_condition = (SELECT id FROM atoms WHERE s = NEW.policy_condition),
        auth_profile_id = (SELECT id FROM atoms WHERE s = NEW.auth_profile_id), auth_kind = (SELECT id FROM atoms WHERE s = NEW.auth_kind),
        auth_identity_hash = (SELECT id FROM atoms WHERE s = NEW.auth_identity_hash), provider_family = (SELECT id FROM atoms WHERE s = NEW.provider_family),
        pool_id = (SELECT id FROM atoms WHERE s = NEW.pool_id), operator_subject = (SELECT id FROM atoms WHERE s = NEW.operator_subject),
        operator_issuer = (SELECT id FROM atoms WHERE s = NEW.operator_issuer), operator_email = (SELECT id FROM atoms WHERE s = NEW.operator_email),
        operator_groups = (SELECT id FROM atoms WHERE s = NEW.operator_groups), operator_identity_hash = (SELECT id FROM atoms WHERE s = NEW.operator_identity_hash),
        tmpl = NULL, details = NEW.details, prev_hash = NEW.prev_hash, hash = NEW.hash
        WHERE seq = OLD.seq;
END;

CREATE TRIGGER receipts_delete INSTEAD OF DELETE ON receipts BEGIN
    UPDATE receipt_rows SET prev_hash = OLD.hash
        WHERE seq = (SELECT min(seq) FROM receipt_rows WHERE seq > OLD.seq) AND prev_hash IS NULL;
    DELETE FROM receipt_rows WHERE seq = OLD.seq;
END;
