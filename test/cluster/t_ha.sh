# Cluster operations on shared storage (a real Ceph cluster): per-node
# cephx keys, restart-migration, drain, failover with fencing after kill,
# freeze and cut, the fenced node's clean return, and the writer safety
# test.  Scenario tests: each is a list of events and what must follow.
NODES=3
SIM_ARGS=--ceph
TEMPLATES=busybox

sim() { "$REPO/test/sim-cluster" --dir "$HSP_SIM_DIR" "$@"; }
node_state() { ctl_json '["state"]' node show "$1"; }
ve_node() { ctl_json '["node"]' ve show "$1"; }
ve_ip() { ctl_json '["ip"]' ve show "$1" | cut -d/ -f1; }
ceph_ctl() { ip netns exec "$(cat "$HSP_SIM_DIR/ceph.ns")" ceph -c "$HSP_SIM_DIR/ceph/ceph.conf" "$@"; }

# Every test starts from three ready nodes, whatever the one before left.
all_ready() {
	local n
	for n in node1 node2 node3; do
		# a test that removed it and failed before it joined again
		if ! hspctl node show "$n" >/dev/null 2>&1; then
			sim node rejoin "$n" >/dev/null 2>&1 || true
			continue
		fi
		[ "$(node_state "$n")" = NODE_STATE_READY ] && continue
		sim node thaw "$n" >/dev/null 2>&1 || true
		sim node heal "$n" >/dev/null 2>&1 || true
		[ -f "$HSP_SIM_DIR/nodes/$n/holder.pid" ] || sim node start "$n" >/dev/null 2>&1 || true
		hspctl node undrain "$n" >/dev/null 2>&1 || true
	done
	wait_until 30 sh -c "[ \$(hspctl -o json node list | grep -c NODE_STATE_READY) = 3 ]"
}

# A node's VE runs on its node only: the runtime of every other node
# says it is not running there.
runs_only_on() {
	local ve=$1 node=$2 n
	for n in node1 node2 node3; do
		local st
		st=$(node_runtime "$n" state "$ve" --json 2>/dev/null |
			python3 -c 'import json,sys; print(json.load(sys.stdin).get("status",""))' 2>/dev/null || true)
		if [ "$n" = "$node" ]; then
			assert_eq running "$st"
		else
			[ "$st" != running ] || fail "$ve runs on $n too"
		fi
	done
}

test_every_node_has_its_own_restricted_ceph_key() {
	all_ready
	cluster=$(ctl_json '["name"]' cluster info)
	for n in node1 node2 node3; do
		caps=$(ceph_ctl auth get "client.$cluster-$n" 2>/dev/null)
		assert_match 'path=/hsp' "$caps"
		# the node holds its own key, not the controller's admin key
		kr=$(cat "$HSP_SIM_DIR/nodes/$n/agent/ceph.keyring")
		assert_match "client.$cluster-$n" "$kr"
		assert_no_match 'client.admin' "$kr"
	done
	# a node key cannot mount above its path
	mkdir -p "$HSP_SIM_DIR/above"
	out=$(in_node node1 ceph-fuse -c "$HSP_SIM_DIR/nodes/node1/agent/ceph.conf" \
		--id "$cluster-node1" -k "$HSP_SIM_DIR/nodes/node1/agent/ceph.keyring" -r / \
		"$HSP_SIM_DIR/above" 2>&1) && fail "node1's key mounted /"
	assert_match 'Operation not permitted' "$out"
}

test_restart_migration_keeps_files_and_address() {
	all_ready
	ctl ve create mig --template busybox --network --node node1 --wait
	ip=$(ve_ip mig)
	ctl ve exec mig -- sh -c 'echo kept > /root/marker; sync'
	in_ctl_ns ping -c1 -W2 "$ip" >/dev/null
	ctl ve migrate mig --to node2 --wait
	assert_eq node2 "$(ve_node mig)"
	assert_eq VE_STATE_RUNNING "$(ve_state mig)"
	assert_eq "$ip" "$(ve_ip mig)"
	assert_eq kept "$(ctl ve exec mig -- cat /root/marker)"
	runs_only_on mig node2
	# the address answers from its new node at once (gratuitous ARP)
	wait_until 3 in_ctl_ns ping -c1 -W1 "$ip"
	# a stopped VE moves without starting
	ctl ve stop mig --wait
	ctl ve migrate mig --to node3 --wait
	assert_eq node3 "$(ve_node mig)"
	assert_eq VE_STATE_STOPPED "$(ve_state mig)"
	ctl ve start mig --wait
	assert_eq kept "$(ctl ve exec mig -- cat /root/marker)"
	ctl ve destroy mig --wait
}

