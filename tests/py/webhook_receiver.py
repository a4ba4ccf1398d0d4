"""A webhook endpoint for the tests: verifies Standard Webhooks 1.0 signatures with the
`standardwebhooks` package (the oracle) and answers as the test tells it to.

usage:
  $SG_PYTHON tests/py/webhook_receiver.py --port-file FILE --log FILE \\
      --secret whsec_XXX [--secret whsec_YYY ...]

Listens on 127.0.0.1, on a port the kernel picks, and writes that port number to --port-file
(atomically, once listening), then serves until killed. HTTP/1.1 with keep-alive; every
answer but a 204 has a Content-Length.

POST to any path but /_control: a webhook. The body is verified against the webhook-id,
webhook-timestamp and webhook-signature headers with each --secret in turn; it is verified if
any of them verifies it (key rotation: the signature header may carry several space-separated
"v1,..." signatures, and a receiver may know the old and the new secret). An unverified request
is answered 401 whatever the mode. A verified one is answered as the mode says:

  {"mode": "ok"}                            204 No Content (the default)
  {"mode": "status", "status": 500}         that status, with a small JSON body; with
      "retry_after": SECONDS                also a Retry-After header (for 429 or 503)
      "location": URL                       also a Location header (for a redirect)
  {"mode": "hang", "seconds": S}            waits S seconds (less if the client goes away
                                            first), then 200
  {"mode": "down"}                          closes the connection without an answer, so the
                                            client sees a connection error

Each mode takes "count": N, to apply it to the next N verified requests only and then go back
to "ok"; without "count" it lasts until the next change. Set the mode with POST /_control and
such a JSON body (answered 200 {"ok": true}); {"secrets": ["whsec_..."]} replaces the secrets
instead (with none, every webhook is unverified). GET /_control answers
  {"requests": N, "verified_ok": K, "ids_ok": [...], "mode": {...}}
N counting every webhook request, K the verified ones answered 2xx, ids_ok the sorted distinct
webhook-ids of those.

--log gets one JSON line per webhook request, written just before it is answered (so the line
of a hung request comes after those of later requests: "n" numbers them in arrival order, and
"at" is the arrival time):
  {"n": 1, "id": ..., "timestamp": ..., "signature": ..., "verified": true, "status": 204,
   "body": <the body parsed as JSON, or its text when it is not JSON>, "path": "/hook",
   "at": <time.time()>}
plus "error" when not verified. "status" is null when no answer was given (mode down, or a
client that went away during a hang).
"""

import argparse
import json
import os
import select
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook

CONTROL = "/_control"


