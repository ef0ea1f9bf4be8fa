/* hsp-rpc over real sockets: a server loop on a thread of its own, clients
 * blocking (unary) or on a loop of the test's thread (streams).  TLS
 * certificates are made with the openssl command line. */
#define _GNU_SOURCE
#include <check.h>
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hsp/v1/hsp.pb-c.h"
#include "rpc.h"
#include "utils.h"

extern char **environ;

#define P_ECHO "/t.T/Echo"
#define P_PEER "/t.T/Peer"
#define P_SLOW "/t.T/Slow"
#define P_STREAM "/t.T/Stream"
#define P_BIDI "/t.T/Bidi"
#define P_FLOOD "/t.T/Flood"

/* ------------------------------------------------------------ the server */

struct srv_state {
	hsp_rpc_loop_t *loop;
	atomic_int arrived, done, done_cancelled, messages;
	atomic_llong last_done_ms;
};

static void later(void *arg)
{
	hsp_rpc_call_t *call = arg;
	Hsp__V1__VeRef resp = HSP__V1__VE_REF__INIT;
	resp.name = hsp_rpc_call_get_data(call);
	hsp_rpc_call_send(call, &resp.base);
	hsp_rpc_call_unref(call);
}

static void echo(hsp_rpc_call_t *call, const ProtobufCMessage *req, void *ud)
{
	struct srv_state *st = ud;
	const Hsp__V1__VeRef *r = (const Hsp__V1__VeRef *)req;
	const char *md = hsp_rpc_call_metadata(call, "x-echo");
	atomic_fetch_add(&st->arrived, 1);
	if (strncmp(r->name, "later:", 6) == 0) {
		hsp_rpc_call_set_data(call, strdup(r->name), free);
		hsp_rpc_timer_add(st->loop, atoi(r->name + 6), later, hsp_rpc_call_ref(call));
		return;
	}
	if (strcmp(r->name, "never") == 0)
		return;
	Hsp__V1__VeRef resp = HSP__V1__VE_REF__INIT;
	resp.name = md ? (char *)md : r->name;
	ck_assert_int_eq(hsp_rpc_call_send(call, &resp.base), 0);
	/* Answered: further sends are refused, finish is a no-op. */
	ck_assert_int_eq(hsp_rpc_call_send(call, &resp.base), -EINVAL);
	ck_assert_int_eq(hsp_rpc_call_finish(call, GRPC_STATUS_INTERNAL, "late"), 0);
}

static void peer(hsp_rpc_call_t *call, const ProtobufCMessage *req, void *ud)
{
	(void)req;
	(void)ud;
	const char *cn = hsp_rpc_call_peer_cn(call);
	cleanup_free char *s =
	    hsp_strdup_printf("cn=%s tr=%s", cn ? cn : "-", hsp_rpc_call_transport(call));
	Hsp__V1__VeRef resp = HSP__V1__VE_REF__INIT;
	resp.name = s;
	hsp_rpc_call_send(call, &resp.base);
}

static void ignore(hsp_rpc_call_t *call, const ProtobufCMessage *req, void *ud)
{
	(void)call;
	(void)req;
	atomic_fetch_add(&((struct srv_state *)ud)->arrived, 1);
}

static void stream(hsp_rpc_call_t *call, const ProtobufCMessage *req, void *ud)
{
	(void)ud;
	int n = atoi(((const Hsp__V1__VeRef *)req)->name);
	uint8_t data[100];
	memset(data, 'x', sizeof(data));
	for (int i = 0; i < n; i++) {
		Hsp__V1__ExecOutput o = HSP__V1__EXEC_OUTPUT__INIT;
		o.exit_code = i;
		o.data.data = data;
		o.data.len = sizeof(data);
		ck_assert_int_eq(hsp_rpc_call_send(call, &o.base), 0);
	}
	hsp_rpc_call_finish(call, GRPC_STATUS_OK, NULL);
}

/* Queues 64 messages of 64 KiB at once, then gives up on the client the
 * way the controller does with a slow exec caller. */
static void flood(hsp_rpc_call_t *call, const ProtobufCMessage *req, void *ud)
{
	(void)req;
	(void)ud;
	static uint8_t data[64 << 10];
	for (int i = 0; i < 64; i++) {
		Hsp__V1__ExecOutput o = HSP__V1__EXEC_OUTPUT__INIT;
		o.data.data = data;
		o.data.len = sizeof(data);
		ck_assert_int_eq(hsp_rpc_call_send(call, &o.base), 0);
	}
	/* One is with grpc; the rest waits, counted. */
	ck_assert_uint_ge(hsp_rpc_call_queued(call), 62u * sizeof(data));
	hsp_rpc_call_abort(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "too slow");
	ck_assert_uint_eq(hsp_rpc_call_queued(call), 0);
}

static void bidi(hsp_rpc_call_t *call, const ProtobufCMessage *req, void *ud)
{
	ck_assert_ptr_null(req);
	ck_assert_str_eq(hsp_rpc_call_method(call), P_BIDI);
	atomic_fetch_add(&((struct srv_state *)ud)->arrived, 1);
}

static void bidi_msg(hsp_rpc_call_t *call, const ProtobufCMessage *msg, void *ud)
{
	const Hsp__V1__ExecOutput *o = (const Hsp__V1__ExecOutput *)msg;
	atomic_fetch_add(&((struct srv_state *)ud)->messages, 1);
	if (o->exit_code < 0)
		hsp_rpc_call_finish(call, GRPC_STATUS_OK, NULL);
	else
		hsp_rpc_call_send(call, msg);
}

static void done(hsp_rpc_call_t *call, bool cancelled, void *ud)
{
	struct srv_state *st = ud;
	ck_assert(hsp_rpc_call_is_over(call));
	ck_assert_int_eq(hsp_rpc_call_send(call, NULL), -ECANCELED);
	atomic_store(&st->last_done_ms, hsp_rpc_now_ms());
	atomic_fetch_add(&st->done, 1);
	if (cancelled)
		atomic_fetch_add(&st->done_cancelled, 1);
}

