# Backups through the public API: made of a running VE, kept by the node
# that made it (local storage here), outliving the VE, restored as new VEs
# with their data, seen and touched only by their tenant.
NODES=2

backup_file() { in_node "$1" test -f "$HSP_SIM_DIR/nodes/$1/root/backups/$2.tar.zst"; }

test_backup_outlives_its_ve_and_restores_as_new_ves() {
	ctl ve create bk --template busybox --memory 96M --network --wait
	ctl ve exec bk -- sh -c 'echo payload > /data; chown 7:8 /data; chmod 4750 /data;
		dd if=/dev/urandom of=/big bs=1M count=2 2>/dev/null; md5sum /big > /big.sum'
	local node
	node=$(ctl_json '["node"]' ve show bk)
	ctl backup create bk --id bk-one --wait
	assert_eq BACKUP_STATE_READY "$(ctl_json '["state"]' backup show bk-one)"
	assert_eq "$node" "$(ctl_json '["node"]' backup show bk-one)"
	assert_eq bk "$(ctl_json '["ve"]' backup show bk-one)"
	assert_eq True "$(ctl_json '["network"]' backup show bk-one)"
	[ "$(ctl_json '["sizeBytes"]' backup show bk-one)" -gt 100000 ]
	backup_file "$node" bk-one
	ctl backup list | grep -q '^bk-one  *bk  *ready '
	# the VE ran on through it, and its operation slot is free again
	assert_eq VE_STATE_RUNNING "$(ve_state bk)"

	ctl ve destroy bk --wait
	assert_eq 1 "$(ctl_json '["backups"].__len__()' backup list --ve bk)"
	ctl backup restore bk-one --start --wait
	assert_eq VE_STATE_RUNNING "$(ve_state bk)"
	assert_eq "$node" "$(ctl_json '["node"]' ve show bk)"
	assert_eq 100663296 "$(ctl_json '["limits"]["memoryBytes"]' ve show bk)"
	assert_eq payload "$(ctl ve exec bk -- cat /data)"
	assert_eq "7:8 4750" "$(ctl ve exec bk -- stat -c '%u:%g %a' /data)"
	ctl ve exec bk -- md5sum -c /big.sum >/dev/null
	[ -n "$(ctl_json '["ip"]' ve show bk)" ]
	node_runtime "$node" state bk | grep -q "network: *$(ctl_json '["ip"]' ve show bk | cut -d/ -f1)/"

	# a second VE from the same backup, with an address of its own
	ctl backup restore bk-one --name bk2 --wait
	assert_eq VE_STATE_STOPPED "$(ve_state bk2)"
	[ "$(ctl_json '["ip"]' ve show bk2)" != "$(ctl_json '["ip"]' ve show bk)" ]
	ctl ve start bk2 --wait
	assert_eq payload "$(ctl ve exec bk2 -- cat /data)"
	# a name in use is refused and changes nothing
	assert_eq 16 "$(ctl_code backup restore bk-one --name bk2 --wait)"
	assert_eq VE_STATE_RUNNING "$(ve_state bk2)"

	ctl backup delete bk-one --wait
	assert_eq 15 "$(ctl_code backup show bk-one)"
	! backup_file "$node" bk-one
	ctl ve destroy bk --wait
	ctl ve destroy bk2 --wait
}

test_backup_bad_input_changes_nothing() {
	ctl ve create bb --template busybox --no-start --wait
	local node other
	node=$(ctl_json '["node"]' ve show bb)
	other=node1
	[ "$node" != node1 ] || other=node2
	assert_eq 13 "$(ctl_code backup create bb --id Bad_Id)"
	assert_eq 15 "$(ctl_code backup create nosuch)"
	ctl backup create bb --id bb-one --wait
	assert_eq 16 "$(ctl_code backup create bb --id bb-one)"
	assert_eq 15 "$(ctl_code backup restore nosuch)"
	assert_eq 13 "$(ctl_code backup restore bb-one --name Bad)"
	assert_eq 16 "$(ctl_code backup restore bb-one)"
	# kept in one node's own storage: another node cannot restore it
	assert_eq 19 "$(ctl_code backup restore bb-one --name bb2 --node "$other")"
	assert_eq 15 "$(ctl_code ve show bb2)"
	# a default id names the VE and the time
	ctl backup create bb --wait
	local ids
	ids=$(ctl -o json backup list --ve bb | python3 -c 'import json,sys; print(" ".join(b["id"] for b in json.load(sys.stdin)["backups"]))')
	assert_eq 2 "$(echo "$ids" | wc -w)"
	echo "$ids" | tr ' ' '\n' | grep -Eq '^bb-[0-9]{8}-[0-9]{6}$'
	for id in $ids; do
		ctl backup delete "$id" --wait
	done
	assert_eq 0 "$(ctl_json '["backups"].__len__()' backup list)"
	ctl ve destroy bb --wait
}

test_backups_belong_to_their_tenant() {
	local ta tb op
	ta=$(tenant_token alpha)
	tb=$(tenant_token beta)
	HSP_TOKEN=$ta ctl ve create a1 --template busybox --wait
	HSP_TOKEN=$ta ctl ve exec a1 -- sh -c 'echo alpha-data > /mine'
	HSP_TOKEN=$ta ctl backup create a1 --id a1-b --wait
	assert_eq alpha "$(HSP_TOKEN=$ta ctl_json '["tenant"]' backup show a1-b)"
	# beta: the backup does not exist for it
	assert_eq 0 "$(HSP_TOKEN=$tb ctl_json '["backups"].__len__()' backup list)"
	assert_eq 15 "$(HSP_TOKEN=$tb ctl_code backup show a1-b)"
	assert_eq 15 "$(HSP_TOKEN=$tb ctl_code backup restore a1-b --name stolen)"
	assert_eq 15 "$(HSP_TOKEN=$tb ctl_code backup delete a1-b)"
	assert_eq 15 "$(HSP_TOKEN=$tb ctl_code backup create a1)"
	assert_eq 17 "$(HSP_TOKEN=$tb ctl_code backup list --tenant alpha)"
	assert_eq 17 "$(HSP_TOKEN=$ta ctl_code backup restore a1-b --name a2 --node node1)"
	assert_eq 15 "$(ctl_code ve show stolen)"

	# alpha's VE goes, its name passes to beta; alpha's backup stays alpha's
	HSP_TOKEN=$ta ctl ve destroy a1 --wait
	HSP_TOKEN=$tb ctl ve create a1 --template busybox --no-start --wait
	HSP_TOKEN=$ta ctl backup restore a1-b --name a1r --start --wait
	assert_eq alpha "$(HSP_TOKEN=$ta ctl_json '["tenant"]' ve show a1r)"
	assert_eq alpha-data "$(HSP_TOKEN=$ta ctl ve exec a1r -- cat /mine)"
	op=$(HSP_TOKEN=$ta ctl_json '["id"]' backup delete a1-b)
	assert_eq 15 "$(HSP_TOKEN=$tb ctl_code operation show "$op")"
	assert_eq OPERATION_STATE_DONE "$(HSP_TOKEN=$ta ctl_json '["state"]' operation wait "$op")"
	assert_eq 0 "$(HSP_TOKEN=$ta ctl_json '["backups"].__len__()' backup list)"
	ctl ve destroy a1r --wait
	ctl ve destroy a1 --wait
}
