#!/bin/bash
# Stage 2 of the test VM's boot: run by busybox init (/etc/inittab) in the
# tmpfs root that /init switched into.  Mounts the usual API filesystems and a
# pure cgroup v2 hierarchy the way systemd does, checks it, runs the tests and
# powers the VM off.  The last line it prints is the marker test/vm/run.sh
# looks for:
#
#   HSP-VM-RESULT status=RC passed=N failed=N
#
# What to run comes from /hsp/run.env (written by run.sh into a small cpio
# appended to the initramfs):
#   HSP_VM_UNIT=1|0        run every /hsp/unit/test_* binary (Check)
#   HSP_VM_ITESTS="t_a.sh ..."  integration files to run ("all": every file,
#                          "": none)
#   HSP_VM_CMD=...         run this bash command instead of both
#   HSP_VM_SHELL=1         an interactive shell on the console instead
#   HSP_VM_TMP=ext4|tmpfs  what /tmp is (default: ext4 on a loop device)
#   HSP_VM_NET=CIDR        eth0's address (the NIC run.sh adds for HSP_VM_TAP)
set -u
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root LC_ALL=C TERM=${TERM:-linux}
cd /

t_start=$EPOCHREALTIME

finish() {
	# On a line of its own even after output without a final newline.
	printf '\nHSP-VM-RESULT status=%s passed=%s failed=%s\n' "$1" "$2" "$3"
	sync
	poweroff -f
	echo o >/proc/sysrq-trigger
	sleep 60
}

fatal() {
	echo "vm-guest: $*"
	finish 125 0 1
}

# elapsed T0: seconds since the $EPOCHREALTIME value T0, with 0.1 s
elapsed() {
	local now=$EPOCHREALTIME
	printf '%.1f' "$(bc <<<"scale=3; (${now/./} - ${1/./}) / 1000000")"
}

# --- API filesystems, as on a systemd host --------------------------------
mountpoint -q /proc || mount -t proc -o nosuid,nodev,noexec proc /proc || fatal "mount /proc"
mount -t sysfs -o nosuid,nodev,noexec sysfs /sys || fatal "mount /sys"
mount -t devtmpfs -o nosuid,mode=0755 devtmpfs /dev || fatal "mount /dev"
mkdir -p /dev/pts /dev/shm /dev/mqueue
mount -t devpts -o nosuid,noexec,gid=5,mode=620,ptmxmode=666 devpts /dev/pts || fatal "mount /dev/pts"
mount -t tmpfs -o nosuid,nodev,mode=1777 tmpfs /dev/shm || fatal "mount /dev/shm"
mount -t mqueue -o nosuid,nodev,noexec mqueue /dev/mqueue || fatal "mount /dev/mqueue"
ln -sfn /proc/self/fd /dev/fd
ln -sfn /proc/self/fd/0 /dev/stdin
ln -sfn /proc/self/fd/1 /dev/stdout
ln -sfn /proc/self/fd/2 /dev/stderr
mount -t tmpfs -o nosuid,nodev,mode=0755 tmpfs /run || fatal "mount /run"
# systemd's options for the unified hierarchy.
mount -t cgroup2 -o nosuid,nodev,noexec,nsdelegate,memory_recursiveprot cgroup2 /sys/fs/cgroup ||
	fatal "mount cgroup2 on /sys/fs/cgroup"
hostname hsp-vm
ip link set lo up 2>/dev/null || :

# --- what to run ------------------------------------------------------------
HSP_VM_UNIT=1
HSP_VM_ITESTS="all"
HSP_VM_CMD=
HSP_VM_SHELL=0
HSP_VM_TMP=ext4
HSP_VM_NET=
# shellcheck disable=SC1091
[ ! -f /hsp/run.env ] || . /hsp/run.env

echo "HSP-VM-BOOTED uptime=$(cut -d' ' -f1 /proc/uptime)s kernel=$(uname -r)"