static const struct hsp_rpc_method methods[] = {
    {P_ECHO, HSP_RPC_UNARY, &hsp__v1__ve_ref__descriptor, &hsp__v1__ve_ref__descriptor, echo, NULL,
     done, 0},
    {P_PEER, HSP_RPC_UNARY, &hsp__v1__ve_ref__descriptor, &hsp__v1__ve_ref__descriptor, peer, NULL,
     NULL, 0},
    {P_SLOW, HSP_RPC_UNARY, &hsp__v1__ve_ref__descriptor, &hsp__v1__ve_ref__descriptor, ignore,
     NULL, done, 300},
    {P_STREAM, HSP_RPC_SERVER_STREAM, &hsp__v1__ve_ref__descriptor,
     &hsp__v1__exec_output__descriptor, stream, NULL, done, 0},
    {P_BIDI, HSP_RPC_BIDI_STREAM, &hsp__v1__exec_output__descriptor,
     &hsp__v1__exec_output__descriptor, bidi, bidi_msg, done, 0},
    {P_FLOOD, HSP_RPC_SERVER_STREAM, &hsp__v1__ve_ref__descriptor,
     &hsp__v1__exec_output__descriptor, flood, NULL, done, 0},
};

struct fx {
	hsp_rpc_loop_t *loop;
	hsp_rpc_server_t *srv;
	pthread_t th;
	int port;
	char target[PATH_MAX];
	struct srv_state st;
};

static void *fx_run(void *arg)
{
	hsp_rpc_loop_run(((struct fx *)arg)->loop);
	return NULL;
}

static void fx_start(struct fx *f, const char *addr, const struct hsp_rpc_creds *creds,
		     const struct hsp_rpc_server_opts *opts)
{
	hsp_error_t err = NULL;
	memset(f, 0, sizeof(*f));
	ck_assert_int_eq(hsp_rpc_loop_new(&f->loop, &err), 0);
	f->st.loop = f->loop;
	ck_assert_int_eq(hsp_rpc_server_new(f->loop, methods, sizeof(methods) / sizeof(methods[0]),
					    opts, &f->st, &f->srv, &err),
			 0);
	f->port = hsp_rpc_server_listen(f->srv, addr ? addr : "127.0.0.1:0", creds, &err);
	ck_assert_msg(f->port > 0, "listen: %s", err ? err->msg : "");
	if (addr)
		snprintf(f->target, sizeof(f->target), "%s", addr);
	else
		snprintf(f->target, sizeof(f->target), "127.0.0.1:%d", f->port);
	ck_assert_int_eq(hsp_rpc_server_start(f->srv, &err), 0);
	ck_assert_int_eq(pthread_create(&f->th, NULL, fx_run, f), 0);
}

static void fx_stop(struct fx *f)
{
	hsp_rpc_loop_stop(f->loop);
	pthread_join(f->th, NULL);
	hsp_rpc_loop_free(f->loop);
}

static hsp_rpc_channel_t *channel(const char *target, const struct hsp_rpc_creds *creds,
				  const struct hsp_rpc_channel_opts *opts)
{
	hsp_error_t err = NULL;
	hsp_rpc_channel_t *ch = NULL;
	ck_assert_int_eq(hsp_rpc_channel_new(target, creds, opts, &ch, &err), 0);
	return ch;
}

/* Unary Echo/Peer: the answer's name (malloc'd) or NULL; st filled. */
static char *call_name(hsp_rpc_channel_t *ch, const char *path, const char *name,
		       unsigned deadline_ms, struct hsp_rpc_status *st)
{
	hsp_error_t err = NULL;
	ProtobufCMessage *resp = NULL;
	Hsp__V1__VeRef req = HSP__V1__VE_REF__INIT;
	req.name = (char *)name;
	ck_assert_int_eq(hsp_rpc_unary(ch, path, &req.base, &hsp__v1__ve_ref__descriptor, NULL, 0,
				       deadline_ms, &resp, st, &err),
			 0);
	if (resp == NULL)
		return NULL;
	char *s = strdup(((Hsp__V1__VeRef *)resp)->name);
	protobuf_c_message_free_unpacked(resp, NULL);
	return s;
}

static bool wait_int(atomic_int *v, int want, unsigned ms)
{
	int64_t end = hsp_rpc_now_ms() + ms;
	while (atomic_load(v) < want && hsp_rpc_now_ms() < end)
		usleep(2000);
	return atomic_load(v) >= want;
}

/* Runs a client loop until pred holds or ms pass. */
struct until {
	hsp_rpc_loop_t *loop;
	bool (*pred)(void *arg);
	void *arg;
	int64_t end;
};

static void until_tick(void *arg)
{
	struct until *u = arg;
	if (u->pred(u->arg) || hsp_rpc_now_ms() >= u->end)
		hsp_rpc_loop_stop(u->loop);
	else
		hsp_rpc_timer_add(u->loop, 2, until_tick, u);
}

static bool run_until(hsp_rpc_loop_t *loop, bool (*pred)(void *), void *arg, unsigned ms)
{
	struct until u = {loop, pred, arg, hsp_rpc_now_ms() + ms};
	hsp_rpc_timer_add(loop, 0, until_tick, &u);
	hsp_rpc_loop_run(loop);
	return pred(arg);
}

/* ------------------------------------------------------------ unary */

START_TEST(unary_roundtrip)
{
	struct fx f;
	fx_start(&f, NULL, NULL, NULL);
	hsp_rpc_channel_t *ch = channel(f.target, NULL, NULL);
	struct hsp_rpc_status st;
	for (int i = 0; i < 50; i++) {
		cleanup_free char *want = hsp_strdup_printf("hello-%d", i);
		cleanup_free char *got = call_name(ch, P_ECHO, want, 0, &st);
		ck_assert_int_eq(st.code, GRPC_STATUS_OK);
		ck_assert_str_eq(got, want);
		hsp_rpc_status_clear(&st);
	}
	/* Metadata reaches the handler. */
	hsp_error_t err = NULL;
	ProtobufCMessage *resp = NULL;
	Hsp__V1__VeRef req = HSP__V1__VE_REF__INIT;
	req.name = "x";
	struct hsp_rpc_md md[] = {{"x-echo", "from-metadata"}};
	ck_assert_int_eq(hsp_rpc_unary(ch, P_ECHO, &req.base, &hsp__v1__ve_ref__descriptor, md, 1,
				       0, &resp, &st, &err),
			 0);
	ck_assert_int_eq(st.code, GRPC_STATUS_OK);
	ck_assert_str_eq(((Hsp__V1__VeRef *)resp)->name, "from-metadata");
	protobuf_c_message_free_unpacked(resp, NULL);
	hsp_rpc_channel_free(ch);
	fx_stop(&f);
	ck_assert_int_eq(atomic_load(&f.st.done), 51);
	ck_assert_int_eq(atomic_load(&f.st.done_cancelled), 0);
}
END_TEST

/* Many threads share one channel: each call needs a pluck queue of its
 * own, taken from and given back to the channel's idle queues (more
 * threads than the channel keeps idle, so some are destroyed). */
