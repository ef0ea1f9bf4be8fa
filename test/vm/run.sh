#!/bin/bash
# Runs hsp's unit and integration tests inside a QEMU VM (TCG, no KVM needed)
# whose kernel has a pure cgroup v2 hierarchy, as production hosts do:
#
#   HSP_BUILD=/path/to/build bash test/vm/run.sh      (as root)
#
# 1. Kernel: the Debian package behind linux-image-cloud-amd64, fetched with
#    `apt-get download` (the only network access) and cached with the few
#    modules the tests load.  A second run downloads nothing.
# 2. Initramfs: static busybox, bash and the host tools the tests use (with
#    their libraries), hsp-runtime, the unit test binaries, test/integration,
#    images/ and a busybox template store built with images/build.sh.
#    Rebuilt only when its content changes.
# 3. The VM mounts cgroup2 (and nothing of v1) at /sys/fs/cgroup, checks it,
#    runs the tests (test/vm/guest.sh) and powers off; its console streams
#    here prefixed with "vm| " and goes to a log file.  Exit status: the
#    tests', or non-zero when the VM never printed its result (crash,
#    timeout).  Last line: "vm-cgroup-v2: N passed, N failed".
#
# Environment (all optional):
#   HSP_BUILD          build tree (default: <repo>/build)
#   HSP_VM_CACHE       cache directory (default: /var/cache/hsp-vm)
#   HSP_VM_LOG         console log (default: $HSP_BUILD/vm-console.log)
#   HSP_VM_TIMEOUT     hard limit for the VM, in seconds (default: 1200)
#   HSP_VM_UNIT        1 (default) or 0: run the unit test binaries
#   HSP_VM_ITESTS      integration files (default: all of them;
#                      "all": every file; "": none)
#   HSP_VM_CMD         a bash command to run in the VM instead of the tests
#   HSP_VM_SHELL=1     an interactive shell on the VM's console instead
#   HSP_VM_MODULES     kernel modules to load (default: "loop overlay veth
#                      bridge"; loop is for /tmp, the others for VEs)
#   HSP_VM_ADD         "SRC[:DEST] ..." host files added to this run only (not
#                      to the cached initramfs); executables with the
#                      libraries ldd names
#   HSP_VM_TAP         a tap device (in qemu's net namespace) for a virtio NIC
#   HSP_VM_NET         the guest's address on it, CIDR (eth0)
#   HSP_VM_TMP         ext4 (default: /tmp on ext4 on a loop device in memory,
#                      like a Debian host's root fs) or tmpfs
#   HSP_VM_KERNEL_PKG  kernel package (default: the one linux-image-cloud-amd64
#                      depends on)
#   HSP_VM_MEM, HSP_VM_SMP  memory in MiB (default 2048), vCPUs (default 2)
set -euo pipefail

t_begin=$EPOCHREALTIME
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
build=${HSP_BUILD:-$repo/build}
cache=${HSP_VM_CACHE:-/var/cache/hsp-vm}
vm_timeout=${HSP_VM_TIMEOUT:-1200}
modules_load=${HSP_VM_MODULES-loop overlay veth bridge}
# The cached kernel holds these (and their dependencies) whatever a run
# loads, so runs loading different sets share one kernel and initramfs.
# virtio_pci, virtio_net and ceph are for test/vm/ceph-kernel.sh, which says so when the
# kernel lacks them.
modules_optional="virtio_pci virtio_net ceph"
modules_want="loop overlay veth bridge $modules_optional"
for m in $modules_load; do
	case " $modules_want " in *" $m "*) ;; *) modules_want+=" $m" ;; esac
done
mem=${HSP_VM_MEM:-2048}
smp=${HSP_VM_SMP:-2}
shell_mode=${HSP_VM_SHELL:-0}
# Bump when the layout of the initramfs changes in a way its content
# does not show.
format=1

log() { echo "vm-test: $*" >&2; }
die() {
	log "error: $*"
	exit 2
}
# seconds between two $EPOCHREALTIME values, with 0.1 s
secs() { printf '%.1f' "$(bc <<<"scale=3; (${2/./} - ${1/./}) / 1000000")"; }

