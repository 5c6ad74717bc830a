#!/usr/bin/env python3
"""The official DingTalk Stream SDK (PyPI `dingtalk-stream`) as a bot runs it, pointed at a
fake gateway, for the egress tests.

    HTTPS_PROXY=http://127.0.0.1:E REQUESTS_CA_BUNDLE=ca.pem SSL_CERT_FILE=ca.pem \
        python3 dingtalk_bot.py --gateway https://localhost:P --client-id ID \
        --client-secret SECRET --expect acked|refused

Nothing here routes traffic: the SDK's own `requests.post` (open the connection) and
`websockets.connect` (the stream) find the proxy in the environment, as a bot's would. The
only change to the SDK is its open-connection URL (`DingTalkStreamClient.OPEN_CONNECTION_API`,
a class attribute), set to the fake gateway; the installed package is not edited.

A ChatbotHandler subclass records the robot message and answers OK, so the SDK sends its
ACK frame. `route_message` is wrapped only to learn when the SDK has sent that ACK.

Reports on stdout, one JSON object a line:

    {"event": "sdk", "version": "..."}
    {"event": "message", "message_id": ..., "text": ..., "topic": ...}   (handler ran)
    {"event": "acked"}                            the SDK sent its ACK for the frame
    {"event": "open_failed", "error": "..."}      the SDK's own log line for a failed open
    {"event": "done", "messages": N}

`--expect acked` stops the SDK's loop (cancelling start(), which closes the WebSocket)
once the ACK is out; `--expect refused` stops it at the first failed open. Either way the
script exits 0 when what was expected happened, 1 otherwise (or after --timeout seconds).
"""

import argparse
import asyncio
import json
import logging
import sys

import dingtalk_stream
from dingtalk_stream import AckMessage, ChatbotHandler, ChatbotMessage, Credential, DingTalkStreamClient
from dingtalk_stream.version import VERSION_STRING


def emit(**fields):
    print(json.dumps(fields, ensure_ascii=False), flush=True)


class Recorder(logging.Handler):
    """Watches the SDK's logger for its 'open connection failed' line."""

    def __init__(self, failed: asyncio.Event, loop):
        super().__init__()
        self.failed = failed
        self.loop = loop

    def emit(self, record):
        try:
            text = record.getMessage()
        except Exception:  # noqa: BLE001 - the SDK passes stray arguments to some log calls
            text = str(record.msg)
        print(f"sdk log: {record.levelname} {text}", file=sys.stderr, flush=True)
        if text.startswith("open connection failed, error="):
            emit(event="open_failed", error=text)
            self.loop.call_soon_threadsafe(self.failed.set)


class Bot(ChatbotHandler):
    def __init__(self, received):
        super().__init__()
        self.received = received

    async def process(self, callback):
        msg = ChatbotMessage.from_dict(callback.data)
        self.received.append(msg)
        emit(
            event="message",
            topic=callback.headers.topic,
            frame_message_id=callback.headers.message_id,
            message_id=msg.message_id,
            msgtype=msg.message_type,
            text=msg.text.content if msg.text else None,
        )
        return AckMessage.STATUS_OK, "OK"


async def stop(task):
    """Cancels start(). The SDK catches a CancelledError once (inside its loop, after the
    `async with websockets.connect` has closed the WebSocket) and sleeps; cancel again."""
    for _ in range(10):
        if task.done():
            break
        task.cancel()
        await asyncio.wait([task], timeout=2)
    if not task.done():
        raise RuntimeError("the SDK's start() did not stop")
    if not task.cancelled() and task.exception() is not None:
        # dingtalk-stream 0.24 names `websockets.exceptions` in an except clause; with
        # websockets >= 14 that submodule is imported lazily, so an exception before the
        # SDK's first websockets.connect (here: the cancel after a failed open) becomes
        # AttributeError. Reported, not a failure of the test.
        e = task.exception()
        emit(event="sdk_stop_error", error=f"{type(e).__name__}: {e}")


async def main(args):
    loop = asyncio.get_running_loop()
    DingTalkStreamClient.OPEN_CONNECTION_API = args.gateway.rstrip("/") + "/v1.0/gateway/connections/open"
    emit(event="sdk", version=VERSION_STRING, module=dingtalk_stream.__file__)

    acked, failed = asyncio.Event(), asyncio.Event()
    logger = logging.getLogger("clawveil_test.dingtalk_stream")
    logger.setLevel(logging.INFO)
    logger.addHandler(Recorder(failed, loop))
    logger.propagate = False

    class Client(DingTalkStreamClient):
        async def route_message(self, json_message):
            result = await super().route_message(json_message)  # sends the ACK
            emit(event="acked")
            acked.set()
            return result

    received = []
    client = Client(Credential(args.client_id, args.client_secret), logger=logger)
    client.register_callback_handler(ChatbotMessage.TOPIC, Bot(received))
    task = asyncio.create_task(client.start())
    want = acked if args.expect == "acked" else failed
    ok = True
    try:
        await asyncio.wait_for(want.wait(), args.timeout)
    except asyncio.TimeoutError:
        emit(event="timeout", expected=args.expect)
        ok = False
    await stop(task)
    if args.expect == "refused" and received:
        ok = False
    emit(event="done", messages=len(received))
    return ok


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--gateway", required=True)
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--client-secret", required=True)
    parser.add_argument("--expect", choices=["acked", "refused"], required=True)
    parser.add_argument("--timeout", type=float, default=30)
    sys.exit(0 if asyncio.run(main(parser.parse_args())) else 1)
