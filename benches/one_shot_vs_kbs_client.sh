#!/usr/bin/env bash
# One-shot fetches against one local node, a fresh process each, the clients taking
# turns: `veritee secret get` as the first command of a session (it attests, asks for a
# ticket and keeps the session), `veritee secret get` attesting the node afresh (`--no-session-cache`: evidence
# fetched and verified, a key exchange, the tenant's signature), `veritee secret get`
# resuming the session an earlier command kept (one round trip, no evidence), both
# with a durable audit append on the node; Trustee's `kbs-client get-resource` (KBS
# protocol, CoCo's sample TEE: the node verifies the guest, the guest verifies
# nothing) and `veritee kbs get-resource` (the same KBS exchange from veritee's
# client). Every client prints the secret to standard output. For each: the median
# wall time, the client's CPU (user + system) and the node's CPU (host and enclave
# processes) per fetch.
#
#   cargo build --release
#   benches/one_shot_vs_kbs_client.sh target/release/veritee /path/to/kbs-client 21
#
# kbs-client is Trustee's (v0.20.0 takes `config --auth-private-key`; the fetch itself
# needs no admin key). BENCHMARKS.md, issue 18, says how it was built here.
set -euo pipefail
BIN=$(realpath "$1")
KBS_CLIENT=$(realpath "$2")
N=${3:-21}
DIR=$(mktemp -d)
cd "$DIR"
PORT=$((20000 + RANDOM % 20000))
URL="http://127.0.0.1:$PORT"
openssl genpkey -algorithm ed25519 -out admin.key 2>/dev/null
openssl pkey -in admin.key -pubout -out admin.pub
# No per-address handshake limit: the fetches come back to back from one address.
"$BIN" node --dir state --listen "127.0.0.1:$PORT" --kbs-admin-key admin.pub \
    --kbs-auth-per-second 0 >node.log 2>&1 &
NODE=$!
trap 'kill $NODE; rm -rf "$DIR"' EXIT
for _ in $(seq 150); do
    [ -f state/admin.token ] && curl -sf "$URL/healthz" >/dev/null && break
    sleep 0.2
done
printf hunter2 >pw.txt
"$BIN" policy init --allow-simulated --out policy.toml >/dev/null
printf 'version = 1\ntee = ["coco-sample"]\nallow_simulated = true\ntcb_status = ["NotReported"]\n' >sample.toml
# veritee's own path: a tenant and a secret sealed to the enclave.
"$BIN" tenant create --node "$URL" --admin-token state/admin.token --out tenant.key >/dev/null
A=(--node "$URL" --tenant tenant.key --policy policy.toml --trust-anchor state/vendor/root.pem
    --session-cache "$DIR/sessions")
# Also keeps the session the resumed fetches resume.
"$BIN" secret put "${A[@]}" --name pw --file pw.txt >/dev/null
# The KBS path: a resource policy admitting the sample TEE and the same bytes.
"$BIN" kbs admin-token --key admin.key >kbs-admin.token
K=(--node "$URL" --token-file kbs-admin.token)
"$BIN" kbs set-policy "${K[@]}" sample.toml >/dev/null 2>&1
"$BIN" kbs put-resource "${K[@]}" --policy policy.toml --trust-anchor state/vendor/root.pem \
    --path default/key/pw pw.txt >/dev/null 2>&1
ENCLAVE=$(cat state/run/enclave.pid)
python3 - "$N" "$NODE" "$ENCLAVE" "$BIN" "$KBS_CLIENT" "$URL" "${A[@]}" <<'PY'
import os, resource, shutil, statistics, subprocess, sys, time
n, node, enclave, binary, kbs_client, url = sys.argv[1:7]
n, a = int(n), sys.argv[7:]

def server_cpu():
    """Seconds on CPU of the node's host and enclave processes: the sum over their
    threads of /proc's scheduler statistics (nanoseconds; the clock-tick counters of
    /proc/PID/stat are 10 ms coarse, more than one fetch costs)."""
    total = 0
    for pid in (node, enclave):
        for task in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{task}/schedstat") as f:
                    total += int(f.read().split()[0])
            except FileNotFoundError:
                pass  # the thread ended in between
    return total / 1e9

# The first command of a session: attests, asks for a ticket and keeps the session in
# a cache emptied before each of its runs.
first_cache = os.path.abspath("first-sessions")
at = a.index("--session-cache")
first_a = a[:at] + ["--session-cache", first_cache] + a[at + 2:]
clients = {
    "veritee secret get, first of a session (attests, keeps the session)": [
        binary, "secret", "get", *first_a, "--name", "pw"],
    "veritee secret get, attesting afresh": [binary, "secret", "get", *a, "--name", "pw",
                                             "--no-session-cache"],
    "veritee secret get, resuming the kept session": [binary, "secret", "get", *a,
                                                      "--name", "pw"],
    "kbs-client get-resource": [kbs_client, "--url", url, "get-resource",
                                "--path", "default/key/pw"],
    "veritee kbs get-resource": [binary, "kbs", "get-resource", "--node", url,
                                 "--path", "default/key/pw"],
}
wall = {k: [] for k in clients}
cpu = {k: [] for k in clients}
server = {k: 0.0 for k in clients}
for _ in range(n):
    for name, argv in clients.items():
        shutil.rmtree(first_cache, ignore_errors=True)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        s0 = server_cpu()
        start = time.perf_counter()
        out = subprocess.run(argv, check=True, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL).stdout
        wall[name].append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        server[name] += server_cpu() - s0
        cpu[name].append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        # kbs-client prints the resource base64-encoded, veritee as it is.
        assert out.strip() in (b"hunter2", b"aHVudGVyMg=="), f"{name} fetched {out!r}"
base = statistics.median(wall["kbs-client get-resource"])
print("| client, one fetch in a fresh process | wall, median | client CPU, median | "
      "node CPU per fetch (host + enclave threads, mean) | wall vs kbs-client |")
print("|---|---:|---:|---:|---:|")
for name in clients:
    w = statistics.median(wall[name])
    print(f"| {name} | {w * 1e3:.1f} ms | {statistics.median(cpu[name]) * 1e3:.1f} ms | "
          f"{server[name] / n * 1e3:.1f} ms | {w / base:.2f}x |")
print(f"\n{n} fetches each, taking turns.")
PY
