#!/usr/bin/env bash
# HTTP ceiling: `GET /_matrix/client/versions` on one pinned Tessera shard
# against a bare hello-world server on the same runtime (benches/src/bin/
# bare_hello.rs), side by side in one run. Each server is pinned to the last
# CPU; wrk runs on the first (wrk -t1 -c64), so load and server never share
# a core. Prints both rates, the server's CPU use and CPU time per request,
# and the ratios; the goal is >= 0.80.
#
#   benches/http-ceiling.sh [seconds] [rounds]
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${1:-10}
rounds=${2:-3}
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }
ncpu=$(nproc)
[ "$ncpu" -ge 2 ] || { echo "needs 2 CPUs (server and load on separate cores)" >&2; exit 1; }
server_cpu=$((ncpu - 1))
load_cpu=0

cargo build --release -q -p tessera -p tessera-benches
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

port_bare=18090
port_tessera=18091
./target/release/bare-hello "$port_bare" "$server_cpu" &
pids+=($!)

./target/release/tessera generate-config --server-name localhost --config "$work/tessera.toml" \
  --client-port "$port_tessera" --federation-port 18491 >/dev/null
TESSERA_SERVER__CORES=1 TESSERA_LISTENERS__FEDERATION__ENABLE=false TESSERA_LOGGING__LEVEL=warn \
  taskset -c "$server_cpu" ./target/release/tessera serve --config "$work/tessera.toml" &
pids+=($!)

for port in $port_bare $port_tessera; do
  for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
done

cpu_ticks() { # pid -> utime+stime of the whole process, in clock ticks
  awk '{print $14 + $15}' "/proc/$1/stat"
}
hz=$(getconf CLK_TCK)

# run url pid -> "requests/s server_cpu_utilisation cpu_us_per_request"
run() {
  local before after out rps
  before=$(cpu_ticks "$2")
  out=$(taskset -c "$load_cpu" wrk -t1 -c64 -d"${secs}s" "$1")
  after=$(cpu_ticks "$2")
  rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
  awk -v r="$rps" -v t="$((after - before))" -v hz="$hz" -v s="$secs" \
    'BEGIN { cpu = t / hz; printf "%.0f %.2f %.2f", r, cpu / s, cpu * 1e6 / (r * s) }'
}

echo "round,bare_rps,bare_cpu,bare_us_per_req,tessera_rps,tessera_cpu,tessera_us_per_req,rps_ratio,cpu_ratio"
for r in $(seq "$rounds"); do
  read -r brps bcpu bus <<<"$(run "http://127.0.0.1:$port_bare/" "${pids[0]}")"
  read -r trps tcpu tus <<<"$(run "http://127.0.0.1:$port_tessera/_matrix/client/versions" "${pids[1]}")"
  echo "$r,$brps,$bcpu,$bus,$trps,$tcpu,$tus,$(awk -v b="$brps" -v t="$trps" 'BEGIN{printf "%.3f", t/b}'),$(awk -v b="$bus" -v t="$tus" 'BEGIN{printf "%.3f", b/t}')"
done
# rps_ratio: Tessera's requests/s over the bare server's (goal >= 0.80).
# cpu_ratio: the bare server's CPU per request over Tessera's, i.e. the same
# comparison per CPU second, which stays meaningful when wrk (one thread) and
# not the server is the bottleneck (then server CPU is below 1.00).
