#!/usr/bin/env python3
"""Idle-connection benchmark: open many SMTP connections, keep them idle, read the relay's RSS.

Opens --connections connections to --port (plain: after the 220 greeting; --tls: after an
implicit-TLS handshake and the greeting over it), from source addresses 127.0.1.1-4, keeps them
all open for --hold seconds, and samples the server's resident memory (/proc/PID/status) before
the first connection, once all are open, and after they are closed again.

Prints one line of figures; --json FILE also writes them as JSON.
"""

import argparse
import asyncio
import json
import ssl
import sys
import time

MIB = 1024 * 1024


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--pid", type=int, required=True, help="the server process")
    p.add_argument("--connections", type=int, default=10000)
    p.add_argument("--tls", action="store_true", help="implicit TLS (RFC 8314) on --port")
    p.add_argument("--hold", type=float, default=5.0)
    p.add_argument("--concurrency", type=int, default=200, help="connection attempts in flight")
    p.add_argument("--label", default="")
    p.add_argument("--json")
    return p.parse_args()


def rss(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


async def open_one(i, port, ctx, gate):
    async with gate:
        src = f"127.0.1.{1 + i % 4}"
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", port, ssl=ctx, local_addr=(src, 0),
                                    server_hostname="127.0.0.1" if ctx else None),
            timeout=60,
        )
        greeting = await asyncio.wait_for(reader.readline(), timeout=60)
        if not greeting.startswith(b"220 "):
            raise RuntimeError(f"greeting {greeting!r}")
        return writer


async def main():
    a = parse_args()
    ctx = None
    if a.tls:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    before = rss(a.pid)
    gate = asyncio.Semaphore(a.concurrency)
    started = time.monotonic()
    results = await asyncio.gather(*(open_one(i, a.port, ctx, gate) for i in range(a.connections)),
                                   return_exceptions=True)
    writers = [r for r in results if not isinstance(r, BaseException)]
    errors = [r for r in results if isinstance(r, BaseException)]
    opened = time.monotonic() - started
    await asyncio.sleep(a.hold)
    held = rss(a.pid)
    for w in writers:
        w.close()
    await asyncio.sleep(3)
    after = rss(a.pid)
    r = {
        "label": a.label,
        "mode": "tls" if a.tls else "plain",
        "connections": len(writers),
        "errors": len(errors),
        "first_error": repr(errors[0]) if errors else None,
        "open_seconds": round(opened, 1),
        "rss_before_mib": round(before / MIB, 1),
        "rss_held_mib": round(held / MIB, 1),
        "rss_after_close_mib": round(after / MIB, 1),
        "kib_per_connection": round((held - before) / 1024 / max(1, len(writers)), 1),
    }
    print(f"{a.label} {r['mode']}: {r['connections']} idle connections (errors {r['errors']}), "
          f"RSS {r['rss_before_mib']} -> {r['rss_held_mib']} MiB held "
          f"({r['kib_per_connection']} KiB each), {r['rss_after_close_mib']} MiB after closing"
          + (f"; first error {r['first_error']}" if errors else ""))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(r, f, indent=1)
    return 0 if not errors else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
