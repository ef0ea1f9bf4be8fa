# Rescue through the cluster: a VE broken so it cannot boot is started
# from a fresh root with its own at /repair, with its keys and address;
# the customer repairs it over ssh; finishing boots it normally.  On the
# shared pool, so a VE whose node was fenced is rescued on another.
NODES=2
SIM_ARGS=--ceph
TEMPLATES=debian-12

KEY=""
ve_ip() { ctl_json '["ip"]' ve show "$1" | cut -d/ -f1; }
# ssh from outside (the controller's namespace routes to the VE segment)
vssh() {
	local ip=$1
	shift
	in_ctl_ns ssh -i "$KEY" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
		-o BatchMode=yes -o ConnectTimeout=5 -o LogLevel=ERROR "root@$ip" "$@"
}

test_rescue_repairs_a_ve_that_cannot_boot() {
	KEY=$HSP_SIM_DIR/rescue-key
	ssh-keygen -q -t ed25519 -N '' -f "$KEY"
	ctl ve create rv --template debian-12 --network --ssh-key "$KEY.pub" --node node1 --wait
	ip=$(ve_ip rv)
	vssh "$ip" 'echo mine > /root/marker; rm /sbin/init; sync'
	# it cannot boot any more
	out=$(ctl ve restart rv --wait 2>&1) && fail "rv restarted without its init"
	assert_match 'NOT_FOUND: .*exec init `/sbin/init`' "$out"
	[ "$(ve_state rv)" != VE_STATE_RUNNING ] || fail "rv runs without its init"
	ctl ve rescue rv --wait
	assert_eq VE_STATE_RESCUE "$(ve_state rv)"
	assert_eq "$ip" "$(ve_ip rv)"
	# the same key logs in at the same address; the broken root is at /repair
	assert_eq mine "$(vssh "$ip" cat /repair/root/marker)"
	vssh "$ip" 'test ! -e /repair/sbin/init && cp -a /sbin/init /repair/sbin/init && echo fixed > /repair/root/note'
	# while in rescue it does not start normally
	assert_eq 19 "$(ctl_code ve start rv)"
	ctl ve rescue rv --finish --wait
	assert_eq VE_STATE_RUNNING "$(ve_state rv)"
	assert_eq "mine fixed" "$(vssh "$ip" 'cat /root/marker /root/note' | tr '\n' ' ' | sed 's/ $//')"
	vssh "$ip" test -x /sbin/init
	ctl ve destroy rv --wait
}

test_rescue_bad_input_changes_nothing() {
	ctl ve create rb --template debian-12 --node node2 --wait
	assert_eq 19 "$(ctl_code ve rescue rb --finish)" # not in rescue
	assert_eq 15 "$(ctl_code ve rescue nosuch)"
	assert_eq 2 "$(ctl_code ve rescue)"
	t=$(tenant_token other)
	assert_eq 15 "$(HSP_TOKEN=$t ctl_code ve rescue rb)"
	assert_eq VE_STATE_RUNNING "$(ve_state rb)"
	ctl ve rescue rb --wait
	assert_eq 19 "$(ctl_code ve rescue rb)" # in rescue already
	ctl ve rescue rb --finish --wait
	assert_eq VE_STATE_RUNNING "$(ve_state rb)"
	ctl ve destroy rb --wait
}
