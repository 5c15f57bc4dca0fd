#!/usr/bin/env python3
"""Launch overhead of `craik agent run` against starting the agent directly
(issue 19, "Benchmark": target under 50 ms added).

One local upstream (in this process) speaks the Anthropic Messages API,
OpenAI's Responses API and Gemini's generateContent with SSE. For each
agent, ROUNDS rounds alternate the two ways of running one prompt:

  direct - the agent itself, with the upstream's URL and a key in its
           environment and a fresh private HOME (what craik does for it,
           done by hand);
  craik  - `craik agent run <agent> --profile ... -- <prompt>`: the policy
           pipeline, an agent.started receipt, a proxy, durable
           call.started/call.finished receipts per call, agent.finished.

and prints the median and p90 wall time of each, and the difference of
the medians. Installs nothing. Needs python3, the agents from
tests/agents (`cd tests/agents && npm ci`) and craik (default:
target/release/craik, built with `cargo build --release` when missing).

It also times, in the same rounds, `craik auth status` (starting craik and
opening the secret store: with the file backend that is one argon2id key
derivation) as the reference for what any craik command costs.

Knobs (environment): ROUNDS=15, AGENTS=claude,codex,gemini, CRAIK=path,
BACKEND=file|file-unlocked|keyutils (keyutils: run the script under
`keyctl session -`; file-unlocked: the file store after `craik unlock`, the
timed commands without CRAIK_KEYRING_PASSWORD),
BENCH_DIR (parent of the temporary directory; use a real disk: on tmpfs
fsync costs nothing).
"""

import http.server
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "tests", "agents", "node_modules", ".bin")
ROUNDS = int(os.environ.get("ROUNDS", "15"))
AGENTS = os.environ.get("AGENTS", "claude,codex,gemini").split(",")
ANSWER = "ANSWER-FROM-THE-BENCH-UPSTREAM"


def sse(events):
    out = b""
    for name, data in events:
        if name:
            out += b"event: " + name.encode() + b"\n"
        out += b"data: " + json.dumps(data).encode() + b"\n\n"
    return out


class Upstream(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def send(self, code, ctype, body):
        self.send_response(code)
        self.send_header("content-type", ctype)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_HEAD(self):
        self.send(200, "text/plain", b"")

    def do_GET(self):
        self.send(200, "application/json", b'{"data":[],"models":[]}')

    def do_POST(self):
        n = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(n)
        p = self.path
        if "/messages" in p and "count_tokens" not in p:
            msg = {"id": "msg_1", "type": "message", "role": "assistant", "model": "m",
                   "content": [], "stop_reason": None, "stop_sequence": None,
                   "usage": {"input_tokens": 11, "output_tokens": 1}}
            try:
                stream = json.loads(body).get("stream")
            except ValueError:
                stream = False
            if not stream:
                m = dict(msg, content=[{"type": "text", "text": ANSWER}], stop_reason="end_turn")
                return self.send(200, "application/json", json.dumps(m).encode())
            return self.send(200, "text/event-stream", sse([
                ("message_start", {"type": "message_start", "message": msg}),
                ("content_block_start", {"type": "content_block_start", "index": 0,
                                         "content_block": {"type": "text", "text": ""}}),
                ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                         "delta": {"type": "text_delta", "text": ANSWER}}),
                ("content_block_stop", {"type": "content_block_stop", "index": 0}),
                ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                                   "usage": {"output_tokens": 22}}),
                ("message_stop", {"type": "message_stop"}),
            ]))
        if p.endswith("/responses"):
            item = {"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
                    "content": [{"type": "output_text", "text": ANSWER, "annotations": []}]}
            usage = {"input_tokens": 11, "output_tokens": 22, "total_tokens": 33,
                     "input_tokens_details": {"cached_tokens": 0},
                     "output_tokens_details": {"reasoning_tokens": 0}}
            return self.send(200, "text/event-stream", sse([
                ("response.created", {"type": "response.created", "response": {
                    "id": "r", "object": "response", "status": "in_progress", "output": []}}),
                ("response.output_item.done", {"type": "response.output_item.done",
                                               "output_index": 0, "item": item}),
                ("response.completed", {"type": "response.completed", "response": {
                    "id": "r", "object": "response", "status": "completed", "output": [item],
                    "usage": usage}}),
            ]))
        if "enerateContent" in p:
            d = {"candidates": [{"content": {"parts": [{"text": ANSWER}], "role": "model"},
                                 "finishReason": "STOP", "index": 0}],
                 "usageMetadata": {"promptTokenCount": 11, "candidatesTokenCount": 22,
                                   "totalTokenCount": 33}}
            if "stream" in p:
                return self.send(200, "text/event-stream", sse([(None, d)]))
            return self.send(200, "application/json", json.dumps(d).encode())
        self.send(404, "application/json", b'{"error":{"message":"not found"}}')


AGENT = {
    # family, key, base path, args, env for a direct run (besides HOME)
    "claude": ("anthropic", "sk-ant-api03-bench-0123456789", "", ["-p", "say hi"],
               lambda url, key, home: {"ANTHROPIC_BASE_URL": url, "ANTHROPIC_API_KEY": key,
                                       "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
                                       "DISABLE_AUTOUPDATER": "1"}),
    "codex": ("openai", "sk-bench-0123456789abcdefghij", "/v1",
              ["exec", "--skip-git-repo-check", "say hi"],
              lambda url, key, home: {"OPENAI_API_KEY": key,
                                      "CODEX_HOME": os.path.join(home, ".codex")}),
    "gemini": ("gemini", "AIzaBench0123456789abcdefghijklmnop", "",
               ["-m", "gemini-2.5-flash", "-p", "say hi"],
               lambda url, key, home: {"GOOGLE_GEMINI_BASE_URL": url, "GEMINI_API_KEY": key,
                                       "GEMINI_CLI_TRUST_WORKSPACE": "true"}),
}


