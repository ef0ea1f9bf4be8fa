#!/bin/bash
# Tests of test/ceph/cluster.sh against real Ceph daemons: what a test that
# uses the cluster relies on.  Runs every test_* function (or those named on
# the command line) in its own scratch directory, prints "ok"/"FAIL" per
# test like test/integration/run.sh, and exits non-zero on any failure.
# Needs root and the Ceph packages (scripts/install-deps.sh).
set -u
SELF=$(realpath "$0")
cd "$(dirname "$SELF")"
CLUSTER=$PWD/cluster.sh

# shellcheck source=test/lib/assert.sh
source "$PWD/../lib/assert.sh"

# note TEXT: shown under the test's result line.
note() { echo "     $*" >>"$T.notes"; }

elapsed() { echo "$(($1 / 1000)).$(printf '%03d' $(($1 % 1000)))"; }
now_ms() { echo $((${EPOCHREALTIME/./} / 1000)); }

# Processes (not zombies) with TEXT anywhere in their command line.
procs_with() {
	local f p st
	# The pattern goes through a file, or grep would find itself.
	grep -lzF -f <(printf '%s\n' "$1") /proc/[0-9]*/cmdline 2>/dev/null | while read -r f; do
		p=${f#/proc/}
		p=${p%/cmdline}
		read -r st 2>/dev/null <"/proc/$p/stat" || continue
		st=${st##*) }
		case ${st%% *} in Z | X) ;; *) [ "$p" = "$BASHPID" ] || echo "$p" ;; esac
	done
}

# Mount points at or below PATH.
mounts_below() {
	awk -v d="$1" '$5 == d || index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo
}

# no_trace DIR: nothing of the cluster in DIR is left.
no_trace() {
	local p
	p=$(procs_with "$1" | tr '\n' ' ')
	[ -z "$p" ] || fail "processes of $1 left: $p $(ps -o args= -p "${p%% *}")"
	[ ! -e "$1" ] || fail "$1 still exists"
}

# up NAME [ARGS...]: starts a cluster in $T/NAME.
up() {
	local d=$T/$1
	shift
	"$CLUSTER" up "$d" "$@"
}

# mnt NAME: a fresh mount point directory.
mnt() {
	mkdir -p "$T/mnt/$1"
	echo "$T/mnt/$1"
}

test_up_write_read_across_mounts() {
	local t0 t1 a b
	t0=$(now_ms)
	up c
	t1=$(now_ms)
	note "up took $(elapsed $((t1 - t0))) s"
	[ -f "$T/c/ceph.conf" ] || fail "no ceph.conf"
	[ -f "$T/c/keyring" ] || fail "no keyring"
	a=$(mnt a)
	b=$(mnt b)
	"$CLUSTER" mount "$T/c" "$a"
	"$CLUSTER" mount "$T/c" "$b"
	[ -d "$a/hsp" ] || fail "no /hsp in the file system"
	head -c 1048576 /dev/urandom >"$T/data"
	cp "$T/data" "$a/hsp/file"
	echo hello >"$a/hsp/small"
	# b is its own ceph-fuse process: another client of the MDS.
	assert_eq "$(cksum <"$T/data")" "$(cksum <"$b/hsp/file")" "file read through the second mount"
	assert_eq hello "$(cat "$b/hsp/small")" "small file read through the second mount"
	assert_eq 2 "$(ps -o pid= -p "$(cat "$T"/c/run/m.*.pid | paste -sd,)" | wc -l)" "ceph-fuse processes"
	# Mounted with dev,suid (ceph-fuse's default is nodev,nosuid).
	assert_eq "fuse.ceph-fuse" "$(awk -v m="$a" '$5 == m { print $(NF - 2) }' /proc/self/mountinfo)" \
		"file system type"
	if awk -v m="$a" '$5 == m { print $6 }' /proc/self/mountinfo | grep -Eq 'nosuid|nodev'; then
		fail "mounted nosuid or nodev"
	fi
	"$CLUSTER" umount "$T/c" "$a"
	"$CLUSTER" umount "$T/c" "$b"
	[ -z "$(mounts_below "$T/mnt")" ] || fail "still mounted: $(mounts_below "$T/mnt")"
	t0=$(now_ms)
	"$CLUSTER" down "$T/c"
	t1=$(now_ms)
	note "down took $(elapsed $((t1 - t0))) s"
	no_trace "$T/c"
}

