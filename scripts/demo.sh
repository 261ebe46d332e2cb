#!/usr/bin/env bash
# `make run`: three demo backends on 127.0.0.1:9001-9003 and switchyard in
# front of them on :8080 (admin on 127.0.0.1:9901). Ctrl-C stops everything.
set -euo pipefail
bin=${1:-target/release/switchyard}
conf=${2:-conf/example.yaml}

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

for i in 1 2 3; do
  "$bin" demo-backend --listen "127.0.0.1:900$i" --name "web-$i" &
  pids+=($!)
done

cat <<'MSG'

switchyard demo: try, in another terminal,
  curl localhost:8080/                                    # round robin over web-1, web-2, web-3
  curl -H 'Host: api.example.com' localhost:8080/v1/users  # the api upstream, /v1 stripped
  curl localhost:9901/status                               # backends, weights, in-flight
  curl localhost:9901/metrics                              # Prometheus metrics
Ctrl-C stops switchyard and the demo backends.

MSG
"$bin" run -c "$conf" &
pids+=($!)
wait "${pids[-1]}"
