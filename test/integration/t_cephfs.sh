# VEs in a CephFS pool, against a real throw-away Ceph cluster
# (test/ceph/cluster.sh): two "nodes" (two runtime roots, each with its own
# cephx user and ceph-fuse mount) share the pool; a VE made and written on
# one starts on the other with every file intact.

CLUSTER=$REPO/test/ceph/cluster.sh

# ceph_up: a cluster in $T/ceph and a cephx user per node, restricted to the
# pool's path; nodes A and B are runtime roots $T/a and $T/b.
ceph_up() {
	"$CLUSTER" up "$T/ceph" || fail "cannot start the test Ceph cluster"
	KA=$("$CLUSTER" authorize "$T/ceph" node-a /hsp rwps)
	KB=$("$CLUSTER" authorize "$T/ceph" node-b /hsp rwps)
	mkdir -p "$T/a/templates" "$T/b/templates"
}

ceph_down() {
	local n ve m
	for n in a b; do
		for ve in $(node "$n" list 2>/dev/null | awk 'NR > 1 { print $1 }'); do
			node "$n" kill "$ve" >/dev/null 2>&1 || :
		done
	done
	# Host views of VEs, then the nodes' pool mounts (deepest first).
	for m in $(awk -v t="$T/" 'index($5, t) == 1 { print $5 }' /proc/self/mountinfo | sort -r); do
		case $m in "$T/ceph"*) continue ;; esac
		umount -l "$m" 2>/dev/null || :
	done
	pkill -f -- "-c $T/ceph/ceph.conf" 2>/dev/null || :
	"$CLUSTER" down "$T/ceph" >/dev/null 2>&1 || :
}

# node A|B ARGS...: hsp-runtime as that node.
node() {
	local n=$1
	shift
	"$HSP" --root "$T/$n" --run-dir "$T/run-$n" "$@"
}

add_pool() {
	local n=$1 k=$2
	node "$n" pool add shared --type cephfs --conf "$T/ceph/ceph.conf" --id "node-$n" \
		--keyring "$k" --fs-path /hsp
}

test_cephfs_pool_ve_moves_between_nodes() {
	ceph_up
	trap ceph_down RETURN
	add_pool a "$KA"
	add_pool b "$KB"
	assert_match 'shared +cephfs +0 ' "$(node a pool list)" "pool list on A"
	# The template goes into the pool once; both nodes see it.
	sh "$REPO/images/build.sh" busybox "$T/a/pools/shared" >/dev/null
	assert_match busybox "$(node b template list --pool shared)" "template seen from B"

	node a create v1 --template busybox --pool shared --disk 200M
	[ -f "$T/b/pools/shared/ves/v1/config.json" ] || fail "config not in the pool"
	node a start v1
	node a exec v1 -- sh -c 'echo u:x:1000:1000::/home/u:/bin/sh >> /etc/passwd &&
		mkdir -p /home/u /data && echo secret > /data/f && chown 1000:2000 /data/f &&
		chmod 4750 /data/f && ln /data/f /data/hard && rm /bin/vi && mkfifo /data/fifo'
	node a stop v1
	# Host-side extras a VE cannot make itself: a device node, an xattr
	# in the trusted namespace, an ACL.
	local m
	m=$(node a mount v1)
	mknod "$m/data/null" c 1 3
	setfattr -n user.color -v blue "$m/data/f"
	setfattr -n trusted.mark -v x "$m/data/f"
	setfacl -m u:1234:r "$m/data/f"
	node a umount v1

	# Node B never saw v1: it finds it in the pool and starts it.
	assert_match 'v1' "$(node b list)" "v1 listed on B"
	node b start v1
	assert_eq "secret" "$(node b exec v1 -- cat /data/f)" "content on B"
	assert_eq "1000 2000 4750 2" "$(node b exec v1 -- stat -c '%u %g %a %h' /data/f)" "owner, mode, links on B"
	assert_eq "$(node b exec v1 -- stat -c %i /data/f)" "$(node b exec v1 -- stat -c %i /data/hard)" "hard link"
	if node b exec v1 -- test -e /bin/vi; then fail "deleted file back on B"; fi
	node b exec v1 -- test -p /data/fifo || fail "fifo lost"
	# One node at a time: A cannot start or mount it while B runs it.
	expect_fail node a start v1
	assert_match 'in use' "$ERR"
	node b stop v1
	m=$(node b mount v1)
	assert_eq "c 1 3" "$(stat -c '%F' "$m/data/null" | sed 's/character special file/c/') $(stat -c '%t %T' "$m/data/null")" "device node"
	assert_eq blue "$(getfattr --only-values -n user.color "$m/data/f")" "user xattr"
	assert_eq x "$(getfattr --only-values -n trusted.mark "$m/data/f")" "trusted xattr"
	assert_match 'user:1234:r--' "$(getfacl -p "$m/data/f" 2>/dev/null)" "ACL"
	node b umount v1
	# Destroyed from B, gone for A too.
	node b destroy v1
	expect_fail node a start v1
	assert_match 'not found' "$ERR"
}

