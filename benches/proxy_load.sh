#!/usr/bin/env bash
# Proxy load benchmark (issue 6, "Benchmark"): one local upstream
# (examples/bench_upstream.rs), measured three ways in one run:
#   direct  - the load generator straight at the upstream
#   craik   - through `craik proxy` with durable receipts (WAL, synchronous=FULL)
#   nginx   - through nginx as a plain reverse proxy (proxy_pass, keepalive)
# Two loads per target:
#   throughput - wrk -t$THREADS -c$CONNS -d$DURATION, POST /chat/completions
#                (closed loop, as fast as it goes): requests/s, p50, p99
#   fixed rate - oha -q $RATE -c $FIXED_CONNS -z $FIXED_DURATION
#                --latency-correction (open loop, latency measured from the
#                scheduled send time): p50, p99
# Afterwards it checks that `craik receipts verify` is clean and that the log
# holds exactly 2 receipts (call.started + call.finished) per request that
# went through craik to the upstream, and prints a Markdown table.
#
# Installs nothing. Needs: wrk, oha, nginx, curl, python3, cargo (unless
# CRAIK and UPSTREAM name prebuilt binaries). Run from anywhere:
#   benches/proxy_load.sh
# Knobs (environment): DURATION=15s FIXED_DURATION=15s RATE=1000 THREADS=2
#   CONNS=16 FIXED_CONNS=16 WARMUP=2s NGINX_WORKERS=auto UPSTREAM_THREADS=2
#   BENCH_DIR (parent of the temporary directory; default $TMPDIR or /tmp;
#   it should be on a real disk, as on tmpfs fsync costs nothing)
#   CRAIK, UPSTREAM (binaries; default: cargo build --release)
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-15s}
FIXED_DURATION=${FIXED_DURATION:-15s}
RATE=${RATE:-1000}
THREADS=${THREADS:-2}
CONNS=${CONNS:-16}
FIXED_CONNS=${FIXED_CONNS:-16}
WARMUP=${WARMUP:-2s}
NGINX_WORKERS=${NGINX_WORKERS:-auto}
UPSTREAM_THREADS=${UPSTREAM_THREADS:-2}

missing=0
need() {
    if ! command -v "$1" >/dev/null 2>&1; then
        echo "proxy_load.sh needs $1; install it with: $2" >&2
        missing=1
    fi
}
need wrk "apt-get install -y wrk"
need oha "cargo install oha --locked   (wrk2 is not in Debian; oha gives the fixed-rate run; its build takes 5-12 minutes on 2 cores)"
NGINX=${NGINX:-$(command -v nginx || { [ -x /usr/sbin/nginx ] && echo /usr/sbin/nginx; } || true)}
if [ -z "$NGINX" ]; then
    echo "proxy_load.sh needs nginx; install it with: apt-get install -y nginx   (the script runs its own instance from a temporary config; the system service need not run)" >&2
    missing=1
fi
need curl "apt-get install -y curl"
need python3 "apt-get install -y python3"
if [ -z "${CRAIK:-}" ] || [ -z "${UPSTREAM:-}" ]; then
    need cargo "rustup (https://rustup.rs), or set CRAIK and UPSTREAM to prebuilt binaries"
fi
[ "$missing" = 0 ] || exit 2

built=no
if [ -z "${CRAIK:-}" ] || [ -z "${UPSTREAM:-}" ]; then
    [ -n "${CRAIK:-}" ] || built=yes
    echo "== building (cargo build --release --bin craik --example bench_upstream)" >&2
    cargo build --quiet --release --bin craik --example bench_upstream
    CRAIK=${CRAIK:-$PWD/target/release/craik}
    UPSTREAM=${UPSTREAM:-$PWD/target/release/examples/bench_upstream}
fi

build="$CRAIK"
if git rev-parse --git-dir >/dev/null 2>&1; then
    tree="$(git rev-parse --short HEAD)"
    git diff --quiet HEAD -- src migrations Cargo.toml Cargo.lock || tree="$tree + uncommitted changes"
    if [ "$built" = yes ]; then
        build="$build, built from tree $tree"
    else
        build="$build (given; the tree is at $tree)"
    fi
fi

