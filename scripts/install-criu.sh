#!/bin/sh
# Provides CRIU >= 4.2 for live migration (hsp-runtime checkpoint/restore).
# Debian 12's criu (3.17) fails on kernels >= 6.13 and trixie's 4.1 cannot
# dump TCP sockets on >= 6.16, so criu comes from a minimal Debian sid tree
# that the runtime enters with its own mount namespace (src/runtime/criu.c).
# Idempotent: an existing tree with criu >= 4.2 is kept (a re-run costs a
# few milliseconds); a fresh one takes ~30 s and ~250 MB.  Needs root.
#
#   HSP_CRIU_ROOT    where the tree goes (default /var/lib/hsp-criu/root)
#   HSP_CRIU_MIRROR  Debian mirror (default: the one apt uses here)
set -eu

ROOT=${HSP_CRIU_ROOT:-/var/lib/hsp-criu/root}

have_criu() {
	[ -x "$ROOT/usr/sbin/criu" ] || return 1
	v=$(chroot "$ROOT" /usr/sbin/criu --version 2>/dev/null | sed -n 's/^Version: \([0-9]*\)\.\([0-9]*\).*/\1 \2/p')
	[ -n "$v" ] || return 1
	set -- $v
	[ "$1" -gt 4 ] || { [ "$1" -eq 4 ] && [ "$2" -ge 2 ]; }
}

if have_criu; then
	exit 0
fi

# The mirror apt already uses (a deb822 .sources or a one-line list).
mirror=${HSP_CRIU_MIRROR:-}
if [ -z "$mirror" ]; then
	mirror=$(sed -n 's/^URIs: *\([^ ]*\/debian\/\{0,1\}\)$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1)
fi
if [ -z "$mirror" ]; then
	mirror=$(sed -n 's/^deb *\(\[[^]]*\] *\)\{0,1\}\([^ ]*\/debian\/\{0,1\}\) .*/\2/p' /etc/apt/sources.list 2>/dev/null | head -n1)
fi
mirror=${mirror:-http://deb.debian.org/debian}

command -v debootstrap >/dev/null 2>&1 || {
	echo "install-criu: debootstrap is missing (apt-get install debootstrap)" >&2
	exit 1
}
echo "install-criu: debootstrapping criu from Debian sid into $ROOT ($mirror) ..."
tmp="$ROOT.tmp.$$"
rm -rf "$tmp"
mkdir -p "$(dirname "$ROOT")"
# iproute2: criu saves and restores a VE's addresses and routes with ip.
if ! debootstrap --variant=minbase --include=criu,iproute2 sid "$tmp" "$mirror" >"$tmp.log" 2>&1; then
	echo "install-criu: debootstrap failed; last lines of $tmp.log:" >&2
	tail -n 5 "$tmp.log" >&2
	rm -rf "$tmp"
	exit 1
fi
chroot "$tmp" apt-get clean >/dev/null 2>&1 || :
rm -rf "$tmp/var/lib/apt/lists/"* "$tmp.log"
rm -rf "$ROOT"
mv "$tmp" "$ROOT"
have_criu || { echo "install-criu: no criu >= 4.2 in $ROOT" >&2 && exit 1; }
echo "install-criu: $(chroot "$ROOT" /usr/sbin/criu --version | head -n1)"
