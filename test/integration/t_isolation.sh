# Isolation, each property checked from inside a VE.

in_ve() { hsp exec iso -- sh -c "$1"; }

test_namespaces_differ_from_host() {
	new_ve iso
	local ns host inside
	for ns in pid mnt uts ipc net cgroup user; do
		host=$(readlink /proc/self/ns/$ns)
		inside=$(in_ve "readlink /proc/1/ns/$ns")
		[ -n "$inside" ] || fail "no $ns namespace link inside"
		[ "$host" != "$inside" ] || fail "$ns namespace shared with host ($host)"
	done
	# Two VEs share none either.
	new_ve iso2
	for ns in pid mnt uts ipc net cgroup user; do
		[ "$(in_ve "readlink /proc/1/ns/$ns")" != \
			"$(hsp exec iso2 -- readlink /proc/1/ns/$ns)" ] || fail "$ns shared between VEs"
	done
}

test_user_namespace_root() {
	new_ve iso
	assert_eq "0" "$(in_ve 'id -u')" "uid inside"
	assert_match '^ *0 +[0-9]+ +65536$' "$(in_ve 'cat /proc/self/uid_map')" "uid_map"
	# setgroups stays allowed: sshd, su and initgroups need it.
	assert_eq "allow" "$(in_ve 'cat /proc/self/setgroups')" "setgroups"
	# Host processes are invisible; init is PID 1.
	assert_eq "init" "$(in_ve 'cat /proc/1/comm')" "pid 1"
	local n
	n=$(in_ve 'ls -d /proc/[0-9]* | wc -l')
	[ "$n" -lt 10 ] || fail "$n processes visible inside"
	if in_ve "test -d /proc/$$"; then fail "host pid $$ visible"; fi
}

test_pivot_root_detaches_host() {
	hsp create iso --template busybox
	echo marker >"$(hsp mount iso)/marker"
	hsp umount iso
	hsp start iso
	assert_eq marker "$(in_ve 'cat /marker')" "VE root"
	# No mount point names a host path (field 4, the source path within
	# a file system, does for any bind mount and is not a way in).
	local mp
	mp=$(in_ve 'cat /proc/self/mountinfo' | awk '{print $5}')
	assert_no_match "$T|/work|/var/lib|/tmp/" "$mp" "host paths among mount points"
	assert_eq "/" "$(in_ve 'readlink /proc/1/root')" "init root"
	# No way up from /.
	assert_eq "$(in_ve 'ls -di / | cut -d" " -f1')" "$(in_ve 'ls -di /.. | cut -d" " -f1')" "/.."
}

test_proc_masked_and_readonly() {
	new_ve iso
	local f
	for f in kcore keys timer_list sched_debug; do
		if in_ve "test -e /proc/$f"; then
			assert_eq 0 "$(in_ve "wc -c </proc/$f")" "/proc/$f content"
		fi
	done
	assert_eq "" "$(in_ve 'ls /proc/acpi 2>/dev/null')" "/proc/acpi"
	if in_ve 'test -e /proc/sysrq-trigger && echo h >/proc/sysrq-trigger' 2>/dev/null; then
		fail "/proc/sysrq-trigger writable"
	fi
	if in_ve 'echo 1 >/proc/sys/kernel/panic' 2>/dev/null; then fail "/proc/sys writable"; fi
	# /proc/sys/net belongs to the VE's own network namespace.
	local host_fwd
	host_fwd=$(cat /proc/sys/net/ipv4/ip_forward)
	in_ve 'echo 1 >/proc/sys/net/ipv4/ip_forward' || fail "/proc/sys/net not writable"
	assert_eq 1 "$(in_ve 'cat /proc/sys/net/ipv4/ip_forward')"
	assert_eq "$host_fwd" "$(cat /proc/sys/net/ipv4/ip_forward)" "host ip_forward"
	# Even after VE root removes the masks, the kernel keeps host data out
	# of reach: kcore needs host CAP_SYS_RAWIO, sysctls belong to host root.
	in_ve 'umount /proc/kcore /proc/sys 2>/dev/null; true'
	if in_ve 'head -c 1 /proc/kcore >/dev/null 2>&1'; then fail "kcore readable"; fi
	if in_ve 'echo 1 >/proc/sys/kernel/panic' 2>/dev/null; then fail "kernel sysctl writable"; fi
	if in_ve 'echo h >/proc/sysrq-trigger' 2>/dev/null; then fail "sysrq-trigger writable"; fi
}

