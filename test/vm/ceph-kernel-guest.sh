#!/bin/bash
# The guest half of test/vm/ceph-kernel.sh: a node with the kernel CephFS
# client.  Runs as HSP_VM_CMD; the host put the cluster's ceph.conf and
# this node's keyring at the paths /hsp/hkc.env names, and a VE h1 written
# through ceph-fuse into the pool.  Prints "HKC-FENCE" when the host is to
# fence this node, "HKC-FIGURE ..." lines for the README, and exits non-zero
# on the first failed check.
set -u
# shellcheck source=/dev/null
. /hsp/hkc.env # CONF KEYRING ID CEPH_DIR
# shellcheck source=test/lib/assert.sh
. /hsp/repo/test/lib/assert.sh

R=/tmp/k
POOL=$R/pools/shared
hsp() { "$HSP" --root "$R" --run-dir /run/hkc "$@"; }
json_get() { sed -n "s/.*\"$2\": *\"\{0,1\}\([^\",}]*\).*/\1/p" <<<"$1" | head -n1; }

# timed NAME CMD...: runs CMD, prints how long it took.
timed() {
	local name=$1 t0=$EPOCHREALTIME rc=0
	shift
	"$@" || rc=$?
	echo "HKC-FIGURE $name $(bc <<<"scale=2; (${EPOCHREALTIME/./} - ${t0/./}) / 1000000") s"
	return $rc
}

check() {
	echo "--- $*"
}

set -e
if ! grep -qw ceph /proc/filesystems; then
	echo "HKC-SKIP the VM's kernel has no ceph file system (no ceph.ko in its package)"
	exit 0
fi
# The conf's admin socket and log paths, as on the host.
mkdir -p "$CEPH_DIR/run" "$CEPH_DIR/log" "$R/templates"

check "pool add: the kernel client, msgr2 only"
timed pool-add hsp pool add shared --type cephfs --conf "$CONF" --id "$ID" \
	--keyring "$KEYRING" --fs-path /hsp
line=$(awk -v m="$POOL" '$2 == m' /proc/mounts)
echo "$line"
assert_eq ceph "$(awk '{ print $3 }' <<<"$line")" "type of the pool's mount"
assert_match 'ms_mode=prefer-crc' "$line" "mount options"
assert_match 'busybox' "$(hsp template list --pool shared)" "template the host put into the pool"

check "a VE written on the host through ceph-fuse starts here"
timed start-h1 hsp start h1
assert_eq "from the host" "$(hsp exec h1 -- cat /data/f)" "content"
assert_eq "1000 2000 4750 2" "$(hsp exec h1 -- stat -c '%u %g %a %h' /data/f)" "owner, mode, links"
hsp stop h1

check "a VE made here, for the host to read"
timed create-v1 hsp create v1 --template busybox --pool shared --disk 200M
timed start-v1 hsp start v1
hsp exec v1 -- sh -c 'mkdir /data && echo "from the kernel client" > /data/f &&
	chown 1000:2000 /data/f && chmod 4750 /data/f && ln /data/f /data/hard &&
	mkfifo /data/fifo && cd /data && dd if=/dev/urandom of=big bs=1M count=8 2>/dev/null &&
	md5sum big > big.md5 && sync'
timed stop-v1 hsp stop v1
timed start-v1-again hsp start v1
assert_eq "from the kernel client" "$(hsp exec v1 -- cat /data/f)" "content after a restart"
hsp stop v1

check "snapshots through hsp-ceph (libcephfs)"
timed snapshot-create hsp snapshot create v1 s1
assert_match 's1' "$(hsp snapshot list v1)" "snapshot list"
# What the host reads must be on the OSDs before this node is fenced.
sync

# A fenced kernel client has no process to die: its MDS session is gone
# and the OSDs refuse it.  statfs still works (the monitors answer), a
# listing fails: that is how the runtime's mount check tells it is dead.
check "fenced: the kernel client is blocklisted and evicted"
timed create-v2 hsp create v2 --template busybox --pool shared
hsp start v2
hsp exec v2 -- sh -c 'echo before > /f && sync'
listing_fails() { ! timeout 5 ls "$POOL" >/dev/null 2>&1; }
t0=$EPOCHREALTIME
echo "HKC-FENCE client.$ID"
wait_until 60 listing_fails || fail "the fenced mount still lists after 60 s"
echo "HKC-FIGURE fence-to-listing-fails $(bc <<<"scale=2; (${EPOCHREALTIME/./} - ${t0/./}) / 1000000") s (fence request to a failed ls)"
echo "ls: $(timeout 5 ls "$POOL" 2>&1 | head -n1); stat -f: $(timeout 5 stat -f -c %T "$POOL" 2>&1)"
dmesg | grep -E 'ceph: mds0 (session blocklisted|rejected session|reconnect denied)' || :

check "the fenced VE is stopped by its monitor, not left writing into nothing"
v2_stopped() { hsp state v2 | grep -q 'status: *stopped'; }
wait_until 30 v2_stopped || fail "v2 still runs 30 s after its mount was fenced"
echo "HKC-FIGURE fence-to-ve-stopped $(bc <<<"scale=2; (${EPOCHREALTIME/./} - ${t0/./}) / 1000000") s (fence request to the VE stopped)"
assert_match "pool's mount died" "$(hsp state v2)" "why v2 stopped"

check "the VE's next start sees the mount dead and mounts the pool again"
timed start-v2-after-fence hsp start v2
assert_eq ceph "$(awk -v m="$POOL" '$2 == m { print $3 }' /proc/mounts)" "type of the new mount"
# The fenced client can never list again: a listing that works is a new one.
! listing_fails || fail "the pool's mount is still the fenced one"
assert_eq before "$(hsp exec v2 -- cat /f)" "what v2 synced before the fence"
hsp kill v2
umount "$POOL"
echo "HKC-GUEST-OK"
