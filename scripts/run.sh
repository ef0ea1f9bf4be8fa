#!/bin/sh
# `make run`: the main job on the embedded default, a single-node cluster on
# this machine: the controller (state in $HSP_CTL_DIR, API on 127.0.0.1:7443
# and a root-only unix socket), one agent joined with a join token, local
# storage, no Ceph; then a debian-12 VE with your ssh key, and how to log in.
# Safe to run again: what runs is reused, a stopped VE is started.
set -eu
B=${HSP_BUILD:?build directory}
ROOT=${HSP_ROOT:-/var/lib/hsp}
RUN=${HSP_RUN_DIR:-/run/hsp}
CTL_DIR=${HSP_CTL_DIR:-/var/lib/hsp-controller}
AGENT_DIR=${HSP_AGENT_DIR:-/var/lib/hsp-agent}
SOCK=$RUN/controller.sock
VE=${HSP_DEMO_VE:-web}
SUBNET=${HSP_SUBNET:-10.77.0.0/24}
hspctl() { "$B/src/hspctl/hspctl" --controller "unix:$SOCK" "$@"; }
alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

echo "== templates (busybox, debian-12) in $ROOT"
sh images/build.sh busybox "$ROOT" >/dev/null
[ -f "$ROOT/templates/debian-12/rootfs.tar.zst" ] || sh images/build.sh debian-12 "$ROOT"

mkdir -p "$CTL_DIR" "$RUN"
if alive "$CTL_DIR/controller.pid"; then
	echo "== controller already running (pid $(cat "$CTL_DIR/controller.pid"))"
else
	echo "== starting hsp-controller (log $CTL_DIR/controller.log)"
	"$B/src/controller/hsp-controller" --state-dir "$CTL_DIR" --listen 127.0.0.1:7443 \
		--socket "$SOCK" --subnet "$SUBNET" >>"$CTL_DIR/controller.log" 2>&1 </dev/null &
	echo $! >"$CTL_DIR/controller.pid"
	i=0
	until [ -S "$SOCK" ] && hspctl cluster info >/dev/null 2>&1; do
		i=$((i + 1))
		if [ $i -gt 100 ] || ! alive "$CTL_DIR/controller.pid"; then
			tail -5 "$CTL_DIR/controller.log" >&2
			echo "run: the controller did not start" >&2
			exit 1
		fi
		sleep 0.1
	done
fi

if alive "$AGENT_DIR/agent.pid"; then
	echo "== agent already running (pid $(cat "$AGENT_DIR/agent.pid"))"
else
	token=""
	[ -f "$AGENT_DIR/node.crt" ] || token=$(hspctl token create --kind join --ttl 10m)
	echo "== starting hsp-agent (log $AGENT_DIR/agent.log)"
	HSP_AGENT="$B/src/agent/hsp-agent" HSP_RUNTIME="$B/src/runtime/hsp-runtime" \
		bash scripts/hsp-node-up.sh --no-install --controller 127.0.0.1:7443 \
		--name "$(hostname -s | tr 'A-Z_' 'a-z-' | cut -c1-63)" --state-dir "$AGENT_DIR" \
		--root "$ROOT" --run-dir "$RUN" ${token:+--token "$token"}
fi
i=0
# Ready from the last run is not enough: its session must be open.
until hspctl -o json node list | python3 -c 'import json,sys; sys.exit(not any(n["state"] == "NODE_STATE_READY" and n.get("connected") for n in json.load(sys.stdin)["nodes"]))'; do
	i=$((i + 1))
	[ $i -le 100 ] || { echo "run: the node did not become ready" >&2 && exit 1; }
	sleep 0.1
done

# Your key if you have one; else one made for the demo.
key=""
for k in "$HOME"/.ssh/id_ed25519.pub "$HOME"/.ssh/id_ecdsa.pub "$HOME"/.ssh/id_rsa.pub; do
	[ -f "$k" ] && key=$k && break
done
if [ -z "$key" ]; then
	[ -f "$CTL_DIR/demo_id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C hsp-demo -f "$CTL_DIR/demo_id_ed25519"
	key=$CTL_DIR/demo_id_ed25519.pub
fi

if ! hspctl ve show "$VE" >/dev/null 2>&1; then
	echo "== creating VE $VE (debian-12) with $key"
	hspctl ve create "$VE" --template debian-12 --network --ssh-key "$key" --memory 512M \
		--cpus 1 --wait
elif ! hspctl -o json ve show "$VE" | grep -q VE_STATE_RUNNING; then
	echo "== starting VE $VE"
	hspctl ve start "$VE" --wait
fi
echo
hspctl node list
echo
hspctl ve list
ip=$(hspctl -o json ve show "$VE" | sed -n 's/.*"ip": "\([0-9.]*\)\/.*/\1/p')
idopt=""
[ "$key" = "$CTL_DIR/demo_id_ed25519.pub" ] && idopt="-i $CTL_DIR/demo_id_ed25519 "
echo
echo "Log in with:    ssh ${idopt}root@$ip"
echo "Run a command:  $B/src/hspctl/hspctl --controller unix:$SOCK ve exec $VE -- uname -a"
echo "Stop it with:   $B/src/hspctl/hspctl --controller unix:$SOCK ve stop $VE"