test_restricted_client() {
	local kr a b
	up c
	kr=$("$CLUSTER" authorize "$T/c" node1 /hsp/node1 rwps)
	assert_eq "$T/c/client.node1.keyring" "$kr" "printed keyring path"
	assert_match '^\[client\.node1\]' "$(head -n 1 "$kr")" "keyring"
	a=$(mnt a)
	b=$(mnt b)
	expect_fail "$CLUSTER" mount "$T/c" "$a" --id node1 --keyring "$kr"
	assert_match 'Operation not permitted' "$ERR" "mounting / as node1"
	[ -z "$(mounts_below "$a")" ] || fail "failed mount left a mount"
	"$CLUSTER" mount "$T/c" "$a" --id node1 --keyring "$kr" --path /hsp/node1
	echo from-node1 >"$a/f"
	"$CLUSTER" mount "$T/c" "$b"
	assert_eq from-node1 "$(cat "$b/hsp/node1/f")" "node1's file seen by admin"
	# Another node's directory is out of reach for node1.
	kr=$("$CLUSTER" authorize "$T/c" node2 /hsp/node2)
	assert_match 'path=/hsp/node2' "$(cat "$kr")" "node2 caps"
	expect_fail "$CLUSTER" mount "$T/c" "$(mnt c)" --id node1 --path /hsp/node2
	assert_match 'Operation not permitted' "$ERR" "mounting /hsp/node2 as node1"
	"$CLUSTER" down "$T/c"
	no_trace "$T/c"
	[ -z "$(mounts_below "$T/mnt")" ] || fail "still mounted: $(mounts_below "$T/mnt")"
}

test_clusters_side_by_side() {
	local pb pc t0 t1 b c port
	# Two ups at the same moment, automatic ports.
	t0=$(now_ms)
	up b &
	pb=$!
	up c &
	pc=$!
	wait $pb || fail "up b failed"
	wait $pc || fail "up c failed"
	t1=$(now_ms)
	note "two concurrent ups took $(elapsed $((t1 - t0))) s"
	[ "$(grep '^mon host' "$T/b/ceph.conf")" != "$(grep '^mon host' "$T/c/ceph.conf")" ] ||
		fail "same mon address for both clusters"
	[ "$(grep '^fsid' "$T/b/ceph.conf")" != "$(grep '^fsid' "$T/c/ceph.conf")" ] ||
		fail "same fsid for both clusters"
	b=$(mnt b)
	c=$(mnt c)
	"$CLUSTER" mount "$T/b" "$b"
	"$CLUSTER" mount "$T/c" "$c"
	echo in-b >"$b/hsp/only-b"
	echo in-c >"$c/hsp/only-c"
	[ ! -e "$c/hsp/only-b" ] || fail "b's file shows up in c"
	[ ! -e "$b/hsp/only-c" ] || fail "c's file shows up in b"
	# A third on explicit ports, and keys do not cross clusters.
	# (Below the automatic range; varied so that test runs can overlap.)
	port=$((19000 + $$ % 60 * 16))
	up d --port-base $port
	assert_match "^mon host = v2:127\\.0\\.0\\.1:$port\$" "$(grep '^mon host' "$T/d/ceph.conf")" "d's mon"
	expect_fail "$CLUSTER" mount "$T/d" "$(mnt d)" --keyring "$T/b/keyring"
	# Stopping one leaves the others working.
	"$CLUSTER" down "$T/b"
	no_trace "$T/b"
	[ -z "$(mounts_below "$b")" ] || fail "b's mount is left"
	echo still >"$c/hsp/after"
	sync "$c/hsp/after"
	assert_eq still "$(cat "$c/hsp/after")" "c after b went down"
	"$CLUSTER" mount "$T/d" "$(mnt d)"
	"$CLUSTER" down "$T/c"
	"$CLUSTER" down "$T/d"
	no_trace "$T/c"
	no_trace "$T/d"
	[ -z "$(mounts_below "$T/mnt")" ] || fail "still mounted: $(mounts_below "$T/mnt")"
}

