#!/usr/bin/env bash
# The proxy's added latency with a team store (issue 21, "Benchmark"): one
# local upstream (examples/bench_upstream.rs) and two `craik proxy`s in one
# run, measured alternately at fixed rates:
#   direct  - the load generator straight at the upstream
#   sqlite  - craik proxy, a home on its own (durable receipts in audit.db)
#   team    - craik proxy, a home joined to a PostgreSQL team store started
#             here (receipts durable in audit.db first, shipped every second)
# Each rate in RATES (default 100 and 1,000 req/s) runs oha -q RATE
# --latency-correction (open loop) against the three, ROUNDS times,
# alternating. Afterwards: the team home's backlog (all shipped?),
# `receipts verify --team`, and a Markdown table of p50/p99/p99.9 and the
# latency each proxy adds over the upstream alone.
#
# Installs nothing. Needs: oha, PostgreSQL's server programs (initdb,
# pg_ctl; Debian's postgresql), psql, curl, python3, cargo (unless CRAIK
# and UPSTREAM name prebuilt binaries); run as root, the server runs as
# the postgres user. Knobs: RATES="100 1000" DURATION=15s ROUNDS=2
# CONNS=16 BENCH_DIR (on a real disk) CRAIK UPSTREAM.
set -euo pipefail
cd "$(dirname "$0")/.."

RATES=${RATES:-100 1000}
DURATION=${DURATION:-15s}
ROUNDS=${ROUNDS:-2}
CONNS=${CONNS:-16}

missing=0
need() {
    if ! command -v "$1" >/dev/null 2>&1; then
        echo "proxy_team.sh needs $1; install it with: $2" >&2
        missing=1
    fi
}
need oha "cargo install oha --locked"
need psql "apt-get install -y postgresql"
need curl "apt-get install -y curl"
need python3 "apt-get install -y python3"
PGBIN=$(dirname "$(command -v initdb || ls -d /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -n 1 || true)")
if [ ! -x "$PGBIN/initdb" ]; then
    echo "proxy_team.sh needs PostgreSQL's server programs (initdb, pg_ctl); install them with: apt-get install -y postgresql" >&2
    missing=1
fi
[ "$missing" = 0 ] || exit 2

if [ -z "${CRAIK:-}" ] || [ -z "${UPSTREAM:-}" ]; then
    echo "== building (cargo build --release --bin craik --example bench_upstream)" >&2
    cargo build --quiet --release --bin craik --example bench_upstream
    CRAIK=${CRAIK:-$PWD/target/release/craik}
    UPSTREAM=${UPSTREAM:-$PWD/target/release/examples/bench_upstream}
fi
tree=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD -- src migrations Cargo.toml Cargo.lock 2>/dev/null || tree="$tree + uncommitted changes"

parent=${BENCH_DIR:-${TMPDIR:-/tmp}}
work=$(mktemp -d "$parent/craik-proxy-team.XXXXXX")
chmod 755 "$work"
export CRAIK_KEYRING_BACKEND=file CRAIK_KEYRING_PASSWORD=bench-password
pids=()
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    as_pg "$PGBIN/pg_ctl" -D "$work/pg/data" -m fast -w stop >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

wait_file() {
    for _ in $(seq 100); do [ -s "$1" ] && return 0; sleep 0.1; done
    echo "timed out waiting for $1" >&2
    return 1
}
jget() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# --- PostgreSQL, private: its own data directory, port and socket
mkdir -p "$work/pg"
printf %s admin-bench > "$work/pg/pw"
[ "$(id -u)" = 0 ] && chown -R postgres:postgres "$work/pg"
pgport=$(free_port)
as_pg "$PGBIN/initdb" -D "$work/pg/data" -U craik_admin -A scram-sha-256 \
    --pwfile="$work/pg/pw" >/dev/null
as_pg "$PGBIN/pg_ctl" -D "$work/pg/data" -l "$work/pg/log" -w \
    -o "-p $pgport -k $work/pg -c listen_addresses=127.0.0.1" start >/dev/null
url() { echo "postgres://$1@127.0.0.1:$pgport/postgres"; }
printf %s admin-bench | CRAIK_HOME=$work/admin "$CRAIK" team init --url "$(url craik_admin)" --password-stdin >/dev/null
PGPASSWORD=admin-bench psql -q "$(url craik_admin)" -c \
    "CREATE ROLE bench LOGIN PASSWORD 'bench-pw'; GRANT craik_writer TO bench;"

# --- the upstream
"$UPSTREAM" 0 --threads 2 > "$work/upstream.port" &
pids+=($!)
wait_file "$work/upstream.port"
uport=$(head -n1 "$work/upstream.port")

# --- two homes, one proxy each
start_proxy() { # start_proxy NAME
    local home=$work/$1
    printf %s sk-bench | CRAIK_HOME=$home "$CRAIK" auth add local:bench --kind=keyring-ref --stdin \
        --base-url "http://127.0.0.1:$uport" >/dev/null
    if [ "$1" = team ]; then
        printf %s bench-pw | CRAIK_HOME=$home "$CRAIK" team join --url "$(url bench)" \
            --password-stdin --label bench >/dev/null
    fi
    CRAIK_HOME=$home "$CRAIK" proxy --profile local:bench --json > "$work/$1.proxy.json" &
    pids+=($!)
    eval "${1}_pid=$!"
    wait_file "$work/$1.proxy.json"
}
start_proxy sqlite
start_proxy team