def direct_home(agent, url, base_path, home):
    """What craik writes for the agent, written by hand for a direct run."""
    if agent == "claude":
        with open(os.path.join(home, ".claude.json"), "w") as f:
            json.dump({"hasCompletedOnboarding": True}, f)
    elif agent == "codex":
        os.makedirs(os.path.join(home, ".codex"), mode=0o700)
        with open(os.path.join(home, ".codex", "config.toml"), "w") as f:
            f.write(f'model_provider = "b"\n[model_providers.b]\nname = "b"\n'
                    f'base_url = "{url}{base_path}"\nenv_key = "OPENAI_API_KEY"\n'
                    'wire_api = "responses"\nsupports_websockets = false\n'
                    '[analytics]\nenabled = false\n[features]\nplugins = false\n')
    elif agent == "gemini":
        os.makedirs(os.path.join(home, ".gemini"), mode=0o700)
        with open(os.path.join(home, ".gemini", "settings.json"), "w") as f:
            json.dump({"security": {"auth": {"selectedType": "gemini-api-key"}},
                       "privacy": {"usageStatisticsEnabled": False}}, f)


def timed(cmd, env, cwd):
    t0 = time.perf_counter()
    r = subprocess.run(cmd, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    dt = time.perf_counter() - t0
    if r.returncode != 0 or ANSWER.encode() not in r.stdout:
        sys.exit(f"{cmd[0]} failed ({r.returncode}):\n{r.stdout.decode()}\n{r.stderr.decode()}")
    return dt


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def main():
    craik = os.environ.get("CRAIK") or os.path.join(ROOT, "target", "release", "craik")
    if not os.environ.get("CRAIK") and not os.path.exists(craik):
        subprocess.run(["cargo", "build", "--release", "--locked"], cwd=ROOT, check=True)
    for a in AGENTS:
        if not os.path.exists(os.path.join(BIN, a)):
            sys.exit(f"{a} is missing: (cd tests/agents && npm ci)")
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{srv.server_address[1]}"
    top = tempfile.mkdtemp(prefix="craik-agent-bench-", dir=os.environ.get("BENCH_DIR"))
    base_env = {"PATH": f"{BIN}:/usr/local/bin:/usr/bin:/bin", "NO_COLOR": "1",
                "LANG": os.environ.get("LANG", "C.UTF-8")}
    backend = os.environ.get("BACKEND", "file")
    unlocked = backend == "file-unlocked"
    env = dict(base_env, HOME=top, CRAIK_HOME=os.path.join(top, "craik"),
               CRAIK_KEYRING_BACKEND="file" if unlocked else backend)
    if backend.startswith("file"):
        env["CRAIK_KEYRING_PASSWORD"] = "bench"
    work = os.path.join(top, "work")
    os.makedirs(work)
    rows = []
    try:
        for agent in AGENTS:
            family, key, base_path, args, direct_env = AGENT[agent]
            pid = f"{family}:bench"
            subprocess.run([craik, "auth", "add", pid, "--kind=keyring-ref", "--stdin",
                            "--base-url", url + base_path, "--allow-local-base-url"],
                           input=key.encode(), env=env, check=True, stdout=subprocess.DEVNULL)
            if unlocked:
                subprocess.run([craik, "unlock", "--for", "1h"], env=env, check=True,
                               stdout=subprocess.DEVNULL)
                env.pop("CRAIK_KEYRING_PASSWORD", None)
            via = [craik, "agent", "run", agent, "--profile", pid, "--", *args]
            direct, brokered, status = [], [], []
            for i in range(ROUNDS + 1):
                home = tempfile.mkdtemp(dir=top)
                direct_home(agent, url, base_path, home)
                d_env = dict(base_env, HOME=home, **direct_env(url, key, home))
                d = timed([os.path.join(BIN, agent), *args], d_env, work)
                c = timed(via, env, work)
                t0 = time.perf_counter()
                subprocess.run([craik, "auth", "status"], env=env, check=True,
                               stdout=subprocess.DEVNULL)
                st = time.perf_counter() - t0
                shutil.rmtree(home, ignore_errors=True)
                if i > 0:  # the first round warms the caches
                    direct.append(d)
                    brokered.append(c)
                    status.append(st)
            ms = lambda x: x * 1000
            if unlocked:
                env["CRAIK_KEYRING_PASSWORD"] = "bench"
            rows.append((agent, ms(statistics.median(direct)), ms(pct(direct, 0.9)),
                         ms(statistics.median(brokered)), ms(pct(brokered, 0.9)),
                         ms(statistics.median(status))))
        print(f"\n{ROUNDS} rounds each, alternating (after one warm-up round), "
              f"secret store: {backend}\n")
        print("| agent | direct p50 | direct p90 | craik agent run p50 | craik p90 "
              "| added (p50) | reference: `craik auth status` p50 |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        for a, dp50, dp90, cp50, cp90, sp50 in rows:
            print(f"| {a} | {dp50:.0f} ms | {dp90:.0f} ms | {cp50:.0f} ms | {cp90:.0f} ms "
                  f"| {cp50 - dp50:+.0f} ms | {sp50:.0f} ms |")
        v = subprocess.run([craik, "receipts", "verify"], env=env, capture_output=True)
        print(f"\nreceipts verify: {v.stdout.decode().strip() or v.stderr.decode().strip()}")
    finally:
        if unlocked:
            subprocess.run([craik, "lock"], env=env, stdout=subprocess.DEVNULL)
        srv.shutdown()
        shutil.rmtree(top, ignore_errors=True)


if __name__ == "__main__":
    main()