[ "$(id -u)" -eq 0 ] || die "must run as root"
for tool in qemu-system-x86_64 cpio apt-get dpkg-deb depmod bc ldd; do
	command -v "$tool" >/dev/null || die "$tool not found: run scripts/install-deps.sh"
done
[ -d "$build" ] || die "no build tree at $build (set HSP_BUILD)"
build=$(cd "$build" && pwd)
[ -x "$build/src/runtime/hsp-runtime" ] || die "$build/src/runtime/hsp-runtime not built"
[ -x "$build/src/runtime/hsp-monitor" ] || die "$build/src/runtime/hsp-monitor not built"
[ -x "$build/src/runtime/hsp-unpack" ] || die "$build/src/runtime/hsp-unpack not built"
[ -f "$repo/images/build.sh" ] || die "$repo/images/build.sh not found"
[ -x /bin/busybox ] || die "/bin/busybox not found: apt-get install busybox-static"
if ldd /bin/busybox >/dev/null 2>&1; then
	die "/bin/busybox is not static: apt-get install busybox-static"
fi

mkdir -p "$cache"
cache=$(cd "$cache" && pwd)
# One run at a time prepares the cache; the VMs themselves may run side by
# side (each boots from its own copies).
exec 9>"$cache/.lock"
flock 9

tmp=$(mktemp -d "${TMPDIR:-/tmp}/hsp-vm.XXXXXX")
qemu_pid=
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
	[ -z "$qemu_pid" ] || kill "$qemu_pid" 2>/dev/null || :
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

# --- 1. kernel ----------------------------------------------------------------

# Prints "PACKAGE VERSION" of the cloud kernel apt would install.
kernel_candidate() {
	local pkg=${HSP_VM_KERNEL_PKG:-} ver
	if [ -z "$pkg" ]; then
		pkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null |
			sed -n 's/^ *Depends: \(linux-image-[^ ]*-cloud-amd64\)$/\1/p' | head -n1)
	fi
	[ -n "$pkg" ] || return 1
	ver=$(apt-cache policy "$pkg" 2>/dev/null | awk '$1 == "Candidate:" && $2 != "(none)" { print $2 }')
	[ -n "$ver" ] || return 1
	echo "$pkg $ver"
}

apt_updated=no
apt_update() {
	[ "$apt_updated" = no ] || return 0
	log "apt-get update"
	apt-get update -qq || die "apt-get update failed"
	apt_updated=yes
}

# Downloads PACKAGE=VERSION into $cache/debs (if not there yet).
fetch_deb() {
	local pkg=$1 ver=$2 deb
	deb=$cache/debs/${pkg}_${ver//:/%3a}_amd64.deb
	if [ ! -s "$deb" ]; then
		mkdir -p "$cache/debs" "$tmp/dl"
		log "downloading $pkg $ver"
		# apt's sandbox user must be able to write there.
		chmod 0755 "$tmp"
		chown _apt "$tmp/dl" 2>/dev/null || :
		(cd "$tmp/dl" && apt-get download -q=2 "$pkg=$ver") >&2 || return 1
		local old
		for old in "$cache/debs/"*.deb; do
			[ ! -e "$old" ] || rm -f "$old"
		done
		mv "$tmp/dl/"*.deb "$deb"
	fi
	echo "$deb"
}

# The modules to load, in load order (dependencies first), as paths in
# $kdir/modules relative to /lib/modules/KVER.  Uses the extracted tree $1.
collect_modules() {
	local x=$1 kver=$2 out=$3 name
	local mdir=$x/lib/modules/$kver
	depmod -b "$x" "$kver" || die "depmod failed"
	declare -gA mod_path=() mod_deps=() mod_done=()
	mod_order=()
	local line key deps
	while IFS= read -r line; do
		key=${line%%:*}
		deps=${line#*:}
		name=$(basename "$key")
		name=${name%%.ko*}
		name=${name//-/_}
		mod_path[$name]=$key
		mod_deps[$name]=$deps
	done <"$mdir/modules.dep"
	for name in $modules_want; do
		visit_module "${name//-/_}" || optional_missing "$name" ||
			die "kernel module $name not found in $kver"
	done
	mkdir -p "$out/modules"
	local rel dest
	: >"$out/modules.load"
	: >"$out/modules.dep"
	for name in "${mod_order[@]}"; do
		rel=${mod_path[$name]}
		dest=${rel%.xz}
		dest=${dest%.zst}
		dest=${dest%.gz}
		mkdir -p "$out/modules/$(dirname "$dest")"
		case $rel in
		*.xz) xz -dc "$mdir/$rel" >"$out/modules/$dest" ;;
		*.zst) zstd -q -dc "$mdir/$rel" >"$out/modules/$dest" ;;
		*.gz) gzip -dc "$mdir/$rel" >"$out/modules/$dest" ;;
		*) cp "$mdir/$rel" "$out/modules/$dest" ;;
		esac
		echo "$dest" >>"$out/modules.load"
		echo "$dest:${mod_deps[$name]}" >>"$out/modules.dep"
	done
}

