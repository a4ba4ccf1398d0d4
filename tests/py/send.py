#!/usr/bin/env python3
"""Send test messages with Python's smtplib and report each server reply.

Prints one JSON object per message on stdout:
  {"index": 0, "code": 250, "text": "2.0.0 Ok: queued as 01J...", "queue_id": "01J...",
   "stage": "data", "rcpt": [[250, "2.1.5 Ok"], ...]}
"stage" is the step that produced the final reply ("mail", "rcpt", "data").
A connection-level failure (connect, TLS, AUTH) prints one object with "error" and "stage".

Exit status: 0 every message queued (250 after DATA), 1 some message refused,
2 the connection or session failed.
"""

import argparse
import email.utils
import json
import re
import smtplib
import socket
import ssl
import sys

QUEUED_RE = re.compile(r"queued as (\S+)")


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=2525)
    tls = p.add_mutually_exclusive_group()
    tls.add_argument("--starttls", action="store_true", help="require STARTTLS before MAIL")
    tls.add_argument("--smtps", action="store_true", help="implicit TLS from the first byte (RFC 8314)")
    p.add_argument("--cafile", help="trust only this CA bundle (default: system roots)")
    p.add_argument("--insecure", action="store_true", help="do not verify the server certificate")
    p.add_argument("--servername", help="TLS server name to verify (default: --host)")
    p.add_argument("--auth", metavar="USER:PASS", help="AUTH (smtplib picks the mechanism)")
    p.add_argument("--helo", default="client.example.test", help="EHLO name")
    p.add_argument("--from", dest="mail_from", default="sender@client.example.test")
    p.add_argument("--header-from", help='the header From value (default: "<MAIL FROM address>")')
    p.add_argument("--to", dest="rcpt", action="append", help="recipient (repeatable)")
    p.add_argument("--subject", default="sealgate test")
    p.add_argument("--header", action="append", default=[], help='extra header "Name: value" (repeatable)')
    p.add_argument("--size", type=int, default=0, help="pad the body to about this many bytes")
    p.add_argument("--body-file", help="use this file as the whole message (headers included), verbatim")
    p.add_argument("--count", type=int, default=1, help="messages to send on this connection")
    p.add_argument("--pipeline", action="store_true", help="send MAIL, RCPT..., DATA in one write (RFC 2920)")
    p.add_argument("--timeout", type=float, default=30.0)
    p.add_argument("--source", help="connect from this local address (e.g. 127.0.0.2)")
    p.add_argument("--cert", help="present this TLS client certificate chain (PEM; with --key)")
    p.add_argument("--key", help="the client certificate's private key (PEM)")
    p.add_argument("--debug", action="store_true", help="smtplib debug output on stderr")
    a = p.parse_args(argv)
    if not a.rcpt:
        a.rcpt = ["recipient@example.org"]
    return a


def tls_context(a):
    if a.insecure:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    else:
        ctx = ssl.create_default_context(cafile=a.cafile)
    if a.cert:
        ctx.load_cert_chain(a.cert, a.key)
    return ctx


class NamedSMTP(smtplib.SMTP):
    """smtplib.SMTP verifying STARTTLS against a chosen server name (smtplib only
    remembers a host given to the constructor)."""

    servername = None

    def starttls(self, *args, **kwargs):
        self._host = self.servername
        return super().starttls(*args, **kwargs)


class NamedSMTPS(smtplib.SMTP_SSL):
    """smtplib.SMTP_SSL verifying against a chosen server name."""

    servername = None

    def _get_socket(self, host, port, timeout):
        sock = socket.create_connection((host, port), timeout, self.source_address)
        return self.context.wrap_socket(sock, server_hostname=self.servername or host)


def build_message(a, index):
    if a.body_file:
        with open(a.body_file, "rb") as f:
            return f.read()
    headers = [
        f"From: {a.header_from or f'<{a.mail_from}>'}",
        "To: " + ", ".join(f"<{r}>" for r in a.rcpt),
        f"Subject: {a.subject} #{index}",
        f"Date: {email.utils.formatdate(localtime=False)}",
        f"Message-ID: {email.utils.make_msgid(domain='client.example.test')}",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=us-ascii",
    ] + list(a.header)
    body = [f"Test message {index}."]
    size = sum(len(h) + 2 for h in headers) + 2 + len(body[0]) + 2
    line = "The quick brown fox jumps over the lazy dog. 0123456789 abcdefghijklmnopqrstu"
    while size < a.size:
        body.append(line)
        size += len(line) + 2
    return ("\r\n".join(headers) + "\r\n\r\n" + "\r\n".join(body) + "\r\n").encode("ascii")


