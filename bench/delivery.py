#!/usr/bin/env python3
"""End-to-end delivery benchmark helpers (driven by bench/delivery.sh). Python stdlib only.

  delivery.py peers --ip 127.0.0.20 --domain bench.test
      The "internet" both relays deliver to, in one asyncio process:
      - an SMTP sink on IP:0 (EHLO offers PIPELINING and 8BITMIME; every command is accepted;
        a message counts at the end of its data, when the sink answers 250);
      - a DNS responder on 127.0.0.1:0 (UDP) answering `DOMAIN MX 10 mx.DOMAIN` and
        `mx.DOMAIN A IP`, NODATA for other types of those names and NXDOMAIN for the rest;
      - a control port on 127.0.0.1:0 (line protocol: `reset`, `stats`, `wait N SECONDS`).
      Prints one JSON line {"smtp": port, "dns": port, "ctl": port} once listening.

  delivery.py load --port P --ctl C --messages N --size B [--connections 20] [--label L] [--json F]
      Resets the sink's counters, opens --connections SMTP connections to 127.0.0.1:P (the relay
      under test), releases them together (the clock starts: first MAIL), sends N messages of B
      bytes to bench@DOMAIN (bench/ingress.py's sender), then waits until the sink counted N.
      Prints ingress msgs/s (until the relay acknowledged the last message) and end-to-end
      msgs/s (until the sink received the Nth message).

  delivery.py summary FILE.json...
      A table of the runs and the Sealgate/Postfix ratio for each size (and backend).
"""

import argparse
import asyncio
import json
import os
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ingress  # noqa: E402  (the sender threads of the ingress benchmark)


# ---------------------------------------------------------------------------------------------
# The sink


class Counter:
    def __init__(self):
        self.reset()
        self.changed = asyncio.Event()

    def reset(self):
        self.count = 0
        self.bytes = 0
        self.first_mail = None
        self.last_data = None
        self.connections = 0

    def stats(self):
        return {
            "count": self.count,
            "bytes": self.bytes,
            "connections": self.connections,
            "first_mail": self.first_mail,
            "last_data": self.last_data,
        }


EHLO = b"250-sink.bench.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SIZE 0\r\n250 ENHANCEDSTATUSCODES\r\n"


async def smtp_session(counter, reader, writer):
    counter.connections += 1
    writer.write(b"220 sink.bench.test ESMTP benchmark sink\r\n")
    try:
        while True:
            line = await reader.readline()
            if not line:
                break
            verb = line[:4].upper()
            if verb == b"EHLO":
                writer.write(EHLO)
            elif verb == b"MAIL":
                if counter.first_mail is None:
                    counter.first_mail = time.time()
                writer.write(b"250 2.1.0 ok\r\n")
            elif verb == b"RCPT":
                writer.write(b"250 2.1.5 ok\r\n")
            elif verb == b"DATA":
                writer.write(b"354 go ahead\r\n")
                await writer.drain()
                data = await read_data(reader)
                if data is None:
                    break
                counter.count += 1
                counter.bytes += len(data)
                counter.last_data = time.time()
                counter.changed.set()
                writer.write(b"250 2.0.0 queued\r\n")
            elif verb == b"QUIT":
                writer.write(b"221 2.0.0 bye\r\n")
                await writer.drain()
                break
            elif verb == b"STAR":  # STARTTLS is not offered
                writer.write(b"502 5.5.1 not offered\r\n")
            else:  # HELO, RSET, NOOP, anything: accepted
                writer.write(b"250 2.0.0 ok\r\n")
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        pass
    finally:
        writer.close()


async def read_data(reader):
    """The message up to CRLF.CRLF (not de-stuffed: only counted), or None at EOF."""
    try:
        first = await reader.readuntil(b"\r\n")
        if first == b".\r\n":
            return b""
        rest = await reader.readuntil(b"\r\n.\r\n")
        return first + rest[:-3]
    except asyncio.IncompleteReadError:
        return None


# ---------------------------------------------------------------------------------------------
# The DNS responder (RFC 1035 §4.1: header, question; answers use a pointer to the question)

QTYPE_A, QTYPE_MX = 1, 15


def encode_name(name):
    out = b""
    for label in name.strip(".").split("."):
        out += bytes([len(label)]) + label.encode("ascii")
    return out + b"\0"