optional_missing() {
	case " $modules_optional " in *" $1 "*) ;; *) return 1 ;; esac
	log "note: kernel module $1 not found in $kver (not loaded)"
}

# load_order: the staged modules a run loads ($modules_load and their
# dependencies), in load order, from the kernel cache's modules.dep.
load_order() {
	local line key name
	declare -gA mod_path=() mod_deps=() mod_done=()
	mod_order=()
	while IFS= read -r line; do
		key=${line%%:*}
		name=$(basename "$key")
		name=${name%%.ko*}
		name=${name//-/_}
		mod_path[$name]=$key
		mod_deps[$name]=${line#*:}
	done <"$kdir/modules.dep"
	for name in $modules_load; do
		visit_module "${name//-/_}" || optional_missing "$name" ||
			die "kernel module $name not found in $kver"
	done
	for name in "${mod_order[@]}"; do echo "${mod_path[$name]}"; done
}

visit_module() {
	local name=$1 dep
	[ -z "${mod_done[$name]:-}" ] || return 0
	[ -n "${mod_path[$name]:-}" ] || return 1
	mod_done[$name]=1
	# modules.dep lists what a module needs, the ones loaded last first.
	local -a deps
	read -r -a deps <<<"${mod_deps[$name]}"
	local i
	for ((i = ${#deps[@]} - 1; i >= 0; i--)); do
		dep=$(basename "${deps[i]}")
		dep=${dep%%.ko*}
		visit_module "${dep//-/_}" || return 1
	done
	mod_order+=("$name")
}

# Sets kdir: a cache directory with vmlinuz, kver, modules/ and modules.load.
prepare_kernel() {
	local cand="" pkg ver deb
	cand=$(kernel_candidate) || :
	if [ -z "$cand" ]; then
		if [ -f "$cache/kernel/current/vmlinuz" ] && [ -z "${HSP_VM_KERNEL_PKG:-}" ]; then
			kdir=$(cd "$cache/kernel/current" && pwd -P)
			log "apt knows no cloud kernel; using the cached $(basename "$kdir")"
			{ [ "$(cat "$kdir/modules.want" 2>/dev/null)" = "$modules_want" ] && [ -f "$kdir/modules.dep" ]; } ||
				die "the cached kernel has other modules than \"$modules_want\" and apt cannot tell its package"
			return 0
		fi
		apt_update
		cand=$(kernel_candidate) || die "apt knows no linux-image-cloud-amd64 kernel"
	fi
	read -r pkg ver <<<"$cand"
	kdir=$cache/kernel/${pkg}_${ver//:/%3a}
	if [ -f "$kdir/vmlinuz" ] && [ -f "$kdir/modules.dep" ] &&
		[ "$(cat "$kdir/modules.want" 2>/dev/null)" = "$modules_want" ]; then
		ln -sfn "$(basename "$kdir")" "$cache/kernel/current"
		return 0
	fi
	if ! deb=$(fetch_deb "$pkg" "$ver"); then
		# The lists may name a version the mirror no longer has.
		[ "$apt_updated" = no ] || die "cannot download $pkg $ver"
		apt_update
		cand=$(kernel_candidate) || die "apt knows no linux-image-cloud-amd64 kernel"
		read -r pkg ver <<<"$cand"
		kdir=$cache/kernel/${pkg}_${ver//:/%3a}
		deb=$(fetch_deb "$pkg" "$ver") || die "cannot download $pkg $ver"
	fi
	log "extracting $(basename "$deb")"
	local x=$tmp/kx new=$tmp/kernel
	mkdir -p "$x" "$new"
	dpkg-deb -x "$deb" "$x"
	# Newer packages ship /usr/lib/modules; depmod -b wants BASE/lib/modules.
	if [ ! -d "$x/lib/modules" ] && [ -d "$x/usr/lib/modules" ]; then
		ln -s usr/lib "$x/lib"
	fi
	local d kver=
	for d in "$x/lib/modules/"*/; do
		if [ -d "$d/kernel" ]; then kver=$(basename "$d"); fi
	done
	if [ -z "$kver" ] || [ ! -f "$x/boot/vmlinuz-$kver" ]; then
		die "$deb has no kernel image"
	fi
	cp "$x/boot/vmlinuz-$kver" "$new/vmlinuz"
	cp "$x/boot/config-$kver" "$new/config"
	echo "$kver" >"$new/kver"
	echo "$pkg $ver" >"$new/package"
	collect_modules "$x" "$kver" "$new"
	printf '%s\n' "$modules_want" >"$new/modules.want"
	rm -rf "$x" "$kdir"
	mkdir -p "$cache/kernel"
	mv "$new" "$kdir"
	ln -sfn "$(basename "$kdir")" "$cache/kernel/current"
	# Older kernels are not needed any more.
	for d in "$cache/kernel/"*/; do
		d=${d%/}
		[ "$d" = "$kdir" ] || [ -L "$d" ] || rm -rf "$d"
	done
}

t0=$EPOCHREALTIME
prepare_kernel
kver=$(cat "$kdir/kver")
load_order >"$tmp/modules.load"
log "kernel: $(cat "$kdir/package") ($kver), modules: $(tr '\n' ' ' <"$tmp/modules.load")"

# --- 2. template store ----------------------------------------------------------

# images/build.sh does nothing when its inputs did not change.
sh "$repo/images/build.sh" busybox "$cache/store" >/dev/null ||
	die "images/build.sh busybox failed"
[ -f "$cache/store/templates/busybox/rootfs.tar.zst" ] ||
	die "images/build.sh made no templates/busybox/rootfs.tar.zst"

# --- 3. initramfs -----------------------------------------------------------------

stage=$tmp/stage
elfs=()

# add_file SRC DEST: copies SRC (following symlinks) to $stage/DEST.
add_file() {
	mkdir -p "$stage${2%/*}"
	cp -L --preserve=mode "$1" "$stage$2"
}

# add_libs FILE...: the shared libraries the FILEs need, and the dynamic
# loader, at their own paths (so RUNPATHs keep working).
add_libs() {
	local out lib
	# Non-zero when one of them is static: its libraries are none.
	out=$(LC_ALL=C ldd "$@" 2>&1) || :
	if grep -q 'not found' <<<"$out"; then
		die "missing libraries: $(grep -E '^[^[:space:]]|not found' <<<"$out" | tr -s ' \t\n' ' ')"
	fi
	while read -r lib; do
		add_file "$lib" "$lib"
	done < <(sed -n 's/.*=> \(\/[^ ]*\) (0x.*/\1/p; s/^[[:space:]]*\(\/[^ ]*\) (0x.*/\1/p' <<<"$out" | sort -u)
}

# add_tool NAME [required]: the host's NAME from PATH, at the same place.
add_tool() {
	local p dest
	p=$(type -P "$1") || {
		[ "${2:-}" != required ] || die "host tool $1 not found: run scripts/install-deps.sh"
		log "note: host tool $1 not found; the VM falls back to busybox's"
		return 0
	}
	# /bin, /sbin, /lib are symlinks into /usr in the VM (merged /usr).
	dest=${p#/usr}
	dest=/usr$dest
	add_file "$p" "$dest"
	# Scripts (egrep...) need no libraries.
	[ "$(head -c2 "$p")" = '#!' ] || elfs+=("$p")
}

build_stage() {
	rm -rf "$stage"
	mkdir -p "$stage"/{usr/bin,usr/sbin,usr/lib,usr/lib64,etc,proc,sys,dev,run,root,newroot,hsp/bin,hsp/unit,hsp/repo/test}
	local d
	for d in bin sbin lib lib64; do ln -s "usr/$d" "$stage/$d"; done
	install -d -m 1777 "$stage/tmp"
	chmod 0700 "$stage/root"
	mknod -m 600 "$stage/dev/console" c 5 1
	mknod -m 666 "$stage/dev/null" c 1 3

	# Host tools first: the tests want their exact behaviour (ps -o,
	# stat -c, date +%N, find -path...).  busybox fills the gaps.
	local t
	for t in $(dpkg -L coreutils | sed -n 's|^\(/usr\)\{0,1\}/s\{0,1\}bin/\([^/]*\)$|\2|p'); do
		add_tool "$t" required
	done
	for t in bash bc find xargs ps awk sed grep script setsid unshare nsenter flock \
		mke2fs e2fsck resize2fs debugfs losetup; do
		add_tool "$t" required
	done
	# VE disks are made by mke2fs, which reads its defaults from here.
	add_file /etc/mke2fs.conf /etc/mke2fs.conf
	for t in dash pgrep pkill pidof kill free egrep fgrep gzip zstd tar ip getopt logger \
		findmnt lsns mount umount mountpoint truncate mkfs.ext4 strace tcpdump; do
		add_tool "$t"
	done
	add_file /bin/busybox /usr/bin/busybox
	local applet name
	while read -r applet; do
		name=${applet##*/}
		case $name in '' | busybox) continue ;; esac
		if [ -e "$stage/usr/bin/$name" ] || [ -e "$stage/usr/sbin/$name" ]; then continue; fi
		case $applet in
		*sbin/*) ln -s ../bin/busybox "$stage/usr/sbin/$name" ;;
		*) ln -s busybox "$stage/usr/bin/$name" ;;
		esac
	done < <(/bin/busybox --list-full)
	# busybox's init and mount tools run the VM.
	ln -sfn ../bin/busybox "$stage/usr/sbin/init"
	ln -sfn ../bin/busybox "$stage/usr/sbin/switch_root"
	ln -sfn ../bin/busybox "$stage/usr/sbin/insmod"
	ln -sfn ../bin/busybox "$stage/usr/sbin/poweroff"
	[ -e "$stage/usr/bin/sh" ] || ln -s bash "$stage/usr/bin/sh"
	# /bin/sh is dash, as on the host, when there is one.
	if [ -e "$stage/usr/bin/dash" ]; then ln -sfn dash "$stage/usr/bin/sh"; fi

	# The project: runtime, unit tests, integration tests, templates.
	add_file "$build/src/runtime/hsp-runtime" /hsp/bin/hsp-runtime
	add_file "$build/src/runtime/hsp-monitor" /hsp/bin/hsp-monitor
	add_file "$build/src/runtime/hsp-unpack" /hsp/bin/hsp-unpack
	elfs+=("$build/src/runtime/hsp-runtime" "$build/src/runtime/hsp-monitor"
		"$build/src/runtime/hsp-unpack")
	local u n=0
	for u in "$build"/test/unit/test_*; do
		if [ ! -f "$u" ] || [ ! -x "$u" ]; then continue; fi
		case ${u##*/} in
		test_ceph)
			# It runs Ceph daemons, which the VM has not got; the host runs it.
			log "note: test_ceph is not run in the VM (needs the Ceph daemons)"
			continue
			;;
		test_rpc | test_pki | test_hspctl_print)
			# Control-plane code: nothing in it depends on the kernel's
			# cgroup mode, which is what the VM is for.
			continue
			;;
		esac
		add_file "$u" "/hsp/unit/${u##*/}"
		elfs+=("$u")
		n=$((n + 1))
	done
	[ "$n" -gt 0 ] || log "note: no unit test binaries in $build/test/unit"
	add_libs "${elfs[@]}"
	if command -v strip >/dev/null; then
		strip --strip-debug "$stage/hsp/bin/hsp-runtime" "$stage/hsp/bin/hsp-monitor" \
			"$stage/hsp/bin/hsp-unpack" \
			"$stage"/hsp/unit/* 2>/dev/null || :
	fi
	# The setuid test's helper, built here: the VM has no compiler.
	gcc -static -O -o "$stage/hsp/bin/test-euid" "$repo/test/integration/helpers/euid.c" ||
		die "cannot build the setuid test helper"
	cp -a "$repo/test/integration" "$repo/test/lib" "$stage/hsp/repo/test/"
	cp -a "$repo/images" "$stage/hsp/repo/"
	mkdir -p "$stage/hsp/store"
	cp -a "$cache/store/templates" "$stage/hsp/store/"

	# The kernel's modules.
	mkdir -p "$stage/lib/modules/$kver"
	cp -a "$kdir/modules/." "$stage/lib/modules/$kver/"

	# Boot.
	install -m 0755 "$here/init" "$stage/init"
	install -m 0755 "$here/guest.sh" "$stage/hsp/guest.sh"
	cat >"$stage/etc/inittab" <<-'END'
		::sysinit:/hsp/guest.sh
		::sysinit:/usr/bin/busybox poweroff -f
	END
	cat >"$stage/etc/passwd" <<-'END'
		root:x:0:0:root:/root:/bin/bash
		nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
	END
	cat >"$stage/etc/group" <<-'END'
		root:x:0:
		tty:x:5:
		nogroup:x:65534:
	END
	printf '127.0.0.1\tlocalhost hsp-vm\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$stage/etc/hosts"
	echo hsp-vm >"$stage/etc/hostname"
	: >"$stage/etc/fstab"
	if [ -f /etc/mke2fs.conf ]; then cp /etc/mke2fs.conf "$stage/etc/"; fi
	ln -s /proc/self/mounts "$stage/etc/mtab"
}

# A hash of everything in the tree: names, types, modes, link targets and
# file contents.
stage_hash() {
	(
		cd "$stage"
		echo "format $format"
		find . -printf '%p %y %m %l\n' | LC_ALL=C sort
		find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
	) | sha256sum | cut -c1-16
}

build_stage
hash=$(stage_hash)
# Uncompressed: gunzip under TCG costs more (~0.4 s) than it saves.
initrd=$cache/initrd-$hash.cpio
if [ ! -s "$initrd" ]; then
	log "packing the initramfs ($(du -sh "$stage" | cut -f1))"
	(cd "$stage" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) >"$initrd.tmp"
	mv "$initrd.tmp" "$initrd"
	for f in "$cache"/initrd-*.cpio*; do
		[ "$f" = "$initrd" ] || rm -f "$f"
	done
else
	log "initramfs unchanged ($hash)"
fi
rm -rf "$stage"

# What to run: a small cpio appended to the initramfs (the kernel unpacks
# concatenated archives in order).
mkdir -p "$tmp/run/hsp"
{
	printf 'HSP_VM_UNIT=%q\n' "${HSP_VM_UNIT:-1}"
	printf 'HSP_VM_ITESTS=%q\n' "${HSP_VM_ITESTS-all}"
	printf 'HSP_VM_CMD=%q\n' "${HSP_VM_CMD:-}"
	printf 'HSP_VM_SHELL=%q\n' "$shell_mode"
	printf 'HSP_VM_TMP=%q\n' "${HSP_VM_TMP:-ext4}"
	printf 'HSP_VM_NET=%q\n' "${HSP_VM_NET:-}"
} >"$tmp/run/hsp/run.env"
cp "$tmp/modules.load" "$tmp/run/hsp/modules.load"
# Files for this run only: staged like the initramfs's own (same helpers).
# The kernel replaces an entry of another type (its /lib symlink by a
# directory): so the same merged-/usr symlinks here.
stage=$tmp/run
for d in bin sbin lib lib64; do ln -s "usr/$d" "$stage/$d"; done
mkdir -p "$stage"/usr/{bin,sbin,lib,lib64}
elfs=()
for spec in ${HSP_VM_ADD:-}; do
	src=${spec%%:*}
	dest=${spec#*:}
	[ -f "$src" ] || die "HSP_VM_ADD: no file $src"
	add_file "$src" "$dest"
	if [ -x "$src" ] && [ "$(head -c4 "$src")" = $'\x7fELF' ]; then elfs+=("$src"); fi
done
[ ${#elfs[@]} -eq 0 ] || add_libs "${elfs[@]}"
(cd "$tmp/run" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) >"$tmp/run.cpio"
cat "$initrd" "$tmp/run.cpio" >"$tmp/initrd"
cp "$kdir/vmlinuz" "$tmp/vmlinuz"
exec 9>&-
t_prep=$EPOCHREALTIME
log "prepared in $(secs "$t0" "$t_prep") s"

# --- 4. boot ----------------------------------------------------------------------

logfile=${HSP_VM_LOG:-$build/vm-console.log}
qemu=(
	qemu-system-x86_64
	-accel "tcg,thread=multi" -M pc -cpu max -m "$mem" -smp "$smp"
	-nodefaults -no-user-config -display none -no-reboot
	-serial stdio -monitor none
	-kernel "$tmp/vmlinuz" -initrd "$tmp/initrd"
	-append "console=ttyS0 quiet panic=-1 rdinit=/init"
)
if [ -n "${HSP_VM_TAP:-}" ]; then
	# shellcheck disable=SC2054 # the commas are qemu's
	qemu+=(-netdev "tap,id=n0,ifname=$HSP_VM_TAP,script=no,downscript=no"
		-device virtio-net-pci,netdev=n0)
fi

if [ "$shell_mode" = 1 ]; then
	"${qemu[@]}"
	exit
fi

log "booting $kver under TCG (${smp} vCPUs, ${mem} MiB, limit ${vm_timeout} s); console log: $logfile"
t_boot=$EPOCHREALTIME
t_up=
result=
: >"$logfile"
# qemu's stdin is /dev/null: nothing reads the console.
coproc QEMU { exec timeout -k 10 "$vm_timeout" "${qemu[@]}" </dev/null 2>&1; }
# shellcheck disable=SC2153 # set by coproc
qemu_pid=$QEMU_PID
while IFS= read -r line <&"${QEMU[0]}"; do
	line=${line%$'\r'}
	printf '%s\n' "$line" >>"$logfile"
	printf 'vm| %s\n' "$line"
	case $line in
	HSP-VM-BOOTED*) [ -n "$t_up" ] || t_up=$EPOCHREALTIME ;;
	*HSP-VM-RESULT\ status=*) result=${line#*HSP-VM-RESULT} ;;
	esac
done
qrc=0
wait "$qemu_pid" || qrc=$?
qemu_pid=
t_end=$EPOCHREALTIME

boot_s=n/a
[ -z "$t_up" ] || boot_s="$(secs "$t_boot" "$t_up") s"
log "boot (qemu start to guest ready): $boot_s, VM total: $(secs "$t_boot" "$t_end") s, whole run: $(secs "$t_begin" "$t_end") s"

if [ -z "$result" ]; then
	if [ "$qrc" -eq 124 ]; then
		log "the VM did not finish within $vm_timeout s (HSP_VM_TIMEOUT)"
	else
		log "the VM stopped without a result (qemu exit status $qrc): see $logfile"
	fi
	echo "vm-cgroup-v2: 0 passed, 1 failed"
	exit 1
fi
status=$(sed -n 's/.*status=\([0-9]*\).*/\1/p' <<<"$result")
passed=$(sed -n 's/.*passed=\([0-9]*\).*/\1/p' <<<"$result")
failed=$(sed -n 's/.*failed=\([0-9]*\).*/\1/p' <<<"$result")
if [ -n "${HSP_VM_CMD:-}" ]; then
	echo "vm-cgroup-v2: command exited with status $status"
else
	echo "vm-cgroup-v2: $passed passed, $failed failed"
fi
exit "$status"
