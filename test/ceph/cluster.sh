#!/bin/bash
# A throw-away Ceph cluster for tests: 1 mon, 1 memstore OSD, 1 MDS, no mgr,
# cephx, msgr2 only, everything under one directory.  See README.md.
#
#   cluster.sh up DIR [--addr IP] [--port-base N]
#   cluster.sh down DIR
#   cluster.sh authorize DIR CLIENT_ID PATH [PERMS]
#   cluster.sh mount DIR MOUNTPOINT [--id ID] [--keyring K] [--path /SUB]
#   cluster.sh umount DIR MOUNTPOINT
#   cluster.sh restart DIR mon|osd|mds
#
# Silent on success (authorize prints the keyring path); on failure one line
# on stderr and a non-zero exit.  Needs root (daemons, FUSE mounts).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# Debian's interpreter: the python3 first on PATH may lack the rados module.
PYTHON=/usr/bin/python3
MONCTL=$HERE/monctl.py
# First line of every ceph.conf written here: how down recognises a cluster
# directory before it removes one.
MARKER="# throw-away test cluster written by test/ceph/cluster.sh"
MEMSTORE_BYTES=$((2 << 30)) # the OSD keeps all data in RAM, up to this much
PORTS=16                    # per cluster: the mon on the base port, daemons on the rest
AUTO_PORT_MIN=20000         # automatic bases: 20000..31999, below the ephemeral ports
AUTO_SLOTS=750
MOUNT_TIMEOUT=30            # seconds a client tries to reach the cluster (default 300)
STOP_TIMEOUT=10             # seconds for processes to end

die() {
	printf 'cluster.sh: %s\n' "$*" >&2
	exit 1
}

USAGE_up="up DIR [--addr IP] [--port-base N]"
USAGE_down="down DIR"
USAGE_authorize="authorize DIR CLIENT_ID PATH [PERMS]"
USAGE_mount="mount DIR MOUNTPOINT [--id ID] [--keyring K] [--path /SUB]"
USAGE_umount="umount DIR MOUNTPOINT"
USAGE_restart="restart DIR mon|osd|mds"

# usage [VERB]: dies with the usage of VERB, or of all verbs.
usage() {
	local v=USAGE_${1:-}
	if [ -n "${1:-}" ]; then
		die "usage: cluster.sh ${!v}"
	fi
	die "usage: cluster.sh $USAGE_up | $USAGE_down | $USAGE_authorize | $USAGE_mount | $USAGE_umount | $USAGE_restart"
}

# last_line FILE: the last non-empty line of FILE, squeezed onto one line.
last_line() {
	local l
	l=$(grep -v '^[[:space:]]*$' "$1" 2>/dev/null | tail -n 1) || true
	printf '%s' "${l:-no output}" | tr -s '[:space:]' ' '
}

# run LOG WHAT CMD...: runs CMD with its output in LOG; on failure dies with
# WHAT and the last line CMD printed.
run() {
	local log=$1 what=$2
	shift 2
	"$@" </dev/null >"$log" 2>&1 || die "$what failed: $(last_line "$log") (log: $log)"
}

# The directory argument, absolute and without symlinks.  Its path ends up in
# ceph.conf, whose syntax gives meaning to '#', ';', '$', '=' and spaces.
cluster_dir() {
	[ -n "${1:-}" ] || usage "$VERB"
	case $1 in -*) die "expected DIR, got option '$1'" ;; esac
	DIR=$(realpath -m -- "$1")
	case $DIR in
	/) die "refusing '/' as cluster directory" ;;
	*[!A-Za-z0-9._/+@,:-]*) die "DIR must consist of letters, digits and ._/+@,:- only: $DIR" ;;
	esac
	CONF=$DIR/ceph.conf
}

is_cluster_dir() {
	[ -f "$CONF" ] && [ "$(head -n 1 "$CONF" 2>/dev/null)" = "$MARKER" ]
}

# alive PID (a process of the cluster's, not a zombie)
# shellcheck source=test/lib/proc.sh
. "$HERE/../lib/proc.sh"

