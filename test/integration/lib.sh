# Shared helpers for integration tests.  Each test file is a bash script of
# test_* functions; run.sh sources it and runs every function in a fresh
# runtime instance (its own --root and --run-dir), so tests never share
# state and never touch /var/lib/hsp.

: "${HSP:?path to the hsp-runtime binary}"
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# Templates are built once per run into a shared store and linked per test.
TEMPLATE_STORE=${TEMPLATE_STORE:-/tmp/hsp-test-templates}

# HSP_TEST_POOL=cephfs runs the same tests with every VE in a CephFS pool,
# on a throw-away cluster of each test's own (test/ceph/cluster.sh).
TEST_POOL=${HSP_TEST_POOL:-local}
case $TEST_POOL in local | cephfs) ;; *) echo "HSP_TEST_POOL: local or cephfs" >&2 && exit 2 ;; esac

hsp() {
	if [ "$TEST_POOL" = cephfs ] && [ "${1:-}" = create ]; then
		shift
		"$HSP" --root "$T/root" --run-dir "$T/run" create --pool ceph "$@"
		return
	fi
	"$HSP" --root "$T/root" --run-dir "$T/run" "$@"
}

# local_pool_only: ends a test that looks at the local pool's files, with
# a note, when the suite runs on a CephFS pool (it runs on local too).
local_pool_only() {
	[ "$TEST_POOL" = local ] && return 1
	echo "    note: looks at local pool files; run in the local pass" >&2
}

# Where the VEs of this run live: the pool's directory.
pool_dir() {
	if [ "$TEST_POOL" = cephfs ]; then echo "$T/root/pools/ceph"; else echo "$T/root"; fi
}

# shellcheck source=test/lib/assert.sh
source "$REPO/test/lib/assert.sh"

ensure_templates() {
	if [ ! -f "$TEMPLATE_STORE/templates/busybox/rootfs.tar.zst" ]; then
		sh "$REPO/images/build.sh" busybox "$TEMPLATE_STORE" >/dev/null
	fi
}

setup_instance() {
	T=$(mktemp -d /tmp/hsp-it.XXXXXX)
	mkdir -p "$T/root/templates"
	cp -a "$TEMPLATE_STORE/templates/busybox" "$T/root/templates/"
	[ "$TEST_POOL" = cephfs ] || return 0
	local key
	"$REPO/test/ceph/cluster.sh" up "$T/ceph" &&
		key=$("$REPO/test/ceph/cluster.sh" authorize "$T/ceph" node1 /hsp rwps) &&
		"$HSP" --root "$T/root" --run-dir "$T/run" pool add ceph --type cephfs \
			--conf "$T/ceph/ceph.conf" --id node1 --keyring "$key" --fs-path /hsp &&
		cp -a "$TEMPLATE_STORE/templates/busybox" "$T/root/pools/ceph/templates/" ||
		echo "setup: no CephFS pool for this test" >&2
}

teardown_instance() {
	local ve p m
	for ve in $(timeout 60 "$HSP" --root "$T/root" --run-dir "$T/run" list 2>/dev/null |
		awk 'NR > 1 { print $1 }'); do
		hsp destroy --force "$ve" >/dev/null 2>&1 || true
	done
	# Whatever a broken test left: monitors of this instance and their VEs.
	for p in $(pgrep -f -- "--run-dir $T/run" 2>/dev/null); do
		kill -9 "$p" 2>/dev/null || true
	done
	if [ -d "$T/ceph" ]; then
		for m in $(awk -v t="$T/" 'index($5, t) == 1 { print $5 }' /proc/self/mountinfo | sort -r); do
			case $m in "$T/ceph"*) continue ;; esac
			umount -l "$m" 2>/dev/null || :
		done
		pkill -f -- "-c $T/ceph/ceph.conf" 2>/dev/null || :
		"$REPO/test/ceph/cluster.sh" down "$T/ceph" >/dev/null 2>&1 || :
	fi
	rm -rf "$T"
}

# new_ve NAME [create options...]: creates and starts a busybox VE.
new_ve() {
	local name=$1
	shift
	hsp create "$name" --template busybox "$@" && hsp start "$name"
}

# json_get JSON KEY: value of the first "KEY": scalar in JSON text.
json_get() {
	printf '%s' "$1" | sed -n "s/^ *\"$2\": \"\{0,1\}\([^\",]*\)\"\{0,1\},\{0,1\}$/\1/p" | head -n1
}

# The VE's cgroup directories on the host, from its state while running.
ve_cgroup_dirs() {
	hsp state --json "$1" | sed -n '/"cgroup": {/,/}/p' |
		sed -n 's/^ *"\([a-z]*\)": "\(\/.*\)",\{0,1\}$/\1 \2/p' |
		while read -r ctrl path; do
			if [ "$ctrl" = unified ]; then
				echo "/sys/fs/cgroup$path"
			else
				echo "/sys/fs/cgroup/$ctrl$path"
			fi
		done
}

# none_exist PATH...: fails naming the first that still exists.
none_exist() {
	local p
	for p in "$@"; do
		[ ! -e "$p" ] || fail "still there: $p"
	done
}

# A process that exists and is not a zombie waiting for its reaper.
proc_alive() {
	[ -r "/proc/$1/stat" ] || return 1
	local state
	state=$(sed 's/.*) \(.\).*/\1/' "/proc/$1/stat" 2>/dev/null) || return 1
	[ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

