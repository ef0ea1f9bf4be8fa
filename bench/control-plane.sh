#!/bin/bash
# Control-plane figures (docs/bench.md), as ratios against a peer run side
# by side, medians of several rounds:
#  1. public API unary latency: the C client (hsp-rpc) against hsp-controller
#     vs a grpc-js client against a grpc-js server doing the same call
#     (Cluster.Info with the same token check over TLS), plus the crossings;
#  2. VE create throughput (busybox) through the whole stack, on a one-node
#     simulated cluster: one after another, and 20 at once;
#  3. scale: 1000 simulated agents speaking the node protocol (join, mTLS
#     session, 1 Hz heartbeats) against one controller: its CPU and RSS.
# BENCH_ROUNDS (default 5), BENCH_CALLS (5000), BENCH_AGENTS (1000).
# BENCH_PIN=CPU runs section 1's servers and clients on that one CPU, both
# pairs alike: on a VM with few vCPUs, which of them the scheduler gives a
# client and its server (one: ~110 us; two: a wake-up across them each way)
# decides a run's figure more than the code does.
# Arguments pick sections (api, create, agents); none: all three.
set -euo pipefail
# every failure says where
REPO=$(cd "$(dirname "$0")/.." && pwd)
B=${HSP_BUILD:-$REPO/build}
ROUNDS=${BENCH_ROUNDS:-5}
CALLS=${BENCH_CALLS:-5000}
AGENTS=${BENCH_AGENTS:-1000}
D=$(mktemp -d /tmp/hsp-bench-cp.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	"$REPO/test/sim-cluster" down --dir "$D/sim" >/dev/null 2>&1 || true
	rm -rf "$D"
}
trap cleanup EXIT
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
PIN=()
[ -z "${BENCH_PIN:-}" ] || PIN=(taskset -c "$BENCH_PIN")
SECTIONS=${*:-api create agents}
want() { [[ " $SECTIONS " == *" $1 "* ]]; }

start_controller() { # DIR -> sets PORT, TOKEN
	"${PIN[@]}" "$B/src/controller/hsp-controller" --state-dir "$1" --listen 127.0.0.1:0 --socket "" \
		--heartbeat-ms 1000 --suspect-ms 3000 --dead-ms 10000 >"$1.log" 2>&1 &
	pids+=($!)
	CPID=$!
	for _ in $(seq 100); do [ -s "$1/listen.addr" ] && break; sleep 0.1; done
	PORT=$(cut -d: -f2 "$1/listen.addr")
	TOKEN=$(cat "$1/admin.token")
}

if want api; then
echo "== 1. API latency (Cluster.Info over TLS with a bearer token, $CALLS sequential calls)"
start_controller "$D/ctl"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$D/js.key" \
	-out "$D/js.crt" -subj /CN=js -addext subjectAltName=IP:127.0.0.1 -days 1 2>/dev/null
"${PIN[@]}" node "$REPO/bench/api/js.js" serve 0 "$D/js.crt" "$D/js.key" "$TOKEN" >"$D/js.out" &
pids+=($!)
for _ in $(seq 100); do grep -q listening "$D/js.out" 2>/dev/null && break; sleep 0.1; done
JSPORT=$(awk '{print $2}' "$D/js.out")
for r in $(seq "$ROUNDS"); do
	"${PIN[@]}" "$B/bench/hsp-bench-api" --controller "127.0.0.1:$PORT" --ca "$D/ctl/ca.crt" \
		--token "$TOKEN" --calls "$CALLS" >>"$D/c-c"
	"${PIN[@]}" node "$REPO/bench/api/js.js" call "127.0.0.1:$JSPORT" "$D/js.crt" "$TOKEN" "$CALLS" >>"$D/js-js" 2>/dev/null
	"${PIN[@]}" node "$REPO/bench/api/js.js" call "127.0.0.1:$PORT" "$D/ctl/ca.crt" "$TOKEN" "$CALLS" >>"$D/js-c" 2>/dev/null
	"${PIN[@]}" "$B/bench/hsp-bench-api" --controller "127.0.0.1:$JSPORT" --ca "$D/js.crt" \
		--token "$TOKEN" --calls "$CALLS" >>"$D/c-js"
done
printf '%-38s %8s %8s\n' "client -> server" "p50 us" "p99 us"
for pair in "c-c:C client -> hsp-controller" "js-js:grpc-js client -> grpc-js server" \
	"js-c:grpc-js client -> hsp-controller" "c-js:C client -> grpc-js server"; do
	f=${pair%%:*}
	printf '%-38s %8s %8s\n' "${pair#*:}" "$(awk '{print $3}' "$D/$f" | median)" \
		"$(awk '{print $5}' "$D/$f" | median)"
done
c50=$(awk '{print $3}' "$D/c-c" | median)
j50=$(awk '{print $3}' "$D/js-js" | median)
echo "ratio p50 (C/C over js/js): $(echo "scale=2; $c50 / $j50" | bc)x; runs: $ROUNDS"
echo "C -> hsp-controller p50 per run: $(awk '{print $3}' "$D/c-c" | tr '\n' ' ')"
echo "grpc-js -> grpc-js p50 per run: $(awk '{print $3}' "$D/js-js" | tr '\n' ' ')"
fi

if want create; then
echo "== 2. VE create throughput (busybox, one node, create without start, --wait)"
HSP_BUILD=$B "$REPO/test/sim-cluster" up --nodes 1 --dir "$D/sim" >/dev/null
# shellcheck disable=SC1091
. "$D/sim/env"
for r in $(seq "$ROUNDS"); do
	t0=$(date +%s.%N)
	for i in $(seq 10); do hspctl ve create "s$r-$i" --template busybox --no-start --wait >/dev/null 2>&1; done
	t1=$(date +%s.%N)
	echo "10 / ($t1 - $t0)" | bc -l >>"$D/seq"
	ops=()
	for i in $(seq 20); do
		ops+=("$(hspctl ve create "p$r-$i" --template busybox --no-start | awk '{print $2}')")
	done
	for op in "${ops[@]}"; do hspctl operation wait "$op" >/dev/null; done
	t2=$(date +%s.%N)
	echo "20 / ($t2 - $t1)" | bc -l >>"$D/par"
	for i in $(seq 10); do hspctl ve destroy "s$r-$i" >/dev/null; done
	for i in $(seq 20); do hspctl ve destroy "p$r-$i" >/dev/null; done
	sleep 2
done
printf 'one after another: %.1f VEs/s; 20 at once: %.1f VEs/s (medians of %d)\n' \
	"$(median <"$D/seq")" "$(median <"$D/par")" "$ROUNDS"
"$REPO/test/sim-cluster" down --dir "$D/sim" >/dev/null
fi

want agents || exit 0
echo "== 3. $AGENTS simulated agents heartbeating at 1 Hz against one controller"
start_controller "$D/ctl2"
"$B/bench/hsp-bench-agents" --controller "127.0.0.1:$PORT" --ca "$D/ctl2/ca.crt" \
	--token "$TOKEN" --pid "$CPID" --agents "$AGENTS" --seconds 20
