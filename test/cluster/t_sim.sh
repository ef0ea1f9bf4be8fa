# The simulated cluster itself (test/sim-cluster): a node is a group of
# processes that can be frozen, killed and started again as a whole, and a
# network namespace whose cables can be pulled; the VEs of all nodes share
# one L2 segment behind the controller's namespace; --ceph puts VEs on a
# CephFS pool of a real Ceph cluster whose daemons can be restarted.
NODES=2

# Waiting for what the cluster has not got yet (marked "needs:" below):
# the cluster comes up with what the build has, and the tests that need the
# rest are not defined, with the reason on the console.
_ctl=$("$HSP_BUILD/src/controller/hsp-controller" --help 2>&1 || true)
if printf '%s' "$_ctl" | grep -q -- --ceph-helper && printf '%s' "$_ctl" | grep -q -- --gateway; then
	SIM_ARGS=--ceph
else
	SIM_ARGS=""
	echo "t_sim.sh: without --ceph (the controller has no --ceph-helper / --gateway yet):" \
		"test_ceph_pool_holds_the_ves and test_ceph_daemons_restart do not run"
fi
if [ "${HSP_SIM_VE_UPLINK:-1}" = 0 ]; then
	echo "t_sim.sh: HSP_SIM_VE_UPLINK=0 (no VE segment): test_ves_of_all_nodes_share_one_segment does not run"
fi
unset _ctl

# A process in a VE that wakes every 0.1 s: its count of voluntary context
# switches is a counter that only a running VE advances.
start_ticker() {
	ctl ve exec "$1" -- sh -c 'setsid sh -c "while sleep 0.1; do :; done" </dev/null >/dev/null 2>&1 &'
	local p
	for _ in $(seq 50); do
		for p in $(ve_pids "$2" "$1"); do
			if tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q '^sh -c while sleep'; then
				echo "$p"
				return 0
			fi
		done
		sleep 0.1
	done
	fail "no ticker in $1"
}
ticks() { awk '/^voluntary_ctxt_switches/ { print $2 }' "/proc/$1/status"; }

# Every process of a node, down to the VEs and ceph-fuse, is in the node's
# group in every hierarchy: the runtime nests VE groups under its own.
test_a_node_is_one_group_per_hierarchy() {
	ctl ve create cg --template busybox --node node1 --wait
	local d=$HSP_SIM_DIR/nodes/node1 pids p c m r init
	init=$(node_runtime node1 state cg --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["init_pid"])')
	pids="$(cat "$d/holder.pid") $(cat "$d/agent/agent.pid") $init"
	[ "$(sim_conf CEPH)" = 0 ] || pids="$pids $(pgrep -f "^ceph-fuse -c $d/agent/")"
	[ "$(echo "$pids" | wc -w)" -ge "$((3 + $(sim_conf CEPH)))" ] || fail "processes: $pids"
	for p in $pids; do
		while read -r c m r; do
			case $(proc_cgroup "$p" "$c") in
			"$r"/node1 | "$r"/node1/*) ;;
			*) fail "pid $p ($(tr '\0' ' ' <"/proc/$p/cmdline")) is in $c:$(proc_cgroup "$p" "$c"), not under $r/node1" ;;
			esac
		done <"$HSP_SIM_DIR/cgroups"
	done
	# the VE has a group of its own below the node's, frozen with it
	assert_match "/node1/hsp-[^/]*/cg$" "$(proc_cgroup "$init" freezer)"
	echo "$init" | grep -qx -f - <(node_pids node1)
	ctl ve destroy cg --wait
}

test_freeze_stops_every_process_of_a_node() {
	ctl ve create fz --template busybox --node node1 --wait
	local t a b agent
	t=$(start_ticker fz node1)
	a=$(ticks "$t")
	sleep 0.5
	b=$(ticks "$t")
	[ "$b" -gt "$a" ] || fail "the ticker does not tick: $a $b"
	sim_cluster node freeze node1
	assert_eq FROZEN "$(cat "$(node_cgroup node1 freezer)/freezer.state")"
	sim_cluster status | grep -q '^node1 .*freezer FROZEN'
	agent=$(cat "$HSP_SIM_DIR/nodes/node1/agent/agent.pid")
	grep -q '^State:.*D' "/proc/$agent/status"
	a=$(ticks "$t")
	# the agent no longer heartbeats: the controller sees the node go quiet
	wait_until 8 sh -c "hspctl -o json node show node1 | grep -q -e NODE_STATE_SUSPECT -e NODE_STATE_DEAD"
	b=$(ticks "$t")
	assert_eq "$a" "$b" "ticks while frozen"
	assert_eq NODE_STATE_READY "$(node_state node2)"
	sim_cluster node thaw node1
	assert_eq THAWED "$(cat "$(node_cgroup node1 freezer)/freezer.state")"
	wait_until 10 sh -c "hspctl -o json node show node1 | grep -q NODE_STATE_READY"
	sleep 0.5
	[ "$(ticks "$t")" -gt "$b" ] || fail "the ticker did not resume"
	ctl ve destroy fz --wait
}