struct unary_thread {
	hsp_rpc_channel_t *ch;
	int id;
	atomic_int *bad;
};

static void *unary_thread_run(void *arg)
{
	struct unary_thread *t = arg;
	for (int i = 0; i < 30; i++) {
		hsp_error_t err = NULL;
		ProtobufCMessage *resp = NULL;
		struct hsp_rpc_status st;
		char want[32];
		snprintf(want, sizeof(want), "t%d-%d", t->id, i);
		Hsp__V1__VeRef req = HSP__V1__VE_REF__INIT;
		req.name = want;
		int r = hsp_rpc_unary(t->ch, P_ECHO, &req.base, &hsp__v1__ve_ref__descriptor, NULL,
				      0, 0, &resp, &st, &err);
		if (r < 0 || st.code != GRPC_STATUS_OK || resp == NULL ||
		    strcmp(((Hsp__V1__VeRef *)resp)->name, want) != 0)
			atomic_fetch_add(t->bad, 1);
		if (resp)
			protobuf_c_message_free_unpacked(resp, NULL);
		hsp_rpc_status_clear(&st);
		hsp_error_release(&err);
	}
	return NULL;
}

START_TEST(unary_from_threads)
{
	struct fx f;
	fx_start(&f, NULL, NULL, NULL);
	hsp_rpc_channel_t *ch = channel(f.target, NULL, NULL);
	/* A queue whose call ran out of time is reused like any other. */
	struct hsp_rpc_status st;
	ck_assert_ptr_null(call_name(ch, P_ECHO, "never", 50, &st));
	ck_assert_int_eq(st.code, GRPC_STATUS_DEADLINE_EXCEEDED);
	hsp_rpc_status_clear(&st);
	atomic_int bad = 0;
	pthread_t th[12];
	struct unary_thread args[12];
	for (int i = 0; i < 12; i++) {
		args[i] = (struct unary_thread){ch, i, &bad};
		ck_assert_int_eq(pthread_create(&th[i], NULL, unary_thread_run, &args[i]), 0);
	}
	for (int i = 0; i < 12; i++)
		pthread_join(th[i], NULL);
	ck_assert_int_eq(atomic_load(&bad), 0);
	hsp_rpc_channel_free(ch);
	fx_stop(&f);
}
END_TEST

START_TEST(unknown_method)
{
	struct fx f;
	fx_start(&f, NULL, NULL, NULL);
	hsp_rpc_channel_t *ch = channel(f.target, NULL, NULL);
	struct hsp_rpc_status st;
	int64_t t0 = hsp_rpc_now_ms();
	char *got = call_name(ch, "/t.T/Nope", "x", 10000, &st);
	int64_t dt = hsp_rpc_now_ms() - t0;
	ck_assert_ptr_null(got);
	ck_assert_int_eq(st.code, GRPC_STATUS_UNIMPLEMENTED);
	ck_assert_ptr_nonnull(strstr(st.message, "/t.T/Nope"));
	ck_assert_int_lt(dt, 1000);
	hsp_rpc_status_clear(&st);
	hsp_rpc_channel_free(ch);
	fx_stop(&f);
}
END_TEST

START_TEST(undecodable_request)
{
	struct fx f;
	fx_start(&f, NULL, NULL, NULL);
	hsp_rpc_channel_t *ch = channel(f.target, NULL, NULL);
	hsp_error_t err = NULL;
	ProtobufCMessage *resp = NULL;
	struct hsp_rpc_status st;
	/* Field 1 as a varint where VeRef has a string. */
	Hsp__V1__ExecOutput bad = HSP__V1__EXEC_OUTPUT__INIT;
	bad.stream = HSP__V1__EXEC_OUTPUT__STREAM__STREAM_STDERR;
	ck_assert_int_eq(hsp_rpc_unary(ch, P_ECHO, &bad.base, &hsp__v1__ve_ref__descriptor, NULL, 0,
				       0, &resp, &st, &err),
			 0);
	ck_assert_ptr_null(resp);
	ck_assert_int_eq(st.code, GRPC_STATUS_INVALID_ARGUMENT);
	hsp_rpc_status_clear(&st);
	hsp_rpc_channel_free(ch);
	fx_stop(&f);
	ck_assert_int_eq(atomic_load(&f.st.arrived), 0); /* the handler never saw it */
	ck_assert_int_eq(atomic_load(&f.st.done), 0);
}
END_TEST

START_TEST(answer_later)
{
	struct fx f;
	fx_start(&f, NULL, NULL, NULL);
	hsp_rpc_channel_t *ch = channel(f.target, NULL, NULL);
	struct hsp_rpc_status st;
	int64_t t0 = hsp_rpc_now_ms();
	cleanup_free char *got = call_name(ch, P_ECHO, "later:200", 0, &st);
	int64_t dt = hsp_rpc_now_ms() - t0;
	ck_assert_int_eq(st.code, GRPC_STATUS_OK);
	ck_assert_str_eq(got, "later:200");
	ck_assert_int_ge(dt, 195);
	ck_assert_int_lt(dt, 2000);
	hsp_rpc_channel_free(ch);
	fx_stop(&f);
	ck_assert_int_eq(atomic_load(&f.st.done), 1);
}
END_TEST

START_TEST(server_max_time)
{
	struct fx f;
	fx_start(&f, NULL, NULL, NULL);
	hsp_rpc_channel_t *ch = channel(f.target, NULL, NULL);
	struct hsp_rpc_status st;
	int64_t t0 = hsp_rpc_now_ms();
	char *got = call_name(ch, P_SLOW, "x", 10000, &st);
	int64_t dt = hsp_rpc_now_ms() - t0;
	ck_assert_ptr_null(got);
	ck_assert_int_eq(st.code, GRPC_STATUS_DEADLINE_EXCEEDED);
	ck_assert_int_ge(dt, 290);
	ck_assert_int_lt(dt, 3000);
	hsp_rpc_status_clear(&st);
	ck_assert(wait_int(&f.st.done_cancelled, 1, 3000));
	hsp_rpc_channel_free(ch);
	fx_stop(&f);
}
END_TEST

