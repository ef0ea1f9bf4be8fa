# Who may do what: tokens, tenants, join tokens and node certificates.
NODES=1

test_no_or_bad_token_is_unauthenticated() {
	assert_eq 26 "$(HSP_TOKEN= ctl_code ve list)"
	assert_eq 26 "$(HSP_TOKEN=hspt.0123456789abcdef.00000000000000000000000000000000 ctl_code ve list)"
	assert_eq 26 "$(HSP_TOKEN=garbage ctl_code cluster info)"
	HSP_TOKEN= hspctl ve list 2>&1 | grep -q 'UNAUTHENTICATED'
}

test_tenants_see_only_their_own() {
	ta=$(tenant_token alpha)
	tb=$(tenant_token beta)
	HSP_TOKEN=$ta ctl ve create a1 --template busybox --wait
	assert_eq alpha "$(ctl_json '["tenant"]' ve show a1)"
	# beta: a1 does not exist for it, whatever it tries
	assert_eq 15 "$(HSP_TOKEN=$tb ctl_code ve show a1)"
	assert_eq 15 "$(HSP_TOKEN=$tb ctl_code ve stop a1)"
	assert_eq 15 "$(HSP_TOKEN=$tb ctl_code ve exec a1 -- true)"
	assert_eq 15 "$(HSP_TOKEN=$tb ctl_code ve destroy a1)"
	assert_eq 15 "$(HSP_TOKEN=$tb ctl_code ve set a1 --memory 64M)"
	HSP_TOKEN=$tb hspctl ve show a1 2>&1 | grep -q "VE \`a1' not found\|VE .a1. not found"
	assert_eq 0 "$(HSP_TOKEN=$tb ctl_json '["ves"].__len__()' ve list)"
	# nor can it pose as alpha or pick nodes
	assert_eq 17 "$(HSP_TOKEN=$tb ctl_code ve create b1 --template busybox --tenant alpha)"
	assert_eq 17 "$(HSP_TOKEN=$tb ctl_code ve create b1 --template busybox --node node1)"
	# tenants don't administer the cluster
	assert_eq 17 "$(HSP_TOKEN=$tb ctl_code node list)"
	assert_eq 17 "$(HSP_TOKEN=$tb ctl_code token create --kind admin)"
	# alpha still runs a1, untouched
	assert_eq VE_STATE_RUNNING "$(HSP_TOKEN=$ta ve_state a1)"
	assert_eq mine "$(HSP_TOKEN=$ta ctl ve exec a1 -- echo mine)"
	# the admin sees both tenants
	assert_eq 1 "$(ctl_json '["ves"].__len__()' ve list --tenant alpha)"
	# a revoked token stops working at once
	id=$(HSP_TOKEN=$tb ctl_json '["whoami"]' cluster info)
	assert_eq tenant:beta "$id"
	tb_id=$(echo "$tb" | cut -d. -f2)
	ctl token revoke "$tb_id"
	assert_eq 26 "$(HSP_TOKEN=$tb ctl_code ve list)"
	ctl ve destroy a1 --wait
}

test_tokens_are_stored_hashed() {
	t=$(tenant_token gamma)
	secret=$(echo "$t" | cut -d. -f3)
	db=$HSP_SIM_DIR/controller/state/state.db
	! grep -qa "$secret" "$db" "$db-wal" 2>/dev/null
	ctl token list | grep -q gamma
	! ctl -o json token list | grep -q "$secret"
}

test_join_token_single_use_and_expiry() {
	jt=$(ctl_json '["secret"]' token create --kind join --ttl 10m)
	# a join with a made-up node key but the right token succeeds once...
	d=$(mktemp -d)
	in_ctl_ns timeout 20 "$HSP_BUILD/src/agent/hsp-agent" --controller "${HSP_CONTROLLER}" \
		--name extra --state-dir "$d/a" --token "$jt" --root "$d/r" --run-dir "$d/run" \
		--runtime "$HSP_BUILD/src/runtime/hsp-runtime" --join-only
	[ -f "$d/a/node.crt" ]
	assert_eq NODE_STATE_JOINING "$(ctl_json '["state"]' node show extra)"
	# ...and never again
	rc=0
	in_ctl_ns timeout 20 "$HSP_BUILD/src/agent/hsp-agent" --controller "${HSP_CONTROLLER}" \
		--name extra2 --state-dir "$d/b" --token "$jt" --root "$d/r" --run-dir "$d/run" \
		--runtime "$HSP_BUILD/src/runtime/hsp-runtime" --join-only 2>"$d/err" || rc=$?
	[ "$rc" -ne 0 ]
	grep -q "already used" "$d/err"
	[ ! -f "$d/b/node.crt" ]
	# an expired one is refused too
	jt2=$(ctl_json '["secret"]' token create --kind join --ttl 1s)
	sleep 2
	rc=0
	in_ctl_ns timeout 20 "$HSP_BUILD/src/agent/hsp-agent" --controller "${HSP_CONTROLLER}" \
		--name extra3 --state-dir "$d/c" --token "$jt2" --root "$d/r" --run-dir "$d/run" \
		--runtime "$HSP_BUILD/src/runtime/hsp-runtime" --join-only 2>"$d/err" || rc=$?
	[ "$rc" -ne 0 ]
	grep -q "expired" "$d/err"
	assert_eq 15 "$(ctl_code node show extra3)"
	ctl node remove extra
	rm -rf "$d"
}

