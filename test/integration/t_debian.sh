# The debian-12 template (images/debian-12/build.sh): sysvinit as PID 1,
# sshd at boot with per-VE host keys, a working dpkg/apt, su, root key login
# over the VE's loopback, clean stop, reboot and poweroff from inside.
# shellcheck disable=SC2016 # single-quoted scripts run inside the VE

# Built once per run (when run.sh sources this file) into the shared store;
# a no-op when the template is up to date.  The first build takes ~30-45 s.
DEB_BUILD_LOG=$(mktemp /tmp/hsp-debian-build.XXXXXX)
if [ ! -f "$TEMPLATE_STORE/templates/debian-12/rootfs.tar.zst" ]; then
	echo "t_debian.sh: building the debian-12 template into $TEMPLATE_STORE ..." >&2
fi
if sh "$REPO/images/build.sh" debian-12 "$TEMPLATE_STORE" >"$DEB_BUILD_LOG" 2>&1; then
	DEB_TEMPLATE_OK=yes
else
	DEB_TEMPLATE_OK=no
fi

deb_state() { hsp state --json "$1"; }
deb_is_status() { [ "$(json_get "$(deb_state "$1")" status)" = "$2" ]; }
# sshd is up when it listens on port 22 (its process exists a moment
# before it binds).
deb_sshd_up() {
	hsp exec "$1" -- awk '$2 ~ /:0016$/ && $4 == "0A" { f = 1 } END { exit !f }' \
		/proc/net/tcp /proc/net/tcp6
}
deb_restarts_are() { [ "$(sed -n 's/^ *"restarts": \([0-9]*\).*/\1/p' <<<"$(deb_state "$1")")" = "$2" ]; }

# deb_ve NAME [create options...]: creates and starts a debian-12 VE and
# waits for its sshd.
deb_ve() {
	local name=$1
	shift
	[ "$DEB_TEMPLATE_OK" = yes ] || fail "debian-12 template build failed: $(tail -n 5 "$DEB_BUILD_LOG")"
	[ -d "$T/root/templates/debian-12" ] ||
		cp -a "$TEMPLATE_STORE/templates/debian-12" "$T/root/templates/"
	hsp create "$name" --template debian-12 "$@"
	hsp start "$name"
	wait_until 20 deb_sshd_up "$name" || fail "sshd not running in $name"
}

# Fingerprints of the VE's host keys, one line per key, sorted; once the
# RSA key, made in the background at first boot, is there.
deb_host_keys() {
	wait_until 20 hsp exec "$1" -- test -s /etc/ssh/ssh_host_rsa_key.pub ||
		fail "no RSA host key in $1"
	hsp exec "$1" -- sh -c 'for k in /etc/ssh/ssh_host_*_key.pub; do ssh-keygen -lf "$k"; done' | sort
}

# Prepares a root key login to the VE's own sshd over its loopback.
deb_setup_root_key() {
	hsp exec "$1" -- sh -c 'umask 077 && mkdir -p /root/.ssh &&
		ssh-keygen -q -t ed25519 -N "" -f /root/.ssh/id_ed25519 &&
		cat /root/.ssh/id_ed25519.pub >/root/.ssh/authorized_keys'
}

deb_ssh_hostname() {
	hsp exec "$1" -- ssh -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
		-o BatchMode=yes -o ConnectTimeout=5 -o LogLevel=ERROR root@127.0.0.1 hostname
}

test_debian_template_manifest() {
	[ "$DEB_TEMPLATE_OK" = yes ] || fail "build failed: $(tail -n 5 "$DEB_BUILD_LOG")"
	local dir=$TEMPLATE_STORE/templates/debian-12 m
	m=$(cat "$dir/manifest.json")
	assert_eq debian "$(json_get "$m" os)" "os"
	assert_eq 12 "$(json_get "$m" version)" "version"
	assert_eq SIGPWR "$(json_get "$m" stop_signal)" "stop signal"
	assert_match '"init": \["/sbin/init"\]' "$m" "init"
	# Nothing per-VE is baked into the archive.
	local list
	list=$(zstd -dc "$dir/rootfs.tar.zst" | tar -tvf -)
	assert_no_match 'etc/ssh/ssh_host_' "$list" "host keys in the template"
	assert_match ' 0 [0-9-]+ [0-9:]+ \./etc/machine-id$' "$(grep 'etc/machine-id$' <<<"$list")" \
		"empty machine-id"
	assert_match ' 0 [0-9-]+ [0-9:]+ \./etc/hostname$' "$(grep 'etc/hostname$' <<<"$list")" \
		"empty hostname"
	assert_no_match '\./var/lib/apt/lists/.*_Packages' "$list" "apt lists"
	assert_no_match '\./var/cache/apt/.*\.(bin|deb)$' "$list" "apt caches"
	# An unchanged template is not rebuilt.
	local before after
	before=$(stat -c %Y "$dir/rootfs.tar.zst")
	sh "$REPO/images/build.sh" debian-12 "$TEMPLATE_STORE"
	after=$(stat -c %Y "$dir/rootfs.tar.zst")
	assert_eq "$before" "$after" "archive mtime after a second build"
}

