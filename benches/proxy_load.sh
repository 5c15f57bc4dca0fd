#!/usr/bin/env bash
# Proxy load benchmark (issues 6 and 23, "Benchmark"): one local upstream
# (examples/bench_upstream.rs), measured in one run, alternating:
#   direct  - the load generator straight at the upstream
#   craik   - through `craik proxy` with durable receipts (WAL, synchronous=FULL)
#   craik-tmpfs - the same with its CRAIK_HOME on tmpfs ($TMPFS_DIR, default
#             /dev/shm; skipped with a note when that is not tmpfs), where an
#             fdatasync costs nothing: the difference to `craik` is what the
#             disk adds (the log's fdatasync, the checkpoints' fsyncs)
#   nginx   - through nginx as a plain reverse proxy (proxy_pass, keepalive)
#   litellm - through LiteLLM's proxy, when its `litellm` command is found
#             (LITELLM, PATH, or /opt/litellm/bin/litellm from: python3 -m
#             venv /opt/litellm && /opt/litellm/bin/pip install
#             'litellm[proxy]'); skipped with a note otherwise
# Loads per target:
#   throughput - wrk -t$THREADS -c$CONNS -d$DURATION, POST /chat/completions
#                (closed loop, as fast as it goes): requests/s, p50, p99
#   fixed rate - for each of $RATES: oha -q RATE -c $FIXED_CONNS -z
#                $FIXED_DURATION --latency-correction (open loop, latency
#                measured from the scheduled send time): p50, p99, p99.9
#   stream     - $STREAMS requests one after another with "stream":true (the
#                upstream sends 6 events 5 ms apart): time to the first and
#                to the last byte, medians
# Also: each target's resident memory after the loads, the CPU time each
# craik process used per request in each load (from /proc/PID/stat), craik's bytes on
# disk per receipt (audit.db and audit-index.db, after `receipts stats`
# built the index), and the group-commit bound: $CONNS concurrent requests
# over the durable-receipt cycle (a small write and an fdatasync in
# CRAIK_HOME, measured in the same run).
# Afterwards it checks that `craik receipts verify` is clean and that the log
# holds exactly 2 receipts (call.started + call.finished) per request that
# went through craik to the upstream, and prints a Markdown table.
#
# Installs nothing. Needs: wrk, oha, nginx, curl, python3, cargo (unless
# CRAIK and UPSTREAM name prebuilt binaries). Run from anywhere:
#   benches/proxy_load.sh
# Knobs (environment): DURATION=15s FIXED_DURATION=15s RATES="50 100 1000"
#   THREADS=2 CONNS=32 FIXED_CONNS=16 STREAMS=50 WARMUP=2s NGINX_WORKERS=auto
#   UPSTREAM_THREADS=2 LITELLM (its command) TMPFS_DIR=/dev/shm
#   BENCH_DIR (parent of the temporary directory; default $TMPDIR or /tmp;
#   it should be on a real disk, as on tmpfs fsync costs nothing)
#   CRAIK, UPSTREAM (binaries; default: cargo build --release)
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-15s}
FIXED_DURATION=${FIXED_DURATION:-15s}
RATES=${RATES:-50 100 1000}
THREADS=${THREADS:-2}
CONNS=${CONNS:-32}
STREAMS=${STREAMS:-50}
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
    rm -rf "$work" "${tmpfs_work:-}"
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

# --- the same on tmpfs, when there is one
TMPFS_DIR=${TMPFS_DIR:-/dev/shm}
tmpfs_home=""
if [ -d "$TMPFS_DIR" ] && [ "$(stat -f -c %T "$TMPFS_DIR")" = tmpfs ]; then
    tmpfs_work=$(mktemp -d "$TMPFS_DIR/craik-proxy-load.XXXXXX")
    tmpfs_home=$tmpfs_work/home
    printf %s sk-bench | CRAIK_HOME=$tmpfs_home "$CRAIK" auth add local:bench --kind=keyring-ref \
        --stdin --base-url "http://127.0.0.1:$uport" >/dev/null
    CRAIK_HOME=$tmpfs_home "$CRAIK" proxy --profile local:bench --json > "$work/proxy-tmpfs.json" &
    tmpfs_pid=$!
    pids+=("$tmpfs_pid")
    wait_file "$work/proxy-tmpfs.json"
    tmpfs_note="craik-tmpfs: CRAIK_HOME in $TMPFS_DIR (tmpfs)"
