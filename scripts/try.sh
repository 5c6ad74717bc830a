#!/usr/bin/env bash
# Try clawveil in one command: builds clawveil and a stand-in bot, starts the bot on
# 127.0.0.1:8080 and clawveil with the repository's proxy.toml (a self-signed certificate
# is generated under certs/ on first start), makes one HTTPS request through it, and says
# what to try next. Ctrl-C stops both.
#
#   bash scripts/try.sh          # runs until Ctrl-C
#   bash scripts/try.sh --once   # the same checks, then stops both: exit 0 when they pass (CI)
set -uo pipefail
cd "$(dirname "$0")/.."

once=
case "${1:-}" in
  --once) once=1 ;;
  "") ;;
  *) echo "usage: bash scripts/try.sh [--once]" >&2; exit 2 ;;
esac

bot_addr=127.0.0.1:8080    # upstream.url in proxy.toml
https=https://127.0.0.1:8443
plain=http://127.0.0.1:8880
metrics=http://127.0.0.1:9464
logs=target/try
bin=target/release

say() { printf '%s\n' "$*"; }
fail() { printf 'try.sh: %s\n' "$*" >&2; exit 1; }

command -v curl >/dev/null || fail "curl is needed (apt-get install curl)"

bot_pid=
proxy_pid=
stop() {
  trap - EXIT INT TERM
  local pids=() names=() pid
  [ -n "$proxy_pid" ] && kill -TERM "$proxy_pid" 2>/dev/null && pids+=("$proxy_pid") && names+=(clawveil)
  [ -n "$bot_pid" ] && kill -TERM "$bot_pid" 2>/dev/null && pids+=("$bot_pid") && names+=("the stand-in bot")
  # clawveil finishes in-flight requests first; do not wait for a slow one for long
  for _ in $(seq 50); do
    local alive=
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ -z "$alive" ] && break
    sleep 0.1
  done
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
  case ${#names[@]} in
    1) say "stopped ${names[0]}" ;;
    2) say "stopped ${names[0]} and ${names[1]}" ;;
  esac
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Polls `$@` (a command) every 0.2 s for up to $1 seconds while process $2 lives.
wait_for() {
  local secs=$1 pid=$2
  shift 2
  for _ in $(seq $((secs * 5))); do
    "$@" && return 0
    kill -0 "$pid" 2>/dev/null || return 2
    sleep 0.2
  done
  return 1
}
answers() { curl -s -o /dev/null --max-time 1 "$1"; }
ready() { [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$metrics/readyz")" = 200 ]; }

say "building clawveil and the stand-in bot (the first build takes about 2 minutes)…"
cargo build --release --locked -p clawveil --bin clawveil --example echo-bot || fail "the build failed"

if answers "http://$bot_addr/"; then
  fail "something already answers on $bot_addr (your own bot, or an echo-bot left from an earlier run?); stop it and run this again"
fi
mkdir -p "$logs"
ECHO_BOT_ADDR=$bot_addr "$bin/examples/echo-bot" >"$logs/echo-bot.log" 2>&1 &
bot_pid=$!
wait_for 10 "$bot_pid" answers "http://$bot_addr/" || { cat "$logs/echo-bot.log" >&2; fail "the stand-in bot did not start"; }
say "the stand-in bot answers on http://$bot_addr (its output: $logs/echo-bot.log)"

# clawveil's log goes to the terminal when there is one: each request shows up there.
if [ -n "$once" ]; then
  "$bin/clawveil" --config proxy.toml >"$logs/clawveil.log" 2>&1 &
else
  "$bin/clawveil" --config proxy.toml &
fi
proxy_pid=$!
wait_for 20 "$proxy_pid" ready
case $? in
  0) ;;
  2) [ -n "$once" ] && cat "$logs/clawveil.log" >&2
     wait "$proxy_pid"; code=$?; proxy_pid=
     fail "clawveil stopped (exit status $code); it said why above" ;;
  *) [ -n "$once" ] && cat "$logs/clawveil.log" >&2
     fail "clawveil did not become ready ($metrics/readyz) in 20 s" ;;
esac

sleep 0.3   # clawveil's start-up lines first
say ""
say "\$ curl --cacert certs/selfsigned.pem $https/hello"
answer=$(curl -sS --max-time 10 --cacert certs/selfsigned.pem "$https/hello") || fail "the HTTPS request through clawveil failed"
say "$answer"
case $answer in *'"bot":"echo"'*'"x_forwarded_proto":"https"'*) ;; *) fail "that is not the bot's answer" ;; esac
redirect=$(curl -s -o /dev/null -w '%{http_code} %{redirect_url}' --max-time 5 "$plain/hello")
[ "${redirect%% *}" = 308 ] || fail "plain HTTP answered \"$redirect\", not a 308 to https"
say "plain HTTP: $redirect (a 308 to https; plaintext is never proxied)"
sleep 0.3   # lets clawveil's line about this request come before what follows

if [ -n "$once" ]; then
  say "clawveil works: one request through TLS to the bot, and the redirect"
  exit 0
fi

say ""
say "clawveil is running in front of the stand-in bot. In another terminal, try:"
try() { printf '  %-42s %s\n' "$1" "$2"; }
try "curl -k $https/hello" "the bot's answer, through TLS (-k: the certificate is self-signed)"
try "curl -k $https/sse" "five server-sent events, streamed as they come"
try "curl -i $plain/" "a 308 to https: plain HTTP is never proxied"
try "curl $metrics/metrics" "Prometheus metrics (clawveil_requests_total, …)"
try "$bin/clawveil check" "the effective configuration, secrets masked"
try "$bin/clawveil cert status" "the certificate, and when it expires"
say "Then edit proxy.toml (README.md walks through it). clawveil's log follows; Ctrl-C stops both."
say ""
wait "$proxy_pid"
code=$?
proxy_pid=
# Ctrl-C reaches clawveil too: it drains and exits 0, and the trap stops the bot.
[ "$code" = 0 ] && exit 0
fail "clawveil stopped (exit status $code)"