test_sys_readonly_and_dev_minimal() {
	new_ve iso
	if in_ve 'touch /sys/kernel/x' 2>/dev/null; then fail "/sys writable"; fi
	assert_match 'sysfs on /sys type sysfs \(ro' "$(in_ve mount)" "sysfs mount"
	local devs
	devs=$(in_ve 'ls /dev | sort | tr "\n" " "')
	assert_eq "console fd full mqueue null ptmx pts random shm stderr stdin stdout tty urandom zero " \
		"$devs" "/dev entries"
	assert_match 'devpts on /dev/pts type devpts .*ptmxmode=666' "$(in_ve mount)" "devpts"
	assert_match 'tmpfs on /dev/shm' "$(in_ve mount)" "shm"
	assert_match 'mqueue on /dev/mqueue' "$(in_ve mount)" "mqueue"
	assert_eq "abc" "$(in_ve 'echo abc >/dev/shm/x; cat /dev/shm/x')" "shm usable"
	assert_eq 16 "$(in_ve 'head -c 16 /dev/urandom | wc -c')" "urandom"
}

test_no_inherited_fds_or_cwd() {
	new_ve iso
	local fds
	# Open extra descriptors in the caller: none may reach the VE.
	fds=$(cd /tmp && exec 7>/dev/null 8</etc/hostname && hsp exec iso -- ls /proc/self/fd | sort -n | tr '\n' ' ')
	assert_eq "0 1 2 3 " "$fds" "fds of an exec'd command (3 is ls's own)"
	assert_eq "/" "$(cd /tmp && hsp exec iso -- readlink /proc/self/cwd)" "cwd"
	local initfds
	initfds=$(in_ve 'ls -l /proc/1/fd' | awk 'NR > 1 {print $NF}' | sort -u | tr '\n' ' ')
	assert_match '^(/dev/(null|console) )+$' "$initfds" "init's fds"
}

