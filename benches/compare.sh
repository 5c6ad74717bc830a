#!/usr/bin/env bash
# clawveil against nginx and Caddy as TLS reverse proxies, and against no proxy at all
# ("direct", plain HTTP to the upstream: the ceiling), on every axis an operator
# compares: throughput (h1, h2, small and large responses, a 16 KiB POST), latency at a
# fixed rate, TLS handshakes, CPU per request, memory at rest, per idle connection and
# during a streamed upload, and what log.bodies = "redacted" costs.
#
#   bash benches/compare.sh            # the full run (about 10 minutes on 2 cores)
#   QUICK=1 bash benches/compare.sh    # 1 round, 2 s per measurement: checks the script
#
# Knobs (environment): ROUNDS (3), DUR seconds per measurement (5), IDLE connections (5000),
# UPLOAD_MIB (1024), RATE req/s for latency (2000), CLAWVEIL_BIN (default: build release),
# RESULTS directory (benches/results), KEEP=1 keeps the work directory (configs, logs).
#
# One upstream (nginx, one worker) serves /1k, /64k, POST /post, and streams /upload to
# a sink (compare/sink.py). Every contender proxies to it from its own loopback port with
# the same self-signed P-256 certificate; measurements alternate between contenders
# and the order rotates every round. Writes RESULTS/<date>-<host>.txt (table, goals,
# per-round values) and RESULTS/<date>.png (compare/plot.py). Loopback only. The goals
# are printed, never enforced: the exit status says only whether the run worked.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
if [ "${QUICK:-0}" = 1 ]; then
  ROUNDS=${ROUNDS:-1} DUR=${DUR:-2} IDLE=${IDLE:-200} UPLOAD_MIB=${UPLOAD_MIB:-64}
else
  ROUNDS=${ROUNDS:-3} DUR=${DUR:-5} IDLE=${IDLE:-5000} UPLOAD_MIB=${UPLOAD_MIB:-1024}
fi
RATE=${RATE:-2000} RESULTS=${RESULTS:-$ROOT/benches/results}
PY=/usr/bin/python3 # Debian's, where python3-matplotlib goes

# ---- what the run needs ------------------------------------------------------------
need=()
for t in nginx:nginx caddy:caddy wrk:wrk h2load:nghttp2-client curl:curl openssl:openssl; do
  command -v "${t%%:*}" >/dev/null || need+=("${t#*:}")
done
[ -x $PY ] && $PY -c 'import matplotlib' 2>/dev/null || need+=(python3-matplotlib)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq "${need[@]}" >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null; }
fi
# (Debian's packages may start their own nginx and Caddy on :80; they are left alone:
# the contenders are separate processes with their own configurations and ports)

# measured on 2 cores: 31 measurements of DUR a round, plus the idle crowds and uploads
per_round=$((31 * DUR + 3 * (IDLE / 1000 + 3) + 3 * (UPLOAD_MIB / 300 + 1) + 3))
total=$((ROUNDS * per_round + 4 * ((DUR > 2 ? 2 : DUR) + 1) + 6))
echo "compare: $ROUNDS round(s) x ${DUR}s per measurement, $IDLE idle connections, ${UPLOAD_MIB} MiB upload, latency at $RATE req/s"
echo "compare: estimated $((total / 60)) min $((total % 60)) s after the build"

if [ -z "${CLAWVEIL_BIN:-}" ]; then
  cargo build --release --locked -q -p clawveil --bin clawveil
  CLAWVEIL_BIN=$ROOT/target/release/clawveil
fi
cargo build --release --locked -q -p clawveil-benches --example rate
LOAD=$ROOT/target/release/examples/rate
ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" -ge $((2 * IDLE + 200)) ] || { echo "open-file limit $(ulimit -n) is too low for IDLE=$IDLE"; exit 1; }

