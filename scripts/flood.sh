#!/usr/bin/env bash
# Connection flood (README "Overload"): a demo backend, switchyard with a
# listener capped at CAP connections, and examples/flood.rs opening CONNS
# idle connections while CLIENTS keep-alive clients measure latency.
# Not part of `make test`. Needs an open-file limit above CONNS for the
# flood itself (raised below where the hard limit allows).
#   scripts/flood.sh                                  # 20,000 vs a cap of 5,000, 50 clients
#   CONNS=300 CAP=100 CLIENTS=5 SECONDS_=4 scripts/flood.sh   # a small run
set -euo pipefail
CONNS=${CONNS:-20000}
CAP=${CAP:-5000}
CLIENTS=${CLIENTS:-50}
SECONDS_=${SECONDS_:-10}
PROFILE=${PROFILE:-release}
PORT=${PORT:-18080}
BACKEND=${BACKEND:-127.0.0.1:19001}
ADMIN=${ADMIN:-127.0.0.1:19901}

flag=$([ "$PROFILE" = release ] && echo --release || true)
cargo build $flag --bin switchyard --example flood
dir=${CARGO_TARGET_DIR:-target}/$([ "$PROFILE" = release ] && echo release || echo debug)
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

cat >"$work/flood.yaml" <<YAML
server: { pid_file: $work/pid, upgrade_sock: $work/upgrade.sock }
admin: { listen: $ADMIN }
listeners:
  web:
    listen: 127.0.0.1:$PORT
    max_connections: $CAP
    routes: [{ upstream: demo }]
upstreams:
  demo: { backends: [{ addr: $BACKEND }] }
YAML

"$dir/switchyard" demo-backend --listen "$BACKEND" --name flood &
pids+=($!)
"$dir/switchyard" run -c "$work/flood.yaml" 2>"$work/switchyard.log" &
sy=$!
pids+=($sy)
for _ in $(seq 50); do curl -fs "http://$ADMIN/healthz" >/dev/null && break; sleep 0.1; done
echo "switchyard RSS before the flood: $(grep VmRSS /proc/$sy/status | awk '{print $2}') KiB"

# Open connections late in the flood (the flood holds them until its end).
( sleep $(( SECONDS_ * 4 / 5 ))
  echo "switchyard_connections during the flood (cap $CAP):"
  curl -fs "http://$ADMIN/metrics" | grep '^switchyard_connections{' || true
  echo "switchyard RSS during the flood: $(grep VmRSS /proc/$sy/status | awk '{print $2}') KiB" ) &
pids+=($!)
"$dir/examples/flood" --target "127.0.0.1:$PORT" --conns "$CONNS" --clients "$CLIENTS" --seconds "$SECONDS_"
grep -i 'max_connections\|open-file' "$work/switchyard.log" || true
