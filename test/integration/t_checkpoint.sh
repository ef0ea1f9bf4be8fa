# Live migration (hsp-runtime checkpoint/restore, CRIU): two "nodes" (runtime
# roots $T/a and $T/b, each with its own run dir) share a local pool, as
# CephFS would be shared; a VE checkpointed on A is restored on B with its
# processes, memory and an open ssh session.  On a machine that cannot
# (`hsp-runtime info` says why) only the cases that need criu are skipped,
# with that reason.
# shellcheck disable=SC2016 # single-quoted scripts run inside the VE

# node a|b ARGS...: hsp-runtime as that node (in the test's network
# namespace when $CK_NS is set).
node() {
	local n=$1
	shift
	if [ -n "${CK_NS:-}" ]; then
		nsenter --net="/run/netns/$CK_NS" "$HSP" --root "$T/$n" --run-dir "$T/run-$n" "$@"
	else
		"$HSP" --root "$T/$n" --run-dir "$T/run-$n" "$@"
	fi
}

# ck_nodes: both nodes with the pool `shared` at $T/pool.
ck_nodes() {
	mkdir -p "$T/a" "$T/b" "$T/pool/templates"
	cp -a "$TEMPLATE_STORE/templates/busybox" "$T/pool/templates/"
	node a pool add shared --type local --path "$T/pool" >/dev/null
	node b pool add shared --type local --path "$T/pool" >/dev/null
}

# ck_unsupported: true (with a note saying why) when this machine cannot
# checkpoint; the caller then skips what needs criu.
ck_unsupported() {
	local info
	info=$("$HSP" info)
	case $info in
	"checkpoint: supported"*) return 1 ;;
	esac
	echo "    note: skipped: $info" >&2
}

ck_teardown() {
	local n ve
	for n in a b; do
		for ve in $(node "$n" list 2>/dev/null | awk 'NR > 1 { print $1 }'); do
			node "$n" kill "$ve" >/dev/null 2>&1 || :
		done
	done
	if [ -n "${CK_NS:-}" ]; then
		ip netns del "$CK_NS" 2>/dev/null || :
		CK_NS=
	fi
}

# A counter in the VE's memory (not on disk: the shell's variable), in a
# session of its own with the VE's /dev/null as stdio, as a daemon would be.
start_counter() {
	node a exec "$1" -- sh -c 'setsid sh -c "echo \$\$ > /tmp/pid; i=0; while sleep 0.1; do
		i=\$((i+1)); echo \$i > /tmp/count; done" </dev/null >/dev/null 2>&1 &'
	wait_until 5 node a exec "$1" -- test -s /tmp/count || fail "counter did not start"
}

test_checkpoint_busybox_memory_and_pids_survive() {
	ck_unsupported && return 0
	trap ck_teardown RETURN
	ck_nodes
	node a create v1 --template busybox --pool shared --disk 200M
	node a start v1
	start_counter v1
	sleep 0.5
	local pid before after out
	pid=$(node a exec v1 -- cat /tmp/pid)
	out=$(node a checkpoint v1 --dir "$T/ck")
	assert_match '^checkpointed v1 to ' "$out" "checkpoint output"
	assert_eq stopped "$(json_get "$(node a state --json v1)" status)" "status on A after the checkpoint"
	flock -n "$T/pool/ves/v1/disk.img" true || fail "disk still locked after the checkpoint"
	[ -f "$T/ck/checkpoint.json" ] || fail "no checkpoint.json"
	assert_eq 700 "$(stat -c %a "$T/ck")" "checkpoint dir mode"

	out=$(node b restore v1 --dir "$T/ck")
	assert_match '^restored v1: frozen [0-9.]+ s \(dump [0-9.]+ s, restore [0-9.]+ s\)$' "$out" \
		"restore output"
	echo "    note: busybox: $out" >&2
	before=$(node b exec v1 -- cat /tmp/count)
	sleep 1
	after=$(node b exec v1 -- cat /tmp/count)
	[ "$after" -gt "$before" ] || fail "counter stopped on B: $before then $after"
	# The same process, by the same pid, still counting from memory.
	assert_eq "$pid" "$(node b exec v1 -- cat /tmp/pid)" "counter's pid"
	node b exec v1 -- kill -0 "$pid" || fail "counter process $pid gone on B"
	local st
	st=$(node b state --json v1)
	assert_eq running "$(json_get "$st" status)" "status on B"
	assert_match '"frozen_us": [1-9]' "$st" "state records the freeze"
	[ -f "$T/ck/checkpoint.restored.json" ] || fail "checkpoint not marked as restored"
	# Supervised as after a start: init is the monitor's child, stop works.
	local init mon
	init=$(json_get "$st" init_pid)
	mon=$(json_get "$st" monitor_pid)
	assert_eq "$mon" "$(ps -o ppid= -p "$init" | tr -d ' ')" "restored init's parent"
	node b stop v1
	assert_eq stopped "$(json_get "$(node b state --json v1)" status)" "status after stop"
	flock -n "$T/pool/ves/v1/disk.img" true || fail "disk still locked after stop on B"
	# And it moves back.
	node b start v1
	node b checkpoint v1 --dir "$T/ck2" >/dev/null
	node a restore v1 --dir "$T/ck2" >/dev/null
	assert_eq running "$(json_get "$(node a state --json v1)" status)" "status back on A"
}