W=$(mktemp -d -t clawveil-compare.XXXXXX)
chmod 755 "$W" # nginx workers run as nobody and read the upstream's files from here
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 0.5
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  if [ -n "${KEEP:-}" ]; then echo "kept $W"; else rm -rf "$W"; fi
}
trap cleanup EXIT
port() { $PY -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
waitp() { for _ in $(seq 1 150); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.1; done; echo "nothing listens on $1"; return 1; }
U=$(port) U2=$(port) SINK=$(port) PN=$(port) PC=$(port) PV=$(port) PR=$(port)

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -subj /CN=localhost \
  -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" -keyout "$W/key.pem" -out "$W/cert.pem" 2>/dev/null
chmod 600 "$W/key.pem"

# ---- the upstream --------------------------------------------------------------------
mkdir -p "$W/www" "$W/tmp-up" "$W/tmp-px"
chown nobody:nogroup "$W/tmp-up" "$W/tmp-px"
openssl rand -hex 512 | tr -d '\n' >"$W/www/1k"
openssl rand -hex 32768 | tr -d '\n' >"$W/www/64k"
temps() { for t in client_body proxy fastcgi uwsgi scgi; do printf '%s_temp_path %s; ' $t "$1"; done; }
cat >"$W/upstream.conf" <<EOT
user nobody nogroup; worker_processes 1; pid $W/upstream.pid; error_log $W/upstream-error.log; daemon off;
events { worker_connections 8192; }
http {
  access_log off; keepalive_requests 1000000; keepalive_timeout 300s; $(temps "$W/tmp-up")
  sendfile on; open_file_cache max=16; default_type text/plain; client_max_body_size 0;
  server {
    listen 127.0.0.1:$U; listen 127.0.0.1:$U2 http2; root $W/www;
    location = /post { default_type application/json; return 200 '{"errcode":0,"errmsg":"ok","reply":"call 13912345678"}'; }
    location = /upload { proxy_pass http://127.0.0.1:$SINK; proxy_http_version 1.1;
      proxy_request_buffering off; proxy_set_header Connection ""; }
  }
}
EOT
nginx -c "$W/upstream.conf" & PIDS+=($!); UPID=$!
$PY "$ROOT/benches/compare/sink.py" "$SINK" & PIDS+=($!)

# ---- the contenders ------------------------------------------------------------------
# nginx as an operator would put it in front: TLS 1.2 and 1.3, h2, a keep-alive pool to
# the upstream, the access log on (nginx's default: one write per request), one worker
# per core. Request bodies are buffered (nginx's default) in a 64 KiB memory buffer: with
# the default 16 KiB buffer the 16 KiB POST goes to a temporary file and nginx manages
# ~1.4k req/s (40 ms stalls), with proxy_request_buffering off about half of what it
# does buffered; /upload streams, like the others do. (nginx 1.22 spells h2
# "listen ... http2"; 1.25 has "http2 on".)
cat >"$W/nginx.conf" <<EOT
user nobody nogroup; worker_processes auto; worker_rlimit_nofile $(ulimit -n);
pid $W/nginx.pid; error_log $W/nginx-error.log; daemon off;
events { worker_connections $(($(ulimit -n) / 2)); }
http {
  access_log $W/nginx-access.log; keepalive_requests 1000000; client_body_buffer_size 64k;
  $(temps "$W/tmp-px")
  ssl_protocols TLSv1.2 TLSv1.3; ssl_certificate $W/cert.pem; ssl_certificate_key $W/key.pem;
  ssl_session_cache shared:SSL:10m;
  upstream up { server 127.0.0.1:$U; keepalive 64; }
  server {
    listen 127.0.0.1:$PN ssl http2;
    location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; }
    location = /upload { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection "";
      client_max_body_size 0; proxy_request_buffering off; }
  }
}
EOT
start_nginx() { nginx -c "$W/nginx.conf" & PIDS+=($!); NPID=$!; }

# Caddy: the same certificate; default_sni because h2load sends no SNI to an IP address
# (Caddy then has no certificate to pick); bind, or Caddy listens on every interface;
# no admin endpoint, no HTTP->HTTPS redirect listener, no HTTP/3.
mkdir -p "$W/caddy-home"
cat >"$W/Caddyfile" <<EOT
{
  admin off
  auto_https disable_redirects
  default_sni localhost
  servers {
    protocols h1 h2
  }
}
https://localhost:$PC, https://127.0.0.1:$PC {
  bind 127.0.0.1
  tls $W/cert.pem $W/key.pem
  log {
    output file $W/caddy-access.log
  }
  reverse_proxy 127.0.0.1:$U
}
EOT
start_caddy() {
  HOME=$W/caddy-home XDG_DATA_HOME=$W/caddy-home XDG_CONFIG_HOME=$W/caddy-home \
    caddy run --adapter caddyfile --config "$W/Caddyfile" >>"$W/caddy.out" 2>&1 & PIDS+=($!); CPID=$!
}

# clawveil: defaults (access log on, JSON lines, here to a file) but for the body limit
# and request timeout, which the 1 GiB upload needs
for mode in off redacted; do
  p=$PV; [ $mode = redacted ] && p=$PR
  cat >"$W/clawveil-$mode.toml" <<EOT
