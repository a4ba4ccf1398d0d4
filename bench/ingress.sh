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
# shellcheck source=bench/lib.sh
source bench/lib.sh

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
    bench_cleanup_common
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

bench_binary

# The ingress benchmark measures accepting only: no delivery, so nothing leaves loopback.
write_config() { # dir db_url
    bench_config "$1" "$2" "bench.example.test"
    printf '[delivery]\nenabled = false\n' >>"$1/sealgate.toml"
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
    sg_log "$backend: migrate"
    "$bin" --config "$dir/sealgate.toml" migrate >"$dir/migrate.log" 2>&1 \
        || { cat "$dir/migrate.log" >&2; keep_work=1; exit 1; }
    sg_log "$backend: serve"
    bench_start_sealgate "$dir"
    sg_log "$backend: benchmark on 127.0.0.1:$port"
    out="bench/out/ingress-$backend-$stamp.json"
    python3 bench/ingress.py --host 127.0.0.1 --port "$port" --label "$backend" --json "$out" \
        "${py_args[@]}" | tee "$dir/result.txt" || status=1
    summary+=("$(cat "$dir/result.txt")")
    bench_stop_sealgate
done

echo
sg_log "summary"
printf '%s\n' "${summary[@]}"
exit "$status"
