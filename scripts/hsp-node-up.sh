#!/bin/bash
# Turns this machine into an hsp node: installs what the agent needs (unless
# --no-install), builds hsp from this tree, puts templates into the runtime
# root, writes the agent's configuration and starts the agent, which joins
# the cluster with the token and registers as ready.  Re-running it restarts
# the agent with the saved configuration (the token is needed only once).
#
#   scripts/hsp-node-up.sh --controller HOST:PORT --token JOIN_TOKEN [--name NODE]
#       [--root DIR] [--run-dir DIR] [--state-dir DIR] [--address IP]
#       [--templates "busybox debian-12"] [--log FILE] [--ve-uplink IF]
#       [--drain-on-shutdown] [--no-install]
#
# --drain-on-shutdown: stopping the agent (SIGTERM) first has the controller
# move this node's VEs to other nodes, as `hspctl node drain` would.
# --ve-uplink IF: the interface that connects this node to the cluster's VE
# segment (where the gateway is); the agent plugs it into its VE bridge, so
# VEs of every node share one L2 network and keep their address on another
# node.  test/sim-cluster starts its simulated nodes through this same script.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CONTROLLER="" TOKEN="" NAME=$(hostname -s | tr 'A-Z_' 'a-z-') ROOT=/var/lib/hsp RUN=/run/hsp
STATE=/var/lib/hsp-agent ADDRESS="" TEMPLATES="" LOG="" INSTALL=yes VE_UPLINK="" DRAIN=""

die() {
	echo "hsp-node-up: $*" >&2
	exit 1
}

while [ $# -gt 0 ]; do
	case $1 in
	--controller) CONTROLLER=$2 && shift 2 ;;
	--token) TOKEN=$2 && shift 2 ;;
	--name) NAME=$2 && shift 2 ;;
	--root) ROOT=$2 && shift 2 ;;
	--run-dir) RUN=$2 && shift 2 ;;
	--state-dir) STATE=$2 && shift 2 ;;
	--address) ADDRESS=$2 && shift 2 ;;
	--templates) TEMPLATES=$2 && shift 2 ;;
	--log) LOG=$2 && shift 2 ;;
	--ve-uplink) VE_UPLINK=$2 && shift 2 ;;
	--drain-on-shutdown) DRAIN=1 && shift ;;
	--no-install) INSTALL=no && shift ;;
	-h | --help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//' && exit 0 ;;
	*) die "unknown option \`$1' (see --help)" ;;
	esac
done
[ -n "$CONTROLLER" ] || [ -f "$STATE/agent.conf" ] || die "--controller is required"
LOG=${LOG:-$STATE/agent.log}

if [ "$INSTALL" = yes ]; then
	sh "$REPO/scripts/install-deps.sh"
	make -C "$REPO" build >/dev/null
fi
AGENT=${HSP_AGENT:-$REPO/build/src/agent/hsp-agent}
RUNTIME=${HSP_RUNTIME:-$REPO/build/src/runtime/hsp-runtime}
[ -x "$AGENT" ] || die "no agent at $AGENT (make build)"

for t in $TEMPLATES; do
	[ -f "$ROOT/templates/$t/rootfs.tar.zst" ] || sh "$REPO/images/build.sh" "$t" "$ROOT" >/dev/null
done

mkdir -p "$STATE"
chmod 700 "$STATE"
if [ -n "$CONTROLLER" ]; then
	# What a restart of the agent needs, without the (spent) token.
	cat >"$STATE/agent.conf" <<CONF
CONTROLLER=$CONTROLLER
NAME=$NAME
ROOT=$ROOT
RUN=$RUN
ADDRESS=$ADDRESS
VE_UPLINK=$VE_UPLINK
DRAIN_ON_SHUTDOWN=$DRAIN
CONF
fi
# shellcheck source=/dev/null
. "$STATE/agent.conf"

# A running process: one of its threads is not a zombie.  Where no init
# reaps, kill -0 succeeds on a zombie; and a killed agent's main thread
# turns zombie while its other threads still exit.
running() {
	local st t
	for t in /proc/"$1"/task/*/stat; do
		read -r st 2>/dev/null <"$t" || continue
		st=${st##*) }
		case ${st%% *} in Z | X | "") ;; *) return 0 ;; esac
	done
	return 1
}

if [ -f "$STATE/agent.pid" ] && running "$(cat "$STATE/agent.pid")"; then
	kill "$(cat "$STATE/agent.pid")"
	for _ in $(seq 100); do running "$(cat "$STATE/agent.pid")" || break; sleep 0.05; done
fi
[ -f "$STATE/node.crt" ] || [ -n "$TOKEN" ] || die "not joined yet: --token is required"

args=(--controller "$CONTROLLER" --name "$NAME" --state-dir "$STATE" --runtime "$RUNTIME"
	--root "$ROOT" --run-dir "$RUN")
[ -n "$ADDRESS" ] && args+=(--address "$ADDRESS")
[ -n "${VE_UPLINK:-}" ] && args+=(--ve-uplink "$VE_UPLINK")
[ -n "${DRAIN_ON_SHUTDOWN:-}" ] && args+=(--drain-on-shutdown)
[ -n "$TOKEN" ] && [ ! -f "$STATE/node.crt" ] && args+=(--token "$TOKEN")
# HSP_AGENT_WRAP: a command the agent runs under (valgrind in the tests).
# shellcheck disable=SC2086
${HSP_AGENT_WRAP:-} "$AGENT" "${args[@]}" >>"$LOG" 2>&1 </dev/null &
echo $! >"$STATE/agent.pid"

# Joined once the certificate is saved; the agent then opens its session.
for _ in $(seq 300); do
	[ -f "$STATE/node.crt" ] && break
	running "$(cat "$STATE/agent.pid")" || { tail -3 "$LOG" >&2; die "the agent exited (log: $LOG)"; }
	sleep 0.1
done
[ -f "$STATE/node.crt" ] || die "the agent did not join within 30 s (log: $LOG)"
echo "hsp-node-up: node $NAME joined $CONTROLLER; agent pid $(cat "$STATE/agent.pid"), log $LOG"