else
    tmpfs_note="craik-tmpfs: not run ($TMPFS_DIR is not tmpfs; set TMPFS_DIR)"
fi

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
nginx_pid=$!
pids+=("$nginx_pid")
for _ in $(seq 100); do
    curl -sf -o /dev/null "http://127.0.0.1:$nport/models" -H 'authorization: Bearer sk-bench' && break
    sleep 0.1
done

# --- LiteLLM's proxy, when it is installed
LITELLM=${LITELLM:-$(command -v litellm || { [ -x /opt/litellm/bin/litellm ] && echo /opt/litellm/bin/litellm; } || true)}
targets=(direct craik nginx)
[ -z "$tmpfs_home" ] || targets=(direct craik craik-tmpfs nginx)
litellm_note="LiteLLM: not run (no litellm command; python3 -m venv /opt/litellm && /opt/litellm/bin/pip install litellm[proxy])"
if [ -n "$LITELLM" ]; then
    lport=$(free_port)
    cat > "$work/litellm.yaml" <<EOF
model_list:
  - model_name: bench-model
    litellm_params:
      model: openai/bench-model
      api_base: http://127.0.0.1:$uport
      api_key: sk-bench
litellm_settings:
  telemetry: false
general_settings:
  master_key: sk-litellm-bench
EOF
    LITELLM_LOG=ERROR "$LITELLM" --config "$work/litellm.yaml" --host 127.0.0.1 --port "$lport" \
        > "$work/litellm.log" 2>&1 &
    litellm_pid=$!
    pids+=("$litellm_pid")
    for _ in $(seq 600); do
        curl -sf -o /dev/null "http://127.0.0.1:$lport/health/liveliness" && break
        sleep 0.1
    done
    if curl -sf -o /dev/null "http://127.0.0.1:$lport/health/liveliness"; then
        targets+=(litellm)
        litellm_note="LiteLLM $("$LITELLM" --version 2>/dev/null | grep -oE '[0-9]+\.[0-9]+\.[0-9]+' | head -n1 || true)"
    else
        litellm_note="LiteLLM: did not start (see its log); not run"
        tail -n 20 "$work/litellm.log" >&2 || true
    fi
fi

body='{"model":"bench-model","messages":[{"role":"user","content":"Say ok."}],"max_tokens":1}'
stream_body='{"model":"bench-model","messages":[{"role":"user","content":"Say ok."}],"max_tokens":6,"stream":true}'
declare -A url auth
url[direct]="http://127.0.0.1:$uport/chat/completions"
auth[direct]="Bearer sk-bench"
url[craik]="http://$craik_listen/chat/completions"
auth[craik]="Bearer $craik_token"
if [ -n "$tmpfs_home" ]; then
    url[craik-tmpfs]="http://$(jget "$work/proxy-tmpfs.json" listen)/chat/completions"
    auth[craik-tmpfs]="Bearer $(jget "$work/proxy-tmpfs.json" token)"
fi
url[nginx]="http://127.0.0.1:$nport/chat/completions"
auth[nginx]="Bearer sk-bench"
url[litellm]="http://127.0.0.1:${lport:-0}/chat/completions"
auth[litellm]="Bearer sk-litellm-bench"

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
for t in "${targets[@]}"; do
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

declare -A target_pid=([craik]=$proxy_pid [craik-tmpfs]=${tmpfs_pid:-0})
cpu_ticks() { # cpu_ticks TARGET: user+system clock ticks of its craik process so far (0 if none)
    local p=${target_pid[$1]:-0}
    if [ "$p" = 0 ]; then echo 0; return; fi
    awk '{print $14 + $15}' "/proc/$p/stat"
}
hz=$(getconf CLK_TCK)

