#!/bin/bash
# Start latency: `hsp-runtime run VE -- /bin/true` against `crun run` on the
# same busybox rootfs, measured by hyperfine in one invocation per repeat.
#
#   HSP=path/to/hsp-runtime bash bench/start-latency.sh
#
# Environment: RUNS (timed runs per command, default 30, at least 30),
# WARMUP (default 3), REPEATS (hyperfine invocations, default 9),
# BENCH_RESULTS (where the hyperfine JSON goes, default bench/results),
# BENCH_SUMMARY (file that receives key=value figures, used by bench/run.sh).
#
# What runs, per timed run:
#   hsp-runtime     the CLI is the monitor: reads the VE's config, clones init
#                   into new user/mount/pid/uts/ipc/net/cgroup namespaces,
#                   puts it in the VE's cgroups, mounts, loads seccomp, drops
#                   capabilities, execs /bin/true, waits, removes the cgroups.
#   crun            crun 1.8.1 `run` of a bundle made from the same rootfs,
#                   pid/mount/ipc/uts/net/cgroup namespaces, cgroups disabled.
#   crun-userns     the same plus a user namespace mapping 65536 ids, with the
#                   bundle's rootfs chown-shifted like the VE's (ours always
#                   uses a user namespace).
#   crun-userns-cg  crun-userns with cgroups (v1 cgroupfs, under our memory
#                   cgroup): the like-for-like one, as ours has no switch to
#                   skip cgroups.  CRUN_CGROUPS=0 leaves it out.
#
# crun refuses hybrid cgroup hosts, so the whole benchmark runs in a private
# mount namespace (unshare -m) in which /sys/fs/cgroup/unified is replaced by
# an empty tmpfs; both runtimes then see a v1 host.  Their state directories
# are on tmpfs too, as /run is on a usual host.  See docs/bench.md.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
source "$here/lib.sh"

need_root
need_cmd unshare hyperfine crun jq zstd tar awk
resolve_hsp

# Everything below runs in a private mount namespace: re-enter the script
# there.  The namespace disappears with the script's last process.
if [ "${_HSP_BENCH_START_NS:-}" != 1 ]; then
	export _HSP_BENCH_START_NS=1
	exec unshare --mount --propagation private bash "${BASH_SOURCE[0]}" "$@"
fi
unset _HSP_BENCH_START_NS

RUNS=${RUNS:-30}
WARMUP=${WARMUP:-3}
REPEATS=${REPEATS:-9}
RESULTS=${BENCH_RESULTS:-$here/results}
# First host id of crun's user-namespace mapping (arbitrary, unused by VEs
# for as long as the benchmark runs: the benchmark has its own VE store).
CRUN_ID_BASE=3000000
IDS=65536
for v in RUNS WARMUP REPEATS; do
	case ${!v} in '' | *[!0-9]*) die "$v must be a number" ;; esac
done
[ "$RUNS" -ge 30 ] || die "RUNS must be at least 30"
if [ "$REPEATS" -lt 1 ] || [ "$REPEATS" -gt 20 ]; then
	die "REPEATS must be between 1 and 20"
fi

if mountpoint -q /sys/fs/cgroup/unified; then
	umount /sys/fs/cgroup/unified || die "cannot unmount /sys/fs/cgroup/unified in the private mount namespace"
fi
# crun on v1 still writes into /sys/fs/cgroup/unified/<path> (plain files on
# the host's /sys/fs/cgroup tmpfs, hidden under the real cgroup2 mount):
# give it a throw-away tmpfs that goes with this namespace.
if [ -d /sys/fs/cgroup/unified ]; then
	mount -t tmpfs -o mode=0755,size=1m hsp-bench-unified /sys/fs/cgroup/unified
fi

