#!/usr/bin/env python3
"""Ingress benchmark: many messages over a few reused SMTP connections.

Each of --connections threads opens one SMTP connection (smtplib) and sends its share of
--messages as MAIL / RCPT / DATA transactions on it. The accept latency of a message is the
time from sending MAIL to receiving the reply after the final "." of DATA — which Sealgate
sends only after the message is durably queued.

Prints msgs/s (accepted messages over wall time), latency p50 / p99 / max, and errors.
--json FILE also writes the numbers as JSON.
"""

import argparse
import json
import smtplib
import sys
import threading
import time


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=2525)
    p.add_argument("--messages", type=int, default=20000)
    p.add_argument("--connections", type=int, default=20)
    p.add_argument("--size", type=int, default=2048, help="message size in bytes (headers included)")
    p.add_argument("--rcpt", default="bench@example.org")
    p.add_argument("--label", default="", help="name of this run in the output (e.g. the backend)")
    p.add_argument("--json", help="also write the results to this file")
    p.add_argument("--timeout", type=float, default=60.0)
    return p.parse_args()


def make_message(size, worker):
    """A message of about `size` bytes; the per-message part is a prefix line."""
    head = (
        "From: <bench@client.example.test>\r\n"
        "To: <bench@example.org>\r\n"
        f"Subject: ingress benchmark (worker {worker})\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n"
    )
    line = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor.\r\n"
    body = ""
    # leave room for the Message-ID header added per message (~60 bytes)
    while len(head) + 2 + len(body) + len(line) + 60 <= size:
        body += line
    return head, body


class Worker(threading.Thread):
    def __init__(self, args, index, count, start_barrier):
        super().__init__(daemon=True)
        self.args, self.index, self.count, self.barrier = args, index, count, start_barrier
        self.latencies = []
        self.errors = []

    def run(self):
        a = self.args
        head, body = make_message(a.size, self.index)
        try:
            s = smtplib.SMTP(a.host, a.port, timeout=a.timeout)
            s.ehlo("bench.client.example.test")
        except (OSError, smtplib.SMTPException) as e:
            self.errors.extend([f"not sent: connect failed: {e}"] * self.count)
            self.barrier.wait()
            return
        self.barrier.wait()
        for n in range(self.count):
            msg = f"{head}Message-ID: <bench-{self.index}-{n}-{time.time_ns()}@client.example.test>\r\n\r\n{body}"
            try:
                t0 = time.perf_counter()
                code, resp = s.mail("bench@client.example.test")
                if code != 250:
                    raise smtplib.SMTPResponseException(code, resp)
                code, resp = s.rcpt(a.rcpt)
                if code not in (250, 251):
                    raise smtplib.SMTPResponseException(code, resp)
                code, resp = s.data(msg.encode("ascii"))
                t1 = time.perf_counter()
                if code != 250:
                    raise smtplib.SMTPResponseException(code, resp)
                self.latencies.append(t1 - t0)
            except smtplib.SMTPResponseException as e:
                self.errors.append(f"{e.smtp_code} {e.smtp_error!r}")
                try:
                    s.rset()
                except (OSError, smtplib.SMTPException):
                    return self._lost(n)
            except (OSError, smtplib.SMTPException) as e:
                self.errors.append(f"connection: {e}")
                return self._lost(n + 1)
        try:
            s.quit()
        except (OSError, smtplib.SMTPException):
            pass

    def _lost(self, done):
        """The connection is gone: count the rest of this worker's share as errors."""
        self.errors.extend(["not sent: connection lost"] * (self.count - done))


def percentile(sorted_values, q):
    if not sorted_values:
        return float("nan")
    i = min(len(sorted_values) - 1, max(0, int(round(q * (len(sorted_values) - 1)))))
    return sorted_values[i]


def main():
    a = parse_args()
    share, extra = divmod(a.messages, a.connections)
    barrier = threading.Barrier(a.connections + 1)
    workers = [Worker(a, i, share + (1 if i < extra else 0), barrier) for i in range(a.connections)]
    for w in workers:
        w.start()
    barrier.wait()  # every connection is open and greeted: start the clock
    t0 = time.perf_counter()
    for w in workers:
        w.join()
    wall = time.perf_counter() - t0

    lat = sorted(x for w in workers for x in w.latencies)
    errors = [e for w in workers for e in w.errors]
    res = {
        "label": a.label,
        "messages": a.messages,
        "connections": a.connections,
        "size": a.size,
        "accepted": len(lat),
        "errors": len(errors),
        "wall_s": round(wall, 3),
        "msgs_per_s": round(len(lat) / wall, 1) if wall > 0 else 0.0,
        "p50_ms": round(percentile(lat, 0.50) * 1000, 2),
        "p99_ms": round(percentile(lat, 0.99) * 1000, 2),
        "max_ms": round((lat[-1] if lat else float("nan")) * 1000, 2),
    }
    label = f"[{a.label}] " if a.label else ""
    print(
        f"{label}{res['accepted']}/{a.messages} msgs of {a.size} B over {a.connections} conns in {res['wall_s']} s: "
        f"{res['msgs_per_s']} msgs/s, p50 {res['p50_ms']} ms, p99 {res['p99_ms']} ms, "
        f"max {res['max_ms']} ms, errors {res['errors']}"
    )
    if errors:
        distinct = sorted(set(errors))
        print(f"{label}first distinct errors: {distinct[:5]}", file=sys.stderr)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=2)
            f.write("\n")
    return 0 if not errors else 1


if __name__ == "__main__":
    sys.exit(main())