test_cephfs_debian_keys_and_packages_survive_a_move() {
	[ -f "$TEMPLATE_STORE/templates/debian-12/rootfs.tar.zst" ] ||
		sh "$REPO/images/build.sh" debian-12 "$TEMPLATE_STORE" >/dev/null ||
		fail "cannot build the debian-12 template"
	ceph_up
	trap ceph_down RETURN
	add_pool a "$KA"
	add_pool b "$KB"
	mkdir -p "$T/a/pools/shared/templates"
	cp -a "$TEMPLATE_STORE/templates/debian-12" "$T/a/pools/shared/templates/"
	local t0 t1
	t0=$(date +%s%N)
	node a create d1 --template debian-12 --pool shared
	t1=$(date +%s%N)
	echo "    note: first create in the pool (unpacks the tree on A): $(((t1 - t0) / 1000000)) ms" >&2
	t0=$(date +%s%N)
	node a create d2 --template debian-12 --pool shared
	t1=$(date +%s%N)
	echo "    note: second create: $(((t1 - t0) / 1000000)) ms" >&2
	node a start d1
	wait_until 20 node a exec d1 -- test -s /etc/ssh/ssh_host_rsa_key.pub || fail "no host keys on A"
	local keys
	keys=$(node a exec d1 -- sh -c 'cat /etc/ssh/ssh_host_*_key.pub' | sort)
	node a exec d1 -- sh -c 'mkdir -p /usr/local/share/probe && echo 1 > /usr/local/share/probe/x'
	local pkgs
	pkgs=$(node a exec d1 -- dpkg-query -W -f '${Package} ${Version}\n' | sort)
	node a stop d1 --timeout 10
	node b start d1
	wait_until 20 node b exec d1 -- pgrep -x sshd || fail "no sshd on B"
	assert_eq "$keys" "$(node b exec d1 -- sh -c 'cat /etc/ssh/ssh_host_*_key.pub' | sort)" "host keys on B"
	assert_eq "$pkgs" "$(node b exec d1 -- dpkg-query -W -f '${Package} ${Version}\n' | sort)" "packages on B"
	assert_eq "" "$(node b exec d1 -- dpkg --audit)" "dpkg --audit on B"
	assert_eq 1 "$(node b exec d1 -- cat /usr/local/share/probe/x)" "file on B"
	node b stop d1 --timeout 10
}

