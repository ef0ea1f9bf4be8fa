#!/bin/bash
# Cluster-operation figures (docs/bench.md) on a simulated 3-node cluster
# with the shared CephFS pool (test/sim-cluster up --ceph), medians of
# BENCH_ROUNDS (default 5) rounds:
#  1. failover: kill -9 of a whole node -> the VE's sshd accepts a login on
#     another node, split into detection (node dead), fencing (blocklisted
#     and evicted) and restart;
#  2. restart-migration downtime (busybox and debian-12): the longest gap
#     in replies to a 10 ms ping from outside while the VE moves;
#  3. drain of a node holding BENCH_DRAIN VEs (default 20): total time and
#     the longest single VE downtime.
# The targets (issue 6): failover <= 10 s, restart-migration <= 0.5 s.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
B=${HSP_BUILD:-$REPO/build}
ROUNDS=${BENCH_ROUNDS:-5}
DRAIN=${BENCH_DRAIN:-20}
D=$(mktemp -d /tmp/hsp-bench-ops.XXXXXX)
S=$D/sim
cleanup() {
	jobs -p | xargs -r kill 2>/dev/null || true
	"$REPO/test/sim-cluster" down --dir "$S" >/dev/null 2>&1 || true
	rm -rf "$D"
}
trap cleanup EXIT
median() { sort -n | awk '{a[NR]=$1} END {printf "%.2f\n", a[int((NR+1)/2)]}'; }
now() { date +%s.%N; }
since() { echo "$(now) - $1" | bc; }

HSP_BUILD=$B "$REPO/test/sim-cluster" up --dir "$S" --nodes 3 --ceph \
	--templates "busybox debian-12" >"$D/up.log"
# shellcheck disable=SC1091
. "$S/env"
sim() { "$REPO/test/sim-cluster" --dir "$S" "$@"; }
in_ctl() { ip netns exec "$HSP_NETNS" "$@"; }
field() { hspctl -o json "$2" show "$3" | python3 -c "import json,sys; print(json.load(sys.stdin)[\"$1\"])"; }
ssh-keygen -q -t ed25519 -N '' -f "$D/key"
SSH=(ssh -i "$D/key" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
	-o ConnectTimeout=1 -o BatchMode=yes -o LogLevel=ERROR)

echo "== 1. failover: kill -9 of a node -> ssh login on another node (debian-12, $ROUNDS rounds)"
for r in $(seq "$ROUNDS"); do
	victim=node$((r % 3 + 1))
	hspctl ve create "fo$r" --template debian-12 --network --ssh-key "$D/key.pub" \
		--node "$victim" --wait >/dev/null
	ip=$(field ip ve "fo$r" | cut -d/ -f1)
	in_ctl "${SSH[@]}" "root@$ip" true
	t0=$(now)
	sim node kill "$victim"
	dead="" fenced=""
	until in_ctl "${SSH[@]}" "root@$ip" true 2>/dev/null; do
		st=$(field state node "$victim")
		[ -z "$dead" ] && [ "$st" != NODE_STATE_READY ] && [ "$st" != NODE_STATE_SUSPECT ] && dead=$(since "$t0")
		[ -z "$fenced" ] && [ "$st" = NODE_STATE_FENCED ] && fenced=$(since "$t0")
		[ "$(since "$t0" | cut -d. -f1)" -lt 60 ] || { echo "no failover within 60 s" >&2; exit 1; }
	done
	total=$(since "$t0")
	[ "$(field node ve "fo$r")" != "$victim" ]
	echo "$dead ${fenced:-$dead} $total" >>"$D/failover"
	printf '  round %d (%s): dead %.2f s, fenced %.2f s, ssh login %.2f s\n' "$r" "$victim" \
		"$dead" "${fenced:-$dead}" "$total"
	sim node start "$victim" >/dev/null
	for _ in $(seq 300); do [ "$(field state node "$victim")" = NODE_STATE_READY ] && break; sleep 0.1; done
	hspctl ve destroy "fo$r" --wait >/dev/null
