# Shared shell functions for scripts/test and bench/. Source it; do not run it.
#
#   sg_ensure_packages         install the missing Debian packages of SG_PACKAGES
#   sg_py_env                  the tests' PyPI packages in target/py-venv; exports SG_PYTHON
#   sg_pg_start / sg_pg_stop   a throwaway PostgreSQL cluster; exports DATABASE_URL
#   sg_log MSG                 a progress line on stderr

# Debian packages the tests need, as "package" or "package:probe". The probe (a
# command name or an absolute path) tells that it is present even if the
# package came from elsewhere; without one, dpkg is asked.
# What building needs beyond gcc: bindgen in openssl-sys (sequoia's crypto-openssl backend)
# needs libclang; OpenSSL 3 headers and pkg-config find the system libssl/libcrypto.
SG_BUILD_PACKAGES=(
    libclang-dev:/usr/lib/llvm-14/lib/libclang.so
    libssl-dev:/usr/include/openssl/ssl.h
    pkg-config:pkg-config
)
SG_PACKAGES=(
    "${SG_BUILD_PACKAGES[@]}"
    swaks:swaks
    libnet-ssleay-perl # swaks --tls (only a Recommends of swaks)
    postgresql:initdb
    python3:python3
    python3-venv # /usr/bin/python3 -m venv for sg_py_env (its files are in python3.X-venv: no fixed probe)
    postfix:/usr/sbin/postfix # a real MX / relay on loopback (sealgate-testkit::postfix)
    gnupg:gpg # the OpenPGP oracle: decrypts and verifies what we send
    openssl:openssl # the S/MIME oracle: openssl cms -decrypt / -verify
    systemd:systemd-analyze # verifies deploy/sealgate.service
    python3-yaml:/usr/lib/python3/dist-packages/yaml/__init__.py # parses deploy/compose.yaml (tests/tests/e2e/deploy_files.rs)
    python3-dkim:/usr/bin/dkimverify # dkimpy, the DKIM oracle (tests/py/dkim_verify.py, run by /usr/bin/python3)
    python3-authres:/usr/lib/python3/dist-packages/authres/__init__.py # dkimpy's ARC signing and verification (tests/py/arc_tool.py)
    chromium:/usr/bin/chromium # the portal's browser tests (driven by playwright-core, tests/browser)
    nodejs:node # runs tests/browser/portal.mjs
    npm:npm     # installs tests/browser's playwright-core from its lock file
)

sg_log() {
    printf '\033[1m==> %s\033[0m\n' "$*" >&2
}

# Puts the newest /usr/lib/postgresql/N/bin on PATH (Debian keeps initdb, pg_ctl there).
sg_pg_path() {
    local dir
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    if [[ -n "$dir" && ":$PATH:" != *":$dir:"* ]]; then
        PATH="$dir:$PATH"
        export PATH
    fi
}