test_kill_leaves_nothing_of_a_node_and_start_brings_it_back() {
	ctl ve create kv --template busybox --node node1 --wait
	local d=$HSP_SIM_DIR/nodes/node1 before p agent holder
	before=$(node_pids node1)
	agent=$(cat "$d/agent/agent.pid")
	holder=$(cat "$d/holder.pid")
	# the agent, the holder, the VE (monitor, init), ceph-fuse
	[ "$(echo "$before" | wc -w)" -ge 4 ] || fail "node1 has only: $before"
	sim_cluster node kill node1
	assert_eq "" "$(node_pids node1)" "processes left in node1's groups"
	for p in $before; do
		! alive "$p" || fail "pid $p of node1 is alive"
	done
	for p in $(node_cgroups node1); do
		assert_eq "" "$(find "$p" -name cgroup.procs -exec cat {} +)" "tasks in $p"
	done
	[ ! -e "$d/agent/agent.pid" ] && [ ! -e "$d/holder.pid" ]
	# the network namespace stays, nothing of the old mount namespace does
	[ -e "/run/netns/${HSP_NETNS%-ctl}-node1" ]
	! grep -q " $d/root/pools/" /proc/self/mountinfo
	wait_until 10 sh -c "hspctl -o json node show node1 | grep -q -e NODE_STATE_DEAD -e NODE_STATE_FENCED"
	sim_cluster node start node1
	wait_until 15 sh -c "hspctl -o json node show node1 | grep -q NODE_STATE_READY"
	[ "$(cat "$d/agent/agent.pid")" != "$agent" ] && [ "$(cat "$d/holder.pid")" != "$holder" ]
	node_pids node1 | grep -qx "$(cat "$d/agent/agent.pid")"
	# the node works again
	ctl ve create kv2 --template busybox --node node1 --wait
	assert_eq hi "$(ctl ve exec kv2 -- echo hi)"
	ctl ve destroy kv2 --wait
	# on shared storage kv may be failing over to node2 meanwhile
	wait_until 30 hspctl ve destroy kv --wait
}

test_cut_and_heal() {
	local addr
	addr=$(ctl_json '["address"]' node show node2)
	ctl_ping "$addr"
	sim_cluster node cut node2
	! ctl_ping "$addr" || fail "node2 answers while cut"
	sim_cluster status | grep -q '^node2 .*link cut'
	# a pulled cable: the node's side is up, without carrier
	ip -n "${HSP_NETNS%-ctl}-node2" link show eth0 | grep -q NO-CARRIER
	[ "$(sim_conf VE_UPLINK)" = 0 ] || ip -n "${HSP_NETNS%-ctl}-node2" link show veup0 | grep -q NO-CARRIER
	assert_eq NODE_STATE_READY "$(node_state node1)"
	sim_cluster node heal node2
	wait_until 5 ctl_ping "$addr"
	wait_until 10 sh -c "hspctl -o json node show node2 | grep -q NODE_STATE_READY"
	sim_cluster status | grep -q '^node2 .*link up'
}

if [ "${HSP_SIM_VE_UPLINK:-1}" != 0 ]; then
	# needs: the agent's --ve-uplink and the controller's --gateway external
	test_ves_of_all_nodes_share_one_segment() {
		ctl ve create la --template busybox --network --node node1 --wait
		ctl ve create lb --template busybox --network --node node2 --wait
		local a b
		a=$(ctl_json '["ip"]' ve show la | cut -d/ -f1)
		b=$(ctl_json '["ip"]' ve show lb | cut -d/ -f1)
		# one hop: ttl 64 arrives unchanged (a router would take one)
		assert_match 'ttl=64' "$(ctl ve exec la -- ping -c 1 -W 2 "$b")"
		assert_match 'ttl=64' "$(ctl ve exec lb -- ping -c 1 -W 2 "$a")"
		# the gateway is the controller's namespace, which reaches both
		assert_match "default via ${a%.*}.1 " "$(ctl ve exec la -- ip route)"
		ctl_ping "$a"
		ctl_ping "$b"
		# each node's VE bridge has the node's cable in it
		ip -n "${HSP_NETNS%-ctl}-node1" link show veup0 | grep -q 'master hspbr0'
		ctl ve destroy la --wait
		ctl ve destroy lb --wait
	}
fi

if [ "$SIM_ARGS" = --ceph ]; then
	# needs: the controller's --ceph-helper and --gateway
	test_ceph_pool_holds_the_ves() {
		ctl ve create cx --template busybox --wait
		assert_eq VE_STATE_RUNNING "$(ve_state cx)"
		ctl ve exec cx -- sh -c 'echo in-ceph >/root/mark; sync'
		# another Ceph client, in the Ceph namespace, sees the VE's files
		local m out
		m=$(mktemp -d)
		# shellcheck disable=SC2016
		out=$(ip netns exec "$(cat "$HSP_SIM_DIR/ceph.ns")" bash -c '
			bash "$1" mount "$2" "$3" || exit 1
			ls "$3/hsp/ves/cx"
			bash "$1" umount "$2" "$3"' - "$REPO/test/ceph/cluster.sh" "$HSP_SIM_DIR/ceph" "$m")
		rmdir "$m"
		assert_match 'config.json' "$out"
		sim_cluster status | grep -q '^ceph: .*osd 1/1 up; mds a up:active'
		ctl ve destroy cx --wait
	}

	test_ceph_daemons_restart() {
		ctl ve create cr --template busybox --node node1 --wait
		local d
		for d in mds mon osd; do
			sim_cluster ceph restart "$d"
			ctl ve exec cr -- sh -c "echo $d >>/root/log; sync"
		done
		assert_eq "mds mon osd" "$(ctl ve exec cr -- cat /root/log | tr '\n' ' ' | sed 's/ $//')"
		expect_fail sim_cluster ceph restart mgr
		ctl ve destroy cr --wait
	}
fi
