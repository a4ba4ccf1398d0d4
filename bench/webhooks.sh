#!/usr/bin/env bash
# Webhook benchmark: the release binary delivering into a local SMTP sink (bench/delivery.py
# peers) and posting its events to a local receiver (bench/webhook_sink.py, which verifies one
# signature in 50 with the `standardwebhooks` package).
#
#   bench/webhooks.sh [sqlite|postgres|both] [--messages N] [--connections N]
#
# For each backend, on a fresh database:
#   1. end-to-end delivery of N messages of 2 KB with no webhook endpoint (the baseline);
#   2. the same load with one endpoint subscribed to every event, and the time until the
#      receiver has every event (3 per message: received, decided, delivered);
#   3. dispatch alone: N messages delivered by a node with `[webhooks] enabled = false` (their
#      events wait in the outbox), then the node restarted posting: events/s at the receiver.
# Prints msgs/s with and without the endpoint (and the ratio) and events/s. SEALGATE_BIN skips the
# release build. Results: bench/out/webhooks-*.json.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh
# shellcheck source=bench/lib.sh
source bench/lib.sh

backends=both
messages=2000
connections=20
while [[ $# -gt 0 ]]; do
    case "$1" in
        sqlite | postgres | both) backends=$1 ;;
        --messages) messages=$2; shift ;;
        --connections) connections=$2; shift ;;
        -h | --help) sed -n '2,15p' "$0"; exit 0 ;;
        *) echo "usage: $0 [sqlite|postgres|both] [--messages N] [--connections N]" >&2; exit 2 ;;
    esac
    shift
done
[[ "$backends" == both ]] && backends="sqlite postgres"