test_debian_boot_init_sshd() {
	deb_ve deb --hostname deb.example
	assert_eq init "$(hsp exec deb -- cat /proc/1/comm)" "PID 1"
	assert_eq /usr/sbin/init "$(hsp exec deb -- readlink /proc/1/exe)" "PID 1 binary"
	assert_eq "N 2" "$(hsp exec deb -- runlevel)" "runlevel"
	assert_eq deb.example "$(hsp exec deb -- hostname)" "hostname kept"
	# sshd started from the rc scripts and daemonized: init is its parent.
	local ppid
	ppid=$(hsp exec deb -- sh -c 'ps -o ppid= -p "$(cat /run/sshd.pid)"' | tr -d ' ')
	assert_eq 1 "$ppid" "sshd's parent"
	# Orphans are reaped: a grandchild exits after its parent is gone.
	hsp exec deb -- sh -c '(sleep 0.3 &) ; exit 0'
	sleep 1
	assert_eq "" "$(hsp exec deb -- ps -eo stat=,comm= | awk '$1 ~ /^Z/')" "zombies"
	# machine-id made at first boot.
	assert_match '^[0-9a-f]{32}$' "$(hsp exec deb -- cat /etc/machine-id)" "machine-id"
}

test_debian_host_keys_per_ve_and_kept() {
	deb_ve k1
	local keys1 id1
	# ed25519 and ecdsa come before sshd starts; RSA follows in the
	# background and is served from the next boot on.
	deb_served() { hsp exec "$1" -- ssh-keyscan -t "$2" 127.0.0.1 2>/dev/null | grep -q "$3"; }
	deb_served k1 ed25519 ssh-ed25519 || fail "no ed25519 host key served at first boot"
	deb_served k1 ecdsa ecdsa-sha2 || fail "no ecdsa host key served at first boot"
	keys1=$(deb_host_keys k1)
	[ "$(wc -l <<<"$keys1")" -eq 3 ] || fail "expected 3 host keys: $keys1"
	assert_match 'ED25519' "$keys1" "ed25519 key"
	id1=$(hsp exec k1 -- cat /etc/machine-id)
	hsp stop k1 --timeout 10
	hsp start k1
	wait_until 20 deb_sshd_up k1 || fail "sshd not back after start"
	assert_eq "$keys1" "$(deb_host_keys k1)" "host keys after stop/start"
	wait_until 10 deb_served k1 rsa ssh-rsa || fail "no RSA host key served after a restart"
	assert_eq "$id1" "$(hsp exec k1 -- cat /etc/machine-id)" "machine-id after stop/start"
	# Another VE of the same template has keys and an id of its own.
	deb_ve k2
	local keys2
	keys2=$(deb_host_keys k2)
	[ -n "$keys2" ] || fail "k2 has no host keys"
	[ "$keys1" != "$keys2" ] || fail "two VEs share host keys"
	[ "$id1" != "$(hsp exec k2 -- cat /etc/machine-id)" ] || fail "two VEs share a machine-id"
}

test_debian_dpkg_apt_tools() {
	deb_ve pk
	hsp exec pk -- dpkg -s openssh-server | grep -q '^Status: install ok installed$' ||
		fail "openssh-server not installed"
	hsp exec pk -- apt-get --version | grep -q '^apt ' || fail "apt-get --version"
	hsp exec pk -- dpkg -l sysvinit-core iproute2 nftables procps >/dev/null || fail "dpkg -l"
	assert_eq "" "$(hsp exec pk -- dpkg --audit)" "dpkg --audit"
	hsp exec pk -- apt-cache policy >/dev/null || fail "apt-cache"
	hsp exec pk -- ip -o link show lo >/dev/null || fail "ip"
	hsp exec pk -- nft list ruleset >/dev/null || fail "nft"
	hsp exec pk -- service ssh status >/dev/null || fail "service ssh status"
}

