#!/usr/bin/env python3
"""AUTH benchmark: every message on a new STARTTLS connection with its own AUTH.

--clients processes each loop: connect, EHLO, STARTTLS, EHLO, AUTH PLAIN, MAIL, RCPT, DATA
(--size bytes), QUIT — as an EHR that opens a connection per message does. Prints
authenticated messages/s over the wall time, per-message latency p50/p99, and errors.
"""

import argparse
import json
import multiprocessing
import smtplib
import ssl
import sys
import time


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--messages", type=int, default=4000)
    p.add_argument("--clients", type=int, default=20)
    p.add_argument("--size", type=int, default=2048)
    p.add_argument("--label", default="")
    p.add_argument("--json")
    return p.parse_args()


def worker(job):
    port, user, password, count, size, n = job
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    body = ("From: <ehr@clinic.example.test>\r\nTo: <bench@example.org>\r\n"
            f"Subject: auth benchmark {n}\r\n\r\n" + "x" * 70 + "\r\n")
    body += ("y" * 70 + "\r\n") * max(0, (size - len(body)) // 72)
    latencies, errors = [], []
    for _ in range(count):
        t = time.monotonic()
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=60) as s:
                s.starttls(context=ctx)
                s.login(user, password)
                s.sendmail("ehr@clinic.example.test", ["bench@example.org"], body)
            latencies.append(time.monotonic() - t)
        except Exception as e:  # noqa: BLE001 - counted and reported
            errors.append(repr(e))
    return latencies, errors


def main():
    a = parse_args()
    share = [a.messages // a.clients + (1 if i < a.messages % a.clients else 0) for i in range(a.clients)]
    jobs = [(a.port, a.user, a.password, c, a.size, i) for i, c in enumerate(share)]
    start = time.monotonic()
    with multiprocessing.Pool(a.clients) as pool:
        results = pool.map(worker, jobs)
    wall = time.monotonic() - start
    lat = sorted(x for r in results for x in r[0])
    errors = [e for r in results for e in r[1]]
    pct = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000 if lat else 0.0
    r = {
        "label": a.label,
        "messages": len(lat),
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
        "wall_s": round(wall, 2),
        "msgs_per_s": round(len(lat) / wall, 1),
        "p50_ms": round(pct(0.5), 1),
        "p99_ms": round(pct(0.99), 1),
    }
    print(f"{a.label}: {r['messages']} authenticated messages in {r['wall_s']} s = {r['msgs_per_s']} msgs/s "
          f"(p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms, errors {r['errors']})"
          + (f"; first error {r['first_error']}" if errors else ""))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(r, f, indent=1)
    return 0 if not errors else 1


if __name__ == "__main__":
    sys.exit(main())
