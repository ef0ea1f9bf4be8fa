#!/bin/sh
# Builds the Debian 12 (bookworm) template with debootstrap from the Debian
# mirror this machine's apt uses.
#
#   build.sh OUTDIR   ->  OUTDIR/rootfs.tar.zst, OUTDIR/manifest.json
#
# Init is sysvinit (Debian's own `sysvinit-core`): it reaps zombies, runs the
# /etc/init.d scripts that packages installed later register themselves with,
# and needs no cgroup writes (systemd needs a writable cgroupfs, and a VE's is
# read-only).  It ignores SIGTERM, and in a pid namespace an ignored signal
# from outside is dropped, so the stop signal is SIGPWR: /etc/inittab maps it
# to `shutdown -h now`, which runs the rc0 scripts (sshd stops) and ends in
# reboot(2), i.e. init killed by SIGINT, which the monitor records as a
# poweroff.  `reboot` inside does the same with SIGHUP: a restart.
#
# Not baked in: ssh host keys and /etc/machine-id (made at first boot by
# /etc/init.d/hsp-firstboot, and kept), the hostname (the runtime sets it;
# /etc/hostname is empty), DNS (resolv.conf is empty until the VE has a
# network).  Gone: apt's lists and caches, docs (copyright files stay), man
# and info pages, translations.  dpkg's database is intact.
#
# OUTDIR/.inputs records a hash of this script, the mirrors and their
# InRelease files: when none changed, a second build does nothing.  Packages
# are downloaded once into $HSP_IMAGE_CACHE/debian-12 (default
# /var/cache/hsp-images/debian-12).  HSP_DEBIAN_MIRROR and
# HSP_DEBIAN_SECURITY_MIRROR override the mirrors read from apt's sources
# (an empty security mirror means no security updates).
set -eu

SUITE=bookworm
NAME=debian-12
INCLUDE=sysvinit-core,openssh-server,iproute2,nftables,procps
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

die() {
	echo "$NAME/build.sh: $*" >&2
	exit 1
}

[ $# -eq 1 ] || {
	echo "usage: $0 OUTDIR" >&2
	exit 2
}
out=$1
[ "$(id -u)" -eq 0 ] || die "must run as root (debootstrap needs it)"
command -v debootstrap >/dev/null || die "debootstrap not found: apt-get install debootstrap"
command -v zstd >/dev/null || die "zstd not found: apt-get install zstd"
[ -f "$KEYRING" ] || die "$KEYRING not found: apt-get install debian-archive-keyring"

# find_mirror SUITE: the first URI that apt's sources (one-line and deb822
# formats) give for SUITE with type deb, without the trailing slash.
find_mirror() {
	{
		for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
			[ -f "$f" ] || continue
			awk -v suite="$1" '
				$1 != "deb" { next }
				{
					i = 2
					if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
					if ($(i + 1) == suite) { print $i; exit }
				}' "$f"
		done
		for f in /etc/apt/sources.list.d/*.sources; do
			[ -f "$f" ] || continue
			awk -v suite="$1" '
				function check() {
					if (types ~ /(^| )deb( |$)/ && enabled !~ /^[Nn][Oo]$/ &&
					    (" " suites " ") ~ (" " suite " ") && uris != "") {
						split(uris, u, " "); print u[1]; found = 1
					}
					types = suites = uris = enabled = ""
				}
				/^[ \t]*$/ { check(); if (found) exit; next }
				/^#/ { next }
				/^[A-Za-z-]+:/ {
					key = tolower($1); sub(/:.*/, "", key)
					val = $0; sub(/^[^:]*:[ \t]*/, "", val)
					if (key == "types") types = val
					else if (key == "suites") suites = val
					else if (key == "uris") uris = val
					else if (key == "enabled") enabled = val
					next
				}
				END { if (!found) check() }' "$f"
		done
	} | head -n1 | sed 's:/*$::'
}

# "${VAR-default}": set but empty means "none", for the security mirror.
mirror=${HSP_DEBIAN_MIRROR:-$(find_mirror "$SUITE")}
[ -n "$mirror" ] || die "no Debian mirror for $SUITE in /etc/apt/sources.list{,.d} (set HSP_DEBIAN_MIRROR)"
security=${HSP_DEBIAN_SECURITY_MIRROR-$(find_mirror "$SUITE-security")}
cache=${HSP_IMAGE_CACHE:-/var/cache/hsp-images}/$NAME
self=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")

