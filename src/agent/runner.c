/* Running hsp-runtime (and criu --version).
 *
 * Never fork: grpc has ~7 threads, so a forked child could inherit a lock
 * held by one of them.  posix_spawn (clone+exec in glibc) is safe.  Each
 * child gets its own process group, so a deadline can SIGKILL the whole
 * tree (hsp-runtime exec and the command it runs in the VE), and a
 * terminal's ^C meant for the agent does not hit it.
 *
 * The runtime reports why a verb failed as an errno on fd 3
 * (HSP_ERRNO_FD=3), written before its "hsp-runtime: ..." stderr line;
 * that ordering is what lets stream mode (exec) tell the runtime's own
 * failure from the command's output. */
#define _GNU_SOURCE
#include "agent.h"
#include "utils.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* What we keep of a child's output in capture mode. */
#define CAPTURE_OUT_MAX (64u << 20)
#define CAPTURE_ERR_MAX (64u << 10)
/* Reads of leftover output after the child exited: a grandchild still
 * holding the pipe must not keep us here. */
#define DRAIN_READS 64

/* ------------------------------------------------------------ argv */

void argv_add(struct argv_buf *b, const char *s)
{
	if (b->n + 2 > b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 16;
		char **v = realloc(b->v, cap * sizeof(char *));
		if (v == NULL)
			abort();
		b->v = v;
		b->cap = cap;
	}
	b->v[b->n] = strdup(s);
	if (b->v[b->n] == NULL)
		abort();
	b->v[++b->n] = NULL;
}

void argv_addf(struct argv_buf *b, const char *fmt, ...)
{
	char *s;
	va_list ap;
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		abort();
	va_end(ap);
	argv_add(b, s);
	free(s);
}

void argv_clear(struct argv_buf *b)
{
	for (size_t i = 0; i < b->n; i++)
		free(b->v[i]);
	free(b->v);
	*b = (struct argv_buf){0};
}

void argv_runtime(struct argv_buf *b, const struct agent_conf *c)
{
	argv_add(b, c->runtime);
	argv_add(b, "--root");
	argv_add(b, c->root);
	argv_add(b, "--run-dir");
	argv_add(b, c->run_dir);
}

/* ------------------------------------------------------------ spawning */

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct child {
	pid_t pid;
	int pidfd;
	int out, err, eno, in; /* our ends, -1 when closed */
};

static void child_close(struct child *ch)
{
	hsp_closep(&ch->pidfd);
	hsp_closep(&ch->out);
	hsp_closep(&ch->err);
	hsp_closep(&ch->eno);
	hsp_closep(&ch->in);
}

/* Our end non-blocking; the child's end stays blocking (a child must not
 * see EAGAIN on its stdout). */
