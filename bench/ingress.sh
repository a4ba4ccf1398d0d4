#!/usr/bin/env bash
# Ingress benchmark: the release binary on SQLite and/or PostgreSQL, driven by bench/ingress.py.
#
#   bench/ingress.sh [sqlite|postgres|both] [ingress.py flags: --messages N --connections N --size B]
#
# PostgreSQL: a fresh database on DATABASE_URL's server if set (dropped afterwards), otherwise
# a throwaway cluster (scripts/lib.sh). SEALGATE_BIN skips the release build. Results are
# printed and written to bench/out/ingress-<backend>-<time>.json; daemon logs stay in the temp
# dir only if the run fails (its path is printed).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

backends=${1:-both}
[[ $# -gt 0 ]] && shift
case "$backends" in
    sqlite | postgres) ;;
    both) backends="sqlite postgres" ;;
    -h | --help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "usage: $0 [sqlite|postgres|both] [ingress.py flags]" >&2; exit 2 ;;
esac
py_args=("$@")

work=$(mktemp -d "${TMPDIR:-/tmp}/sealgate-bench.XXXXXX")
daemon_pid=
bench_db=
bench_admin_url=
keep_work=
cleanup() {
    if [[ -n "$daemon_pid" ]]; then
        kill -TERM "$daemon_pid" 2>/dev/null || true
        wait "$daemon_pid" 2>/dev/null || true
    fi
    if [[ -n "$bench_db" ]]; then
        psql -q "$bench_admin_url" -c "DROP DATABASE IF EXISTS \"$bench_db\" WITH (FORCE)" >/dev/null 2>&1 || true
    fi
    sg_pg_stop
    if [[ -n "$keep_work" ]]; then
        sg_log "logs kept in $work"
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [[ -n "${SEALGATE_BIN:-}" ]]; then
    bin=$SEALGATE_BIN
else
    sg_log "building the release binary"
    cargo build --release -p sealgate
    bin="${CARGO_TARGET_DIR:-target}/release/sealgate"
fi
bin=$(realpath "$bin")
unset SEALGATE_CONFIG SEALGATE_DATABASE_URL

# Replaces the database name in a postgres:// URL.
with_db() {
    python3 - "$1" "$2" <<'EOF'
import sys, urllib.parse as u
p = u.urlsplit(sys.argv[1])
print(u.urlunsplit(p._replace(path="/" + sys.argv[2])))
EOF
}

# Sets url to a fresh database (not in a subshell: it may start the throwaway cluster).
postgres_url() {
    if [[ -z "${DATABASE_URL:-}" ]]; then
        sg_ensure_packages
        sg_pg_start
    fi
    bench_admin_url=$DATABASE_URL
    bench_db="sealgate_bench_$$_$RANDOM"
    psql -q "$bench_admin_url" -c "CREATE DATABASE \"$bench_db\"" >/dev/null
    url=$(with_db "$bench_admin_url" "$bench_db")
}

write_config() { # dir db_url
    cat >"$1/sealgate.toml" <<EOF
[server]
hostname = "bench.example.test"
shutdown_grace = "10s"

[database]
url = "$2"

[storage]
data_dir = "$1/data"
seal_key_file = "$1/data/seal.key"

[smtp]
max_connections = 1000
max_connections_per_ip = 1000

[[smtp.listener]]
addr = "127.0.0.1:0"
tls = "starttls"

[relay]
networks = ["127.0.0.0/8", "::1/128"]
EOF
}

# Starts serve in the background; sets daemon_pid and port.
start_daemon() { # dir
    local dir=$1 i
    "$bin" --config "$dir/sealgate.toml" --log-format json serve >"$dir/serve.log" 2>"$dir/serve.err" &
    daemon_pid=$!
    for i in $(seq 1 300); do
        grep -q '"sealgate ready"' "$dir/serve.log" 2>/dev/null && break
        if ! kill -0 "$daemon_pid" 2>/dev/null || ((i == 300)); then
            sg_log "sealgate serve did not become ready; its output:"
            cat "$dir/serve.log" "$dir/serve.err" >&2
            keep_work=1
            return 1
        fi
        sleep 0.1
    done
    port=$(python3 - "$dir/serve.log" <<'EOF'
import json, sys
for line in open(sys.argv[1]):
    try:
        v = json.loads(line)
    except ValueError:
        continue
    f = v.get("fields", v)
    if f.get("message") == "smtp listener bound":
        print(f["addr"].rsplit(":", 1)[1])
        break
EOF
)
    [[ -n "$port" ]] || { sg_log "no 'smtp listener bound' line"; keep_work=1; return 1; }
}

stop_daemon() {
    kill -TERM "$daemon_pid"
    local rc=0
    wait "$daemon_pid" || rc=$?
    daemon_pid=
    ((rc == 0)) || sg_log "sealgate exited with $rc on SIGTERM"
}

mkdir -p bench/out
stamp=$(date -u +%Y%m%dT%H%M%SZ)
status=0
summary=()
for backend in $backends; do
    dir="$work/$backend"
    mkdir -p "$dir/data"
    case "$backend" in
        sqlite) url="sqlite://$dir/data/sealgate.db" ;;
        postgres) postgres_url ;;
    esac
    write_config "$dir" "$url"
    sg_log "$backend: migrate"
    "$bin" --config "$dir/sealgate.toml" migrate >"$dir/migrate.log" 2>&1 \
        || { cat "$dir/migrate.log" >&2; keep_work=1; exit 1; }
    sg_log "$backend: serve"
    start_daemon "$dir"
    sg_log "$backend: benchmark on 127.0.0.1:$port"
    out="bench/out/ingress-$backend-$stamp.json"
    python3 bench/ingress.py --host 127.0.0.1 --port "$port" --label "$backend" --json "$out" \
        "${py_args[@]}" | tee "$dir/result.txt" || status=1
    summary+=("$(cat "$dir/result.txt")")
    stop_daemon
done

echo
sg_log "summary"
printf '%s\n' "${summary[@]}"
exit "$status"
