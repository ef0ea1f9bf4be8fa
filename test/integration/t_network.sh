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

# A start announces the VE's address (gratuitous ARP, request and reply
# forms, a few times) with a MAC that stays the same across starts, so a
# neighbour on the segment knows where the address is before any traffic.
test_start_announces_the_address() {
	net_setup
	local nb=hsp-nb-$$-$RANDOM cap=$T/arp.txt
	trap 'net_teardown; ip netns del "$nb" 2>/dev/null' RETURN
	inns ip link add hspbr0 type bridge
	inns ip link set hspbr0 up
	# A neighbour on the segment that takes unsolicited ARP into its table
	# and that the VE never talks to.
	ip netns add "$nb"
	inns ip link add nb0 type veth peer name nb1 netns "$nb"
	inns ip link set nb0 master hspbr0 up
	ip netns exec "$nb" ip addr add 10.88.0.50/24 dev nb1
	ip netns exec "$nb" ip link set nb1 up
	ip netns exec "$nb" sysctl -qw net.ipv4.conf.nb1.arp_accept=1
	hspn create an --template busybox --ip 10.88.0.9/24

	capture() {
		inns timeout 2 tcpdump -Z root -n -e -l -i hspbr0 arp >"$cap" 2>"$cap.err" &
		wait_until 5 grep -q 'listening on' "$cap.err" || fail "tcpdump did not start"
	}
	capture
	local t0 t1
	t0=$(date +%s%N)
	hspn start an
	t1=$(date +%s%N)
	echo "    note: start with announcement: $(((t1 - t0) / 1000000)) ms" >&2
	local mac
	mac=$(hspn exec an -- cat /sys/class/net/eth0/address)
	# Unicast and locally administered: the first octet's low bits are 10.
	[ $((0x${mac%%:*} & 3)) -eq 2 ] || fail "MAC $mac is not local unicast"
	wait
	local from
	from=$(grep -c "^[0-9:.]* $mac > ff:ff:ff:ff:ff:ff, .*Request who-has 10.88.0.9 tell 10.88.0.9," "$cap") || :
	[ "$from" -ge 2 ] || fail "gratuitous requests: $from: $(cat "$cap")"
	from=$(grep -c "^[0-9:.]* $mac > ff:ff:ff:ff:ff:ff, .*Reply 10.88.0.9 is-at $mac," "$cap") || :
	[ "$from" -ge 2 ] || fail "gratuitous replies: $from: $(cat "$cap")"
	assert_match "^10.88.0.9 dev nb1 lladdr $mac (STALE|REACHABLE)" \
		"$(ip netns exec "$nb" ip neigh show 10.88.0.9)" "the neighbour's entry"

	# The same MAC after a stop and start, announced again.
	hspn stop an --timeout 5
	capture
	hspn start an
	assert_eq "$mac" "$(hspn exec an -- cat /sys/class/net/eth0/address)" "MAC after a restart"
	wait
	grep -q "Reply 10.88.0.9 is-at $mac," "$cap" || fail "no announcement after a restart: $(cat "$cap")"
	# Another VE gets another MAC.
	hspn create an2 --template busybox --ip 10.88.0.10/24
	hspn start an2
	[ "$(hspn exec an2 -- cat /sys/class/net/eth0/address)" != "$mac" ] || fail "two VEs share a MAC"
}