run_wrk() { # run_wrk TARGET DURATION LABEL
    local t=$1 before out ticks
    before=$(upstream_served)
    ticks=$(cpu_ticks "$t")
    out=$(wrk -t"$THREADS" -c"$CONNS" -d"$2" -s "$work/$t.lua" "${url[$t]}")
    ticks=$(($(cpu_ticks "$t") - ticks))
    local line
    line=$(grep '^RESULT ' <<<"$out") || { echo "$out" >&2; exit 1; }
    read -r _ n dur p50 p99 non2xx errs <<<"$line"
    note_craik "$t" "$n" "$before"
    if [ "$3" != warmup ]; then
        echo "{\"target\":\"$t\",\"load\":\"throughput\",\"requests\":$n,\"duration_us\":$dur,\"p50_us\":$p50,\"p99_us\":$p99,\"non2xx\":$non2xx,\"errors\":$errs,\"cpu_s\":$(python3 -c "print($ticks / $hz)")}" >> "$results"
    fi
    echo "   $t $3: $n requests in $((dur / 1000)) ms, p50 ${p50} us, p99 ${p99} us, non-2xx $non2xx, socket errors $errs" >&2
}

run_oha() { # run_oha TARGET RATE
    local t=$1 before ticks
    before=$(upstream_served)
    ticks=$(cpu_ticks "$t")
    oha -z "$FIXED_DURATION" -c "$FIXED_CONNS" -q "$2" --latency-correction -w \
        --no-tui --output-format json -m POST -T application/json \
        -H "authorization: ${auth[$t]}" -d "$body" "${url[$t]}" > "$work/$t.oha.json"
    ticks=$(($(cpu_ticks "$t") - ticks))
    local line
    line=$(python3 - "$work/$t.oha.json" "$t" "$2" "$(python3 -c "print($ticks / $hz)")" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
codes = d.get("statusCodeDistribution") or {}
ok = codes.get("200", 0)
bad = sum(v for k, v in codes.items() if k != "200")
errs = sum((d.get("errorDistribution") or {}).values())
s, p = d["summary"], d["latencyPercentiles"]
print(ok + bad, json.dumps({
    "target": sys.argv[2], "load": "fixed", "rate": float(sys.argv[3]), "requests": ok + bad,
    "rps": s["requestsPerSec"], "p50_us": p["p50"] * 1e6, "p99_us": p["p99"] * 1e6,
    "p999_us": p["p99.9"] * 1e6, "max_us": s["slowest"] * 1e6, "non2xx": bad, "errors": errs,
    "cpu_s": float(sys.argv[4])}))
EOF
)
    local n=${line%% *}
    note_craik "$t" "$n" "$before"
    echo "${line#* }" >> "$results"
    echo "   $t fixed $2 req/s: ${line#* }" >&2
}

run_stream() { # run_stream TARGET: STREAMS streamed requests, one after another
    local t=$1 before
    before=$(upstream_served)
    : > "$work/$t.stream"
    for _ in $(seq "$STREAMS"); do
        curl -s -o /dev/null -w '%{http_code} %{time_starttransfer} %{time_total}\n' \
            -H "authorization: ${auth[$t]}" -H 'content-type: application/json' \
            -d "$stream_body" "${url[$t]}" >> "$work/$t.stream"
    done
    note_craik "$t" "$STREAMS" "$before"
    python3 - "$work/$t.stream" "$t" >> "$results" <<'EOF'
import json, statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
ok = [r for r in rows if r[0] == "200"]
print(json.dumps({"target": sys.argv[2], "load": "stream", "requests": len(rows),
    "non2xx": len(rows) - len(ok), "errors": 0,
    "ttfb_us": statistics.median(float(r[1]) for r in ok) * 1e6 if ok else 0,
    "last_us": statistics.median(float(r[2]) for r in ok) * 1e6 if ok else 0}))
EOF
    echo "   $t stream: $(tail -n1 "$results")" >&2
}

rss_kib() { # rss_kib PID...: resident memory of the processes and their children
    local total=0 p q
    for p in "$@"; do
        for q in $p $(pgrep -P "$p" || true); do
            total=$((total + $(awk '/^VmRSS/ {print $2}' "/proc/$q/status" 2>/dev/null || echo 0)))
        done
    done
    echo "$total"
}

