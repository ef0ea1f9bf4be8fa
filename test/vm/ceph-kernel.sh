#!/bin/bash
# The kernel CephFS client, for real: this host's kernel may have no ceph
# module, the VM's Debian kernel has one.  As root:
#
#   HSP_BUILD=/path/to/build bash test/vm/ceph-kernel.sh
#
# 1. A network namespace of this run's own holding a tap device and a
#    throw-away Ceph cluster (test/ceph/cluster.sh, msgr2 only) bound to
#    $NET.1 there; a node "host" with a ceph-fuse pool writes a VE h1.
# 2. test/vm/run.sh boots the VM in that namespace with a virtio NIC on the
#    tap ($NET.2) and the ceph modules, and runs ceph-kernel-guest.sh: the
#    node "vm" adds the pool (mount.ceph), starts h1, makes and writes v1,
#    snapshots it, and is fenced (this script blocklists and evicts it when
#    the guest asks).
# 3. Back here, v1's files are read through ceph-fuse: content, owner, mode,
#    links and the snapshot as the kernel client left them.
# Everything (namespace, tap, cluster, mounts) is removed on exit.  Last
# line: "vm-ceph-kernel: ok", "vm-ceph-kernel: skipped (REASON)" or
# "vm-ceph-kernel: FAILED".
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
build=$(cd "${HSP_BUILD:-$repo/build}" && pwd)
HSP=$build/src/runtime/hsp-runtime
HSP_CEPH=$build/src/runtime/hsp-ceph
CLUSTER=$repo/test/ceph/cluster.sh
# Only inside the namespace made here.
NET=10.250.77
NS=hkc-$$
TAP=hkctap0

log() { echo "vm-ceph-kernel: $*" >&2; }
die() {
	log "error: $*"
	echo "vm-ceph-kernel: FAILED"
	exit 1
}

[ "$(id -u)" -eq 0 ] || die "must run as root"
for f in "$HSP" "$HSP_CEPH"; do [ -x "$f" ] || die "$f not built"; done
for t in mount.ceph nsenter ip ceph-fuse; do
	command -v "$t" >/dev/null || die "$t not found: run scripts/install-deps.sh"
done
# shellcheck source=test/lib/assert.sh
. "$repo/test/lib/assert.sh"

T=$(mktemp -d /tmp/hkc.XXXXXX)
inns() { nsenter --net="/run/netns/$NS" "$@"; }
node() { inns "$HSP" --root "$T/h" --run-dir "$T/run-h" "$@"; }

# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
	local m
	trap - EXIT
	set +e
	while read -r m; do
		case $m in "$T/ceph"*) continue ;; esac
		umount -l "$m" 2>/dev/null
	done < <(awk -v t="$T/" 'index($5, t) == 1 { print $5 }' /proc/self/mountinfo | sort -r)
	"$CLUSTER" down "$T/ceph" >/dev/null 2>&1 || log "warning: cluster.sh down $T/ceph failed"
	ip netns del "$NS" 2>/dev/null
	rm -rf --one-file-system "$T"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

t0=$EPOCHREALTIME
ip netns add "$NS"
ip -n "$NS" link set lo up
ip -n "$NS" tuntap add dev "$TAP" mode tap
ip -n "$NS" addr add "$NET.1/24" dev "$TAP"
ip -n "$NS" link set "$TAP" up
inns "$CLUSTER" up "$T/ceph" --addr "$NET.1" || die "cannot start the test Ceph cluster"
KH=$(inns "$CLUSTER" authorize "$T/ceph" host /hsp rwps)
KV=$(inns "$CLUSTER" authorize "$T/ceph" vm /hsp rwps)

# The host's node: h1 written through ceph-fuse, for the VM to start.
mkdir -p "$T/h/templates"
node pool add shared --type cephfs --conf "$T/ceph/ceph.conf" --id host --keyring "$KH" \
	--fs-path /hsp || die "pool add on the host"
