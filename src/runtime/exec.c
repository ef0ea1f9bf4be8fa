/* Running a command inside a running VE.
 *
 * A helper child joins the VE's cgroups and, through a pidfd of its init,
 * all of its namespaces at once; its own child is then inside the VE's pid
 * namespace and execs the command with the VE's seccomp filter and bounding
 * set.  Until exec the processes are non-dumpable and run as the VE's root
 * (an id unmapped on the host), so nothing in the VE can open them through
 * /proc or write the host's runtime binary (the runc CVE-2019-5736 class);
 * every fd but stdio is closed at exec and the cwd is inside the VE (the
 * CVE-2024-21626 class). */
#define _GNU_SOURCE
#include "internal.h"
#include "seccomp.h"
#include "caps.h"
#include "errpipe.h"
#include "spawn.h"
#include "utils.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#define ALL_NS                                                                                     \
	(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET | \
	 CLONE_NEWCGROUP)

struct exec_ctx {
	const struct hsp_exec_opts *o;
	struct hsp_cgroup *cg;
	struct hsp_seccomp_prog *seccomp;
	int pidfd;
	int errfd;	   /* CLOEXEC pipe: a failure before exec is written here */
	int sockfd;	   /* tty mode: the pty master goes back over this */
	unsigned pause_ms; /* HSP_TEST_EXEC_PAUSE_MS: widens the pre-exec window */
};

#define FAIL(fmt, ...) hsp_errpipe_fail(x->errfd, errno, fmt ": %s", ##__VA_ARGS__, strerror(errno))

/* Inside the VE: a pty from the VE's own devpts becomes our terminal. */
static void setup_tty(struct exec_ctx *x)
{
	int master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (master < 0)
		FAIL("open /dev/ptmx in VE");
	if (grantpt(master) < 0 || unlockpt(master) < 0)
		FAIL("unlock pty");
	char name[64];
	if (ptsname_r(master, name, sizeof(name)) != 0)
		FAIL("ptsname");
	if (setsid() < 0)
		FAIL("setsid");
	int slave = open(name, O_RDWR | O_CLOEXEC);
	if (slave < 0)
		FAIL("open %s", name);
	if (ioctl(slave, TIOCSCTTY, 0) < 0)
		FAIL("set controlling terminal");
	for (int i = 0; i < 3; i++)
		if (dup2(slave, i) < 0)
			FAIL("dup2");
	int r = hsp_send_fd(x->sockfd, master);
	if (r < 0) {
		errno = -r;
		FAIL("pass pty to caller");
	}
	close(master);
	close(slave);
}

