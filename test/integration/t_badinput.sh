# Bad input: one-line error, non-zero exit, nothing changed.

nothing_created() {
	local left
	left=$(ls "$T/root/ves" 2>/dev/null | tr '\n' ' ')
	assert_eq "" "$left" "VE dirs left"
}

test_invalid_names() {
	local n
	for n in "" A "a/b" "../x" ".." "-x" "a_b" "x$(printf '%064d' 0)"; do
		expect_fail hsp create --template busybox -- "$n"
		assert_match 'invalid VE name' "$ERR"
	done
	nothing_created
	expect_fail hsp start "../etc"
	expect_fail hsp exec "a/b" -- true
	expect_fail hsp destroy ".."
}

test_unknown_ve() {
	local v
	for v in start stop kill restart state destroy enter; do
		expect_fail hsp "$v" ghost
		assert_match 'ghost' "$ERR"
	done
	expect_fail hsp exec ghost -- true
	expect_fail hsp set ghost --memory 64M
	assert_match 'not found' "$ERR"
}

test_existing_ve() {
	hsp create dup --template busybox
	local before
	before=$(cat "$T/root/ves/dup/config.json")
	expect_fail hsp create dup --template busybox --memory 1G
	assert_match 'already exists' "$ERR"
	assert_eq "$before" "$(cat "$T/root/ves/dup/config.json")" "config changed"
}

test_bad_templates() {
	expect_fail hsp create t1 --template nosuch
	assert_match 'not found' "$ERR"
	expect_fail hsp create t2 --template /etc/passwd
	expect_fail hsp create t3 --template /nonexistent/dir
	mkdir -p "$T/empty"
	expect_fail hsp create t4 --template "$T/empty"
	expect_fail hsp create t5
	nothing_created
}

test_bad_limits() {
	local a
	for a in "--memory 1K" "--memory abc" "--memory -5" "--memory 1Q" "--cpus 0" "--cpus x" \
		"--cpu-weight 0" "--cpu-weight 10001" "--pids -1" "--pids 3" "--io-weight 0" \
		"--io-weight 20000" "--swap 1G" "--hostname bad_host" "--stop-signal SIGNOPE"; do
		# shellcheck disable=SC2086
		expect_fail hsp create bl --template busybox $a
	done
	nothing_created
}

test_wrong_state() {
	hsp create ws --template busybox
	expect_fail hsp stop ws
	assert_match 'not running' "$ERR"
	expect_fail hsp exec ws -- true
	assert_match 'not running' "$ERR"
	hsp start ws
	expect_fail hsp start ws
	assert_match 'already running' "$ERR"
}

test_usage_errors() {
	local rc=0
	hsp frobnicate >/dev/null 2>&1 || rc=$?
	assert_eq 2 "$rc" "unknown verb exit code"
	rc=0
	hsp create >/dev/null 2>&1 || rc=$?
	assert_eq 2 "$rc" "missing name exit code"
	rc=0
	hsp set x >/dev/null 2>&1 || rc=$?
	assert_eq 2 "$rc" "set without limits"
}

test_broken_rootfs_start_fails_cleanly() {
	hsp create br --template busybox
	rm "$(hsp mount br)/sbin/init"
	# A VE shown on the host does not start: both would write its files.
	expect_fail hsp start br
	assert_match 'is mounted on the host' "$ERR"
	hsp umount br
	expect_fail hsp start br
	assert_match 'exec init' "$ERR"
	assert_eq stopped "$(json_get "$(hsp state --json br)" status)"
	assert_no_match cgroup "$(hsp state --json br)" "state of a failed start"
	# A planted symlink cannot redirect the runtime's mounts.
	hsp create sy --template busybox
	local mnt
	mnt=$(hsp mount sy)
	rm -rf "$mnt/proc"
	ln -s / "$mnt/proc"
	hsp umount sy
	expect_fail hsp start sy
	assert_match 'must be a directory' "$ERR"
}
