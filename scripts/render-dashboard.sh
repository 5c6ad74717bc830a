#!/usr/bin/env bash
# Renders docs/dashboard.png, the dashboard preview in the README: clawveil in front of
# the stand-in bot (examples/echo-bot.rs) and a stand-in model gateway, a real Prometheus
# scraping it every second, about 100 s of mixed traffic from curl, then the main panels of
# examples/grafana/clawveil.json queried from that Prometheus and plotted with matplotlib.
#
#   bash scripts/render-dashboard.sh              # release build; DURATION=100 seconds of traffic
#   PROFILE=debug DURATION=60 bash scripts/render-dashboard.sh
#
# Needs curl, openssl, prometheus (apt-get install prometheus) and python3 with matplotlib
# (apt-get install python3-matplotlib). Everything listens on free loopback ports and is
# stopped on exit; the temp dir is removed.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
DURATION=${DURATION:-100}
PROFILE=${PROFILE:-release}
OUT=${OUT:-$root/docs/dashboard.png}

for c in curl openssl prometheus; do
  command -v "$c" >/dev/null || { echo "missing $c (apt-get install ${c/openssl/openssl})" >&2; exit 1; }
done
python=
for p in python3 /usr/bin/python3; do
  if "$p" -c 'import matplotlib' 2>/dev/null; then python=$p; break; fi
done
[ -n "$python" ] || { echo "python3 with matplotlib needed: apt-get install python3-matplotlib" >&2; exit 1; }