# Processes of this cluster: every daemon and ceph-fuse started here is given
# "-c DIR/ceph.conf"; the pid files cover a daemon whose argv got lost.  (The
# pattern goes to grep through a file, or grep would find itself.)
cluster_pids() {
	local f p pids=()
	while read -r f; do
		p=${f#/proc/}
		pids+=("${p%/cmdline}")
	done < <(grep -lzxF -f <(printf '%s\n' "$CONF") /proc/[0-9]*/cmdline 2>/dev/null)
	for f in "$DIR"/run/*.pid; do
		[ -f "$f" ] || continue
		read -r p 2>/dev/null <"$f" || continue
		case $p in '' | *[!0-9]*) continue ;; esac
		grep -qzxF -- "$CONF" "/proc/$p/cmdline" 2>/dev/null && pids+=("$p")
	done
	for p in "${pids[@]}"; do
		if [ "$p" != $$ ] && [ "$p" != "$BASHPID" ] && alive "$p"; then echo "$p"; fi
	done | sort -un
}

# wait_gone TIMEOUT PID...: true once none of the PIDs is alive.
wait_gone() {
	local deadline=$((${EPOCHREALTIME/./} + $1 * 1000000)) p left
	shift
	while :; do
		left=0
		for p in "$@"; do alive "$p" && left=1 && break; done
		[ $left -eq 0 ] && return 0
		[ "${EPOCHREALTIME/./}" -lt $deadline ] || return 1
		sleep 0.01
	done
}

# mounted PATH: PATH is a mount point (from mountinfo: a dead FUSE mount
# fails stat with ENOTCONN, so nothing that stats it can tell).
mounted() {
	local p
	p=$(printf '%s' "$1" | sed 's/\\/\\134/g; s/ /\\040/g; s/\t/\\011/g')
	P=$p awk '$5 == ENVIRON["P"] { f = 1 } END { exit !f }' /proc/self/mountinfo
}

# Kills every process of the cluster, then detaches the mounts recorded in
# DIR/mounts.  Used by down and by a failed up.
stop_all() {
	local pids rec mp
	pids=$(cluster_pids)
	if [ -n "$pids" ]; then
		# shellcheck disable=SC2086
		kill -9 $pids 2>/dev/null || true
		# shellcheck disable=SC2086
		wait_gone "$STOP_TIMEOUT" $pids || die "processes of $DIR survive SIGKILL: $(cluster_pids | tr '\n' ' ')"
	fi
	for rec in "$DIR"/mounts/*; do
		[ -f "$rec" ] || continue
		mp=$(cat "$rec")
		if mounted "$mp"; then
			umount -l -- "$mp" 2>/dev/null || die "cannot unmount $mp"
		fi
		rm -f -- "$rec"
	done
}

# Removes DIR (or, with "keep", only what is in it) once nothing is mounted
# below it.
remove_dir() {
	local mp
	mp=$(awk -v d="$DIR/" 'index($5, d) == 1 { print $5; exit }' /proc/self/mountinfo)
	[ -z "$mp" ] || die "something is still mounted in $DIR: $mp"
	if [ "${1:-}" = keep ]; then
		find "$DIR" -mindepth 1 -maxdepth 1 -exec rm -rf --one-file-system -- {} +
	else
		rm -rf --one-file-system -- "$DIR"
	fi
}

# --- up ---------------------------------------------------------------------

port_free() { # port_free ADDR BASE: nothing listens on ADDR in the range
	local hi=$(($2 + PORTS - 1))
	[ -z "$(ss -Hltn "( sport >= :$2 and sport <= :$hi )" 2>/dev/null |
		awk -v a="$1" '{ n = split($4, x, ":"); h = substr($4, 1, length($4) - length(x[n]) - 1)
			if (h == a || h == "0.0.0.0" || h == "*" || h == "[::]") print }')" ]
}

write_conf() {
	cat >"$CONF.tmp" <<EOF
$MARKER
[global]
fsid = $FSID
mon host = v2:$ADDR:$BASE
public addr = $ADDR
cluster addr = $ADDR
ms bind msgr1 = false
ms bind msgr2 = true
ms bind ipv6 = false
ms bind port min = $((BASE + 1))
ms bind port max = $((BASE + PORTS - 1))
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
auth allow insecure global id reclaim = false
keyring = $DIR/keyring
run dir = $DIR/run
crash dir = $DIR/crash
# one OSD: pools of size 1, placement across OSDs rather than hosts
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
# no mgr: do not warn about it
mon mgr mkfs grace = 31536000
mon mgr inactive grace = 31536000
# every map change waits this long (default 1 s)
paxos propose interval = 0.05

[mon]
mon data = $DIR/\$name
keyring = $DIR/\$name/keyring
pid file = $DIR/run/\$name.pid
admin socket = $DIR/run/\$name.asok
log file = $DIR/log/\$name.log
mon cluster log file = default=$DIR/log/cluster.\$channel.log cluster=$DIR/log/cluster.log

[osd]
osd data = $DIR/\$name
keyring = $DIR/keys/\$name.keyring
pid file = $DIR/run/\$name.pid
admin socket = $DIR/run/\$name.asok
log file = $DIR/log/\$name.log
osd objectstore = memstore
memstore device bytes = $MEMSTORE_BYTES
# memstore writes its data to osd data only when the OSD stops cleanly; a
# fast shutdown skips that (restart osd relies on it)
osd fast shutdown = false

[mds]
mds data = $DIR/\$name
keyring = $DIR/keys/\$name.keyring
pid file = $DIR/run/\$name.pid
admin socket = $DIR/run/\$name.asok
log file = $DIR/log/\$name.log
# A client asking for caps another client holds waits for the MDS to journal
# the revoke, which it flushes on its tick (default every 5 s): stat of files
# written tmp+rename elsewhere took seconds each.
mds early reply = false
mds tick interval = 0.05
# propagate directory sizes quickly: a quota overshoots 12-17 MB, not 400
mds dirstat min interval = 0.01

[client]
admin socket = $DIR/run/\$name.\$pid.asok
log file = $DIR/log/\$name.\$pid.log
# POSIX ACLs are off by default; lazily updated directory sizes make tar on
# another client report "file changed as we read it".
client acl type = posix_acl
client dirsize rbytes = false
client mount timeout = $MOUNT_TIMEOUT
EOF
	mv -f "$CONF.tmp" "$CONF"
}

# keyring FILE NAME [SERVICE CAP]...: writes a keyring holding a new key for
# NAME.  The key is what ceph-authtool --gen-key makes: a CryptoKey (type 1 =
# AES, creation time, length 16, 16 random bytes) in base64.  Made here
# because four ceph-authtool runs cost ~0.1 s of a start that takes ~0.8 s.
keyring() {
	local file=$1 name=$2 t=$EPOCHSECONDS key
	shift 2
	key=$({
		printf '\001\000'
		printf '%b' "$(printf '\\0%03o' $((t & 255)) $((t >> 8 & 255)) \
			$((t >> 16 & 255)) $((t >> 24 & 255)))"
		printf '\000\000\000\000\020\000'
		head -c 16 /dev/urandom
	} | base64 -w 0) || key=""
	[ ${#key} -eq 40 ] || die "cannot generate a key for $name"
	{
		printf '[%s]\n\tkey = %s\n' "$name" "$key"
		while [ $# -ge 2 ]; do
			printf '\tcaps %s = "%s"\n' "$1" "$2"
			shift 2
		done
	} >"$file"
}

# pick_base: the next candidate port base (automatic choice) into BASE.
pick_base() {
	while :; do
		BASE=$((AUTO_PORT_MIN + SLOT * PORTS))
		SLOT=$(((SLOT + 1) % AUTO_SLOTS))
		TRIES=$((TRIES + 1))
		[ $TRIES -le $AUTO_SLOTS ] || die "no free range of $PORTS ports on $ADDR"
		port_free "$ADDR" "$BASE" && return
	done
}

# Starts the mon on $BASE.  Returns 1 (mon data cleared) if the port was
# taken in the meantime, by a cluster starting at the same moment.
start_mon() {
	local log=$DIR/log/mon.a.out
	rm -rf "$DIR/mon.a"
	run "$DIR/log/monmaptool.out" monmaptool monmaptool --create --clobber --fsid "$FSID" \
		--addv a "[v2:$ADDR:$BASE]" "$DIR/keys/monmap"
	run "$DIR/log/mon-mkfs.out" "mon mkfs" ceph-mon -c "$CONF" -i a --mkfs \
		--monmap "$DIR/keys/monmap" --keyring "$DIR/keys/all.keyring"
	if ! ceph-mon -c "$CONF" -i a </dev/null >"$log" 2>&1; then
		if grep -q 'Address already in use' "$log"; then
			rm -rf "$DIR/mon.a"
			return 1
		fi
		die "ceph-mon failed: $(last_line "$log") (log: $log)"
	fi
}

# finish PID LOG WHAT: waits for a background start-up step.
finish() {
	wait "$1" || die "$3 failed: $(last_line "$2") (log: $2)"
}

UP_DONE=0
UP_CREATED=0
up_cleanup() {
	local rc=$?
	[ $UP_DONE -eq 0 ] || return 0
	# Undo everything.  The error is out already: nothing more on stderr,
	# not even bash's notices about killed background steps.
	trap - EXIT
	exec 2>/dev/null
	(
		stop_all
		[ -z "${CLUSTER_KEEP_FAILED:-}" ] || exit 0
		if [ $UP_CREATED -eq 1 ]; then remove_dir; else remove_dir keep; fi
	) >/dev/null 2>&1 || true
	exit $((rc == 0 ? 1 : rc))
}

cmd_up() {
	local addr=127.0.0.1 base="" osd_uuid mnt mkfs_job mds_job setup_job
	cluster_dir "${1:-}"
	shift
	while [ $# -gt 0 ]; do
		case $1 in
		--addr)
			[ $# -ge 2 ] || die "--addr needs an IPv4 address"
			addr=$2
			;;
		--port-base)
			[ $# -ge 2 ] || die "--port-base needs a number"
			base=$2
			;;
		*) die "up: unknown argument '$1'" ;;
		esac
		shift 2
	done
	if ! [[ $addr =~ ^([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})$ ]] ||
		[ "${BASH_REMATCH[1]}" -gt 255 ] || [ "${BASH_REMATCH[2]}" -gt 255 ] ||
		[ "${BASH_REMATCH[3]}" -gt 255 ] || [ "${BASH_REMATCH[4]}" -gt 255 ]; then
		die "--addr: not an IPv4 address: $addr"
	fi
	ADDR=$addr
	if [ -n "$base" ]; then
		if ! [[ $base =~ ^[0-9]{1,5}$ ]] || [ "$base" -lt 1024 ] ||
			[ "$base" -gt $((65535 - PORTS + 1)) ]; then
			die "--port-base: not a port in 1024..$((65535 - PORTS + 1)): $base"
		fi
		port_free "$ADDR" "$base" ||
			die "ports $base..$((base + PORTS - 1)) on $ADDR: some are in use"
	fi
	for c in ceph-mon ceph-osd ceph-mds ceph-fuse monmaptool "$PYTHON"; do
		command -v "$c" >/dev/null || die "$c not found (scripts/install-deps.sh installs it)"
	done

	# Claim DIR: ceph.conf is created exclusively, so of two concurrent ups
	# on one DIR only one gets past here.
	if [ -e "$DIR" ]; then
		[ -d "$DIR" ] || die "not a directory: $DIR"
		if is_cluster_dir; then
			[ -z "$(cluster_pids)" ] || die "$DIR already holds a running cluster"
			die "$DIR holds a stopped cluster; run 'cluster.sh down $DIR' first"
		fi
		[ -z "$(ls -A "$DIR")" ] || die "$DIR is not empty"
	else
		mkdir -p "$DIR" 2>/dev/null || die "cannot create $DIR"
		UP_CREATED=1
	fi
	(set -C && echo "$MARKER" >"$CONF") 2>/dev/null || die "$DIR already holds a cluster"
	trap up_cleanup EXIT
	trap 'exit 130' INT TERM HUP
	mkdir -p "$DIR"/{run,log,keys,mounts,crash,osd.0}
	FSID=$(cat /proc/sys/kernel/random/uuid)
	osd_uuid=$(cat /proc/sys/kernel/random/uuid)

	# A key per entity, and all of them for the mon's initial auth database.
	keyring "$DIR/keyring" client.admin mon 'allow *' osd 'allow *' mds 'allow *' mgr 'allow *'
	keyring "$DIR/keys/mon.keyring" mon. mon 'allow *'
	keyring "$DIR/keys/osd.0.keyring" osd.0 mon 'allow profile osd' osd 'allow *' \
		mgr 'allow profile osd'
	keyring "$DIR/keys/mds.a.keyring" mds.a mon 'allow profile mds' osd 'allow *' mds 'allow' \
		mgr 'allow profile mds'
	cat "$DIR/keys/mon.keyring" "$DIR/keyring" "$DIR/keys/osd.0.keyring" \
		"$DIR/keys/mds.a.keyring" >"$DIR/keys/all.keyring"

	if [ -n "$base" ]; then
		BASE=$base
	else
		# Start from a slot that depends on DIR, so clusters started at
		# the same moment rarely try the same ports.
		SLOT=$(($(printf '%s' "$DIR" | cksum | cut -d' ' -f1) % AUTO_SLOTS))
		TRIES=0
		pick_base
	fi
	write_conf
	# The OSD's store is made (no mon needed) while the mon starts.
	ceph-osd -c "$CONF" -i 0 --mkfs --no-mon-config --osd-uuid "$osd_uuid" \
		</dev/null >"$DIR/log/osd-mkfs.out" 2>&1 &
	mkfs_job=$!
	until start_mon; do
		[ -z "$base" ] || die "port $BASE on $ADDR is in use"
		pick_base
		write_conf
	done
	finish $mkfs_job "$DIR/log/osd-mkfs.out" "osd mkfs"
	# The MDS waits as a standby until the file system exists.
	ceph-mds -c "$CONF" -i a </dev/null >"$DIR/log/mds.a.out" 2>&1 &
	mds_job=$!
	"$PYTHON" "$MONCTL" "$CONF" setup "$osd_uuid" "$DIR/log/osd.0.out" -- \
		ceph-osd -c "$CONF" -i 0 </dev/null >"$DIR/log/monctl.out" 2>&1 &
	setup_job=$!
	finish $mds_job "$DIR/log/mds.a.out" ceph-mds
	finish $setup_job "$DIR/log/monctl.out" "cluster set-up"

	# Usable: a client mounts, writes through to the OSD and makes /hsp.
	mnt=$DIR/run/probe
	mkdir "$mnt"
	echo "$mnt" >"$DIR/mounts/probe"
	ceph-fuse -c "$CONF" --id admin --pid-file "$DIR/run/probe.pid" "$mnt" \
		</dev/null >"$DIR/log/probe-mount.out" 2>&1 ||
		die "probe mount failed: $(fuse_error "$DIR/log/probe-mount.out") (log: $DIR/log/probe-mount.out)"
	mkdir -p "$mnt/hsp" || die "cannot create /hsp in the file system"
	dd if=/dev/zero of="$mnt/hsp/.probe" bs=4096 count=1 conv=fsync status=none 2>/dev/null ||
		die "cannot write to the file system"
	rm -f "$mnt/hsp/.probe"
	probe_umount
	UP_DONE=1
}

# Unmounts the probe and waits for its ceph-fuse to end its MDS session: a
# killed client would keep the session (and its caps) for minutes.
probe_umount() {
	local pid=""
	read -r pid 2>/dev/null <"$DIR/run/probe.pid" || true
	umount -- "$DIR/run/probe" 2>/dev/null || die "cannot unmount the probe mount"
	rm -f "$DIR/mounts/probe"
	rmdir "$DIR/run/probe"
	if [ -n "$pid" ] && ! wait_gone "$STOP_TIMEOUT" "$pid"; then
		die "probe ceph-fuse (pid $pid) did not exit after unmount"
	fi
}

# --- down -------------------------------------------------------------------

cmd_down() {
	cluster_dir "${1:-}"
	[ $# -le 1 ] || usage down
	if [ -e "$DIR" ]; then
		[ -d "$DIR" ] || die "not a directory: $DIR"
		is_cluster_dir || [ -z "$(ls -A "$DIR")" ] || die "not a cluster directory: $DIR"
	fi
	stop_all
	[ ! -e "$DIR" ] || remove_dir
}

# --- authorize ------------------------------------------------------------

require_running() {
	is_cluster_dir || die "no cluster in $DIR"
	[ -n "$(cluster_pids)" ] || die "the cluster in $DIR is not running"
}

cmd_authorize() {
	local id=${2:-} path=${3:-} perms=${4:-rw} mnt pid="" kr out
	cluster_dir "${1:-}"
	if [ $# -lt 3 ] || [ $# -gt 4 ]; then
		usage authorize
	fi
	[[ $id =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]*$ ]] || die "invalid client id: '$id'"
	[ "$id" != admin ] || die "client.admin exists already"
	case $path in /*) ;; *) die "PATH must be absolute in the file system: '$path'" ;; esac
	case /$path/ in */../* | */./*) die "PATH must not contain . or ..: '$path'" ;; esac
	[[ $perms =~ ^(r|rw|rwp|rws|rwps)$ ]] || die "PERMS must be r, rw, rwp, rws or rwps: '$perms'"
	require_running
	# The path must exist before a client restricted to it can mount it.
	if [ "$path" != / ]; then
		mnt=$(mktemp -d "$DIR/run/authorize.XXXXXX")
		echo "$mnt" >"$DIR/mounts/${mnt##*/}"
		if ! ceph-fuse -c "$CONF" --id admin --pid-file "$mnt.pid" "$mnt" </dev/null >"$mnt.out" 2>&1; then
			rm -f "$DIR/mounts/${mnt##*/}"
			rmdir "$mnt"
			die "admin mount failed: $(fuse_error "$mnt.out") (log: $mnt.out)"
		fi
		local rc=0
		mkdir -p -- "$mnt$path" 2>"$mnt.err" || rc=$?
		read -r pid 2>/dev/null <"$mnt.pid" || true
		umount -- "$mnt" 2>/dev/null || umount -l -- "$mnt" 2>/dev/null || true
		[ -z "$pid" ] || wait_gone "$STOP_TIMEOUT" "$pid" || true
		rm -f "$DIR/mounts/${mnt##*/}" "$mnt.out" "$mnt.pid"
		rmdir "$mnt" 2>/dev/null || true
		[ $rc -eq 0 ] || die "cannot create $path: $(last_line "$mnt.err")"
		rm -f "$mnt.err"
	fi
	kr=$DIR/client.$id.keyring
	out=$("$PYTHON" "$MONCTL" "$CONF" authorize "client.$id" "$path" "$perms" 2>&1) ||
		die "authorize: ${out#monctl: }"
	printf '%s\n' "$out" >"$kr.tmp"
	mv -f "$kr.tmp" "$kr"
	echo "$kr"
}