parent=${BENCH_DIR:-${TMPDIR:-/tmp}}
work=$(mktemp -d "$parent/craik-proxy-load.XXXXXX")
export CRAIK_HOME=$work/home CRAIK_KEYRING_BACKEND=file CRAIK_KEYRING_PASSWORD=bench-password
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

wait_file() { # wait until file $1 is non-empty
    for _ in $(seq 100); do [ -s "$1" ] && return 0; sleep 0.1; done
    echo "timed out waiting for $1" >&2
    return 1
}
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
jget() { # jget FILE KEY: a top-level string of a one-line JSON file
    python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"
}
upstream_served() {
    curl -sf "http://127.0.0.1:$uport/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["served"])'
}

# --- the upstream
"$UPSTREAM" 0 --threads "$UPSTREAM_THREADS" > "$work/upstream.port" &
pids+=($!)
wait_file "$work/upstream.port"
uport=$(head -n1 "$work/upstream.port")

# --- craik proxy with a profile pointing at the upstream
printf %s sk-bench | "$CRAIK" auth add local:bench --kind=keyring-ref --stdin \
    --base-url "http://127.0.0.1:$uport" >/dev/null
"$CRAIK" proxy --profile local:bench --json > "$work/proxy.json" &
proxy_pid=$!
pids+=("$proxy_pid")
wait_file "$work/proxy.json"
craik_listen=$(jget "$work/proxy.json" listen)
craik_token=$(jget "$work/proxy.json" token)