umask 022
tmp=$(mktemp -d)
root=$tmp/rootfs
# Every mount of the build lives in a private mount namespace (below), so a
# killed build leaves none behind; --one-file-system is a second guard.
trap 'rm -rf --one-file-system "$tmp"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

# The inputs: this script, the mirrors and what they publish (InRelease names
# the hash of every package index).
fetch() {
	/usr/lib/apt/apt-helper -o APT::Sandbox::User=root -qq download-file "$1" "$2" >/dev/null 2>&1
}
mkdir "$tmp/release"
fetched=yes
fetch "$mirror/dists/$SUITE/InRelease" "$tmp/release/main" || fetched=no
if [ "$fetched" = yes ]; then
	fetch "$mirror/dists/$SUITE-updates/InRelease" "$tmp/release/updates" || :
	if [ -n "$security" ]; then
		fetch "$security/dists/$SUITE-security/InRelease" "$tmp/release/security" || fetched=no
	fi
fi
if [ "$fetched" = no ]; then
	if [ -f "$out/rootfs.tar.zst" ] && [ -f "$out/manifest.json" ]; then
		echo "$NAME/build.sh: cannot reach $mirror${security:+ or $security}: keeping the template built before" >&2
		exit 0
	fi
	die "cannot fetch $SUITE's InRelease from $mirror${security:+ or $security}"