W=$(mktemp -d /tmp/hsp-bench-start.XXXXXX)
hsp() { "$HSP" --root "$W/root" --run-dir "$W/run" "$@"; }
# Where crun-userns-cg puts its groups: under our own memory cgroup (on v1,
# the same path in every hierarchy, as crun does it).
own_cg=$(awk -F: '$2 == "memory" { print $3 }' /proc/self/cgroup)
crun_cg=${own_cg%/}/hsp-bench-crun-${W##*.}
# crun creates every missing component of that path in every hierarchy but
# removes only the last: note the groups that do not exist yet, to remove
# them afterwards (deepest first; rmdir refuses a group still in use).
crun_new_groups=()
for h in /sys/fs/cgroup/*/; do
	[ "$h" != /sys/fs/cgroup/unified/ ] || continue
	p=${h%/}
	IFS=/ read -ra parts <<<"${crun_cg#/}"
	for c in "${parts[@]}"; do
		p=$p/$c
		[ -d "$p" ] || crun_new_groups=("$p" "${crun_new_groups[@]}")
	done
done

cleanup() {
	set +e
	local id d
	if [ -d "$W/crun" ]; then
		for id in bench-plain bench-userns bench-userns-cg; do
			crun --root "$W/crun" delete --force "$id" >/dev/null 2>&1
		done
	fi
	for d in "${crun_new_groups[@]}"; do
		[ ! -d "$d" ] || rmdir "$d" 2>/dev/null
	done
	if [ -f "$W/root/.bench-created" ]; then
		hsp kill bench >/dev/null 2>&1
		hsp destroy --force bench >/dev/null 2>&1 ||
			echo "start-latency.sh: could not destroy VE bench in $W/root" >&2
	fi
	for d in "$W/run" "$W/crun"; do
		if mountpoint -q "$d"; then umount "$d"; fi
	done
	rm -rf --one-file-system "$W"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

echo "== start latency: preparing (busybox template, VE, crun bundles) in $W"
mkdir -p "$W/root" "$W/run" "$W/crun" "$W/spec" "$RESULTS"
rm -f "$RESULTS"/start-latency-*.json # an earlier run's, maybe with more repeats
# State directories on tmpfs for both runtimes, as /run is on a usual host
# (crun's default state is /run/crun, ours /run/hsp); this machine's /run
# is on disk, where every fsync of a state file would be timed too.
mount -t tmpfs -o mode=0711,size=16m hsp-bench-run "$W/run"
mount -t tmpfs -o mode=0700,size=16m hsp-bench-crun "$W/crun"
build_busybox_template "$W/root"
tarball=$W/root/templates/busybox/rootfs.tar.zst

# Our VE, created once; every timed run boots it with /bin/true as init.
hsp create bench --template busybox >/dev/null
: >"$W/root/.bench-created"

# crun's bundles: the same rootfs, unpacked once per bundle.
mkdir -p "$W/bundle/rootfs"
zstd -q -dc "$tarball" | tar -x --numeric-owner -C "$W/bundle/rootfs"
if [ -n "$(find "$W/bundle/rootfs" \( ! -uid 0 -o ! -gid 0 \) -print -quit)" ]; then
	die "the busybox rootfs has files not owned by root: cannot shift it with one chown"
fi
cp -a "$W/bundle" "$W/bundle-userns"
chown -R -h "$CRUN_ID_BASE:$CRUN_ID_BASE" "$W/bundle-userns/rootfs"
mkdir -p "$W/bundle-userns-cg"
ln -s ../bundle-userns/rootfs "$W/bundle-userns-cg/rootfs"

(cd "$W/spec" && crun spec)
# Like the VE: /bin/true as the process, no terminal, a writable root, and
# the namespaces ours makes (crun's default has pid, network, ipc, uts and
# mount; ours also unshares the cgroup namespace).
jq '.process.args = ["/bin/true"]
  | .process.terminal = false
  | .root = {"path": "rootfs", "readonly": false}
  | .hostname = "bench"
  | .linux.namespaces = [{"type": "pid"}, {"type": "network"}, {"type": "ipc"},
                         {"type": "uts"}, {"type": "mount"}, {"type": "cgroup"}]' \
	"$W/spec/config.json" >"$W/bundle/config.json"
jq --argjson base "$CRUN_ID_BASE" --argjson n "$IDS" '
    .linux.namespaces += [{"type": "user"}]
  | .linux.uidMappings = [{"containerID": 0, "hostID": $base, "size": $n}]
  | .linux.gidMappings = [{"containerID": 0, "hostID": $base, "size": $n}]' \
	"$W/bundle/config.json" >"$W/bundle-userns/config.json"
jq --arg path "$crun_cg" '.linux.cgroupsPath = $path' \
	"$W/bundle-userns/config.json" >"$W/bundle-userns-cg/config.json"

crun_run() { # MANAGER BUNDLE ID
	echo "crun --root $W/crun --cgroup-manager=$1 run --bundle $W/$2 $3"
}
# name, summary key, command (a word list: hyperfine -N splits it).
# Ours without cgroups is compared with crun without them, as the issue
# asks; ours with cgroups with crun with them.
names=(hsp-runtime crun crun-userns)
keys=(hsp crun crun_userns)
ours=(- hsp-runtime hsp-runtime)
cmds=(
	"$HSP --root $W/root --run-dir $W/run --no-cgroups run bench -- /bin/true"
	"$(crun_run disabled bundle bench-plain)"
	"$(crun_run disabled bundle-userns bench-userns)"
)
# The closest to ours: user namespace and real cgroups (v1 cgroupfs, which
# pays the same cgroup migration cost as ours).  Only on v1/hybrid hosts,
# where our own memory cgroup tells where to put them; CRUN_CGROUPS=0 skips.
if [ "${CRUN_CGROUPS:-1}" = 1 ] && [ -n "$own_cg" ]; then
	names+=(hsp-runtime-cg crun-userns-cg)
	keys+=(hsp_cg crun_userns_cg)
	ours+=(- hsp-runtime-cg)
	cmds+=("$HSP --root $W/root --run-dir $W/run run bench -- /bin/true"
		"$(crun_run cgroupfs bundle-userns-cg bench-userns-cg)")
fi

# One untimed run each: a failure here is a setup problem, not a figure.
for i in "${!cmds[@]}"; do
	# shellcheck disable=SC2086 # the commands are word lists, as hyperfine -N splits them
	${cmds[$i]} </dev/null >/dev/null ||
		die "${names[$i]} failed to run /bin/true: ${cmds[$i]}"
done

for ((r = 0; r < REPEATS; r++)); do
	# Rotate the order between repeats, so no command always runs first
	# (or last) on a machine whose speed drifts.
	args=()
	for ((k = 0; k < ${#cmds[@]}; k++)); do
		i=$(((k + r) % ${#cmds[@]}))
		args+=(--command-name "${names[$i]}" "${cmds[$i]}")
	done
	echo "== start latency: repeat $((r + 1))/$REPEATS ($RUNS runs, $WARMUP warm-up per command)"
	hyperfine -N --style basic --runs "$RUNS" --warmup "$WARMUP" \
		--export-json "$RESULTS/start-latency-$((r + 1)).json" "${args[@]}" </dev/null
done

# median_of NAME: the hyperfine median (ms) of NAME in each repeat, one a line.
median_of() {
	local r
	for ((r = 1; r <= REPEATS; r++)); do
		jq -r --arg n "$1" '.results[] | select(.command == $n) | .median * 1000' \
			"$RESULTS/start-latency-$r.json"
	done
}
# ratios_to NAME OURS: OURS's median / NAME's median, per repeat.
ratios_to() {
	local r
	for ((r = 1; r <= REPEATS; r++)); do
		jq -r --arg n "$1" --arg o "$2" '
			(.results[] | select(.command == $o) | .median) as $ours
			| (.results[] | select(.command == $n) | .median) as $theirs
			| $ours / $theirs' "$RESULTS/start-latency-$r.json"
	done
}

summary start.runs "$RUNS"
summary start.repeats "$REPEATS"
echo
echo "== start latency: median of $REPEATS hyperfine medians ($RUNS runs each)"
m_hsp=$(median_of hsp-runtime | median)
printf '  %-15s %8.2f ms\n' hsp-runtime "$m_hsp"
summary start.hsp_ms "$(printf '%.2f' "$m_hsp")"
for ((i = 1; i < ${#names[@]}; i++)); do
	m=$(median_of "${names[$i]}" | median)
	if [ "${ours[$i]}" = - ]; then
		printf '  %-15s %8.2f ms\n' "${names[$i]}" "$m"
		summary "start.${keys[$i]}_ms" "$(printf '%.2f' "$m")"
		m_ours=$m
		continue
	fi
	[ "${ours[$i]}" = hsp-runtime ] && m_ours=$m_hsp
	ratio=$(awk -v a="$m_ours" -v b="$m" 'BEGIN { printf "%.3f", a / b }')
	read -r _ _ rmax rmin _ < <(ratios_to "${names[$i]}" "${ours[$i]}" | stats)
	range=$(printf '%.3f-%.3f' "$rmin" "$rmax")
	printf '  %-15s %8.2f ms   %s / %s = %s (per repeat %s)\n' \
		"${names[$i]}" "$m" "${ours[$i]}" "${names[$i]}" "$ratio" "$range"
	summary "start.${keys[$i]}_ms" "$(printf '%.2f' "$m")"
	summary "start.ratio_${keys[$i]}" "$ratio"
	summary "start.ratio_${keys[$i]}_range" "$range"
done
echo "  hyperfine JSON: $RESULTS/start-latency-{1..$REPEATS}.json"
