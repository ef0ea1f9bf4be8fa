/* Sequential unary latency of the public API from a C client (hsp-rpc):
 * N calls of Cluster.Info with a bearer token over TLS, after a warm-up;
 * prints p50 and p99 in microseconds.  bench/control-plane.sh runs it
 * side by side with the grpc-js client and server doing the same call.
 *
 *   hsp-bench-api --controller HOST:PORT --ca FILE --token T [--calls N] */
#define _GNU_SOURCE
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hsp/v1/hsp.pb-c.h"
#include "rpc.h"
#include "utils.h"

static int cmp(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

static int64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {{"controller", 1, 0, 'c'},
					   {"ca", 1, 0, 'a'},
					   {"token", 1, 0, 't'},
					   {"calls", 1, 0, 'n'},
					   {0, 0, 0, 0}};
	const char *target = NULL, *ca_file = NULL, *token = NULL;
	int c, n = 5000;
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'c':
			target = optarg;
			break;
		case 'a':
			ca_file = optarg;
			break;
		case 't':
			token = optarg;
			break;
		case 'n':
			n = atoi(optarg);
			break;
		default:
			return 2;
		}
	}
	hsp_error_t err = NULL;
	cleanup_free char *ca = NULL;
	if (!target || !ca_file || !token || n < 10 ||
	    hsp_read_file(ca_file, &ca, NULL, &err) < 0) {
		fprintf(stderr, "usage: see the header of bench/api-latency.c\n");
		return 2;
	}
	struct hsp_rpc_creds cr = {HSP_RPC_TLS, ca, NULL, NULL, NULL};
	hsp_rpc_channel_t *ch;
	if (hsp_rpc_channel_new(target, &cr, NULL, &ch, &err) < 0) {
		fprintf(stderr, "%s\n", err->msg);
		return 1;
	}
	char bearer[256];
	snprintf(bearer, sizeof(bearer), "Bearer %s", token);
	struct hsp_rpc_md md = {"authorization", bearer};
	int64_t *lat = calloc((size_t)n, sizeof(*lat));
	int bad = 0;
	for (int i = -n / 10; i < n; i++) {
		Hsp__V1__Empty req = HSP__V1__EMPTY__INIT;
		ProtobufCMessage *resp = NULL;
		struct hsp_rpc_status st = {0};
		int64_t t0 = now_us();
		int r = hsp_rpc_unary(ch, "/hsp.v1.Cluster/Info", &req.base,
				      &hsp__v1__cluster_info__descriptor, &md, 1, 5000, &resp, &st,
				      &err);
		int64_t dt = now_us() - t0;
		if (r < 0 || st.code != GRPC_STATUS_OK)
			bad++;
		if (i >= 0)
			lat[i] = dt;
		if (resp)
			protobuf_c_message_free_unpacked(resp, NULL);
		hsp_rpc_status_clear(&st);
		hsp_error_release(&err);
	}
	qsort(lat, (size_t)n, sizeof(*lat), cmp);
	printf("c p50_us %ld p99_us %ld calls %d failed %d\n", (long)lat[n / 2],
	       (long)lat[n * 99 / 100], n, bad);
	free(lat);
	hsp_rpc_channel_free(ch);
	return bad ? 1 : 0;
}
