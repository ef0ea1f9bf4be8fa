#!/bin/bash
# Runs the control-plane tests: every test/cluster/t_*.sh file (or the ones
# given) gets its own simulated cluster (test/sim-cluster), and every test_*
# function in it runs against that cluster with hspctl, the Node.js interop
# client and curl.  Closes with "N passed, N failed".
#
# A file sets, at its top, what its cluster is:
#   NODES=3                 how many nodes (default 2)
#   TEMPLATES="busybox ..."  the templates every node has (default busybox)
#   SIM_ARGS=--ceph         more arguments for `sim-cluster up` (default none;
#                           --ceph: VEs on a CephFS pool of a real Ceph cluster)
set -u
cd "$(dirname "$0")"
REPO=$(cd ../.. && pwd)
export HSP_BUILD=${HSP_BUILD:-$REPO/build}
source "$REPO/test/lib/assert.sh"
source ./lib.sh

[ "$(id -u)" -eq 0 ] || { echo "cluster tests need root" >&2; exit 1; }

files=("$@")
[ ${#files[@]} -gt 0 ] || files=(t_*.sh)
pass=0 failn=0 failed=()
for f in "${files[@]}"; do
	NODES=2 TEMPLATES=busybox SIM_ARGS=""
	# shellcheck disable=SC1090
	source "./$f"
	C=/tmp/hsp-ct-$(basename "$HSP_BUILD")-${f%.sh}
	"$REPO/test/sim-cluster" down --dir "$C" >/dev/null 2>&1
	# shellcheck disable=SC2086
	if ! "$REPO/test/sim-cluster" up --dir "$C" --nodes "$NODES" --templates "$TEMPLATES" \
		$SIM_ARGS >"$C.up.log" 2>&1; then
		echo "FAIL $f: the cluster did not come up"
		sed 's/^/    /' "$C.up.log"
		failn=$((failn + 1))
		failed+=("$f:up")
		"$REPO/test/sim-cluster" down --dir "$C" >/dev/null 2>&1
		for t in $(declare -F | awk '{print $3}' | grep '^test_'); do unset -f "$t"; done
		continue
	fi
	# shellcheck disable=SC1091
	source "$C/env"
	for t in $(declare -F | awk '{print $3}' | grep '^test_'); do
		start=$(date +%s.%N)
		( set -eE; trap 'echo "    failed: line $LINENO: $BASH_COMMAND"' ERR; "$t" ) >"$C.$t.log" 2>&1
		rc=$?
		if [ $rc -eq 0 ]; then
			pass=$((pass + 1))
			printf 'ok   %-45s %5.2fs\n' "$f:$t" "$(echo "$(date +%s.%N) - $start" | bc)"
		else
			failn=$((failn + 1))
			failed+=("$f:$t")
			printf 'FAIL %-45s\n' "$f:$t"
			sed 's/^/    /' "$C.$t.log"
			echo "    --- controller log (last 30 lines)"
			tail -30 "$C/controller/log" 2>/dev/null | sed 's/^/    /'
		fi
		rm -f "$C.$t.log"
		unset -f "$t"
	done
	if ! "$REPO/test/sim-cluster" down --dir "$C" >"$C.down.log" 2>&1; then
		echo "FAIL $f: down (daemon errors at exit)"
		sed 's/^/    /' "$C.down.log"
		failn=$((failn + 1))
		failed+=("$f:down")
	fi
	rm -f "$C.down.log"
	rm -f "$C.up.log"
done
echo
[ $failn -eq 0 ] || printf 'failed: %s\n' "${failed[@]}"
echo "$pass passed, $failn failed"
[ $failn -eq 0 ]
