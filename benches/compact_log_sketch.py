#!/usr/bin/env python3
# A sketch of a compact audit log (issue 23, "Receipts that cost less on
# disk"), measured, not built: converts a real audit.db into the layout
# below, prints the bytes per receipt, checks that a view over it gives
# back every column of every receipt byte for byte, and times reading
# through the view against the original table and the compact rows.
#
# The layout: repeated texts (kind, run, status, profile, credential
# identity hash, operator fields...) stored once in `atoms`, the row
# holding their ids; the receipt id (rcpt_ + 24 hex) and the hash as
# blobs; created_at as milliseconds when it round-trips; prev_hash not
# stored when it is the previous row's hash; details split into a
# template of its keys (an atom, each scalar value replaced by \x1e) and
# its values joined by \x1f. The hash chain is unchanged: the view
# rebuilds the exact texts the hashes cover.
#
# Run (stdlib only), on a log whose WAL is checkpointed:
#   sqlite3 "$CRAIK_HOME/audit.db" 'PRAGMA wal_checkpoint(TRUNCATE)'
#   benches/compact_log_sketch.py "$CRAIK_HOME/audit.db" /tmp/compact.db
import sqlite3, sys, os, time, re
src, dst = sys.argv[1], sys.argv[2]
if os.path.exists(dst): os.remove(dst)
s = sqlite3.connect(src); d = sqlite3.connect(dst)
ATOM_COLS = ["kind","run_id","capability","status","policy_condition","auth_profile_id","auth_kind",
             "auth_identity_hash","provider_family","pool_id","operator_subject","operator_issuer",
             "operator_email","operator_groups","operator_identity_hash"]
d.executescript("""
PRAGMA page_size=4096; PRAGMA journal_mode=DELETE;
CREATE TABLE atoms (id INTEGER PRIMARY KEY, s TEXT NOT NULL UNIQUE);
CREATE TABLE receipt_rows (seq INTEGER PRIMARY KEY, id, created_at,
 kind INTEGER NOT NULL, run_id INTEGER, capability INTEGER, status INTEGER NOT NULL, reason TEXT,
 policy_condition INTEGER, auth_profile_id INTEGER, auth_kind INTEGER, auth_identity_hash INTEGER,
 provider_family INTEGER, pool_id INTEGER, operator_subject INTEGER, operator_issuer INTEGER,
 operator_email INTEGER, operator_groups INTEGER, operator_identity_hash INTEGER,
 tmpl INTEGER, details TEXT NOT NULL, prev_hash TEXT, hash NOT NULL);
""")
atoms = {}
def atom(v):
    if v is None: return None
    if v not in atoms:
        atoms[v] = len(atoms) + 1
        d.execute("INSERT INTO atoms VALUES (?, ?)", (atoms[v], v))
    return atoms[v]
VAL = re.compile(r'"(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null')
def split(details):
    # scalar values (after ':' or in an array) become \x1e in the template; keys stay
    out, vals, i, stack, after_colon = [], [], 0, [], False
    if '\x1e' in details or '\x1f' in details: return None
    while i < len(details):
        c = details[i]
        if c in '{[': stack.append(c); out.append(c); i += 1; after_colon = False; continue
        if c in '}]': stack.pop(); out.append(c); i += 1; continue
        if c == ':': after_colon = True; out.append(c); i += 1; continue
        if c == ',': out.append(c); i += 1; after_colon = False; continue
        m = VAL.match(details, i)
        if not m: return None
        tok = m.group(0)
        if after_colon or (stack and stack[-1] == '['):
            out.append('\x1e'); vals.append(tok)
        else:
            out.append(tok)
        after_colon = False; i = m.end()
    return ''.join(out), '\x1f'.join(vals)
HEX = re.compile(r'[0-9a-f]{64}\Z'); RID = re.compile(r'rcpt_([0-9a-f]{24})\Z')
TS = re.compile(r'(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)\.(\d{3})Z\Z')
import calendar
def ms(t):
    m = TS.match(t)
    if not m: return t
    y,mo,da,h,mi,se,f = map(int, m.groups())
    v = calendar.timegm((y,mo,da,h,mi,se)) * 1000 + f
    return v
