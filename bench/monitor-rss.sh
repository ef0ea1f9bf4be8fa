#!/bin/bash
# Memory of the per-VE monitor: creates and starts VES (default 200) idle
# busybox VEs, then reads each monitor's VmRSS (/proc/PID/status) and Pss
# (/proc/PID/smaps_rollup).  Also reports the time to create, start, stop and
# destroy them (one after another, but for most of the stops: see below), and
# the drop of MemAvailable per running VE.  Stops and
# destroys every VE at the end, and on any failure or interruption.
#
#   HSP=path/to/hsp-runtime bash bench/monitor-rss.sh
#
# Environment: VES (default 200), BENCH_SUMMARY (file that receives
# key=value figures, used by bench/run.sh).
#
# The script runs as PID 1 of its own pid and mount namespaces: the detached
# monitors are re-parented to it and reaped when they exit (this machine's
# PID 1 does not reap orphans), the run dir is a tmpfs that goes with the
# namespace (as /run is on a usual host), and should everything else fail,
# the kernel kills whatever is left when the script exits.  Memory figures
# are not affected by the namespaces.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
source "$here/lib.sh"

need_root
need_cmd unshare jq awk
resolve_hsp

if [ "${_HSP_BENCH_RSS_NS:-}" != 1 ]; then
	export _HSP_BENCH_RSS_NS=1
	exec unshare --fork --pid --mount --mount-proc --propagation private \
		bash "${BASH_SOURCE[0]}" "$@"
fi
unset _HSP_BENCH_RSS_NS

N=${VES:-200}
case $N in '' | *[!0-9]*) die "VES must be a number" ;; esac
if [ "$N" -lt 1 ] || [ "$N" -gt 1000 ]; then
	die "VES must be between 1 and 1000"
fi
# Target from the issue: monitor RSS under 1 MB per VE.
TARGET_KIB=1024

W=$(mktemp -d /tmp/hsp-bench-rss.XXXXXX)
hsp() { "$HSP" --root "$W/root" --run-dir "$W/run" "$@"; }
created=0

# force_kill VE: last resort when `hsp kill` fails: SIGKILL the VE's init
# (killing its whole pid namespace), if it is still the monitor's child.
force_kill() {
	local st mon init
	st=$(hsp state "$1" --json 2>/dev/null) || return 0
	mon=$(jq -r '.monitor_pid // 0' <<<"$st")
	init=$(jq -r '.init_pid // 0' <<<"$st")
	if [ "$init" -gt 0 ] && [ "$mon" -gt 0 ] &&
		[ "$(awk '{ print $4 }' "/proc/$init/stat" 2>/dev/null)" = "$mon" ]; then
		echo "monitor-rss.sh: $1: killing init $init directly" >&2
		kill -KILL "$init" 2>/dev/null || :
	fi
}

# destroy_ve VE: destroy --force, falling back on force_kill.
destroy_ve() {
	local tries
	for ((tries = 0; tries < 2; tries++)); do
		if hsp destroy --force "$1" >/dev/null 2>&1; then
			return 0
		fi
		force_kill "$1"
		sleep 0.5
	done
	hsp destroy --force "$1"
}

cleanup() {
	set +e
	local i left=0
	for ((i = 1; i <= created; i++)); do
		destroy_ve "ve$i" || left=$((left + 1))
	done
	if [ "$left" -gt 0 ]; then
		# Never delete a store whose VEs may still run: leave it for a look.
		echo "monitor-rss.sh: $left VEs could not be destroyed; leaving $W" >&2
		return
	fi
	if mountpoint -q "$W/run"; then umount "$W/run"; fi
	rm -rf --one-file-system "$W"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

now_ns() { date +%s%N; }
mem_available_kib() { awk '$1 == "MemAvailable:" { print $2 }' /proc/meminfo; }
# field FILE KEY: the number after "KEY:" in a /proc file (kB).
field() { awk -v k="$2:" '$1 == k { print $2; exit }' "$1"; }
# secs T0 T1 [N]: (T1 - T0) in seconds, or in ms per item when N is given.
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b - a) / 1e9 }'; }
ms_each() { awk -v a="$1" -v b="$2" -v n="$3" 'BEGIN { printf "%.1f", (b - a) / 1e6 / n }'; }