START_TEST(client_deadline)
{
	struct fx f;
	fx_start(&f, NULL, NULL, NULL);
	hsp_rpc_channel_t *ch = channel(f.target, NULL, NULL);
	struct hsp_rpc_status st;
	int64_t t0 = hsp_rpc_now_ms();
	char *got = call_name(ch, P_ECHO, "never", 200, &st);
	int64_t dt = hsp_rpc_now_ms() - t0;
	ck_assert_ptr_null(got);
	ck_assert_int_eq(st.code, GRPC_STATUS_DEADLINE_EXCEEDED);
	ck_assert_int_ge(dt, 190);
	ck_assert_int_lt(dt, 3000);
	hsp_rpc_status_clear(&st);
	/* The server's on_done learns of it too. */
	ck_assert(wait_int(&f.st.done_cancelled, 1, 3000));
	hsp_rpc_channel_free(ch);
	fx_stop(&f);
}
END_TEST

START_TEST(oversize_message)
{
	struct fx f;
	struct hsp_rpc_server_opts so = {.max_message = 1024};
	fx_start(&f, NULL, NULL, &so);
	char big[4096];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	struct hsp_rpc_status st;
	/* The request is larger than the server takes. */
	hsp_rpc_channel_t *ch = channel(f.target, NULL, NULL);
	ck_assert_ptr_null(call_name(ch, P_ECHO, big, 5000, &st));
	ck_assert_int_eq(st.code, GRPC_STATUS_RESOURCE_EXHAUSTED);
	hsp_rpc_status_clear(&st);
	/* The response is larger than the client takes. */
	struct hsp_rpc_channel_opts co = {.max_message = 512};
	hsp_rpc_channel_t *small = channel(f.target, NULL, &co);
	big[1000] = 0;
	ck_assert_ptr_null(call_name(small, P_ECHO, big, 5000, &st));
	ck_assert_int_eq(st.code, GRPC_STATUS_RESOURCE_EXHAUSTED);
	hsp_rpc_status_clear(&st);
	hsp_rpc_channel_free(small);
	hsp_rpc_channel_free(ch);
	fx_stop(&f);
}
END_TEST

/* ------------------------------------------------------------ streams */

struct cstream {
	hsp_rpc_stream_t *s;
	int received, next_send, send_upto;
	bool closed, order_ok;
	grpc_status_code code;
};

static void cs_msg(hsp_rpc_stream_t *s, const ProtobufCMessage *msg, void *ud)
{
	struct cstream *c = ud;
	const Hsp__V1__ExecOutput *o = (const Hsp__V1__ExecOutput *)msg;
	if (o->exit_code != c->received)
		c->order_ok = false;
	c->received++;
	if (c->next_send > 0 && c->next_send <= c->send_upto) {
		Hsp__V1__ExecOutput next = HSP__V1__EXEC_OUTPUT__INIT;
		next.exit_code = c->next_send < c->send_upto ? c->next_send : -1;
		c->next_send++;
		ck_assert_int_eq(hsp_rpc_stream_send(s, &next.base), 0);
	}
}

static void cs_close(hsp_rpc_stream_t *s, const struct hsp_rpc_status *st, void *ud)
{
	struct cstream *c = ud;
	ck_assert_ptr_eq(c->s, s);
	ck_assert(!c->closed);
	c->closed = true;
	c->code = st->code;
	c->s = NULL;
}

static const struct hsp_rpc_stream_cbs cs_cbs = {.on_message = cs_msg, .on_close = cs_close};

static bool cs_closed(void *arg)
{
	return ((struct cstream *)arg)->closed;
}

static hsp_rpc_loop_t *client_loop(void)
{
	hsp_error_t err = NULL;
	hsp_rpc_loop_t *loop = NULL;
	ck_assert_int_eq(hsp_rpc_loop_new(&loop, &err), 0);
	return loop;
}

static void open_bidi(hsp_rpc_loop_t *loop, hsp_rpc_channel_t *ch, const ProtobufCMessage *first,
		      struct cstream *c)
{
	hsp_error_t err = NULL;
	ck_assert_int_eq(hsp_rpc_stream_open(loop, ch, P_BIDI, HSP_RPC_BIDI_STREAM, first,
					     &hsp__v1__exec_output__descriptor, NULL, 0, 0, &cs_cbs,
					     c, &c->s, &err),
			 0);
}

START_TEST(server_stream_many)
{
	struct fx f;
	fx_start(&f, NULL, NULL, NULL);
	hsp_rpc_loop_t *loop = client_loop();
	hsp_rpc_channel_t *ch = channel(f.target, NULL, NULL);
	struct cstream c = {.order_ok = true};
	Hsp__V1__VeRef req = HSP__V1__VE_REF__INIT;
	req.name = "5000";
	hsp_error_t err = NULL;
	ck_assert_int_eq(hsp_rpc_stream_open(loop, ch, P_STREAM, HSP_RPC_SERVER_STREAM, &req.base,
					     &hsp__v1__exec_output__descriptor, NULL, 0, 10000,
					     &cs_cbs, &c, &c.s, &err),
			 0);
	ck_assert(run_until(loop, cs_closed, &c, 20000));
	ck_assert_int_eq(c.code, GRPC_STATUS_OK);
	ck_assert_int_eq(c.received, 5000);
	ck_assert(c.order_ok);
	hsp_rpc_loop_free(loop);
	hsp_rpc_channel_free(ch);
	fx_stop(&f);
}
END_TEST

START_TEST(bidi_echo)
{
	struct fx f;
	fx_start(&f, NULL, NULL, NULL);
	hsp_rpc_loop_t *loop = client_loop();
	hsp_rpc_channel_t *ch = channel(f.target, NULL, NULL);
	struct cstream c = {.order_ok = true, .next_send = 1, .send_upto = 200};
	Hsp__V1__ExecOutput first = HSP__V1__EXEC_OUTPUT__INIT;
	open_bidi(loop, ch, &first.base, &c);
	ck_assert(run_until(loop, cs_closed, &c, 20000));
	ck_assert_int_eq(c.code, GRPC_STATUS_OK);
	ck_assert_int_eq(c.received, 200);
	ck_assert(c.order_ok);
	ck_assert_int_eq(atomic_load(&f.st.messages), 201);
	hsp_rpc_loop_free(loop);
	hsp_rpc_channel_free(ch);
	fx_stop(&f);
	ck_assert_int_eq(atomic_load(&f.st.done), 1);
	ck_assert_int_eq(atomic_load(&f.st.done_cancelled), 0);
}
END_TEST

