# Rescue mode (`start --rescue`): a VE that no longer boots starts from a
# fresh root of its template, with its own root at /repair, its address,
# hostname and root's ssh keys; the customer logs in as usual, repairs, and
# the next normal start boots the repaired VE.
# shellcheck disable=SC2016 # single-quoted scripts run inside the VE

# The debian-12 template as t_debian.sh gets it (built once per store).
# HSP_TEST_DEBIAN=no leaves its case out where no Debian mirror is (the VM
# suite); the busybox cases run everywhere.
RESCUE_DEB_LOG=$(mktemp /tmp/hsp-rescue-build.XXXXXX)
RESCUE_DEB_OK=no
if [ "${HSP_TEST_DEBIAN:-yes}" = no ]; then
	echo "t_rescue.sh: debian-12 case left out (HSP_TEST_DEBIAN=no)" >&2
elif sh "$REPO/images/build.sh" debian-12 "$TEMPLATE_STORE" >"$RESCUE_DEB_LOG" 2>&1; then
	RESCUE_DEB_OK=yes
	rm -f "$RESCUE_DEB_LOG" # kept only to say why a build failed
fi

rescue_json() { hsp state --json "$1"; }
rescue_is() { [ "$(json_get "$(rescue_json "$1")" rescue)" = "$2" ]; }

# The customer's side of a VE network: a namespace with the bridge and the
# gateway address, from which ssh logs in with the key given at create and
# a known_hosts file of its own, checked strictly once it knows the VE.
rescue_net() {
	RNS=hsp-rescue-$$-$RANDOM
	ip netns add "$RNS"
	hspn() { nsenter --net="/run/netns/$RNS" "$HSP" --root "$T/root" --run-dir "$T/run" "$@"; }
	inns() { nsenter --net="/run/netns/$RNS" "$@"; }
	inns ip link add hspbr0 type bridge
	inns ip addr add 10.93.0.1/24 dev hspbr0
	inns ip link set hspbr0 up
	ssh-keygen -q -t ed25519 -N "" -f "$T/key"
}

rescue_net_down() {
	hsp destroy --force web >/dev/null 2>&1 || :
	ip netns del "$RNS" 2>/dev/null || :
}

# vssh accept-new|yes CMD...: ssh as root to the VE at 10.93.0.2.
vssh() {
	local check=$1
	shift
	inns ssh -i "$T/key" -o StrictHostKeyChecking="$check" -o UserKnownHostsFile="$T/known_hosts" \
		-o BatchMode=yes -o ConnectTimeout=3 -o LogLevel=ERROR root@10.93.0.2 "$@"
}

