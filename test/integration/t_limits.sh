# Limits enforced by the kernel on real VEs.

usage_of() { hsp state --json "$1" | sed -n '/"usage"/,/}/p' | sed -n "s/.*\"$2\": \([0-9]*\).*/\1/p"; }

test_fork_bomb_held_at_pids_max() {
	new_ve fb --pids 64
	# A real fork bomb, bounded in time; it must hit the limit, not the host.
	timeout 10 "$HSP" --root "$T/root" --run-dir "$T/run" exec fb -- \
		sh -c 'b() { while :; do b & done; }; b' >/dev/null 2>&1 &
	local bomb=$! n max=0 i
	# At least 3 s of samples, up to 9 s while the bomb is still
	# starting (exec is slow under ASan on a loaded machine).
	for i in $(seq 90); do
		n=$(usage_of fb pids)
		[ "$n" -le "$max" ] || max=$n
		[ "$i" -ge 30 ] && [ "$max" -ge 60 ] && break
		sleep 0.1
	done
	echo "    most tasks seen: $max"
	[ "$max" -le 64 ] || fail "pids.current $max above 64"
	[ "$max" -ge 60 ] || fail "fork bomb only reached $max tasks"
	# The host and the VE's own init are unharmed.
	assert_eq running "$(json_get "$(hsp state --json fb)" status)"
	hsp kill fb
	wait "$bomb" 2>/dev/null || true
	assert_eq stopped "$(json_get "$(hsp state --json fb)" status)"
}

test_memory_hog_killed_inside_only() {
	new_ve mh --memory 48M --swap 0
	local init rc=0
	init=$(json_get "$(hsp state --json mh)" init_pid)
	hsp exec mh -- sh -c 'x=$(head -c 200000000 /dev/zero | tr "\0" a); echo survived' >/dev/null 2>&1 || rc=$?
	[ "$rc" -eq 137 ] || fail "hog exit status $rc, expected 137 (SIGKILL by OOM)"
	assert_eq running "$(json_get "$(hsp state --json mh)" status)" "VE after OOM"
	assert_eq "$init" "$(json_get "$(hsp state --json mh)" init_pid)" "init after OOM"
	assert_eq ok "$(hsp exec mh -- echo ok)" "VE usable after OOM"
}

test_cpu_quota_within_10_percent() {
	new_ve cq --cpus 0.5
	local c0 c1 t0 t1
	hsp exec cq -- sh -c 'timeout 4 sh -c "while :; do :; done"; true' &
	local job=$!
	sleep 1
	c0=$(usage_of cq cpu_ns)
	t0=$(date +%s%N)
	sleep 2
	c1=$(usage_of cq cpu_ns)
	t1=$(date +%s%N)
	wait "$job"
	local ratio
	ratio=$(echo "scale=3; ($c1 - $c0) / ($t1 - $t0)" | bc)
	echo "    cpu used: $ratio of a CPU (quota 0.5)"
	[ "$(echo "$ratio >= 0.45 && $ratio <= 0.55" | bc)" = 1 ] || fail "cpu ratio $ratio outside 0.5 ±10%"
}

test_cpu_weight_applied() {
	new_ve cw --cpu-weight 300
	local v
	v=$(hsp exec cw -- sh -c 'cat /sys/fs/cgroup/cpu/cpu.shares 2>/dev/null || cat /sys/fs/cgroup/cpu.weight')
	# v2 takes the weight as is; v1 gets the equivalent shares.
	case "$v" in
	300) ;;
	*) [ "$v" -gt 1024 ] || fail "cpu weight 300 gave $v" ;;
	esac
}

test_io_weight_applied_or_refused_cleanly() {
	# Whether io weights can be enforced depends on the host (iocost or bfq);
	# either way the user gets what was asked for or a clear refusal.
	local rc=0
	ERR=$(hsp create iw --template busybox --io-weight 300 2>&1) || rc=$?
	if [ "$rc" -ne 0 ]; then
		echo "    this host cannot enforce io weights: $ERR"
		[ "$(printf '%s\n' "$ERR" | wc -l)" -eq 1 ] || fail "error is not one line: $ERR"
		assert_match 'io weight' "$ERR"
		[ ! -e "$T/root/ves/iw" ] || fail "half-created VE left"
		return 0
	fi
	hsp start iw
	local d v
	for d in $(ve_cgroup_dirs iw); do
		for f in io.weight io.bfq.weight blkio.bfq.weight blkio.weight; do
			[ -r "$d/$f" ] && v="$v $(tr '\n' ' ' <"$d/$f")"
		done
	done
	echo "    io weight files:$v"
	[ -n "$v" ] || fail "no io weight file in the VE's groups"
}
