#!/usr/bin/env bash
# The default scenario on a two-node Ray cluster on this machine (what the tests do), with
# callsim[ray] installed: each node offers one CPU, so each shard lands on its own node and
# the summary names both. On a real cluster, see README ("Beyond one machine").
set -euo pipefail
port=${RAY_PORT:-6380}
export RAY_USAGE_STATS_ENABLED=0 RAY_AUTH_MODE=disabled  # loopback only, stopped at the end
trap 'ray stop --force >/dev/null' EXIT
ray start --head --node-ip-address 127.0.0.1 --port "$port" --num-cpus 1 --include-dashboard false
ray start --address "127.0.0.1:$port" --node-ip-address 127.0.0.1 --num-cpus 1
callsim run --engine ray --address "127.0.0.1:$port" --workers 2 --no-live "$@"
