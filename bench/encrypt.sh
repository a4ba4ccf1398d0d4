#!/usr/bin/env bash
# Encryption benchmark: Sealgate's PGP/MIME and S/MIME (in process, release build) against
# GnuPG and `openssl cms` doing the same work in the same run, for 2 KB and 100 KB messages.
#
#   bench/encrypt.sh [SECONDS]     (time per measurement, default 3)
#
# Keys are made here by gpg (Curve25519) and openssl (RSA-3072, EC P-256). GnuPG is measured
# two ways: one process per message (how a script would call it) and one process for many
# files (`--multifile`, no start-up cost per message); `openssl cms` has no batch mode, so it is
# one process per message. Results go to stdout and bench/out/encrypt-<time>.txt.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

seconds=${1:-3}
case "$seconds" in -h | --help) sed -n '2,10p' "$0"; exit 0 ;; esac
sg_ensure_packages

work=$(mktemp -d "${TMPDIR:-/tmp}/sealgate-bench-enc.XXXXXX")
export GNUPGHOME="$work/gnupg"
cleanup() {
    gpgconf --kill all 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

sg_log "building the benchmark (release)"
cargo build --release -q -p sealgate-encrypt --example encrypt_bench
bench_bin="${CARGO_TARGET_DIR:-target}/release/examples/encrypt_bench"

sg_log "making keys"
mkdir -m 700 "$GNUPGHOME"
gpg --batch -q --pinentry-mode loopback --passphrase '' \
    --quick-gen-key 'Bench <rcpt@bench.test>' future-default default 1y 2>/dev/null
gpg --batch -q --export --armor rcpt@bench.test >"$work/rcpt.asc"
openssl req -x509 -newkey rsa:3072 -nodes -days 365 -subj '/CN=rcpt@bench.test' \
    -addext 'subjectAltName=email:rcpt@bench.test' -addext 'keyUsage=digitalSignature,keyEncipherment' \
    -addext 'extendedKeyUsage=emailProtection' -keyout "$work/rsa.key" -out "$work/rsa.pem" 2>/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 -subj '/CN=rcpt@bench.test' \
    -addext 'subjectAltName=email:rcpt@bench.test' -addext 'keyUsage=digitalSignature,keyAgreement' \
    -addext 'extendedKeyUsage=emailProtection' -keyout "$work/ec.key" -out "$work/ec.pem" 2>/dev/null

# A message of about $1 bytes: headers and a base64 attachment.
make_message() { # bytes file
    python3 - "$1" "$2" <<'PY'
import base64, os, sys
size, path = int(sys.argv[1]), sys.argv[2]
raw = os.urandom(max(0, (size - 600) * 3 // 4))
b64 = base64.encodebytes(raw).decode().replace("\n", "\r\n")
msg = ("From: ehr@clinic.test\r\nTo: rcpt@bench.test\r\nSubject: results\r\n"
       "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
       "--b\r\nContent-Type: text/plain\r\n\r\nSee attachment.\r\n"
       "--b\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
       + b64 + "--b--\r\n")
open(path, "w", newline="").write(msg)
PY
}

# Runs the command (MSG replaced by the message) repeatedly for $seconds, one process each;
# prints runs per second. The loop is Python's, so only the command's own start-up counts.
per_process() { # message cmd...
    python3 - "$seconds" "$@" <<'PY'
import subprocess, sys, time
seconds, msg, cmd = float(sys.argv[1]), sys.argv[2], sys.argv[3:]
cmd = [msg if a == "MSG" else a for a in cmd]
n, start = 0, time.monotonic()
while time.monotonic() - start < seconds:
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    n += 1
print(f"{n / (time.monotonic() - start):.1f}")
PY
}

# gpg in one process over N copies of the message.
gpg_multifile() { # message
    local msg=$1 dir="$work/multi" n=200 start took
    rm -rf "$dir"; mkdir "$dir"
    for i in $(seq 1 $n); do cp "$msg" "$dir/m$i"; done
    start=$(date +%s.%N)
    gpg --batch -q --yes --trust-model always --armor -e -r rcpt@bench.test --multifile "$dir"/m*
    took=$(python3 -c "print($(date +%s.%N) - $start)")
    python3 -c "print(f'{$n / $took:.1f}')"
}

stamp=$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p bench/out
out="bench/out/encrypt-$stamp.txt"
{
    printf '%-8s %-36s %10s\n' size method 'msgs/s'
    for size in 2048 102400; do
        msg="$work/msg-$size.eml"
        make_message "$size" "$msg"
        label="$((size / 1024))KB"
        while read -r method n took rate; do
            printf '%-8s %-36s %10s\n' "$label" "sealgate ${method/:/ }" "$rate"
        done < <("$bench_bin" "$msg" "$seconds" pgp:cv25519 "$work/rcpt.asc" \
            smime-gcm:rsa3072 "$work/rsa.pem" smime-cbc:rsa3072 "$work/rsa.pem" smime-gcm:p256 "$work/ec.pem")
        printf '%-8s %-36s %10s\n' "$label" "gpg cv25519 (process per message)" \
            "$(per_process "$msg" gpg --batch -q --yes --trust-model always --armor -e -r rcpt@bench.test -o - MSG)"
        printf '%-8s %-36s %10s\n' "$label" "gpg cv25519 --multifile (1 process)" "$(gpg_multifile "$msg")"
        printf '%-8s %-36s %10s\n' "$label" "openssl cms rsa3072 gcm (process)" \
            "$(per_process "$msg" openssl cms -encrypt -binary -aes-256-gcm -in MSG -recip "$work/rsa.pem" \
                -keyopt rsa_padding_mode:oaep -keyopt rsa_oaep_md:sha256 -keyopt rsa_mgf1_md:sha256)"
        printf '%-8s %-36s %10s\n' "$label" "openssl cms rsa3072 cbc (process)" \
            "$(per_process "$msg" openssl cms -encrypt -binary -aes-256-cbc -in MSG -recip "$work/rsa.pem" \
                -keyopt rsa_padding_mode:oaep -keyopt rsa_oaep_md:sha256 -keyopt rsa_mgf1_md:sha256)"
        printf '%-8s %-36s %10s\n' "$label" "openssl cms p256 gcm (process)" \
            "$(per_process "$msg" openssl cms -encrypt -binary -aes-256-gcm -in MSG -recip "$work/ec.pem")"
    done
} | tee "$out"
sg_log "written to $out"
