/* The Session stream to the controller (loop thread only).
 *
 *   connect:  a worker gathers the Hello (it spawns the runtime), then the
 *             stream opens with it as the first message;
 *   open:     Welcome (config), Commands in; Heartbeats, results, exec
 *             output out;
 *   closed:   any status: log, reopen after a backoff (200 ms doubling to
 *             5 s; back to 200 ms after a session that lasted > 10 s).
 *
 * Results and exec output go through one FIFO, so they keep their order
 * across reconnects: what finishes while no session is open waits for the
 * next one, up to 60 s.
 *
 * Lease: an agent cut off from the controller for config.lease_ms kills
 * its VEs, so the controller may start them elsewhere (shared storage)
 * without two copies writing one disk.  We fence a margin before the
 * lease ends, because the controller's clock started at our last
 * heartbeat, a few seconds before we noticed the cut. */
#define _GNU_SOURCE
#include "agent.h"
#include "utils.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define SESSION_PATH "/hsp.v1.NodeAgent/Session"
#define BACKOFF_MIN_MS 200
#define BACKOFF_MAX_MS 5000
#define STABLE_MS 10000
#define QUEUE_TTL_MS 60000
#define QUEUE_MAX_BYTES (64u << 20)
#define STOP_WAIT_MS 5000
#define CLOSE_WAIT_MS 1000
#define FENCE_MARGIN_MS 5000
#define DRAIN_POLL_MS 500
#define DRAIN_WAIT_MS (10 * 60 * 1000)

struct qitem {
	struct qitem *next;
	Hsp__V1__AgentMessage *m;
	int64_t at_ms;
	size_t bytes;
};

/* The last VE list, reused when a gather is slow or fails. */
struct hb_data {
	Hsp__V1__VeStatus **ves;
	size_t n;
	bool valid;
	double load1;
	uint64_t mem_used;
};

struct session {
	struct agent *a;
	hsp_rpc_channel_t *ch;
	hsp_rpc_stream_t *stream;
	bool connecting;
	int64_t opened_ms;
	unsigned backoff_ms;
	uint64_t retry_timer;

	unsigned hb_ms;
	uint64_t hb_timer, hb_seq;
	bool gathering, gather_failing;
	struct hb_data last;

	struct qitem *head, **tail;
	size_t q_bytes;
	bool q_full_logged;

	int64_t cut_since_ms; /* 0 while the controller is in touch */
	uint64_t fence_timer;
	bool fenced;

	bool closing;
	uint64_t stop_timer, close_timer;

	bool leaving; /* asked the controller to drain us before we stop */
	int64_t leaving_since_ms;
	uint64_t leave_timer;
};

static void connect_session(struct session *s);

static void cancel_timer(struct session *s, uint64_t *t)
{
	if (*t)
		hsp_rpc_timer_cancel(s->a->loop, *t);
	*t = 0;
}

static void hb_clear(struct hb_data *d)
{
	report_ves_free(d->ves, d->n);
	d->ves = NULL;
	d->n = 0;
	d->valid = false;
}

/* ------------------------------------------------------------ the queue */

static void q_pop(struct session *s)
{
	struct qitem *it = s->head;
	s->head = it->next;
	if (s->head == NULL)
		s->tail = &s->head;
	s->q_bytes -= it->bytes;
	pb_free(it->m);
	free(it);
}

static void q_expire(struct session *s)
{
	int64_t now = hsp_rpc_now_ms();
	while (s->head && now - s->head->at_ms > QUEUE_TTL_MS) {
		const Hsp__V1__AgentMessage *m = s->head->m;
		if (m->msg_case == HSP__V1__AGENT_MESSAGE__MSG_RESULT)
			agent_log("session: dropped the result of command %" PRIu64
				  " (no session for 60 s)",
				  m->result->id);
		q_pop(s);
	}
}

static void q_flush(struct session *s);

/* What waits to leave the agent, for exec's flow control: the queue
 * here and the stream's own. */
