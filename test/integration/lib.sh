# Shared helpers for integration tests.  Each test file is a bash script of
# test_* functions; run.sh sources it and runs every function in a fresh
# runtime instance (its own --root and --run-dir), so tests never share
# state and never touch /var/lib/hsp.

: "${HSP:?path to the hsp-runtime binary}"
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# Templates are built once per run into a shared store and linked per test.
TEMPLATE_STORE=${TEMPLATE_STORE:-/tmp/hsp-test-templates}

hsp() { "$HSP" --root "$T/root" --run-dir "$T/run" "$@"; }

fail() {
	echo "    FAIL: $*" >&2
	return 1
}

# assert_eq EXPECTED ACTUAL [WHAT]
assert_eq() {
	[ "$1" = "$2" ] || fail "${3:-value}: expected '$1', got '$2'"
}

assert_match() {
	printf '%s' "$2" | grep -Eq -- "$1" || fail "${3:-output} does not match /$1/: $2"
}

assert_no_match() {
	if printf '%s' "$2" | grep -Eq -- "$1"; then fail "${3:-output} matches /$1/: $2"; fi
}

# expect_fail CMD...: the command must exit non-zero with a one-line message
# on stderr; its stderr is left in $ERR.
expect_fail() {
	local rc=0
	ERR=$("$@" 2>&1 >/dev/null) || rc=$?
	[ "$rc" -ne 0 ] || fail "expected failure: $*"
	[ -n "$ERR" ] || fail "no error message from: $*"
	[ "$(printf '%s\n' "$ERR" | wc -l)" -eq 1 ] || fail "error is not one line: $ERR"
}

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

# wait_until SECONDS CMD...: polls CMD until it succeeds.
wait_until() {
	local deadline=$(($(date +%s) + $1))
	shift
	until "$@" >/dev/null 2>&1; do
		[ "$(date +%s)" -lt "$deadline" ] || return 1
		sleep 0.1
	done
}