def parse_question(packet):
    """(id, flags, qname lowercased, qtype, end of question) or None."""
    if len(packet) < 12:
        return None
    qid, flags, qdcount = struct.unpack("!HHH", packet[:6])
    if qdcount != 1 or flags & 0x8000:
        return None
    labels, i = [], 12
    while i < len(packet):
        n = packet[i]
        i += 1
        if n == 0:
            break
        if n & 0xC0:  # no compression in a question we accept
            return None
        labels.append(packet[i : i + n].decode("ascii", "replace").lower())
        i += n
    if i + 4 > len(packet):
        return None
    qtype, _qclass = struct.unpack("!HH", packet[i : i + 4])
    return qid, flags, ".".join(labels), qtype, i + 4


class Dns(asyncio.DatagramProtocol):
    def __init__(self, domain, ip):
        self.domain, self.mx = domain, "mx." + domain
        self.ip = socket.inet_aton(ip)

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, packet, addr):
        q = parse_question(packet)
        if q is None:
            return
        qid, flags, name, qtype, end = q
        answers, rcode = [], 0
        if name == self.domain and qtype == QTYPE_MX:
            answers.append((QTYPE_MX, struct.pack("!H", 10) + encode_name(self.mx)))
        elif name == self.mx and qtype == QTYPE_A:
            answers.append((QTYPE_A, self.ip))
        elif name not in (self.domain, self.mx):
            rcode = 3  # NXDOMAIN
        # QR, opcode 0, AA, RD copied, RA
        out_flags = 0x8000 | 0x0400 | (flags & 0x0100) | 0x0080 | rcode
        reply = struct.pack("!HHHHHH", qid, out_flags, 1, len(answers), 0, 0) + packet[12:end]
        for rtype, rdata in answers:
            reply += struct.pack("!HHHIH", 0xC00C, rtype, 1, 300, len(rdata)) + rdata
        self.transport.sendto(reply, addr)


# ---------------------------------------------------------------------------------------------
# The control port


async def control_session(counter, reader, writer):
    try:
        while line := await reader.readline():
            words = line.decode().split()
            if words[:1] == ["reset"]:
                counter.reset()
                reply = {"ok": True}
            elif words[:1] == ["wait"] and len(words) == 3:
                n, limit = int(words[1]), float(words[2])
                deadline = time.monotonic() + limit
                while counter.count < n and time.monotonic() < deadline:
                    counter.changed.clear()
                    try:
                        await asyncio.wait_for(counter.changed.wait(), 0.5)
                    except asyncio.TimeoutError:
                        pass
                reply = counter.stats()
            else:
                reply = counter.stats()
            writer.write((json.dumps(reply) + "\n").encode())
            await writer.drain()
    finally:
        writer.close()


async def peers(a):
    counter = Counter()
    loop = asyncio.get_running_loop()
    smtp = await asyncio.start_server(
        lambda r, w: smtp_session(counter, r, w), a.ip, 0, limit=64 * 1024 * 1024, backlog=1024
    )
    dns_transport, _ = await loop.create_datagram_endpoint(
        lambda: Dns(a.domain.lower(), a.ip), local_addr=("127.0.0.1", 0)
    )
    ctl = await asyncio.start_server(lambda r, w: control_session(counter, r, w), "127.0.0.1", 0)
    ports = {
        "smtp": smtp.sockets[0].getsockname()[1],
        "dns": dns_transport.get_extra_info("sockname")[1],
        "ctl": ctl.sockets[0].getsockname()[1],
    }
    print(json.dumps(ports), flush=True)
    await asyncio.Event().wait()


# ---------------------------------------------------------------------------------------------
# The load