test_down_leaves_nothing() {
	local a sleeper
	up c
	a=$(mnt a)
	"$CLUSTER" mount "$T/c" "$a"
	"$CLUSTER" mount "$T/c" "$(mnt b)"
	# A busy mount (a process inside) does not stop down.
	(cd "$a/hsp" && exec sleep 60) &
	sleeper=$!
	sleep 0.2
	"$CLUSTER" down "$T/c"
	no_trace "$T/c"
	[ -z "$(mounts_below "$T/mnt")" ] || fail "still mounted: $(mounts_below "$T/mnt")"
	kill $sleeper
	wait $sleeper 2>/dev/null || true
	# Idempotent.
	"$CLUSTER" down "$T/c" || fail "second down failed"
}

# Write a fake ceph daemon or tool into $T/bin: it fails as the real one
# would on a broken system.
fake() {
	mkdir -p "$T/bin"
	printf '#!/bin/sh\necho "%s: simulated failure" >&2\nexit 1\n' "$1" >"$T/bin/$1"
	chmod +x "$T/bin/$1"
}

test_failed_up_leaves_nothing() {
	local tool
	for tool in ceph-mds ceph-osd ceph-fuse; do
		rm -rf "${T:?}/bin"
		fake "$tool"
		expect_fail env PATH="$T/bin:$PATH" "$CLUSTER" up "$T/c"
		assert_match 'simulated failure' "$ERR" "error with a fake $tool"
		no_trace "$T/c"
	done
	# An existing empty directory is kept (emptied) after a failure.
	mkdir "$T/e"
	expect_fail env PATH="$T/bin:$PATH" "$CLUSTER" up "$T/e"
	[ -d "$T/e" ] || fail "$T/e removed"
	[ -z "$(ls -A "$T/e")" ] || fail "$T/e not left empty"
	[ -z "$(procs_with "$T/e")" ] || fail "processes of $T/e left"
}

test_bad_input() {
	local v
	expect_fail "$CLUSTER"
	assert_match usage "$ERR"
	expect_fail "$CLUSTER" frobnicate "$T/c"
	assert_match "unknown verb" "$ERR"
	for v in up down authorize mount umount; do
		expect_fail "$CLUSTER" "$v"
	done
	expect_fail "$CLUSTER" up "$T/c" --addr 300.1.1.1
	expect_fail "$CLUSTER" up "$T/c" --port-base 80
	expect_fail "$CLUSTER" up "$T/c" --bogus
	expect_fail "$CLUSTER" up "$T/with space"
	expect_fail "$CLUSTER" up /
	[ ! -e "$T/c" ] || fail "bad up created $T/c"
	mkdir "$T/full"
	echo precious >"$T/full/file"
	expect_fail "$CLUSTER" up "$T/full"
	assert_match "not empty" "$ERR"
	expect_fail "$CLUSTER" down "$T/full"
	assert_match "not a cluster directory" "$ERR"
	assert_eq precious "$(cat "$T/full/file")" "file in a non-cluster DIR after down"
	expect_fail "$CLUSTER" mount "$T/c" "$(mnt a)"
	expect_fail "$CLUSTER" authorize "$T/c" x /x

	up c
	expect_fail "$CLUSTER" up "$T/c"
	assert_match "already holds a running cluster" "$ERR"
	expect_fail "$CLUSTER" up "$T/c" --port-base "$(sed -n 's/^mon host = v2:.*:\([0-9]*\)$/\1/p' "$T/c/ceph.conf")"
	assert_match "in use" "$ERR"
	expect_fail "$CLUSTER" authorize "$T/c" "bad id" /x
	expect_fail "$CLUSTER" authorize "$T/c" x relative
	expect_fail "$CLUSTER" authorize "$T/c" x /x wx
	expect_fail "$CLUSTER" mount "$T/c" "$T/nonexistent"
	expect_fail "$CLUSTER" mount "$T/c" "$(mnt a)" --id ghost
	expect_fail "$CLUSTER" umount "$T/c" "$(mnt a)"
	"$CLUSTER" mount "$T/c" "$(mnt a)"
	expect_fail "$CLUSTER" mount "$T/c" "$(mnt a)"
	assert_match "already mounted" "$ERR"
	# The cluster is unharmed by all this.
	"$CLUSTER" authorize "$T/c" ok /ok >/dev/null || fail "authorize after bad input"
	"$CLUSTER" down "$T/c"
	no_trace "$T/c"
}

