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

# --- the simulated nodes as processes (test/sim-cluster) ---

sim_cluster() { "$REPO/test/sim-cluster" --dir "$HSP_SIM_DIR" "$@"; }

# What `sim-cluster up` recorded: sim_conf CEPH|VE_UPLINK prints 0 or 1.
sim_conf() { sed -n "s/^$1=//p" "$HSP_SIM_DIR/sim.conf"; }

# A node's group in every hierarchy, one directory a line, and in one
# hierarchy ("freezer", "memory", "-" for cgroup v2).
node_cgroups() {
	local c m r
	while read -r c m r; do echo "$m$r/$1"; done <"$HSP_SIM_DIR/cgroups"
}
node_cgroup() {
	local c m r
	while read -r c m r; do [ "$c" != "$2" ] || echo "$m$r/$1"; done <"$HSP_SIM_DIR/cgroups"
}

# alive PID: running or stopped, not a zombie (PID 1 here reaps no one)
# shellcheck source=test/lib/proc.sh
. "$REPO/test/lib/proc.sh"

# Live processes of a node: its group and every group below, in every
# hierarchy.
node_pids() {
	local d p
	for d in $(node_cgroups "$1"); do
		[ -d "$d" ] && find "$d" -name cgroup.procs -exec cat {} +
	done | sort -un | while read -r p; do
		if alive "$p"; then echo "$p"; fi
	done
}

# The host pids of a VE's processes (its group in the freezer hierarchy).
ve_pids() {
	cat "$(node_cgroup "$1" freezer)"/hsp-*/"$2"/cgroup.procs 2>/dev/null
}

# A process's group in one hierarchy, as /proc/PID/cgroup names it.
proc_cgroup() {
	awk -F: -v c="$2" '$2 == c || (c == "-" && $2 == "") { print $3 }' "/proc/$1/cgroup"
}

node_state() { ctl_json '["state"]' node show "$1"; }

# ping from the controller's namespace (which routes to the VE segment).
ctl_ping() { in_ctl_ns busybox ping -c 1 -W 1 "$1" >/dev/null 2>&1; }
