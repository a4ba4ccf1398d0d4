#!/usr/bin/python3
"""DKIM and ARC as another mail system does them, with dkimpy (Debian's python3-dkim).

usage:
  arc_tool.py sign --key KEY.pem --domain D --selector S [--sign-header NAME ...]
                   [--arc-srv-id ID] IN OUT
      DKIM-signs IN as D/S (From, To, Subject, Date, Message-ID and each --sign-header);
      with --arc-srv-id also records "dkim=pass" under ID in an Authentication-Results field
      and adds ARC set i=1 sealed as D/S, as Microsoft 365 does when mail leaves a tenant.
      KEY is an RSA key in PKCS#1 PEM. Writes the signed message to OUT.
  arc_tool.py verify --dns HOST:PORT FILE
      Validates FILE's ARC chain, keys looked up at the DNS server. Prints one JSON object
      {"cv": "pass"|"fail"|"none", "sets": N, "reason": ...}; exit 0 when cv is pass.
"""

import argparse
import json
import sys

import dkim

# The same DNS lookup at the lab's server as dkim_verify.py (this script's directory is on
# sys.path when it runs).
from dkim_verify import dnsfunc_for

SIGNED = [b"From", b"To", b"Subject", b"Date", b"Message-ID"]


def sign(a):
    with open(a.key, "rb") as f:
        key = f.read()
    with open(a.input, "rb") as f:
        message = f.read()
    headers = SIGNED + [h.encode() for h in a.sign_header]
    sig = dkim.sign(message, a.selector.encode(), a.domain.encode(), key,
                    include_headers=headers)
    message = sig + message
    if a.arc_srv_id:
        results = ("Authentication-Results: %s; dkim=pass header.d=%s header.s=%s\r\n"
                   % (a.arc_srv_id, a.domain, a.selector)).encode()
        message = results + message
        arc = dkim.arc_sign(message, a.selector.encode(), a.domain.encode(), key,
                            a.arc_srv_id.encode(), include_headers=headers)
        message = b"".join(arc) + message
    with open(a.output, "wb") as f:
        f.write(message)
    return 0


def verify(a):
    host, port = a.dns.rsplit(":", 1)
    with open(a.message, "rb") as f:
        message = f.read()
    cv, results, reason = dkim.arc_verify(message, dnsfunc=dnsfunc_for(host, int(port)))
    cv = cv.decode() if isinstance(cv, bytes) else str(cv)
    reason = reason.decode() if isinstance(reason, bytes) else str(reason)
    print(json.dumps({"cv": cv, "sets": len(results), "reason": reason}))
    return 0 if cv == "pass" else 1


def main(argv):
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("sign")
    s.add_argument("--key", required=True)
    s.add_argument("--domain", required=True)
    s.add_argument("--selector", required=True)
    s.add_argument("--sign-header", action="append", default=[])
    s.add_argument("--arc-srv-id")
    s.add_argument("input")
    s.add_argument("output")
    v = sub.add_parser("verify")
    v.add_argument("--dns", required=True)
    v.add_argument("message")
    a = p.parse_args(argv)
    return sign(a) if a.command == "sign" else verify(a)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