# --- kernel modules (the cloud kernel builds some features as modules) ----
if [ -s /hsp/modules.load ]; then
	t0=$EPOCHREALTIME
	loaded=()
	while read -r m; do
		[ -n "$m" ] || continue
		if insmod "/lib/modules/$(uname -r)/$m"; then
			loaded+=("$(basename "$m" .ko)")
		else
			echo "vm-guest: warning: cannot load module $m"
		fi
	done </hsp/modules.load
	echo "modules loaded: ${loaded[*]} ($(elapsed "$t0") s)"
fi

# --- network: the tap run.sh was given (HSP_VM_TAP), as eth0 ---------------
if [ -n "$HSP_VM_NET" ]; then
	{ ip link set eth0 up && ip addr add "$HSP_VM_NET" dev eth0; } ||
		fatal "cannot give eth0 the address $HSP_VM_NET"
	echo "eth0: $HSP_VM_NET"
fi

# --- /tmp on ext4, as on a Debian host's root fs ---------------------------
# The tests keep their VEs under /tmp.  The root tmpfs lacks what ext4 has
# (user.* xattrs, idmapped mounts before Linux 6.3...): so /tmp is ext4 on a
# loop device over a sparse file in memory (discard gives freed blocks back).
t0=$EPOCHREALTIME
if [ "$HSP_VM_TMP" = ext4 ]; then
	if command -v mkfs.ext4 >/dev/null && [ -e /dev/loop-control ]; then
		mkdir -p /run/hsp-disk
		if ! {
			mount -t tmpfs -o size=1100m,mode=0700 tmpfs /run/hsp-disk &&
				truncate -s 1G /run/hsp-disk/tmp.img &&
				mkfs.ext4 -q -F -E nodiscard,lazy_itable_init=1,lazy_journal_init=1 \
					/run/hsp-disk/tmp.img &&
				mount -o loop,discard,noinit_itable /run/hsp-disk/tmp.img /tmp &&
				chmod 1777 /tmp
		}; then
			fatal "cannot put /tmp on ext4"
		fi
	else
		echo "vm-guest: note: no mkfs.ext4 or loop module: /tmp stays on tmpfs"
	fi
fi
echo "/tmp: $(awk '$2 == "/tmp" { t = $3 } END { print t ? t : "tmpfs (root)" }' /proc/mounts) ($(elapsed "$t0") s)"

# --- sanity: a pure cgroup v2 host -----------------------------------------
cg=/sys/fs/cgroup
fstype=$(awk -v d="$cg" '$2 == d { t = $3 } END { print t }' /proc/mounts)
echo "$cg: $fstype ($(stat -f -c %T "$cg")), controllers: $(cat "$cg/cgroup.controllers")"
[ "$fstype" = cgroup2 ] || fatal "$cg is ${fstype:-not mounted}, not cgroup2"
for c in cpu memory pids io; do
	grep -qw "$c" "$cg/cgroup.controllers" || fatal "controller $c missing from $cg/cgroup.controllers"
done
if awk 'NR > 1 && $2 != 0 { found = 1 } END { exit !found }' /proc/cgroups; then
	fatal "a cgroup v1 hierarchy is mounted: $(cat /proc/cgroups)"
fi
echo "own cgroup: $(cat /proc/self/cgroup)"
# As systemd does on a production host: the root offers these to its
# children.  The runtime creates (and enables controllers in) its own groups.
for c in cpu io memory pids; do
	echo "+$c" >"$cg/cgroup.subtree_control" || fatal "cannot enable $c in the root group"
done
echo "$cg/cgroup.subtree_control: $(cat "$cg/cgroup.subtree_control")"
echo "cpus: $(nproc), memory: $(awk '/MemTotal/ { print int($2 / 1024) " MiB" }' /proc/meminfo)"

export HSP=/hsp/bin/hsp-runtime
export TEMPLATE_STORE=/hsp/store
# Only busybox is in the store: the debian-12 cases run on the host.
export HSP_TEST_DEBIAN=no
export HSP_TEST_EUID=/hsp/bin/test-euid
# The unit tests run from /hsp/unit; the helpers live beside hsp-runtime.
export HSP_UNPACK=/hsp/bin/hsp-unpack HSP_MONITOR=/hsp/bin/hsp-monitor
# Check's default per-test timeout (4 s) is too short under TCG.
export CK_TIMEOUT_MULTIPLIER=${CK_TIMEOUT_MULTIPLIER:-10}