static __attribute__((noreturn)) void inner_main(struct exec_ctx *x)
{
	const struct hsp_exec_opts *o = x->o;
	if (o->tty)
		setup_tty(x);
	if (chdir(o->cwd ? o->cwd : "/") < 0)
		FAIL("chdir `%s` in VE", o->cwd ? o->cwd : "/");
	/* Seccomp needs CAP_SYS_ADMIN, which setresuid to a non-root user
	 * would take away: load it while still the VE's root. */
	int r = hsp_seccomp_install(x->seccomp);
	if (r == 0)
		r = hsp_caps_drop();
	if (r < 0) {
		errno = -r;
		FAIL("confine command");
	}
	if (setgroups(0, NULL) < 0 || setresgid(o->gid, o->gid, o->gid) < 0 ||
	    setresuid(o->uid, o->uid, o->uid) < 0)
		FAIL("switch to uid %u gid %u in VE", o->uid, o->gid);
	if (syscall(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
		FAIL("close_range");
	/* Security tests hold the process here, still the host's runtime
	 * binary inside the VE, to attack it deterministically. */
	if (x->pause_ms)
		usleep(x->pause_ms * 1000U);
	execvpe(o->argv[0], o->argv, o->env ? o->env : hsp_default_env);
	hsp_errpipe_fail(x->errfd, errno, "exec `%s` in VE: %s", o->argv[0], strerror(errno));
}

static __attribute__((noreturn)) void outer_main(struct exec_ctx *x)
{
	prctl(PR_SET_DUMPABLE, 0);
	hsp_error_t err = NULL;
	if (x->cg && hsp_cgroup_attach(x->cg, getpid(), &err) < 0)
		hsp_errpipe_fail(x->errfd, err->status, "%s", err->msg);
	if (setns(x->pidfd, ALL_NS) < 0)
		FAIL("join VE namespaces");
	pid_t pid = fork();
	if (pid < 0)
		FAIL("fork in VE");
	if (pid == 0)
		inner_main(x);
	close(x->errfd);
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			_exit(127);
	_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
}

static volatile sig_atomic_t winch;
static void on_winch(int sig)
{
	(void)sig;
	winch = 1;
}

static void copy_winsize(int master)
{
	struct winsize ws;
	if (ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) == 0)
		ioctl(master, TIOCSWINSZ, &ws);
}

static int pump(int from, int to)
{
	char buf[4096];
	ssize_t n = read(from, buf, sizeof(buf));
	if (n <= 0)
		return n < 0 && errno == EINTR ? 1 : 0;
	for (ssize_t off = 0; off < n;) {
		ssize_t w = write(to, buf + off, n - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return 0;
		off += w;
	}
	return 1;
}

/* Relays the caller's terminal and the VE's pty until the pty closes. */
static void proxy_tty(int master)
{
	struct termios saved, raw;
	bool is_tty = tcgetattr(STDIN_FILENO, &saved) == 0;
	if (is_tty) {
		raw = saved;
		cfmakeraw(&raw);
		tcsetattr(STDIN_FILENO, TCSANOW, &raw);
		copy_winsize(master);
	}
	struct sigaction sa = {.sa_handler = on_winch}, old;
	sigaction(SIGWINCH, &sa, &old);
	struct pollfd p[2] = {{.fd = STDIN_FILENO, .events = POLLIN},
			      {.fd = master, .events = POLLIN}};
	for (;;) {
		if (winch) {
			winch = 0;
			copy_winsize(master);
		}
		int r = poll(p, 2, -1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			break;
		if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
			if (!pump(master, STDOUT_FILENO))
				break;
		}
		if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
			if (!pump(STDIN_FILENO, master))
				p[0].fd = -1; /* caller's input ended; output may go on */
		}
	}
	sigaction(SIGWINCH, &old, NULL);
	if (is_tty)
		tcsetattr(STDIN_FILENO, TCSANOW, &saved);
}

static int run(struct exec_ctx *x, const char *name, int *status, hsp_error_t *err)
{
	int errp[2], sk[2] = {-1, -1};
	if (pipe2(errp, O_CLOEXEC) < 0)
		return hsp_make_errno(err, errno, "pipe");
	if (x->o->tty && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sk) < 0) {
		close(errp[0]);
		close(errp[1]);
		return hsp_make_errno(err, errno, "socketpair");
	}
	x->errfd = errp[1];
	x->sockfd = sk[1];
	pid_t pid = fork();
	if (pid == 0) {
		close(errp[0]);
		if (sk[0] >= 0)
			close(sk[0]);
		outer_main(x);
	}
	int e = errno;
	close(errp[1]);
	if (sk[1] >= 0)
		close(sk[1]);
	if (pid < 0) {
		close(errp[0]);
		if (sk[0] >= 0)
			close(sk[0]);
		return hsp_make_errno(err, e, "fork");
	}
	if (sk[0] >= 0) {
		int master = hsp_recv_fd(sk[0]);
		close(sk[0]);
		if (master >= 0) {
			proxy_tty(master);
			close(master);
		}
	}
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	cleanup_free char *prefix = hsp_strdup_printf("VE `%s`: ", name);
	int r = hsp_errpipe_read(errp[0], prefix, err);
	close(errp[0]);
	if (r < 0)
		return r;
	*status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	return 0;
}

int hsp_ve_exec(hsp_runtime_t *rt, const char *name, const struct hsp_exec_opts *o, int *status,
		hsp_error_t *err)
{
	int r = hsp_validate_name(name, "VE", err);
	if (r < 0)
		return r;
	if (o->argv == NULL || o->argv[0] == NULL || o->argv[0][0] == '\0')
		return hsp_make_error(err, EINVAL, "exec: no command given");
	if (o->uid >= HSP_IDMAP_SIZE || o->gid >= HSP_IDMAP_SIZE)
		return hsp_make_error(err, EINVAL, "exec: uid and gid must be below %u",
				      HSP_IDMAP_SIZE);
	struct hsp_ve_config c;
	r = hsp_config_load(rt, name, &c, err);
	if (r < 0)
		return r;
	hsp_config_clear(&c);
	struct hsp_run_state st;
	if (!hsp_ve_is_running(rt, name) || hsp_state_load(rt, name, &st, NULL) < 0)
		return hsp_make_error(err, EINVAL, "VE `%s` is not running", name);

	cleanup_free char *cache = hsp_cache_dir(rt);
	const char *pause = getenv("HSP_TEST_EXEC_PAUSE_MS");
	struct exec_ctx x = {.o = o,
			     .pidfd = hsp_state_init_pidfd(&st),
			     .pause_ms = pause ? (unsigned)strtoul(pause, NULL, 10) % 10000 : 0};
	if (x.pidfd < 0) {
		r = hsp_make_error(err, EINVAL, "VE `%s` is not running", name);
		goto out;
	}
	/* A VE started without cgroups has none to join. */
	r = st.cgroup ? hsp_cgroup_open(st.cgroup, &x.cg, err) : 0;
	if (r == 0)
		r = hsp_seccomp_load_cached(cache, &x.seccomp, err);
	if (r == 0)
		r = run(&x, name, status, err);
out:
	if (x.pidfd >= 0)
		close(x.pidfd);
	hsp_cgroup_free(x.cg);
	hsp_seccomp_free(x.seccomp);
	hsp_state_clear(&st);
	return r;
}
