#!/usr/bin/env bash
# End-to-end delivery benchmark: ingress → delivered at a local SMTP sink, for Sealgate (the
# release binary, SQLite and/or PostgreSQL) and, in the same run, a throwaway Postfix relaying
# the same load to the same sink. Prints msgs/s for each and the Sealgate/Postfix ratio.
#
#   bench/delivery.sh [sqlite|postgres|both] [--small N] [--large N] [--connections N] [--concurrency N] [--dkim]
#
# --small: messages of 2 KB (default 2000); --large: messages of 100 KB (default 300);
# --connections: client connections (default 20); --concurrency: outbound connections to the
# one destination, for both relays (default 5, Sealgate's max_connections_per_domain default).
# --dkim: Sealgate signs every message with an rsa-sha256 and an ed25519-sha256 key (keys from
# `sealgate dkim keygen`); Postfix does not sign. Sealgate's process CPU per message (user+sys,
# its own process only, not PostgreSQL's) is printed for every load.
# PostgreSQL: a fresh database on DATABASE_URL's server if set (dropped afterwards), otherwise a
# throwaway cluster (scripts/lib.sh). SEALGATE_BIN skips the release build. Needs root (Postfix's
# master starts as root). Results: bench/out/delivery-*-<time>.json. See bench/README.md.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh
# shellcheck source=bench/lib.sh
source bench/lib.sh

backends=both
small=2000
large=300
connections=20
concurrency=5
dkim=
while [[ $# -gt 0 ]]; do
    case "$1" in
        sqlite | postgres | both) backends=$1 ;;
        --small) small=$2; shift ;;
        --large) large=$2; shift ;;
        --connections) connections=$2; shift ;;
        --concurrency) concurrency=$2; shift ;;
        --dkim) dkim=1 ;;
        -h | --help) sed -n '2,16p' "$0"; exit 0 ;;
        *) echo "usage: $0 [sqlite|postgres|both] [--small N] [--large N] [--connections N] [--concurrency N] [--dkim]" >&2; exit 2 ;;
    esac
    shift
done
[[ "$backends" == both ]] && backends="sqlite postgres"

SINK_IP=127.0.0.20
DOMAIN=bench.test