static void report_backlog(struct session *s)
{
	exec_flow_queued(s->q_bytes + (s->stream ? hsp_rpc_stream_queued(s->stream) : 0));
}

static void on_sent(hsp_rpc_stream_t *st, void *ud)
{
	(void)st;
	struct session *s = ud;
	q_flush(s);
	report_backlog(s);
}

static void q_flush(struct session *s)
{
	q_expire(s);
	while (s->head && s->stream && hsp_rpc_stream_send(s->stream, &s->head->m->base) == 0)
		q_pop(s);
}

static void q_push(struct session *s, Hsp__V1__AgentMessage *m)
{
	size_t bytes = protobuf_c_message_get_packed_size(&m->base);
	/* Exec output is what can grow without bound; results always fit. */
	if (m->msg_case == HSP__V1__AGENT_MESSAGE__MSG_EXEC &&
	    s->q_bytes + bytes > QUEUE_MAX_BYTES) {
		if (!s->q_full_logged)
			agent_log("session: queue full; dropping exec output");
		s->q_full_logged = true;
		pb_free(m);
		return;
	}
	s->q_full_logged = false;
	struct qitem *it = malloc(sizeof(*it));
	if (it == NULL)
		abort();
	*it = (struct qitem){.m = m, .at_ms = hsp_rpc_now_ms(), .bytes = bytes};
	*s->tail = it;
	s->tail = &it->next;
	s->q_bytes += bytes;
}

void session_send(struct agent *a, Hsp__V1__AgentMessage *m)
{
	struct session *s = a->s;
	q_push(s, m);
	q_flush(s);
	report_backlog(s);
}

/* ------------------------------------------------------------ lease */

static void *fence_thread(void *arg)
{
	agent_kill_all(arg, "lease");
	return NULL;
}

static void on_fence(void *arg)
{
	struct session *s = arg;
	s->fence_timer = 0;
	if (s->cut_since_ms == 0 || s->a->stopping || s->fenced)
		return;
	s->fenced = true;
	agent_log("lease: no contact with the controller for %" PRId64 " ms; killing the VEs",
		  hsp_rpc_now_ms() - s->cut_since_ms);
	if (agent_thread(fence_thread, &s->a->c) < 0)
		agent_log("lease: cannot start a thread");
}

static void arm_fence(struct session *s)
{
	cancel_timer(s, &s->fence_timer);
	unsigned lease = s->a->config ? s->a->config->lease_ms : 0;
	if (lease == 0 || s->cut_since_ms == 0 || s->fenced)
		return;
	unsigned delay = lease > 2 * FENCE_MARGIN_MS ? lease - FENCE_MARGIN_MS : lease / 2;
	int64_t left = s->cut_since_ms + delay - hsp_rpc_now_ms();
	s->fence_timer = hsp_rpc_timer_add(s->a->loop, left > 0 ? (unsigned)left : 0, on_fence, s);
}

static void lost_contact(struct session *s)
{
	if (s->cut_since_ms == 0)
		s->cut_since_ms = hsp_rpc_now_ms();
	arm_fence(s);
}

/* ------------------------------------------------------------ heartbeat */

static void send_heartbeat(struct session *s)
{
	if (s->stream == NULL || !s->last.valid)
		return;
	Hsp__V1__Heartbeat hb = HSP__V1__HEARTBEAT__INIT;
	Hsp__V1__AgentMessage m = HSP__V1__AGENT_MESSAGE__INIT;
	hb.seq = ++s->hb_seq;
	hb.ves = s->last.ves;
	hb.n_ves = s->last.n;
	hb.load1 = s->last.load1;
	hb.memory_used_bytes = s->last.mem_used;
	m.msg_case = HSP__V1__AGENT_MESSAGE__MSG_HEARTBEAT;
	m.heartbeat = &hb;
	/* Packed at once: the layer keeps no pointer into it. */
	hsp_rpc_stream_send(s->stream, &m.base);
}

struct gathered {
	struct session *s;
	struct hb_data d;
	char *error;
};

