# VE lifecycle: create, start, exec, stop, kill, restart, reboot/poweroff
# from inside, monitor detachment, destroy, live limits.

ve_state() { hsp state --json "$1"; }
ve_status() { json_get "$(ve_state "$1")" status; }
is_status() { [ "$(ve_status "$1")" = "$2" ]; }


test_create_start_exec_stop() {
	hsp create web --template busybox --hostname web.example
	assert_eq stopped "$(ve_status web)" "status after create"
	hsp start web
	local st init mon
	st=$(ve_state web)
	assert_eq running "$(json_get "$st" status)" "status after start"
	init=$(json_get "$st" init_pid)
	mon=$(json_get "$st" monitor_pid)
	[ "$init" -gt 1 ] || fail "init pid $init"
	[ "$mon" -gt 1 ] || fail "monitor pid $mon"
	kill -0 "$init" && kill -0 "$mon"
	assert_eq "hello" "$(hsp exec web -- echo hello)" "exec output"
	assert_eq "web.example" "$(hsp exec web -- hostname)" "hostname"
	local cgs
	cgs=$(ve_cgroup_dirs web)
	[ -n "$cgs" ] || fail "no cgroup while running"
	# shellcheck disable=SC2086
	ls -d $cgs >/dev/null || fail "cgroup dirs missing: $cgs"
	hsp stop web --timeout 5
	assert_eq stopped "$(ve_status web)" "status after stop"
	if proc_alive "$init"; then fail "init $init survived stop"; fi
	if proc_alive "$mon"; then fail "monitor $mon survived stop"; fi
	# shellcheck disable=SC2086
	none_exist $cgs
	# Nothing runs with the VE's ids any more.
	local base
	base=$(hsp state --json web | sed -n 's/.*"base": \([0-9]*\).*/\1/p')
	assert_eq "" "$(ps -eo uid= | awk -v b="$base" '$1 >= b && $1 < b + 65536')" "VE processes"
}

test_exec_exit_codes() {
	new_ve ex
	local rc=0
	hsp exec ex -- sh -c 'exit 7' || rc=$?
	assert_eq 7 "$rc" "exit status"
	rc=0
	hsp exec ex -- sh -c 'kill -TERM $$' || rc=$?
	assert_eq 143 "$rc" "status of a signalled command"
	rc=0
	hsp exec ex -- /no/such/cmd 2>/dev/null || rc=$?
	assert_eq 127 "$rc" "missing command"
	assert_eq "in" "$(echo in | hsp exec ex -- cat)" "stdin passes through"
	assert_eq "1000 1001" "$(hsp exec --user 1000:1001 ex -- sh -c 'echo $(id -u) $(id -g)')" \
		"--user"
	assert_eq "/tmp" "$(hsp exec --cwd /tmp ex -- pwd)" "--cwd"
}

test_exec_tty() {
	new_ve tt
	# A pty from the VE's own devpts is the command's terminal.
	local out
	out=$(script -qec "$HSP --root $T/root --run-dir $T/run exec -t tt -- sh -c 'tty; exit 3'" /dev/null </dev/null | tr -d '\r') || true
	assert_match '/dev/pts/[0-9]+' "$out" "tty inside VE"
	local rc=0
	script -qec "$HSP --root $T/root --run-dir $T/run exec -t tt -- sh -c 'exit 3'" /dev/null </dev/null >/dev/null || rc=$?
	# script(1) returns the child's status
	assert_eq 3 "$rc" "exit status through the pty"
}

test_monitor_is_detached() {
	new_ve mon
	local mon ppid
	mon=$(json_get "$(ve_state mon)" monitor_pid)
	ppid=$(ps -o ppid= -p "$mon" | tr -d ' ')
	[ "$ppid" != "$$" ] || fail "monitor is a child of the caller"
	# Not in the caller's session, so the caller's terminal cannot kill it.
	[ "$(ps -o sid= -p "$mon" | tr -d ' ')" != "$(ps -o sid= -p $$ | tr -d ' ')" ] ||
		fail "monitor shares the caller's session"
	# It survives the caller's whole process group being killed.
	hsp exec mon -- true
	assert_eq running "$(ve_status mon)"
	proc_alive "$mon" || fail "monitor gone"
}

test_reboot_inside_restarts() {
	new_ve rb
	local init1 init2
	init1=$(json_get "$(ve_state rb)" init_pid)
	hsp exec rb -- reboot
	wait_until 15 sh -c "[ \"\$($HSP --root $T/root --run-dir $T/run state --json rb | grep -c '\"restarts\": 1')\" = 1 ]" ||
		fail "no restart recorded"
	wait_until 5 is_status rb running || fail "not running after reboot"
	init2=$(json_get "$(ve_state rb)" init_pid)
	[ "$init1" != "$init2" ] || fail "init pid unchanged after reboot"
	assert_eq "ok" "$(hsp exec rb -- echo ok)" "exec after reboot"
}