START_TEST(server_abort_drops_the_queue)
{
	struct fx f;
	fx_start(&f, NULL, NULL, NULL);
	hsp_rpc_loop_t *loop = client_loop();
	hsp_rpc_channel_t *ch = channel(f.target, NULL, NULL);
	struct cstream c = {.order_ok = true};
	Hsp__V1__VeRef req = HSP__V1__VE_REF__INIT;
	hsp_error_t err = NULL;
	ck_assert_int_eq(hsp_rpc_stream_open(loop, ch, P_FLOOD, HSP_RPC_SERVER_STREAM, &req.base,
					     &hsp__v1__exec_output__descriptor, NULL, 0, 10000,
					     &cs_cbs, &c, &c.s, &err),
			 0);
	ck_assert(run_until(loop, cs_closed, &c, 10000));
	ck_assert_int_eq(c.code, GRPC_STATUS_RESOURCE_EXHAUSTED);
	ck_assert_int_lt(c.received, 64);
	ck_assert(wait_int(&f.st.done_cancelled, 1, 3000));
	hsp_rpc_loop_free(loop);
	hsp_rpc_channel_free(ch);
	fx_stop(&f);
}
END_TEST

struct sent_count {
	int sent;
	size_t queued_after_each_max;
};

static void count_sent(hsp_rpc_stream_t *s, void *ud)
{
	struct sent_count *n = ud;
	n->sent++;
	size_t q = hsp_rpc_stream_queued(s);
	if (q > n->queued_after_each_max)
		n->queued_after_each_max = q;
}

static void sent_close(hsp_rpc_stream_t *s, const struct hsp_rpc_status *st, void *ud)
{
	(void)s;
	(void)st;
	(void)ud;
}

static bool sent_200(void *arg)
{
	return ((struct sent_count *)arg)->sent >= 200;
}

/* The queue a client stream holds shrinks as messages go, and on_sent
 * says when: what the agent's exec flow control is built on. */
START_TEST(stream_queue_and_on_sent)
{
	struct fx f;
	fx_start(&f, NULL, NULL, NULL);
	hsp_rpc_loop_t *loop = client_loop();
	hsp_rpc_channel_t *ch = channel(f.target, NULL, NULL);
	static const struct hsp_rpc_stream_cbs cbs = {.on_close = sent_close,
						      .on_sent = count_sent};
	struct sent_count n = {0};
	hsp_rpc_stream_t *s = NULL;
	hsp_error_t err = NULL;
	ck_assert_int_eq(hsp_rpc_stream_open(loop, ch, P_BIDI, HSP_RPC_BIDI_STREAM, NULL,
					     &hsp__v1__exec_output__descriptor, NULL, 0, 0, &cbs,
					     &n, &s, &err),
			 0);
	static uint8_t data[1024];
	for (int i = 0; i < 200; i++) {
		Hsp__V1__ExecOutput o = HSP__V1__EXEC_OUTPUT__INIT;
		o.exit_code = i;
		o.data.data = data;
		o.data.len = sizeof(data);
		ck_assert_int_eq(hsp_rpc_stream_send(s, &o.base), 0);
	}
	size_t q0 = hsp_rpc_stream_queued(s);
	ck_assert_uint_ge(q0, 198u * sizeof(data));
	ck_assert(run_until(loop, sent_200, &n, 10000));
	ck_assert_uint_eq(hsp_rpc_stream_queued(s), 0);
	ck_assert_uint_lt(n.queued_after_each_max, q0);
	hsp_rpc_loop_free(loop);
	hsp_rpc_channel_free(ch);
	fx_stop(&f);
}
END_TEST

static bool arrived_1(void *arg)
{
	return atomic_load(&((struct srv_state *)arg)->arrived) >= 1;
}

START_TEST(client_cancel)
{
	struct fx f;
	fx_start(&f, NULL, NULL, NULL);
	hsp_rpc_loop_t *loop = client_loop();
	hsp_rpc_channel_t *ch = channel(f.target, NULL, NULL);
	struct cstream c = {.order_ok = true};
	open_bidi(loop, ch, NULL, &c); /* no first message: headers alone */
	ck_assert(run_until(loop, arrived_1, &f.st, 5000));
	hsp_rpc_stream_cancel(c.s);
	ck_assert(run_until(loop, cs_closed, &c, 5000));
	ck_assert_int_eq(c.code, GRPC_STATUS_CANCELLED);
	ck_assert(wait_int(&f.st.done_cancelled, 1, 3000));
	hsp_rpc_loop_free(loop);
	hsp_rpc_channel_free(ch);
	fx_stop(&f);
}
END_TEST

/* The other end of peer_killed: opens a stream and waits to be killed. */
static void child_close(hsp_rpc_stream_t *s, const struct hsp_rpc_status *st, void *ud)
{
	(void)s;
	(void)st;
	(void)ud;
	exit(3);
}

static int child_main(const char *target)
{
	hsp_error_t err = NULL;
	hsp_rpc_loop_t *loop = NULL;
	hsp_rpc_channel_t *ch = NULL;
	hsp_rpc_stream_t *s = NULL;
	static const struct hsp_rpc_stream_cbs cbs = {.on_close = child_close};
	Hsp__V1__ExecOutput first = HSP__V1__EXEC_OUTPUT__INIT;
	if (hsp_rpc_loop_new(&loop, &err) < 0 ||
	    hsp_rpc_channel_new(target, NULL, NULL, &ch, &err) < 0 ||
	    hsp_rpc_stream_open(loop, ch, P_BIDI, HSP_RPC_BIDI_STREAM, &first.base,
				&hsp__v1__exec_output__descriptor, NULL, 0, 0, &cbs, NULL, &s,
				&err) < 0)
		return 2;
	hsp_rpc_loop_run(loop);
	return 0;
}

START_TEST(peer_killed)
{
	struct fx f;
	fx_start(&f, NULL, NULL, NULL);
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	ck_assert_int_gt(n, 0);
	self[n] = 0;
	char *argv[] = {self, "--bidi-child", f.target, NULL};
	pid_t pid;
	ck_assert_int_eq(posix_spawn(&pid, self, NULL, NULL, argv, environ), 0);
	ck_assert(wait_int(&f.st.arrived, 1, 10000));
	ck_assert_int_eq(atomic_load(&f.st.done), 0);
	int64_t t0 = hsp_rpc_now_ms();
	kill(pid, SIGKILL);
	int status;
	waitpid(pid, &status, 0);
	ck_assert(WIFSIGNALED(status));
	ck_assert(wait_int(&f.st.done_cancelled, 1, 5000));
	printf("rpc: peer SIGKILL noticed after %lld ms\n",
	       (long long)(atomic_load(&f.st.last_done_ms) - t0));
	fx_stop(&f);
}
END_TEST

static bool all_closed(void *arg)
{
	struct cstream *c = arg;
	for (int i = 0; i < 50; i++)
		if (!c[i].closed)
			return false;
	return true;
}