for t in "${targets[@]}"; do
    before=$(upstream_served)
    code=$(curl -s -o /dev/null -w '%{http_code}' "${url[$t]}" -H "authorization: ${auth[$t]}" \
        -H 'content-type: application/json' -d "$body")
    [ "$code" = 200 ] || { echo "smoke request to $t answered $code" >&2; exit 1; }
    note_craik "$t" 1 "$before"
done

nginx_workers_n=$(pgrep -P "$nginx_pid" | wc -l)
echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
echo "== craik: $build" >&2
echo "== CRAIK_HOME on $(stat -f -c %T "$CRAIK_HOME"); nginx worker_processes $NGINX_WORKERS ($nginx_workers_n workers); $litellm_note" >&2
echo "== warm-up ($WARMUP each)" >&2
for t in "${targets[@]}"; do run_wrk "$t" "$WARMUP" warmup; done
echo "== streams: $STREAMS each, 6 events 5 ms apart" >&2
for t in "${targets[@]}"; do run_stream "$t"; done
for rate in $RATES; do
    echo "== fixed rate: oha -q $rate -c $FIXED_CONNS -z $FIXED_DURATION --latency-correction" >&2
    for t in "${targets[@]}"; do run_oha "$t" "$rate"; done
done
echo "== throughput: wrk -t$THREADS -c$CONNS -d$DURATION" >&2
for t in "${targets[@]}"; do run_wrk "$t" "$DURATION" measured; done

# --- resident memory after the loads (KiB)
upstream_pid=${pids[0]}
{
    echo "{\"target\":\"direct\",\"load\":\"rss\",\"kib\":$(rss_kib "$upstream_pid")}"
    echo "{\"target\":\"craik\",\"load\":\"rss\",\"kib\":$(rss_kib "$proxy_pid")}"
    if [ -n "$tmpfs_home" ]; then
        echo "{\"target\":\"craik-tmpfs\",\"load\":\"rss\",\"kib\":$(rss_kib "$tmpfs_pid")}"
    fi
    echo "{\"target\":\"nginx\",\"load\":\"rss\",\"kib\":$(rss_kib "$nginx_pid")}"
    if [ -n "${litellm_pid:-}" ]; then
        echo "{\"target\":\"litellm\",\"load\":\"rss\",\"kib\":$(rss_kib "$litellm_pid")}"
    fi
} >> "$results"

# --- the durable-receipt cycle on this disk: a small write and an
# fdatasync, in CRAIK_HOME's directory (the floor each group commit pays)
python3 - "$CRAIK_HOME" >> "$results" <<'EOF'
import json, os, statistics, sys, time
path = os.path.join(sys.argv[1], "fsync-probe")
fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
times = []
for i in range(2000):
    t = time.perf_counter()
    os.pwrite(fd, b"x" * 512, (i % 64) * 512)
    os.fdatasync(fd)
    times.append(time.perf_counter() - t)
os.close(fd)
os.unlink(path)
times.sort()
print(json.dumps({"target": "disk", "load": "fsync", "p50_us": statistics.median(times) * 1e6,
    "p99_us": times[int(len(times) * 0.99)] * 1e6, "p999_us": times[int(len(times) * 0.999)] * 1e6,
    "max_us": times[-1] * 1e6}))
EOF

# --- stop craik (in-flight receipts land on SIGTERM), then check the log
kill -TERM "$proxy_pid"
wait "$proxy_pid" || true
"$CRAIK" receipts verify --json > "$work/verify.json" || true
echo '{}' > "$work/verify-tmpfs.json"
if [ -n "$tmpfs_home" ]; then
    kill -TERM "$tmpfs_pid"
    wait "$tmpfs_pid" || true
    CRAIK_HOME=$tmpfs_home "$CRAIK" receipts verify --json > "$work/verify-tmpfs.json" || true
fi
"$CRAIK" receipts stats --json > "$work/stats.json"
disk_bytes=$(du -cb "$CRAIK_HOME"/audit.db* "$CRAIK_HOME"/audit-index.db* 2>/dev/null | tail -n1 | cut -f1)
log_bytes=$(du -cb "$CRAIK_HOME"/audit.db* 2>/dev/null | tail -n1 | cut -f1)

