#!/usr/bin/env bash
# What logging redacted bodies costs: two clawveil processes, one with log.bodies = "off"
# and one with "redacted", side by side in alternating rounds against the same nginx
# upstream, driven by wrk with a DingTalk-callback-shaped JSON POST over HTTPS.
#
#   bash benches/log-bodies.sh [CLAWVEIL_BIN] [ROUNDS] [SECONDS]
#
# Prints one line per round and a final ratio (redacted / off). Loopback only.
set -euo pipefail
BIN=${1:-} ROUNDS=${2:-3} DUR=${3:-5}
cd "$(dirname "$0")/.."
for t in nginx wrk; do command -v $t >/dev/null || apt-get install -y -qq nginx wrk >/dev/null; done
if [ -z "$BIN" ]; then cargo build --release -q --bin clawveil; BIN=$PWD/target/release/clawveil; fi
W=$(mktemp -d -t clawveil-bodies.XXXXXX); PIDS=()
trap 'for p in "${PIDS[@]}"; do kill $p 2>/dev/null || true; done; sleep 0.3; rm -rf $W' EXIT
port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
waitp() { for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.1; done; return 1; }
U=$(port) OFF=$(port) RED=$(port)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -subj /CN=localhost \
  -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" -keyout $W/key.pem -out $W/cert.pem 2>/dev/null; chmod 600 $W/key.pem
cat >$W/nginx.conf <<EOT
worker_processes 1; pid $W/nginx.pid; error_log $W/error.log; daemon off;
events { worker_connections 4096; }
http {
  access_log off; keepalive_requests 1000000; client_body_temp_path $W; proxy_temp_path $W;
  fastcgi_temp_path $W; uwsgi_temp_path $W; scgi_temp_path $W;
  server { listen 127.0.0.1:$U; location / { default_type application/json;
    return 200 '{"msgtype":"text","text":{"content":"reply to 13912345678 at li.lei@example.com"}}'; } }
}
EOT
nginx -c $W/nginx.conf & PIDS+=($!)
for mode in off redacted; do
  p=$OFF; [ $mode = redacted ] && p=$RED
  cat >$W/$mode.toml <<EOT
[listen]
https = "127.0.0.1:$p"
metrics = ""
[upstream]
url = "http://127.0.0.1:$U"
[tls]
mode = "files"
cert = "$W/cert.pem"
key = "$W/key.pem"
[log]
bodies = "$mode"
EOT
  "$BIN" run --config $W/$mode.toml >$W/$mode.log 2>&1 & PIDS+=($!)
done
waitp $U; waitp $OFF; waitp $RED
cat >$W/post.lua <<'EOT'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"msgtype":"text","text":{"content":"please call 13912345678 or mail li.lei@example.com about card 6222021234567890128"},"msgId":"msgABC123","createAt":1732450000000,"conversationType":"1","conversationId":"cidPlanted123456==","senderId":"$:LWCP_v1:$abcdef","senderNick":"Li Lei","senderCorpId":"ding1234567890","senderStaffId":"manager4220","chatbotUserId":"$:LWCP_v1:$bot","sessionWebhook":"https://oapi.dingtalk.com/robot/sendBySession?session=abcdef0123456789","sessionWebhookExpiredTime":1732457200000,"isAdmin":false}'
EOT
rate() { wrk -t1 -c32 -d${DUR}s -s $W/post.lua "https://127.0.0.1:$1/dingtalk/" 2>/dev/null | awk '/Requests\/sec/ {print $2}'; }
# the order alternates (off first, then redacted first) so that neither side
# always runs on the warmer or the noisier half of a round
: >$W/rounds
for r in $(seq 1 "$ROUNDS"); do
  if [ $((r % 2)) = 1 ]; then a=$(rate $OFF); b=$(rate $RED); else b=$(rate $RED); a=$(rate $OFF); fi
  echo "round $r: bodies=off $a req/s, bodies=redacted $b req/s, ratio $(python3 -c "print(f'{$b/$a:.3f}')")"
  echo "$a $b" >>$W/rounds
done
grep -q '"request_json":{' $W/redacted.log || { echo "redacted bodies were not logged"; exit 1; }
python3 - "$W/rounds" "$DUR" <<'EOP'
import statistics, sys
rows = [tuple(map(float, l.split())) for l in open(sys.argv[1]) if l.strip()]
off = statistics.mean(a for a, _ in rows); red = statistics.mean(b for _, b in rows)
per = sorted(b / a for a, b in rows)
# a 95% interval for the mean of the per-round ratios (rounds are independent pairs)
half = 1.96 * statistics.stdev(per) / len(per) ** 0.5 if len(per) > 1 else float("nan")
print(f"ratio redacted/off: {red/off:.3f} (means {off:.0f} vs {red:.0f} req/s); "
      f"per-round ratios: mean {statistics.mean(per):.3f} ± {half:.3f} (95%), "
      f"median {statistics.median(per):.3f}, range {per[0]:.3f}-{per[-1]:.3f}; "
      f"{len(rows)} rounds of {sys.argv[2]}s")
EOP