rows = s.execute("SELECT * FROM receipts ORDER BY seq").fetchall()
cols = [c[0] for c in s.execute("SELECT * FROM receipts LIMIT 0").description]
prev = "0" * 64
d.execute("BEGIN")
for r in rows:
    r = dict(zip(cols, r))
    rid = RID.match(r["id"]); rid = bytes.fromhex(rid.group(1)) if rid else r["id"]
    sp = split(r["details"])
    tmpl, det = (atom(sp[0]), sp[1]) if sp else (None, r["details"])
    h = bytes.fromhex(r["hash"]) if HEX.match(r["hash"]) else r["hash"]
    d.execute("INSERT INTO receipt_rows VALUES (" + ",".join("?" * 23) + ")",
        [r["seq"], rid, ms(r["created_at"])] + [atom(r[c]) for c in ATOM_COLS[:4]] + [r["reason"]]
        + [atom(r[c]) for c in ATOM_COLS[4:]] + [tmpl, det, None if r["prev_hash"] == prev else r["prev_hash"], h])
    prev = r["hash"]
d.commit()
d.execute("VACUUM")
n = len(rows)
print(f"receipts {n}  atoms {len(atoms)}  compact file {os.path.getsize(dst)} bytes = {os.path.getsize(dst)/n:.0f} bytes/receipt")
for c in ["id","created_at","details","hash","tmpl","kind","auth_identity_hash"]:
    print(c, "%.1f" % d.execute(f"SELECT avg(coalesce(length({c}),0)) FROM receipt_rows").fetchone()[0])
def a(c): return f"(SELECT s FROM atoms WHERE id = r.{c}) AS {c}"
HX = "CASE typeof({0}) WHEN 'blob' THEN lower(hex({0})) ELSE {0} END"
d.executescript(f"""
CREATE VIEW receipts AS SELECT r.seq,
 CASE typeof(r.id) WHEN 'blob' THEN 'rcpt_' || lower(hex(r.id)) ELSE r.id END AS id,
 CASE typeof(r.created_at) WHEN 'integer' THEN strftime('%Y-%m-%dT%H:%M:%S', r.created_at / 1000, 'unixepoch') || '.' || printf('%03d', r.created_at % 1000) || 'Z' ELSE r.created_at END AS created_at,
 {a('kind')}, {a('run_id')}, {a('capability')}, {a('status')}, r.reason, {a('policy_condition')}, {a('auth_profile_id')}, {a('auth_kind')},
 {a('auth_identity_hash')}, {a('provider_family')}, {a('pool_id')}, {a('operator_subject')}, {a('operator_issuer')}, {a('operator_email')},
 {a('operator_groups')}, {a('operator_identity_hash')},
 CASE WHEN r.tmpl IS NULL THEN r.details ELSE (
  WITH RECURSIVE x(o, t, v) AS (
   SELECT '', (SELECT s FROM atoms WHERE id = r.tmpl), r.details || char(31)
   UNION ALL
   SELECT o || substr(t, 1, instr(t, char(30)) - 1) || substr(v, 1, instr(v, char(31)) - 1),
          substr(t, instr(t, char(30)) + 1), substr(v, instr(v, char(31)) + 1)
   FROM x WHERE instr(t, char(30)) > 0)
  SELECT o || t FROM x WHERE instr(t, char(30)) = 0) END AS details,
 coalesce(r.prev_hash, (SELECT {HX.format('p.hash')} FROM receipt_rows p WHERE p.seq < r.seq ORDER BY p.seq DESC LIMIT 1),
   '0000000000000000000000000000000000000000000000000000000000000000') AS prev_hash,
 {HX.format('r.hash')} AS hash
FROM receipt_rows r;
""")
t = time.time(); back = d.execute("SELECT * FROM receipts ORDER BY seq").fetchall(); tv = time.time() - t
t = time.time(); orig = s.execute("SELECT * FROM receipts ORDER BY seq").fetchall(); to = time.time() - t
bad = sum(1 for x, y in zip(back, orig) if tuple(x) != tuple(y))
print(f"view rows equal to the original: {n - bad}/{n}; full read: view {tv:.2f} s, original table {to:.2f} s")
for cols in ["seq, id, created_at, kind, run_id, status, auth_profile_id, auth_identity_hash, hash",
             "seq, prev_hash", "seq, details"]:
    t = time.time(); d.execute(f"SELECT {cols} FROM receipts ORDER BY seq").fetchall()
    print(f"read through the view ({cols}): {time.time() - t:.2f} s")
t = time.time(); d.execute("SELECT * FROM receipt_rows ORDER BY seq").fetchall()
print(f"read the compact rows as stored: {time.time() - t:.2f} s")
