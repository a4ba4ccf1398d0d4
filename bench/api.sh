#!/usr/bin/env bash
# REST API accept benchmark beside SMTP ingress, on the same daemon in the same run: the release
# binary on SQLite and/or PostgreSQL; bench/api.py posts JSON messages over kept-alive HTTP
# connections, then bench/ingress.py sends as many over SMTP.
#
#   bench/api.sh [sqlite|postgres|both] [--messages N --connections N --size B]
#
# SEALGATE_BIN skips the release build. Results go to stdout and bench/out/api-*.json.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh
# shellcheck source=bench/lib.sh
source bench/lib.sh

backends=${1:-both}
[[ $# -gt 0 ]] && shift
case "$backends" in
    sqlite | postgres) ;;
    both) backends="sqlite postgres" ;;
    -h | --help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "usage: $0 [sqlite|postgres|both] [--messages N --connections N --size B]" >&2; exit 2 ;;
esac
py_args=("$@")

work=$(mktemp -d "${TMPDIR:-/tmp}/sealgate-bench.XXXXXX")
daemon_pid=
bench_db=
bench_admin_url=
keep_work=
cleanup() {
    bench_cleanup_common
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

bench_binary

# Accepting only: no delivery. The API on loopback over plain HTTP, like the SMTP listener.
write_config() { # dir db_url
    bench_config "$1" "$2" "bench.example.test"
    printf '[delivery]\nenabled = false\n[api]\nenabled = true\nlisten = "127.0.0.1:0"\nrequests_per_minute = 10000000\n' >>"$1/sealgate.toml"
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
        postgres) bench_postgres_url sealgate_bench ;;
    esac
    write_config "$dir" "$url"
    "$bin" --config "$dir/sealgate.toml" migrate >"$dir/migrate.log" 2>&1 \
        || { cat "$dir/migrate.log" >&2; keep_work=1; exit 1; }
    key=$("$bin" --config "$dir/sealgate.toml" api-keys add bench --scope send 2>/dev/null)
    bench_start_sealgate "$dir"
    aport=$(bench_listener_port "$dir/serve.log" api)
    [[ -n "$aport" ]] || { sg_log "no 'api listener bound' line"; keep_work=1; exit 1; }
    sg_log "$backend: API on 127.0.0.1:$aport, SMTP on 127.0.0.1:$port"
    python3 bench/api.py --port "$aport" --key "$key" --label "$backend" \
        --json "bench/out/api-$backend-$stamp.json" "${py_args[@]}" | tee "$dir/api.txt" || status=1
    python3 bench/ingress.py --host 127.0.0.1 --port "$port" --label "$backend smtp" \
        --json "bench/out/api-smtp-$backend-$stamp.json" "${py_args[@]}" | tee "$dir/smtp.txt" || status=1
    summary+=("$(cat "$dir/api.txt")" "$(cat "$dir/smtp.txt")")
    bench_stop_sealgate
done

echo
sg_log "summary"
printf '%s\n' "${summary[@]}"
exit "$status"