test_migrate_bad_input_changes_nothing() {
	all_ready
	ctl ve create mb --template busybox --node node1 --wait
	assert_eq 13 "$(ctl_code ve migrate mb --to node1)"      # already there
	assert_eq 15 "$(ctl_code ve migrate mb --to nosuch)"     # NOT_FOUND
	assert_eq 15 "$(ctl_code ve migrate nosuch --to node2)"
	assert_eq 2 "$(ctl_code ve migrate mb --fallback)"       # usage
	t=$(tenant_token acme)
	# another tenant does not even see it; moving is for operators anyway
	assert_eq 15 "$(HSP_TOKEN=$t ctl_code ve migrate mb --to node2)"
	assert_eq node1 "$(ve_node mb)"
	assert_eq VE_STATE_RUNNING "$(ve_state mb)"
	runs_only_on mb node1
	ctl ve destroy mb --wait
}

can_checkpoint() { hspctl -o json node show "$1" | grep -q '"criu"'; }

# Live: the VE's processes go on across the move (same pid, still
# running); where a node cannot checkpoint, live is refused with the
# reason unless the fallback is allowed.
test_live_migration_keeps_processes() {
	all_ready
	ctl ve create lm --template busybox --network --node node1 --wait
	pid=$(ctl ve exec lm -- sh -c 'setsid sleep 1000 </dev/null >/dev/null 2>&1 & echo $!')
	if can_checkpoint node1 && can_checkpoint node2; then
		op=$(ctl_json '["id"]' ve migrate lm --live --to node2)
		ctl operation wait "$op" >/dev/null
		assert_match 'moved live from node node1 to node node2' \
			"$(ctl_json '["message"]' operation show "$op")"
		assert_eq node2 "$(ve_node lm)"
		assert_match 'sleep' "$(ctl ve exec lm -- cat /proc/"$pid"/cmdline | tr '\0' ' ')"
		runs_only_on lm node2
		wait_until 3 in_ctl_ns ping -c1 -W1 "$(ve_ip lm)"
	else
		echo "no live move here: a node lacks checkpoint support (hsp-runtime info says why)"
		out=$(ctl ve migrate lm --live --to node2 2>&1 || true)
		assert_match 'live migration impossible: node node[12]: .*checkpoint' "$out"
		assert_eq node1 "$(ve_node lm)"
		op=$(ctl_json '["id"]' ve migrate lm --live --fallback --to node2)
		ctl operation wait "$op" >/dev/null
		assert_match 'restart-migrating' \
			"$(timeout 2 hspctl events --since 1 --operation "$op" 2>/dev/null || true)"
		assert_eq node2 "$(ve_node lm)"
	fi
	ctl ve destroy lm --wait
}

test_drain_moves_everything_then_maintenance() {
	all_ready
	for v in d1 d2 d3; do ctl ve create "$v" --template busybox --node node3 --wait; done
	ctl ve stop d3 --wait
	ctl node drain node3 --wait
	assert_eq NODE_STATE_MAINTENANCE "$(node_state node3)"
	for v in d1 d2 d3; do
		n=$(ve_node "$v")
		[ "$n" != node3 ] || fail "$v still on node3"
	done
	assert_eq VE_STATE_RUNNING "$(ve_state d1)"
	assert_eq VE_STATE_RUNNING "$(ve_state d2)"
	assert_eq VE_STATE_STOPPED "$(ve_state d3)"
	runs_only_on d1 "$(ve_node d1)"
	# no new VE goes to a node in maintenance
	expect_fail ctl ve create d4 --template busybox --node node3
	# the node let go of the shared pool
	wait_until 5 sh -c "! grep -q ' $HSP_SIM_DIR/nodes/node3/root/pools/' /proc/$(cat "$HSP_SIM_DIR/nodes/node3/holder.pid")/mounts"
	ctl node undrain node3
	assert_eq NODE_STATE_READY "$(node_state node3)"
	ctl ve create d4 --template busybox --node node3 --wait
	for v in d1 d2 d3 d4; do ctl ve destroy "$v" --wait; done
}

# Waits for ve to run on a node other than `from`; prints the seconds.
wait_failover() {
	local ve=$1 from=$2 t0=$3
	wait_until 30 sh -c "[ \"\$(hspctl -o json ve show $ve | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d[\"node\"] + d[\"state\"])')\" != ${from}VE_STATE_RUNNING ] && hspctl -o json ve show $ve | grep -q VE_STATE_RUNNING"
	echo "failover of $ve: $(echo "$(date +%s.%N) - $t0" | bc) s" >&2
}

