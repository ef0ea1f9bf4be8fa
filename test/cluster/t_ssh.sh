# CI provisioning: `ve create --network --ssh-key --wait` returns once the
# VE's sshd accepts, so the very next command can log in.
NODES=1
TEMPLATES="busybox debian-12"

test_create_wait_returns_when_sshd_accepts() {
	d=$(mktemp -d)
	ssh-keygen -q -t ed25519 -N '' -f "$d/id"
	ctl ve create ci1 --template debian-12 --network --ssh-key "$d/id.pub" --memory 256M --wait
	ip=$(ctl_json '["ip"]' ve show ci1)
	ip=${ip%/*}
	[ -n "$ip" ]
	# no retry loop: it must accept now
	out=$(in_node node1 ssh -i "$d/id" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
		-o BatchMode=yes -o ConnectTimeout=5 "root@$ip" 'hostname; id -u')
	assert_eq "ci1 0" "$(echo $out)"
	# the address came from the cluster's range and is unique
	ctl ve create ci2 --template busybox --network --no-start --wait
	ip2=$(ctl_json '["ip"]' ve show ci2)
	[ "${ip2%/*}" != "$ip" ]
	ctl ve destroy ci1 --wait
	ctl ve destroy ci2 --wait
	rm -rf "$d"
}