sh "$repo/images/build.sh" busybox "$T/h/pools/shared" >/dev/null || die "images/build.sh busybox"
node create h1 --template busybox --pool shared --disk 200M
m=$(node mount h1)
mkdir "$m/data"
echo "from the host" >"$m/data/f"
chown 1000:2000 "$m/data/f"
chmod 4750 "$m/data/f"
ln "$m/data/f" "$m/data/hard"
node umount h1
log "cluster at $NET.1 and h1 ready in $(bc <<<"scale=1; (${EPOCHREALTIME/./} - ${t0/./}) / 1000000") s"

# In the VM /tmp is a file system of its own: the conf and key go to /hsp;
# the directories the conf names for sockets and logs are made there.
printf 'CONF=/hsp/ceph/ceph.conf\nKEYRING=/hsp/ceph/client.vm.keyring\nID=vm\nCEPH_DIR=%q\n' \
	"$T/ceph" >"$T/hkc.env"

# fence: what a controller does to a node it gave up on.
fence() {
	local out
	out=$(inns "$HSP_CEPH" fence --conf "$T/ceph/ceph.conf" --id admin \
		--keyring "$T/ceph/keyring" --fs-path / --entity vm 2>&1) || out="fence failed: $out"
	log "$out"
}

skip=
guest_ok=
rc=0
while IFS= read -r line; do
	printf '%s\n' "$line"
	case $line in
	*HKC-FENCE\ *) fence ;;
	*HKC-SKIP\ *) skip=${line#*HKC-SKIP } ;;
	*HKC-GUEST-OK*) guest_ok=1 ;;
	esac
done < <(inns env HSP_BUILD="$build" HSP_VM_UNIT=0 HSP_VM_ITESTS= \
	HSP_VM_MODULES="loop overlay veth bridge virtio_pci virtio_net ceph" \
	HSP_VM_TAP="$TAP" HSP_VM_NET="$NET.2/24" \
	HSP_VM_LOG="${HSP_VM_LOG:-$build/vm-ceph-kernel.log}" \
	HSP_VM_ADD="$HSP_CEPH:/hsp/bin/hsp-ceph $(command -v mount.ceph)
		$T/ceph/ceph.conf:/hsp/ceph/ceph.conf $KV:/hsp/ceph/client.vm.keyring
		$T/hkc.env:/hsp/hkc.env $here/ceph-kernel-guest.sh:/hsp/ceph-kernel-guest.sh" \
	HSP_VM_CMD="bash /hsp/ceph-kernel-guest.sh" \
	bash "$here/run.sh" 2>&1; echo "HKC-RUN-STATUS $?")
if [ -n "$skip" ]; then
	echo "vm-ceph-kernel: skipped ($skip)"
	exit 0
fi
[ -n "$guest_ok" ] || die "the guest's checks failed (console above)"

# v1 as the kernel client left it, read through ceph-fuse.
t1=$EPOCHREALTIME
m=$(node mount v1 --read-only) || die "mount v1 on the host"
assert_eq "from the kernel client" "$(cat "$m/data/f")" "content on the host" || rc=1
assert_eq "1000 2000 4750 2" "$(stat -c '%u %g %a %h' "$m/data/f")" "owner, mode, links on the host" || rc=1
[ -p "$m/data/fifo" ] || { fail "fifo lost" || rc=1; }
(cd "$m/data" && md5sum -c --quiet big.md5) || { fail "8 MiB file differs" || rc=1; }
node umount v1
assert_match 's1' "$(node snapshot list v1)" "snapshot made in the VM, listed on the host" || rc=1
log "v1 checked on the host through ceph-fuse in $(bc <<<"scale=1; (${EPOCHREALTIME/./} - ${t1/./}) / 1000000") s"
[ "$rc" -eq 0 ] || die "what the kernel client wrote differs on the host"
echo "vm-ceph-kernel: ok"
