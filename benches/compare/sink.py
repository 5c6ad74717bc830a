#!/usr/bin/env python3
"""Where the streamed upload of compare.sh ends: an HTTP/1.1 server that reads a
request body to its end (Content-Length or chunked), throws it away and answers
200 with the byte count. nginx (the benchmark's upstream) forwards /upload here
unbuffered, since nginx itself can only discard or spool a body, and a body
answered before it is read would not stream through the proxies at all.

    python3 sink.py PORT          (listens on 127.0.0.1 only)
"""
import socket
import socketserver
import sys

CHUNK = 1 << 20


class Handler(socketserver.StreamRequestHandler):
    rbufsize = CHUNK

    def handle(self):
        f = self.rfile
        while True:
            line = f.readline(65536)
            if not line:
                return
            headers = {}
            while True:
                h = f.readline(65536)
                if h in (b"\r\n", b"\n", b""):
                    break
                k, _, v = h.decode("latin-1").partition(":")
                headers[k.strip().lower()] = v.strip()
            n = 0
            if "chunked" in headers.get("transfer-encoding", "").lower():
                while True:
                    size = int(f.readline(1024).split(b";")[0], 16)
                    if size == 0:
                        while f.readline(65536) not in (b"\r\n", b"\n", b""):
                            pass  # trailers
                        break
                    while size:
                        got = len(f.read(min(size, CHUNK)) or b"")
                        if not got:
                            return
                        n += got
                        size -= got
                    f.readline(1024)  # the CRLF after the chunk
            else:
                left = int(headers.get("content-length", "0"))
                while left:
                    got = len(f.read(min(left, CHUNK)) or b"")
                    if not got:
                        return
                    n += got
                    left -= got
            body = b"%d\n" % n
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                             b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
            self.wfile.flush()


class Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True
    address_family = socket.AF_INET


if __name__ == "__main__":
    Server(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
