#!/usr/bin/env bash
# DKIM signing and ARC sealing cost per message: Sealgate's signer (mail-auth over aws-lc-rs, in process,
# release build) for rsa-sha256, ed25519-sha256 and both, beside `openssl speed` for the bare
# RSA-2048 and Ed25519 signatures on the same machine (the floor any signer pays).
#
#   bench/dkim.sh [SECONDS] [SIZE]     (time per measurement, default 3; message bytes, default 2048)
#
# Results go to stdout and bench/out/dkim-<time>.txt.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

seconds=${1:-3}
size=${2:-2048}
case "$seconds" in -h | --help) sed -n '2,8p' "$0"; exit 0 ;; esac
mkdir -p bench/out
out="bench/out/dkim-$(date -u +%Y%m%dT%H%M%SZ).txt"

sg_log "building the benchmark (release)"
cargo build --release -q -p sealgate-crypto --example dkim_bench
bench_bin="${CARGO_TARGET_DIR:-target}/release/examples/dkim_bench"
{
    sg_log "Sealgate's DKIM signer, $size-byte message"
    "$bench_bin" "$seconds" "$size"
    sg_log "openssl speed: the bare signatures"
    openssl speed -seconds "$seconds" rsa2048 ed25519 2>/dev/null | grep -E "sign/s|^rsa 2048|Ed25519"
} | tee "$out"