body='{"model":"bench-model","messages":[{"role":"user","content":"Say ok."}],"max_tokens":1}'
declare -A url auth
url[direct]="http://127.0.0.1:$uport/chat/completions"
auth[direct]="Bearer sk-bench"
for t in sqlite team; do
    url[$t]="http://$(jget "$work/$t.proxy.json" listen)/chat/completions"
    auth[$t]="Bearer $(jget "$work/$t.proxy.json" token)"
done

results=$work/results.jsonl
: > "$results"
run_oha() { # run_oha TARGET RATE ROUND
    oha -z "$DURATION" -c "$CONNS" -q "$2" --latency-correction -w \
        --no-tui --output-format json -m POST -T application/json \
        -H "authorization: ${auth[$1]}" -d "$body" "${url[$1]}" > "$work/out.json"
    python3 - "$work/out.json" "$1" "$2" "$3" >> "$results" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
codes = d.get("statusCodeDistribution") or {}
p = d["latencyPercentiles"]
print(json.dumps({"target": sys.argv[2], "rate": int(sys.argv[3]), "round": int(sys.argv[4]),
    "rps": d["summary"]["requestsPerSec"], "p50": p["p50"] * 1e6, "p99": p["p99"] * 1e6,
    "p999": p["p99.9"] * 1e6, "bad": sum(v for k, v in codes.items() if k != "200")
    + sum((d.get("errorDistribution") or {}).values())}))
EOF
    echo "   $(tail -n1 "$results")" >&2
}

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); craik $tree; homes on $(stat -f -c %T "$work")" >&2
for t in direct sqlite team; do
    oha -z 2s -c "$CONNS" -q 200 --no-tui -m POST -T application/json \
        -H "authorization: ${auth[$t]}" -d "$body" "${url[$t]}" >/dev/null
done
for rate in $RATES; do
    for round in $(seq "$ROUNDS"); do
        for t in direct sqlite team; do run_oha "$t" "$rate" "$round"; done
    done
done

# --- the team home's receipts all shipped, and the store verifies
sleep 2
kill -TERM "$team_pid" "$sqlite_pid"
wait "$team_pid" "$sqlite_pid" 2>/dev/null || true
CRAIK_HOME=$work/team "$CRAIK" team status --json > "$work/status.json" || true
CRAIK_HOME=$work/team "$CRAIK" receipts verify --team --json > "$work/verify.json" || true

python3 - "$results" "$work/status.json" "$work/verify.json" "$DURATION" "$CONNS" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
status = json.load(open(sys.argv[2]))
verify = json.load(open(sys.argv[3]))
def us(v):
    return f"{v / 1000:.2f} ms" if v >= 1000 else f"{v:.0f} µs"
def sus(v):
    return ("+" if v >= 0 else "−") + us(abs(v))
def med(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2] if len(xs) % 2 else (xs[len(xs) // 2 - 1] + xs[len(xs) // 2]) / 2
names = {"direct": "upstream direct", "sqlite": "craik proxy, home alone (SQLite)",
         "team": "craik proxy, home in a team (SQLite + PostgreSQL)"}
print(f"| rate | target | achieved req/s | p50 | p99 | p99.9 | added p50 | added p99 |")
print("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
verdicts = []
for rate in sorted({r["rate"] for r in rows}):
    agg = {}
    for t in ("direct", "sqlite", "team"):
        rs = [r for r in rows if r["rate"] == rate and r["target"] == t]
        agg[t] = {k: med([r[k] for r in rs]) for k in ("rps", "p50", "p99", "p999")}
    for t in ("direct", "sqlite", "team"):
        a = agg[t]
        add = "" if t == "direct" else f"{sus(a['p50'] - agg['direct']['p50'])} | {sus(a['p99'] - agg['direct']['p99'])}"
        print(f"| {rate:,} | {names[t]} | {a['rps']:,.0f} | {us(a['p50'])} | {us(a['p99'])} | {us(a['p999'])} | {add or '- | -'} |")
    d50 = agg["team"]["p50"] - agg["sqlite"]["p50"]
    verdicts.append(f"- target at {rate:,} req/s: the team's added p50 within 2 ms of SQLite's: "
                    f"{'met' if abs(d50) <= 2000 else 'NOT met'} (team − SQLite: {sus(d50)}; "
                    f"p99 {sus(agg['team']['p99'] - agg['sqlite']['p99'])})")
print()
print("\n".join(verdicts))
runs = len(rows) // 3
print(f"- medians of {runs // len({r['rate'] for r in rows})} rounds per rate, alternating direct, SQLite, team; "
      f"oha -c {sys.argv[5]} -z {sys.argv[4]} --latency-correction")
bad = sum(r["bad"] for r in rows)
print(f"- non-200 responses and errors: {bad}")
print(f"- team home after the run: {status.get('local_seq')} receipts here, {status.get('shipped_seq')} in the store, "
      f"backlog {status.get('backlog')}; `receipts verify --team` {'clean' if verify.get('ok') else 'FAILED'}")
sys.exit(0 if bad == 0 and verify.get("ok") and status.get("backlog") == 0 else 1)
EOF
