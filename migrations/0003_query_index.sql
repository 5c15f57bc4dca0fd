-- craik audit log, schema version 3: the lookup indexes move out of the
-- log into its query index (audit-index.db, see src/audit/index.rs), so
-- that committing a receipt writes the table and its unique id only and
-- the fdatasync a caller waits on carries no index pages. The approval
-- gate's lookups stay here, exact and inside the append's transaction,
-- on a partial index that receipts of other kinds never touch.
DROP INDEX IF EXISTS receipts_by_created;
DROP INDEX IF EXISTS receipts_by_operator_subject;
DROP INDEX IF EXISTS receipts_by_operator_email;
DROP INDEX IF EXISTS receipts_by_operator_hash;
DROP INDEX IF EXISTS receipts_by_identity_hash;
DROP INDEX IF EXISTS receipts_by_profile;
DROP INDEX IF EXISTS receipts_by_run;
DROP INDEX IF EXISTS receipts_by_kind;
DROP INDEX IF EXISTS receipts_by_profile_kind;
CREATE INDEX receipts_approvals ON receipts (auth_profile_id, kind, seq)
    WHERE kind IN ('approval', 'approval_requested');