static bool arrived_50(void *arg)
{
	return atomic_load(&((struct srv_state *)arg)->arrived) >= 50;
}

START_TEST(shutdown_open_streams)
{
	struct fx f;
	fx_start(&f, NULL, NULL, NULL);
	hsp_rpc_loop_t *loop = client_loop();
	hsp_rpc_channel_t *ch = channel(f.target, NULL, NULL);
	struct cstream c[50];
	memset(c, 0, sizeof(c));
	Hsp__V1__ExecOutput first = HSP__V1__EXEC_OUTPUT__INIT;
	for (int i = 0; i < 50; i++)
		open_bidi(loop, ch, &first.base, &c[i]);
	ck_assert(run_until(loop, arrived_50, &f.st, 10000));
	int64_t t0 = hsp_rpc_now_ms();
	fx_stop(&f);
	int64_t dt = hsp_rpc_now_ms() - t0;
	printf("rpc: server shutdown with 50 open streams: %lld ms\n", (long long)dt);
	ck_assert_int_lt(dt, 5000);
	ck_assert_int_eq(atomic_load(&f.st.done), 50);
	ck_assert_int_eq(atomic_load(&f.st.done_cancelled), 50);
	ck_assert(run_until(loop, all_closed, c, 5000));
	for (int i = 0; i < 50; i++)
		ck_assert_int_ne(c[i].code, GRPC_STATUS_OK);
	hsp_rpc_loop_free(loop);
	hsp_rpc_channel_free(ch);
}
END_TEST

/* Streams still open when the client's loop is freed are closed by it. */
START_TEST(loop_free_closes_streams)
{
	struct fx f;
	fx_start(&f, NULL, NULL, NULL);
	hsp_rpc_loop_t *loop = client_loop();
	hsp_rpc_channel_t *ch = channel(f.target, NULL, NULL);
	struct cstream c = {0};
	Hsp__V1__ExecOutput first = HSP__V1__EXEC_OUTPUT__INIT;
	open_bidi(loop, ch, &first.base, &c);
	ck_assert(run_until(loop, arrived_1, &f.st, 5000));
	hsp_rpc_loop_free(loop);
	ck_assert(c.closed);
	ck_assert_int_eq(c.code, GRPC_STATUS_CANCELLED);
	ck_assert(wait_int(&f.st.done_cancelled, 1, 3000));
	hsp_rpc_channel_free(ch);
	fx_stop(&f);
}
END_TEST

/* ------------------------------------------------------------ keepalive */

/* A TCP relay for one connection that can go silent: a network path that
 * died without a FIN or RST, which only keepalive notices. */
struct relay {
	int lfd, port, upstream;
	pthread_t th;
	atomic_bool frozen, quit;
};

static bool relay_copy(int from, int to)
{
	char buf[16384];
	ssize_t n = read(from, buf, sizeof(buf));
	return n > 0 && write(to, buf, n) == n;
}

static void *relay_run(void *arg)
{
	struct relay *r = arg;
	struct pollfd pa = {r->lfd, POLLIN, 0};
	while (!atomic_load(&r->quit) && poll(&pa, 1, 50) == 0)
		;
	if (atomic_load(&r->quit))
		return NULL;
	int a = accept(r->lfd, NULL, NULL);
	int b = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(r->upstream)};
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(connect(b, (struct sockaddr *)&sin, sizeof(sin)), 0);
	while (!atomic_load(&r->quit)) {
		struct pollfd p[2] = {{a, POLLIN, 0}, {b, POLLIN, 0}};
		if (atomic_load(&r->frozen) || poll(p, 2, 50) <= 0) {
			usleep(20000);
			continue;
		}
		if ((p[0].revents && !relay_copy(a, b)) || (p[1].revents && !relay_copy(b, a)))
			break;
	}
	close(a);
	close(b);
	return NULL;
}