# The safety scenario: a writer appends sequence numbers with fsync and
# acknowledges each; its node fails (kill, freeze or cut); after failover
# and healing every acknowledged number is there once and in order, and
# nothing the stale instance wrote after the fence landed.
safety_scenario() {
	local fault=$1 heal=$2 ve=w$1$3
	ctl ve create "$ve" --template busybox --node node1 --wait
	(ctl ve exec "$ve" -- sh -c 'i=0; while :; do i=$((i+1)); echo $i >> /root/seq; sync; echo ack $i; done' \
		>"$HSP_SIM_DIR/$ve.acks" 2>/dev/null || true) &
	wait_until 10 sh -c "[ \$(grep -c ack $HSP_SIM_DIR/$ve.acks) -ge 20 ]"
	t0=$(date +%s.%N)
	sim node "$fault" node1
	wait_failover "$ve" node1 "$t0"
	assert_eq NODE_STATE_FENCED "$(node_state node1)"
	sleep 1
	acked=$(grep -o 'ack [0-9]*' "$HSP_SIM_DIR/$ve.acks" | tail -1 | cut -d' ' -f2)
	ctl ve exec "$ve" -- cat /root/seq >"$HSP_SIM_DIR/$ve.seq1"
	python3 - "$HSP_SIM_DIR/$ve.seq1" "$acked" <<'EOF'
import sys
nums = [int(l) for l in open(sys.argv[1]) if l.strip()]
acked = int(sys.argv[2])
assert nums == list(range(1, len(nums) + 1)), "not 1..N once each, in order: %r" % nums[-5:]
assert len(nums) >= acked, "acknowledged %d but only %d there" % (acked, len(nums))
EOF
	# the stale instance wakes up (or is reconnected) and is cut off
	sim node "$heal" node1
	wait_until 30 sh -c "hspctl -o json node show node1 | grep -q NODE_STATE_READY"
	sleep 2
	ctl ve exec "$ve" -- cat /root/seq >"$HSP_SIM_DIR/$ve.seq2"
	cmp "$HSP_SIM_DIR/$ve.seq1" "$HSP_SIM_DIR/$ve.seq2" || fail "the stale instance wrote after the fence"
	runs_only_on "$ve" "$(ve_node "$ve")"
	wait
	ctl ve destroy "$ve" --wait
}

# Each fault HSP_HA_ROUNDS times (default 2), on a fresh writer each time.
rounds() {
	local r
	for r in $(seq "${HSP_HA_ROUNDS:-2}"); do
		all_ready
		safety_scenario "$1" "$2" "$r"
	done
}
test_failover_after_node_kill() { rounds kill start; }
test_failover_after_node_freeze() { rounds freeze thaw; }
test_failover_after_link_cut() { rounds cut heal; }

test_fenced_node_rejoins_clean() {
	all_ready
	ctl ve create fr --template busybox --node node2 --wait
	sim node kill node2
	wait_until 30 sh -c "hspctl -o json node show node2 | grep -q NODE_STATE_FENCED"
	assert_match 'node.fence +node2 +fenced' "$(timeout 2 hspctl events --since 1 --node node2 2>/dev/null || true)"
	wait_until 20 sh -c "hspctl -o json ve show fr | grep -q VE_STATE_RUNNING"
	now=$(ve_node fr)
	[ "$now" != node2 ] || fail "fr still on node2"
	sim node start node2
	wait_until 30 sh -c "hspctl -o json node show node2 | grep -q NODE_STATE_READY"
	# it did not restart what it had; the pool works there again
	runs_only_on fr "$now"
	ctl ve create fr2 --template busybox --node node2 --wait
	ctl ve migrate fr --to node2 --wait
	assert_eq VE_STATE_RUNNING "$(ve_state fr)"
	ctl ve destroy fr --wait
	ctl ve destroy fr2 --wait
}

# Planned maintenance from the node's side: an agent configured to drain
# on shutdown has its VEs moved away before it stops.
test_agent_shutdown_drains_its_node() {
	all_ready
	echo --drain-on-shutdown >"$HSP_SIM_DIR/nodes/node3/node-up.args"
	sim node restart-agent node3
	# the new agent's session may take a moment: a refused create changes nothing
	wait_until 10 hspctl ve create sd --template busybox --node node3 --wait
	sim node restart-agent node3 # SIGTERM: drain first, then stop
	now=$(ve_node sd)
	[ "$now" != node3 ] || fail "sd still on node3"
	assert_eq VE_STATE_RUNNING "$(ve_state sd)"
	assert_eq NODE_STATE_MAINTENANCE "$(node_state node3)"
	runs_only_on sd "$now"
	rm "$HSP_SIM_DIR/nodes/node3/node-up.args"
	ctl node undrain node3
	ctl ve destroy sd --wait
}

