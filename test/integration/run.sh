#!/bin/bash
# Runs every test_* function of every test/integration/t_*.sh file (or the
# files given) against real VEs, and closes with "N passed, N failed".
set -u
cd "$(dirname "$0")"
source ./lib.sh

[ "$(id -u)" -eq 0 ] || { echo "integration tests need root" >&2; exit 1; }
ensure_templates || { echo "cannot build the busybox template" >&2; exit 1; }

files=("$@")
[ ${#files[@]} -gt 0 ] || files=(t_*.sh)
pass=0 failn=0 failed=()
for f in "${files[@]}"; do
	# shellcheck disable=SC1090
	source "./$f"
	for t in $(declare -F | awk '{print $3}' | grep '^test_'); do
		setup_instance
		start=$(date +%s.%N)
		# Not inside `if`: bash ignores set -e in a condition's subshell.
		( set -e; "$t" ) >"$T.log" 2>&1
		rc=$?
		if [ $rc -eq 0 ]; then
			pass=$((pass + 1))
			printf 'ok   %-45s %5.2fs\n' "$f:$t" "$(echo "$(date +%s.%N) - $start" | bc)"
		else
			failn=$((failn + 1))
			failed+=("$f:$t")
			printf 'FAIL %-45s\n' "$f:$t"
			sed 's/^/    /' "$T.log"
		fi
		rm -f "$T.log"
		teardown_instance
		unset -f "$t"
	done
done
echo
[ $failn -eq 0 ] || printf 'failed: %s\n' "${failed[@]}"
echo "$pass passed, $failn failed"
[ $failn -eq 0 ]
