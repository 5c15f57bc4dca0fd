-- craik audit log, schema version 2: approvals are looked up by profile,
-- kind and status together (the approval gate polls this).
CREATE INDEX receipts_by_profile_kind ON receipts (auth_profile_id, kind, seq);