SINK_IP=127.0.0.20
DOMAIN=bench.test
work=$(mktemp -d "${TMPDIR:-/tmp}/sealgate-webhooks-bench.XXXXXX")
peers_pid=
hook_pid=
daemon_pid=
bench_db=
bench_admin_url=
keep_work=
cleanup() {
    for p in "$peers_pid" "$hook_pid"; do
        [[ -n "$p" ]] && { kill -TERM "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; }
    done
    bench_cleanup_common
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

sg_ensure_packages
sg_py_env
bench_binary

python3 bench/delivery.py peers --ip "$SINK_IP" --domain "$DOMAIN" >"$work/peers.json" 2>"$work/peers.err" &
peers_pid=$!
for _ in $(seq 1 100); do [[ -s "$work/peers.json" ]] && break; sleep 0.05; done
read -r sink_port dns_port ctl_port < <(python3 -c 'import json,sys; p=json.load(open(sys.argv[1])); print(p["smtp"], p["dns"], p["ctl"])' "$work/peers.json")

hook_port=$(sg_free_port)
hook_url="http://127.0.0.1:$hook_port/hooks"

# stats of the webhook sink: requests
hook_requests() {
    curl -s "http://127.0.0.1:$hook_port/_stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["requests"])'
}
hook_reset() {
    curl -s -X POST "http://127.0.0.1:$hook_port/_reset" >/dev/null
}
# Waits until the sink has $1 requests (at most 300 s); prints the seconds since $2 (epoch s).
wait_hooks() { # count start
    local i n
    for i in $(seq 1 3000); do
        n=$(hook_requests)
        ((n >= $1)) && break
        sleep 0.1
    done
    ((n >= $1)) || { sg_log "the receiver got $n of $1 events"; return 1; }
    python3 -c "import time; print(f'{time.time() - $2:.3f}')"
}

write_config() { # dir db_url
    bench_config "$1" "$2" "relay.bench.test"
    cat >>"$1/sealgate.toml" <<EOF2
[delivery]
enabled = true
smtp_port = $sink_port
poll_interval = "100ms"

[dns]
nameservers = ["127.0.0.1:$dns_port"]
dnssec = false

[policy]
default_level = "none"

[webhooks]
allow_networks = ["127.0.0.0/8"]
poll_interval = "100ms"
EOF2
}

load() { # port label json
    python3 bench/delivery.py load --port "$1" --ctl "$ctl_port" --messages "$messages" \
        --size 2048 --connections "$connections" --domain "$DOMAIN" --system sealgate \
        --label "$2" --json "$3"
}

e2e_rate() { # json
    python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["e2e_msgs_per_s"])' "$1"
}

mkdir -p bench/out
stamp=$(date -u +%Y%m%dT%H%M%SZ)
summary=()
for backend in $backends; do
    dir="$work/$backend"
    mkdir -p "$dir/data"
    case "$backend" in
        sqlite) url="sqlite://$dir/data/sealgate.db" ;;
        postgres) bench_postgres_url sealgate_wbench ;;
    esac
    write_config "$dir" "$url"
    "$bin" --config "$dir/sealgate.toml" migrate >"$dir/migrate.log" 2>&1 \
        || { cat "$dir/migrate.log" >&2; keep_work=1; exit 1; }
    secret=$("$bin" --config "$dir/sealgate.toml" webhooks add "$hook_url" 2>"$dir/add.err")
    endpoint=$(grep -o 'wh_[0-9a-f]*' "$dir/add.err" | head -1)
    "$bin" --config "$dir/sealgate.toml" webhooks disable "$endpoint" >/dev/null
    [[ -n "$hook_pid" ]] && { kill -TERM "$hook_pid"; wait "$hook_pid" 2>/dev/null || true; }
    "$SG_PYTHON" bench/webhook_sink.py --port "$hook_port" --port-file "$work/hook.port" \
        --verify "$secret" --verify-every 50 >"$work/hook-$backend.json" 2>"$work/hook.err" &
    hook_pid=$!
    for _ in $(seq 1 100); do [[ -s "$work/hook.port" ]] && break; sleep 0.05; done
    rm -f "$work/hook.port"

    bench_start_sealgate "$dir"
    # Warm-up (not measured), then 1: no endpoint takes events (it is disabled: none written).
    python3 bench/delivery.py load --port "$port" --ctl "$ctl_port" --messages 100 --size 2048 \
        --connections "$connections" --domain "$DOMAIN" --label warm-up >/dev/null
    base="bench/out/webhooks-$backend-none-$stamp.json"
    sg_log "$backend: $messages messages, no endpoint"
    load "$port" "sealgate-$backend-no-endpoint" "$base"

    # 2: one endpoint taking every event.
    "$bin" --config "$dir/sealgate.toml" webhooks enable "$endpoint" >/dev/null
    sleep 1
    hook_reset
    with="bench/out/webhooks-$backend-with-$stamp.json"
    sg_log "$backend: $messages messages, one endpoint taking every event"
    t0=$(python3 -c 'import time; print(time.time())')
    load "$port" "sealgate-$backend-with-endpoint" "$with"
    events=$((messages * 3))
    live=$(wait_hooks "$events" "$t0")
    sg_log "$backend: every event of the load at the receiver $live s after the load began"

    # 3: dispatch alone. This node posts nothing ([webhooks] enabled = false) while the load
    # is delivered, so its events wait in the outbox; then it restarts posting them.
    bench_stop_sealgate
    sed -i 's/^\[webhooks\]$/[webhooks]\nenabled = false/' "$dir/sealgate.toml"
    bench_start_sealgate "$dir"
    sg_log "$backend: $messages messages with the dispatcher off (a backlog)"
    load "$port" "sealgate-$backend-backlog" "bench/out/webhooks-$backend-backlog-$stamp.json" >/dev/null
    bench_stop_sealgate
    sed -i '/^enabled = false$/d' "$dir/sealgate.toml"
    hook_reset
    bench_start_sealgate "$dir"
    wait_hooks "$events" "$(python3 -c 'import time; print(time.time())')" >/dev/null
    rate=$(curl -s "http://127.0.0.1:$hook_port/_stats" | python3 -c '
import json, sys
s = json.load(sys.stdin)
print(round((s["requests"] - 1) / (s["last_at"] - s["first_at"])))')
    sg_log "$backend: backlog of $events events posted at $rate events/s"
    bench_stop_sealgate
    python3 - "$base" "$with" "$live" "$rate" "bench/out/webhooks-$backend-$stamp.json" <<'PY'
import json, sys
base, with_, live, rate, out = sys.argv[1:]
b, w = json.load(open(base)), json.load(open(with_))
res = {
    "e2e_msgs_per_s_without": b["e2e_msgs_per_s"],
    "e2e_msgs_per_s_with": w["e2e_msgs_per_s"],
    "ratio": round(w["e2e_msgs_per_s"] / b["e2e_msgs_per_s"], 3),
    "events_at_receiver_s_after_load_start": float(live),
    "backlog_events_per_s": float(rate),
}
json.dump(res, open(out, "w"), indent=2)
print(json.dumps(res))
PY
    summary+=("$backend: e2e without an endpoint $(e2e_rate "$base") msgs/s, with one taking every event $(e2e_rate "$with") msgs/s; events of that load at the receiver ${live}s after its start; a backlog posted at $rate events/s")
done
printf '%s\n' "${summary[@]}"