test_rescue_debian_repair_over_ssh() {
	[ "$RESCUE_DEB_OK" = yes ] || fail "debian-12 template build failed: $(tail -n 5 "$RESCUE_DEB_LOG")"
	cp -a "$TEMPLATE_STORE/templates/debian-12" "$T/root/templates/"
	rescue_net
	trap rescue_net_down RETURN
	hspn create web --template debian-12 --hostname web.example --ip 10.93.0.2/24 \
		--gateway 10.93.0.1 --ssh-key "$T/key.pub" --memory 512M
	hspn start web
	wait_until 30 vssh accept-new true || fail "no ssh login before the break"
	vssh yes 'echo before > /root/marker'

	# Broken: no init, no sshd.  A normal start fails and says why.
	hspn exec web -- rm /usr/sbin/init /usr/sbin/sshd
	hspn stop web --timeout 5
	expect_fail hspn start web
	assert_match 'exec init `/sbin/init`' "$ERR" "why the start failed"
	assert_eq stopped "$(json_get "$(hspn state --json web)" status)" "status after the failed start"

	local t0 t1
	t0=$(date +%s%N)
	hspn start web --rescue
	t1=$(date +%s%N)
	echo "    note: start --rescue: $(((t1 - t0) / 1000000)) ms" >&2
	rescue_is web true || fail "state does not say rescue: $(hspn state --json web)"
	assert_match '^web +rescue ' "$(hspn list | grep '^web ')" "list"
	assert_match 'rescue mode' "$(hspn state web)" "state"
	# Same address, same root key, and the same host key: strict checking
	# against what the client learnt before the break.
	t0=$(date +%s%N)
	wait_until 30 vssh yes true || fail "no ssh login to the rescue VE (same key, same host key)"
	t1=$(date +%s%N)
	echo "    note: start --rescue to ssh login: $(((t1 - t0) / 1000000)) ms more" >&2
	assert_eq web.example "$(vssh yes hostname)" "hostname in rescue"
	assert_eq before "$(vssh yes cat /repair/root/marker)" "the VE's files at /repair"
	vssh yes 'test ! -e /repair/usr/sbin/sshd && test ! -e /repair/usr/sbin/init' ||
		fail "/repair does not show the broken root"
	# The VE's limits hold in rescue too.
	assert_eq 536870912 "$(hspn exec web -- sh -c 'cat /sys/fs/cgroup/memory.max 2>/dev/null ||
		cat /sys/fs/cgroup/memory/memory.limit_in_bytes')" "memory limit in rescue"
	# Repair through ssh, as the customer would: the tools from the rescue
	# root, written as root into the VE's own files.
	vssh yes 'cp -a /usr/sbin/init /usr/sbin/sshd /repair/usr/sbin/ &&
		echo during > /repair/root/rescued && echo scratch > /root/scratch'
	assert_eq "0 0" "$(vssh yes stat -c "'%u %g'" /repair/root/rescued)" "owner of a file written in /repair"
	hspn stop web --timeout 10
	rescue_is web false || fail "still rescue after stop"

	hspn start web
	rescue_is web false || fail "a normal start says rescue"
	wait_until 30 vssh yes true || fail "no ssh login after the repair"
	assert_eq "before during" "$(vssh yes cat /root/marker /root/rescued | tr '\n' ' ' | sed 's/ $//')" \
		"the VE's own files after the repair"
	assert_eq "0 0" "$(vssh yes stat -c "'%u %g'" /root/rescued)" "owner in the VE"
	assert_eq /usr/sbin/init "$(hspn exec web -- readlink /proc/1/exe)" "PID 1"
	vssh yes 'test ! -e /repair && test ! -e /root/scratch' ||
		fail "the rescue root leaked into the VE"
}