static int make_pipe(int p[2], int ours)
{
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	if (fcntl(p[ours], F_SETFL, O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

static void spawn_attrs(posix_spawnattr_t *at)
{
	sigset_t none, dfl;
	sigemptyset(&none);
	sigemptyset(&dfl);
	/* The agent blocks these for its sigwait thread and ignores SIGPIPE;
	 * both would otherwise be inherited. */
	sigaddset(&dfl, SIGPIPE);
	sigaddset(&dfl, SIGTERM);
	sigaddset(&dfl, SIGINT);
	sigaddset(&dfl, SIGHUP);
	posix_spawnattr_init(at);
	posix_spawnattr_setsigmask(at, &none);
	posix_spawnattr_setsigdefault(at, &dfl);
	posix_spawnattr_setpgroup(at, 0);
	posix_spawnattr_setflags(at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
					 POSIX_SPAWN_SETPGROUP);
}

static int spawn_child(const struct run_spec *spec, int in, int out, int errfd, int eno, pid_t *pid)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	posix_spawn_file_actions_init(&fa);
	if (in >= 0)
		posix_spawn_file_actions_adddup2(&fa, in, 0);
	else
		posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, out, 1);
	posix_spawn_file_actions_adddup2(&fa, errfd, 2);
	posix_spawn_file_actions_adddup2(&fa, eno, 3);
	spawn_attrs(&at);
	int r = strchr(spec->argv[0], '/')
		    ? posix_spawn(pid, spec->argv[0], &fa, &at, spec->argv, spec->envp)
		    : posix_spawnp(pid, spec->argv[0], &fa, &at, spec->argv, spec->envp);
	posix_spawnattr_destroy(&at);
	posix_spawn_file_actions_destroy(&fa);
	return -r;
}

/* fd 3 in the child is the errno pipe; keep our copy off 3 so the dup2
 * above always runs (and clears close-on-exec). */
static int off_three(int fd)
{
	if (fd != 3)
		return fd;
	int d = fcntl(fd, F_DUPFD_CLOEXEC, 4);
	close(fd);
	return d;
}

static int child_start(const struct run_spec *spec, struct child *ch, hsp_error_t *err)
{
	int o[2] = {-1, -1}, e[2] = {-1, -1}, n[2] = {-1, -1}, i[2] = {-1, -1};
	bool file_in = spec->stdin_fd > 2, file_out = spec->stdout_fd > 2;
	int r = file_out ? 0 : make_pipe(o, 0);
	if (r == 0)
		r = make_pipe(e, 0);
	if (r == 0)
		r = make_pipe(n, 0);
	if (r == 0 && spec->in_len > 0 && !file_in)
		r = make_pipe(i, 1);
	if (r == 0 && (n[1] = off_three(n[1])) < 0)
		r = -errno;
	if (r == 0)
		r = spawn_child(spec, file_in ? spec->stdin_fd : i[0],
				file_out ? spec->stdout_fd : o[1], e[1], n[1], &ch->pid);
	/* The child's ends are the child's now (the caller's files stay his). */
	hsp_closep(&o[1]);
	hsp_closep(&e[1]);
	hsp_closep(&n[1]);
	hsp_closep(&i[0]);
	*ch = (struct child){.pid = r == 0 ? ch->pid : -1,
			     .pidfd = -1,
			     .out = o[0],
			     .err = e[0],
			     .eno = n[0],
			     .in = i[1]};
	/* Without pidfds (valgrind 3.19 lacks the syscall) the exit is found
	 * by polling waitpid instead: see run_program. */
	if (r == 0 && (ch->pidfd = pidfd_open(ch->pid, 0)) < 0 && errno != ENOSYS) {
		r = -errno;
		kill(ch->pid, SIGKILL);
		waitpid(ch->pid, NULL, 0);
	}
	if (r < 0) {
		child_close(ch);
		return hsp_make_errno(err, -r, "spawn `%s`", spec->argv[0]);
	}
	return 0;
}

/* ------------------------------------------------------------ output */

static void append(char **buf, size_t *len, size_t max, const char *data, size_t n)
{
	if (*len >= max)
		return;
	if (n > max - *len)
		n = max - *len;
	char *b = realloc(*buf, *len + n + 1);
	if (b == NULL)
		abort();
	memcpy(b + *len, data, n);
	*len += n;
	b[*len] = '\0';
	*buf = b;
}

struct pump {
	const struct run_spec *spec;
	struct run_out *r;
	struct child *ch;
	char eno[32];
	size_t eno_len;
	size_t in_off;
};

/* One read from a pipe: 1 data, 0 EOF (the fd is closed), -1 nothing now. */
static int read_pipe(struct pump *p, int *fd, int stream)
{
	char buf[AGENT_CHUNK_MAX];
	ssize_t n = read(*fd, buf, sizeof(buf));
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return -1;
	if (n <= 0) {
		hsp_closep(fd);
		return 0;
	}
	struct run_out *r = p->r;
	if (stream == 3) {
		size_t room = sizeof(p->eno) - 1 - p->eno_len;
		size_t k = (size_t)n < room ? (size_t)n : room;
		memcpy(p->eno + p->eno_len, buf, k);
		p->eno_len += k;
		p->eno[p->eno_len] = '\0';
		r->err_no = atoi(p->eno);
		return 1;
	}
	/* Once the runtime reported an errno, what follows on stderr is its
	 * own message, not the command's. */
	bool to_caller = p->spec->on_output && (stream == RUN_STDOUT || p->eno_len == 0);
	if (to_caller)
		p->spec->on_output(p->spec->ud, stream, buf, (size_t)n);
	else if (stream == RUN_STDOUT)
		append(&r->out, &r->out_len, CAPTURE_OUT_MAX, buf, (size_t)n);
	else
		append(&r->err, &r->err_len, CAPTURE_ERR_MAX, buf, (size_t)n);
	return 1;
}

static void write_stdin(struct pump *p)
{
	const char *in = p->spec->in;
	ssize_t n = write(p->ch->in, in + p->in_off, p->spec->in_len - p->in_off);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	/* EPIPE: the child does not read its stdin; that is its business. */
	if (n < 0 || (p->in_off += (size_t)n) >= p->spec->in_len)
		hsp_closep(&p->ch->in);
}

/* Handles one poll round in the order errno, stdout, stderr: see the
 * comment at the top. */
static void handle(struct pump *p, struct pollfd *f)
{
	struct child *ch = p->ch;
	if (ch->eno >= 0 && f[2].revents)
		read_pipe(p, &ch->eno, 3);
	if (ch->out >= 0 && f[0].revents)
		read_pipe(p, &ch->out, RUN_STDOUT);
	if (ch->err >= 0 && f[1].revents)
		read_pipe(p, &ch->err, RUN_STDERR);
	if (ch->in >= 0 && f[3].revents)
		write_stdin(p);
}

static void drain(struct pump *p)
{
	struct child *ch = p->ch;
	for (int i = 0; i < DRAIN_READS && ch->eno >= 0 && read_pipe(p, &ch->eno, 3) > 0; i++)
		;
	for (int i = 0; i < DRAIN_READS && ch->out >= 0 && read_pipe(p, &ch->out, RUN_STDOUT) > 0;
	     i++)
		;
	for (int i = 0; i < DRAIN_READS && ch->err >= 0 && read_pipe(p, &ch->err, RUN_STDERR) > 0;
	     i++)
		;
}

static int poll_timeout(const struct run_spec *spec, int64_t deadline, bool killed)
{
	if (spec->timeout_ms == 0 || killed)
		return -1;
	int64_t left = deadline - now_ms();
	return left < 0 ? 0 : left > 60000 ? 60000 : (int)left;
}

int run_program(const struct run_spec *spec, struct run_out *r, hsp_error_t *err)
{
	struct child ch;
	*r = (struct run_out){.status = -1};
	int ret = child_start(spec, &ch, err);
	if (ret < 0)
		return ret;
	if (spec->on_start)
		spec->on_start(spec->ud, ch.pid);
	struct pump p = {.spec = spec, .r = r, .ch = &ch};
	int64_t deadline = now_ms() + spec->timeout_ms;
	bool exited = false, reaped = false;
	while (!exited) {
		struct pollfd f[5] = {
		    {.fd = ch.out, .events = POLLIN},	{.fd = ch.err, .events = POLLIN},
		    {.fd = ch.eno, .events = POLLIN},	{.fd = ch.in, .events = POLLOUT},
		    {.fd = ch.pidfd, .events = POLLIN},
		};
		int ms = poll_timeout(spec, deadline, r->timed_out);
		if (ch.pidfd < 0 && (ms < 0 || ms > 50))
			ms = 50;
		int n = poll(f, 5, ms);
		if (n < 0 && errno != EINTR)
			break;
		if (n > 0)
			handle(&p, f);
		if (ch.pidfd >= 0)
			exited = n > 0 && f[4].revents;
		else
			exited = reaped = waitpid(ch.pid, &r->status, WNOHANG) == ch.pid;
		if (!exited && !r->timed_out && spec->timeout_ms && now_ms() >= deadline) {
			r->timed_out = true;
			kill(-ch.pid, SIGKILL);
		}
	}
	/* All the child wrote before it exited is in the pipes now. */
	drain(&p);
	while (!reaped && waitpid(ch.pid, &r->status, 0) < 0 && errno == EINTR)
		;
	child_close(&ch);
	return 0;
}

void run_out_clear(struct run_out *r)
{
	free(r->out);
	free(r->err);
	*r = (struct run_out){.status = -1};
}

int run_runtime_io(const struct agent_conf *c, char *const *args, unsigned timeout_ms, int in_fd,
		   int out_fd, struct run_out *r, hsp_error_t *err)
{
	struct argv_buf b = {0};
	argv_runtime(&b, c);
	for (char *const *a = args; *a; a++)
		argv_add(&b, *a);
	struct run_spec spec = {.argv = b.v,
				.envp = c->child_env,
				.timeout_ms = timeout_ms,
				.stdin_fd = in_fd,
				.stdout_fd = out_fd};
	int ret = run_program(&spec, r, err);
	argv_clear(&b);
	return ret;
}

int run_runtime(const struct agent_conf *c, char *const *args, unsigned timeout_ms,
		struct run_out *r, hsp_error_t *err)
{
	return run_runtime_io(c, args, timeout_ms, -1, -1, r, err);
}

/* ------------------------------------------------------------ outcome */

int errno_to_code(int e)
{
	switch (e) {
	case 0:
		return GRPC_STATUS_OK;
	case ENOENT:
		return GRPC_STATUS_NOT_FOUND;
	case EEXIST:
		return GRPC_STATUS_ALREADY_EXISTS;
	case EINVAL:
	case ERANGE:
	case ENAMETOOLONG:
		return GRPC_STATUS_INVALID_ARGUMENT;
	case EBUSY:
	case EALREADY:
	case EINPROGRESS:
	case ESRCH:
	case ENOTEMPTY:
		return GRPC_STATUS_FAILED_PRECONDITION;
	case ENOSPC:
	case ENOMEM:
	case EDQUOT:
		return GRPC_STATUS_RESOURCE_EXHAUSTED;
	case ETIMEDOUT:
		return GRPC_STATUS_DEADLINE_EXCEEDED;
	case ECONNREFUSED:
	case EHOSTUNREACH:
	case ENOTCONN:
	case ENETUNREACH:
	case ESHUTDOWN:
		return GRPC_STATUS_UNAVAILABLE;
	default:
		return GRPC_STATUS_INTERNAL;
	}
}

char *run_message(const struct run_out *r)
{
	static const char prefix[] = "hsp-runtime: ";
	const char *best = NULL, *last = NULL;
	size_t best_len = 0, last_len = 0;
	for (const char *line = r->err; line && *line;) {
		const char *nl = strchr(line, '\n');
		size_t len = nl ? (size_t)(nl - line) : strlen(line);
		if (len > 0) {
			last = line;
			last_len = len;
		}
		if (strncmp(line, prefix, sizeof(prefix) - 1) == 0) {
			best = line + sizeof(prefix) - 1;
			best_len = len - (sizeof(prefix) - 1);
		}
		line = nl ? nl + 1 : NULL;
	}
	if (best == NULL) {
		best = last;
		best_len = last_len;
	}
	return best ? strndup(best, best_len) : NULL;
}

static char *status_text(const struct run_out *r)
{
	if (WIFSIGNALED(r->status))
		return hsp_strdup_printf("hsp-runtime killed by signal %d", WTERMSIG(r->status));
	return hsp_strdup_printf("hsp-runtime failed with status %d", WEXITSTATUS(r->status));
}

int run_code(const struct run_out *r, char **msg)
{
	int code;
	if (r->timed_out)
		code = GRPC_STATUS_DEADLINE_EXCEEDED;
	else if (r->err_no > 0)
		code = errno_to_code(r->err_no);
	else if (WIFEXITED(r->status) && WEXITSTATUS(r->status) == 0)
		code = GRPC_STATUS_OK;
	else if (WIFEXITED(r->status) && WEXITSTATUS(r->status) == 2)
		code = GRPC_STATUS_INVALID_ARGUMENT; /* a usage error */
	else
		code = GRPC_STATUS_INTERNAL;
	if (code == GRPC_STATUS_OK)
		*msg = strdup("");
	else if (r->timed_out)
		*msg = strdup("hsp-runtime did not finish in time and was killed");
	else if ((*msg = run_message(r)) == NULL)
		*msg = r->err_no > 0 ? strdup(strerror(r->err_no)) : status_text(r);
	if (*msg == NULL)
		abort();
	return code;
}
