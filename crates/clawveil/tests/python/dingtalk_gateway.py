#!/usr/bin/env python3
"""A fake DingTalk Stream gateway, offline, for the egress tests.

    python3 dingtalk_gateway.py --cert leaf.pem --key leaf.key \
        --client-id ID --client-secret SECRET --text "what the user wrote"

Plays both halves of what `api.dingtalk.com` and `wss-open-connection.dingtalk.com` do for
the Stream SDK:

1. HTTPS `POST /v1.0/gateway/connections/open` with the app's clientId/clientSecret and
   subscriptions; answers {"endpoint": "wss://localhost:<wss port>/connect", "ticket": T}.
2. WSS `/connect?ticket=T`: sends one robot-message frame (type CALLBACK, topic
   /v1.0/im/bot/messages/get, `data` a JSON string, as the real gateway does) and waits
   for the SDK's ACK frame (code, headers.messageId, message, data).

Both listen on 127.0.0.1, ports picked by the kernel. Reports on stdout, one JSON object a
line:

    {"event": "ready", "https_port": P, "wss_port": W}
    {"event": "open", "credentials_ok": bool, "subscriptions": [...], "user_agent": "..."}
    {"event": "ws_accept"}                        each TCP connection to the WSS port
    {"event": "ws_connect", "path": "/connect", "ticket_ok": bool}
    {"event": "frame_sent", "message_id": "..."}
    {"event": "ack", "ack": {...}}                the SDK's ACK, parsed
    {"event": "ws_closed", "code": N}

Runs until killed.
"""

import argparse
import asyncio
import json
import secrets
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection, serve

OPEN_PATH = "/v1.0/gateway/connections/open"
_print_lock = threading.Lock()


def emit(**fields):
    with _print_lock:
        print(json.dumps(fields), flush=True)


def robot_frame(text, message_id):
    """A Stream-mode robot message as the gateway sends it: the callback body is a JSON
    string under `data`."""
    now = int(time.time() * 1000)
    data = {
        "conversationId": "cidFakeGatewayConv01+/Ab1Cd==",
        "chatbotCorpId": "dingfakegateway0corp01",
        "chatbotUserId": "$:LWCP_v1:$FakeGatewayBot01+/Ef2Gh==",
        "msgId": "msgFakeGateway0001==",
        "senderNick": "Fake Gateway User",
        "isAdmin": False,
        "senderStaffId": "fakestaff0001",
        "sessionWebhookExpiredTime": now + 3_600_000,
        "createAt": now,
        "senderCorpId": "dingfakegateway0corp02",
        "conversationType": "1",
        "senderId": "$:LWCP_v1:$FakeGatewaySender01+/Ij==",
        "sessionWebhook": "https://oapi.dingtalk.com/robot/sendBySession?session=fakegatewaysession01",
        "text": {"content": text},
        "robotCode": "dingfakegatewaybot01",
        "msgtype": "text",
    }
    return {
        "specVersion": "1.0",
        "type": "CALLBACK",
        "headers": {
            "appId": "dingfakegatewayapp01",
            "connectionId": "conn-fake-gateway-01",
            "contentType": "application/json",
            "messageId": message_id,
            "time": str(now),
            "topic": "/v1.0/im/bot/messages/get",
        },
        "data": json.dumps(data, ensure_ascii=False),
    }


class Gateway:
    def __init__(self, args):
        self.args = args
        self.ticket = "ticket-" + secrets.token_hex(12)
        self.wss_port = None
        self.message_id = "frame-fake-gateway-" + secrets.token_hex(4)

    def open_handler(self):
        gw = self

        class OpenHandler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path != OPEN_PATH:
                    emit(event="unexpected_request", method="POST", path=self.path)
                    return self.reply(404, {"code": "NotFound"})
                try:
                    req = json.loads(body)
                except ValueError:
                    req = {}
                ok = (
                    req.get("clientId") == gw.args.client_id
                    and req.get("clientSecret") == gw.args.client_secret
                )
                emit(
                    event="open",
                    credentials_ok=ok,
                    subscriptions=req.get("subscriptions"),
                    user_agent=self.headers.get("User-Agent"),
                )
                if not ok:
                    return self.reply(401, {"code": "InvalidAuthentication"})
                self.reply(
                    200,
                    {
                        "endpoint": f"wss://localhost:{gw.wss_port}/connect",
                        "ticket": gw.ticket,
                    },
                )

            def do_GET(self):
                emit(event="unexpected_request", method="GET", path=self.path)
                self.reply(404, {"code": "NotFound"})

            def reply(self, status, obj):
                out = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args):
                pass

        return OpenHandler

    async def stream(self, ws):
        url = urlsplit(ws.request.path)
        ticket_ok = url.path == "/connect" and parse_qs(url.query).get("ticket") == [self.ticket]
        emit(event="ws_connect", path=url.path, ticket_ok=ticket_ok)
        if not ticket_ok:
            await ws.close(4001, "bad ticket")
            return
        await ws.send(json.dumps(robot_frame(self.args.text, self.message_id), ensure_ascii=False))
        emit(event="frame_sent", message_id=self.message_id)
        try:
            raw = await asyncio.wait_for(ws.recv(), 20)
            emit(event="ack", ack=json.loads(raw))
        except Exception as e:  # noqa: BLE001 - reported, the test decides
            emit(event="no_ack", error=type(e).__name__)
        await ws.wait_closed()
        emit(event="ws_closed", code=ws.close_code)


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--client-secret", required=True)
    parser.add_argument("--text", required=True)
    args = parser.parse_args()
    gw = Gateway(args)

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)

    class Counting(ServerConnection):
        def __init__(self, *a, **kw):
            emit(event="ws_accept")
            super().__init__(*a, **kw)

    async with serve(gw.stream, "127.0.0.1", 0, ssl=ctx, create_connection=Counting) as wss:
        gw.wss_port = wss.sockets[0].getsockname()[1]
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), gw.open_handler())
        httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        emit(event="ready", https_port=httpd.server_address[1], wss_port=gw.wss_port)
        await wss.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
