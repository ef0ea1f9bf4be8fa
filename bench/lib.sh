# shellcheck shell=bash
# Helpers shared by the benchmark scripts (sourced, not run).
#
# The caller sets `here` (the bench directory) before sourcing this file.

BENCH_REPO=$(cd "${here:?}/.." && pwd)

die() {
	echo "${0##*/}: $*" >&2
	exit 1
}

# need_cmd CMD...: each command must be on PATH.
need_cmd() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || die "\`$c' not found (needed for this benchmark)"
	done
}

need_root() {
	[ "$(id -u)" -eq 0 ] || die "must run as root"
}

# resolve_hsp: sets HSP to the absolute path of the hsp-runtime binary
# ($HSP, else the default build directory).
resolve_hsp() {
	HSP=${HSP:-$BENCH_REPO/build/src/runtime/hsp-runtime}
	[ -x "$HSP" ] || die "hsp-runtime not found at \`$HSP' (build it, or set HSP=path)"
	HSP=$(readlink -f "$HSP")
	case $HSP in *[[:space:]]*) die "the path of hsp-runtime must not contain spaces: $HSP" ;; esac
}

# build_busybox_template ROOTDIR: installs the busybox template into
# ROOTDIR/templates/busybox.
build_busybox_template() {
	sh "$BENCH_REPO/images/build.sh" busybox "$1" >/dev/null ||
		die "cannot build the busybox template (images/build.sh busybox $1)"
	[ -f "$1/templates/busybox/rootfs.tar.zst" ] || die "images/build.sh made no rootfs.tar.zst"
}

# summary KEY VALUE: records one figure for bench/run.sh (a `key=value` line
# appended to $BENCH_SUMMARY, when set).
summary() {
	if [ -n "${BENCH_SUMMARY:-}" ]; then
		printf '%s=%s\n' "$1" "$2" >>"$BENCH_SUMMARY"
	fi
}

# stats: reads one number per line and prints "median mean max min count".
stats() {
	sort -g | awk '
		{ v[NR] = $1; s += $1 }
		END {
			if (NR == 0) { print "nan nan nan nan 0"; exit }
			m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
			printf "%.6g %.6g %.6g %.6g %d\n", m, s / NR, v[NR], v[1], NR
		}'
}

# median: reads one number per line and prints their median.
median() {
	stats | awk '{ print $1 }'
}