done
printf '  median: detection %s s, fenced at %s s, ssh login at %s s (target <= 10 s)\n' \
	"$(awk '{print $1}' "$D/failover" | median)" "$(awk '{print $2}' "$D/failover" | median)" \
	"$(awk '{print $3}' "$D/failover" | median)"

# The longest gap between ping replies (10 ms apart) during a migration.
migrate_gap() {
	local ve=$1 to=$2 ip
	ip=$(field ip ve "$ve" | cut -d/ -f1)
	in_ctl ping -D -n -i 0.01 -W 1 "$ip" >"$D/ping" 2>/dev/null &
	local p=$!
	sleep 0.5
	hspctl ve migrate "$ve" --to "$to" --wait >/dev/null
	sleep 0.5
	kill "$p"
	wait "$p" 2>/dev/null || true
	grep -a -o '^\[[0-9.]*\]' "$D/ping" | tr -d '[]' |
		awk 'NR>1 && $1-p>g {g=$1-p} {p=$1} END {printf "%.3f\n", g}'
}

echo "== 2. restart-migration downtime (ping every 10 ms from outside, $ROUNDS moves each)"
for t in busybox debian-12; do
	v=mig-${t%%-*}
	hspctl ve create "$v" --template "$t" --network --ssh-key "$D/key.pub" --node node1 --wait >/dev/null
	for r in $(seq "$ROUNDS"); do
		to=node$(((r % 2) + 2))
		[ "$(field node ve "$v")" = "$to" ] && to=node1
		migrate_gap "$v" "$to" >>"$D/mig-$t"
	done
	printf '  %-10s median downtime %s s (runs: %s) (target <= 0.5 s)\n' "$t" \
		"$(median <"$D/mig-$t")" "$(tr '\n' ' ' <"$D/mig-$t")"
	hspctl ve destroy "$v" --wait >/dev/null
done

echo "== 2b. live migration of debian-12 with an open ssh session ($ROUNDS moves)"
hspctl ve create live --template debian-12 --network --ssh-key "$D/key.pub" --node node1 --wait >/dev/null
ip=$(field ip ve live | cut -d/ -f1)
if ! hspctl -o json node show node1 | grep -q '"criu"'; then
	echo "  skipped: node1 cannot checkpoint ($(hsp-runtime info 2>/dev/null || echo 'see hsp-runtime info'))"
else
	in_ctl "${SSH[@]}" "root@$ip" 'while sleep 0.02; do date +%s.%N; done' >"$D/ticks" 2>/dev/null &
	sp=$!
	sleep 1
	for r in $(seq "$ROUNDS"); do
		to=node$(((r % 2) + 2))
		[ "$(field node ve live)" = "$to" ] && to=node1
		before=$(wc -l <"$D/ticks")
		hspctl ve migrate live --to "$to" --live --wait >"$D/op" 2>&1
		sleep 0.5
		tail -n +"$before" "$D/ticks" | awk 'NR>1 && $1-p>g {g=$1-p} {p=$1} END {printf "%.3f\n", g}' >>"$D/live"
	done
	kill -0 "$sp" 2>/dev/null && alive=yes || alive=no
	kill "$sp" 2>/dev/null || true
	printf '  longest pause of the ssh session: median %s s (runs: %s); session alive after %s moves: %s (target <= 1 s)\n' \
		"$(median <"$D/live")" "$(tr '\n' ' ' <"$D/live")" "$ROUNDS" "$alive"
fi
hspctl ve destroy live --wait >/dev/null

echo "== 3. drain of a node holding $DRAIN VEs (busybox, running)"
for i in $(seq "$DRAIN"); do
	hspctl ve create "dr$i" --template busybox --node node3 --wait >/dev/null
done
t0=$(now)
op=$(hspctl -o json node drain node3 | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
hspctl operation wait "$op" >/dev/null
total=$(since "$t0")
msg=$(hspctl -o json operation show "$op" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("message",""))')
printf '  drained in %.2f s: %s\n' "$total" "$msg"
hspctl node undrain node3 >/dev/null