if [ "$PROFILE" = release ]; then cargo build -q --release -p clawveil --bin clawveil --example echo-bot; else cargo build -q -p clawveil --bin clawveil --example echo-bot; fi
target_dir=$(cargo metadata --format-version 1 --no-deps | "$python" -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
bin=$target_dir/$PROFILE/clawveil
echo_bot=$target_dir/$PROFILE/examples/echo-bot

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { "$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
https=$(free_port) http=$(free_port) metrics=$(free_port) bot=$(free_port) egress=$(free_port)
gw=$(free_port) gw_backup=$(free_port) stall=$(free_port) prom=$(free_port)
wait_port() { for _ in $(seq 300); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "nothing listens on $1" >&2; return 1; }

# A CA and a leaf for 127.0.0.1: the stand-in model gateway's certificate, which clawveil
# verifies (targets are HTTPS only, never unverified).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=render-ca \
  -keyout "$work/ca.key" -out "$work/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=127.0.0.1 \
  -keyout "$work/gw.key" -out "$work/gw.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >"$work/ext"
openssl x509 -req -in "$work/gw.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" -CAcreateserial -days 2 \
  -extfile "$work/ext" -out "$work/gw.pem" 2>/dev/null

cat >"$work/proxy.toml" <<EOF
[listen]
https        = "127.0.0.1:$https"
http         = "127.0.0.1:$http"
metrics      = "127.0.0.1:$metrics"
server_names = ["localhost", "127.0.0.1"]

[upstream]
url              = "http://127.0.0.1:$bot"
connect_timeout  = "500ms"
response_timeout = "5s"

[tls]
mode  = "self-signed"
cert  = "$work/selfsigned.pem"
key   = "$work/selfsigned.key"
names = ["localhost", "127.0.0.1"]

[log]
format = "json"
level  = "warn"

[metrics]
token = "\${file:$work/metrics_token}"

[[route]]
name         = "dingtalk"
path_prefix  = "/dingtalk/"
verify       = "dingtalk-robot"
app_secrets  = ["render-dashboard-app-secret"]

[[route]]
name        = "api"
path_prefix = "/api/"

[[route]]
name        = "ui"
path_prefix = "/ui/"

[[route]]
name        = "default"
path_prefix = "/"

[egress]
listen      = "127.0.0.1:$egress"
allow       = ["localhost"]
ports       = [$bot]
allow_cidrs = ["127.0.0.1/32"]

[[egress.target]]
name             = "models"
url              = "https://127.0.0.1:$gw"
fallback         = "https://127.0.0.1:$gw_backup"
fallback_on      = ["connect", "timeout", "5xx"]
models           = ["qwen-max", "gpt-4o"]
ca_roots         = "$work/ca.pem"

[[egress.target]]
name             = "models-eu"
url              = "https://127.0.0.1:$stall"
fallback         = "https://127.0.0.1:$gw_backup"
fallback_on      = ["connect", "timeout", "5xx"]
connect_timeout  = "300ms"
models           = ["qwen-max", "gpt-4o"]
ca_roots         = "$work/ca.pem"
EOF
openssl rand -hex 32 >"$work/metrics_token"
chmod 600 "$work/metrics_token"

cat >"$work/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: clawveil
    authorization:
      type: Bearer
      credentials_file: $work/metrics_token
    static_configs:
      - targets: ["127.0.0.1:$metrics"]
EOF

start_bot() { ECHO_BOT_ADDR=127.0.0.1:$bot "$echo_bot" >>"$work/echo-bot.log" 2>&1 & bot_pid=$!; pids+=("$bot_pid"); wait_port "$bot"; }
start_bot
"$python" examples/grafana/fake_gateway.py --cert "$work/gw.pem" --key "$work/gw.key" \
  --port "$gw" --port "$gw_backup" --stall-port "$stall" >"$work/gateway.log" 2>&1 &
pids+=($!)
(cd "$work" && exec "$bin" run --config "$work/proxy.toml") >"$work/clawveil.log" 2>&1 &
pids+=($!)
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/prom" \
  --web.listen-address="127.0.0.1:$prom" --log.level=warn >"$work/prometheus.log" 2>&1 &
pids+=($!)
for p in "$gw" "$gw_backup" "$stall" "$https" "$metrics" "$egress" "$prom"; do wait_port "$p"; done

c() { curl -s -o /dev/null --max-time 10 "$@" || true; }
inbound() { c -k --resolve "localhost:$https:127.0.0.1" "$@"; }
model() { # model TARGET PATH MODEL
  c -X POST "http://127.0.0.1:$egress/$1/$2" -H 'content-type: application/json' \
    -d "{\"model\":\"$3\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}"
}

sleep 3 # a few scrapes of the idle proxy first
start=$(date +%s)
echo "generating traffic for ${DURATION}s (clawveil $PROFILE build, prometheus on 127.0.0.1:$prom)"
while :; do
  t=$(( $(date +%s) - start ))
  [ "$t" -ge "$DURATION" ] && break
  # the bot goes away for a while: 502s and upstream connect errors
  if [ "$t" -ge $((DURATION * 35 / 100)) ] && [ "$t" -lt $((DURATION * 50 / 100)) ]; then
    if [ -n "${bot_pid:-}" ]; then kill "$bot_pid"; wait "$bot_pid" 2>/dev/null || true; bot_pid=; fi
  elif [ -z "${bot_pid:-}" ]; then start_bot; fi
  for _ in 1 2 3; do inbound "https://localhost:$https/api/v1/items" & done
  inbound "https://localhost:$https/ui/index.html" &
  inbound "https://localhost:$https/" &
  [ $((RANDOM % 2)) = 0 ] && inbound "https://localhost:$https/sse" &
  # DingTalk callbacks without a valid signature: 401, signature_invalid
  inbound -X POST "https://localhost:$https/dingtalk/robot" -H 'timestamp: 1' -H 'sign: forged' -d '{}' &
  model models v1/chat/completions qwen-max &
  model models v1/chat/completions gpt-4o &
  [ $((RANDOM % 3)) = 0 ] && model models v1/chat/completions llama-3 &
  # a flaky route of the gateway: 503s retried on the fallback
  [ $((RANDOM % 2)) = 0 ] && model models v1/flaky/completions gpt-4o &
  # a target that stops answering during the last third: timeouts, then the fallback
  if [ "$t" -ge $((DURATION * 65 / 100)) ] && [ "$t" -lt $((DURATION * 85 / 100)) ]; then
    model models-eu v1/chat/completions qwen-max &
  fi
  # refusals: plaintext, a foreign Host, TRACE, plain HTTP on the TLS port
  [ $((RANDOM % 2)) = 0 ] && c "http://127.0.0.1:$http/" &
  [ $((RANDOM % 3)) = 0 ] && inbound -H 'Host: evil.example' "https://localhost:$https/api/x" &
  [ $((RANDOM % 4)) = 0 ] && inbound -X TRACE "https://localhost:$https/" &
  [ $((RANDOM % 4)) = 0 ] && c "http://127.0.0.1:$https/" &
  # the bot's way out: a tunnel to an allowed host, and one to a refused destination
  [ $((RANDOM % 2)) = 0 ] && c -p -x "http://127.0.0.1:$egress" "http://localhost:$bot/via-tunnel" &
  [ $((RANDOM % 3)) = 0 ] && c -x "http://127.0.0.1:$egress" "https://example.com/" &
  sleep 0.5
done
wait_jobs() { for j in $(jobs -p); do case " ${pids[*]} " in *" $j "*) ;; *) wait "$j" 2>/dev/null || true ;; esac; done; }
wait_jobs
end=$(date +%s)
sleep 3 # the last scrapes

curl -s -H "Authorization: Bearer $(cat "$work/metrics_token")" "http://127.0.0.1:$metrics/metrics" >"$work/final-metrics.txt"
echo "final clawveil series that moved (histogram buckets left out):"
grep -E '^clawveil_' "$work/final-metrics.txt" | grep -v '_bucket{' | grep -Ev ' 0$' || true
echo "families without a non-zero sample:"
grep -E '^# TYPE clawveil_' "$work/final-metrics.txt" | awk '{print $3}' | while read -r f; do
  grep -E "^${f}(_count)?(\{| )" "$work/final-metrics.txt" | grep -qEv ' 0$' || echo "  $f"
done
"$python" examples/grafana/render.py --prometheus "http://127.0.0.1:$prom" --start "$start" --end "$end" --out "$OUT"
