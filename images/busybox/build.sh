#!/bin/sh
# Builds the busybox template from the busybox-static package's /bin/busybox.
#
#   build.sh OUTDIR   ->  OUTDIR/rootfs.tar.zst, OUTDIR/manifest.json
#
# The archive is reproducible (sorted, root:root numeric owners, mtime 0), and
# OUTDIR/.inputs records a hash of busybox and of this script: when neither
# changed, a second build does nothing.
set -eu

BUSYBOX=/bin/busybox

die() {
	echo "busybox/build.sh: $*" >&2
	exit 1
}

[ $# -eq 1 ] || {
	echo "usage: $0 OUTDIR" >&2
	exit 2
}
out=$1
[ "$(id -u)" -eq 0 ] || die "must run as root (the rootfs is owned by root)"
[ -x "$BUSYBOX" ] || die "$BUSYBOX not found: apt-get install busybox-static"

self=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")
inputs=$(cat "$BUSYBOX" "$self" | sha256sum | cut -d' ' -f1)
if [ -f "$out/rootfs.tar.zst" ] && [ -f "$out/manifest.json" ] &&
	[ "$(cat "$out/.inputs" 2>/dev/null || :)" = "$inputs" ]; then
	exit 0
fi

version=$("$BUSYBOX" --help 2>&1 | sed -n '1s/^BusyBox v\([0-9A-Za-z.+~-]*\).*/\1/p')
[ -n "$version" ] || die "cannot tell the version of $BUSYBOX"

umask 022
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP
root=$tmp/rootfs

# Empty mount points and the usual writable places.
for d in bin sbin usr/bin usr/sbin etc/init.d proc sys dev tmp run root var/log home; do
	mkdir -p "$root/$d"
done
chmod 1777 "$root/tmp"
chmod 0700 "$root/root"
ln -s ../run "$root/var/run"

cp "$BUSYBOX" "$root/bin/busybox"
chmod 0755 "$root/bin/busybox"
# One relative symlink per applet, so the tree also makes sense from the host.
"$BUSYBOX" --list-full | while read -r applet; do
	case $applet in '' | bin/busybox) continue ;; esac
	dir=.
	case $applet in */*) dir=${applet%/*} ;; esac
	up=
	d=$dir
	while [ "$d" != . ]; do
		up=../$up
		case $d in */*) d=${d%/*} ;; *) d=. ;; esac
	done
	[ -d "$root/$dir" ] || mkdir -p "$root/$dir"
	ln -s "${up}bin/busybox" "$root/$applet"
done

cat >"$root/etc/passwd" <<'END'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
END
cat >"$root/etc/group" <<'END'
root:x:0:
nogroup:x:65534:
END
cat >"$root/etc/shadow" <<'END'
root:*:19000:0:99999:7:::
nobody:*:19000:0:99999:7:::
END
chmod 0600 "$root/etc/shadow"
# Empty: the VE keeps the hostname the runtime gave it.
: >"$root/etc/hostname"
cat >"$root/etc/hosts" <<'END'
127.0.0.1	localhost
::1	localhost ip6-localhost ip6-loopback
END
# init's stdio is /dev/null, so no console shells: `hsp exec` gives a shell.
# SIGUSR2 powers off, SIGTERM reboots, SIGUSR1 halts.
cat >"$root/etc/inittab" <<'END'
::sysinit:/etc/init.d/rcS
::shutdown:/bin/sync
END
cat >"$root/etc/init.d/rcS" <<'END'
#!/bin/sh
# Runs once at boot.  The runtime has already mounted /proc, /sys, /dev,
# /dev/pts, /dev/shm, /dev/mqueue and /sys/fs/cgroup: mount nothing here.
PATH=/sbin:/bin:/usr/sbin:/usr/bin
export PATH

# Keep the hostname the runtime set unless /etc/hostname names one.
if [ -s /etc/hostname ]; then
	read -r h </etc/hostname || :
	[ -z "$h" ] || hostname "$h"
fi
ip link set lo up 2>/dev/null || :
exit 0
END
chmod 0755 "$root/etc/init.d/rcS"

mkdir -p "$out"
rm -f "$out/.inputs"
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --format=gnu \
	-C "$root" -cf "$tmp/rootfs.tar" .
zstd -q -f -3 -o "$out/.rootfs.tar.zst.tmp" "$tmp/rootfs.tar"
# Templates may hold password hashes: readable by root only.
chmod 0600 "$out/.rootfs.tar.zst.tmp"
mv -f "$out/.rootfs.tar.zst.tmp" "$out/rootfs.tar.zst"
cat >"$out/.manifest.json.tmp" <<END
{
  "name": "busybox",
  "os": "busybox",
  "version": "$version",
  "init": ["/sbin/init"],
  "stop_signal": "SIGUSR2",
  "created": $(date +%s)
}
END
mv -f "$out/.manifest.json.tmp" "$out/manifest.json"
echo "$inputs" >"$out/.inputs"
