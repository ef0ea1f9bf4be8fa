#!/bin/bash
# Time from nothing to a customer's first root login: `create` of a debian-12
# VE with an ssh key and an address, `start`, and ssh with that key from the
# host side of the bridge (a network namespace made here) until it succeeds.
# Also: create time alone for debian-12 and busybox, next to a create that
# unpacks a full copy of the same template (what every create cost before
# VEs shared one template tree), and the disk a VE uses beyond the template.
#
#   HSP=path/to/hsp-runtime RUNS=10 bash bench/ssh-login.sh     (as root)
#
# Every figure is the median of RUNS (default 10) fresh VEs.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
source "$here/lib.sh"

need_root
need_cmd ssh ssh-keygen nsenter ip du bc
resolve_hsp
RUNS=${RUNS:-10}
if [ "$RUNS" -lt 1 ] || [ "$RUNS" -gt 50 ]; then
	die "RUNS must be between 1 and 50"
fi

W=$(mktemp -d /tmp/hsp-bench-ssh.XXXXXX)
NS=hsp-bench-ssh-$$
hsp() { "$HSP" --root "$W/root" --run-dir "$W/run" "$@"; }
hspn() { nsenter --net="/run/netns/$NS" "$HSP" --root "$W/root" --run-dir "$W/run" "$@"; }
cleanup() {
	local ve
	for ve in $(hsp list 2>/dev/null | awk 'NR > 1 { print $1 }'); do
		hsp destroy --force "$ve" >/dev/null 2>&1 || :
	done
	ip netns del "$NS" 2>/dev/null || :
	rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

now() { date +%s.%N; }
ms() { echo "($2 - $1) * 1000" | bc; }

echo "ssh-login.sh: building the templates (cached after the first build) ..." >&2
sh "$BENCH_REPO/images/build.sh" debian-12 "$W/root" >/dev/null ||
	die "cannot build the debian-12 template"
build_busybox_template "$W/root"

ip netns add "$NS"
nsenter --net="/run/netns/$NS" ip link add hspbr0 type bridge
nsenter --net="/run/netns/$NS" ip addr add 10.93.0.1/24 dev hspbr0
nsenter --net="/run/netns/$NS" ip link set hspbr0 up
ssh-keygen -q -t ed25519 -N "" -f "$W/key"

try_ssh() {
	nsenter --net="/run/netns/$NS" ssh -i "$W/key" -o StrictHostKeyChecking=no \
		-o UserKnownHostsFile=/dev/null -o BatchMode=yes -o ConnectTimeout=2 \
		-o LogLevel=QUIET "root@$1" true 2>/dev/null
}

# The first VE of a template version unpacks its tree: timed on its own.
t0=$(now)
hsp create first --template debian-12
t1=$(now)
tree_ms=$(ms "$t0" "$t1")
hsp destroy first >/dev/null

: >"$W/create" >"$W/start" >"$W/login" >"$W/total" >"$W/disk"
for i in $(seq 1 "$RUNS"); do
	ip=10.93.0.$((10 + i))
	t0=$(now)
	hspn create "d$i" --template debian-12 --ip "$ip/24" --gateway 10.93.0.1 \
		--ssh-key "$W/key.pub"
	t1=$(now)
	hspn start "d$i"
	t2=$(now)
	ok=no
	for _ in $(seq 1 1500); do
		if try_ssh "$ip"; then
			ok=yes
			break
		fi
		sleep 0.02
	done
	t3=$(now)
	[ $ok = yes ] || die "no ssh login to d$i ($ip) after 30 s"
	ms "$t0" "$t1" >>"$W/create"
	ms "$t1" "$t2" >>"$W/start"
	ms "$t2" "$t3" >>"$W/login"
	ms "$t0" "$t3" >>"$W/total"
	# What a booted VE wrote (host keys, logs, utmp), beyond the template.
	du -sk "$W/root/ves/d$i" | cut -f1 >>"$W/disk"
	hsp stop "d$i" --timeout 10
done

# create alone: busybox and debian-12 on the shared tree, next to a create
# that unpacks the whole archive (a path template makes a private copy).
: >"$W/c_bb" >"$W/c_deb" >"$W/c_copy"
deb_tar=$W/root/templates/debian-12/rootfs.tar.zst
for i in $(seq 1 "$RUNS"); do
	t0=$(now)
	hsp create "b$i" --template busybox
	t1=$(now)
	hsp create "c$i" --template debian-12
	t2=$(now)
	hsp create "f$i" --template "$deb_tar" --init /sbin/init
	t3=$(now)
	ms "$t0" "$t1" >>"$W/c_bb"
	ms "$t1" "$t2" >>"$W/c_deb"
	ms "$t2" "$t3" >>"$W/c_copy"
	sync
done
copy_kb=$(du -sk "$W/root/ves/f1" | cut -f1)
tree_kb=$(du -sk "$W/root/templates/debian-12/trees" | cut -f1)

med() { stats <"$1" | awk '{ print $1 }'; }
range() { stats <"$1" | awk '{ printf "%s-%s", $4, $3 }'; }
total=$(med "$W/total")
ratio=$(echo "scale=3; $(med "$W/c_deb") / $(med "$W/c_copy")" | bc)
printf 'debian-12, %d VEs, ms (median, range):\n' "$RUNS"
printf '  %-34s %8.0f  (%s)\n' "create (--ip, --ssh-key)" "$(med "$W/create")" "$(range "$W/create")"
printf '  %-34s %8.0f  (%s)\n' "start" "$(med "$W/start")" "$(range "$W/start")"
printf '  %-34s %8.0f  (%s)\n' "start -> ssh key login works" "$(med "$W/login")" "$(range "$W/login")"
printf '  %-34s %8.0f  (%s)   target <= 1000\n' "create + start + login" "$total" "$(range "$W/total")"
printf 'create alone, ms (median of %d):\n' "$RUNS"
printf '  %-34s %8.1f\n' "busybox" "$(med "$W/c_bb")"
printf '  %-34s %8.1f\n' "debian-12" "$(med "$W/c_deb")"
printf '  %-34s %8.1f\n' "debian-12, full private copy" "$(med "$W/c_copy")"
printf '  %-34s %8s\n' "ratio shared tree / full copy" "$ratio"
printf '  %-34s %8.0f  (once per template version)\n' "first create (unpacks the tree)" "$tree_ms"
printf 'disk, KiB:\n'
printf '  %-34s %8s\n' "template tree" "$tree_kb"
printf '  %-34s %8s  (median, after first boot)\n' "per VE beyond the template" "$(med "$W/disk")"
printf '  %-34s %8s\n' "per VE as a full copy" "$copy_kb"

summary ssh.runs "$RUNS"
summary ssh.create_ms "$(med "$W/create")"
summary ssh.start_ms "$(med "$W/start")"
summary ssh.login_ms "$(med "$W/login")"
summary ssh.total_ms "$total"
summary ssh.total_range "$(range "$W/total")"
summary ssh.create_busybox_ms "$(med "$W/c_bb")"
summary ssh.create_debian_ms "$(med "$W/c_deb")"
summary ssh.create_copy_ms "$(med "$W/c_copy")"
summary ssh.create_ratio "$ratio"
summary ssh.tree_ms "$tree_ms"
summary ssh.tree_kib "$tree_kb"
summary ssh.disk_kib "$(med "$W/disk")"
summary ssh.copy_kib "$copy_kb"
