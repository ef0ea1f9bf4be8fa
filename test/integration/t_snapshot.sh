# Snapshots (crash-consistent while the VE runs) and backups (a portable
# zstd tar of what the VE sees, restorable as a new VE in any pool).
# shellcheck disable=SC2016 # single-quoted scripts run inside the VE

test_snapshot_restore_returns_to_its_content() {
	new_ve s --disk 200M
	hsp exec s -- sh -c 'echo old > /kept; echo doomed > /deleted-later'
	hsp snapshot create s one
	hsp exec s -- sh -c 'echo new > /made-later; rm /deleted-later; echo changed > /kept'
	assert_match '"name": "one"' "$(hsp snapshot list --json s)" "listed"
	expect_fail hsp snapshot restore s one
	assert_match 'is running' "$ERR"
	hsp stop s
	hsp snapshot restore s one
	hsp start s
	assert_eq old "$(hsp exec s -- cat /kept)" "file changed after the snapshot"
	assert_eq doomed "$(hsp exec s -- cat /deleted-later)" "file deleted after the snapshot"
	hsp exec s -- test ! -e /made-later || fail "file made after the snapshot is still there"
	hsp snapshot delete s one
	assert_eq "[]" "$(hsp snapshot list --json s | tr -d ' \n')" "after delete"
}

test_snapshot_bad_input_changes_nothing() {
	new_ve b
	hsp snapshot create b one
	expect_fail hsp snapshot create b one
	assert_match 'already has a snapshot' "$ERR"
	expect_fail hsp snapshot create b Bad/Name
	assert_match 'invalid' "$ERR"
	expect_fail hsp snapshot create nosuch one
	assert_match 'not found' "$ERR"
	expect_fail hsp snapshot restore b two
	assert_match 'no snapshot `two`' "$ERR"
	expect_fail hsp snapshot delete b two
	expect_fail hsp snapshot frobnicate b
	assert_eq one "$(ls "$T/root/ves/b/snapshots")" "snapshots left"
}

# A record written while snapshots are taken is in one or after it, never
# torn: every snapshot's file is a run of whole records 0, 1, 2, ...
test_write_during_snapshot_is_never_torn() {
	new_ve w --disk 200M
	hsp exec w -- sh -c 'i=0; while :; do printf "%08d\n" $i >> /rec; i=$((i+1)); done' &
	local writer=$!
	wait_until 5 hsp exec w -- test -s /rec
	local n
	for n in 1 2 3 4 5 6; do
		hsp snapshot create w "s$n"
		sleep 0.2
	done
	kill "$writer" 2>/dev/null || true
	local img recs
	command -v debugfs >/dev/null || fail "debugfs (e2fsprogs) not found"
	for n in 1 2 3 4 5 6; do
		img=$T/root/ves/w/snapshots/s$n/disk.img
		# debugfs reads the image as stored, without replaying a journal:
		# a frozen snapshot must not need one.
		recs=$(debugfs -R 'cat /upper/rec' "$img" 2>/dev/null)
		[ -n "$recs" ] || fail "snapshot s$n holds no records"
		printf '%s\n' "$recs" | awk '!/^[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]$/ || $1 + 0 != NR - 1 { print "bad line " NR ": " $0; exit 1 }' ||
			fail "snapshot s$n holds a torn or missing record"
	done
}

# The VE's files survive a backup and a restore as a new VE, with owners,
# modes, setuid, hard links, symlinks and fifos.
backup_fixture() {
	hsp exec "$1" -- sh -c 'mkdir -p /data && echo payload > /data/f && chown 1000:1001 /data/f &&
		chmod 4750 /data/f && ln /data/f /data/hard && ln -s f /data/link && mkfifo /data/fifo &&
		dd if=/dev/urandom of=/data/big bs=1M count=5 2>/dev/null && md5sum /data/big > /data/sum &&
		rm /etc/hostname 2>/dev/null; true'
}

