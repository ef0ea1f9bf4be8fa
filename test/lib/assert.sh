# shellcheck shell=bash
# Assertions shared by the shell test suites (sourced).  A failed assertion
# prints "FAIL: ..." and returns 1, which ends a test run under `set -e`.

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

# wait_until SECONDS CMD...: polls CMD until it succeeds.
wait_until() {
	local deadline=$(($(date +%s) + $1))
	shift
	until "$@" >/dev/null 2>&1; do
		[ "$(date +%s)" -lt "$deadline" ] || return 1
		sleep 0.1
	done
}