test_poweroff_inside_stops() {
	new_ve po
	local cgs
	cgs=$(ve_cgroup_dirs po)
	hsp exec po -- poweroff
	wait_until 15 is_status po stopped || fail "still $(ve_status po) after poweroff"
	# shellcheck disable=SC2086
	none_exist $cgs
}

test_kill_and_restart() {
	new_ve kr
	local init1
	init1=$(json_get "$(ve_state kr)" init_pid)
	hsp restart kr --timeout 5
	assert_eq running "$(ve_status kr)"
	[ "$(json_get "$(ve_state kr)" init_pid)" != "$init1" ] || fail "restart kept the same init"
	hsp kill kr
	assert_eq stopped "$(ve_status kr)"
	hsp start kr
	assert_eq running "$(ve_status kr)"
}

test_stop_timeout_kills_stubborn_init() {
	# An init that ignores its stop signal is killed after the timeout.
	hsp create st --template busybox --init /stubborn-init
	local mnt
	mnt=$(hsp mount st)
	printf '#!/bin/sh\ntrap "" TERM USR2 HUP INT\nwhile :; do sleep 1; done\n' \
		>"$mnt/stubborn-init"
	chmod 755 "$mnt/stubborn-init"
	hsp umount st
	hsp start st
	local start end cgs
	cgs=$(ve_cgroup_dirs st)
	start=$(date +%s)
	hsp stop st --timeout 1
	end=$(date +%s)
	[ $((end - start)) -le 4 ] || fail "stop took $((end - start)) s"
	assert_eq stopped "$(ve_status st)"
	# shellcheck disable=SC2086
	none_exist $cgs
}

test_run_foreground_status() {
	hsp create fg --template busybox
	local rc=0
	hsp run fg -- /bin/sh -c 'exit 5' || rc=$?
	assert_eq 5 "$rc" "run exit status"
	assert_eq stopped "$(ve_status fg)"
	# While it runs it is visible like any VE; afterwards nothing is left.
	hsp run fg -- /bin/sleep 2 &
	local job=$! cgs
	wait_until 5 is_status fg running || fail "run not visible as running"
	cgs=$(ve_cgroup_dirs fg)
	[ -n "$cgs" ] || fail "no cgroups while running"
	assert_eq ok "$(hsp exec fg -- echo ok)" "exec into a foreground VE"
	wait "$job"
	# shellcheck disable=SC2086
	none_exist $cgs
}

test_distinct_id_ranges() {
	new_ve a1
	new_ve a2
	local m1 m2
	m1=$(hsp exec a1 -- cat /proc/self/uid_map | awk '{print $1, $2, $3}')
	m2=$(hsp exec a2 -- cat /proc/self/gid_map | awk '{print $1, $2, $3}')
	assert_match '^0 [0-9]+ 65536$' "$m1" "uid_map"
	assert_match '^0 [0-9]+ 65536$' "$m2" "gid_map"
	local b1 b2
	b1=$(echo "$m1" | cut -d' ' -f2)
	b2=$(echo "$m2" | cut -d' ' -f2)
	[ $((b1 - b2)) -ge 65536 ] || [ $((b2 - b1)) -ge 65536 ] || fail "ranges overlap: $b1 $b2"
	# Files in the VE are owned by its shifted ids on the host, through
	# its idmapped root, and by its root inside.
	local pid1
	pid1=$(json_get "$(hsp state --json a1)" init_pid)
	assert_eq "$b1" "$(stat -c %u "/proc/$pid1/root/bin/busybox")" "rootfs owner seen from the host"
	assert_eq 0 "$(hsp exec a1 -- stat -c %u /bin/busybox)" "rootfs owner inside"
	# A destroyed VE's range is free again: the lowest free range is taken.
	hsp destroy --force a1
	hsp create a3 --template busybox
	local b3
	b3=$(hsp state --json a3 | sed -n 's/.*"base": \([0-9]*\).*/\1/p')
	if [ "$b3" -gt "$b1" ]; then
		# Only another VE (a concurrent runtime on this host) may hold it.
		local owner
		owner=$(cat "${HSP_ID_REGISTRY:-/var/lib/hsp-ids}/$b1" 2>/dev/null) ||
			fail "range $b1 free but not reused (got $b3)"
		[ "$owner" != "$T/root/ves/a1" ] || fail "range $b1 still recorded for a1"
	fi
}

test_destroy() {
	new_ve d1
	local cgs
	cgs=$(ve_cgroup_dirs d1)
	expect_fail hsp destroy d1
	assert_match "running" "$ERR"
	hsp destroy --force d1
	[ ! -e "$T/root/ves/d1" ] || fail "VE dir left"
	[ ! -e "$T/run/d1" ] || fail "run dir left"
	expect_fail hsp state d1
	assert_match "not found" "$ERR"
	# shellcheck disable=SC2086
	none_exist $cgs
}

test_list() {
	hsp create l1 --template busybox
	new_ve l2
	local out
	out=$(hsp list)
	assert_match 'l1 +stopped' "$out" "list"
	assert_match 'l2 +running' "$out" "list"
	out=$(hsp list --json)
	assert_match '"name": "l1"' "$out" "list --json"
	assert_match '"status": "running"' "$out" "list --json"
}

