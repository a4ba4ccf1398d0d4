#!/usr/bin/env python3
"""REST API accept benchmark: many POST /v1/messages over a few kept-alive HTTP connections.

Each of --connections threads opens one HTTP/1.1 connection (http.client) and posts its share
of --messages JSON messages of about --size bytes on it. The accept latency is the time from
sending the request to the 202, which Sealgate sends only after the message is durably queued.

Prints msgs/s (accepted over wall time), latency p50 / p99 / max and errors; --json FILE also
writes them as JSON.
"""

import argparse
import http.client
import json
import sys
import threading
import time


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--key", required=True, help="the API key (sgk_…)")
    p.add_argument("--messages", type=int, default=5000)
    p.add_argument("--connections", type=int, default=20)
    p.add_argument("--size", type=int, default=2048)
    p.add_argument("--label", default="")
    p.add_argument("--json")
    a = p.parse_args()
    text = ("The quick brown fox jumps over the lazy dog. 0123456789\r\n" * (a.size // 56 + 1))[: a.size]
    body = json.dumps({
        "from": "bench@bench.example.test", "to": ["bench@example.org"],
        "subject": "bench", "text": text,
    }).encode()
    headers = {"Authorization": "Bearer " + a.key, "Content-Type": "application/json"}
    latencies, errors, lock = [], [0], threading.Lock()
    share = [a.messages // a.connections + (1 if i < a.messages % a.connections else 0)
             for i in range(a.connections)]

    def worker(n):
        conn = http.client.HTTPConnection(a.host, a.port, timeout=60)
        mine = []
        bad = 0
        for _ in range(n):
            t0 = time.perf_counter()
            try:
                conn.request("POST", "/v1/messages", body=body, headers=headers)
                r = conn.getresponse()
                r.read()
                if r.status == 202:
                    mine.append(time.perf_counter() - t0)
                else:
                    bad += 1
            except (OSError, http.client.HTTPException):
                bad += 1
                conn.close()
                conn = http.client.HTTPConnection(a.host, a.port, timeout=60)
        with lock:
            latencies.extend(mine)
            errors[0] += bad

    start = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(n,)) for n in share]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    latencies.sort()
    q = lambda f: latencies[min(len(latencies) - 1, int(f * len(latencies)))] * 1000 if latencies else 0
    result = {"label": a.label, "accepted": len(latencies), "errors": errors[0], "seconds": wall,
              "msgs_per_s": len(latencies) / wall, "p50_ms": q(0.5), "p99_ms": q(0.99),
              "max_ms": latencies[-1] * 1000 if latencies else 0}
    print(f"{a.label:<16} api   {result['accepted']:>6} accepted  {result['msgs_per_s']:8.1f} msgs/s  "
          f"p50 {result['p50_ms']:6.1f} ms  p99 {result['p99_ms']:6.1f} ms  errors {result['errors']}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(result, f)
    return 0 if errors[0] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
