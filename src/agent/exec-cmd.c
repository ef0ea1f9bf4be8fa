/* EXEC: `hsp-runtime exec NAME -- argv...`, its output streamed to the
 * controller as it comes (ExecChunk, in order, each ≤ 32 KiB), then an
 * "exited" chunk with the exit code, then the command's result.
 *
 * What is the runtime's and what is the command's: the runtime writes an
 * errno to HSP_ERRNO_FD only when it fails itself.  Exit 125 without an
 * errno is the command's own 125.  126/127 with an errno mean the command
 * could not be run inside the VE (not executable, not found): like
 * `docker exec`, that is an exit status of the command, with the reason
 * on its stderr.  Any other errno means exec did not start (e.g. the VE is
 * not running): a failed result, no "exited" chunk. */
#define _GNU_SOURCE
#include "agent.h"
#include "utils.h"

#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#define EXIT_KILLED 137 /* 128 + SIGKILL */
/* Output that may wait inside the agent before a command is made to wait
 * (its pipes fill, its writes block): a command printing faster than the
 * session carries it must not fill the agent's memory. */
#define EXEC_BACKLOG_MAX (8u << 20)
/* A session that takes nothing for this long (the controller gone): the
 * output goes on into the session's queue, which drops what exceeds its
 * cap, rather than the command hanging forever. */
#define EXEC_STALL_MAX_MS 60000
/* Seconds; more would overflow the milliseconds. */
#define EXEC_TIMEOUT_MAX (7 * 24 * 3600u)

struct exec_ctx {
	struct agent *a;
	uint64_t id;
	pid_t pid; /* 0 until it runs */
	bool cancelled;
	int64_t deadline_ms; /* its timeout, monotonic; 0 = none */
	struct exec_ctx *next;
};

/* Running EXECs, so a CANCEL from the loop thread finds their process
 * group; the workers add and remove themselves. */
static pthread_mutex_t running_lock = PTHREAD_MUTEX_INITIALIZER;
static struct exec_ctx *running;

static void on_start(void *ud, pid_t pid)
{
	struct exec_ctx *x = ud;
	pthread_mutex_lock(&running_lock);
	x->pid = pid;
	bool cancelled = x->cancelled;
	pthread_mutex_unlock(&running_lock);
	if (cancelled)
		kill(-pid, SIGKILL);
}

static void running_add(struct exec_ctx *x)
{
	pthread_mutex_lock(&running_lock);
	x->next = running;
	running = x;
	pthread_mutex_unlock(&running_lock);
}

static void running_remove(struct exec_ctx *x)
{
	pthread_mutex_lock(&running_lock);
	for (struct exec_ctx **p = &running; *p; p = &(*p)->next)
		if (*p == x) {
			*p = x->next;
			break;
		}
	pthread_mutex_unlock(&running_lock);
}

bool exec_cancel(uint64_t id)
{
	bool found = false;
	pthread_mutex_lock(&running_lock);
	for (struct exec_ctx *x = running; x; x = x->next) {
		if (x->id != id)
			continue;
		found = true;
		x->cancelled = true;
		if (x->pid > 0)
			kill(-x->pid, SIGKILL);
	}
	pthread_mutex_unlock(&running_lock);
	return found;
}

/* Output posted by the workers and not yet taken by the loop, and what
 * the session holds unsent: together, the backlog a worker waits on. */
static pthread_mutex_t flow_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t flow_cond = PTHREAD_COND_INITIALIZER;
static size_t flow_posted, flow_queued;

void exec_flow_taken(size_t n)
{
	pthread_mutex_lock(&flow_lock);
	flow_posted -= n < flow_posted ? n : flow_posted;
	pthread_cond_broadcast(&flow_cond);
	pthread_mutex_unlock(&flow_lock);
}

void exec_flow_queued(size_t bytes)
{
	pthread_mutex_lock(&flow_lock);
	flow_queued = bytes;
	pthread_cond_broadcast(&flow_cond);
	pthread_mutex_unlock(&flow_lock);
}

static bool flow_cancelled(struct exec_ctx *x)
{
	pthread_mutex_lock(&running_lock);
	bool c = x->cancelled;
	pthread_mutex_unlock(&running_lock);
	return c;
}

/* Worker: waits while the backlog is over the limit, then counts len in.
 * The wait ends early for a cancel, the command's deadline (the runner
 * must get to kill it) or a session that has taken nothing for a while. */
static void flow_reserve(struct exec_ctx *x, size_t len)
{
	int64_t stall_until = hsp_rpc_now_ms() + EXEC_STALL_MAX_MS;
	pthread_mutex_lock(&flow_lock);
	while (flow_posted + flow_queued > EXEC_BACKLOG_MAX) {
		int64_t now = hsp_rpc_now_ms();
		if (now >= stall_until || (x->deadline_ms && now >= x->deadline_ms))
			break;
		pthread_mutex_unlock(&flow_lock);
		bool stop = flow_cancelled(x);
		pthread_mutex_lock(&flow_lock);
		if (stop)
			break;
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 100 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&flow_cond, &flow_lock, &ts);
	}
	flow_posted += len;
	pthread_mutex_unlock(&flow_lock);
}