echo "== monitor memory: $N busybox VEs in $W"
mkdir -p "$W/root" "$W/run"
mount -t tmpfs -o mode=0711,size=64m hsp-bench-run "$W/run"
build_busybox_template "$W/root"

mem0=$(mem_available_kib)
t0=$(now_ns)
for ((i = 1; i <= N; i++)); do
	created=$i # counted first: a half-made VE is cleaned up too
	hsp create "ve$i" --template busybox >/dev/null || die "create ve$i failed"
done
t1=$(now_ns)
sync
mem1=$(mem_available_kib)
t1s=$(now_ns)
for ((i = 1; i <= N; i++)); do
	hsp start "ve$i" || die "start ve$i failed"
done
t2=$(now_ns)
# Let the VEs' inits run their boot scripts and go idle.
sleep 2
mem2=$(mem_available_kib)

: >"$W/rss" && : >"$W/pss" && : >"$W/init_rss" && : >"$W/init_pss"
comm=
for ((i = 1; i <= N; i++)); do
	st=$(hsp state "ve$i" --json) || die "state ve$i failed"
	status=$(jq -r .status <<<"$st")
	[ "$status" = running ] || die "ve$i is $status, not running"
	mon=$(jq -r .monitor_pid <<<"$st")
	init=$(jq -r .init_pid <<<"$st")
	if [ "$mon" -le 0 ] || [ ! -r "/proc/$mon/status" ]; then
		die "ve$i: no monitor process (pid $mon)"
	fi
	field "/proc/$mon/status" VmRSS >>"$W/rss"
	field "/proc/$mon/smaps_rollup" Pss >>"$W/pss"
	if [ "$init" -gt 0 ] && [ -r "/proc/$init/status" ]; then
		field "/proc/$init/status" VmRSS >>"$W/init_rss"
		field "/proc/$init/smaps_rollup" Pss >>"$W/init_pss"
	fi
	[ -n "$comm" ] || comm=$(cat "/proc/$mon/comm")
done
read -r rss_med rss_mean rss_max rss_min _ < <(stats <"$W/rss")
read -r pss_med pss_mean pss_max pss_min _ < <(stats <"$W/pss")
read -r irss_med _ _ _ _ < <(stats <"$W/init_rss")
read -r ipss_med _ _ _ _ < <(stats <"$W/init_pss")

# Stop: the first STOP_SAMPLE VEs one after another, for a per-VE figure
# (busybox init's poweroff alone takes about 2 s), the rest STOP_PARALLEL at
# a time.  Failures are reported, not fatal: the figures above stand; a VE
# that did not stop is killed directly.
STOP_SAMPLE=10
STOP_PARALLEL=20
stop_failed=0
n_sample=$((N < STOP_SAMPLE ? N : STOP_SAMPLE))
t3=$(now_ns)
for ((i = 1; i <= n_sample; i++)); do
	if ! hsp stop "ve$i" --timeout 10; then
		stop_failed=$((stop_failed + 1))
		force_kill "ve$i"
	fi
done
t3b=$(now_ns)
if [ "$N" -gt "$n_sample" ]; then
	seq $((n_sample + 1)) "$N" |
		xargs -P "$STOP_PARALLEL" -I '{}' \
			"$HSP" --root "$W/root" --run-dir "$W/run" stop 've{}' --timeout 10 || :
	for ((i = n_sample + 1; i <= N; i++)); do
		if [ "$(hsp state "ve$i" --json | jq -r .status)" != stopped ]; then
			stop_failed=$((stop_failed + 1))
			force_kill "ve$i"
		fi
	done
fi
t4=$(now_ns)
for ((i = N; i >= 1; i--)); do
	destroy_ve "ve$i" || die "destroy ve$i failed"
	created=$((i - 1))