test_cephfs_unreachable_is_a_clear_bounded_error() {
	ceph_up
	trap ceph_down RETURN
	add_pool a "$KA"
	sh "$REPO/images/build.sh" busybox "$T/a/pools/shared" >/dev/null
	node a create v1 --template busybox --pool shared
	# The cluster goes away; the node's mount with it.
	for ve in "$T"/a/pools/*; do "$CLUSTER" umount "$T/ceph" "$ve" >/dev/null 2>&1 || :; done
	"$CLUSTER" down "$T/ceph"
	local t0 t1
	t0=$(date +%s)
	expect_fail node a start v1
	t1=$(date +%s)
	[ $((t1 - t0)) -le 40 ] || fail "start took $((t1 - t0)) s to fail"
	assert_match 'shared' "$ERR"
	t0=$(date +%s)
	expect_fail node a create v2 --template busybox --pool shared
	t1=$(date +%s)
	[ $((t1 - t0)) -le 40 ] || fail "create took $((t1 - t0)) s to fail"
	assert_match 'shared' "$ERR"
	[ ! -e "$T/a/ves/v2" ] || fail "half-created VE left"
	# Local VEs are unaffected.
	new_ve_on_a() { node a create "$1" --template busybox && node a start "$1"; }
	cp -a "$TEMPLATE_STORE/templates/busybox" "$T/a/templates/"
	new_ve_on_a l1
	assert_eq l1 "$(node a exec l1 -- hostname)" "local VE while Ceph is down"
	node a kill l1
}

test_cephfs_pool_bad_input() {
	ceph_up
	trap ceph_down RETURN
	expect_fail node a pool add p --type cephfs --conf /nonexistent --id node-a --keyring "$KA" --fs-path /hsp
	assert_match 'conf' "$ERR"
	expect_fail node a pool add p --type cephfs --conf "$T/ceph/ceph.conf" --id node-a --keyring "$KA" --fs-path hsp
	assert_match 'absolute' "$ERR"
	# A user restricted to /hsp cannot use another path.
	expect_fail node a pool add p --type cephfs --conf "$T/ceph/ceph.conf" --id node-a --keyring "$KA" --fs-path /other
	[ ! -e "$T/a/pools.json" ] || assert_no_match '"p"' "$(cat "$T/a/pools.json")" "failed pool recorded"
	add_pool a "$KA"
	expect_fail add_pool a "$KA"
	assert_match 'already exists' "$ERR"
	expect_fail node a pool add local --type local --path "$T/x"
	assert_match 'already exists' "$ERR"
	expect_fail node a create v --template busybox --pool nope
	assert_match 'pool `nope` not found' "$ERR"
}

# The MDS serves metadata only; a VE's disk is one open file whose data
# goes to the OSDs, so an MDS restart must not disturb a running VE.
test_cephfs_mds_restart_ve_carries_on() {
	ceph_up
	trap ceph_down RETURN
	add_pool a "$KA"
	sh "$REPO/images/build.sh" busybox "$T/a/pools/shared" >/dev/null
	node a create v1 --template busybox --pool shared
	node a start v1
	node a exec v1 -- sh -c 'echo before > /f && sync'
	local mds
	mds=$(pgrep -f -- "ceph-mds -c $T/ceph/ceph.conf")
	[ -n "$mds" ] || fail "no MDS process"
	kill -9 "$mds"
	ceph-mds -c "$T/ceph/ceph.conf" -i a </dev/null >>"$T/ceph/log/mds.a.out" 2>&1 &
	node a exec v1 -- sh -c 'echo during >> /f && sync' || fail "write while the MDS restarts"
	assert_eq "before during" "$(node a exec v1 -- cat /f | tr '\n' ' ' | sed 's/ $//')" "file"
	assert_eq running "$(json_get "$(node a state --json v1)" status)" "VE after the MDS restart"
	node a stop v1
	node a start v1
	assert_eq "before during" "$(node a exec v1 -- cat /f | tr '\n' ' ' | sed 's/ $//')" "file after restart"
	node a kill v1
}

# A node's ceph-fuse killed under a running VE: its disk is gone, so the
# VE is stopped and says why, instead of running on with I/O errors.
test_cephfs_fuse_killed_stops_the_ve() {
	ceph_up
	trap ceph_down RETURN
	add_pool a "$KA"
	sh "$REPO/images/build.sh" busybox "$T/a/pools/shared" >/dev/null
	node a create v1 --template busybox --pool shared
	node a start v1
	cp -a "$TEMPLATE_STORE/templates/busybox" "$T/a/templates/"
	node a create l1 --template busybox
	node a start l1
	local fuse
	fuse=$(pgrep -f -- "ceph-fuse .* $T/a/pools/shared\$")
	[ -n "$fuse" ] || fail "no ceph-fuse for the pool"
	kill -9 "$fuse"
	# The node's CLI cannot read the pool until the dead client's MDS
	# session is evicted (fencing, the cluster's job), so this looks at
	# what the monitor left in the run dir.
	local st=$T/run-a/v1/state.json
	stopped() { [ "$(json_get "$(cat "$st")" monitor_pid)" = 0 ]; }
	wait_until 15 stopped || fail "VE still running after its storage died: $(cat "$st")"
	assert_match '"storage_lost": 1' "$(cat "$st")" "reason"
	if flock -n "$T/run-a/v1/monitor.lock" true; then :; else fail "monitor still holds its lock"; fi
	# A VE on the node's own disk is untouched.
	assert_eq running "$(json_get "$(node a state --json l1)" status)" "local VE"
	node a kill l1
}

# A VE broken on node A is rescued on node B, which never ran it: the
# rescue root comes from the template tree B unpacks from the pool, the
# disk lock keeps A out meanwhile, and A boots the repaired VE.
test_cephfs_rescue_on_another_node() {
	ceph_up
	trap ceph_down RETURN
	add_pool a "$KA"
	add_pool b "$KB"
	sh "$REPO/images/build.sh" busybox "$T/a/pools/shared" >/dev/null
	ssh-keygen -q -t ed25519 -N "" -f "$T/key"
	node a create v1 --template busybox --pool shared --disk 200M --ssh-key "$T/key.pub"
	node a start v1
	node a exec v1 -- sh -c 'echo mine > /marker && rm /sbin/init'
	node a stop v1
	expect_fail node a start v1
	node b start v1 --rescue
	assert_eq true "$(json_get "$(node b state --json v1)" rescue)" "rescue on B"
	assert_eq mine "$(node b exec v1 -- cat /repair/marker)" "the VE's files at /repair on B"
	assert_eq "$(cat "$T/key.pub")" "$(node b exec v1 -- cat /root/.ssh/authorized_keys)" "root's key"
	expect_fail node a start v1
	assert_match 'in use' "$ERR"
	node b exec v1 -- sh -c 'ln -s ../bin/busybox /repair/sbin/init && echo fixed > /repair/fixed'
	node b stop v1
	node a start v1
	assert_eq "mine fixed" "$(node a exec v1 -- cat /marker /fixed | tr '\n' ' ' | sed 's/ $//')" "files on A"
	assert_eq false "$(json_get "$(node a state --json v1)" rescue)" "normal start on A"
	node a kill v1
}

# CephFS snapshots of a running VE (frozen for the instant), restored on
# another node; a VE with snapshots is destroyed whole.
test_cephfs_snapshots_across_nodes() {
	ceph_up
	trap ceph_down RETURN
	add_pool a "$KA"
	add_pool b "$KB"
	sh "$REPO/images/build.sh" busybox "$T/a/pools/shared" >/dev/null
	node a create v1 --template busybox --pool shared --disk 256M
	node a start v1
	node a exec v1 -- sh -c 'echo one > /f && sync'
	node a snapshot create v1 s1
	node a exec v1 -- sh -c 'echo two > /f && touch /g && sync'
	assert_match '^s1 ' "$(node b snapshot list v1 | awk 'NR > 1')" "snapshot seen from B"
	node a stop v1
	node b snapshot restore v1 s1
	node b start v1
	assert_eq one "$(node b exec v1 -- cat /f)" "content after restore on B"
	if node b exec v1 -- test -e /g; then fail "file made after the snapshot survived the restore"; fi
	node b stop v1
	node b snapshot create v1 s2
	node b destroy v1
	[ ! -e "$T/b/pools/shared/ves/v1" ] || fail "VE directory left after destroy"
}

# A backup made on one backend restores on the other, on another node.
test_cephfs_backup_from_local_restores_on_cephfs() {
	ceph_up
	trap ceph_down RETURN
	add_pool b "$KB"
	cp -a "$TEMPLATE_STORE/templates/busybox" "$T/a/templates/"
	node a create src --template busybox --disk 200M
	node a start src
	node a exec src -- sh -c 'mkdir -p /data && echo payload > /data/f &&
		chown 1000:1000 /data/f && chmod 4711 /data/f && ln /data/f /data/h &&
		ln -s f /data/s'
	node a backup src >"$T/src.tar.zst"
	node b restore copy --pool shared <"$T/src.tar.zst"
	[ -f "$T/b/pools/shared/ves/copy/config.json" ] || fail "restored VE not in the CephFS pool"
	node b start copy
	assert_eq payload "$(node b exec copy -- cat /data/f)" "content"
	assert_eq "1000 1000 4711 2" "$(node b exec copy -- stat -c '%u %g %a %h' /data/f)" "owner, mode, links"
	assert_eq f "$(node b exec copy -- readlink /data/s)" "symlink"
	node b kill copy
	node a kill src
}

# Id ranges are per machine: a VE made on node A whose range node B has
# already given to one of its own VEs gets another range on B; its files,
# stored unshifted, do not care.
test_cephfs_start_elsewhere_claims_a_free_id_range() {
	ceph_up
	trap ceph_down RETURN
	add_pool a "$KA"
	sh "$REPO/images/build.sh" busybox "$T/a/pools/shared" >/dev/null
	export HSP_ID_REGISTRY=$T/ids-a
	node a create v1 --template busybox --pool shared
	node a start v1
	node a exec v1 -- sh -c 'touch /mine && chown 7:7 /mine'
	node a stop v1
	local base_a
	base_a=$(json_get "$(node a state --json v1)" base)
	# Node B's own registry, where a local VE holds that same range.
	export HSP_ID_REGISTRY=$T/ids-b
	cp -a "$TEMPLATE_STORE/templates/busybox" "$T/b/templates/"
	node b create l1 --template busybox
	add_pool b "$KB"
	assert_eq "$base_a" "$(json_get "$(node b state --json l1)" base)" "B's local VE took A's range"
	node b start l1
	node b start v1
	local base_b
	base_b=$(json_get "$(node b state --json v1)" base)
	[ "$base_b" != "$base_a" ] || fail "v1 runs on B in the range of B's VE l1"
	assert_eq "7 7" "$(node b exec v1 -- stat -c '%u %g' /mine)" "owner inside after the new range"
	node b kill v1
	node b kill l1
	unset HSP_ID_REGISTRY
}