test_rescue_busybox() {
	# Key lines only (no ssh-keygen in the VM suite): nothing logs in here.
	echo 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGNyZWF0ZWtleWNyZWF0ZWtleWNyZWF0ZWtleQ create' >"$T/key.pub"
	echo 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGxhdGVya2V5bGF0ZXJrZXlsYXRlcmtleWxhdA later' >"$T/later.pub"
	hsp create bb --template busybox --ssh-key "$T/key.pub" --hostname bb.example
	hsp start bb
	# A key the customer added later is authorized in rescue too.
	hsp exec bb -- sh -c "echo mine > /marker && echo '$(cat "$T/later.pub")' >> /root/.ssh/authorized_keys"
	hsp exec bb -- rm /sbin/init
	hsp stop bb --timeout 5
	expect_fail hsp start bb
	hsp start bb --rescue
	local img
	img=$(pool_dir)/ves/bb/disk.img
	# The disk is locked as in a normal start: nobody else mounts it.
	if flock -n "$img" true; then fail "the disk is not locked in rescue"; fi
	expect_fail hsp mount bb
	assert_eq bb.example "$(hsp exec bb -- hostname)" "hostname"
	assert_eq mine "$(hsp exec bb -- cat /repair/marker)" "marker at /repair"
	hsp exec bb -- test ! -e /repair/sbin/init || fail "/repair shows init"
	hsp exec bb -- test -e /sbin/init || fail "the rescue root has no init"
	assert_eq "$(cat "$T/key.pub" "$T/later.pub")" "$(hsp exec bb -- cat /root/.ssh/authorized_keys)" \
		"root's keys in rescue"
	assert_eq "0 0 600" "$(hsp exec bb -- stat -c '%u %g %a' /root/.ssh/authorized_keys)" "keys file"
	assert_eq "1" "$(hsp exec bb -- sh -c 'grep -c " /repair " /proc/mounts')" "/repair mounted once"
	# A reboot inside stays in rescue, with a fresh rescue root.
	hsp exec bb -- sh -c 'echo x > /scratch'
	hsp exec bb -- reboot
	restarted() { hsp state --json bb | grep -q '"restarts": 1'; }
	wait_until 15 restarted || fail "no restart after reboot"
	wait_until 5 hsp exec bb -- true || fail "not back after reboot"
	rescue_is bb true || fail "reboot left rescue mode"
	hsp exec bb -- test ! -e /scratch || fail "the rescue root kept a file over a reboot"
	hsp exec bb -- sh -c 'ln -s ../bin/busybox /repair/sbin/init && echo fixed > /repair/fixed'
	hsp stop bb --timeout 5
	flock -n "$img" true || fail "the disk is still locked after stop"
	hsp start bb
	assert_eq "mine fixed" "$(hsp exec bb -- cat /marker /fixed | tr '\n' ' ' | sed 's/ $//')" "files"
	assert_eq "0 0" "$(hsp exec bb -- stat -c '%u %g' /fixed)" "owner inside"
	hsp exec bb -- test ! -e /repair || fail "/repair in the normal VE"
	hsp stop bb --timeout 5
	# Stored with the VE's own ids, as every file of it.
	local m
	m=$(hsp mount --read-only bb)
	assert_eq "0 0" "$(stat -c '%u %g' "$m/fixed")" "owner on disk"
	hsp umount bb
}

test_rescue_bad_input() {
	hsp create ok --template busybox
	local rc=0
	"$HSP" --root "$T/root" --run-dir "$T/run" start --rescue 2>/dev/null || rc=$?
	assert_eq 2 "$rc" "exit code of a usage error"
	expect_fail hsp start --rescue
	expect_fail hsp start ok other --rescue
	expect_fail hsp start ok --rescue=yes
	expect_fail hsp start ok --repair
	expect_fail hsp start nosuch --rescue
	assert_match 'VE `nosuch` not found' "$ERR"
	# A VE made from a path has no template tree to boot instead.
	local dir=$T/flatroot
	mkdir "$dir"
	zstd -dc "$TEMPLATE_STORE/templates/busybox/rootfs.tar.zst" | tar -xf - -C "$dir"
	hsp create flat --template "$dir"
	expect_fail hsp start flat --rescue
	assert_eq 'hsp-runtime: VE `flat`: rescue needs a VE created from a stored template' "$ERR"
	assert_eq stopped "$(json_get "$(rescue_json flat)" status)" "status"
	[ ! -e "$T/run/flat" ] || fail "a refused rescue left a run dir"
	# Running: the same refusal as a plain start, and the VE is untouched.
	hsp start ok
	local init
	init=$(json_get "$(rescue_json ok)" init_pid)
	expect_fail hsp start ok
	local plain=$ERR
	expect_fail hsp start ok --rescue
	assert_eq "$plain" "$ERR" "refusal of a running VE"
	assert_eq "$init" "$(json_get "$(rescue_json ok)" init_pid)" "init after a refused rescue"
	rescue_is ok false || fail "a refused rescue marked the VE"
	hsp stop ok --timeout 5
	hsp mount ok >/dev/null
	expect_fail hsp start ok --rescue
	assert_match 'mounted on the host' "$ERR"
	hsp umount ok
}

[ "${HSP_TEST_DEBIAN:-yes}" != no ] || unset -f test_rescue_debian_repair_over_ssh
