#!/bin/sh
# Installs every Debian package hsp needs to build, run and test. Idempotent:
# packages already present are not reinstalled, and apt is only touched when
# something is missing.
set -eu

PKGS="
build-essential cmake pkg-config git clang-format
libcgroup-dev libseccomp-dev libcap-dev libjson-c-dev libarchive-dev libzstd-dev
libnl-3-dev libnl-route-3-dev
check valgrind
busybox-static debootstrap debian-archive-keyring zstd tar iproute2 util-linux procps bc
acl attr e2fsprogs tcpdump
openssh-client iputils-ping
crun hyperfine jq
qemu-system-x86 cpio kmod
libgrpc-dev protobuf-c-compiler libprotobuf-c-dev protobuf-compiler libsqlite3-dev libssl-dev sqlite3
openssl curl python3-yaml
ceph-mon ceph-osd ceph-mds ceph-fuse ceph-common libcephfs-dev librados-dev python3-rados
"

# The interop tests' client runs on Node.js; a machine that has it from
# elsewhere (nodesource ships npm inside nodejs) keeps it.
command -v npm >/dev/null 2>&1 || PKGS="$PKGS nodejs npm"

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done

if [ -n "$missing" ]; then
	echo "install-deps: installing:$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# Live migration's criu (>= 4.2, from a Debian sid tree).  Not fatal: a node
# without it runs VEs as before and `hsp-runtime info` says why it cannot
# checkpoint them (the checkpoint tests skip with that reason).
sh "$(dirname "$0")/install-criu.sh" ||
	echo "install-deps: no criu for live migration (see above); continuing" >&2