# A backup in the shared pool outlives its VE and the node that made it:
# with that node dead, another restores it.
test_backup_in_the_pool_outlives_its_node() {
	all_ready
	ctl ve create bkp --template busybox --network --node node1 --wait
	ctl ve exec bkp -- sh -c 'echo pooled > /root/marker; sync'
	ctl backup create bkp --id bkp-one --wait
	assert_eq shared "$(ctl_json '["pool"]' backup show bkp-one)"
	ctl ve destroy bkp --wait
	sim node kill node1
	wait_until 30 sh -c "hspctl -o json node show node1 | grep -q NODE_STATE_FENCED"
	ctl backup restore bkp-one --start --wait
	[ "$(ve_node bkp)" != node1 ] || fail "restored on the dead node"
	assert_eq pooled "$(ctl ve exec bkp -- cat /root/marker)"
	wait_until 3 in_ctl_ns ping -c1 -W1 "$(ve_ip bkp)"
	ctl backup delete bkp-one --wait
	assert_eq 0 "$(ctl_json '["backups"].__len__()' backup list)"
	ctl ve destroy bkp --wait
	sim node start node1
	wait_until 30 sh -c "hspctl -o json node show node1 | grep -q NODE_STATE_READY"
}

# The Session status a node certificate and key get (a gRPC code; -1:
# welcomed, which would take the node's session from its agent).
session_code() {
	in_ctl_ns node -e '
const [dir, cert, key] = process.argv.slice(1);
const fs = require("fs");
const grpc = require(dir + "/node_modules/@grpc/grpc-js");
const loader = require(dir + "/node_modules/@grpc/proto-loader");
const def = loader.loadSync(["hsp/v1/node.proto"], {includeDirs: [dir + "/../../proto"], keepCase: true, defaults: true});
const hsp = grpc.loadPackageDefinition(def).hsp.v1;
const creds = grpc.credentials.createSsl(fs.readFileSync(process.env.HSP_CA), fs.readFileSync(key), fs.readFileSync(cert));
const s = new hsp.NodeAgent(process.env.HSP_CONTROLLER, creds).Session({deadline: Date.now() + 10000});
s.on("data", () => { console.log(-1); process.exit(0); });
s.on("error", (e) => { console.log(e.code); process.exit(0); });
s.write({hello: {agent_version: "old"}});' "$REPO/test/interop" "$1" "$2"
}

# A machine removed from the cluster keeps nothing: its Ceph user goes and
# its sessions are evicted, and once its name has joined again (with a new
# key) its old certificate, same CA and same name, opens no session.
test_removed_node_keeps_neither_pool_nor_identity() {
	all_ready
	local cluster old pool
	cluster=$(ctl_json '["name"]' cluster info)
	old=$(mktemp -d)
	cp "$HSP_SIM_DIR/nodes/node3/agent/node.crt" "$HSP_SIM_DIR/nodes/node3/agent/node.key" "$old/"
	pool=$HSP_SIM_DIR/nodes/node3/root/pools/shared
	# the pool is mounted there (an undrain before may still be mounting it)
	wait_until 30 in_node node3 mountpoint -q "$pool"
	in_node node3 timeout 10 touch "$pool/written-before-removal"
	ctl node remove node3
	assert_eq 15 "$(ctl_code node show node3)"
	! ceph_ctl auth get "client.$cluster-node3" >/dev/null 2>&1 || fail "node3's Ceph user survived"
	# evicted: nothing it writes reaches the pool (as another node sees it),
	# and its keyring mounts nothing
	# (into the mount only: its runtime may have let go of the dead mount,
	# and a file in the bare mount point would keep a later mount out)
	if in_node node3 mountpoint -q "$pool"; then
		in_node node3 timeout 10 touch "$pool/written-after-removal" 2>/dev/null || true
	fi
	local seen=$HSP_SIM_DIR/nodes/node1/root/pools/shared
	in_node node1 test -e "$seen/written-before-removal"
	! in_node node1 test -e "$seen/written-after-removal" || fail "node3 still writes to the pool"
	in_node node1 rm -f "$seen/written-before-removal"
	mkdir -p "$HSP_SIM_DIR/removed"
	! in_node node3 timeout 20 ceph-fuse -c "$HSP_SIM_DIR/nodes/node3/agent/ceph.conf" \
		--id "$cluster-node3" -k "$HSP_SIM_DIR/nodes/node3/agent/ceph.keyring" -r /hsp \
		"$HSP_SIM_DIR/removed" >/dev/null 2>&1 || fail "node3's keyring still mounts the pool"
	assert_eq 7 "$(session_code "$old/node.crt" "$old/node.key")"

	sim node rejoin node3
	wait_until 30 sh -c "hspctl -o json node show node3 | grep -q NODE_STATE_READY"
	ceph_ctl auth get "client.$cluster-node3" >/dev/null
	ctl ve create rj --template busybox --node node3 --wait
	assert_eq VE_STATE_RUNNING "$(ve_state rj)"
	ctl ve destroy rj --wait
	assert_eq 16 "$(session_code "$old/node.crt" "$old/node.key")"
	assert_eq True "$(ctl_json '["connected"]' node show node3)"
	rm -rf "$old"
}