static void on_gathered(void *arg)
{
	struct gathered *g = arg;
	struct session *s = g->s;
	s->gathering = false;
	if (g->d.valid) {
		hb_clear(&s->last);
		s->last = g->d;
	} else {
		/* Keep reporting the last VE list rather than none. */
		s->last.load1 = g->d.load1;
		s->last.mem_used = g->d.mem_used;
	}
	if (g->error && !s->gather_failing)
		agent_log("heartbeat: cannot list VEs: %s", g->error);
	else if (!g->error && s->gather_failing)
		agent_log("heartbeat: listing VEs works again");
	s->gather_failing = g->error != NULL;
	send_heartbeat(s);
	free(g->error);
	free(g);
}

static void *gather_thread(void *arg)
{
	struct gathered *g = arg;
	const struct agent_conf *c = &g->s->a->c;
	hsp_error_t err = NULL;
	g->d.valid = report_ves(c, &g->d.ves, &g->d.n, &err) == 0;
	if (!g->d.valid) {
		g->error = strdup(err->msg);
		hsp_error_release(&err);
	}
	g->d.load1 = report_load1();
	g->d.mem_used = report_memory_used();
	if (agent_post(g->s->a, on_gathered, g) < 0) {
		hb_clear(&g->d);
		free(g->error);
		free(g);
	}
	return NULL;
}

static void on_hb_tick(void *arg)
{
	struct session *s = arg;
	s->hb_timer = hsp_rpc_timer_add(s->a->loop, s->hb_ms, on_hb_tick, s);
	if (s->stream == NULL)
		return;
	/* A gather still running: this beat carries the last one. */
	if (s->gathering)
		return send_heartbeat(s);
	struct gathered *g = calloc(1, sizeof(*g));
	if (g == NULL)
		abort();
	g->s = s;
	s->gathering = true;
	if (agent_thread(gather_thread, g) < 0) {
		s->gathering = false;
		free(g);
		send_heartbeat(s);
	}
}

static void set_heartbeat(struct session *s, unsigned ms)
{
	if (ms == 0 || ms == s->hb_ms)
		return;
	s->hb_ms = ms;
	if (s->hb_timer) {
		cancel_timer(s, &s->hb_timer);
		s->hb_timer = hsp_rpc_timer_add(s->a->loop, ms, on_hb_tick, s);
	}
}

/* ------------------------------------------------------------ welcome */

static bool same_msg(const ProtobufCMessage *x, const ProtobufCMessage *y)
{
	if (x == NULL || y == NULL)
		return x == y;
	size_t n = protobuf_c_message_get_packed_size(x);
	if (n != protobuf_c_message_get_packed_size(y))
		return false;
	cleanup_free uint8_t *bx = malloc(n + 1);
	cleanup_free uint8_t *by = malloc(n + 1);
	if (bx == NULL || by == NULL)
		return false;
	protobuf_c_message_pack(x, bx);
	protobuf_c_message_pack(y, by);
	return memcmp(bx, by, n) == 0;
}

static const ProtobufCMessage *storage_of(const Hsp__V1__ClusterConfig *cfg)
{
	return cfg->storage ? &cfg->storage->base : NULL;
}

static void apply_config(struct agent *a, const Hsp__V1__ClusterConfig *cfg)
{
	Hsp__V1__ClusterConfig *old = a->config;
	if (old && same_msg(&old->base, &cfg->base))
		return;
	bool storage_changed = old == NULL || !same_msg(storage_of(old), storage_of(cfg));
	a->config = pb_clone(&cfg->base);
	pb_free(old);
	hsp_error_t err = NULL;
	if (state_save_config(a->c.state_dir, a->config, &err) < 0) {
		agent_log("config: %s", err->msg);
		hsp_error_release(&err);
	}
	if (storage_changed) {
		storage_forget();
		storage_ensure_async(a);
	}
}