def connect(a):
    cls = NamedSMTPS if a.smtps else NamedSMTP
    kwargs = {"context": tls_context(a)} if a.smtps else {}
    if a.source:
        kwargs["source_address"] = (a.source, 0)
    s = cls(timeout=a.timeout, **kwargs)
    s.servername = a.servername or a.host
    if a.debug:
        s.set_debuglevel(2)
    s.connect(a.host, a.port)
    s.ehlo(a.helo)
    if a.starttls:
        s.starttls(context=tls_context(a))
        s.ehlo(a.helo)
    if a.auth:
        user, _, password = a.auth.partition(":")
        s.login(user, password)
    return s


def reply_text(resp):
    return resp.decode("utf-8", "replace") if isinstance(resp, bytes) else str(resp)


def result(index, stage, code, resp, rcpt):
    text = reply_text(resp)
    m = QUEUED_RE.search(text) if code == 250 and stage == "data" else None
    return {"index": index, "stage": stage, "code": code, "text": text,
            "queue_id": m.group(1) if m else None, "rcpt": rcpt}


def send_sequential(s, a, index, msg):
    code, resp = s.mail(a.mail_from)
    if code != 250:
        s.rset()
        return result(index, "mail", code, resp, [])
    rcpt = []
    for r in a.rcpt:
        rc, rr = s.rcpt(r)
        rcpt.append([rc, reply_text(rr)])
    if not any(rc in (250, 251) for rc, _ in rcpt):
        s.rset()
        last = rcpt[-1]
        return result(index, "rcpt", last[0], last[1], rcpt)
    code, resp = s.data(msg)
    return result(index, "data", code, resp, rcpt)


def dot_stuff(msg):
    lines = msg.replace(b"\r\n", b"\n").split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return b"".join((b"." + l if l.startswith(b".") else l) + b"\r\n" for l in lines) + b".\r\n"


def send_pipelined(s, a, index, msg):
    """MAIL, RCPT... and DATA in one write, then the replies in order (RFC 2920 §3.1)."""
    cmds = [f"MAIL FROM:<{a.mail_from}>"] + [f"RCPT TO:<{r}>" for r in a.rcpt] + ["DATA"]
    s.send("".join(c + "\r\n" for c in cmds))
    code, resp = s.getreply()
    rcpt = []
    for _ in a.rcpt:
        rc, rr = s.getreply()
        rcpt.append([rc, reply_text(rr)])
    dcode, dresp = s.getreply()
    if code != 250:
        return result(index, "mail", code, resp, rcpt)
    if dcode != 354:
        return result(index, "data", dcode, dresp, rcpt)
    s.send(dot_stuff(msg))
    code, resp = s.getreply()
    return result(index, "data", code, resp, rcpt)


def main(argv):
    a = parse_args(argv)
    stage = "connect"
    try:
        s = connect(a)
        stage = "transaction"
        if a.pipeline and not s.has_extn("pipelining"):
            print(json.dumps({"warning": "server does not advertise PIPELINING"}), file=sys.stderr)
        all_ok = True
        for i in range(a.count):
            msg = build_message(a, i)
            send = send_pipelined if a.pipeline else send_sequential
            r = send(s, a, i, msg)
            all_ok = all_ok and r["code"] == 250 and r["stage"] == "data"
            print(json.dumps(r), flush=True)
        stage = "quit"
        s.quit()
    except Exception as e:  # report every failure as JSON, the caller asserts on it
        out = {"error": f"{type(e).__name__}: {e}", "stage": stage}
        if isinstance(e, smtplib.SMTPResponseException):
            out["code"] = e.smtp_code
            out["text"] = reply_text(e.smtp_error)
        print(json.dumps(out), flush=True)
        return 2
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