python3 - "$results" "$work/verify.json" "$work/stats.json" \
    "$craik_client" "$craik_served" "$craik_runs" "$CONNS" "$FIXED_CONNS" \
    "$THREADS" "$DURATION" "$FIXED_DURATION" "$NGINX_WORKERS" "$nginx_workers_n" \
    "$disk_bytes" "$log_bytes" "$STREAMS" "$litellm_note" "$work/verify-tmpfs.json" "$tmpfs_note" <<'EOF'
import json, sys
(res_f, verify_f, stats_f, client, served, runs, conns, fconns,
 threads, duration, fduration, nginx_w, nginx_n, disk_bytes, log_bytes, streams,
 litellm_note, verify_tmpfs_f, tmpfs_note) = sys.argv[1:]
client, served, runs, conns, fconns = map(int, (client, served, runs, conns, fconns))
disk_bytes, log_bytes = int(disk_bytes or 0), int(log_bytes or 0)
rows = [json.loads(l) for l in open(res_f)]
tp = {r["target"]: r for r in rows if r["load"] == "throughput"}
fx = {(r["target"], r["rate"]): r for r in rows if r["load"] == "fixed"}
st = {r["target"]: r for r in rows if r["load"] == "stream"}
rss = {r["target"]: r["kib"] for r in rows if r["load"] == "rss"}
fsync = next(r for r in rows if r["load"] == "fsync")
fsync_us = fsync["p50_us"]
rates = sorted({r for (_, r) in fx})
targets = [t for t in ("direct", "craik", "craik-tmpfs", "nginx", "litellm") if t in tp]
for r in tp.values():
    r["rps"] = r["requests"] / (r["duration_us"] / 1e6)

def us(v):
    return f"{v / 1000:.2f} ms" if v >= 1000 else f"{v:.0f} µs"

def sus(v):
    return ("+" if v >= 0 else "−") + us(abs(v))

names = {"direct": "upstream alone", "craik": "craik proxy (durable receipts)",
         "craik-tmpfs": "craik proxy, CRAIK_HOME on tmpfs",
         "nginx": f"nginx (worker_processes {nginx_w}: {nginx_n})", "litellm": "LiteLLM proxy"}
print(f"| target | req/s (wrk -t{threads} -c{conns} -d{duration}) | p50 | p99 | resident |")
print("| --- | ---: | ---: | ---: | ---: |")
for t in targets:
    a = tp[t]
    print(f"| {names[t]} | {a['rps']:,.0f} | {us(a['p50_us'])} | {us(a['p99_us'])} | {rss.get(t, 0) / 1024:.0f} MiB |")
