"""An SMTP peer whose STARTTLS speaks only TLS 1.1 (OpenSSL through Python's ssl module).

Usage: tls11_peer.py HOST PORT CHAIN_PEM KEY_PEM LOG LIFETIME_SECONDS

It greets, offers STARTTLS in its EHLO reply, and on STARTTLS negotiates TLS 1.1 and nothing
else. Every command it reads (before or after the handshake) is appended to LOG, one per line,
and so is the outcome of each handshake ("TLS ok TLSv1.1" or "TLS failed: ..."). It prints
"ready" once listening and exits after LIFETIME_SECONDS, so a test never leaves it behind.
"""

import socket
import ssl
import sys
import threading
import time
import warnings

HOST, PORT, CHAIN, KEY, LOG = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
LIFETIME = float(sys.argv[6])

warnings.simplefilter("ignore", DeprecationWarning)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.minimum_version = ssl.TLSVersion.TLSv1_1
context.maximum_version = ssl.TLSVersion.TLSv1_1
# TLS 1.1 needs the SHA-1 based suites that OpenSSL 3 keeps only at security level 0.
context.set_ciphers("DEFAULT:@SECLEVEL=0")
context.load_cert_chain(CHAIN, KEY)
lock = threading.Lock()


def log(line):
    with lock, open(LOG, "a", encoding="utf-8") as f:
        f.write(line + "\n")


def serve(conn):
    conn.settimeout(10)
    stream = conn
    reader = stream.makefile("rb")

    def say(text):
        stream.sendall(text.encode() + b"\r\n")

    say("220 tls11.peer ESMTP")
    while True:
        line = reader.readline()
        if not line:
            return
        command = line.decode("utf-8", "replace").rstrip("\r\n")
        log(command)
        verb = command[:4].upper()
        if verb in ("EHLO", "HELO"):
            if stream is conn:
                say("250-tls11.peer\r\n250-PIPELINING\r\n250 STARTTLS")
            else:
                say("250-tls11.peer\r\n250 PIPELINING")
        elif verb == "STAR":
            say("220 go ahead")
            try:
                stream = context.wrap_socket(conn, server_side=True)
                log("TLS ok " + str(stream.version()))
            except (ssl.SSLError, OSError) as e:
                log("TLS failed: " + str(e))
                return
            reader = stream.makefile("rb")
        elif verb == "QUIT":
            say("221 bye")
            return
        elif verb == "DATA":
            say("354 go on")
            while reader.readline() not in (b".\r\n", b""):
                pass
            say("250 accepted")
        else:
            say("250 ok")


def main():
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((HOST, PORT))
    listener.listen(16)
    listener.settimeout(0.5)
    print("ready", flush=True)
    deadline = time.monotonic() + LIFETIME
    while time.monotonic() < deadline:
        try:
            conn, _ = listener.accept()
        except socket.timeout:
            continue
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


main()
