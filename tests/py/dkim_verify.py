#!/usr/bin/python3
"""Verify every DKIM-Signature of a message with dkimpy (Debian's python3-dkim), looking the
keys up at a given DNS server instead of the system resolver.

usage: dkim_verify.py --dns 127.0.0.1:5353 MESSAGE_FILE

Prints one JSON object: {"signatures": [{"d": ..., "s": ..., "a": ..., "valid": true}, ...]},
in header order. Exit status 0 when there is at least one signature and all are valid, else 1.
"""

import argparse
import json
import sys

import dkim
import dns.message
import dns.query
import dns.rdatatype


def dnsfunc_for(host, port):
    def get_txt(name, timeout=5):
        if isinstance(name, bytes):
            name = name.decode()
        query = dns.message.make_query(name, dns.rdatatype.TXT)
        answer = dns.query.tcp(query, host, port=port, timeout=timeout)
        for rrset in answer.answer:
            for rdata in rrset:
                if rdata.rdtype == dns.rdatatype.TXT:
                    return b"".join(rdata.strings)
        return None

    return get_txt


def tags(value):
    out = {}
    for part in value.split(b";"):
        if b"=" in part:
            k, v = part.split(b"=", 1)
            out[k.strip().decode()] = b"".join(v.split()).decode()
    return out


def main(argv):
    p = argparse.ArgumentParser()
    p.add_argument("--dns", required=True, help="HOST:PORT of the DNS server")
    p.add_argument("message")
    a = p.parse_args(argv)
    host, port = a.dns.rsplit(":", 1)
    with open(a.message, "rb") as f:
        message = f.read()
    dnsfunc = dnsfunc_for(host, int(port))
    d = dkim.DKIM(message)
    fields = [v for (k, v) in d.headers if k.lower() == b"dkim-signature"]
    results = []
    for i, value in enumerate(fields):
        t = tags(value)
        try:
            valid = bool(d.verify(idx=i, dnsfunc=dnsfunc))
            error = None
        except Exception as e:  # a verifier's refusal is a result, not a crash
            valid, error = False, str(e)
        results.append({"d": t.get("d"), "s": t.get("s"), "a": t.get("a"), "valid": valid, "error": error})
    print(json.dumps({"signatures": results}))
    return 0 if results and all(r["valid"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
