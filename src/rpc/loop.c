/* The event loop: one completion queue, a timer heap that bounds each
 * wait, and a FIFO of closures posted from other threads.
 *
 * The C API has no alarm, so other threads wake the loop with an empty
 * batch on a call of a lame channel that is never started: grpc posts the
 * tag to the queue at once.  At most one such wake is in flight. */
#define _GNU_SOURCE
#include "internal.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <grpc/support/log.h>

struct post {
	struct post *next;
	void (*fn)(void *arg);
	void *arg;
};

struct hsp_rpc_timer {
	int64_t due_ms;
	uint64_t id;
	size_t idx; /* position in the heap */
	void (*fn)(void *arg);
	void *arg;
};

struct hsp_rpc_loop {
	grpc_completion_queue *cq;
	grpc_channel *lame;
	grpc_call *wake_call;
	struct hsp_rpc_tag wake_tag;

	pthread_mutex_t lock; /* guards the posts and the flags below it */
	struct post *posts, **posts_tail;
	bool wake_pending;
	bool closed;

	atomic_bool stop;

	/* loop thread only */
	struct hsp_rpc_timer **heap;
	size_t n_timers, cap_timers;
	uint64_t last_timer_id;
	struct hsp_rpc_link servers, streams;
};

/* ------------------------------------------------------------ lists */

void hsp_rpc_link_init(struct hsp_rpc_link *head)
{
	head->prev = head->next = head;
}

void hsp_rpc_link_add(struct hsp_rpc_link *head, struct hsp_rpc_link *l)
{
	l->next = head->next;
	l->prev = head;
	head->next->prev = l;
	head->next = l;
}

void hsp_rpc_link_del(struct hsp_rpc_link *l)
{
	l->prev->next = l->next;
	l->next->prev = l->prev;
	l->prev = l->next = l;
}

/* ------------------------------------------------------------ grpc init */

static bool log_verbose;

static void log_line(gpr_log_func_args *a)
{
	if (a->severity < GPR_LOG_SEVERITY_ERROR && !log_verbose)
		return;
	fprintf(stderr, "grpc: %s:%d: %s\n", a->file, a->line, a->message);
}

/* Debian's abseil is built without NDEBUG, so every absl::Mutex lock and
 * unlock inside grpc (~35 per unary call) runs the deadlock detector: a
 * process-wide lock graph under a global lock, about 14k instructions per
 * call on each side (callgrind), 14 % of the client's and the server's
 * user time.  Release builds of abseil have it off; switch it off the way
 * abseil offers, by its mangled name (C cannot spell it), and do nothing
 * where the symbol is named differently. */
static void absl_deadlock_detection_off(void)
{
	static const char *const names[] = {
	    "_ZN4absl7debian329SetMutexDeadlockDetectionModeENS0_15OnDeadlockCycleE",
	    "_ZN4absl12lts_2022062329SetMutexDeadlockDetectionModeENS0_15OnDeadlockCycleE",
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		void *sym = dlsym(RTLD_DEFAULT, names[i]);
		if (sym) {
			/* absl::OnDeadlockCycle is an int-sized enum; kIgnore is 0. */
			void (*set_mode)(int);
			memcpy(&set_mode, &sym, sizeof(set_mode));
			set_mode(0);
			return;
		}
	}
}

static void log_setup(void)
{
	const char *v = getenv("HSP_RPC_VERBOSE");
	log_verbose = v && *v && strcmp(v, "0") != 0;
	gpr_set_log_verbosity(log_verbose ? GPR_LOG_SEVERITY_DEBUG : GPR_LOG_SEVERITY_ERROR);
	gpr_set_log_function(log_line);
}

/* Before the first grpc_init: no grpc mutex is held yet. */
static void once_setup(void)
{
	absl_deadlock_detection_off();
	log_setup();
}

void hsp_rpc_grpc_init(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, once_setup);
	grpc_init();
}

