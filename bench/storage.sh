#!/bin/bash
# A VE on a CephFS pool against the same VE on local disk, side by side:
# debian-12 create time, and inside the VE a small-file workload (10,000
# file creates, then a dpkg-style unpack: a tar of /usr/share extracted
# into /srv, each followed by sync).  The cluster is a throw-away one from
# test/ceph/cluster.sh (memstore OSD on loopback), the local pool this
# machine's disk.
#
#   HSP=path/to/hsp-runtime RUNS=5 bash bench/storage.sh     (as root)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
source "$here/lib.sh"

need_root
need_cmd bc
resolve_hsp
RUNS=${RUNS:-5}
if [ "$RUNS" -lt 1 ] || [ "$RUNS" -gt 20 ]; then
	die "RUNS must be between 1 and 20"
fi

W=$(mktemp -d /tmp/hsp-bench-storage.XXXXXX)
CLUSTER=$BENCH_REPO/test/ceph/cluster.sh
hsp() { "$HSP" --root "$W/root" --run-dir "$W/run" "$@"; }
cleanup() {
	local ve m
	for ve in $(hsp list 2>/dev/null | awk 'NR > 1 { print $1 }'); do
		hsp kill "$ve" >/dev/null 2>&1 || :
	done
	for m in $(awk -v t="$W/" 'index($5, t) == 1 { print $5 }' /proc/self/mountinfo | sort -r); do
		case $m in "$W/ceph"*) continue ;; esac
		umount -l "$m" 2>/dev/null || :
	done
	pkill -f -- "-c $W/ceph/ceph.conf" 2>/dev/null || :
	"$CLUSTER" down "$W/ceph" >/dev/null 2>&1 || :
	rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

now() { date +%s.%N; }
ms() { echo "($2 - $1) * 1000" | bc; }
med() { stats <"$1" | awk '{ print $1 }'; }

echo "storage.sh: templates and a Ceph cluster ..." >&2
mkdir -p "$W/root/templates"
sh "$BENCH_REPO/images/build.sh" debian-12 "$W/root" >/dev/null || die "cannot build debian-12"
"$CLUSTER" up "$W/ceph" || die "cannot start the test Ceph cluster"
key=$("$CLUSTER" authorize "$W/ceph" node1 /hsp rwps)
hsp pool add ceph --type cephfs --conf "$W/ceph/ceph.conf" --id node1 --keyring "$key" \
	--fs-path /hsp
mkdir -p "$W/root/pools/ceph/templates"
cp -a "$W/root/templates/debian-12" "$W/root/pools/ceph/templates/"
# The first VE of each pool unpacks the node's tree: not what is timed.
hsp create warm-local --template debian-12
hsp create warm-ceph --template debian-12 --pool ceph

: >"$W/create.local" >"$W/create.ceph"
for i in $(seq 1 "$RUNS"); do
	for p in local ceph; do
		t0=$(now)
		hsp create "c-$p-$i" --template debian-12 --pool "$p"
		t1=$(now)
		ms "$t0" "$t1" >>"$W/create.$p"
	done
done

# The workload runs inside a VE of each pool, interleaved run by run.
workload='set -e; d=/srv/w.$$; mkdir -p $d; cd $d
t0=$(date +%s%N); i=0; while [ $i -lt 10000 ]; do : > f$i; i=$((i + 1)); done; sync
t1=$(date +%s%N); mkdir u; tar -C u -xf /root/share.tar; sync; t2=$(date +%s%N)
echo $(((t1 - t0) / 1000000)) $(((t2 - t1) / 1000000)); cd /; rm -rf $d; sync'
for p in local ceph; do
	hsp create "w-$p" --template debian-12 --pool "$p" --disk 4G
	hsp start "w-$p"
	hsp exec "w-$p" -- sh -c 'tar -C /usr -cf /root/share.tar share'
done
files=$(hsp exec w-local -- sh -c 'tar -tf /root/share.tar | wc -l')
: >"$W/files.local" >"$W/files.ceph" >"$W/unpack.local" >"$W/unpack.ceph"
for _ in $(seq 1 "$RUNS"); do
	for p in local ceph; do
		read -r f u < <(hsp exec "w-$p" -- bash -c "$workload")
		echo "$f" >>"$W/files.$p"
		echo "$u" >>"$W/unpack.$p"
	done
done

ratio() { echo "scale=2; $(med "$W/$1.ceph") / $(med "$W/$1.local")" | bc; }
printf 'median of %d runs, ms        local    cephfs   ratio\n' "$RUNS"
printf '  %-26s %7.0f %9.0f %7s   (target <= 1000 ms on cephfs)\n' "create debian-12" \
	"$(med "$W/create.local")" "$(med "$W/create.ceph")" "$(ratio create)"
printf '  %-26s %7.0f %9.0f %7s   (target <= 2x)\n' "10,000 file creates + sync" \
	"$(med "$W/files.local")" "$(med "$W/files.ceph")" "$(ratio files)"
printf '  %-26s %7.0f %9.0f %7s   (target <= 2x)\n' "unpack $files entries + sync" \
	"$(med "$W/unpack.local")" "$(med "$W/unpack.ceph")" "$(ratio unpack)"

summary storage.runs "$RUNS"
summary storage.create_local_ms "$(med "$W/create.local")"
summary storage.create_ceph_ms "$(med "$W/create.ceph")"
summary storage.files_local_ms "$(med "$W/files.local")"
summary storage.files_ceph_ms "$(med "$W/files.ceph")"
summary storage.files_ratio "$(ratio files)"
summary storage.unpack_entries "$files"
summary storage.unpack_local_ms "$(med "$W/unpack.local")"
summary storage.unpack_ceph_ms "$(med "$W/unpack.ceph")"
summary storage.unpack_ratio "$(ratio unpack)"
