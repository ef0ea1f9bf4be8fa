# Shared helpers for integration tests.  Each test file is a bash script of
# test_* functions; run.sh sources it and runs every function in a fresh
# runtime instance (its own --root and --run-dir), so tests never share
# state and never touch /var/lib/hsp.

: "${HSP:?path to the hsp-runtime binary}"
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# Templates are built once per run into a shared store and linked per test.
TEMPLATE_STORE=${TEMPLATE_STORE:-/tmp/hsp-test-templates}

hsp() { "$HSP" --root "$T/root" --run-dir "$T/run" "$@"; }

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
}

teardown_instance() {
	local ve p
	for ve in $(ls "$T/root/ves" 2>/dev/null); do
		hsp destroy --force "$ve" >/dev/null 2>&1 || true
	done
	# Whatever a broken test left: monitors of this instance and their VEs.
	for p in $(pgrep -f -- "--run-dir $T/run" 2>/dev/null); do
		kill -9 "$p" 2>/dev/null || true
	done
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

