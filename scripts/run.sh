#!/bin/sh
# `make run`: the main job on the embedded default (local storage, one node).
# Builds the busybox template, creates and starts a VE and shows what a
# command inside it sees.  Safe to run again: an existing VE is reused.
set -eu
HSP=${HSP:?path to hsp-runtime}
ROOT=${HSP_ROOT:-/var/lib/hsp}
RUN=${HSP_RUN_DIR:-/run/hsp}
VE=${HSP_DEMO_VE:-demo}
hsp() { "$HSP" --root "$ROOT" --run-dir "$RUN" "$@"; }

sh images/build.sh busybox "$ROOT"

if ! hsp state "$VE" >/dev/null 2>&1; then
	echo "== creating VE $VE from the busybox template"
	hsp create "$VE" --template busybox --hostname "$VE" --memory 256M --pids 512 --cpus 1
fi
if ! hsp state "$VE" | grep -q '^status: *running'; then
	echo "== starting VE $VE"
	hsp start "$VE"
fi

echo "== inside $VE: hostname; id; ps; mounts"
hsp exec "$VE" -- sh -c 'echo "hostname: $(hostname)"; id; ps; mount | grep -E " on /(proc|sys|dev)? "'
echo
hsp list
echo
echo "Enter it with:   $HSP --root $ROOT --run-dir $RUN enter $VE"
echo "Stop it with:    $HSP --root $ROOT --run-dir $RUN stop $VE"
