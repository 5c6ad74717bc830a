#!/usr/bin/env python3
"""A stand-in model gateway for scripts/render-dashboard.sh (not for production).

    fake_gateway.py --cert leaf.pem --key leaf.key --port P [--port Q ...] [--stall-port S]

Serves HTTPS on every --port: a POST with a JSON body answers as a streamed (chunked,
server-sent events) chat completion after a delay that depends on the body's "model", so
clawveil's per-model latency histograms have something to show. On the first port, paths
containing "flaky" answer 503 a third of the time (clawveil's fallback then retries them).
--stall-port accepts TCP connections and never answers, so a target pointed at it times
out. Standard library only; stops on SIGTERM.
"""

import argparse
import json
import random
import socket
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# (time to first byte, time to the end) ranges in seconds, per model
DELAYS = {"qwen-max": ((0.2, 0.6), (0.4, 1.6)), "gpt-4o": ((0.05, 0.25), (0.1, 0.7))}
OTHER = ((0.1, 0.4), (0.3, 1.0))


def handler(primary):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            try:
                model = json.loads(body).get("model", "")
            except ValueError:
                model = ""
            if primary and "flaky" in self.path and random.random() < 1 / 3:
                self.send_response(503)
                self.send_header("content-length", "0")
                self.end_headers()
                return
            (f0, f1), (e0, e1) = DELAYS.get(model, OTHER)
            first, end = random.uniform(f0, f1), random.uniform(e0, e1)
            time.sleep(first)
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("transfer-encoding", "chunked")
            self.end_headers()
            for i in range(3):
                chunk = f'data: {{"model":"{model}","delta":"token {i}"}}\n\n'.encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.flush()
                time.sleep(max(end - first, 0) / 3)
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

    return Handler


def stall(port):
    held = []
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(128)
    while True:
        c, _ = s.accept()
        held.append(c)  # never answered; closed when the process exits


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--port", type=int, action="append", required=True)
    ap.add_argument("--stall-port", type=int)
    a = ap.parse_args()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(a.cert, a.key)
    servers = []
    for i, port in enumerate(a.port):
        srv = ThreadingHTTPServer(("127.0.0.1", port), handler(primary=i == 0))
        srv.daemon_threads = True
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
        servers.append(srv)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
    if a.stall_port:
        threading.Thread(target=stall, args=(a.stall_port,), daemon=True).start()
    print("fake gateway on", a.port, "stall on", a.stall_port, flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