static void relay_start(struct relay *r, int upstream)
{
	memset(r, 0, sizeof(*r));
	r->upstream = upstream;
	r->lfd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sin = {.sin_family = AF_INET};
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t len = sizeof(sin);
	ck_assert_int_eq(bind(r->lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(listen(r->lfd, 4), 0);
	getsockname(r->lfd, (struct sockaddr *)&sin, &len);
	r->port = ntohs(sin.sin_port);
	pthread_create(&r->th, NULL, relay_run, r);
}

static void relay_stop(struct relay *r)
{
	atomic_store(&r->quit, true);
	pthread_join(r->th, NULL);
	close(r->lfd);
}

static bool never(void *arg)
{
	(void)arg;
	return false;
}

/* A client pinging every second on an idle stream is not cut off as
 * "too many pings" (grpc's default server policy would after ~4 s). */
START_TEST(keepalive_idle_stream)
{
	struct fx f;
	fx_start(&f, NULL, NULL, NULL);
	hsp_rpc_loop_t *loop = client_loop();
	struct hsp_rpc_channel_opts co = {.keepalive_ms = 1000, .keepalive_timeout_ms = 1000};
	hsp_rpc_channel_t *ch = channel(f.target, NULL, &co);
	struct cstream c = {.order_ok = true};
	Hsp__V1__ExecOutput first = HSP__V1__EXEC_OUTPUT__INIT;
	open_bidi(loop, ch, &first.base, &c);
	run_until(loop, never, NULL, 5500);
	ck_assert(!c.closed);
	ck_assert_int_eq(atomic_load(&f.st.done), 0);
	Hsp__V1__ExecOutput end = HSP__V1__EXEC_OUTPUT__INIT;
	end.exit_code = -1;
	ck_assert_int_eq(hsp_rpc_stream_send(c.s, &end.base), 0);
	ck_assert(run_until(loop, cs_closed, &c, 5000));
	ck_assert_int_eq(c.code, GRPC_STATUS_OK);
	ck_assert_int_eq(c.received, 1);
	hsp_rpc_loop_free(loop);
	hsp_rpc_channel_free(ch);
	fx_stop(&f);
}
END_TEST

/* The path goes silent: both ends find out through their pings. */
START_TEST(keepalive_dead_path)
{
	struct fx f;
	struct hsp_rpc_server_opts so = {.keepalive_ms = 300, .keepalive_timeout_ms = 300};
	fx_start(&f, NULL, NULL, &so);
	struct relay r;
	relay_start(&r, f.port);
	hsp_rpc_loop_t *loop = client_loop();
	struct hsp_rpc_channel_opts co = {.keepalive_ms = 1000, .keepalive_timeout_ms = 500};
	cleanup_free char *target = hsp_strdup_printf("127.0.0.1:%d", r.port);
	hsp_rpc_channel_t *ch = channel(target, NULL, &co);
	struct cstream c = {.order_ok = true};
	Hsp__V1__ExecOutput first = HSP__V1__EXEC_OUTPUT__INIT;
	open_bidi(loop, ch, &first.base, &c);
	ck_assert(run_until(loop, arrived_1, &f.st, 5000));
	atomic_store(&r.frozen, true);
	int64_t t0 = hsp_rpc_now_ms();
	ck_assert(run_until(loop, cs_closed, &c, 10000));
	int64_t client_ms = hsp_rpc_now_ms() - t0;
	ck_assert_int_eq(c.code, GRPC_STATUS_UNAVAILABLE);
	ck_assert(wait_int(&f.st.done_cancelled, 1, 5000));
	int64_t server_ms = atomic_load(&f.st.last_done_ms) - t0;
	ck_assert_int_lt(server_ms, 3000);
	printf("rpc: silent path noticed by the client after %lld ms, server by %lld ms\n",
	       (long long)client_ms, (long long)server_ms);
	hsp_rpc_loop_free(loop);
	hsp_rpc_channel_free(ch);
	fx_stop(&f);
	relay_stop(&r);
}
END_TEST

/* ------------------------------------------------------------ the loop */

struct posts {
	hsp_rpc_loop_t *loop;
	atomic_int count;
	int last[4];
	bool fifo;
};

struct post_arg {
	struct posts *p;
	int thread, seq;
};

static void posted(void *arg)
{
	struct post_arg *a = arg;
	struct posts *p = a->p;
	if (a->seq != p->last[a->thread] + 1)
		p->fifo = false;
	p->last[a->thread] = a->seq;
	if (atomic_fetch_add(&p->count, 1) + 1 == 4000)
		hsp_rpc_loop_stop(p->loop);
	free(a);
}

static void *poster(void *arg)
{
	struct post_arg *base = arg;
	for (int i = 0; i < 1000; i++) {
		struct post_arg *a = malloc(sizeof(*a));
		*a = (struct post_arg){base->p, base->thread, i};
		ck_assert_int_eq(hsp_rpc_loop_post(base->p->loop, posted, a), 0);
	}
	return NULL;
}

START_TEST(post_from_threads)
{
	struct posts p = {.loop = client_loop(), .fifo = true, .last = {-1, -1, -1, -1}};
	pthread_t th[4];
	struct post_arg args[4];
	for (int i = 0; i < 4; i++) {
		args[i] = (struct post_arg){&p, i, 0};
		pthread_create(&th[i], NULL, poster, &args[i]);
	}
	hsp_rpc_loop_run(p.loop);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	ck_assert_int_eq(atomic_load(&p.count), 4000);
	ck_assert(p.fifo);
	hsp_rpc_loop_free(p.loop);
}
END_TEST

struct tick {
	hsp_rpc_loop_t *loop;
	char order[8];
	int n;
};

struct tick_arg {
	struct tick *t;
	char c;
};

static void tick(void *arg)
{
	struct tick_arg *a = arg;
	a->t->order[a->t->n++] = a->c;
	if (a->t->n == 3)
		hsp_rpc_loop_stop(a->t->loop);
}

START_TEST(timers)
{
	struct tick t = {.loop = client_loop()};
	struct tick_arg a = {&t, 'a'}, b = {&t, 'b'}, c = {&t, 'c'}, d = {&t, 'd'};
	ck_assert_uint_gt(hsp_rpc_timer_add(t.loop, 60, tick, &c), 0);
	ck_assert_uint_gt(hsp_rpc_timer_add(t.loop, 20, tick, &a), 0);
	uint64_t id = hsp_rpc_timer_add(t.loop, 30, tick, &d);
	ck_assert_uint_gt(hsp_rpc_timer_add(t.loop, 40, tick, &b), 0);
	hsp_rpc_timer_cancel(t.loop, id);
	int64_t t0 = hsp_rpc_now_ms();
	hsp_rpc_loop_run(t.loop);
	ck_assert_int_ge(hsp_rpc_now_ms() - t0, 59);
	ck_assert_str_eq(t.order, "abc");
	/* A pending timer at free is dropped, not run. */
	hsp_rpc_timer_add(t.loop, 100000, tick, &d);
	hsp_rpc_loop_free(t.loop);
}
END_TEST

/* ------------------------------------------------------------ credentials */

static char *tmpdir_new(void)
{
	char tmpl[] = "/tmp/hsp-rpc-XXXXXX";
	ck_assert_ptr_nonnull(mkdtemp(tmpl));
	return strdup(tmpl);
}

static char *slurp(const char *dir, const char *name)
{
	hsp_error_t err = NULL;
	cleanup_free char *path = hsp_strdup_printf("%s/%s", dir, name);
	char *s = NULL;
	size_t len;
	ck_assert_msg(hsp_read_file(path, &s, &len, &err) == 0, "%s", err ? err->msg : "");
	return s;
}

/* ca, ca2; srv (SAN hsp-controller) and node1 by ca; evil (CN node1) by ca2. */
static void make_certs(const char *dir)
{
	cleanup_free char *cmd = hsp_strdup_printf(
	    "set -e; cd %s; exec 2>/dev/null\n"
	    "key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:prime256v1 -out "
	    "$1.key; }\n"
	    "ca() { key $1; openssl req -x509 -new -key $1.key -out $1.crt -subj /CN=$1 -days 2; "
	    "}\n"
	    "leaf() { key $1; openssl req -new -key $1.key -out $1.csr -subj /CN=$3;\n"
	    "  printf '%%s\\n' \"$4\" >$1.ext;\n"
	    "  openssl x509 -req -in $1.csr -CA $2.crt -CAkey $2.key -CAcreateserial -out $1.crt "
	    "-days 2 -extfile $1.ext; }\n"
	    "ca ca; ca ca2\n"
	    "leaf srv ca server 'subjectAltName=DNS:hsp-controller'\n"
	    "leaf node1 ca node1 'basicConstraints=CA:FALSE'\n"
	    "leaf evil ca2 node1 'basicConstraints=CA:FALSE'\n",
	    dir);
	ck_assert_int_eq(system(cmd), 0);
}

static void rm_dir(char *dir)
{
	hsp_error_t err = NULL;
	hsp_rm_rf(dir, &err);
	hsp_error_release(&err);
	free(dir);
}

START_TEST(tls_peer_cn)
{
	char *dir = tmpdir_new();
	make_certs(dir);
	cleanup_free char *ca = slurp(dir, "ca.crt");
	cleanup_free char *srv_crt = slurp(dir, "srv.crt");
	cleanup_free char *srv_key = slurp(dir, "srv.key");
	cleanup_free char *n1_crt = slurp(dir, "node1.crt");
	cleanup_free char *n1_key = slurp(dir, "node1.key");
	cleanup_free char *evil_crt = slurp(dir, "evil.crt");
	cleanup_free char *evil_key = slurp(dir, "evil.key");
	struct hsp_rpc_creds sc = {HSP_RPC_TLS, ca, srv_crt, srv_key, NULL};
	struct fx f;
	fx_start(&f, NULL, &sc, NULL);
	struct hsp_rpc_status st;
	/* Each channel its own connection: the certificates differ.  A short
	 * backoff lets grpc drop its failed subchannels before the end. */
	struct hsp_rpc_channel_opts own = {
	    .own_connection = true, .min_reconnect_ms = 100, .max_reconnect_ms = 100};

	struct hsp_rpc_creds with = {HSP_RPC_TLS, ca, n1_crt, n1_key, "hsp-controller"};
	hsp_rpc_channel_t *ch = channel(f.target, &with, &own);
	cleanup_free char *a = call_name(ch, P_PEER, "", 5000, &st);
	ck_assert_msg(st.code == GRPC_STATUS_OK, "%d %s", st.code, st.message);
	ck_assert_str_eq(a, "cn=node1 tr=tls");
	hsp_rpc_channel_free(ch);

	struct hsp_rpc_creds without = {HSP_RPC_TLS, ca, NULL, NULL, "hsp-controller"};
	ch = channel(f.target, &without, &own);
	cleanup_free char *b = call_name(ch, P_PEER, "", 5000, &st);
	ck_assert_int_eq(st.code, GRPC_STATUS_OK);
	ck_assert_str_eq(b, "cn=- tr=tls");
	hsp_rpc_channel_free(ch);

	struct hsp_rpc_creds evil = {HSP_RPC_TLS, ca, evil_crt, evil_key, "hsp-controller"};
	ch = channel(f.target, &evil, &own);
	ck_assert_ptr_null(call_name(ch, P_PEER, "", 5000, &st));
	ck_assert_int_eq(st.code, GRPC_STATUS_UNAVAILABLE);
	hsp_rpc_status_clear(&st);
	hsp_rpc_channel_free(ch);

	/* The server's name must match the certificate. */
	struct hsp_rpc_creds wrong = {HSP_RPC_TLS, ca, NULL, NULL, "other-name"};
	ch = channel(f.target, &wrong, &own);
	ck_assert_ptr_null(call_name(ch, P_PEER, "", 5000, &st));
	ck_assert_int_eq(st.code, GRPC_STATUS_UNAVAILABLE);
	hsp_rpc_status_clear(&st);
	hsp_rpc_channel_free(ch);

	usleep(500000);
	fx_stop(&f);
	rm_dir(dir);
}
END_TEST

START_TEST(local_unix_socket)
{
	char *dir = tmpdir_new();
	cleanup_free char *addr = hsp_strdup_printf("unix:%s/ctl.sock", dir);
	struct hsp_rpc_creds local = {.kind = HSP_RPC_LOCAL};
	struct fx f;
	fx_start(&f, addr, &local, NULL);
	ck_assert_int_eq(f.port, 1);
	struct hsp_rpc_status st;
	hsp_rpc_channel_t *ch = channel(addr, &local, NULL);
	cleanup_free char *a = call_name(ch, P_PEER, "", 5000, &st);
	ck_assert_int_eq(st.code, GRPC_STATUS_OK);
	ck_assert_str_eq(a, "cn=- tr=local");
	hsp_rpc_channel_free(ch);
	fx_stop(&f);
	rm_dir(dir);
}
END_TEST

START_TEST(server_errors)
{
	hsp_error_t err = NULL;
	hsp_rpc_loop_t *loop = client_loop();
	hsp_rpc_server_t *srv = NULL;
	struct hsp_rpc_method dup[] = {methods[0], methods[0]};
	ck_assert_int_lt(hsp_rpc_server_new(loop, dup, 2, NULL, NULL, &srv, &err), 0);
	hsp_error_release(&err);
	ck_assert_int_eq(hsp_rpc_server_new(loop, methods, 1, NULL, NULL, &srv, &err), 0);
	ck_assert_int_lt(hsp_rpc_server_listen(srv, "256.0.0.1:1", NULL, &err), 0);
	hsp_error_release(&err);
	ck_assert_int_gt(hsp_rpc_server_listen(srv, "127.0.0.1:0", NULL, &err), 0);
	struct hsp_rpc_creds tls_nokey = {.kind = HSP_RPC_TLS};
	ck_assert_int_lt(hsp_rpc_server_listen(srv, "127.0.0.1:0", &tls_nokey, &err), 0);
	hsp_error_release(&err);
	/* Freed by the loop without ever starting. */
	hsp_rpc_loop_free(loop);
}
END_TEST

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--bidi-child") == 0)
		return child_main(argv[2]);
	Suite *s = suite_create("rpc");
	const struct {
		const char *tcase;
		const TTest *test;
	} tests[] = {
	    {"loop", timers},
	    {"loop", post_from_threads},
	    {"unary", server_errors},
	    {"unary", unary_roundtrip},
	    {"unary", unary_from_threads},
	    {"unary", unknown_method},
	    {"unary", undecodable_request},
	    {"unary", answer_later},
	    {"unary", server_max_time},
	    {"unary", client_deadline},
	    {"unary", oversize_message},
	    {"stream", server_stream_many},
	    {"stream", bidi_echo},
	    {"stream", client_cancel},
	    {"stream", server_abort_drops_the_queue},
	    {"stream", stream_queue_and_on_sent},
	    {"stream", peer_killed},
	    {"stream", shutdown_open_streams},
	    {"stream", loop_free_closes_streams},
	    {"keepalive", keepalive_idle_stream},
	    {"keepalive", keepalive_dead_path},
	    {"creds", tls_peer_cn},
	    {"creds", local_unix_socket},
	};
	TCase *tc = NULL;
	const char *cur = "";
	for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
		if (strcmp(cur, tests[i].tcase) != 0) {
			cur = tests[i].tcase;
			tc = tcase_create(cur);
			suite_add_tcase(s, tc);
		}
		tcase_add_test(tc, tests[i].test);
	}
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