# Each daemon killed and started again: a mounted client goes on, and what
# it wrote before is there for a new client afterwards.
test_restart_daemons() {
	local a b d n old st t0
	up c
	a=$(mnt a)
	"$CLUSTER" mount "$T/c" "$a"
	echo start >"$a/hsp/log"
	for d in mds mon osd; do
		n=$d.a
		[ "$d" != osd ] || n=osd.0
		old=$(cat "$T/c/run/$n.pid")
		t0=$(now_ms)
		"$CLUSTER" restart "$T/c" "$d"
		note "restart $d took $(elapsed $(($(now_ms) - t0))) s"
		[ "$(cat "$T/c/run/$n.pid")" != "$old" ] || fail "$d has its old pid"
		st=$(sed 's/.*) //' "/proc/$old/stat" 2>/dev/null) || true
		case ${st%% *} in '' | Z | X) ;; *) fail "the old $d (pid $old) is alive" ;; esac
		timeout 30 sh -c "echo $d >>'$a/hsp/log'" || fail "write after restarting $d"
	done
	b=$(mnt b)
	"$CLUSTER" mount "$T/c" "$b"
	assert_eq "start mds mon osd" "$(tr '\n' ' ' <"$b/hsp/log" | sed 's/ $//')" "log seen by a new client"
	expect_fail "$CLUSTER" restart "$T/c" mgr
	assert_match 'mon, osd or mds' "$ERR"
	"$CLUSTER" umount "$T/c" "$a"
	"$CLUSTER" umount "$T/c" "$b"
	"$CLUSTER" down "$T/c"
	no_trace "$T/c"
}

# A cluster bound to an address inside a network namespace.  `ip netns exec`
# also gives each command a mount namespace of its own, so mounting and
# using the file system happen in one.
test_addr_in_netns() {
	local ns=hspceph$$ a
	if ! ip netns add "$ns" 2>/dev/null; then
		note "SKIP: cannot create a network namespace"
		return 0
	fi
	# shellcheck disable=SC2064
	trap "ip netns delete $ns" EXIT
	ip -n "$ns" link set lo up
	ip -n "$ns" addr add 10.123.0.1/32 dev lo
	ip netns exec "$ns" "$CLUSTER" up "$T/c" --addr 10.123.0.1 --port-base 6789
	assert_match '^mon host = v2:10\.123\.0\.1:6789$' "$(grep '^mon host' "$T/c/ceph.conf")"
	[ -z "$(ss -Hltn 'sport = :6789')" ] || fail "the host sees a listener on 6789"
	a=$(mnt a)
	# shellcheck disable=SC2016
	ip netns exec "$ns" bash -euc '
		"$1" mount "$2" "$3"
		echo x >"$3/hsp/x"
		[ "$(cat "$3/hsp/x")" = x ]
		"$1" umount "$2" "$3"' - "$CLUSTER" "$T/c" "$a" || fail "using the file system in $ns"
	ip netns exec "$ns" "$CLUSTER" down "$T/c"
	no_trace "$T/c"
}

[ "$(id -u)" -eq 0 ] || { echo "t_cluster.sh needs root" >&2; exit 1; }
tests=("$@")
# In the order they are written.
[ ${#tests[@]} -gt 0 ] || mapfile -t tests < <(sed -n 's/^\(test_[a-z_]*\)() {$/\1/p' "$SELF")
pass=0 failn=0 failed=()
for t in "${tests[@]}"; do
	T=$(mktemp -d /tmp/hsp-ceph-t.XXXXXX)
	start=$(now_ms)
	# Not inside `if`: bash ignores set -e in a condition's subshell.
	( set -e; "$t" ) >"$T.log" 2>&1
	rc=$?
	if [ $rc -eq 0 ]; then
		pass=$((pass + 1))
		printf 'ok   %-40s %6ss\n' "$t" "$(elapsed $(($(now_ms) - start)))"
		cat "$T.notes" 2>/dev/null
	else
		failn=$((failn + 1))
		failed+=("$t")
		printf 'FAIL %-40s\n' "$t"
		sed 's/^/    /' "$T.log"
	fi
	# Whatever a failed test left behind.
	for d in "$T"/*/; do
		[ -f "$d/ceph.conf" ] && "$CLUSTER" down "$d" >/dev/null 2>&1
	done
	for m in $(mounts_below "$T"); do umount -l "$m" 2>/dev/null; done
	rm -rf --one-file-system "$T" "$T.log" "$T.notes"
done
echo
[ $failn -eq 0 ] || printf 'failed: %s\n' "${failed[@]}"
echo "$pass passed, $failn failed"
[ $failn -eq 0 ]