test_debian_adduser_su() {
	deb_ve su
	hsp exec su -- adduser --disabled-password --gecos "" alice >/dev/null
	assert_match '^uid=1000\(alice\) gid=1000\(alice\) groups=1000\(alice\)' \
		"$(hsp exec su -- su - alice -c id)" "su - alice"
	assert_eq /home/alice "$(hsp exec su -- su - alice -c pwd)" "alice's home"
}

test_debian_root_ssh_over_loopback() {
	deb_ve sshve --hostname shell.example
	deb_setup_root_key sshve
	assert_eq shell.example "$(deb_ssh_hostname sshve)" "hostname over ssh"
	# A session gets a pty and the user's environment.
	assert_eq "root /root" "$(hsp exec sshve -- ssh -o StrictHostKeyChecking=no \
		-o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR \
		root@127.0.0.1 'echo $(id -un) $HOME')" "ssh session"
	# Password logins are refused for root.
	expect_fail hsp exec sshve -- ssh -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
		-o BatchMode=yes -o PubkeyAuthentication=no -o LogLevel=ERROR root@127.0.0.1 true
}

test_debian_stop_is_clean() {
	deb_ve st
	local st init cgs base t0 t1 ms
	st=$(deb_state st)
	init=$(json_get "$st" init_pid)
	cgs=$(ve_cgroup_dirs st)
	base=$(sed -n 's/.*"base": \([0-9]*\).*/\1/p' <<<"$st")
	t0=$(date +%s%N)
	hsp stop st --timeout 10
	t1=$(date +%s%N)
	ms=$(((t1 - t0) / 1000000))
	echo "stop took ${ms} ms"
	[ "$ms" -lt 5000 ] || fail "stop took ${ms} ms (the stop signal did not shut it down?)"
	assert_eq stopped "$(json_get "$(deb_state st)" status)" "status"
	# Shut down by its own poweroff (SIGINT), not SIGKILLed at the timeout.
	assert_match '"last_exit": "signal 2"' "$(deb_state st)" "init's exit"
	if proc_alive "$init"; then fail "init $init survived stop"; fi
	# shellcheck disable=SC2086
	none_exist $cgs
	assert_eq "" "$(ps -eo uid= | awk -v b="$base" '$1 >= b && $1 < b + 65536')" "VE processes"
}

test_debian_reboot_and_poweroff_inside() {
	deb_ve rb
	local keys init1
	keys=$(deb_host_keys rb)
	init1=$(json_get "$(deb_state rb)" init_pid)
	hsp exec rb -- reboot
	wait_until 20 deb_restarts_are rb 1 || fail "no restart after reboot: $(deb_state rb)"
	wait_until 5 deb_is_status rb running || fail "not running after reboot"
	[ "$(json_get "$(deb_state rb)" init_pid)" != "$init1" ] || fail "same init after reboot"
	wait_until 20 deb_sshd_up rb || fail "sshd not back after reboot"
	assert_eq "$keys" "$(deb_host_keys rb)" "host keys after reboot"
	hsp exec rb -- poweroff
	wait_until 20 deb_is_status rb stopped || fail "still running after poweroff"
	assert_match '"last_exit": "signal 2"' "$(deb_state rb)" "poweroff"
	deb_restarts_are rb 1 || fail "poweroff counted as a restart"
}

# The customer's view: a key given at create, the VE on a bridge, ssh from
# the "host" side of the bridge (a network namespace the test creates).
test_debian_root_ssh_from_the_network() {
	[ "$DEB_TEMPLATE_OK" = yes ] || fail "debian-12 template build failed: $(tail -n 5 "$DEB_BUILD_LOG")"
	cp -a "$TEMPLATE_STORE/templates/debian-12" "$T/root/templates/"
	local ns=hsp-ssh-$$-$RANDOM
	ip netns add "$ns"
	# shellcheck disable=SC2064 # expand now: $ns and $T are this test's
	trap "'$HSP' --root '$T/root' --run-dir '$T/run' destroy --force web >/dev/null 2>&1; ip netns del '$ns'" RETURN
	hspn() { nsenter --net="/run/netns/$ns" "$HSP" --root "$T/root" --run-dir "$T/run" "$@"; }
	ssh-keygen -q -t ed25519 -N "" -f "$T/key"
	hspn create web --template debian-12 --hostname web.example --ip 10.89.0.2/24 \
		--gateway 10.89.0.1 --ssh-key "$T/key.pub"
	nsenter --net="/run/netns/$ns" ip link add hspbr0 type bridge
	nsenter --net="/run/netns/$ns" ip addr add 10.89.0.1/24 dev hspbr0
	hspn start web
	vssh() {
		nsenter --net="/run/netns/$ns" ssh -i "$T/key" -o StrictHostKeyChecking=no \
			-o UserKnownHostsFile=/dev/null -o BatchMode=yes -o ConnectTimeout=3 \
			-o LogLevel=ERROR root@10.89.0.2 "$@"
	}
	wait_until 20 vssh true || fail "no ssh login to 10.89.0.2"
	assert_eq "web.example 0" "$(vssh 'echo $(hostname) $(id -u)')" "hostname and uid over ssh"
	# The VE's own process view: init, sshd, the session; nothing of the host.
	local n
	n=$(vssh 'ps -e --no-headers | wc -l')
	[ "$n" -lt 15 ] || fail "$n processes visible over ssh"
	# The key survives a restart; a wrong key is refused.
	hspn restart web --timeout 10
	wait_until 20 vssh true || fail "no ssh login after restart"
	ssh-keygen -q -t ed25519 -N "" -f "$T/other"
	if nsenter --net="/run/netns/$ns" ssh -i "$T/other" -o StrictHostKeyChecking=no \
		-o UserKnownHostsFile=/dev/null -o BatchMode=yes -o ConnectTimeout=3 \
		-o LogLevel=ERROR root@10.89.0.2 true 2>/dev/null; then
		fail "a key that was never authorized logged in"
	fi
}