work=$(mktemp -d "${TMPDIR:-/tmp}/sealgate-delivery-bench.XXXXXX")
chmod 755 "$work" # Postfix's daemons (user postfix) traverse it
peers_pid=
daemon_pid=
postfix_dir=
bench_db=
bench_admin_url=
keep_work=
cleanup() {
    if [[ -n "$postfix_dir" ]]; then
        /usr/sbin/postfix -c "$postfix_dir/config" stop >/dev/null 2>&1 || true
    fi
    if [[ -n "$peers_pid" ]]; then
        kill -TERM "$peers_pid" 2>/dev/null || true
        wait "$peers_pid" 2>/dev/null || true
    fi
    bench_cleanup_common
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

[[ $(id -u) -eq 0 ]] || { sg_log "run as root: Postfix's master must start as root"; exit 1; }
sg_ensure_packages # postfix, postgresql, python3

bench_binary

# --- the sink and DNS (one process for the whole run: both relays deliver to the same sink) ---
python3 bench/delivery.py peers --ip "$SINK_IP" --domain "$DOMAIN" >"$work/peers.json" 2>"$work/peers.err" &
peers_pid=$!
for _ in $(seq 1 100); do
    [[ -s "$work/peers.json" ]] && break
    sleep 0.05
done
read -r sink_port dns_port ctl_port < <(python3 -c 'import json,sys; p=json.load(open(sys.argv[1])); print(p["smtp"], p["dns"], p["ctl"])' "$work/peers.json")
sg_log "sink on $SINK_IP:$sink_port, DNS on 127.0.0.1:$dns_port ($DOMAIN MX mx.$DOMAIN → $SINK_IP)"

mkdir -p bench/out
stamp=$(date -u +%Y%m%dT%H%M%SZ)
results=()
status=0

# Runs both sizes against the relay listening on 127.0.0.1:$1; $2 system, $3 backend label.
run_load() {
    local port=$1 system=$2 backend=$3 size count label out
    # Warm-up, not measured: process start-up (Postfix spawns smtpd, cleanup, smtp on demand),
    # first connections, caches.
    python3 bench/delivery.py load --port "$port" --ctl "$ctl_port" --messages 100 --size 2048 \
        --connections "$connections" --domain "$DOMAIN" --label "$system warm-up" >/dev/null || status=1
    for size_count in "2048:$small" "102400:$large"; do
        size=${size_count%%:*}
        count=${size_count#*:}
        label="$system${backend:+-$backend}-$((size / 1024))k"
        out="bench/out/delivery-$label-$stamp.json"
        sg_log "$label: $count messages of $size B over $connections connections"
        local cpu0=
        [[ "$system" == sealgate && -n "$daemon_pid" ]] && cpu0=$(proc_cpu_ticks "$daemon_pid")
        python3 bench/delivery.py load --port "$port" --ctl "$ctl_port" --messages "$count" \
            --size "$size" --connections "$connections" --domain "$DOMAIN" \
            --system "$system" --backend "$backend" --label "$label" --json "$out" || status=1
        if [[ -n "$cpu0" ]]; then
            local cpu1 tck
            cpu1=$(proc_cpu_ticks "$daemon_pid")
            tck=$(getconf CLK_TCK)
            sg_log "$label: sealgate process CPU $(python3 -c "print(f'{($cpu1 - $cpu0) * 1000 / $tck / $count:.3f}')") ms/msg${dkim:+ (DKIM: rsa-sha256 + ed25519-sha256)}"
        fi
        results+=("$out")
    done
}

# user+sys clock ticks of process $1 so far.
proc_cpu_ticks() {
    awk '{ print $14 + $15 }' "/proc/$1/stat"
}

# --- Sealgate -----------------------------------------------------------------------------------

write_sealgate_config() { # dir db_url
    bench_config "$1" "$2" "relay.bench.test"
    cat >>"$1/sealgate.toml" <<EOF
[delivery]
enabled = true
smtp_port = $sink_port
max_connections_per_domain = $concurrency
poll_interval = "100ms"

[dns]
nameservers = ["127.0.0.1:$dns_port"]
# The bench zone is unsigned and the sink has no verified TLS: like Postfix's default
# "smtp_tls_security_level = may", deliver with opportunistic TLS.
dnssec = false

[policy]
default_level = "none"
EOF
    if [[ -n "$dkim" ]]; then
        local sel alg sel_alg
        for sel_alg in "b1:rsa-sha256" "b2:ed25519-sha256"; do
            sel=${sel_alg%%:*}
            alg=${sel_alg#*:}
            [[ -f "$work/dkim-$sel.pem" ]] || "$bin" dkim keygen client.example.test --selector "$sel" \
                --algorithm "$alg" --out "$work/dkim-$sel.pem" >/dev/null
            cat >>"$1/sealgate.toml" <<EOF

[[dkim.key]]
domain = "client.example.test"
selector = "$sel"
algorithm = "$alg"
key_file = "$work/dkim-$sel.pem"
EOF
        done
    fi
}

for backend in $backends; do
    dir="$work/sealgate-$backend"
    mkdir -p "$dir/data"
    case "$backend" in
        sqlite) url="sqlite://$dir/data/sealgate.db" ;;
        postgres) bench_postgres_url sealgate_dbench ;;
    esac
    write_sealgate_config "$dir" "$url"
    "$bin" --config "$dir/sealgate.toml" migrate >"$dir/migrate.log" 2>&1 \
        || { cat "$dir/migrate.log" >&2; keep_work=1; exit 1; }
    bench_start_sealgate "$dir"
    sg_log "sealgate ($backend) on 127.0.0.1:$port"
    run_load "$port" sealgate "$backend"
    bench_stop_sealgate
    if grep '"level":"WARN"\|"level":"ERROR"' "$dir/serve.log" | grep -qv 'sealing key\|no \[tls\]'; then
        sg_log "sealgate logged warnings: kept in $dir"
        keep_work=1
    fi
done

# --- Postfix ------------------------------------------------------------------------------------
# A relay like the testkit's PostfixMx (crates/sealgate-testkit/src/postfix.rs): its own config,
# queue and log under the work dir, no chroot, listening through master.cf only.

postfix_dir="$work/postfix"
mkdir -p "$postfix_dir/config" "$postfix_dir/queue"
chmod 755 "$postfix_dir"
postfix_port=$(sg_free_port)
cat >"$postfix_dir/config/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $postfix_dir/queue
data_directory = $postfix_dir/data
maillog_file = $postfix_dir/maillog
maillog_file_prefixes = $postfix_dir
myhostname = relay.bench.test
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
mydestination =
alias_maps =
alias_database =
local_header_rewrite_clients =
biff = no
smtputf8_enable = yes
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
relayhost = [$SINK_IP]:$sink_port
smtp_tls_security_level = none
default_destination_concurrency_limit = $concurrency
initial_destination_concurrency = $concurrency
EOF
{
    echo "127.0.0.1:$postfix_port inet n - n - - smtpd"
    for svc in "pickup unix n - 1 pickup" "cleanup unix n - 0 cleanup" "qmgr unix n - 1 qmgr" \
        "tlsmgr unix - - 1 tlsmgr" "rewrite unix - - - trivial-rewrite" "bounce unix - - 0 bounce" \
        "defer unix - - 0 bounce" "trace unix - - 0 bounce" "verify unix - - 1 verify" \
        "flush unix n - 0 flush" "proxymap unix - - - proxymap" "proxywrite unix - - 1 proxymap" \
        "smtp unix - - - smtp" "relay unix - - - smtp" "showq unix n - - showq" \
        "error unix - - - error" "retry unix - - - error" "discard unix - - - discard" \
        "local unix - n - local" "virtual unix - n - virtual" "lmtp unix - - - lmtp" \
        "anvil unix - - 1 anvil" "scache unix - - 1 scache" "postlog unix-dgram n - 1 postlogd"; do
        read -r name type private unpriv max cmd <<<"$svc"
        echo "$name $type $private $unpriv n - $max $cmd"
    done
} >"$postfix_dir/config/master.cf"
/usr/sbin/postfix -c "$postfix_dir/config" start >"$postfix_dir/start.log" 2>&1 \
    || { cat "$postfix_dir/start.log" "$postfix_dir/maillog" >&2 || true; keep_work=1; exit 1; }
for i in $(seq 1 200); do
    python3 -c 'import socket,sys; s=socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1); sys.exit(0 if s.recv(3) == b"220" else 1)' "$postfix_port" 2>/dev/null && break
    ((i == 200)) && { sg_log "postfix not ready"; cat "$postfix_dir/maillog" >&2; keep_work=1; exit 1; }
    sleep 0.1
done
sg_log "postfix $(postconf -c "$postfix_dir/config" -h mail_version) on 127.0.0.1:$postfix_port, relayhost [$SINK_IP]:$sink_port"
run_load "$postfix_port" postfix ""
grep -q 'status=sent' "$postfix_dir/maillog" || { sg_log "postfix sent nothing? log kept"; keep_work=1; }

echo
sg_log "summary (also in bench/out/delivery-summary-$stamp.txt)"
python3 bench/delivery.py summary "${results[@]}" | tee "bench/out/delivery-summary-$stamp.txt"
((status == 0)) || keep_work=1
exit "$status"