static void on_welcome(struct session *s, const Hsp__V1__Welcome *w)
{
	struct agent *a = s->a;
	s->cut_since_ms = 0;
	s->fenced = false;
	cancel_timer(s, &s->fence_timer);
	if (w->config) {
		apply_config(a, w->config);
		set_heartbeat(s, w->config->heartbeat_ms);
		/* every session: someone may have removed the bridge meanwhile */
		network_ensure_async(w->config, a->c.ve_uplink);
	}
	agent_log("session: welcome from cluster %s (heartbeat %u ms, %zu VEs expected here)%s",
		  a->config && *a->config->cluster_name ? a->config->cluster_name : "?", s->hb_ms,
		  w->n_ves, w->fenced ? "; this node was fenced" : "");
	if (w->fenced)
		fenced_clear_async(a);
}

/* ------------------------------------------------------------ the stream */

static void on_message(hsp_rpc_stream_t *st, const ProtobufCMessage *msg, void *ud)
{
	(void)st;
	struct session *s = ud;
	const Hsp__V1__ControllerMessage *m = (const Hsp__V1__ControllerMessage *)msg;
	if (m->msg_case == HSP__V1__CONTROLLER_MESSAGE__MSG_WELCOME)
		on_welcome(s, m->welcome);
	else if (m->msg_case == HSP__V1__CONTROLLER_MESSAGE__MSG_COMMAND)
		command_dispatch(s->a, m->command);
}

static void on_retry(void *arg)
{
	struct session *s = arg;
	s->retry_timer = 0;
	connect_session(s);
}

static void schedule_retry(struct session *s)
{
	unsigned delay = s->backoff_ms;
	s->backoff_ms = s->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : s->backoff_ms * 2;
	agent_log("session: reconnecting in %u ms", delay);
	s->retry_timer = hsp_rpc_timer_add(s->a->loop, delay, on_retry, s);
}

static void on_close(hsp_rpc_stream_t *st, const struct hsp_rpc_status *status, void *ud)
{
	(void)st;
	struct session *s = ud;
	int64_t lasted = hsp_rpc_now_ms() - s->opened_ms;
	s->stream = NULL;
	cancel_timer(s, &s->hb_timer);
	agent_log("session: closed after %" PRId64 ".%01" PRId64 " s: %s%s%s", lasted / 1000,
		  lasted % 1000 / 100, pb_code_name(status->code), status->message ? ": " : "",
		  status->message ? status->message : "");
	if (s->a->stopping) {
		cancel_timer(s, &s->close_timer);
		hsp_rpc_loop_stop(s->a->loop);
		return;
	}
	/* The controller told their callers the session ended: their output
	 * has nowhere to go, and nobody is left to cancel them. */
	unsigned n = exec_cancel_all();
	if (n)
		agent_log("session: cancelled %u exec command%s whose callers were told it ended",
			  n, n == 1 ? "" : "s");
	lost_contact(s);
	if (lasted > STABLE_MS)
		s->backoff_ms = BACKOFF_MIN_MS;
	schedule_retry(s);
}

static void open_stream(struct session *s, Hsp__V1__Hello *hello)
{
	static const struct hsp_rpc_stream_cbs cbs = {
	    .on_message = on_message, .on_close = on_close, .on_sent = on_sent};
	Hsp__V1__AgentMessage first = HSP__V1__AGENT_MESSAGE__INIT;
	first.msg_case = HSP__V1__AGENT_MESSAGE__MSG_HELLO;
	first.hello = hello;
	hsp_error_t err = NULL;
	int r = hsp_rpc_stream_open(s->a->loop, s->ch, SESSION_PATH, HSP_RPC_BIDI_STREAM,
				    &first.base, &hsp__v1__controller_message__descriptor, NULL, 0,
				    0, &cbs, s, &s->stream, &err);
	if (r < 0) {
		agent_log("session: %s", err->msg);
		hsp_error_release(&err);
		schedule_retry(s);
		return;
	}
	s->opened_ms = hsp_rpc_now_ms();
	agent_log("session: connecting to %s (hello: %zu VEs, %zu templates)", s->a->c.controller,
		  hello->n_ves, hello->n_templates);
	/* The hello's VE list is the first heartbeat's until a gather ends. */
	hb_clear(&s->last);
	s->last.ves = hello->ves;
	s->last.n = hello->n_ves;
	s->last.valid = true;
	hello->ves = NULL;
	hello->n_ves = 0;
	s->hb_timer = hsp_rpc_timer_add(s->a->loop, s->hb_ms, on_hb_tick, s);
	q_flush(s);
}

