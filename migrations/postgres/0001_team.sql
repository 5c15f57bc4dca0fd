-- craik's team store, schema 1 (applied by `craik team init`, the only
-- command that needs DDL rights). Every home appends to its own chain,
-- the same receipts (same seq, same hashes) its local audit.db holds.
-- craik_writer may INSERT and SELECT, never UPDATE or DELETE; a trigger
-- keeps each chain contiguous and linked; row-level security keeps each
-- login to the homes it registered.

CREATE TABLE IF NOT EXISTS craik_meta (
    key text PRIMARY KEY,
    value text NOT NULL
);

CREATE TABLE IF NOT EXISTS craik_homes (
    home_id text PRIMARY KEY CHECK (home_id ~ '^[0-9a-f]{32}$'),
    label text NOT NULL DEFAULT '',
    registered_at timestamptz NOT NULL DEFAULT now(),
    registered_by name NOT NULL DEFAULT session_user
);

-- Each chain's head: written only by the triggers below.
CREATE TABLE IF NOT EXISTS craik_chain_heads (
    home_id text PRIMARY KEY REFERENCES craik_homes (home_id),
    seq bigint NOT NULL,
    hash text NOT NULL
);

CREATE TABLE IF NOT EXISTS craik_receipts (
    home_id text NOT NULL REFERENCES craik_homes (home_id),
    seq bigint NOT NULL CHECK (seq >= 1),
    id text NOT NULL,
    created_at text NOT NULL,
    kind text NOT NULL,
    run_id text,
    capability text,
    status text NOT NULL,
    reason text,
    policy_condition text,
    auth_profile_id text,
    auth_kind text,
    auth_identity_hash text,
    provider_family text,
    pool_id text,
    operator_subject text,
    operator_issuer text,
    operator_email text,
    operator_groups text,
    operator_identity_hash text,
    details text NOT NULL,
    prev_hash text NOT NULL,
    hash text NOT NULL,
    shipped_at timestamptz NOT NULL DEFAULT now(),
    shipped_by name NOT NULL DEFAULT session_user,
    PRIMARY KEY (home_id, seq)
);
CREATE INDEX IF NOT EXISTS craik_receipts_by_kind ON craik_receipts (kind, home_id, seq);
CREATE INDEX IF NOT EXISTS craik_receipts_by_operator ON craik_receipts (operator_identity_hash, home_id, seq);

-- The triggers run as the tables' owner: their search_path puts a
-- session's temporary schema last and their tables are qualified, so a
-- writer's temporary table of the same name is never the one they touch.
-- Chains belong to the session's login (session_user), whatever role it
-- SETs.

-- A new home's chain starts at seq 0 with the genesis hash.
CREATE OR REPLACE FUNCTION craik_home_registered() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    INSERT INTO public.craik_chain_heads (home_id, seq, hash)
    VALUES (NEW.home_id, 0, repeat('0', 64));
    RETURN NEW;
END $$;
DROP TRIGGER IF EXISTS craik_home_registered ON craik_homes;
CREATE TRIGGER craik_home_registered AFTER INSERT ON craik_homes
    FOR EACH ROW EXECUTE FUNCTION craik_home_registered();

-- Who shipped a receipt, and when, is the server's word: the login of the
-- session (a writer cannot name another), now.
CREATE OR REPLACE FUNCTION craik_receipt_stamped() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    NEW.shipped_by := session_user;
    NEW.shipped_at := now();
    RETURN NEW;
END $$;
DROP TRIGGER IF EXISTS craik_receipt_stamped ON craik_receipts;
CREATE TRIGGER craik_receipt_stamped BEFORE INSERT ON craik_receipts
    FOR EACH ROW EXECUTE FUNCTION craik_receipt_stamped();

-- The receipts of one INSERT must follow their chain's head: the next
-- seqs, each linked by hash to the one before. Checked once per statement
-- (a batch), with the head row locked, so two writers of one home never
-- fork a chain; then the head moves once.
CREATE OR REPLACE FUNCTION craik_receipts_appended() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    home text;
    head_seq bigint;
    head_hash text;
    bad_seq bigint;
    last_seq bigint;
    last_hash text;
BEGIN
    FOR home IN SELECT DISTINCT n.home_id FROM new_rows n LOOP
        SELECT c.seq, c.hash INTO head_seq, head_hash
        FROM public.craik_chain_heads c WHERE c.home_id = home FOR UPDATE;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'craik: home % is not registered', home
                USING ERRCODE = 'foreign_key_violation';
        END IF;
        SELECT t.seq INTO bad_seq FROM (
            SELECT n.seq, n.prev_hash,
                   lag(n.seq) OVER w AS pseq, lag(n.hash) OVER w AS phash,
                   row_number() OVER w AS rn
            FROM new_rows n WHERE n.home_id = home
            WINDOW w AS (ORDER BY n.seq)
        ) t
        WHERE (t.rn = 1 AND (t.seq <> head_seq + 1 OR t.prev_hash <> head_hash))
           OR (t.rn > 1 AND (t.seq <> t.pseq + 1 OR t.prev_hash <> t.phash))
        ORDER BY t.seq LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'craik: receipt % of home % does not follow its chain''s head (seq %)',
                bad_seq, home, head_seq
                USING ERRCODE = 'check_violation';
        END IF;
        SELECT n.seq, n.hash INTO last_seq, last_hash
        FROM new_rows n WHERE n.home_id = home ORDER BY n.seq DESC LIMIT 1;
        UPDATE public.craik_chain_heads SET seq = last_seq, hash = last_hash
        WHERE craik_chain_heads.home_id = home;
    END LOOP;
    RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS craik_receipt_appended ON craik_receipts;
DROP FUNCTION IF EXISTS craik_receipt_appended();
DROP TRIGGER IF EXISTS craik_receipts_appended ON craik_receipts;
CREATE TRIGGER craik_receipts_appended AFTER INSERT ON craik_receipts
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION craik_receipts_appended();

-- Roles: members are granted by the DBA (GRANT craik_writer TO alice).
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'craik_writer') THEN
        CREATE ROLE craik_writer NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'craik_reader') THEN
        CREATE ROLE craik_reader NOLOGIN;
    END IF;
END $$;
REVOKE ALL ON craik_meta, craik_homes, craik_chain_heads, craik_receipts FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION craik_home_registered(), craik_receipts_appended(), craik_receipt_stamped() FROM PUBLIC;
GRANT SELECT ON craik_meta, craik_homes, craik_chain_heads, craik_receipts
    TO craik_writer, craik_reader;
GRANT INSERT ON craik_homes, craik_receipts TO craik_writer;

ALTER TABLE craik_homes ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS craik_homes_read ON craik_homes;
CREATE POLICY craik_homes_read ON craik_homes FOR SELECT USING (true);
DROP POLICY IF EXISTS craik_homes_own ON craik_homes;
CREATE POLICY craik_homes_own ON craik_homes FOR INSERT TO craik_writer
    WITH CHECK (registered_by = session_user);

ALTER TABLE craik_receipts ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS craik_receipts_read ON craik_receipts;
CREATE POLICY craik_receipts_read ON craik_receipts FOR SELECT USING (true);
DROP POLICY IF EXISTS craik_receipts_own ON craik_receipts;
CREATE POLICY craik_receipts_own ON craik_receipts FOR INSERT TO craik_writer
    WITH CHECK (EXISTS (
        SELECT 1 FROM craik_homes h
        WHERE h.home_id = craik_receipts.home_id AND h.registered_by = session_user
    ));

INSERT INTO craik_meta (key, value) VALUES ('schema_version', '1')
    ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value;