done
t5=$(now_ns)

per_ve_kib=$(awk -v a="$mem1" -v b="$mem2" -v n="$N" 'BEGIN { printf "%.0f", (a - b) / n }')
verdict=$(awk -v m="$rss_max" -v t="$TARGET_KIB" 'BEGIN { print (m < t) ? "met" : "NOT met" }')

echo
echo "== monitor memory, $N idle busybox VEs (monitor process: $comm)"
printf '  %-22s %8s %8s %8s %8s\n' "KiB per monitor" median mean max min
printf '  %-22s %8s %8.0f %8s %8s\n' "VmRSS" "$rss_med" "$rss_mean" "$rss_max" "$rss_min"
printf '  %-22s %8s %8.0f %8s %8s\n' "Pss" "$pss_med" "$pss_mean" "$pss_max" "$pss_min"
printf '  target: monitor RSS < %s KiB per VE: %s (max %s KiB)\n' "$TARGET_KIB" "$verdict" "$rss_max"
printf '  VE init (busybox init): median VmRSS %s KiB, Pss %s KiB\n' "$irss_med" "$ipss_med"
printf '  MemAvailable drop while starting: %s KiB per VE (monitor + init + kernel objects; noisy)\n' \
	"$per_ve_kib"
printf '    (MemAvailable KiB: %s before create, %s after create, %s after start)\n' \
	"$mem0" "$mem1" "$mem2"
printf '  create:  %6s s total, %6s ms per VE\n' "$(secs "$t0" "$t1")" "$(ms_each "$t0" "$t1" "$N")"
printf '  start:   %6s s total, %6s ms per VE\n' "$(secs "$t1s" "$t2")" "$(ms_each "$t1s" "$t2" "$N")"
if [ "$stop_failed" -eq 0 ]; then
	printf '  stop:    %6s s for the first %s, %6s ms per VE; %s s for the rest, %s at a time\n' \
		"$(secs "$t3" "$t3b")" "$n_sample" "$(ms_each "$t3" "$t3b" "$n_sample")" \
		"$(secs "$t3b" "$t4")" "$STOP_PARALLEL"
else
	printf '  stop:    FAILED for %s VEs (killed instead): no figure\n' "$stop_failed"
fi
printf '  destroy: %6s s total, %6s ms per VE\n' "$(secs "$t4" "$t5")" "$(ms_each "$t4" "$t5" "$N")"

summary rss.ves "$N"
summary rss.monitor_rss_kib_median "$rss_med"
summary rss.monitor_rss_kib_mean "$(printf '%.0f' "$rss_mean")"
summary rss.monitor_rss_kib_max "$rss_max"
summary rss.monitor_pss_kib_median "$pss_med"
summary rss.monitor_pss_kib_mean "$(printf '%.0f' "$pss_mean")"
summary rss.monitor_pss_kib_max "$pss_max"
summary rss.target_1mb "$verdict"
summary rss.init_rss_kib_median "$irss_med"
summary rss.init_pss_kib_median "$ipss_med"
summary rss.memavailable_drop_kib_per_ve "$per_ve_kib"
summary rss.create_total_s "$(secs "$t0" "$t1")"
summary rss.start_total_s "$(secs "$t1s" "$t2")"
summary rss.start_ms_per_ve "$(ms_each "$t1s" "$t2" "$N")"
if [ "$stop_failed" -eq 0 ]; then
	summary rss.stop_ms_per_ve "$(ms_each "$t3" "$t3b" "$n_sample")"
	summary rss.stop_parallel_total_s "$(secs "$t3b" "$t4")"
fi
summary rss.stop_failures "$stop_failed"
summary rss.destroy_total_s "$(secs "$t4" "$t5")"

if [ "$stop_failed" -gt 0 ]; then
	echo "monitor-rss.sh: \`hsp-runtime stop' failed $stop_failed times (see above)" >&2
	exit 1
fi
