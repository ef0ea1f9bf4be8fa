# Helpers for the control-plane tests (sourced by run.sh).

# hspctl with the cluster's env; `ctl_code CMD...` prints its exit code.
ctl() { hspctl "$@"; }
ctl_code() {
	local rc=0
	hspctl "$@" >/dev/null 2>&1 || rc=$?
	echo "$rc"
}

# The value of a JSON path (python syntax after the root) of a read verb.
ctl_json() {
	local expr=$1
	shift
	hspctl -o json "$@" | python3 -c "import json,sys; d=json.load(sys.stdin); print(d$expr)"
}

ve_state() { ctl_json '["state"]' ve show "$1"; }

# A command run inside a node's namespaces (its runtime, its mounts).
in_node() {
	local n=$1
	shift
	nsenter -t "$(cat "$HSP_SIM_DIR/nodes/$n/holder.pid")" -m -n -- "$@"
}

node_runtime() {
	local n=$1
	shift
	in_node "$n" "$HSP_BUILD/src/runtime/hsp-runtime" --root "$HSP_SIM_DIR/nodes/$n/root" \
		--run-dir "$HSP_SIM_DIR/nodes/$n/run" "$@"
}

in_ctl_ns() { ip netns exec "$HSP_NETNS" "$@"; }

# A tenant's bearer token, made with the admin token.
tenant_token() {
	ctl_json '["secret"]' token create --kind tenant --tenant "$1"
}