# --- nginx: a plain reverse proxy with upstream keepalive
nport=$(free_port)
mkdir -p "$work/nginx"
cat > "$work/nginx/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes $NGINX_WORKERS;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $work/nginx/body;
    proxy_temp_path $work/nginx/proxy;
    fastcgi_temp_path $work/nginx/fastcgi;
    uwsgi_temp_path $work/nginx/uwsgi;
    scgi_temp_path $work/nginx/scgi;
    upstream bench { server 127.0.0.1:$uport; keepalive 64; }
    server {
        listen 127.0.0.1:$nport;
        location / {
            proxy_pass http://bench;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF
"$NGINX" -p "$work/nginx" -c "$work/nginx/nginx.conf" -e "$work/nginx/error.log" &
pids+=($!)
for _ in $(seq 100); do
    curl -sf -o /dev/null "http://127.0.0.1:$nport/models" -H 'authorization: Bearer sk-bench' && break
    sleep 0.1
done

body='{"model":"bench-model","messages":[{"role":"user","content":"Say ok."}],"max_tokens":1}'
declare -A url auth
url[direct]="http://127.0.0.1:$uport/chat/completions"
auth[direct]="Bearer sk-bench"
url[craik]="http://$craik_listen/chat/completions"
auth[craik]="Bearer $craik_token"
url[nginx]="http://127.0.0.1:$nport/chat/completions"
auth[nginx]="Bearer sk-bench"

# wrk script: POST body, and a machine-readable summary line.
wrk_script() { # wrk_script TARGET > file
    cat <<EOF
wrk.method = "POST"
wrk.body = '$body'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "${auth[$1]}"
done = function(summary, latency, requests)
    local e = summary.errors
    io.write(string.format("RESULT %d %d %d %d %d %d\n", summary.requests, summary.duration,
        latency:percentile(50), latency:percentile(99), e.status,
        e.connect + e.read + e.write + e.timeout))
end
EOF
}
for t in direct craik nginx; do
    wrk_script "$t" > "$work/$t.lua"
done

results=$work/results.jsonl
: > "$results"
craik_client=0  # requests completed through craik, as the load generators count them
craik_served=0  # requests the upstream answered during the craik runs
craik_runs=0
note_craik() { # note_craik TARGET COMPLETED BEFORE
    if [ "$1" = craik ]; then
        local after
        after=$(upstream_served)
        craik_client=$((craik_client + $2))
        craik_served=$((craik_served + after - $3))
        craik_runs=$((craik_runs + 1))
    fi
}

run_wrk() { # run_wrk TARGET DURATION LABEL
    local t=$1 before out
    before=$(upstream_served)
    out=$(wrk -t"$THREADS" -c"$CONNS" -d"$2" -s "$work/$t.lua" "${url[$t]}")
    local line
    line=$(grep '^RESULT ' <<<"$out") || { echo "$out" >&2; exit 1; }
    read -r _ n dur p50 p99 non2xx errs <<<"$line"
    note_craik "$t" "$n" "$before"
    if [ "$3" != warmup ]; then
        echo "{\"target\":\"$t\",\"load\":\"throughput\",\"requests\":$n,\"duration_us\":$dur,\"p50_us\":$p50,\"p99_us\":$p99,\"non2xx\":$non2xx,\"errors\":$errs}" >> "$results"
    fi
    echo "   $t $3: $n requests in $((dur / 1000)) ms, p50 ${p50} us, p99 ${p99} us, non-2xx $non2xx, socket errors $errs" >&2
}

run_oha() { # run_oha TARGET
    local t=$1 before
    before=$(upstream_served)
    oha -z "$FIXED_DURATION" -c "$FIXED_CONNS" -q "$RATE" --latency-correction -w \
        --no-tui --output-format json -m POST -T application/json \
        -H "authorization: ${auth[$t]}" -d "$body" "${url[$t]}" > "$work/$t.oha.json"
    local line
    line=$(python3 - "$work/$t.oha.json" "$t" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
codes = d.get("statusCodeDistribution") or {}
ok = codes.get("200", 0)
bad = sum(v for k, v in codes.items() if k != "200")
errs = sum((d.get("errorDistribution") or {}).values())
s, p = d["summary"], d["latencyPercentiles"]
print(ok + bad, json.dumps({
    "target": sys.argv[2], "load": "fixed", "requests": ok + bad,
    "rps": s["requestsPerSec"], "p50_us": p["p50"] * 1e6, "p99_us": p["p99"] * 1e6,
    "p999_us": p["p99.9"] * 1e6, "non2xx": bad, "errors": errs}))
EOF
)
    local n=${line%% *}
    note_craik "$t" "$n" "$before"
    echo "${line#* }" >> "$results"
    echo "   $t fixed $RATE req/s: ${line#* }" >&2
}

for t in direct craik nginx; do
    before=$(upstream_served)
    code=$(curl -s -o /dev/null -w '%{http_code}' "${url[$t]}" -H "authorization: ${auth[$t]}" \
        -H 'content-type: application/json' -d "$body")
    [ "$code" = 200 ] || { echo "smoke request to $t answered $code" >&2; exit 1; }
    note_craik "$t" 1 "$before"
done

nginx_workers_n=$(pgrep -P "${pids[2]}" | wc -l)
echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
echo "== craik: $build" >&2
echo "== CRAIK_HOME on $(stat -f -c %T "$CRAIK_HOME"); nginx worker_processes $NGINX_WORKERS ($nginx_workers_n workers)" >&2
echo "== warm-up ($WARMUP each)" >&2
for t in direct craik nginx; do run_wrk "$t" "$WARMUP" warmup; done
echo "== fixed rate: oha -q $RATE -c $FIXED_CONNS -z $FIXED_DURATION --latency-correction" >&2
for t in direct craik nginx; do run_oha "$t"; done
echo "== throughput: wrk -t$THREADS -c$CONNS -d$DURATION" >&2
for t in direct craik nginx; do run_wrk "$t" "$DURATION" measured; done

# --- stop craik (in-flight receipts land on SIGTERM), then check the log
kill -TERM "$proxy_pid"
wait "$proxy_pid" || true
"$CRAIK" receipts verify --json > "$work/verify.json" || true
"$CRAIK" receipts stats --json > "$work/stats.json"

python3 - "$results" "$work/verify.json" "$work/stats.json" \
    "$craik_client" "$craik_served" "$craik_runs" "$CONNS" "$FIXED_CONNS" "$RATE" \
    "$THREADS" "$DURATION" "$FIXED_DURATION" "$NGINX_WORKERS" "$nginx_workers_n" <<'EOF'
import json, sys
(res_f, verify_f, stats_f, client, served, runs, conns, fconns, rate,
 threads, duration, fduration, nginx_w, nginx_n) = sys.argv[1:]
client, served, runs, conns, fconns = map(int, (client, served, runs, conns, fconns))
rate = float(rate)
rows = [json.loads(l) for l in open(res_f)]
tp = {r["target"]: r for r in rows if r["load"] == "throughput"}
fx = {r["target"]: r for r in rows if r["load"] == "fixed"}
for r in tp.values():
    r["rps"] = r["requests"] / (r["duration_us"] / 1e6)

def us(v):
    return f"{v / 1000:.2f} ms" if v >= 1000 else f"{v:.0f} µs"

def sus(v):
    return ("+" if v >= 0 else "−") + us(abs(v))

names = {"direct": "upstream direct", "craik": "craik proxy (durable receipts)",
         "nginx": f"nginx (worker_processes {nginx_w}: {nginx_n})"}
print(f"| target | throughput req/s (wrk -t{threads} -c{conns} -d{duration}) | p50 | p99 "
      f"| fixed {rate:.0f} req/s: achieved | p50 | p99 | p99.9 |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for t in ("direct", "craik", "nginx"):
    a, b = tp[t], fx[t]
    print(f"| {names[t]} | {a['rps']:,.0f} | {us(a['p50_us'])} | {us(a['p99_us'])} "
          f"| {b['rps']:,.0f} | {us(b['p50_us'])} | {us(b['p99_us'])} | {us(b['p999_us'])} |")
bad = sum(r["non2xx"] + r["errors"] for r in rows)
print()
add50 = fx["craik"]["p50_us"] - fx["direct"]["p50_us"]
add99 = fx["craik"]["p99_us"] - fx["direct"]["p99_us"]
ng50 = fx["nginx"]["p50_us"] - fx["direct"]["p50_us"]
ng99 = fx["nginx"]["p99_us"] - fx["direct"]["p99_us"]
ratio = tp["craik"]["rps"] / tp["nginx"]["rps"]
print(f"- added over direct at {rate:.0f} req/s: craik p50 {sus(add50)}, p99 {sus(add99)}; "
      f"nginx p50 {sus(ng50)}, p99 {sus(ng99)}")
print(f"- craik's throughput is {ratio:.2f}× nginx's ({tp['craik']['rps']:,.0f} / "
      f"{tp['nginx']['rps']:,.0f} req/s) and {tp['craik']['rps'] / tp['direct']['rps']:.2f}× direct")
def verdict(ok):
    return "met" if ok else "NOT met"
print(f"- target p50 added by craik < 200 µs at {rate:.0f} req/s: {verdict(add50 < 200)} ({sus(add50)})")
print(f"- target p99 through craik < 2 ms at {rate:.0f} req/s: {verdict(fx['craik']['p99_us'] < 2000)} "
      f"({us(fx['craik']['p99_us'])}; added {sus(add99)})")
print(f"- target ≥ 5,000 req/s with durable receipts: {verdict(tp['craik']['rps'] >= 5000)} "
      f"({tp['craik']['rps']:,.0f} req/s)")
verify = json.load(open(verify_f))
kinds = json.load(open(stats_f))["by_kind"]
started, finished = kinds.get("call.started", 0), kinds.get("call.finished", 0)
# Requests craik accepted = call.started receipts. Each must get exactly one
# call.finished. The upstream can have seen fewer (a request the client
# abandoned before craik forwarded it) and the load generators count fewer
# still: wrk stops with up to CONNS requests in flight, and counts none of them.
slack = runs * max(conns, fconns)
pairs_ok = finished == started
bounds_ok = client <= served <= started <= client + slack
print(f"- receipts: `craik receipts verify` {'clean' if verify.get('ok') else 'FAILED'} "
      f"({verify.get('verified')} receipts in the log)")
print(f"- call.started {started:,} + call.finished {finished:,} = {started + finished:,} receipts "
      f"for {started:,} requests craik accepted; the upstream answered {served:,} of them, "
      f"the load generators counted {client:,} completed")
if pairs_ok:
    print(f"- 2 receipts per proxied request: yes ({started + finished:,} = 2 × {started:,})")
else:
    print(f"- 2 receipts per proxied request: NO: {started - finished:+,} call.started without "
          f"a call.finished (requests the client abandoned while craik was still working on them)")
if not bounds_ok:
    print(f"- counts out of bounds: expected completed ≤ answered ≤ accepted ≤ completed + {slack}")
count_ok = pairs_ok and bounds_ok
print(f"- non-2xx responses and socket errors over all runs: {bad}")
sys.exit(0 if verify.get("ok") and count_ok and bad == 0 else 1)
EOF
