# An independent client (grpc-js, only proto/) drives the cluster.
NODES=1

test_grpc_js_client() {
	in_ctl_ns node "$REPO/test/interop/client.js"
}