struct hello_job {
	struct session *s;
	char *pool;
	Hsp__V1__Hello *hello;
	char *error;
};

static void on_hello(void *arg)
{
	struct hello_job *h = arg;
	struct session *s = h->s;
	s->connecting = false;
	if (s->a->stopping) {
		/* Nothing: the shutdown does not wait for us. */
	} else if (h->hello == NULL) {
		agent_log("session: no hello: %s", h->error);
		schedule_retry(s);
	} else {
		open_stream(s, h->hello);
	}
	pb_free(h->hello);
	free(h->error);
	free(h->pool);
	free(h);
}

static void *hello_thread(void *arg)
{
	struct hello_job *h = arg;
	hsp_error_t err = NULL;
	if (report_hello(&h->s->a->c, h->pool, &h->hello, &err) < 0) {
		h->error = strdup(err->msg);
		hsp_error_release(&err);
	}
	if (agent_post(h->s->a, on_hello, h) < 0) {
		pb_free(h->hello);
		free(h->error);
		free(h->pool);
		free(h);
	}
	return NULL;
}

static void connect_session(struct session *s)
{
	struct agent *a = s->a;
	if (a->stopping || s->connecting || s->stream)
		return;
	struct hello_job *h = calloc(1, sizeof(*h));
	if (h == NULL)
		abort();
	h->s = s;
	if (storage_is_cephfs(a->config))
		h->pool = strdup(a->config->storage->pool);
	s->connecting = true;
	if (agent_thread(hello_thread, h) < 0) {
		s->connecting = false;
		free(h->pool);
		free(h);
		schedule_retry(s);
	}
}

int session_start(struct agent *a, hsp_error_t *err)
{
	struct session *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return hsp_make_errno(err, ENOMEM, "session");
	s->a = a;
	s->tail = &s->head;
	s->backoff_ms = BACKOFF_MIN_MS;
	s->hb_ms = a->c.heartbeat_ms;
	if (a->config && a->config->heartbeat_ms)
		s->hb_ms = a->config->heartbeat_ms;
	struct hsp_rpc_creds creds = {.kind = HSP_RPC_TLS,
				      .ca_pem = a->ca_pem,
				      .cert_pem = a->cert_pem,
				      .key_pem = a->key_pem};
	struct hsp_rpc_channel_opts opts = {.keepalive_ms = 1000,
					    .keepalive_timeout_ms = 3000,
					    .own_connection = true,
					    .min_reconnect_ms = 100,
					    .max_reconnect_ms = 2000};
	int r = hsp_rpc_channel_new(a->c.controller, &creds, &opts, &s->ch, err);
	if (r < 0) {
		free(s);
		return r;
	}
	a->s = s;
	/* Until a welcome, the controller has not heard from this process. */
	lost_contact(s);
	connect_session(s);
	return 0;
}

/* ------------------------------------------------------------ shutdown */

static void on_close_timeout(void *arg)
{
	struct session *s = arg;
	s->close_timer = 0;
	agent_log("session: the controller did not end the session; cancelling it");
	if (s->stream)
		hsp_rpc_stream_cancel(s->stream);
}

/* Half-close: the controller ends the call, and on_close stops the loop. */
static void close_session(struct session *s)
{
	if (s->closing)
		return;
	s->closing = true;
	cancel_timer(s, &s->stop_timer);
	cancel_timer(s, &s->hb_timer);
	if (s->stream == NULL) {
		hsp_rpc_loop_stop(s->a->loop);
		return;
	}
	q_flush(s);
	hsp_rpc_stream_close_send(s->stream);
	s->close_timer = hsp_rpc_timer_add(s->a->loop, CLOSE_WAIT_MS, on_close_timeout, s);
}