test_capabilities_and_seccomp() {
	new_ve iso
	local bnd
	bnd=$(in_ve 'grep CapBnd /proc/self/status' | awk '{print $2}')
	bnd=$((16#$bnd))
	# Dropped: sys_module(16) sys_rawio(17) sys_time(25) mac_admin(33); kept:
	# sys_admin(21) net_admin(12) setuid(7) chown(0) mknod(27).
	local c
	for c in 16 17 25 33; do
		[ $(((bnd >> c) & 1)) -eq 0 ] || fail "capability $c in bounding set"
	done
	for c in 0 7 12 21 27; do
		[ $(((bnd >> c) & 1)) -eq 1 ] || fail "capability $c missing"
	done
	assert_eq 2 "$(in_ve 'grep ^Seccomp: /proc/self/status' | awk '{print $2}')" "seccomp mode"
	assert_eq 0 "$(in_ve 'grep ^NoNewPrivs: /proc/self/status' | awk '{print $2}')" "no_new_privs"
}

test_setuid_works_inside() {
	# Static, so it runs in any VE; prebuilt where there is no compiler.
	if [ -n "${HSP_TEST_EUID:-}" ]; then
		cp "$HSP_TEST_EUID" "$T/euid"
	else
		gcc -static -O -o "$T/euid" "$REPO/test/integration/helpers/euid.c" ||
			fail "cannot build the setuid helper"
	fi
	hsp create iso --template busybox
	local mnt
	mnt=$(hsp mount iso)
	cp "$T/euid" "$mnt/bin/euid"
	# Owned by the VE's root (uid 0 as stored) and setuid.
	chown 0:0 "$mnt/bin/euid"
	chmod 4755 "$mnt/bin/euid"
	# The host's view of a VE is nosuid: its setuid files give nothing here.
	assert_match nosuid "$(awk -v m="$mnt" '$5 == m { print $6 }' /proc/self/mountinfo)" "host mount options"
	hsp umount iso
	hsp start iso
	assert_eq "1000 0" "$(hsp exec --user 1000 iso -- /bin/euid)" "setuid root inside"
}

test_device_nodes_refused() {
	new_ve iso
	if in_ve 'mknod /tmp/sda b 8 0' 2>/dev/null; then fail "mknod block device"; fi
	if in_ve 'mknod /tmp/kvm c 10 232' 2>/dev/null; then fail "mknod /dev/kvm"; fi
	if in_ve 'mknod /tmp/mem c 1 1' 2>/dev/null; then fail "mknod /dev/mem"; fi
	hsp stop iso
	[ ! -e "$(hsp mount iso)/tmp/kvm" ] || fail "device node created"
	hsp umount iso
}

test_cannot_lift_limits_or_escape_via_cgroups() {
	new_ve iso --memory 64M --pids 40
	local mnt
	mnt=$(in_ve 'mount' | grep ' /sys/fs/cgroup' | head -n1)
	assert_match '\(ro' "$mnt" "cgroupfs read-only"
	# Writing limits fails directly, after a remount, and on a fresh mount.
	in_ve 'for f in /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/pids.max; do
		[ -e $f ] && echo max >$f; done' 2>/dev/null && fail "pids.max writable" || true
	in_ve 'mount -o remount,rw /sys/fs/cgroup/pids 2>/dev/null || mount -o remount,rw /sys/fs/cgroup 2>/dev/null
		for f in /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/pids.max; do
		[ -e $f ] && echo max >$f && exit 0; done; exit 1' 2>/dev/null && fail "pids.max writable after remount" || true
	in_ve 'mkdir -p /tmp/cg && (mount -t cgroup -o pids cgroup /tmp/cg || mount -t cgroup2 none /tmp/cg) 2>/dev/null &&
		echo max >/tmp/cg/pids.max' 2>/dev/null && fail "pids.max writable on a new mount" || true
	in_ve 'mkdir -p /tmp/rc && mount -t cgroup -o memory cgroup /tmp/rc 2>/dev/null &&
		echo /tmp/x >/tmp/rc/release_agent' 2>/dev/null && fail "release_agent writable" || true
	assert_match '"pids": 40' "$(hsp state --json iso)" "limit unchanged"
	local d
	d=$(ve_cgroup_dirs iso | grep -E '/pids/|^/sys/fs/cgroup/[^/]*hsp' | head -n1)
	assert_eq 40 "$(cat "$d/pids.max")" "host pids.max in $d"
}

test_runtime_binary_unreachable_during_exec() {
	# The runc CVE-2019-5736 class: while a joined process is still the
	# host's runtime binary, VE root tries to open every /proc/*/exe for
	# writing.  Until exec it is non-dumpable and runs as the VE's root,
	# so neither the open nor a write to the host binary may succeed.
	new_ve iso
	local sum_before
	sum_before=$(sha256sum "$HSP" | cut -d' ' -f1)
	hsp exec iso -- sh -c 'end=$(($(date +%s) + 4)); while [ $(date +%s) -lt $end ]; do
		for e in /proc/[0-9]*/exe; do
			t=$(readlink "$e" 2>/dev/null) || continue
			case "$t" in /bin/*|/sbin/*|/usr/*) continue;; esac
			echo "SEEN $t"
			if (: >>"$e") 2>/dev/null; then echo "OPENED $t"; fi
		done; done >/tmp/attack.log 2>&1' &
	local attacker=$! i
	sleep 0.5
	# Each exec waits 300 ms just before execve, still the runtime binary.
	for i in $(seq 8); do HSP_TEST_EXEC_PAUSE_MS=300 hsp exec iso -- true; done
	wait "$attacker"
	assert_eq "" "$(hsp exec iso -- cat /tmp/attack.log)" "attacker results"
	assert_eq "$sum_before" "$(sha256sum "$HSP" | cut -d' ' -f1)" "runtime binary"
}
