#!/usr/bin/env bash
# One-shot `veritee secret get` against a local node: the wall time and the client's
# CPU (user + system) of a fresh process per fetch, medians over N fetches.
#
#   cargo build --release && benches/one_shot_secret_get.sh target/release/veritee 21
#
# Run two builds alternately to compare them (BENCHMARKS.md, issue 18).
set -euo pipefail
BIN=$(realpath "$1")
N=${2:-21}
DIR=$(mktemp -d)
cd "$DIR"
PORT=$((20000 + RANDOM % 20000))
"$BIN" node --dir state --listen "127.0.0.1:$PORT" >node.log 2>&1 &
NODE=$!
trap 'kill $NODE; rm -rf "$DIR"' EXIT
for _ in $(seq 100); do
    [ -f state/admin.token ] && curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break
    sleep 0.2
done
"$BIN" tenant create --node "http://127.0.0.1:$PORT" --admin-token state/admin.token --out tenant.key >/dev/null
"$BIN" policy init --allow-simulated --out policy.toml >/dev/null
printf hunter2 >pw.txt
A=(--node "http://127.0.0.1:$PORT" --tenant tenant.key --policy policy.toml --trust-anchor state/vendor/root.pem)
"$BIN" secret put "${A[@]}" --name pw --file pw.txt >/dev/null
python3 - "$BIN" "$N" "${A[@]}" <<'PY'
import os, resource, statistics, subprocess, sys, time
binary, n, args = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
walls, cpus = [], []
for _ in range(n):
    if os.path.exists("got.txt"):
        os.remove("got.txt")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([binary, "secret", "get", *args, "--name", "pw", "--out", "got.txt"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    walls.append(time.perf_counter() - start)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    assert open("got.txt").read() == "hunter2", "the secret came back wrong"
print(f"fetches={n} wall_median_ms={statistics.median(walls) * 1000:.1f} "
      f"cpu_median_ms={statistics.median(cpus) * 1000:.1f}")
PY