if [ "$HSP_VM_SHELL" = 1 ]; then
	echo "interactive shell; HSP=$HSP TEMPLATE_STORE=$TEMPLATE_STORE; exit to power off"
	setsid -c bash -l </dev/ttyS0 >/dev/ttyS0 2>&1
	finish $? 0 0
fi

if [ -n "$HSP_VM_CMD" ]; then
	echo "+ $HSP_VM_CMD"
	bash -c "$HSP_VM_CMD"
	finish $? 0 0
fi

pass=0 failn=0 status=0
# Our own logs stay out of the tests' /tmp.
logs=/run/hsp-vm
mkdir -p "$logs"

if [ "$HSP_VM_UNIT" = 1 ]; then
	t0=$EPOCHREALTIME
	for t in /hsp/unit/test_*; do
		[ -x "$t" ] || continue
		name=$(basename "$t")
		echo "=== unit: $name"
		dir=$(mktemp -d /tmp/unit.XXXXXX)
		t1=$EPOCHREALTIME
		(cd "$dir" && timeout -k 10 900 "$t") 2>&1 | tee "$logs/unit.log"
		rc=${PIPESTATUS[0]}
		echo "=== $name: exit status $rc ($(elapsed "$t1") s)"
		rm -rf "$dir"
		# Check: "100%: Checks: 12, Failures: 0, Errors: 0"
		read -r n f e < <(sed -n 's/.*Checks: \([0-9]*\), Failures: \([0-9]*\), Errors: \([0-9]*\).*/\1 \2 \3/p' "$logs/unit.log" | tail -n1)
		if [ -n "${n:-}" ]; then
			pass=$((pass + n - f - e))
			failn=$((failn + f + e))
			[ $((f + e)) -eq 0 ] || [ "$rc" -ne 0 ] || rc=1
		else
			echo "vm-guest: $name printed no Check summary (exit status $rc)"
			failn=$((failn + 1))
			[ "$rc" -ne 0 ] || rc=1
		fi
		[ "$rc" -eq 0 ] || status=1
		unset n f e
	done
	echo "=== unit tests: $pass passed, $failn failed ($(elapsed "$t0") s)"
fi

if [ -n "$HSP_VM_ITESTS" ]; then
	t0=$EPOCHREALTIME
	files=()
	if [ "$HSP_VM_ITESTS" = all ]; then
		# The debian-12 template needs debootstrap and the Debian mirror,
		# neither of which the VM has; its VEs are tested on the host.
		for f in /hsp/repo/test/integration/t_*.sh; do
			case ${f##*/} in
			t_debian.sh) echo "=== skipped ${f##*/}: needs the Debian mirror (tested on the host)" ;;
			t_cephfs.sh) echo "=== skipped ${f##*/}: needs the Ceph daemons (tested on the host)" ;;
			*) files+=("${f##*/}") ;;
			esac
		done
	else
		read -r -a files <<<"$HSP_VM_ITESTS"
	fi
	echo "=== integration: ${files[*]}"
	bash /hsp/repo/test/integration/run.sh "${files[@]}" 2>&1 | tee "$logs/integration.log"
	rc=${PIPESTATUS[0]}
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$logs/integration.log" | tail -n1)
	if [ -n "$line" ]; then
		read -r ipass _ ifail _ <<<"$line"
		pass=$((pass + ipass))
		failn=$((failn + ifail))
	else
		echo "vm-guest: the integration runner printed no summary (exit status $rc)"
		failn=$((failn + 1))
		[ "$rc" -ne 0 ] || rc=1
	fi
	[ "$rc" -eq 0 ] || status=1
	echo "=== integration tests: exit status $rc ($(elapsed "$t0") s)"
fi

echo "=== guest: tests took $(elapsed "$t_start") s"
finish "$status" "$pass" "$failn"
