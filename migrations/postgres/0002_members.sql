-- craik's team store, schema 2: who each login is. A receipt's operator
-- is what the craik that wrote it says; the login that shipped it is the
-- server's word. craik_members ties a login to the one person (issuer,
-- subject) it belongs to, and to the groups other machines count for it,
-- written only by the store's administrator (`craik team member add`, the
-- tables' owner): an approval or a grant from another machine counts only
-- when the login that shipped it is the member it names, and by the
-- member's groups here, never those the receipt claims.

CREATE TABLE IF NOT EXISTS craik_members (
    login name PRIMARY KEY,
    issuer text NOT NULL CHECK (issuer <> ''),
    subject text NOT NULL CHECK (subject <> ''),
    groups text[] NOT NULL DEFAULT '{}',
    added_at timestamptz NOT NULL DEFAULT now(),
    added_by name NOT NULL DEFAULT session_user
);
REVOKE ALL ON craik_members FROM PUBLIC;
GRANT SELECT ON craik_members TO craik_writer, craik_reader;

-- Approvals and grants are looked up by profile.
CREATE INDEX IF NOT EXISTS craik_receipts_by_profile
    ON craik_receipts (auth_profile_id, kind, home_id, seq);

INSERT INTO craik_meta (key, value) VALUES ('schema_version', '2')
    ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value;