# --- mount / umount ---------------------------------------------------------

# fuse_error LOG: what a failed ceph-fuse said.  Its threads share stderr, so
# "ceph mount failed with" and the "(1) Operation not permitted" that follows
# can end up on different lines.
fuse_error() {
	local msg
	if grep -q 'ceph mount failed' "$1"; then
		msg="ceph mount failed with $(grep -oE '\([0-9]+\) [A-Z][A-Za-z0-9 ]*[A-Za-z0-9]' "$1" | tail -n 1)"
	else
		msg=$(grep -h 'failed\|rror' "$1" | tail -n 1 | sed 's/^ceph-fuse\[[0-9]*\]: //; s/[[:space:]]*$//')
	fi
	printf '%s' "${msg:-$(last_line "$1")}"
}

cmd_mount() {
	local mp=${2:-} id=admin keyring="" path=/ rec pid="" log
	cluster_dir "${1:-}"
	[ $# -ge 2 ] || usage mount
	shift 2
	while [ $# -gt 0 ]; do
		[ $# -ge 2 ] || die "mount: $1 needs a value"
		case $1 in
		--id) id=$2 ;;
		--keyring) keyring=$2 ;;
		--path) path=$2 ;;
		*) die "mount: unknown argument '$1'" ;;
		esac
		shift 2
	done
	[[ $id =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]*$ ]] || die "invalid client id: '$id'"
	case $path in /*) ;; *) die "--path must be absolute: '$path'" ;; esac
	require_running
	if [ -z "$keyring" ]; then
		if [ "$id" = admin ]; then keyring=$DIR/keyring; else keyring=$DIR/client.$id.keyring; fi
	fi
	[ -r "$keyring" ] || die "cannot read keyring $keyring"
	[ -d "$mp" ] || die "mount point is not a directory: $mp"
	mp=$(realpath -- "$mp")
	! mounted "$mp" || die "already mounted: $mp"
	rec=$(mktemp "$DIR/mounts/m.XXXXXX")
	echo "$mp" >"$rec"
	log=$DIR/log/${rec##*/}.out
	# dev,suid: ceph-fuse's default nodev,nosuid breaks device nodes and
	# setuid tools in a VE root.
	if ! ceph-fuse -c "$CONF" --id "$id" -k "$keyring" -r "$path" -o dev,suid \
		--pid-file "$DIR/run/${rec##*/}.pid" "$mp" </dev/null >"$log" 2>&1; then
		rm -f "$rec" "$DIR/run/${rec##*/}.pid"
		die "ceph-fuse failed: $(fuse_error "$log") (log: $log)"
	fi
}