print()
print(f"Added over the upstream alone at fixed rates (oha -c {fconns} -z {fduration} --latency-correction):")
print()
print("| rate | target | achieved | p50 | p99 | p99.9 | added p50 | added p99 | added p99.9 |")
print("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for rate in rates:
    d = fx[("direct", rate)]
    for t in targets:
        b = fx[(t, rate)]
        add = "- | - | -" if t == "direct" else (
            f"{sus(b['p50_us'] - d['p50_us'])} | {sus(b['p99_us'] - d['p99_us'])} | {sus(b['p999_us'] - d['p999_us'])}")
        print(f"| {rate:,.0f} | {names[t]} | {b['rps']:,.0f} | {us(b['p50_us'])} | {us(b['p99_us'])} | {us(b['p999_us'])} | {add} |")
print()
print(f"A 6-event stream ({streams} requests one after another, medians):")
print()
print("| target | first byte | last byte | added first byte | added last byte |")
print("| --- | ---: | ---: | ---: | ---: |")
for t in targets:
    s, d = st[t], st["direct"]
    add = "- | -" if t == "direct" else f"{sus(s['ttfb_us'] - d['ttfb_us'])} | {sus(s['last_us'] - d['last_us'])}"
    print(f"| {names[t]} | {us(s['ttfb_us'])} | {us(s['last_us'])} | {add} |")
print()
def verdict(ok):
    return "met" if ok else "NOT met"
cs, ds = st["craik"], st["direct"]
gap = (cs["last_us"] - ds["last_us"]) - (cs["ttfb_us"] - ds["ttfb_us"])
print(f"- target: added time to the last stream byte within 1 ms of the added time to first byte: "
      f"{verdict(gap <= 1000)} ({sus(gap)})")
if ("craik", 1000.0) in fx:
    c, d = fx[("craik", 1000.0)], fx[("direct", 1000.0)]
    print(f"- target: added p99.9 under 20 ms at 1,000 req/s: {verdict(c['p999_us'] - d['p999_us'] < 20000)} "
          f"({sus(c['p999_us'] - d['p999_us'])})")
stats = json.load(open(stats_f))
kinds, total = stats["by_kind"], stats["total"]
per = disk_bytes / total if total else 0
print(f"- bytes on disk per receipt (audit.db and audit-index.db): {per:,.0f} ({disk_bytes:,} bytes, "
      f"{total:,} receipts; the log alone {log_bytes / total if total else 0:,.0f}); target ≤ 300: {verdict(per <= 300)}")
bound = conns / (fsync_us / 1e6)
print(f"- group-commit bound: {conns} concurrent requests / a {us(fsync_us)} durable-receipt cycle "
      f"(fdatasync p50, this run) = {bound:,.0f} req/s; craik's {tp['craik']['rps']:,.0f} req/s is "
      f"{tp['craik']['rps'] / bound:.2f}× it; target ≥ 0.6: {verdict(tp['craik']['rps'] >= 0.6 * bound)}")
print(f"- the disk under CRAIK_HOME: a 512-byte write and fdatasync, 2,000 times: p50 {us(fsync_us)}, "
      f"p99 {us(fsync['p99_us'])}, p99.9 {us(fsync['p999_us'])}, slowest {us(fsync['max_us'])}")
ratio = tp["craik"]["rps"] / tp["nginx"]["rps"]
print(f"- craik's throughput is {ratio:.2f}× nginx's and {tp['craik']['rps'] / tp['direct']['rps']:.2f}× the upstream alone"
      + (f"; {tp['craik']['rps'] / tp['litellm']['rps']:.1f}× LiteLLM's" if "litellm" in tp else ""))
print(f"- {litellm_note}")
print(f"- {tmpfs_note}")
print()
print("Where craik's added time goes: the same loads with CRAIK_HOME on disk and on tmpfs"
      " (no fdatasync cost), craik's CPU time per request, and the slowest request:")
print()
print("| load | CRAIK_HOME | added p50 | added p99 | added p99.9 | slowest (upstream alone) | craik CPU per request |")
print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
for t in ("craik", "craik-tmpfs"):
    if t not in tp:
        continue
    home = "tmpfs" if t == "craik-tmpfs" else "disk"
    for rate in rates:
        b, d = fx[(t, rate)], fx[("direct", rate)]
        print(f"| {rate:,.0f} req/s | {home} | {sus(b['p50_us'] - d['p50_us'])} | {sus(b['p99_us'] - d['p99_us'])} | "
              f"{sus(b['p999_us'] - d['p999_us'])} | {us(b['max_us'])} ({us(d['max_us'])}) | "
              f"{us(b['cpu_s'] * 1e6 / max(b['requests'], 1))} |")
    a = tp[t]
    print(f"| wrk -c{conns} | {home} | {sus(a['p50_us'] - tp['direct']['p50_us'])} | {sus(a['p99_us'] - tp['direct']['p99_us'])} | - | - | "
          f"{us(a['cpu_s'] * 1e6 / max(a['requests'], 1))} ({a['cpu_s'] / (a['duration_us'] / 1e6):.2f} cores at {a['rps']:,.0f} req/s) |")
vt = json.load(open(verify_tmpfs_f))
if vt:
    print(f"- craik-tmpfs's log: `craik receipts verify` {'clean' if vt.get('ok') else 'FAILED'} ({vt.get('verified')} receipts)")
verify = json.load(open(verify_f))
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
bad = sum(r.get("non2xx", 0) + r.get("errors", 0) for r in rows)
print(f"- non-2xx responses and socket errors over all runs: {bad}")
sys.exit(0 if verify.get("ok") and (not vt or vt.get("ok")) and count_ok and bad == 0 else 1)
EOF
