#!/usr/bin/env bash
# Runs a command with a moto server (AWS Secrets Manager + DynamoDB emulator)
# on 127.0.0.1, and the AWS environment pointing at it; stops moto afterwards.
# moto comes from the project venv (.venv), installed on first use.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="${VENV:-$root/.venv}"
port="${MOTO_PORT:-5077}"
if [ ! -x "$venv/bin/moto_server" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "moto[server]==5.2.5"
fi
log="$(mktemp)"
# moto_serial.py: moto with requests handled one at a time, so conditional
# writes are atomic as in DynamoDB (see the file).
"$venv/bin/python" "$root/tests/moto_serial.py" 127.0.0.1 "$port" >"$log" 2>&1 &
moto_pid=$!
trap 'kill "$moto_pid" 2>/dev/null || true; wait "$moto_pid" 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 1 100); do
    if python3 -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$port/moto-api/')" 2>/dev/null; then
        break
    fi
    if ! kill -0 "$moto_pid" 2>/dev/null; then
        echo "moto failed to start:" >&2; cat "$log" >&2; exit 1
    fi
    sleep 0.2
done
export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
unset AWS_PROFILE AWS_SESSION_TOKEN
"$@"
