#!/usr/bin/env python3
"""The `websockets` client through an HTTP proxy (CONNECT), as a bot's WebSocket would go.

    python3 ws_client.py --url wss://localhost:W/path --proxy http://127.0.0.1:E \
        --ca ca.pem --text "hello" --binary-size 262144

Connects with `websockets.asyncio.client.connect(url, proxy=..., ssl=...)` (websockets >= 15
speaks HTTP CONNECT to `proxy`), trusting only `--ca`; sends the text message and then a
random binary message of `--binary-size` bytes, and checks each comes back unchanged.
Prints one JSON object on stdout and exits 0 when everything was echoed, else prints
{"ok": false, "error": ..., "status": <proxy status if the proxy refused>} and exits 1.
"""

import argparse
import asyncio
import hashlib
import inspect
import json
import os
import ssl
import sys

import websockets
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidProxyStatus


def emit(**fields):
    print(json.dumps(fields), flush=True)


def version_tuple(v):
    return tuple(int(p) for p in v.split(".")[:2] if p.isdigit())


async def run(args):
    ctx = ssl.create_default_context(cafile=args.ca)
    async with connect(
        args.url,
        proxy=args.proxy,
        ssl=ctx,
        open_timeout=15,
        max_size=1 << 20,
    ) as ws:
        await ws.send(args.text)
        text = await asyncio.wait_for(ws.recv(), 15)
        blob = os.urandom(args.binary_size)
        await ws.send(blob)
        back = await asyncio.wait_for(ws.recv(), 15)
        return {
            "text_ok": text == args.text,
            "binary_ok": isinstance(back, bytes) and back == blob,
            "binary_len": len(back),
            "binary_sha256": hashlib.sha256(back).hexdigest(),
        }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--proxy", required=True)
    parser.add_argument("--ca", required=True)
    parser.add_argument("--text", required=True)
    parser.add_argument("--binary-size", type=int, default=256 * 1024)
    args = parser.parse_args()

    version = websockets.version.version
    # HTTP proxies (CONNECT) came in websockets 15; older versions would ignore nothing and
    # fail on the unknown keyword, so say so plainly.
    if version_tuple(version) < (15, 0) or "proxy" not in inspect.signature(connect).parameters:
        emit(ok=False, error="websockets_without_proxy_support", version=version)
        sys.exit(2)
    try:
        result = asyncio.run(run(args))
    except InvalidProxyStatus as e:
        emit(
            ok=False,
            error="InvalidProxyStatus",
            status=e.response.status_code,
            version=version,
        )
        sys.exit(1)
    except Exception as e:  # noqa: BLE001 - the test reads the class and message
        emit(ok=False, error=type(e).__name__, detail=str(e), version=version)
        sys.exit(1)
    ok = result["text_ok"] and result["binary_ok"]
    emit(ok=ok, version=version, **result)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