sg_have() {
    local pkg=${1%%:*} probe=${1#*:}
    if [[ "$probe" != "$1" ]]; then
        if [[ "$probe" == /* ]]; then [[ -e "$probe" ]] && return 0; else command -v "$probe" >/dev/null 2>&1 && return 0; fi
    fi
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'
}

sg_ensure_packages() {
    sg_pg_path
    local entry missing=()
    for entry in "${SG_PACKAGES[@]}"; do
        sg_have "$entry" || missing+=("${entry%%:*}")
    done
    ((${#missing[@]} == 0)) && return 0
    local sudo=()
    if [[ $(id -u) -ne 0 ]]; then
        if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
            sudo=(sudo -n)
        else
            sg_log "missing packages: ${missing[*]} (not root, no sudo): tests that need them will fail"
            return 0
        fi
    fi
    sg_log "installing ${missing[*]}"
    # postfix asks what kind of mail server to set up: none. Tests start their own instances
    # with their own config directories; no /etc/postfix/main.cf means no system postfix runs.
    echo 'postfix postfix/main_mailer_type select No configuration' | "${sudo[@]}" debconf-set-selections
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    sg_pg_path
}

# The tests' PyPI packages (tests/py/requirements.txt, exact pins) in a venv of Debian's
# /usr/bin/python3 at target/py-venv. Exports SG_PYTHON, its interpreter (the Rust tests read
# SG_PYTHON, else target/py-venv/bin/python under the workspace root). The venv keeps a copy of
# the requirements it was made from, written once pip succeeded; when tests/py/requirements.txt
# differs or the venv is missing or half made, it is made anew. Otherwise this returns at
# once, without asking PyPI.
sg_py_env() {
    local root venv req
    root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    venv=$root/target/py-venv
    req=$root/tests/py/requirements.txt
    export SG_PYTHON=$venv/bin/python
    if [[ -x "$SG_PYTHON" ]] && cmp -s "$req" "$venv/requirements.txt"; then
        return 0
    fi
    sg_log "python venv $venv (tests/py/requirements.txt)"
    rm -rf "$venv"
    mkdir -p "$root/target"
    /usr/bin/python3 -m venv "$venv" || { sg_log "python3 -m venv failed (install python3-venv)"; return 1; }
    "$venv/bin/pip" install -q --disable-pip-version-check -r "$req" || { sg_log "pip install failed"; return 1; }
    # Written last: an interrupted install leaves no copy, so the next call starts over.
    cp "$req" "$venv/requirements.txt"
}

# A free TCP port on 127.0.0.1 (the kernel's choice; racy but retried by sg_pg_start).
sg_free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Runs a command as the postgres OS user when we are root (postgres refuses to run as root).
sg_as_pg() {
    if [[ $(id -u) -eq 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# Starts a throwaway cluster in a temp dir and exports DATABASE_URL.
# Sets SG_PG_DIR; sg_pg_stop stops it and deletes the directory.
sg_pg_start() {
    sg_pg_path
    command -v initdb >/dev/null || { sg_log "initdb not found (install postgresql)"; return 1; }
    SG_PG_DIR=$(mktemp -d "${TMPDIR:-/tmp}/sealgate-pg.XXXXXX")
    if [[ $(id -u) -eq 0 ]]; then
        id postgres >/dev/null 2>&1 || { sg_log "no postgres OS user to run the cluster as"; return 1; }
        chown postgres: "$SG_PG_DIR"
    fi
    sg_as_pg initdb -D "$SG_PG_DIR/data" -U postgres --auth=trust -E UTF8 --no-instructions >"$SG_PG_DIR/initdb.log" 2>&1 \
        || { cat "$SG_PG_DIR/initdb.log" >&2; return 1; }
    local attempt port
    for attempt in 1 2 3; do
        port=$(sg_free_port)
        if sg_as_pg pg_ctl -D "$SG_PG_DIR/data" -l "$SG_PG_DIR/server.log" -w -t 60 \
            -o "-c listen_addresses=127.0.0.1 -p $port -k $SG_PG_DIR -c fsync=on -c max_connections=300" \
            start >/dev/null; then
            break
        fi
        sg_log "postgres did not start on port $port (attempt $attempt)"
        port=
    done
    [[ -n "$port" ]] || { cat "$SG_PG_DIR/server.log" >&2; return 1; }
    local i
    for i in $(seq 1 120); do
        pg_isready -q -h 127.0.0.1 -p "$port" -U postgres && break
        ((i == 120)) && { sg_log "postgres not ready after 60 s"; cat "$SG_PG_DIR/server.log" >&2; return 1; }
        sleep 0.5
    done
    SG_PG_PORT=$port
    export DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
    sg_log "throwaway PostgreSQL at $DATABASE_URL ($SG_PG_DIR)"
}

sg_pg_stop() {
    [[ -n "${SG_PG_DIR:-}" && -d "$SG_PG_DIR" ]] || return 0
    sg_as_pg pg_ctl -D "$SG_PG_DIR/data" -m fast -w -t 30 stop >/dev/null 2>&1 || true
    rm -rf "$SG_PG_DIR"
    SG_PG_DIR=
}
