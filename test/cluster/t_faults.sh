# Faults: the agent killed and restarted (VEs keep running and are
# re-adopted), the controller restarted (state intact, agents reconnect).
NODES=2

test_agent_killed_and_restarted() {
	ctl ve create sv --template busybox --node node1 --wait
	pid1=$(node_runtime node1 state sv --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["init_pid"])')
	"$REPO/test/sim-cluster" --dir "$HSP_SIM_DIR" node kill-agent node1
	# the VE runs on without its agent
	sleep 1
	node_runtime node1 state sv | grep -q 'status: *running'
	# the controller notices the node going quiet
	wait_until 10 sh -c "hspctl -o json node show node1 | grep -q '\"connected\": false'"
	"$REPO/test/sim-cluster" --dir "$HSP_SIM_DIR" node start-agent node1
	# ready from before the kill is not enough: the new session must be open
	wait_until 10 sh -c "hspctl -o json node show node1 | grep -q '\"connected\": true'"
	wait_until 10 sh -c "hspctl -o json node show node1 | grep -q NODE_STATE_READY"
	assert_eq VE_STATE_RUNNING "$(ve_state sv)"
	pid2=$(node_runtime node1 state sv --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["init_pid"])')
	assert_eq "$pid1" "$pid2"
	assert_eq adopted "$(ctl ve exec sv -- echo adopted)"
	ctl ve stop sv --wait
	ctl ve destroy sv --wait
}

test_node_dies_and_comes_back() {
	ctl ve create dv --template busybox --node node2 --wait
	"$REPO/test/sim-cluster" --dir "$HSP_SIM_DIR" node kill-agent node2
	wait_until 10 sh -c "hspctl -o json node show node2 | grep -q NODE_STATE_DEAD"
	assert_eq VE_STATE_UNKNOWN "$(ve_state dv)"
	# commands to it fail clearly, at once
	assert_eq 24 "$(ctl_code ve stop dv)"
	"$REPO/test/sim-cluster" --dir "$HSP_SIM_DIR" node start-agent node2
	wait_until 10 sh -c "hspctl -o json node show node2 | grep -q NODE_STATE_READY"
	wait_until 5 sh -c "hspctl -o json ve show dv | grep -q VE_STATE_RUNNING"
	ctl ve destroy dv --wait
}

test_controller_restart_keeps_state() {
	ctl ve create cr --template busybox --memory 96M --wait
	t=$(tenant_token delta)
	before=$(ctl -o json ve show cr | grep -v -e cpuNs -e '"memoryBytes": "[0-9]*",$' -e pids -e diskUsed)
	"$REPO/test/sim-cluster" --dir "$HSP_SIM_DIR" controller restart
	wait_until 15 sh -c "[ \$(hspctl -o json cluster info | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"nodesReady\"])') = 2 ]"
	wait_until 5 sh -c "hspctl -o json ve show cr | grep -q VE_STATE_RUNNING"
	after=$(ctl -o json ve show cr | grep -v -e cpuNs -e '"memoryBytes": "[0-9]*",$' -e pids -e diskUsed)
	[ "$before" = "$after" ] || { diff <(echo "$before") <(echo "$after"); fail "VE changed"; }
	# tokens survive; VEs keep working
	assert_eq tenant:delta "$(HSP_TOKEN=$t ctl_json '["whoami"]' cluster info)"
	assert_eq still "$(ctl ve exec cr -- echo still)"
	ctl ve destroy cr --wait
}

test_unknown_ves_on_a_node_are_adopted() {
	# made by hand on the node, behind the controller's back
	node_runtime node2 create handmade --template busybox
	node_runtime node2 start handmade
	"$REPO/test/sim-cluster" --dir "$HSP_SIM_DIR" node restart-agent node2
	wait_until 10 hspctl ve show handmade
	assert_eq node2 "$(ctl_json '["node"]' ve show handmade)"
	assert_eq busybox "$(ctl_json '["template"]' ve show handmade)"
	wait_until 5 sh -c "hspctl -o json ve show handmade | grep -q VE_STATE_RUNNING"
	assert_eq handmade "$(ctl ve exec handmade -- hostname)"
	ctl ve destroy handmade --wait
	expect_fail node_runtime node2 state handmade
}