# The customer's view: an ssh session into a debian-12 VE, from a network
# namespace standing for the outside, prints every 0.1 s across the move.
test_checkpoint_debian_ssh_session_survives() {
	ck_unsupported && return 0
	[ -f "$TEMPLATE_STORE/templates/debian-12/rootfs.tar.zst" ] ||
		sh "$REPO/images/build.sh" debian-12 "$TEMPLATE_STORE" >/dev/null ||
		fail "cannot build the debian-12 template"
	trap ck_teardown RETURN
	CK_NS=hsp-ck-$$-$RANDOM
	ip netns add "$CK_NS"
	inns() { nsenter --net="/run/netns/$CK_NS" "$@"; }
	inns ip link set lo up
	inns ip link add hspbr0 type bridge
	inns ip addr add 10.93.0.1/24 dev hspbr0
	inns ip link set hspbr0 up
	ck_nodes
	cp -a "$TEMPLATE_STORE/templates/debian-12" "$T/pool/templates/"
	ssh-keygen -q -t ed25519 -N "" -f "$T/key"
	node a create web --template debian-12 --pool shared --ip 10.93.0.2/24 \
		--gateway 10.93.0.1 --ssh-key "$T/key.pub"
	node a start web
	vssh() {
		inns ssh -i "$T/key" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
			-o BatchMode=yes -o ConnectTimeout=3 -o ServerAliveInterval=0 -o LogLevel=ERROR \
			root@10.93.0.2 "$@"
	}
	wait_until 30 vssh true || fail "no ssh login to the VE on A"
	vssh 'while sleep 0.1; do date +%s.%N; done' >"$T/session.out" 2>"$T/session.err" &
	local sshpid=$! n0 n1 out
	wait_until 10 test -s "$T/session.out" || fail "the ssh session prints nothing"
	sleep 1
	out=$(node a checkpoint web --dir "$T/ck")
	n0=$(wc -l <"$T/session.out")
	out=$(node b restore web --dir "$T/ck")
	echo "    note: debian-12 + ssh: $out" >&2
	sleep 2
	n1=$(wc -l <"$T/session.out")
	kill -0 "$sshpid" 2>/dev/null || fail "the ssh session dropped: $(cat "$T/session.err")"
	[ "$n1" -gt $((n0 + 5)) ] || fail "the session stopped printing: $n0 lines, then $n1"
	# The largest pause the session saw is the freeze.
	local gap
	gap=$(awk 'NR > 1 { d = $1 - p; if (d > m) m = d } { p = $1 } END { printf "%.2f", m }' \
		"$T/session.out")
	echo "    note: largest pause in the session: ${gap} s" >&2
	awk -v g="$gap" 'BEGIN { exit !(g < 5) }' || fail "the session paused ${gap} s"
	# The same address on the same bridge, on B now; new logins work.
	assert_eq web "$(vssh hostname)" "a new login after the move"
	kill "$sshpid" 2>/dev/null || :
	wait "$sshpid" 2>/dev/null || :
}

test_checkpoint_bad_input_changes_nothing() {
	ck_nodes
	node a create v1 --template busybox --pool shared
	# Stopped: nothing to checkpoint, and no directory made for it.  A
	# host that cannot checkpoint at all says that first.
	expect_fail node a checkpoint v1 --dir "$T/ck"
	if "$HSP" info | grep -q '^checkpoint: supported'; then
		assert_match 'not running' "$ERR"
	else
		assert_match 'checkpoint: ' "$ERR"
	fi
	[ ! -e "$T/ck" ] || fail "checkpoint of a stopped VE made its directory"
	expect_fail node a checkpoint nosuch --dir "$T/ck"
	assert_match 'not found|no such|nosuch' "$ERR"
	expect_fail node a checkpoint v1
	assert_match 'dir' "$ERR"
	ck_unsupported && return 0
	trap ck_teardown RETURN
	# Restore with a missing or garbage directory: one line, still stopped.
	expect_fail node b restore v1 --dir "$T/missing"
	assert_match 'no checkpoint directory' "$ERR"
	mkdir -p "$T/junk"
	echo garbage >"$T/junk/checkpoint.json"
	expect_fail node b restore v1 --dir "$T/junk"
	assert_match 'not a valid checkpoint' "$ERR"
	mkdir -p "$T/empty"
	expect_fail node b restore v1 --dir "$T/empty"
	assert_match 'holds no checkpoint' "$ERR"
	assert_eq stopped "$(json_get "$(node b state --json v1)" status)" "status after bad restores"
	# A running VE: not restored over.
	node a start v1
	node a create v2 --template busybox --pool shared
	node a start v2
	node a checkpoint v2 --dir "$T/ck2" >/dev/null
	expect_fail node a restore v1 --dir "$T/ck2"
	assert_match 'checkpoint of VE `v2`' "$ERR"
	node b restore v2 --dir "$T/ck2" >/dev/null
	expect_fail node b restore v2 --dir "$T/ck2"
	assert_match 'already' "$ERR"
	node b checkpoint v2 --dir "$T/ck3" >/dev/null
	node a start v2
	expect_fail node b restore v2 --dir "$T/ck3"
	assert_match 'already running|in use' "$ERR"
	assert_eq running "$(json_get "$(node a state --json v2)" status)" "v2 on A"
	node a stop v2
	# A checkpoint whose images are damaged: the restore fails, leaves no
	# half state, and the VE starts normally.
	node a checkpoint v1 --dir "$T/ck4" >/dev/null
	rm -f "$T/ck4/images/pstree.img"
	expect_fail node b restore v1 --dir "$T/ck4"
	assert_match 'restore' "$ERR"
	assert_eq stopped "$(json_get "$(node b state --json v1)" status)" "status after a failed restore"
	[ -z "$(losetup -j "$T/pool/ves/v1/disk.img")" ] || fail "loop device left by a failed restore"
	node b start v1
	assert_eq running "$(json_get "$(node b state --json v1)" status)" "start after a failed restore"
}
