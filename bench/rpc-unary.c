/* Sequential unary latency through hsp-rpc over loopback (a server loop
 * on one thread, blocking hsp_rpc_unary calls from another), and the
 * latency of hsp_rpc_loop_post from another thread.  Not part of
 * the default build; from the repository root, after building build-rpc:
 *
 *   cc -O2 -Isrc/rpc -Isrc/runtime -Ibuild-rpc/proto bench/rpc-unary.c \
 *      src/rpc/[a-z]*.c src/runtime/error.c src/runtime/utils.c \
 *      build-rpc/proto/hsp/v1/hsp.pb-c.c \
 *      $(pkg-config --cflags --libs grpc gpr libprotobuf-c) -lpthread \
 *      -o /tmp/rpc-unary && /tmp/rpc-unary [calls]
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "hsp/v1/hsp.pb-c.h"
#include "rpc.h"
#include "utils.h"

static void echo(hsp_rpc_call_t *call, const ProtobufCMessage *req, void *ud)
{
	(void)ud;
	hsp_rpc_call_send(call, req);
}

static const struct hsp_rpc_method methods[] = {
    {"/b.B/Echo", HSP_RPC_UNARY, &hsp__v1__ve_ref__descriptor, &hsp__v1__ve_ref__descriptor, echo,
     NULL, NULL, 0},
};

static void *run(void *loop)
{
	hsp_rpc_loop_run(loop);
	return NULL;
}

static int cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

static void report(const char *what, uint64_t *lat, int n)
{
	qsort(lat, n, sizeof(*lat), cmp);
	printf("%s x%d: p50 %.1f us, p90 %.1f us, p99 %.1f us\n", what, n, lat[n / 2] / 1e3,
	       lat[n * 9 / 10] / 1e3, lat[n * 99 / 100] / 1e3);
}

static void posted(void *arg)
{
	atomic_store((_Atomic uint64_t *)arg, hsp_now_ns());
}

/* The loop is idle in grpc_completion_queue_next: each post wakes it. */
static void bench_post(hsp_rpc_loop_t *loop, uint64_t *lat, int n)
{
	static _Atomic uint64_t ran;
	for (int i = 0; i < n; i++) {
		atomic_store(&ran, 0);
		uint64_t t0 = hsp_now_ns();
		hsp_rpc_loop_post(loop, posted, &ran);
		while (atomic_load(&ran) == 0)
			sched_yield();
		lat[i] = atomic_load(&ran) - t0;
		usleep(100);
	}
	report("post", lat, n);
}

static int die(hsp_error_t err)
{
	fprintf(stderr, "rpc-unary: %s\n", err && err->msg ? err->msg : "failed");
	return 1;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 2000;
	hsp_error_t err = NULL;
	hsp_rpc_loop_t *loop;
	hsp_rpc_server_t *srv;
	hsp_rpc_channel_t *ch;
	if (n <= 0 || hsp_rpc_loop_new(&loop, &err) < 0 ||
	    hsp_rpc_server_new(loop, methods, 1, NULL, NULL, &srv, &err) < 0)
		return die(err);
	int port = hsp_rpc_server_listen(srv, "127.0.0.1:0", NULL, &err);
	if (port < 0 || hsp_rpc_server_start(srv, &err) < 0)
		return die(err);
	char target[64];
	snprintf(target, sizeof(target), "127.0.0.1:%d", port);
	if (hsp_rpc_channel_new(target, NULL, NULL, &ch, &err) < 0)
		return die(err);
	pthread_t th;
	pthread_create(&th, NULL, run, loop);

	uint64_t *lat = calloc(n, sizeof(*lat));
	Hsp__V1__VeRef req = HSP__V1__VE_REF__INIT;
	req.name = "bench";
	for (int i = -100; i < n; i++) { /* 100 warm-up calls */
		ProtobufCMessage *resp = NULL;
		struct hsp_rpc_status st;
		uint64_t t0 = hsp_now_ns();
		if (hsp_rpc_unary(ch, "/b.B/Echo", &req.base, &hsp__v1__ve_ref__descriptor, NULL, 0,
				  0, &resp, &st, &err) < 0 ||
		    st.code != GRPC_STATUS_OK)
			return die(err);
		if (i >= 0)
			lat[i] = hsp_now_ns() - t0;
		protobuf_c_message_free_unpacked(resp, NULL);
		hsp_rpc_status_clear(&st);
	}
	report("unary", lat, n);
	bench_post(loop, lat, n);

	free(lat);
	hsp_rpc_channel_free(ch);
	hsp_rpc_loop_stop(loop);
	pthread_join(th, NULL);
	hsp_rpc_loop_free(loop);
	return 0;
}
