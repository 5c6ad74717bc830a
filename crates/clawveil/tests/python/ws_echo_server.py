#!/usr/bin/env python3
"""A TLS WebSocket echo server (the `websockets` library's own server) for the egress tests.

    python3 ws_echo_server.py --cert leaf.pem --key leaf.key

Listens on 127.0.0.1 on a port the kernel picks and reports on stdout, one JSON object a
line:

    {"event": "ready", "port": N}          once listening
    {"event": "accept"}                    each TCP connection, before TLS (so a connection
                                           that never gets further still counts)
    {"event": "open", "path": "/..."}      each completed WebSocket handshake
    {"event": "echo", "kind": "text"|"binary", "len": N}   each message echoed back

Runs until killed.
"""

import argparse
import asyncio
import json
import ssl
import sys

from websockets.asyncio.server import ServerConnection, serve


def emit(**fields):
    print(json.dumps(fields), flush=True)


class CountingConnection(ServerConnection):
    """websockets builds one of these per accepted TCP connection, before the TLS handshake."""

    def __init__(self, *args, **kwargs):
        emit(event="accept")
        super().__init__(*args, **kwargs)


async def echo(ws):
    emit(event="open", path=ws.request.path)
    async for message in ws:
        kind = "text" if isinstance(message, str) else "binary"
        emit(event="echo", kind=kind, len=len(message))
        await ws.send(message)


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    args = parser.parse_args()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    async with serve(
        echo,
        "127.0.0.1",
        0,
        ssl=ctx,
        max_size=1 << 20,
        create_connection=CountingConnection,
    ) as server:
        port = server.sockets[0].getsockname()[1]
        emit(event="ready", port=port)
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
