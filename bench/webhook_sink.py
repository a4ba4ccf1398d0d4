"""A fast webhook endpoint for the webhook throughput benchmark: counts what the relay delivers.

usage:
  $SG_PYTHON bench/webhook_sink.py --port-file FILE [--verify whsec_... [--verify-every K]]

Listens on 127.0.0.1, on a port the kernel picks, and writes that port number to --port-file
(atomically, once listening). One asyncio process (stdlib only, plus standardwebhooks with
--verify), HTTP/1.1 parsed by hand: keep-alive, pipelining, Content-Length or chunked bodies.

  POST any path but the two below  a webhook: answered 204 No Content, counted
  GET /_stats                      {"requests": N, "first_at": T, "last_at": T,
                                    "bad_signatures": K, "verified": V}
  POST /_reset                     zeroes the counters, answers the stats before the reset

first_at and last_at are time.time() when the first and the last counted body had been read
(null before any); the delivery rate is (N - 1) / (last_at - first_at). On SIGTERM or SIGINT
the sink prints the stats as one JSON line on stdout and exits 0.

--verify SECRET (repeatable, for key rotation: a request passes if any secret verifies it)
checks the webhook-id / webhook-timestamp / webhook-signature headers of each request with
standardwebhooks; failures count in bad_signatures, but every request is still answered 204 so
a bad signature does not turn into retries. Verification costs CPU in the same process (and on
a small machine, the same cores as the relay), so the benchmark runs the sink without
--verify and checks signatures on a sample only: a separate short run with --verify, or
--verify-every K to verify one request in K (counted in "verified").
"""

import argparse
import asyncio
import json
import os
import signal
import sys
import time

MAX_HEAD = 64 * 1024
NO_CONTENT = b"HTTP/1.1 204 No Content\r\nServer: webhook-sink\r\n\r\n"


class Stats:
    def __init__(self):
        self.reset()

    def reset(self):
        self.requests = 0
        self.first_at = None
        self.last_at = None
        self.bad_signatures = 0
        self.verified = 0

    def as_dict(self):
        return {
            "requests": self.requests,
            "first_at": self.first_at,
            "last_at": self.last_at,
            "bad_signatures": self.bad_signatures,
            "verified": self.verified,
        }


class Sink:
    def __init__(self, secrets, verify_every):
        self.stats = Stats()
        self.hooks = []
        if secrets:
            from standardwebhooks import Webhook  # only when asked: its import is not free

            self.hooks = [Webhook(s) for s in secrets]
        self.verify_every = max(1, verify_every)

    def check(self, headers, body):
        """Verifies one request in verify_every when there are secrets."""
        if not self.hooks or self.stats.requests % self.verify_every != 0:
            return
        self.stats.verified += 1
        wanted = {}
        for name in ("webhook-id", "webhook-timestamp", "webhook-signature"):
            if name in headers:
                wanted[name] = headers[name]
        for hook in self.hooks:
            try:
                hook.verify(body, wanted, json_parse=False)
                return
            except Exception:
                pass
        self.stats.bad_signatures += 1

    async def read_body(self, reader, headers):
        if "chunked" in headers.get("transfer-encoding", "").lower():
            parts = []
            while True:
                line = await reader.readuntil(b"\r\n")
                size = int(line.split(b";")[0].strip(), 16)
                if size == 0:
                    while await reader.readuntil(b"\r\n") != b"\r\n":
                        pass  # trailers
                    return b"".join(parts)
                parts.append(await reader.readexactly(size))
                await reader.readexactly(2)
        length = int(headers.get("content-length", "0"))
        return await reader.readexactly(length) if length > 0 else b""

    async def serve(self, reader, writer):
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.LimitOverrunError:
                    writer.write(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
                                 b"Content-Length: 0\r\nConnection: close\r\n\r\n")
                    break
                lines = head.decode("latin-1").split("\r\n")
                parts = lines[0].split(" ")
                if len(parts) != 3:
                    writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
                                 b"Connection: close\r\n\r\n")
                    break
                method, target, version = parts
                headers = {}
                for line in lines[1:]:
                    if line:
                        name, _, value = line.partition(":")
                        headers[name.strip().lower()] = value.strip()
                body = await self.read_body(reader, headers)
                conn = headers.get("connection", "").lower()
                close = conn == "close" or (version == "HTTP/1.0" and conn != "keep-alive")
                path = target.split("?")[0]

                if method == "GET" and path == "/_stats":
                    self.reply_json(writer, self.stats.as_dict(), close)
                elif method == "POST" and path == "/_reset":
                    before = self.stats.as_dict()
                    self.stats.reset()
                    self.reply_json(writer, before, close)
                elif method == "POST":
                    stats = self.stats
                    stats.requests += 1
                    now = time.time()
                    if stats.first_at is None:
                        stats.first_at = now
                    stats.last_at = now
                    self.check(headers, body)
                    writer.write(NO_CONTENT if not close else
                                 b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
                else:
                    writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                if close:
                    break
                # Flow control only when the client does not read its answers.
                if writer.transport.get_write_buffer_size() > 256 * 1024:
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            try:
                writer.close()
                await writer.wait_closed()
            except Exception:
                pass

    @staticmethod
    def reply_json(writer, obj, close):
        data = json.dumps(obj).encode()
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n%s\r\n"
                     % (len(data), b"Connection: close\r\n" if close else b"") + data)


async def main():
    p = argparse.ArgumentParser(description="webhook benchmark sink")
    p.add_argument("--port-file", required=True)
    p.add_argument("--port", type=int, default=0,
                   help="listen on this port of 127.0.0.1 (default: one the kernel picks)")
    p.add_argument("--verify", action="append", default=[], metavar="SECRET",
                   help="whsec_... secret to verify signatures with (repeatable)")
    p.add_argument("--verify-every", type=int, default=1, metavar="K",
                   help="with --verify, verify one request in K (default every one)")
    a = p.parse_args()

    sink = Sink(a.verify, a.verify_every)
    server = await asyncio.start_server(sink.serve, "127.0.0.1", a.port, limit=MAX_HEAD,
                                        backlog=1024)
    port = server.sockets[0].getsockname()[1]
    tmp = a.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % port)
    os.replace(tmp, a.port_file)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()
    sys.stdout.write(json.dumps(sink.stats.as_dict()) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    asyncio.run(main())