test_debian_bad_ssh_key() {
	[ "$DEB_TEMPLATE_OK" = yes ] || fail "debian-12 template build failed"
	cp -a "$TEMPLATE_STORE/templates/debian-12" "$T/root/templates/"
	expect_fail hsp create k1 --template debian-12 --ssh-key /nonexistent/key.pub
	assert_match 'ssh key' "$ERR"
	ssh-keygen -q -t ed25519 -N "" -f "$T/priv"
	expect_fail hsp create k2 --template debian-12 --ssh-key "$T/priv"
	assert_match 'not a public key' "$ERR"
	: >"$T/empty.pub"
	expect_fail hsp create k3 --template debian-12 --ssh-key "$T/empty.pub"
	[ -z "$(ls "$T/root/ves" 2>/dev/null)" ] || fail "half-created VE left"
}

# Each VE's firewall is its own: a drop-everything ruleset in one VE cuts
# that VE off and nothing else.
test_debian_firewall_is_per_ve() {
	[ "$DEB_TEMPLATE_OK" = yes ] || fail "debian-12 template build failed"
	cp -a "$TEMPLATE_STORE/templates/debian-12" "$T/root/templates/"
	local ns=hsp-fw-$$-$RANDOM
	ip netns add "$ns"
	# shellcheck disable=SC2064 # expand now: $ns and $T are this test's
	trap "for v in fa fb; do '$HSP' --root '$T/root' --run-dir '$T/run' destroy --force \$v >/dev/null 2>&1; done; ip netns del '$ns'" RETURN
	hspn() { nsenter --net="/run/netns/$ns" "$HSP" --root "$T/root" --run-dir "$T/run" "$@"; }
	inns() { nsenter --net="/run/netns/$ns" "$@"; }
	ssh-keygen -q -t ed25519 -N "" -f "$T/key"
	inns ip link add hspbr0 type bridge
	inns ip addr add 10.90.0.1/24 dev hspbr0
	hspn create fa --template debian-12 --ip 10.90.0.2/24 --ssh-key "$T/key.pub"
	hspn create fb --template debian-12 --ip 10.90.0.3/24 --ssh-key "$T/key.pub"
	hspn start fa
	hspn start fb
	can_ssh() {
		inns ssh -i "$T/key" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
			-o BatchMode=yes -o ConnectTimeout=2 -o LogLevel=ERROR "root@$1" true 2>/dev/null
	}
	wait_until 20 can_ssh 10.90.0.2 || fail "fa not reachable before the firewall"
	wait_until 20 can_ssh 10.90.0.3 || fail "fb not reachable before the firewall"
	hspn exec fa -- nft add table inet wall
	hspn exec fa -- nft add chain inet wall in '{ type filter hook input priority 0; policy drop; }'
	if can_ssh 10.90.0.2; then fail "fa's own firewall did not apply"; fi
	can_ssh 10.90.0.3 || fail "fa's firewall cut off fb"
	assert_eq "" "$(hspn exec fb -- nft list ruleset)" "fb's ruleset"
	# Removing the ruleset inside fa restores it: the VE owns its rules.
	hspn exec fa -- nft flush ruleset
	wait_until 10 can_ssh 10.90.0.2 || fail "fa unreachable after flushing its own ruleset"
}