def control(port, command, timeout=30.0):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(command.encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    return json.loads(data)


def load(a):
    control(a.ctl, "reset")
    sender = argparse.Namespace(
        host="127.0.0.1", port=a.port, size=a.size, timeout=120.0, rcpt=f"bench@{a.domain}"
    )
    share, extra = divmod(a.messages, a.connections)
    barrier = threading.Barrier(a.connections + 1)
    workers = [
        ingress.Worker(sender, i, share + (1 if i < extra else 0), barrier) for i in range(a.connections)
    ]
    for w in workers:
        w.start()
    barrier.wait()  # every connection is open and greeted
    t0 = time.time()
    for w in workers:
        w.join()
    acked_at = time.time()
    accepted = sum(len(w.latencies) for w in workers)
    errors = [e for w in workers for e in w.errors]
    got = control(a.ctl, f"wait {accepted} {a.timeout}", timeout=a.timeout + 30)
    time.sleep(1.0)  # anything beyond `accepted` arriving now is a duplicate
    final = control(a.ctl, "stats")
    done = got["count"] >= accepted and got["last_data"] is not None
    e2e = got["last_data"] - t0 if done else float("nan")
    res = {
        "label": a.label,
        "system": a.system,
        "backend": a.backend,
        "size": a.size,
        "messages": a.messages,
        "connections": a.connections,
        "accepted": accepted,
        "errors": len(errors),
        "delivered": final["count"],
        "sink_connections": final["connections"],
        "ingress_s": round(acked_at - t0, 3),
        "ingress_msgs_per_s": round(accepted / (acked_at - t0), 1),
        "e2e_s": round(e2e, 3),
        "e2e_msgs_per_s": round(accepted / e2e, 1) if done else 0.0,
        "first_delivery_after_s": round(got["first_mail"] - t0, 3) if got["first_mail"] else None,
    }
    print(
        f"[{a.label}] {accepted}/{a.messages} msgs of {a.size} B: ingress {res['ingress_msgs_per_s']} msgs/s "
        f"({res['ingress_s']} s), end to end {res['e2e_msgs_per_s']} msgs/s ({res['e2e_s']} s); "
        f"sink got {final['count']} over {final['connections']} connections; errors {len(errors)}"
    )
    if errors:
        print(f"[{a.label}] first distinct errors: {sorted(set(errors))[:5]}", file=sys.stderr)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=2)
            f.write("\n")
    ok = done and not errors and final["count"] == accepted
    return 0 if ok else 1


def summary(files):
    runs = [json.load(open(f)) for f in files]
    print(f"{'run':<22} {'size':>7} {'msgs':>5} {'ingress/s':>10} {'e2e msgs/s':>11} {'e2e s':>7} {'sink':>5}")
    for r in runs:
        print(
            f"{r['label']:<22} {r['size']:>7} {r['accepted']:>5} {r['ingress_msgs_per_s']:>10} "
            f"{r['e2e_msgs_per_s']:>11} {r['e2e_s']:>7} {r['delivered']:>5}"
        )
    print()
    for size in sorted({r["size"] for r in runs}):
        postfix = [r for r in runs if r["size"] == size and r["system"] == "postfix"]
        for s in (r for r in runs if r["size"] == size and r["system"] == "sealgate"):
            if postfix and postfix[0]["e2e_msgs_per_s"]:
                ratio = s["e2e_msgs_per_s"] / postfix[0]["e2e_msgs_per_s"]
                print(
                    f"{size} B: Sealgate ({s['backend']}) {s['e2e_msgs_per_s']} msgs/s vs Postfix "
                    f"{postfix[0]['e2e_msgs_per_s']} msgs/s: ratio {ratio:.2f}"
                )


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    pp = sub.add_parser("peers")
    pp.add_argument("--ip", default="127.0.0.20")
    pp.add_argument("--domain", default="bench.test")
    pl = sub.add_parser("load")
    pl.add_argument("--port", type=int, required=True, help="the relay's SMTP port on 127.0.0.1")
    pl.add_argument("--ctl", type=int, required=True, help="the peers' control port")
    pl.add_argument("--messages", type=int, default=2000)
    pl.add_argument("--connections", type=int, default=20)
    pl.add_argument("--size", type=int, default=2048)
    pl.add_argument("--domain", default="bench.test")
    pl.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for the sink")
    pl.add_argument("--system", default="sealgate", choices=["sealgate", "postfix"])
    pl.add_argument("--backend", default="")
    pl.add_argument("--label", default="")
    pl.add_argument("--json")
    ps = sub.add_parser("summary")
    ps.add_argument("files", nargs="+")
    a = p.parse_args()
    if a.cmd == "peers":
        try:
            asyncio.run(peers(a))
        except KeyboardInterrupt:
            pass
        return 0
    if a.cmd == "load":
        return load(a)
    summary(a.files)
    return 0


if __name__ == "__main__":
    sys.exit(main())