static void on_stop_timeout(void *arg)
{
	struct session *s = arg;
	s->stop_timer = 0;
	agent_log("stopping: %u commands still running; they go on without the agent",
		  jobs_running(s->a));
	close_session(s);
}

static void stop_now(struct agent *a);

static bool runs_ves(const struct session *s)
{
	for (size_t i = 0; i < s->last.n; i++)
		if (s->last.ves[i]->state == HSP__V1__VE_STATE__VE_STATE_RUNNING ||
		    s->last.ves[i]->state == HSP__V1__VE_STATE__VE_STATE_RESCUE)
			return true;
	return !s->last.valid;
}

/* Draining: the controller moves our VEs away; we stop once none is left
 * here (or the wait runs out, or a second signal hurries us). */
static void on_leave_tick(void *arg)
{
	struct session *s = arg;
	s->leave_timer = 0;
	int64_t waited = hsp_rpc_now_ms() - s->leaving_since_ms;
	if (!runs_ves(s) || waited > DRAIN_WAIT_MS || s->stream == NULL) {
		agent_log("leaving: %s after %" PRId64 " ms; stopping",
			  !runs_ves(s) ? "no VE runs here any more" : "giving up the wait", waited);
		stop_now(s->a);
		return;
	}
	s->leave_timer = hsp_rpc_timer_add(s->a->loop, DRAIN_POLL_MS, on_leave_tick, s);
}

static bool start_leaving(struct session *s)
{
	if (!s->a->c.drain_on_shutdown || s->leaving || s->stream == NULL)
		return false;
	Hsp__V1__Leaving l = HSP__V1__LEAVING__INIT;
	Hsp__V1__AgentMessage m = HSP__V1__AGENT_MESSAGE__INIT;
	l.drain = true;
	m.msg_case = HSP__V1__AGENT_MESSAGE__MSG_LEAVING;
	m.leaving = &l;
	if (hsp_rpc_stream_send(s->stream, &m.base) < 0)
		return false;
	s->leaving = true;
	s->leaving_since_ms = hsp_rpc_now_ms();
	agent_log("leaving: asked the controller to move this node's VEs away first");
	s->leave_timer = hsp_rpc_timer_add(s->a->loop, DRAIN_POLL_MS, on_leave_tick, s);
	return true;
}

void session_shutdown(struct agent *a)
{
	struct session *s = a->s;
	if (!a->stopping && !s->leaving && start_leaving(s))
		return;
	if (s->leaving && !a->stopping) {
		agent_log("leaving: a second signal: stopping without waiting for the drain");
		cancel_timer(s, &s->leave_timer);
	}
	stop_now(a);
}

static void stop_now(struct agent *a)
{
	struct session *s = a->s;
	if (a->stopping) {
		agent_log("stopping now");
		if (s->stream)
			hsp_rpc_stream_cancel(s->stream);
		else
			hsp_rpc_loop_stop(a->loop);
		return;
	}
	a->stopping = true;
	cancel_timer(s, &s->retry_timer);
	cancel_timer(s, &s->fence_timer);
	cancel_timer(s, &s->leave_timer);
	unsigned n = jobs_running(a);
	if (n == 0)
		return close_session(s);
	agent_log("stopping: waiting up to %u s for %u commands", STOP_WAIT_MS / 1000, n);
	s->stop_timer = hsp_rpc_timer_add(a->loop, STOP_WAIT_MS, on_stop_timeout, s);
}

void session_job_ended(struct agent *a)
{
	if (a->stopping && jobs_running(a) == 0)
		close_session(a->s);
}

void session_free(struct agent *a)
{
	struct session *s = a->s;
	if (s == NULL)
		return;
	while (s->head)
		q_pop(s);
	hb_clear(&s->last);
	/* A stream still open holds the channel; the loop's teardown ends it. */
	if (s->stream == NULL)
		hsp_rpc_channel_free(s->ch);
	free(s);
	a->s = NULL;
}