int64_t hsp_rpc_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------ timers */

static bool timer_before(const struct hsp_rpc_timer *a, const struct hsp_rpc_timer *b)
{
	return a->due_ms < b->due_ms || (a->due_ms == b->due_ms && a->id < b->id);
}

static void heap_set(hsp_rpc_loop_t *loop, size_t i, struct hsp_rpc_timer *t)
{
	loop->heap[i] = t;
	t->idx = i;
}

static void heap_up(hsp_rpc_loop_t *loop, size_t i)
{
	struct hsp_rpc_timer *t = loop->heap[i];
	while (i > 0 && timer_before(t, loop->heap[(i - 1) / 2])) {
		heap_set(loop, i, loop->heap[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
	heap_set(loop, i, t);
}

static void heap_down(hsp_rpc_loop_t *loop, size_t i)
{
	struct hsp_rpc_timer *t = loop->heap[i];
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= loop->n_timers)
			break;
		if (c + 1 < loop->n_timers && timer_before(loop->heap[c + 1], loop->heap[c]))
			c++;
		if (!timer_before(loop->heap[c], t))
			break;
		heap_set(loop, i, loop->heap[c]);
		i = c;
	}
	heap_set(loop, i, t);
}

static void heap_remove(hsp_rpc_loop_t *loop, struct hsp_rpc_timer *t)
{
	size_t i = t->idx;
	struct hsp_rpc_timer *last = loop->heap[--loop->n_timers];
	if (last == t)
		return;
	heap_set(loop, i, last);
	heap_up(loop, i);
	heap_down(loop, last->idx);
}

struct hsp_rpc_timer *hsp_rpc_timer_start(hsp_rpc_loop_t *loop, int64_t due_ms,
					  void (*fn)(void *arg), void *arg)
{
	if (loop->n_timers == loop->cap_timers) {
		size_t cap = loop->cap_timers ? loop->cap_timers * 2 : 16;
		struct hsp_rpc_timer **h = realloc(loop->heap, cap * sizeof(*h));
		if (h == NULL)
			return NULL;
		loop->heap = h;
		loop->cap_timers = cap;
	}
	struct hsp_rpc_timer *t = malloc(sizeof(*t));
	if (t == NULL)
		return NULL;
	*t = (struct hsp_rpc_timer){
	    .due_ms = due_ms, .id = ++loop->last_timer_id, .fn = fn, .arg = arg};
	heap_set(loop, loop->n_timers++, t);
	heap_up(loop, t->idx);
	return t;
}

void hsp_rpc_timer_stop(hsp_rpc_loop_t *loop, struct hsp_rpc_timer *t)
{
	if (t == NULL)
		return;
	heap_remove(loop, t);
	free(t);
}

uint64_t hsp_rpc_timer_add(hsp_rpc_loop_t *loop, unsigned ms, void (*fn)(void *arg), void *arg)
{
	struct hsp_rpc_timer *t = hsp_rpc_timer_start(loop, hsp_rpc_now_ms() + ms, fn, arg);
	return t ? t->id : 0;
}

/* Linear: daemons hold few timers by id; the layer's own use handles. */
void hsp_rpc_timer_cancel(hsp_rpc_loop_t *loop, uint64_t id)
{
	for (size_t i = 0; i < loop->n_timers; i++) {
		if (loop->heap[i]->id == id) {
			hsp_rpc_timer_stop(loop, loop->heap[i]);
			return;
		}
	}
}

/* Only timers already due when we start: a timer that re-arms itself at
 * 0 ms must not starve the queue. */
static void run_timers(hsp_rpc_loop_t *loop)
{
	int64_t now = hsp_rpc_now_ms();
	uint64_t last_id = loop->last_timer_id;
	while (loop->n_timers > 0 && loop->heap[0]->due_ms <= now) {
		struct hsp_rpc_timer *t = loop->heap[0];
		if (t->id > last_id)
			break;
		void (*fn)(void *) = t->fn;
		void *arg = t->arg;
		hsp_rpc_timer_stop(loop, t);
		fn(arg);
	}
}

static gpr_timespec next_deadline(hsp_rpc_loop_t *loop)
{
	if (loop->n_timers == 0)
		return gpr_inf_future(GPR_CLOCK_MONOTONIC);
	int64_t left = loop->heap[0]->due_ms - hsp_rpc_now_ms();
	return hsp_rpc_deadline(left > 0 ? left : 0);
}

/* ------------------------------------------------------------ posts and wake */

/* Caller holds the lock. */
static void wake_locked(hsp_rpc_loop_t *loop)
{
	if (loop->wake_pending)
		return;
	loop->wake_pending = true;
	grpc_call_error e = grpc_call_start_batch(loop->wake_call, NULL, 0, &loop->wake_tag, NULL);
	if (e != GRPC_CALL_OK)
		loop->wake_pending = false;
}

static void wake_done(struct hsp_rpc_tag *tag, bool ok)
{
	(void)ok;
	hsp_rpc_loop_t *loop = container_of(tag, hsp_rpc_loop_t, wake_tag);
	pthread_mutex_lock(&loop->lock);
	/* Cleared before taking the list: a post after this point wakes again. */
	loop->wake_pending = false;
	struct post *p = loop->posts;
	loop->posts = NULL;
	loop->posts_tail = &loop->posts;
	pthread_mutex_unlock(&loop->lock);
	while (p) {
		struct post *next = p->next;
		p->fn(p->arg);
		free(p);
		p = next;
	}
}

int hsp_rpc_loop_post(hsp_rpc_loop_t *loop, void (*fn)(void *arg), void *arg)
{
	struct post *p = malloc(sizeof(*p));
	if (p == NULL)
		return -ENOMEM;
	*p = (struct post){.fn = fn, .arg = arg};
	pthread_mutex_lock(&loop->lock);
	if (loop->closed) {
		pthread_mutex_unlock(&loop->lock);
		free(p);
		return -ESHUTDOWN;
	}
	*loop->posts_tail = p;
	loop->posts_tail = &p->next;
	wake_locked(loop);
	pthread_mutex_unlock(&loop->lock);
	return 0;
}

void hsp_rpc_loop_stop(hsp_rpc_loop_t *loop)
{
	atomic_store(&loop->stop, true);
	pthread_mutex_lock(&loop->lock);
	if (!loop->closed)
		wake_locked(loop);
	pthread_mutex_unlock(&loop->lock);
}

/* ------------------------------------------------------------ the loop */

static int wake_setup(hsp_rpc_loop_t *loop, hsp_error_t *err)
{
	loop->lame =
	    grpc_lame_client_channel_create("hsp-rpc-wake", GRPC_STATUS_UNAVAILABLE, "never used");
	if (loop->lame == NULL)
		return hsp_make_error(err, ENOMEM, "rpc: cannot create the wake channel");
	loop->wake_call = grpc_channel_create_call(loop->lame, NULL, GRPC_PROPAGATE_DEFAULTS,
						   loop->cq, grpc_slice_from_static_string("/w"),
						   NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
	if (loop->wake_call == NULL)
		return hsp_make_error(err, ENOMEM, "rpc: cannot create the wake call");
	loop->wake_tag.done = wake_done;
	return 0;
}

int hsp_rpc_loop_new(hsp_rpc_loop_t **out, hsp_error_t *err)
{
	hsp_rpc_loop_t *loop = calloc(1, sizeof(*loop));
	if (loop == NULL)
		return hsp_make_errno(err, ENOMEM, "rpc: loop");
	hsp_rpc_grpc_init();
	pthread_mutex_init(&loop->lock, NULL);
	loop->posts_tail = &loop->posts;
	hsp_rpc_link_init(&loop->servers);
	hsp_rpc_link_init(&loop->streams);
	loop->cq = grpc_completion_queue_create_for_next(NULL);
	int r = loop->cq ? wake_setup(loop, err) : hsp_make_error(err, ENOMEM, "rpc: no queue");
	if (r < 0) {
		hsp_rpc_loop_free(loop);
		return r;
	}
	*out = loop;
	return 0;
}

static void step(hsp_rpc_loop_t *loop)
{
	run_timers(loop);
	grpc_event ev = grpc_completion_queue_next(loop->cq, next_deadline(loop), NULL);
	if (ev.type == GRPC_OP_COMPLETE) {
		struct hsp_rpc_tag *tag = ev.tag;
		tag->done(tag, ev.success != 0);
	}
}

int hsp_rpc_loop_run(hsp_rpc_loop_t *loop)
{
	while (!atomic_load(&loop->stop))
		step(loop);
	/* Each stop ends one run: the loop can be run again. */
	atomic_store(&loop->stop, false);
	return 0;
}

void hsp_rpc_loop_pump(hsp_rpc_loop_t *loop, bool (*done)(void *arg), void *arg)
{
	while (!done(arg))
		step(loop);
}

grpc_completion_queue *hsp_rpc_loop_cq(hsp_rpc_loop_t *loop)
{
	return loop->cq;
}

struct hsp_rpc_link *hsp_rpc_loop_servers(hsp_rpc_loop_t *loop)
{
	return &loop->servers;
}

struct hsp_rpc_link *hsp_rpc_loop_streams(hsp_rpc_loop_t *loop)
{
	return &loop->streams;
}

/* ------------------------------------------------------------ teardown */

static bool posts_idle(void *arg)
{
	hsp_rpc_loop_t *loop = arg;
	pthread_mutex_lock(&loop->lock);
	bool idle = !loop->wake_pending && loop->posts == NULL;
	pthread_mutex_unlock(&loop->lock);
	return idle;
}

static bool streams_gone(void *arg)
{
	return hsp_rpc_link_empty(&((hsp_rpc_loop_t *)arg)->streams);
}

/* Closures accepted before the loop closed still run: their args are
 * often allocations only the closure frees. */
static void close_posts(hsp_rpc_loop_t *loop)
{
	pthread_mutex_lock(&loop->lock);
	loop->closed = true;
	if (loop->posts)
		wake_locked(loop);
	pthread_mutex_unlock(&loop->lock);
	hsp_rpc_loop_pump(loop, posts_idle, loop);
}

static void drain_queue(hsp_rpc_loop_t *loop)
{
	grpc_completion_queue_shutdown(loop->cq);
	for (;;) {
		grpc_event ev =
		    grpc_completion_queue_next(loop->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
		if (ev.type == GRPC_QUEUE_SHUTDOWN)
			break;
		if (ev.type == GRPC_OP_COMPLETE) {
			struct hsp_rpc_tag *tag = ev.tag;
			tag->done(tag, ev.success != 0);
		}
	}
	grpc_completion_queue_destroy(loop->cq);
}

static void free_timers(hsp_rpc_loop_t *loop)
{
	for (size_t i = 0; i < loop->n_timers; i++)
		free(loop->heap[i]);
	free(loop->heap);
}

void hsp_rpc_loop_free(hsp_rpc_loop_t *loop)
{
	if (loop == NULL)
		return;
	if (loop->wake_call) {
		close_posts(loop);
		hsp_rpc_server_free_all(loop);
		hsp_rpc_stream_cancel_all(loop);
		hsp_rpc_loop_pump(loop, streams_gone, loop);
		grpc_call_unref(loop->wake_call);
	}
	if (loop->lame)
		grpc_channel_destroy(loop->lame);
	if (loop->cq)
		drain_queue(loop);
	free_timers(loop);
	pthread_mutex_destroy(&loop->lock);
	free(loop);
	grpc_shutdown();
}