class State:
    """What the handlers share; every field is guarded by `lock`."""

    def __init__(self, secrets, log_path):
        self.lock = threading.Lock()
        self.hooks = [Webhook(s) for s in secrets]
        self.log = open(log_path, "a", encoding="utf-8")
        self.requests = 0
        self.verified_ok = 0
        self.ids_ok = set()
        self.mode = {"mode": "ok"}
        self.left = None  # requests the mode still applies to; None = no limit

    def set_mode(self, mode):
        with self.lock:
            self.mode = mode
            self.left = mode.get("count")

    def take_mode(self):
        """The mode that applies to the next verified request, counting it."""
        with self.lock:
            mode = self.mode
            if self.left is not None:
                self.left -= 1
                if self.left <= 0:
                    self.mode, self.left = {"mode": "ok"}, None
            return mode

    def next_number(self):
        with self.lock:
            self.requests += 1
            return self.requests

    def verify(self, body, headers):
        """None when one of the secrets verifies the body, else the reason it did not."""
        errors = []
        for hook in self.hooks:
            try:
                hook.verify(body, headers, json_parse=False)
                return None
            except Exception as e:  # the library's errors, and bad base64 in a header
                text = "%s: %s" % (type(e).__name__, e)
                if text not in errors:
                    errors.append(text)
        return "; ".join(errors)

    def record(self, entry, verified, status, webhook_id):
        with self.lock:
            if verified and status is not None and 200 <= status < 300:
                self.verified_ok += 1
                if webhook_id is not None:
                    self.ids_ok.add(webhook_id)
            self.log.write(json.dumps(entry) + "\n")
            self.log.flush()

    def counts(self):
        with self.lock:
            return {
                "requests": self.requests,
                "verified_ok": self.verified_ok,
                "ids_ok": sorted(self.ids_ok),
                "mode": dict(self.mode, left=self.left),
            }


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def version_string(self):
        return "webhook-receiver"

    def log_message(self, format, *args):
        pass

    @property
    def state(self):
        return self.server.state

    # --- HTTP plumbing ---

    def read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def answer(self, status, body=None, headers=()):
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        if data:
            self.send_header("Content-Type", "application/json")
        if status != 204:  # a 204 has no body and must not have a Content-Length (RFC 9110)
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data:
            self.wfile.write(data)
        self.wfile.flush()

    def drop(self):
        """Closes the connection without answering."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def wait_or_gone(self, seconds):
        """Sleeps up to `seconds`; False as soon as the client closed the connection."""
        deadline = time.monotonic() + seconds
        watch = True
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return True
            if not watch:
                time.sleep(left)
                return True
            readable, _, _ = select.select([self.connection], [], [], min(left, 0.2))
            if readable:
                try:
                    peek = self.connection.recv(1, socket.MSG_PEEK)
                except OSError:
                    return False
                if not peek:
                    return False
                watch = False  # a pipelined request: nothing more to learn from the socket

    # --- requests ---

    def do_GET(self):
        if self.path.split("?")[0] == CONTROL:
            self.answer(200, self.state.counts())
        else:
            self.answer(404, {"error": "not found"})

    def do_POST(self):
        try:
            body = self.read_body()
        except (ValueError, OSError):
            self.answer(400, {"error": "bad body"})
            self.close_connection = True
            return
        if self.path.split("?")[0] == CONTROL:
            self.control(body)
        else:
            self.webhook(body)

    def control(self, body):
        try:
            mode = json.loads(body)
            if "secrets" in mode:
                # {"secrets": [...]}: verify with these from now on (the relay prints an
                # endpoint's secret only once the endpoint, whose URL names our port, exists).
                hooks = [Webhook(s) for s in mode["secrets"]]
                with self.state.lock:
                    self.state.hooks = hooks
                self.answer(200, {"ok": True})
                return
            kind = mode["mode"]
            if kind not in ("ok", "status", "hang", "down"):
                raise ValueError("unknown mode %r" % kind)
            if kind == "status":
                int(mode["status"])
            if kind == "hang":
                float(mode["seconds"])
            if mode.get("count") is not None:
                mode["count"] = int(mode["count"])
        except (ValueError, KeyError, TypeError) as e:
            self.answer(400, {"ok": False, "error": str(e)})
            return
        self.state.set_mode(mode)
        self.answer(200, {"ok": True})

    def webhook(self, body):
        state = self.state
        n = state.next_number()
        headers = {}
        for name in ("webhook-id", "webhook-timestamp", "webhook-signature"):
            value = self.headers.get(name)
            if value is not None:
                headers[name] = value
        error = state.verify(body, headers)
        verified = error is None
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = body.decode("utf-8", errors="replace")
        entry = {
            "n": n,
            "id": headers.get("webhook-id"),
            "timestamp": headers.get("webhook-timestamp"),
            "signature": headers.get("webhook-signature"),
            "verified": verified,
            "status": None,
            "body": parsed,
            "path": self.path,
            "at": time.time(),
        }
        if not verified:
            entry["error"] = error
            entry["status"] = 401
            state.record(entry, False, 401, entry["id"])
            self.answer(401, {"error": error})
            return

        mode = state.take_mode()
        kind = mode["mode"]
        if kind == "down":
            state.record(entry, True, None, entry["id"])
            self.drop()
            return
        if kind == "hang":
            if not self.wait_or_gone(float(mode["seconds"])):
                entry["note"] = "client went away"
                state.record(entry, True, None, entry["id"])
                self.drop()
                return
            status, reply, extra = 200, None, ()
        elif kind == "status":
            status = int(mode["status"])
            reply = None if status in (204, 304) or status < 200 else {"status": status}
            extra = ()
            if mode.get("retry_after") is not None:
                extra = (("Retry-After", str(mode["retry_after"])),)
            if mode.get("location") is not None:
                extra = tuple(extra) + (("Location", str(mode["location"])),)
        else:
            status, reply, extra = 204, None, ()
        entry["status"] = status
        state.record(entry, True, status, entry["id"])
        self.answer(status, reply, extra)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return  # a client that went away
        super().handle_error(request, client_address)


def main():
    p = argparse.ArgumentParser(description="Standard Webhooks test receiver")
    p.add_argument("--port-file", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--secret", action="append", default=[],
                   help="whsec_... secret; repeat for several (key rotation); or set them "
                        "later with POST /_control {\"secrets\": [...]}")
    a = p.parse_args()

    server = Server(("127.0.0.1", 0), Handler)
    server.state = State(a.secret, a.log)
    tmp = a.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % server.server_address[1])
    os.replace(tmp, a.port_file)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
