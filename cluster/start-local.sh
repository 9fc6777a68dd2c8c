#!/usr/bin/env bash
# Start a Dask scheduler and N worker processes on this machine, for SCALEML_SCHEDULER:
#   cluster/start-local.sh 2 2GiB      # then: export SCALEML_SCHEDULER=tcp://127.0.0.1:8786
# Stops everything it started on Ctrl-C.
set -euo pipefail
workers="${1:-2}"
memory="${2:-auto}"
port="${SCALEML_SCHEDULER_PORT:-8786}"
dask="$(dirname "$0")/../.venv/bin/dask"
[[ -x "$dask" ]] || dask="dask"
trap 'kill 0' EXIT INT TERM
"$dask" scheduler --host 127.0.0.1 --port "$port" --dashboard-address 127.0.0.1:8787 &
sleep 2
for _ in $(seq "$workers"); do
  "$dask" worker "tcp://127.0.0.1:$port" --nworkers 1 --nthreads 1 --memory-limit "$memory" &
done
echo "scheduler tcp://127.0.0.1:$port, dashboard http://127.0.0.1:8787/status" >&2
wait