test_state_reports_limits_and_usage() {
	new_ve su --memory 96M --pids 100 --cpus 1.5 --cpu-weight 200
	local st
	st=$(ve_state su)
	assert_match '"memory": 100663296' "$st" "memory limit"
	assert_match '"pids": 100' "$st" "pids limit"
	assert_match '"cpus": 1.5' "$st" "cpus"
	assert_match '"cpu_weight": 200' "$st" "cpu weight"
	local used
	used=$(printf '%s' "$st" | sed -n '/"usage"/,/}/p' | sed -n 's/.*"pids": \([0-9]*\).*/\1/p')
	[ "$used" -ge 1 ] || fail "usage pids $used"
}

test_set_live_and_persisted() {
	new_ve sl --memory 64M --pids 50
	hsp set sl --memory 128M --pids 80
	local st
	st=$(ve_state sl)
	assert_match '"memory": 134217728' "$st" "memory after set"
	assert_match '"pids": 80' "$st" "pids after set"
	# The kernel holds the new values (seen from inside, read-only).
	assert_eq 80 "$(hsp exec sl -- cat /sys/fs/cgroup/pids/pids.max 2>/dev/null ||
		hsp exec sl -- cat /sys/fs/cgroup/pids.max)" "pids.max inside"
	hsp restart sl --timeout 5
	assert_eq 80 "$(hsp exec sl -- cat /sys/fs/cgroup/pids/pids.max 2>/dev/null ||
		hsp exec sl -- cat /sys/fs/cgroup/pids.max)" "pids.max after restart"
	# A refused live change leaves the stored limits untouched.
	expect_fail hsp set sl --memory 1K
	assert_match '"memory": 134217728' "$(ve_state sl)" "memory after refused set"
}

test_monitor_death_takes_the_ve_down() {
	new_ve md
	local st mon init cgs
	st=$(ve_state md)
	mon=$(json_get "$st" monitor_pid)
	init=$(json_get "$st" init_pid)
	kill -9 "$mon"
	# Never a VE running unsupervised, where a second start would run it twice.
	wait_until 5 sh -c "! [ -d /proc/$init ] || grep -q '^State:.*Z' /proc/$init/status" ||
		fail "init $init outlived its monitor"
	assert_eq stopped "$(ve_status md)"
	hsp start md
	assert_eq ok "$(hsp exec md -- echo ok)" "start after monitor death"
}

test_no_cgroups_mode() {
	hsp create nc --template busybox
	local rc=0
	hsp --no-cgroups run nc -- /bin/sh -c 'exit 4' || rc=$?
	assert_eq 4 "$rc" "run status without cgroups"
	hsp --no-cgroups start nc
	assert_eq "" "$(hsp exec nc -- ls /sys/fs/cgroup)" "cgroup tree inside"
	assert_no_match '"cgroup"' "$(hsp state --json nc)" "state without cgroups"
	hsp stop nc --timeout 5
	assert_eq stopped "$(ve_status nc)"
	# Limits cannot be honoured without cgroups: refused, not ignored.
	hsp create ncl --template busybox --memory 64M
	expect_fail hsp --no-cgroups start ncl
	assert_match 'limits' "$ERR"
	assert_eq stopped "$(ve_status ncl)"
}

test_template_paths() {
	# A .tar.zst of a root file system, and a plain directory.
	hsp create tz --template "$T/root/templates/busybox/rootfs.tar.zst"
	mkdir -p "$T/dir-rootfs"
	tar --zstd -xf "$T/root/templates/busybox/rootfs.tar.zst" -C "$T/dir-rootfs"
	hsp create td --template "$T/dir-rootfs" --init /sbin/init --stop-signal SIGUSR2
	local v
	for v in tz td; do
		hsp start "$v"
		assert_eq "$v" "$(hsp exec "$v" -- hostname)" "hostname of $v"
		assert_eq 0 "$(hsp exec "$v" -- id -u)" "root in $v"
	done
	# The directory's files are copied, shifted, not shared.
	assert_eq 0 "$(stat -c %u "$T/dir-rootfs/bin/busybox")" "source left as it was"
	hsp exec td -- touch /only-in-td
	[ ! -e "$T/dir-rootfs/only-in-td" ] || fail "VE wrote into its template directory"
	# --stop-signal SIGUSR2 is busybox's poweroff: a clean stop, not a kill.
	hsp stop td --timeout 8
	assert_match '"last_exit": "signal 2"' "$(hsp state --json td)" "init ended by poweroff"
}

test_enter_interactive_shell() {
	new_ve en --hostname enter-me
	local out
	out=$(printf 'hostname\necho "uid=$(id -u)"\nexit\n' |
		script -qec "$HSP --root $T/root --run-dir $T/run enter en" /dev/null | tr -d '\r')
	assert_match 'enter-me' "$out" "hostname typed into the shell"
	assert_match 'uid=0' "$out" "root shell"
}
