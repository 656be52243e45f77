#!/usr/bin/env bash
# Start Weir on the file object store, write some line protocol, query it back.
# Leaves the server running with --keep (stop it with Ctrl-C).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
DATA=${WEIR_DEMO_DIR:-$PWD/.weir-demo}
PORT=${WEIR_DEMO_PORT:-8181}
export INFLUXDB3_HOST_URL="http://127.0.0.1:$PORT"
mkdir -p "$DATA/plugins"
echo "==> starting: influxdb3 serve --node-id demo --object-store file --data-dir $DATA/data --plugin-dir $DATA/plugins --http-bind 127.0.0.1:$PORT --without-auth"
influxdb3 serve --node-id demo --object-store file --data-dir "$DATA/data" \
  --plugin-dir "$DATA/plugins" --http-bind "127.0.0.1:$PORT" --without-auth \
  > "$DATA/server.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  curl -sf "$INFLUXDB3_HOST_URL/health" >/dev/null 2>&1 && break
  kill -0 $PID 2>/dev/null || { cat "$DATA/server.log"; exit 1; }
  sleep 0.1
done
echo "==> server up (log: $DATA/server.log)"
set -x
influxdb3 create database demo 2>/dev/null || true
influxdb3 write --database demo \
  'cpu,host=server01,region=us-west usage=0.64,cores=8i
cpu,host=server02,region=us-east usage=0.31,cores=4i
mem,host=server01 used_percent=72.5'
influxdb3 query --database demo "SELECT host, region, usage, cores FROM cpu ORDER BY host"
influxdb3 query --database demo --format json "SELECT count(*) AS n FROM mem"
influxdb3 show databases
set +x
if [ "${1:-}" = "--keep" ]; then
  echo "==> server still running at $INFLUXDB3_HOST_URL; Ctrl-C to stop"
  wait $PID
fi
