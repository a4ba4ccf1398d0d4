# Helpers shared by the benchmark scripts; source after scripts/lib.sh. They read and set the
# caller's variables: bin (the sealgate binary), keep_work, daemon_pid, port, url, bench_db,
# bench_admin_url, work.

# The cleanup every benchmark ends with: stop the daemon, drop the benchmark database, stop a
# throwaway cluster, and remove the work directory (or say where its logs are kept).
bench_cleanup_common() {
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

# Replaces the database name in a postgres:// URL.
bench_with_db() { # url name
    python3 - "$1" "$2" <<'EOF'
import sys, urllib.parse as u
p = u.urlsplit(sys.argv[1])
print(u.urlunsplit(p._replace(path="/" + sys.argv[2])))
EOF
}

# Sets url to a fresh database (not in a subshell: it may start the throwaway cluster).
bench_postgres_url() { # name-prefix
    if [[ -z "${DATABASE_URL:-}" ]]; then
        sg_ensure_packages
        sg_pg_start
    fi
    bench_admin_url=$DATABASE_URL
    bench_db="${1}_$$_$RANDOM"
    psql -q "$bench_admin_url" -c "CREATE DATABASE \"$bench_db\"" >/dev/null
    url=$(bench_with_db "$bench_admin_url" "$bench_db")
}

# Writes DIR/sealgate.toml with what every benchmark shares; callers append their sections.
bench_config() { # dir db_url hostname
    cat >"$1/sealgate.toml" <<EOF
[server]
hostname = "$3"
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

bench_auth_only_config() { # dir hostname
    # A SQLite relay under dir where only AUTH may relay (loopback is no relay network), with
    # a throwaway certificate for STARTTLS and delivery off.
    mkdir -p "$1/data"
    bench_self_signed "$1"
    bench_config "$1" "sqlite://$1/data/sealgate.db" "$2"
    python3 - "$1/sealgate.toml" "$1" <<'PY'
import sys
path, d = sys.argv[1], sys.argv[2]
text = open(path).read()
text = text.replace('networks = ["127.0.0.0/8", "::1/128"]', 'networks = ["10.255.0.0/16"]')
text += f'[tls]\ncert_file = "{d}/cert.pem"\nkey_file = "{d}/key.pem"\n\n[delivery]\nenabled = false\n'
open(path, "w").write(text)
PY
}

# Starts serve in the background; sets daemon_pid and port.
bench_start_sealgate() { # dir
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
    port=$(bench_listener_port "$dir/serve.log" starttls)
    [[ -n "$port" ]] || { sg_log "no 'smtp listener bound' line"; keep_work=1; return 1; }
}

bench_stop_sealgate() {
    kill -TERM "$daemon_pid"
    local rc=0
    wait "$daemon_pid" || rc=$?
    daemon_pid=
    ((rc == 0)) || sg_log "sealgate exited with $rc on SIGTERM"
}

# Sets bin: $SEALGATE_BIN if set, otherwise the release binary, built here. Clears the
# environment variables that would point the binary at another config or database.
bench_binary() {
    if [[ -n "${SEALGATE_BIN:-}" ]]; then
        bin=$SEALGATE_BIN
    else
        sg_log "building the release binary"
        cargo build --release -p sealgate
        bin="${CARGO_TARGET_DIR:-target}/release/sealgate"
    fi
    bin=$(realpath "$bin")
    unset SEALGATE_CONFIG SEALGATE_DATABASE_URL
}

# Prints the port of the first listener of MODE in a serve log: an SMTP listener's mode
# ("starttls" or "implicit"), or "api" for the REST API's listener.
bench_listener_port() { # log mode
    python3 - "$1" "$2" <<'EOF'
import json, sys
mode = sys.argv[2]
for line in open(sys.argv[1]):
    try:
        v = json.loads(line)
    except ValueError:
        continue
    f = v.get("fields", v)
    api = mode == "api" and f.get("message") == "api listener bound"
    smtp = f.get("message") == "smtp listener bound" and f.get("mode") == mode
    if api or smtp:
        print(f["addr"].rsplit(":", 1)[1])
        break
EOF
}

# A throwaway self-signed P-256 certificate for 127.0.0.1: DIR/cert.pem and DIR/key.pem.
bench_self_signed() { # dir
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -subj /CN=127.0.0.1 -keyout "$1/key.pem" -out "$1/cert.pem" >/dev/null 2>&1
}
