#!/usr/bin/env bash
# craik end to end on a fresh machine, with no outside account: a temporary
# CRAIK_HOME, a local OpenAI-compatible endpoint, a profile in the secret
# store, an example policy, calls through `exec --via-proxy` and `proxy`,
# then the receipts and their verification.
#
# Needs: python3 and curl. Run from the repository: examples/demo.sh
# [--keep]: with --keep the home is left in place afterwards (its path is
# printed), to look at the receipts with craik yourself.
set -euo pipefail
keep=0
for a in "$@"; do
    case "$a" in
        --keep) keep=1 ;;
        *) echo "usage: examples/demo.sh [--keep]" >&2; exit 2 ;;
    esac
done
cd "$(dirname "$0")/.."
command -v python3 >/dev/null || { echo "demo needs python3" >&2; exit 1; }
command -v curl >/dev/null || { echo "demo needs curl (apt-get install -y curl)" >&2; exit 1; }

CRAIK=${CRAIK:-}
if [ -z "$CRAIK" ]; then
    echo "== building craik (cargo build --release; the first build takes a few minutes)"
    cargo build --release --locked
    CRAIK=$PWD/target/release/craik
fi
work=$(mktemp -d)
export CRAIK_HOME=$work/home CRAIK_KEYRING_BACKEND=file CRAIK_KEYRING_PASSWORD=demo-password
if [ "$keep" = 1 ]; then
    trap 'kill $(jobs -p) 2>/dev/null; echo; echo "the home is kept: CRAIK_HOME=$CRAIK_HOME CRAIK_KEYRING_BACKEND=file CRAIK_KEYRING_PASSWORD=demo-password $CRAIK receipts list"' EXIT
else
    trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT
fi
echo "== the demo's home: $CRAIK_HOME (deleted at the end; pass --keep to keep it)"

python3 examples/fake_upstream.py > "$work/port" &
for _ in $(seq 50); do [ -s "$work/port" ] && break; sleep 0.1; done
port=$(cat "$work/port")
echo "== a local OpenAI-compatible endpoint on 127.0.0.1:$port"

echo "== store a key in the (encrypted) secret store, never in argv or a plain file"
printf %s "sk-demo-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')" |
    "$CRAIK" auth add local:demo --kind=keyring-ref --stdin --base-url "http://127.0.0.1:$port/v1"
"$CRAIK" auth status

echo "== an example policy (policies/solo-developer.json) in force"
cp policies/solo-developer.json "$CRAIK_HOME/policy.json"
"$CRAIK" policy explain --profile local:demo

echo "== craik exec --via-proxy: the child holds only a proxy token"
"$CRAIK" exec --profile local:demo --via-proxy -- sh -c '
    echo "child sees OPENAI_API_KEY=${OPENAI_API_KEY%${OPENAI_API_KEY#????????????}}... OPENAI_BASE_URL=$OPENAI_BASE_URL"
    curl -s "$OPENAI_BASE_URL/chat/completions" -H "authorization: Bearer $OPENAI_API_KEY" \
        -d "{\"model\":\"demo-model\",\"messages\":[]}"; echo'

echo "== craik proxy: a long-running local proxy"
"$CRAIK" proxy --profile local:demo --json > "$work/proxy.json" &
proxy_pid=$!
for _ in $(seq 50); do [ -s "$work/proxy.json" ] && break; sleep 0.1; done
listen=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["listen"])' "$work/proxy.json")
token=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["token"])' "$work/proxy.json")
curl -sN "http://$listen/chat/completions" -H "authorization: Bearer $token" \
    -d '{"model":"demo-model","stream":true}'
kill -TERM "$proxy_pid"; wait "$proxy_pid" || true

echo "== the receipts"
"$CRAIK" receipts list
echo "== and their verification"
"$CRAIK" receipts verify