check_fixture() {
	assert_eq payload "$(hsp exec "$1" -- cat /data/f)" "content"
	assert_eq "1000:1001 4750" "$(hsp exec "$1" -- stat -c '%u:%g %a' /data/f)" "owner and mode"
	assert_eq "$(hsp exec "$1" -- stat -c %i /data/f)" "$(hsp exec "$1" -- stat -c %i /data/hard)" "hard link"
	assert_eq f "$(hsp exec "$1" -- readlink /data/link)" "symlink"
	hsp exec "$1" -- test -p /data/fifo || fail "fifo lost"
	hsp exec "$1" -- md5sum -c /data/sum >/dev/null || fail "data changed"
}

test_backup_restore_round_trip_running_and_other_pool() {
	new_ve src --disk 300M --memory 64M
	backup_fixture src
	hsp backup src >"$T/b.tar.zst"
	assert_eq "" "$(hsp snapshot list --json src | tr -d '[] \n')" "temporary snapshot removed"
	zstd -dc "$T/b.tar.zst" | tar t | grep -qx 'rootfs/data/f' || fail "not a plain tar.zst"
	hsp restore copy <"$T/b.tar.zst"
	hsp start copy
	check_fixture copy
	assert_match '"disk": 314572800' "$(hsp state --json copy)" "disk size kept"
	assert_match '"memory": 67108864' "$(hsp state --json copy)" "memory limit kept"
	mkdir -p "$T/other"
	hsp pool add other --type local --path "$T/other"
	hsp stop src
	hsp backup src >"$T/stopped.tar.zst"
	hsp restore moved --pool other <"$T/stopped.tar.zst"
	[ -f "$T/other/ves/moved/disk.img" ] || fail "not in pool other"
	hsp start moved
	check_fixture moved
}

test_restore_bad_input_leaves_nothing() {
	new_ve src
	hsp backup src >"$T/b.tar.zst"
	expect_fail hsp restore src <"$T/b.tar.zst"
	assert_match 'already exists' "$ERR"
	head -c 20000 "$T/b.tar.zst" >"$T/cut"
	expect_fail hsp restore cut <"$T/cut"
	expect_fail hsp restore junk </etc/passwd
	expect_fail hsp backup nosuch >"$T/x"
	assert_match 'not found' "$ERR"
	assert_eq src "$(ls "$T/root/ves")" "VEs after bad restores"
	assert_eq "" "$(ls "$T/root/.stage")" "staging left"
}

# An address belongs to the network a VE lands on: a restore may replace
# the backup's or drop it, and never takes one another VE has.
test_restore_replaces_or_drops_the_address() {
	hsp create src --template busybox --ip 10.89.0.2/24 --gateway 10.89.0.1
	hsp backup src >"$T/b.tar.zst"
	expect_fail hsp restore twin <"$T/b.tar.zst"
	assert_match 'already used by VE `src`' "$ERR"
	expect_fail hsp restore bad --ip 300.1.1.1/24 <"$T/b.tar.zst"
	assert_match 'invalid' "$ERR"
	expect_fail hsp restore bad --ip 10.89.0.3/24 --gateway 10.90.0.1 <"$T/b.tar.zst"
	assert_match 'outside' "$ERR"
	expect_fail hsp restore bad --no-network --ip 10.89.0.3/24 <"$T/b.tar.zst"
	assert_eq src "$(ls "$T/root/ves")" "VEs after refused restores"
	hsp restore moved --ip 10.89.0.3/24 --gateway 10.89.0.1 --bridge hspbr9 <"$T/b.tar.zst"
	local st
	st=$(hsp state --json moved)
	assert_eq 10.89.0.3/24 "$(json_get "$st" ip)" "new address"
	assert_eq hspbr9 "$(json_get "$st" bridge)" "new bridge"
	hsp restore bare --no-network <"$T/b.tar.zst"
	assert_eq "" "$(json_get "$(hsp state --json bare)" ip)" "no address"
}
