# Every field of the requests tried with invalid values: a precise status
# (hspctl exit code 10 + gRPC code), one line of explanation, the controller
# keeps serving and nothing changes.
NODES=1

snapshot_state() { ctl -o json ve list; ctl -o json node list | grep -v -e lastSeen -e load1 -e memoryUsedBytes; }

test_invalid_fields() {
	ctl ve create keep --template busybox --wait
	before=$(snapshot_state | grep -v -e cpuNs -e '"memoryBytes"' -e pids)
	local long
	long=$(printf 'a%.0s' $(seq 64))
	# INVALID_ARGUMENT (13): names, templates, hostnames, keys, sizes, TTLs
	for args in "ve create Bad --template busybox" \
		"ve create -x --template busybox" \
		"ve create $long --template busybox" \
		"ve create ok1 --template ../etc" \
		"ve create ok1 --template busybox --hostname -bad-" \
		"ve create ok1 --template busybox --memory 1K" \
		"ve create ok1 --template busybox --disk 1M" \
		"ve create ok1 --template busybox --pids 3" \
		"ve create ok1 --template busybox --cpu-weight 20000" \
		"ve create ok1 --template busybox --swap 64M" \
		"ve create ok1 --template busybox --ttl 1000d" \
		"ve create ok1 --template busybox --tenant BAD" \
		"ve show UPPER" \
		"ve stop keep --timeout 99999" \
		"ve set keep --disk 64M" \
		"ve exec keep --" \
		"ve snapshot create keep Bad/Snap" \
		"backup create keep --id -x" \
		"backup create keep --id $long" \
		"backup show Bad" \
		"backup restore Bad" \
		"backup list --ve UPPER" \
		"token create --kind tenant --tenant Bad" \
		"token create --kind admin --tenant x" \
		"node show Bad_Node"; do
		rc=$(ctl_code $args)
		[ "$rc" = 13 ] || [ "$rc" = 2 ] || fail "hspctl $args: exit $rc, want 13 (or 2 when hspctl refuses it first)"
		msg=$(hspctl $args 2>&1 >/dev/null | head -2)
		[ "$(echo "$msg" | wc -l)" -eq 1 ] || fail "hspctl $args: not one line: $msg"
	done
	# a bad ssh key file
	echo "ssh-rsa not base64 !!" >/tmp/ct-key.$$
	rc=$(ctl_code ve create ok1 --template busybox --ssh-key /tmp/ct-key.$$)
	[ "$rc" = 13 ] || [ "$rc" = 2 ] || fail "bad key: exit $rc"
	printf 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA==\ncommand="x" ssh-rsa AAAA\n' >/tmp/ct-key.$$
	rc=$(ctl_code ve create ok1 --template busybox --ssh-key /tmp/ct-key.$$)
	[ "$rc" = 13 ] || [ "$rc" = 2 ] || fail "key with options: exit $rc"
	rm -f /tmp/ct-key.$$
	# ALREADY_EXISTS (16), NOT_FOUND (15), FAILED_PRECONDITION (19)
	assert_eq 16 "$(ctl_code ve create keep --template busybox)"
	assert_eq 15 "$(ctl_code ve start nosuch)"
	assert_eq 19 "$(ctl_code ve start keep)"
	assert_eq 15 "$(ctl_code token revoke 0000000000000000)"
	assert_eq 15 "$(ctl_code operation show op-nosuch)"
	assert_eq 19 "$(ctl_code node remove node1)"
	ctl ve stop keep --wait
	assert_eq 19 "$(ctl_code ve exec keep -- true)"
	assert_eq 19 "$(ctl_code ve stop keep)"
	ctl ve start keep --wait
	# nothing changed, and it still serves
	after=$(snapshot_state | grep -v -e cpuNs -e '"memoryBytes"' -e pids)
	[ "$before" = "$after" ] || { diff <(echo "$before") <(echo "$after"); fail "state changed"; }
	assert_eq alive "$(ctl ve exec keep -- echo alive)"
	ctl ve destroy keep --wait
}

test_unknown_method_and_oversize() {
	# through grpc-js: an unknown method is UNIMPLEMENTED at once
	in_ctl_ns node -e '
const grpc = require(process.argv[1] + "/node_modules/@grpc/grpc-js");
const fs = require("fs");
const c = new grpc.Client(process.env.HSP_CONTROLLER, grpc.credentials.createSsl(fs.readFileSync(process.env.HSP_CA)));
const t0 = Date.now();
c.makeUnaryRequest("/hsp.v1.Ves/Nope", (x) => x, (x) => x, Buffer.alloc(0), new grpc.Metadata(), {deadline: Date.now() + 10000}, (err) => {
  if (!err || err.code !== grpc.status.UNIMPLEMENTED || Date.now() - t0 > 2000) { console.error("not ok", err && err.code, Date.now() - t0); process.exit(1); }
  console.log("ok - UNIMPLEMENTED in", Date.now() - t0, "ms"); process.exit(0);
});' "$REPO/test/interop"
	# a 4 MiB+ exec stdin: hspctl refuses before sending
	head -c 5M /dev/zero >/tmp/ct-big.$$
	ctl ve create big --template busybox --wait
	rc=0
	ctl ve exec big -- cat </tmp/ct-big.$$ >/dev/null 2>&1 || rc=$?
	[ "$rc" -ne 0 ]
	rm -f /tmp/ct-big.$$
	assert_eq fine "$(ctl ve exec big -- echo fine)"
	ctl ve destroy big --wait
}