# hsp-agent --join-only as node $1 with state dir $2 and join token $3.
join_as() {
	in_ctl_ns timeout 20 "$HSP_BUILD/src/agent/hsp-agent" --controller "${HSP_CONTROLLER}" \
		--name "$1" --state-dir "$2" --token "$3" --root "$JD/r" --run-dir "$JD/run" \
		--runtime "$HSP_BUILD/src/runtime/hsp-runtime" --join-only
}

# As join_as, expected to be refused with a message matching $4.
join_refused() {
	local rc=0
	join_as "$1" "$2" "$3" 2>"$JD/err" || rc=$?
	cat "$JD/err"
	[ "$rc" -ne 0 ]
	grep -q "$4" "$JD/err"
	[ ! -f "$2/node.crt" ]
}

pubkey() { openssl x509 -in "$1" -noout -pubkey; }

test_join_asked_again_after_a_lost_answer() {
	JD=$(mktemp -d)
	jt=$(ctl_json '["secret"]' token create --kind join --ttl 10m)
	join_as again "$JD/a" "$jt"
	assert_eq 600 "$(stat -c %a "$JD/a/node.key")"
	first=$(pubkey "$JD/a/node.crt")
	joined=$(ctl_json '["joinedAt"]' node show again)
	# the answer lost (or the agent gone before saving it): the key is
	# there, the certificate is not; the same token, name and key join
	rm "$JD/a/node.crt"
	join_as again "$JD/a" "$jt"
	assert_eq "$first" "$(pubkey "$JD/a/node.crt")"
	openssl x509 -in "$JD/a/node.crt" -noout -subject | grep -q 'CN *= *again'
	# one node, as it was
	assert_eq 1 "$(ctl -o json node list | python3 -c \
		'import json,sys; print(sum(n["name"] == "again" for n in json.load(sys.stdin)["nodes"]))')"
	assert_eq "$joined" "$(ctl_json '["joinedAt"]' node show again)"
	assert_eq NODE_STATE_JOINING "$(ctl_json '["state"]' node show again)"
	# the same key under another name, and the same name with another key,
	# are anyone else holding the token
	mkdir -m 700 "$JD/b"
	cp -p "$JD/a/node.key" "$JD/b/node.key"
	join_refused again2 "$JD/b" "$jt" "already used"
	assert_eq 15 "$(ctl_code node show again2)"
	join_refused again "$JD/c" "$jt" "already used"
	# a removed node stays removed
	ctl node remove again
	rm "$JD/a/node.crt"
	join_refused again "$JD/a" "$jt" "already used"
	assert_eq 15 "$(ctl_code node show again)"
	rm -rf "$JD"
}

test_join_not_asked_again_once_expired() {
	JD=$(mktemp -d)
	t0=$(date +%s)
	jt=$(ctl_json '["secret"]' token create --kind join --ttl 6s)
	join_as late "$JD/a" "$jt"
	rm "$JD/a/node.crt"
	wait_s=$((t0 + 7 - $(date +%s)))
	[ "$wait_s" -le 0 ] || sleep "$wait_s"
	join_refused late "$JD/a" "$jt" "already used"
	ctl node remove late
	rm -rf "$JD"
}

test_certificates_decide_identity() {
	# node1's agent presents node1's certificate; a session is that node,
	# whatever name its agent was started with.
	st=$HSP_SIM_DIR/nodes/node1/agent
	openssl x509 -in "$st/node.crt" -noout -subject | grep -q 'CN *= *node1'
	# a certificate from another CA does not get through the handshake
	d=$(mktemp -d)
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$d/k" \
		-out "$d/c" -subj /CN=node1 -days 1 2>/dev/null
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$d/k2" \
		-out "$d/csr" -subj /CN=node1 2>/dev/null
	jt=$(ctl_json '["secret"]' token create --kind join)
	rc=0
	in_ctl_ns node "$REPO/test/interop/session.js" "$d/c" "$d/k" "$jt" "$d/csr" >"$d/out" 2>&1 || rc=$?
	cat "$d/out"
	[ "$rc" -eq 0 ]
	rm -rf "$d"
}

test_tenant_events_are_its_own() {
	ta=$(tenant_token epsilon)
	HSP_TOKEN=$ta hspctl -o json events >/tmp/ct-tev.$$ 2>/dev/null &
	w=$!
	sleep 0.3
	ctl ve create adminve --template busybox --no-start --wait
	HSP_TOKEN=$ta ctl ve create mine --template busybox --no-start --wait
	sleep 0.3
	kill $w
	ves=$(python3 -c 'import json,sys; print(" ".join(sorted({json.loads(l)["ve"] for l in open(sys.argv[1])})))' /tmp/ct-tev.$$)
	assert_eq mine "$ves"
	# node events are for admins
	assert_eq 17 "$(HSP_TOKEN=$ta ctl_code events --node node1)"
	rm -f /tmp/ct-tev.$$
	ctl ve destroy adminve --wait
	ctl ve destroy mine --wait
}