cmd_umount() {
	local mp=${2:-} rec found="" pid=""
	cluster_dir "${1:-}"
	[ $# -eq 2 ] || usage umount
	mp=$(realpath -m -- "$mp")
	for rec in "$DIR"/mounts/m.*; do
		[ -f "$rec" ] && [ "$(cat "$rec")" = "$mp" ] && found=$rec && break
	done
	[ -n "$found" ] || die "not mounted from the cluster in $DIR: $mp"
	read -r pid 2>/dev/null <"$DIR/run/${found##*/}.pid" || true
	if mounted "$mp"; then
		local err
		err=$(umount -- "$mp" 2>&1) || die "cannot unmount $mp: ${err##*: }"
	fi
	if [ -n "$pid" ] && ! wait_gone "$STOP_TIMEOUT" "$pid"; then
		kill -9 "$pid" 2>/dev/null || true
	fi
	rm -f "$found" "$DIR/run/${found##*/}.pid"
}

# --- restart ----------------------------------------------------------------

# One daemon killed and started again with the same configuration, as a
# crash and a supervisor would; returns once the cluster serves again (the
# OSD up, an MDS active).  The mon and the MDS get SIGKILL: their state is on
# disk or in the pools.  The OSD gets SIGTERM: memstore keeps its data in
# RAM, so a killed OSD would take the whole file system with it.
cmd_restart() {
	local what=${2:-} name pid="" log since=()
	cluster_dir "${1:-}"
	[ $# -eq 2 ] || usage restart
	case $what in
	mon) name=mon.a ;;
	osd) name=osd.0 ;;
	mds) name=mds.a ;;
	*) die "restart: DAEMON is mon, osd or mds, not '$what'" ;;
	esac
	is_cluster_dir || die "no cluster in $DIR"
	read -r pid 2>/dev/null <"$DIR/run/$name.pid" || true
	case $pid in '' | *[!0-9]*) pid="" ;; esac
	if [ -n "$pid" ] && grep -qzxF -- "$CONF" "/proc/$pid/cmdline" 2>/dev/null && alive "$pid"; then
		# The mon replaces the killed MDS in its map only when the new
		# one boots: wait for an MDS other than this one.
		[ "$what" != mds ] || since=(mds "$("$PYTHON" "$MONCTL" "$CONF" mds-gid 2>/dev/null || echo 0)")
		if [ "$what" = osd ]; then kill -TERM "$pid"; else kill -KILL "$pid"; fi
		if ! wait_gone "$STOP_TIMEOUT" "$pid"; then
			kill -KILL "$pid" 2>/dev/null || true
			wait_gone "$STOP_TIMEOUT" "$pid" || die "$name (pid $pid) survives SIGKILL"
		fi
	fi
	log=$DIR/log/$name.out
	run "$log" "ceph-$what" "ceph-$what" -c "$CONF" -i "${name#*.}"
	# The OSD's address nonce is its pid: the new OSD, not the old one.
	if [ "$what" = osd ]; then
		read -r pid 2>/dev/null <"$DIR/run/$name.pid" || true
		since=(osd "$pid")
	fi
	run "$DIR/log/restart.out" "waiting for the cluster" "$PYTHON" "$MONCTL" "$CONF" wait "${since[@]}"
}

# --- main -------------------------------------------------------------------

[ $# -ge 1 ] || usage
VERB=$1
shift
case $VERB in
up | down | authorize | mount | umount | restart) ;;
-h | --help | help) usage ;;
*) die "unknown verb '$VERB' (up, down, authorize, mount, umount, restart)" ;;
esac
[ "$(id -u)" -eq 0 ] || die "must run as root"
"cmd_$VERB" "$@"