fi
inputs=$( (
	cat "$self"
	echo "$INCLUDE $mirror $security"
	cat "$tmp"/release/*
) | sha256sum | cut -d' ' -f1)
if [ -f "$out/rootfs.tar.zst" ] && [ -f "$out/manifest.json" ] &&
	[ "$(cat "$out/.inputs" 2>/dev/null || :)" = "$inputs" ]; then
	exit 0
fi

# Files made by the build get the newest InRelease date as their mtime (the
# archive clamps to it), so the same inputs give the same archive.
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
	SOURCE_DATE_EPOCH=0
	for f in "$tmp"/release/*; do
		d=$(sed -n 's/^Date: //p' "$f" | head -n1)
		s=$(date -d "$d" +%s 2>/dev/null) || continue
		[ "$s" -le "$SOURCE_DATE_EPOCH" ] || SOURCE_DATE_EPOCH=$s
	done
fi
export SOURCE_DATE_EPOCH

mkdir -p "$cache/debs"
echo "$NAME/build.sh: debootstrap $SUITE from $mirror" >&2
# debootstrap mounts /proc and /sys in the target: keep them out of the
# host's mount table.
if ! unshare --mount --propagation private \
	debootstrap --variant=minbase --include="$INCLUDE" --keyring="$KEYRING" \
	--cache-dir="$cache/debs" "$SUITE" "$root" "$mirror" >"$tmp/debootstrap.log" 2>&1; then
	tail -n 20 "$tmp/debootstrap.log" >&2
	[ ! -f "$root/debootstrap/debootstrap.log" ] || tail -n 20 "$root/debootstrap/debootstrap.log" >&2
	die "debootstrap failed"
fi

# apt's sources for the VE: the same mirrors.
rm -f "$root/etc/apt/sources.list"
{
	printf 'Types: deb\nURIs: %s\nSuites: %s %s-updates\nComponents: main\nSigned-By: %s\n' \
		"$mirror" "$SUITE" "$SUITE" "$KEYRING"
	[ -z "$security" ] ||
		printf '\nTypes: deb\nURIs: %s\nSuites: %s-security\nComponents: main\nSigned-By: %s\n' \
			"$security" "$SUITE" "$KEYRING"
} >"$root/etc/apt/sources.list.d/debian.sources"

# The init scripts of a container: the first boot makes what must differ
# between VEs.  Ordered after the local file systems and before ssh.
cat >"$root/etc/init.d/hsp-firstboot" <<'END'
#!/bin/sh
### BEGIN INIT INFO
# Provides:          hsp-firstboot
# Required-Start:    $local_fs
# Required-Stop:
# X-Start-Before:    ssh
# Default-Start:     S
# Default-Stop:
# Short-Description: Per-VE identity: machine-id and ssh host keys
# Description:       The template ships neither; each VE makes its own at
#                    its first boot and keeps them.
### END INIT INFO
PATH=/sbin:/bin:/usr/sbin:/usr/bin
case ${1:-} in
start) ;;
stop | restart | force-reload | status) exit 0 ;;
*)
	echo "usage: $0 start" >&2
	exit 3
	;;
esac
if [ ! -s /etc/machine-id ]; then
	tr -d '-' </proc/sys/kernel/random/uuid >/etc/machine-id.new &&
		mv -f /etc/machine-id.new /etc/machine-id
fi
# Generates only the host keys that are missing.  RSA (0.2-2 s of CPU)
# is made in the background, so sshd starts at once with ed25519 and ecdsa
# (milliseconds; every OpenSSH client since 2011 takes ecdsa) and serves
# RSA from the next boot on.  Not SIGHUP: sshd re-executes itself on it and
# refuses connections meanwhile, which a customer's first login would hit.
if [ -x /usr/bin/ssh-keygen ]; then
	for t in ed25519 ecdsa; do
		[ -s /etc/ssh/ssh_host_${t}_key ] ||
			ssh-keygen -q -t $t -N "" -f /etc/ssh/ssh_host_${t}_key </dev/null >/dev/null
	done
	if [ ! -s /etc/ssh/ssh_host_rsa_key ]; then
		(
			k=/etc/ssh/ssh_host_rsa_key
			rm -f $k.new $k.new.pub
			ssh-keygen -q -t rsa -N "" -f $k.new </dev/null >/dev/null 2>&1 || exit 0
			mv -f $k.new.pub $k.pub && mv -f $k.new $k
		) </dev/null >/dev/null 2>&1 &
	fi
fi
exit 0
END
chmod 0755 "$root/etc/init.d/hsp-firstboot"
cat >"$root/usr/sbin/policy-rc.d" <<'END'
#!/bin/sh
exit 101
END
chmod 0755 "$root/usr/sbin/policy-rc.d"
# A resolver for apt inside the build only.
cp /etc/resolv.conf "$root/etc/resolv.conf"

# In the target, in a private mount namespace: security updates (downloads
# kept in the cache), then registering hsp-firstboot with insserv.
cat >"$tmp/in-target.sh" <<'END'
set -eu
root=$1 cache=$2
mount -t proc proc "$root/proc"
mount --rbind /dev "$root/dev"
mkdir -p "$cache/partial"
mount --bind "$cache" "$root/var/cache/apt/archives"
export DEBIAN_FRONTEND=noninteractive LC_ALL=C PATH=/usr/sbin:/usr/bin:/sbin:/bin
chroot "$root" apt-get -qq update
chroot "$root" apt-get -qq -o Dpkg::Options::=--force-confold -o Dpkg::Use-Pty=0 dist-upgrade >/dev/null
chroot "$root" update-rc.d hsp-firstboot defaults
# Boot scripts for hardware and file systems a VE does not have: the runtime
# mounts /dev, devpts and /dev/shm, and the root needs no fsck.  Together they
# took ~230 ms of a ~490 ms boot to sshd.  `disable` (not `remove`) survives
# package upgrades.  mountkernfs (/run as tmpfs) and mountall (the VE's own
# fstab) stay.
for s in checkroot.sh checkfs.sh checkroot-bootclean.sh mountdevsubfs.sh mount-configfs \
	hwclock.sh brightness mountnfs.sh mountnfs-bootclean.sh; do
	if [ -e "$root/etc/init.d/$s" ]; then
		chroot "$root" update-rc.d "$s" disable S >/dev/null 2>&1
	fi
done
END
if ! unshare --mount --propagation private sh "$tmp/in-target.sh" "$root" "$cache/debs" >"$tmp/target.log" 2>&1; then
	tail -n 20 "$tmp/target.log" >&2
	die "updating the target failed"
fi
rm -f "$root/usr/sbin/policy-rc.d"

# sysvinit in a VE: no consoles (init's stdio is /dev/null, `hsp exec` gives
# a shell), SIGPWR shuts down, no powerfail scripts exist.
sed -i -e '/^[1-6]:[0-9]*:respawn:.*getty/s/^/#/' \
	-e '/^z6:/s/^/#/' \
	-e 's|^pf::powerwait:.*|pf::powerwait:/sbin/shutdown -h now|' \
	-e '/^p[no]::/s/^/#/' "$root/etc/inittab"
grep -q '^pf::powerwait:/sbin/shutdown -h now$' "$root/etc/inittab" ||
	die "unexpected /etc/inittab: no powerwait entry"
# No hardware clock to read or set.
if [ -f "$root/etc/default/hwclock" ] && grep -q '^#*HWCLOCKACCESS=' "$root/etc/default/hwclock"; then
	sed -i 's/^#*HWCLOCKACCESS=.*/HWCLOCKACCESS=no/' "$root/etc/default/hwclock"
else
	echo HWCLOCKACCESS=no >>"$root/etc/default/hwclock"
fi
# pam_loginuid writes /proc/self/loginuid, which a process may set only once
# without CAP_AUDIT_CONTROL in the host's user namespace: when the runtime
# was started from a login session, the VE inherits that loginuid and a
# "required" pam_loginuid refuses every ssh login.  The VE's audit trail is
# not ours to keep, so a failure there must not block the session.
sed -i 's/^\(session[[:space:]]\{1,\}\)required\([[:space:]]\{1,\}pam_loginuid\.so\)/\1optional\2/' \
	"$root"/etc/pam.d/*
! grep -q '^session[[:space:]]*required[[:space:]]*pam_loginuid' "$root"/etc/pam.d/* ||
	die "pam_loginuid is still required somewhere in /etc/pam.d"

# Per-VE identity and host-specific files.
rm -f "$root"/etc/ssh/ssh_host_*
: >"$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id"
: >"$root/etc/hostname"
cat >"$root/etc/hosts" <<'END'
127.0.0.1	localhost
::1	localhost ip6-localhost ip6-loopback
ff02::1	ip6-allnodes
ff02::2	ip6-allrouters
END
: >"$root/etc/resolv.conf"
cat >"$root/etc/fstab" <<'END'
# The runtime mounts /proc, /sys, /dev and the cgroups of this VE.
END
# debootstrap copied some of these from the host, with the host's modes.
chmod 0644 "$root/etc/hostname" "$root/etc/hosts" "$root/etc/resolv.conf" \
	"$root/etc/machine-id" "$root/etc/fstab"

# Clean: apt's lists and caches, logs, docs but their copyright files, man
# and info pages, translations.  Packages installed later keep theirs.
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* "$root"/var/cache/ldconfig/aux-cache \
	"$root"/var/cache/man "$root"/var/cache/debconf/*-old "$root"/var/lib/dpkg/*-old \
	"$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/locale/*/LC_MESSAGES \
	"$root"/debootstrap "$root"/tmp/* "$root"/var/tmp/* "$root"/root/.cache
mkdir -p "$root/var/lib/apt/lists/partial" "$root/var/cache/apt/archives/partial"
find "$root/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
find "$root/var/log" -type f -exec sh -c 'for f; do : >"$f"; done' sh {} +

release=$(cat "$root/etc/debian_version")

mkdir -p "$out"
rm -f "$out/.inputs"
tar --sort=name --mtime=@"$SOURCE_DATE_EPOCH" --clamp-mtime --numeric-owner --format=gnu \
	-C "$root" -cf "$tmp/rootfs.tar" .
zstd -q -f -3 -T0 -o "$out/.rootfs.tar.zst.tmp" "$tmp/rootfs.tar"
# Templates may hold password hashes: readable by root only.
chmod 0600 "$out/.rootfs.tar.zst.tmp"
mv -f "$out/.rootfs.tar.zst.tmp" "$out/rootfs.tar.zst"
cat >"$out/.manifest.json.tmp" <<END
{
  "name": "$NAME",
  "os": "debian",
  "version": "12",
  "release": "$release",
  "init": ["/sbin/init"],
  "stop_signal": "SIGPWR",
  "created": $(date +%s)
}
END
mv -f "$out/.manifest.json.tmp" "$out/manifest.json"
echo "$inputs" >"$out/.inputs"
