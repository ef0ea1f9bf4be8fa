# VE networking: eth0 on a bridge.  Every address lives in a network
# namespace the test creates ("the host" side with the bridge) or in the VEs'
# own; the machine's real interfaces are never touched.

net_setup() {
	NETNS=hsp-it-$$-$RANDOM
	ip netns add "$NETNS"
	# The runtime, its monitors and the bridge all live in the test's netns.
	hspn() { nsenter --net="/run/netns/$NETNS" "$HSP" --root "$T/root" --run-dir "$T/run" "$@"; }
	inns() { nsenter --net="/run/netns/$NETNS" "$@"; }
}

net_teardown() {
	local ve
	for ve in $(ls "$T/root/ves" 2>/dev/null); do hsp destroy --force "$ve" >/dev/null 2>&1 || true; done
	ip netns del "$NETNS" 2>/dev/null || true
}

test_ves_reach_each_other_and_the_host() {
	net_setup
	trap net_teardown RETURN
	hspn create a --template busybox --ip 10.88.0.2/24 --gateway 10.88.0.1
	hspn create b --template busybox --ip 10.88.0.3/24 --gateway 10.88.0.1
	hspn start a
	hspn start b
	assert_match 'inet 10.88.0.2/24' "$(hspn exec a -- ip addr show eth0)" "a's eth0"
	assert_match 'default via 10.88.0.1 dev eth0' "$(hspn exec a -- ip route)" "a's route"
	inns ip addr add 10.88.0.1/24 dev hspbr0
	hspn exec a -- ping -c1 -W3 10.88.0.3 >/dev/null || fail "a cannot reach b"
	inns busybox ping -c1 -W3 10.88.0.2 >/dev/null || fail "the host side cannot reach a"
	hspn exec b -- ping -c1 -W3 10.88.0.1 >/dev/null || fail "b cannot reach its gateway"
	assert_match 'network: +10.88.0.2/24 on hspbr0 via 10.88.0.1' "$(hspn state a)" "state"
	# A firewall-free check that the VE's network is its own: its own lo
	# and eth0 only, none of the test netns's interfaces.
	assert_eq "eth0 lo" "$(hspn exec a -- ls /sys/class/net | sort | tr '\n' ' ' | sed 's/ $//')" \
		"interfaces inside"
}

test_stop_and_reboot_keep_the_network() {
	net_setup
	trap net_teardown RETURN
	hspn create r --template busybox --ip 10.88.0.5/24
	hspn start r
	local veths
	veths=$(inns ip -o link show master hspbr0 | wc -l)
	assert_eq 1 "$veths" "host ends on the bridge"
	hspn stop r --timeout 5
	assert_eq 0 "$(inns ip -o link show master hspbr0 | wc -l)" "host end left after stop"
	hspn start r
	hspn exec r -- reboot
	restarted() { hspn state --json r | grep -q '"restarts": 1'; }
	eth0_back() { hspn exec r -- ip addr show eth0 | grep -q 'inet 10.88.0.5/24'; }
	wait_until 15 restarted || fail "no restart"
	wait_until 5 eth0_back || fail "eth0 not back after reboot"
	assert_eq 1 "$(inns ip -o link show master hspbr0 | wc -l)" "host ends after reboot"
}

test_bad_network_input() {
	net_setup
	trap net_teardown RETURN
	local a
	for a in "--ip 10.88.0.2" "--ip 10.88.0.2/33" "--ip 300.1.1.1/24" "--ip abc" \
		"--ip 10.88.0.2/24 --gateway 10.99.0.1" "--ip 10.88.0.2/24 --gateway x" \
		"--gateway 10.88.0.1" "--ip 10.88.0.2/24 --bridge this-name-is-too-long"; do
		# shellcheck disable=SC2086
		expect_fail hspn create bad --template busybox $a
	done
	[ -z "$(ls "$T/root/ves" 2>/dev/null)" ] || fail "half-created VE left"
	hspn create one --template busybox --ip 10.88.0.7/24
	expect_fail hspn create two --template busybox --ip 10.88.0.7/24
	assert_match 'already used by VE `one`' "$ERR"
	[ ! -e "$T/root/ves/two" ] || fail "VE with a taken address created"
}
