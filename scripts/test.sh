#!/usr/bin/env bash
# Runs every test of clawveil: formatting, lints, unit and integration tests (real
# binary, curl, openssl, Pebble, Prometheus). Installs what the tests need when it is missing
# instead of skipping them.
#
#   bash scripts/test.sh            # everything
#   bash scripts/test.sh -- NAME    # only tests whose name contains NAME (cargo test filter)
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else echo "need root to install: $*" >&2; return 1; fi; }
apt_updated=
need() { # need COMMAND DEBIAN_PACKAGE
  command -v "$1" >/dev/null 2>&1 && return 0
  echo "installing $2 (for $1)"
  if [ -z "$apt_updated" ]; then as_root apt-get update -qq; apt_updated=1; fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
}

need curl curl
need openssl openssl
need python3 python3
need pebble pebble
need pebble-challtestsrv pebble
# A real Prometheus scrapes clawveil in the integration tests; promtool checks its output.
need prometheus prometheus
need promtool prometheus
# The official openai SDK, websockets and the DingTalk Stream SDK drive the egress tests and the acceptance checks.
python3 -c 'import openai, dingtalk_stream, websockets; assert int(websockets.__version__.split(".")[0]) >= 15' 2>/dev/null || python3 -m pip install -q openai 'websockets>=15' dingtalk-stream
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy rustfmt

filter=()
if [ "${1:-}" = "--" ]; then shift; filter=("$@"); fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --workspace --locked -- "${filter[@]}"

# The deployment material is tested too (whole runs only, not with a filter).
if [ ${#filter[@]} -eq 0 ]; then
  echo "== alert rules: promtool check and unit tests"
  (cd examples/prometheus && promtool check rules alerts.yml && promtool test rules tests.yml \
     && promtool check config --syntax-only server/prometheus.yml)
  echo "== grafana dashboard: structure and PromQL"
  python3 examples/grafana/validate.py --require-promtool
  echo "== deployment examples: clawveil check, systemd-analyze, kubernetes-validate, lints"
  bash scripts/check-examples.sh
fi