unsigned exec_cancel_all(void)
{
	unsigned n = 0;
	pthread_mutex_lock(&running_lock);
	for (struct exec_ctx *x = running; x; x = x->next) {
		x->cancelled = true;
		if (x->pid > 0)
			kill(-x->pid, SIGKILL);
		n++;
	}
	pthread_mutex_unlock(&running_lock);
	return n;
}

static Hsp__V1__AgentMessage *chunk_msg(uint64_t id, int stream, const void *data, size_t len)
{
	Hsp__V1__AgentMessage *m = calloc(1, sizeof(*m));
	Hsp__V1__ExecChunk *c = calloc(1, sizeof(*c));
	Hsp__V1__ExecOutput *o = calloc(1, sizeof(*o));
	if (m == NULL || c == NULL || o == NULL)
		abort();
	hsp__v1__agent_message__init(m);
	hsp__v1__exec_chunk__init(c);
	hsp__v1__exec_output__init(o);
	o->stream = stream == RUN_STDERR ? HSP__V1__EXEC_OUTPUT__STREAM__STREAM_STDERR
					 : HSP__V1__EXEC_OUTPUT__STREAM__STREAM_STDOUT;
	if (len) {
		o->data.data = malloc(len);
		if (o->data.data == NULL)
			abort();
		memcpy(o->data.data, data, len);
		o->data.len = len;
	}
	c->id = id;
	c->output = o;
	m->msg_case = HSP__V1__AGENT_MESSAGE__MSG_EXEC;
	m->exec = c;
	return m;
}

static void on_output(void *ud, int stream, const char *data, size_t len)
{
	struct exec_ctx *x = ud;
	flow_reserve(x, len);
	agent_post_message(x->a, chunk_msg(x->id, stream, data, len));
}

static void post_exited(struct exec_ctx *x, int code)
{
	Hsp__V1__AgentMessage *m = chunk_msg(x->id, RUN_STDOUT, NULL, 0);
	m->exec->output->stream = HSP__V1__EXEC_OUTPUT__STREAM__STREAM_UNSPECIFIED;
	m->exec->output->exited = true;
	m->exec->output->exit_code = code;
	agent_post_message(x->a, m);
}

static int exit_code(int status)
{
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}

static Hsp__V1__AgentMessage *outcome(struct exec_ctx *x, const Hsp__V1__Command *cmd,
				      const struct run_out *r)
{
	int code = exit_code(r->status);
	if (r->timed_out) {
		post_exited(x, EXIT_KILLED);
		return pb_result_msg(cmd->id, GRPC_STATUS_DEADLINE_EXCEEDED,
				     "exec: killed after its timeout");
	}
	if (r->err_no > 0 && code != 0 && code != 126 && code != 127) {
		cleanup_free char *msg = NULL;
		int rc = run_code(r, &msg);
		return pb_result_msg(cmd->id, rc, msg);
	}
	if (r->err_no > 0 && code != 0) {
		cleanup_free char *msg = run_message(r);
		cleanup_free char *line = hsp_strdup_printf("%s\n", msg ? msg : "cannot run");
		on_output(x, RUN_STDERR, line, strlen(line));
	}
	post_exited(x, code);
	return pb_result_msg(cmd->id, GRPC_STATUS_OK, "");
}

Hsp__V1__AgentMessage *exec_command(struct agent *a, const Hsp__V1__Command *cmd)
{
	if (cmd->n_argv == 0 || *cmd->argv[0] == '\0')
		return pb_result_msg(cmd->id, GRPC_STATUS_INVALID_ARGUMENT, "exec: no command");
	struct exec_ctx x = {.a = a, .id = cmd->id};
	struct argv_buf b = {0};
	argv_runtime(&b, &a->c);
	argv_add(&b, "exec");
	argv_add(&b, cmd->ve);
	argv_add(&b, "--");
	for (size_t i = 0; i < cmd->n_argv; i++)
		argv_add(&b, cmd->argv[i]);
	struct run_spec spec = {
	    .argv = b.v,
	    .envp = a->c.child_env,
	    .in = cmd->stdin.data,
	    .in_len = cmd->stdin.len,
	    .timeout_ms = (cmd->timeout_seconds < EXEC_TIMEOUT_MAX ? cmd->timeout_seconds
								   : EXEC_TIMEOUT_MAX) *
			  1000u,
	    .on_output = on_output,
	    .ud = &x,
	    .on_start = on_start,
	};
	if (spec.timeout_ms)
		x.deadline_ms = hsp_rpc_now_ms() + spec.timeout_ms;
	struct run_out r;
	hsp_error_t err = NULL;
	Hsp__V1__AgentMessage *m;
	running_add(&x);
	int rc = run_program(&spec, &r, &err);
	running_remove(&x);
	if (rc < 0) {
		m = pb_result_msg(cmd->id, GRPC_STATUS_INTERNAL, err->msg);
		hsp_error_release(&err);
	} else {
		m = outcome(&x, cmd, &r);
		run_out_clear(&r);
	}
	argv_clear(&b);
	return m;
}