[listen]
https = "127.0.0.1:$p"
metrics = ""
[upstream]
url = "http://127.0.0.1:$U"
[tls]
mode = "files"
cert = "$W/cert.pem"
key = "$W/key.pem"
[limits]
max_body = "4GiB"
request_timeout = "10m"
[log]
bodies = "$mode"
EOT
done
start_clawveil() { # off|redacted
  "$CLAWVEIL_BIN" run --config "$W/clawveil-$1.toml" >>"$W/clawveil-$1.log" 2>&1 & PIDS+=($!)
  if [ $1 = off ]; then VPID=$!; else RPID=$!; fi
}
# the memory axes are measured on freshly started processes, every round: nothing
# left over from the load before (allocator caches, session caches) hides or adds cost
restart() { # contender
  local p
  case $1 in nginx) p=$NPID ;; caddy) p=$CPID ;; clawveil) p=$VPID ;; esac
  kill $p; wait $p 2>/dev/null || true
  case $1 in nginx) start_nginx; waitp $PN ;; caddy) start_caddy; waitp $PC ;; clawveil) start_clawveil off; waitp $PV ;; esac
}
start_nginx; start_caddy; start_clawveil off; start_clawveil redacted
for p in $U $U2 $SINK $PN $PC $PV $PR; do waitp $p || { tail -n5 "$W"/*.log "$W/caddy.out"; exit 1; }; done

CONTENDERS=(nginx caddy clawveil direct)
url() { # contender, path -> URL
  case $1 in
    nginx) echo "https://127.0.0.1:$PN$2" ;; caddy) echo "https://127.0.0.1:$PC$2" ;;
    clawveil) echo "https://127.0.0.1:$PV$2" ;; clawveil-redacted) echo "https://127.0.0.1:$PR$2" ;;
    direct) echo "http://127.0.0.1:$U$2" ;; direct-h2) echo "http://127.0.0.1:$U2$2" ;;
  esac
}
pids() { # the contender's processes (for direct: the upstream's)
  local m
  case $1 in nginx) m=$NPID ;; caddy) m=$CPID ;; clawveil) m=$VPID ;; clawveil-redacted) m=$RPID ;; direct) m=$UPID ;; esac
  echo $m $(pgrep -P $m || true)
}
ticks() { local s=0; for p in $(pids $1); do s=$((s + $(awk '{print $14 + $15}' /proc/$p/stat))); done; echo $s; }
rss_kb() { local s=0; for p in $(pids $1); do s=$((s + $(awk '/^VmRSS/ {print $2}' /proc/$p/status))); done; echo $s; }
HZ=$(getconf CLK_TCK)

# the 16 KiB POST: a DingTalk-callback-shaped JSON body, chat text with a phone number,
# an e-mail address and a bank card number in every kilobyte
$PY - "$W/post.lua" <<'EOP'
import json, sys
text = ("the quarterly numbers are in the shared folder; we agreed to move the review to "
        "thursday afternoon and to send the draft to the whole team before noon. ") * 5
text += "please call 13912345678 or mail li.lei@example.com about card 6222021234567890128. "
body = {"msgtype": "text", "text": {"content": ""}, "msgId": "msgABC123", "createAt": 1732450000000,
        "conversationType": "1", "conversationId": "cidPlanted123456==", "senderNick": "Li Lei",
        "senderStaffId": "manager4220", "isAdmin": False}
pad = 16384 - len(json.dumps(body))
body["text"]["content"] = (text * (pad // len(text) + 1))[:pad]
s = json.dumps(body)
assert len(s) == 16384
open(sys.argv[1], "w").write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                             'wrk.body = [==[' + s + ']==]\n')
EOP

# ---- sanity: every contender answers, h2 is negotiated --------------------------------
for c in nginx caddy clawveil clawveil-redacted direct; do
  n=$(curl -sk --max-time 5 "$(url $c /1k)" | wc -c)
  [ "$n" = 1024 ] || { echo "$c: GET /1k returned $n bytes"; tail -5 "$W"/*.log "$W/caddy.out" 2>/dev/null; exit 1; }
done
for c in nginx caddy clawveil; do
  v=$(curl -sk --http2 --max-time 5 -o /dev/null -w '%{http_version}' "$(url $c /64k)")
  [ "$v" = 2 ] || { echo "$c: h2 not negotiated (HTTP/$v)"; exit 1; }
done

# ---- measurements -------------------------------------------------------------------
RAW=$W/raw; : >"$RAW"
rec() { echo "$ROUND $1 $2 $3" >>"$RAW"; } # contender metric value
wrk_rps() { # contender path [lua] -> "req/s requests bad" (bad: socket errors + non-2xx)
  local out
  out=$(wrk -t1 -c32 -d${DUR}s ${3:+-s $3} "$(url $1 $2)" 2>&1)
  awk '/Requests\/sec/ {r=$2} / requests in / {n=$1}
       /Socket errors/ {gsub(/,/,""); b+=$4+$6+$8+$10} /Non-2xx/ {b+=$NF}
       END {print r+0, n+0, b+0}' <<<"$out"
}
h2_rps() { # contender path -> "req/s bad"
  local c=$1 out; [ $c = direct ] && c=direct-h2
  out=$(h2load -t1 -c16 -m10 -D $DUR "$(url $c $2)" 2>&1)
  # "failed" counts non-2xx/3xx responses too
  awk '/^finished in/ {gsub(/,/,""); r=$4} /^requests:/ {gsub(/,/,""); b=$10+$12}
       END {print r+0, b+0}' <<<"$out"
}
bad() { [ "$2" = 0 ] || { echo "  ! $1: $2 failed requests" >&2; rec "$3" errors "$2"; }; }

h1() { # contender path name [lua]
  local c=$1 t0 t1 r n b
  t0=$(ticks $c); read -r r n b < <(wrk_rps $c $2 ${4:-}); t1=$(ticks $c)
  rec $c $3 "$r"; bad "$c $3" "$b" $c
  [ $3 = h1_1k ] && [ "$n" -gt 0 ] && rec $c cpu_us "$($PY -c "print(($t1-$t0)*1e6/$HZ/$n)")"
  return 0
}
h2() { local r b; read -r r b < <(h2_rps $1 $2); rec $1 $3 "$r"; bad "$1 $3" "$b" $1; }
lat() {
  local out; out=$("$LOAD" latency "$(url $1 /1k)" $RATE 16 $DUR)
  for k in p50_us p99_us p999_us late_p99_us; do rec $1 $k "$(grep -o "$k=[0-9]*" <<<"$out" | cut -d= -f2)"; done
  bad "$1 latency" "$(grep -o 'errors=[0-9]*' <<<"$out" | cut -d= -f2)" $1
}
hs() { # contender full|resume
  local out; out=$("$LOAD" handshakes "$(url $1 /1k)" 16 $DUR $2)
  rec $1 hs_$2 "$(grep -o 'hs_per_s=[0-9]*' <<<"$out" | cut -d= -f2)"
  rec $1 hs_${2}_resumed "$(grep -o 'resumed_frac=[0-9.]*' <<<"$out" | cut -d= -f2)"
  bad "$1 handshakes $2" "$(grep -o 'errors=[0-9]*' <<<"$out" | cut -d= -f2)" $1
}
idle() {
  local c=$1 rest held hp out
  sleep 1; rest=$(rss_kb $c); rec $c rss_rest_mb "$($PY -c "print($rest/1024)")"
  "$LOAD" hold "$(url $c /1k)" $IDLE >"$W/hold.out" 2>&1 & hp=$!
  for _ in $(seq 1 600); do grep -q held= "$W/hold.out" && break; kill -0 $hp 2>/dev/null || break; sleep 0.2; done
  sleep 1; held=$(rss_kb $c); out=$(cat "$W/hold.out")
  kill $hp 2>/dev/null; wait $hp 2>/dev/null || true
  n=$(grep -o 'held=[0-9]*' <<<"$out" | cut -d= -f2)
  if [ "${n:-0}" -gt 0 ]; then rec $c idle_kib "$($PY -c "print(($held-$rest)/$n)")"; fi
  [ "${n:-0}" = "$IDLE" ] || { echo "  ! $c: held ${n:-0} of $IDLE idle connections ($out)" >&2; rec $c errors 1; }
  sleep 1
}
upload() {
  local c=$1 before peak=0 r cp out
  before=$(rss_kb $c)
  head -c $((UPLOAD_MIB << 20)) /dev/zero |
    curl -sk -T - -H 'Content-Type: application/octet-stream' -o "$W/upload.out" \
      -w '%{http_code} %{speed_upload}\n' "$(url $c /upload)" >"$W/upload.w" 2>&1 & cp=$!
  while kill -0 $cp 2>/dev/null; do r=$(rss_kb $c); [ "$r" -gt $peak ] && peak=$r; sleep 0.1; done
  wait $cp || true
  read -r code speed <"$W/upload.w" || true
  if [ "${code:-}" = 200 ] && [ "$(cat "$W/upload.out")" = $((UPLOAD_MIB << 20)) ]; then
    rec $c upload_growth_mb "$($PY -c "print(max(0,$peak-$before)/1024)")"
    rec $c upload_mbs "$($PY -c "print($speed/1e6)")"
  else
    echo "  ! $c: upload failed (HTTP ${code:-?}, sink saw $(cat "$W/upload.out" 2>/dev/null))" >&2; rec $c errors 1
  fi
}

rotate() { local n=${#CONTENDERS[@]} i; for i in $(seq 0 $((n - 1))); do echo "${CONTENDERS[$(((i + $1) % n))]}"; done; }

START=$(date +%s)
echo "warm-up"
ROUND=0
for c in "${CONTENDERS[@]}"; do
  wrk -t1 -c32 -d$((DUR > 2 ? 2 : DUR))s "$(url $c /1k)" >/dev/null 2>&1
  [ $c = direct ] && cc=direct-h2 || cc=$c
  h2load -t1 -c16 -m10 -D 1 "$(url $cc /64k)" >/dev/null 2>&1
done
wrk -t1 -c32 -d1s -s "$W/post.lua" "$(url clawveil-redacted /post)" >/dev/null 2>&1

for ROUND in $(seq 1 "$ROUNDS"); do
  mapfile -t order < <(rotate $((ROUND - 1)))
  echo "round $ROUND/$ROUNDS: ${order[*]} ($(($(date +%s) - START)) s so far)"
  for c in "${order[@]}"; do [ $c = direct ] || restart $c; done
  for c in "${order[@]}"; do [ $c = direct ] || idle $c; done
  for c in "${order[@]}"; do [ $c = direct ] || upload $c; done
  for c in "${order[@]}"; do h1 $c /1k h1_1k; done
  for c in "${order[@]}"; do h1 $c /64k h1_64k; done
  for c in "${order[@]}"; do h2 $c /1k h2_1k; done
  for c in "${order[@]}"; do h2 $c /64k h2_64k; done
  # the redacted instance goes where clawveil goes, first or second alternating
  for c in "${order[@]}"; do
    if [ $c = clawveil ] && [ $((ROUND % 2)) = 0 ]; then h1 clawveil-redacted /post post_16k "$W/post.lua"; fi
    h1 $c /post post_16k "$W/post.lua"
    if [ $c = clawveil ] && [ $((ROUND % 2)) = 1 ]; then h1 clawveil-redacted /post post_16k "$W/post.lua"; fi
  done
  for c in "${order[@]}"; do lat $c; done
  for c in "${order[@]}"; do [ $c = direct ] || hs $c full; done
  for c in "${order[@]}"; do [ $c = direct ] || hs $c resume; done
done
ELAPSED=$(($(date +%s) - START))
grep -q '"request_\(json\|body\)":.*REDACTED' "$W/clawveil-redacted.log" || echo "  ! clawveil-redacted logged no redacted bodies" >&2
for f in nginx-access.log caddy-access.log clawveil-off.log; do
  [ -s "$W/$f" ] || echo "  ! $f is empty: that access log was not written" >&2
done

# ---- the report ---------------------------------------------------------------------
HOST=$(hostname -s) DAY=$(date -u +%Y-%m-%d)
SUFFIX=""; [ "${QUICK:-0}" = 1 ] && SUFFIX=-quick
mkdir -p "$RESULTS"
OUT=$RESULTS/$DAY-$HOST$SUFFIX.txt PNG=$RESULTS/$DAY$SUFFIX.png
{
  echo "host: $HOST, $(nproc) cores, $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo), $(uname -r)"
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), elapsed ${ELAPSED}s"
  echo "versions: clawveil $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo '?'), $(nginx -v 2>&1 | sed 's/.*: //'), caddy $(caddy version | cut -d' ' -f1), $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2), h2load $(h2load --version | awk '{print $NF}')"
  echo "run: $ROUNDS round(s) x ${DUR}s per measurement, $IDLE idle connections, ${UPLOAD_MIB} MiB upload, latency at $RATE req/s over 16 connections${QUICK:+ (QUICK=$QUICK)}"
} >"$W/meta"
$PY "$ROOT/benches/compare/report.py" "$W/meta" "$RAW" "$IDLE" "$UPLOAD_MIB" "$RATE" | tee "$OUT"
$PY "$ROOT/benches/compare/plot.py" "$OUT" "$PNG"
echo "wrote $OUT and $PNG"
