/* CephFS pools (ceph.h).  libcephfs work runs in the helper hsp-ceph, mounts
 * in ceph-fuse or mount.ceph: this side spawns them, each with a deadline
 * after which it is killed, and learns the rest from /proc.  A cluster that
 * does not answer must cost a caller its timeout, never a hang. */
#define _GNU_SOURCE
#include "ceph.h"
#include "errpipe.h"
#include "internal.h"
#include "utils.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#define FUSE_SUPER_MAGIC 0x65735546
#define CEPH_SUPER_MAGIC 0x00c36400
/* What a child gets beyond its own timeout before it is killed: its own
 * failure message is better than ours. */
#define GRACE_MS 500
/* What ceph-fuse gets to end its MDS session after an unmount, and after
 * SIGTERM; flushing dirty data can take a while. */
#define FUSE_EXIT_MS 10000
#define FUSE_TERM_MS 5000
#define FUSE_BUSY_MS 1000
#define OUTPUT_MAX (1 << 20)

/* --- arguments ------------------------------------------------------------ */

/* A ".snap" component would name a snapshot rather than a directory. */
static int check_components(const char *path, const char *what, hsp_error_t *err)
{
	const char *s = *path == '/' ? path + 1 : path;
	for (;;) {
		size_t n = strcspn(s, "/");
		if (n == 0 || (n == 1 && s[0] == '.') || (n == 2 && strncmp(s, "..", 2) == 0) ||
		    (n == 5 && strncmp(s, ".snap", 5) == 0))
			return hsp_make_error(err, EINVAL,
					      "invalid %s `%s`: empty, \".\", \"..\" or \".snap\" "
					      "component",
					      what, path);
		if (s[n] == '\0')
			return 0;
		s += n + 1;
	}
}

static int check_file(const char *path, const char *what, hsp_error_t *err)
{
	if (path == NULL || *path == '\0')
		return hsp_make_error(err, EINVAL, "invalid ceph %s: empty path", what);
	if (access(path, R_OK) < 0)
		return hsp_make_errno(err, errno, "ceph %s `%s`", what, path);
	return 0;
}

int hsp_ceph_validate_pool(const struct hsp_ceph_pool *p, hsp_error_t *err)
{
	if (p == NULL)
		return hsp_make_error(err, EINVAL, "no ceph pool given");
	int r = check_file(p->conf, "conf", err);
	if (r == 0)
		r = check_file(p->keyring, "keyring", err);
	if (r < 0)
		return r;
	size_t n = p->id ? strlen(p->id) : 0;
	if (n == 0 || n > 64 ||
	    strspn(p->id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			  "0123456789_.-") != n)
		return hsp_make_error(
		    err, EINVAL, "invalid ceph id `%s`: use 1-64 letters, digits, '_', '.', '-'",
		    p->id ? p->id : "");
	if (p->fs_path == NULL || p->fs_path[0] != '/')
		return hsp_make_error(err, EINVAL, "invalid ceph fs path `%s`: must be absolute",
				      p->fs_path ? p->fs_path : "");
	return strcmp(p->fs_path, "/") == 0 ? 0 : check_components(p->fs_path, "ceph fs path", err);
}

int hsp_ceph_validate_rel(const char *rel, hsp_error_t *err)
{
	if (rel == NULL || *rel == '\0' || *rel == '/')
		return hsp_make_error(err, EINVAL, "invalid ceph directory `%s`: must be relative",
				      rel ? rel : "");
	return strcmp(rel, ".") == 0 ? 0 : check_components(rel, "ceph directory", err);
}

/* The mount point as ceph-fuse's argv and mountinfo show it.  Only the
 * parent is resolved: the mount point of a dead FUSE mount fails stat. */
static int canonical_mnt(const char *mnt, char **out, hsp_error_t *err)
{
	if (mnt == NULL || mnt[0] != '/' || strcmp(mnt, "/") == 0)
		return hsp_make_error(err, EINVAL, "invalid mount point `%s`: must be absolute",
				      mnt ? mnt : "");
	cleanup_free char *copy = strdup(mnt);
	if (copy == NULL)
		return hsp_make_errno(err, ENOMEM, "mount point");
	size_t n = strlen(copy);
	while (n > 1 && copy[n - 1] == '/')
		copy[--n] = '\0';
	char *slash = strrchr(copy, '/');
	const char *base = slash + 1;
	*slash = '\0';
	if (*base == '\0' || strcmp(base, ".") == 0 || strcmp(base, "..") == 0)
		return hsp_make_error(err, EINVAL, "invalid mount point `%s`", mnt);
	cleanup_free char *parent = realpath(*copy ? copy : "/", NULL);
	if (parent == NULL)
		return hsp_make_errno(err, errno, "mount point `%s`", mnt);
	*out = hsp_strdup_printf("%s/%s", strcmp(parent, "/") == 0 ? "" : parent, base);
	return 0;
}

/* --- child processes ------------------------------------------------------ */

struct proc {
	const char *prog; /* a path, or a name looked up in PATH */
	char *const *argv;
	int fd3;	   /* becomes fd 3 of the child (a secret), or -1 */
	bool stderr_apart; /* stderr to a pipe of its own, for an errpipe record */
};

struct proc_result {
	int status;
	char *output; /* stdout (and stderr unless apart), NUL-terminated */
	int err_fd;   /* with stderr_apart: its read end, for hsp_errpipe_read */
};

static void proc_result_clear(struct proc_result *res)
{
	free(res->output);
	if (res->err_fd >= 0)
		close(res->err_fd);
}

/* dup2 onto itself would keep close-on-exec set. */
static int move_fd(int from, int to)
{
	return from == to ? fcntl(to, F_SETFD, 0) : dup2(from, to);
}

static void __attribute__((noreturn)) child_exec(const struct proc *pr, int out_w, int err_w)
{
	int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (null < 0 || move_fd(null, 0) < 0 || move_fd(out_w, 1) < 0 || move_fd(err_w, 2) < 0 ||
	    (pr->fd3 >= 0 && move_fd(pr->fd3, 3) < 0))
		hsp_errpipe_fail(err_w, errno, "exec `%s`: set up fds: %s", pr->prog,
				 strerror(errno));
	/* ceph-fuse lives on as a daemon: it must not keep a caller's fds. */
	syscall(SYS_close_range, pr->fd3 >= 0 ? 4 : 3, ~0U, CLOSE_RANGE_CLOEXEC);
	execvp(pr->prog, pr->argv);
	hsp_errpipe_fail(2, errno, "exec `%s`: %s", pr->prog, strerror(errno));
}

/* Appends what is available on a non-blocking fd; -1 once it is at EOF. */
static int drain(int fd, char **buf, size_t *len)
{
	char chunk[4096];
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n == 0)
			return -1;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return 0;
		if (*len + n > OUTPUT_MAX)
			continue;
		char *b = realloc(*buf, *len + n + 1);
		if (b == NULL)
			continue;
		memcpy(b + *len, chunk, n);
		*len += n;
		b[*len] = '\0';
		*buf = b;
	}
}

static int reap(pid_t pid, int *status)
{
	while (waitpid(pid, status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return 0;
}

/* Waits for the child, collecting its output, for timeout_ms; then it is
 * killed: -ETIMEDOUT. */
static int proc_wait(pid_t pid, int out_r, unsigned timeout_ms, struct proc_result *res,
		     hsp_error_t *err)
{
	cleanup_close int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0) {
		int e = errno;
		kill(pid, SIGKILL);
		reap(pid, &res->status);
		return hsp_make_errno(err, e, "pidfd_open");
	}
	size_t len = 0;
	uint64_t deadline = hsp_now_ns() + (uint64_t)timeout_ms * 1000000;
	for (;;) {
		struct pollfd fds[2] = {{pidfd, POLLIN, 0}, {out_r, POLLIN, 0}};
		uint64_t now = hsp_now_ns();
		int left = now >= deadline ? 0 : (int)((deadline - now) / 1000000) + 1;
		int n = poll(fds, out_r >= 0 ? 2 : 1, left);
		if (n < 0 && errno != EINTR)
			return hsp_make_errno(err, errno, "poll");
		if (out_r >= 0 && fds[1].revents && drain(out_r, &res->output, &len) < 0)
			out_r = -1;
		if (fds[0].revents) {
			if (out_r >= 0)
				drain(out_r, &res->output, &len);
			int r = reap(pid, &res->status);
			return r < 0 ? hsp_make_error(err, -r, "waitpid: %s", strerror(-r)) : 0;
		}
		if (n == 0 && hsp_now_ns() >= deadline) {
			kill(pid, SIGKILL);
			reap(pid, &res->status);
			return -ETIMEDOUT;
		}
	}
}

/* Runs pr with stdin /dev/null and waits at most timeout_ms.  -ETIMEDOUT
 * (without a message: the caller knows what was waited for) when it had to
 * be killed. */
static int proc_run(const struct proc *pr, unsigned timeout_ms, struct proc_result *res,
		    hsp_error_t *err)
{
	*res = (struct proc_result){.err_fd = -1};
	int out[2], errp[2] = {-1, -1};
	if (pipe2(out, O_CLOEXEC) < 0)
		return hsp_make_errno(err, errno, "run %s: pipe", pr->prog);
	if (pr->stderr_apart && pipe2(errp, O_CLOEXEC) < 0) {
		int e = errno;
		close(out[0]);
		close(out[1]);
		return hsp_make_errno(err, e, "run %s: pipe", pr->prog);
	}
	pid_t pid = fork();
	if (pid == 0)
		child_exec(pr, out[1], pr->stderr_apart ? errp[1] : out[1]);
	int e = errno;
	close(out[1]);
	if (errp[1] >= 0)
		close(errp[1]);
	res->err_fd = errp[0];
	if (pid < 0) {
		close(out[0]);
		return hsp_make_errno(err, e, "run %s: fork", pr->prog);
	}
	fcntl(out[0], F_SETFL, O_NONBLOCK);
	int r = proc_wait(pid, out[0], timeout_ms, res, err);
	close(out[0]);
	return r;
}

static bool exited_ok(const struct proc_result *res)
{
	return WIFEXITED(res->status) && WEXITSTATUS(res->status) == 0;
}

/* --- hsp-ceph ------------------------------------------------------------- */

static int run_hsp_ceph(const struct hsp_ceph_pool *p, const char *verb, const char *rel,
			const char *snap, unsigned timeout_s, char **output, hsp_error_t *err)
{
	cleanup_free char *prog = hsp_helper_path("HSP_CEPH", "hsp-ceph");
	char t[16];
	snprintf(t, sizeof(t), "%u", timeout_s);
	const char *argv[17] = {"hsp-ceph",  verb,	 "--conf",    p->conf,
				"--id",	     p->id,	 "--keyring", p->keyring,
				"--fs-path", p->fs_path, "--timeout", t};
	size_t n = 12;
	if (rel) {
		argv[n++] = "--path";
		argv[n++] = rel;
	}
	if (snap) {
		argv[n++] = "--snap";
		argv[n++] = snap;
	}
	struct proc pr = {
	    .prog = prog, .argv = (char *const *)argv, .fd3 = -1, .stderr_apart = true};
	struct proc_result res;
	int r = proc_run(&pr, timeout_s * 1000 + GRACE_MS, &res, err);
	if (r == -ETIMEDOUT)
		r = hsp_make_error(err, ETIMEDOUT, "ceph %s `%s`: no answer within %u s", verb,
				   p->conf, timeout_s);
	if (r == 0 && !exited_ok(&res)) {
		cleanup_free char *prefix = hsp_strdup_printf("ceph %s `%s`: ", verb, p->conf);
		r = hsp_errpipe_read(res.err_fd, prefix, err);
		if (r >= 0)
			r = hsp_make_error(err, EIO, "ceph %s: hsp-ceph failed without a message",
					   verb);
	}
	if (r == 0 && output)
		*output = steal_pointer(&res.output);
	proc_result_clear(&res);
	return r;
}

int hsp_ceph_check(const struct hsp_ceph_pool *p, unsigned timeout_s, hsp_error_t *err)
{
	int r = hsp_ceph_validate_pool(p, err);
	if (r < 0)
		return r;
	if (timeout_s == 0 || timeout_s > 3600)
		return hsp_make_error(err, EINVAL, "ceph check: timeout must be 1-3600 s");
	return run_hsp_ceph(p, "check", NULL, NULL, timeout_s, NULL, err);
}

static int validate_snap(const struct hsp_ceph_pool *p, const char *rel, const char *snap,
			 hsp_error_t *err)
{
	int r = hsp_ceph_validate_pool(p, err);
	if (r == 0)
		r = hsp_ceph_validate_rel(rel, err);
	if (r == 0 && snap)
		r = hsp_validate_name(snap, "snapshot", err);
	return r;
}

int hsp_ceph_snap_create(const struct hsp_ceph_pool *p, const char *rel, const char *snap,
			 hsp_error_t *err)
{
	int r = validate_snap(p, rel, snap, err);
	if (r == 0)
		r = run_hsp_ceph(p, "snap-create", rel, snap, HSP_CEPH_OP_TIMEOUT_S, NULL, err);
	return r;
}

int hsp_ceph_snap_remove(const struct hsp_ceph_pool *p, const char *rel, const char *snap,
			 hsp_error_t *err)
{
	int r = validate_snap(p, rel, snap, err);
	if (r == 0)
		r = run_hsp_ceph(p, "snap-remove", rel, snap, HSP_CEPH_OP_TIMEOUT_S, NULL, err);
	return r;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* One name a line into a sorted, NULL-terminated vector. */
static int split_lines(char *text, char ***names, hsp_error_t *err)
{
	size_t cap = 1, n = 0;
	for (const char *c = text; c && *c; c++)
		cap += *c == '\n';
	cleanup_strv char **v = calloc(cap + 1, sizeof(char *));
	if (v == NULL)
		return hsp_make_errno(err, ENOMEM, "snapshot list");
	for (char *save = NULL, *l = text ? strtok_r(text, "\n", &save) : NULL; l;
	     l = strtok_r(NULL, "\n", &save))
		if ((v[n++] = strdup(l)) == NULL)
			return hsp_make_errno(err, ENOMEM, "snapshot list");
	qsort(v, n, sizeof(char *), cmp_str);
	*names = steal_pointer(&v);
	return (int)n;
}

int hsp_ceph_snap_list(const struct hsp_ceph_pool *p, const char *rel, char ***names,
		       hsp_error_t *err)
{
	cleanup_free char *out = NULL;
	int r = validate_snap(p, rel, NULL, err);
	if (r == 0)
		r = run_hsp_ceph(p, "snap-list", rel, NULL, HSP_CEPH_OP_TIMEOUT_S, &out, err);
	if (r < 0)
		return r;
	return split_lines(out, names, err);
}

/* --- mount state ---------------------------------------------------------- */

/* Undoes mountinfo's octal escapes (\040 for a space...) in place. */
static void unescape(char *s)
{
	char *w = s;
	for (char *r = s; *r; r++, w++) {
		if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' &&
		    r[3] >= '0' && r[3] <= '7') {
			*w = (char)((r[1] - '0') << 6 | (r[2] - '0') << 3 | (r[3] - '0'));
			r += 3;
		} else {
			*w = *r;
		}
	}
	*w = '\0';
}

/* The file system type of the topmost mount at mnt (malloc'd), NULL if
 * nothing is mounted there. */
static char *mounted_type(const char *mnt)
{
	cleanup_fclose FILE *f = fopen("/proc/self/mountinfo", "re");
	cleanup_free char *line = NULL;
	size_t cap = 0;
	char *type = NULL;
	while (f && getline(&line, &cap, f) > 0) {
		char *save = NULL, *field = strtok_r(line, " ", &save);
		for (int i = 1; field && i < 5; i++)
			field = strtok_r(NULL, " ", &save);
		if (field == NULL)
			continue;
		unescape(field);
		if (strcmp(field, mnt) != 0)
			continue;
		char *sep = strstr(save ? save : "", " - ");
		if (sep == NULL)
			continue;
		free(type);
		type = strndup(sep + 3, strcspn(sep + 3, " \n"));
	}
	return type;
}

static bool is_ceph_type(const char *type)
{
	return strcmp(type, "fuse.ceph-fuse") == 0 || strcmp(type, "ceph") == 0;
}

/* statfs of a FUSE mount waits for its daemon, forever if it is stopped:
 * it runs in a child that is killed at the deadline.  statfs is answered
 * by the monitors; a listing needs the MDS, which a client that was
 * fenced (blocklisted and evicted) no longer reaches: ESHUTDOWN, and the
 * mount is as good as dead. */
static int statfs_bounded(const char *mnt, unsigned timeout_ms)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	pid_t pid = fork();
	if (pid == 0) {
		struct statfs s;
		unsigned char e = 0;
		if (statfs(mnt, &s) < 0)
			e = (unsigned char)errno;
		else if (s.f_type != FUSE_SUPER_MAGIC && s.f_type != CEPH_SUPER_MAGIC)
			e = EMEDIUMTYPE;
		char buf[1024];
		int fd = e ? -1 : open(mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (e == 0 && (fd < 0 || syscall(SYS_getdents64, fd, buf, sizeof(buf)) < 0))
			e = (unsigned char)errno;
		_exit(write(p[1], &e, 1) == 1 ? 0 : 1);
	}
	int e = errno;
	close(p[1]);
	if (pid < 0) {
		close(p[0]);
		return -e;
	}
	struct pollfd pfd = {p[0], POLLIN, 0};
	unsigned char c = ETIMEDOUT;
	int n;
	while ((n = poll(&pfd, 1, (int)timeout_ms)) < 0 && errno == EINTR)
		;
	if (n <= 0 || read(p[0], &c, 1) != 1)
		kill(pid, SIGKILL);
	close(p[0]);
	int st;
	reap(pid, &st);
	return c == 0 ? 1 : -(int)c;
}

static int mount_state_at(const char *canon, unsigned timeout_ms)
{
	cleanup_free char *type = mounted_type(canon);
	if (type == NULL)
		return 0;
	if (!is_ceph_type(type))
		return -EMEDIUMTYPE;
	return statfs_bounded(canon, timeout_ms);
}

int hsp_ceph_mount_state(const char *mnt, unsigned timeout_ms)
{
	cleanup_free char *canon = NULL;
	hsp_error_t err = NULL;
	int r = canonical_mnt(mnt, &canon, &err);
	hsp_error_release(&err);
	return r < 0 ? r : mount_state_at(canon, timeout_ms);
}

/* --- ceph-fuse processes -------------------------------------------------- */

/* ceph-fuse processes whose last argument is mnt (not zombies: their
 * cmdline is empty).  Returns how many were stored in pids. */
static size_t fuse_pids(const char *mnt, pid_t *pids, size_t max)
{
	DIR *d = opendir("/proc");
	size_t n = 0;
	struct dirent *de;
	while (d && n < max && (de = readdir(d)) != NULL) {
		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		pid_t pid = (pid_t)atoi(de->d_name);
		char path[64], buf[4096];
		snprintf(path, sizeof(path), "/proc/%d/cmdline", pid);
		cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
		ssize_t len = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
		if (len <= 0 || buf[len - 1] != '\0')
			continue;
		const char *prog = strrchr(buf, '/') ? strrchr(buf, '/') + 1 : buf;
		const char *last = buf + len - 1;
		while (last > buf && last[-1] != '\0')
			last--;
		if (strcmp(prog, "ceph-fuse") == 0 && strcmp(last, mnt) == 0)
			pids[n++] = pid;
	}
	if (d)
		closedir(d);
	return n;
}

/* Waits until every process is gone (exited: a zombie counts as gone, PID
 * 1 here reaps no one).  true if they all are. */
pid_t hsp_ceph_mount_pid(const char *mnt)
{
	cleanup_free char *canon = NULL;
	hsp_error_t err = NULL;
	int r = canonical_mnt(mnt, &canon, &err);
	hsp_error_release(&err);
	pid_t pid = 0;
	return r == 0 && fuse_pids(canon, &pid, 1) == 1 ? pid : 0;
}

static bool wait_gone(const pid_t *pids, size_t n, unsigned timeout_ms)
{
	uint64_t deadline = hsp_now_ns() + (uint64_t)timeout_ms * 1000000;
	for (size_t i = 0; i < n; i++) {
		cleanup_close int fd = (int)syscall(SYS_pidfd_open, pids[i], 0);
		if (fd < 0)
			continue;
		uint64_t now = hsp_now_ns();
		int left = now >= deadline ? 0 : (int)((deadline - now) / 1000000) + 1;
		struct pollfd pfd = {fd, POLLIN, 0};
		int r;
		while ((r = poll(&pfd, 1, left)) < 0 && errno == EINTR)
			;
		if (r == 0)
			return false;
	}
	return true;
}

static void signal_all(const pid_t *pids, size_t n, int sig)
{
	for (size_t i = 0; i < n; i++)
		kill(pids[i], sig);
}

/* SIGTERM makes ceph-fuse unmount and close its session like an unmount
 * does; SIGKILL is for one that cannot (a cluster that does not answer). */
static int end_fuse(const char *mnt, unsigned wait_ms, hsp_error_t *err)
{
	pid_t pids[16];
	size_t n = fuse_pids(mnt, pids, 16);
	if (n == 0 || wait_gone(pids, n, wait_ms))
		return 0;
	signal_all(pids, n, SIGTERM);
	if (wait_gone(pids, n, FUSE_TERM_MS))
		return 0;
	signal_all(pids, n, SIGKILL);
	if (wait_gone(pids, n, FUSE_TERM_MS))
		return 0;
	return hsp_make_error(err, EBUSY, "ceph-fuse serving `%s` survives SIGKILL", mnt);
}

/* 0 unmounted, 1 detached lazily (busy), or -errno. */
static int detach(const char *mnt, hsp_error_t *err)
{
	if (umount2(mnt, UMOUNT_NOFOLLOW) == 0 || errno == EINVAL)
		return 0;
	if (errno == EBUSY && umount2(mnt, MNT_DETACH | UMOUNT_NOFOLLOW) == 0)
		return 1;
	return hsp_make_errno(err, errno, "unmount `%s`", mnt);
}

/* After a lazy unmount ceph-fuse serves open files until they are closed,
 * which may be never: it gets a second, then SIGTERM. */
static int umount_at(const char *canon, hsp_error_t *err)
{
	cleanup_free char *type = mounted_type(canon);
	if (type && !is_ceph_type(type))
		return hsp_make_error(err, EMEDIUMTYPE, "unmount `%s`: not CephFS but %s", canon,
				      type);
	int r = type ? detach(canon, err) : 0;
	if (r < 0)
		return r;
	return end_fuse(canon, r == 1 ? FUSE_BUSY_MS : FUSE_EXIT_MS, err);
}

int hsp_ceph_umount(const char *mnt, hsp_error_t *err)
{
	cleanup_free char *canon = NULL;
	int r = canonical_mnt(mnt, &canon, err);
	return r < 0 ? r : umount_at(canon, err);
}

/* --- mount ---------------------------------------------------------------- */

static bool kernel_has_ceph(void)
{
	cleanup_free char *text = NULL;
	if (hsp_read_file("/proc/filesystems", &text, NULL, NULL) < 0)
		return false;
	for (char *save = NULL, *l = strtok_r(text, "\n", &save); l;
	     l = strtok_r(NULL, "\n", &save))
		if (strcmp(l + strcspn(l, "\t"), "\tceph") == 0)
			return true;
	return false;
}

/* The most telling line of what ceph-fuse printed, trimmed of its
 * "ceph-fuse[PID]: " prefix or log-line header. */
static char *fuse_message(const char *out)
{
	cleanup_free char *copy = strdup(out ? out : "");
	const char *best = NULL, *detail = NULL;
	for (char *save = NULL, *l = strtok_r(copy, "\n", &save); l;
	     l = strtok_r(NULL, "\n", &save)) {
		char *hdr = strstr(l, " -1 ");
		if (hdr && detail == NULL && strstr(l, "init, newargv") == NULL)
			detail = hdr + 4;
		else if (strstr(l, "failed") || strstr(l, "rror"))
			best = strncmp(l, "ceph-fuse[", 10) == 0 && strstr(l, "]: ")
				   ? strstr(l, "]: ") + 3
				   : l;
	}
	if (best == NULL)
		return strdup(detail ? detail : "failed without a message");
	cleanup_free char *head = strndup(best, strcspn(best, "\n"));
	char *cut = head ? strstr(head, " (--no-mon-config to skip)") : NULL;
	if (cut)
		*cut = '\0';
	return detail ? hsp_strdup_printf("%s (%s)", head, detail) : strdup(head ? head : "");
}

/* "failed with (1) Operation not permitted" carries the errno; a refused
 * key shows only in the monitor client's complaint. */
static int fuse_errno(const char *msg)
{
	const char *p = strstr(msg, "failed with (");
	int e = p ? atoi(p + 13) : 0;
	if (e <= 0 && strstr(msg, "auth"))
		e = EACCES;
	return e > 0 ? e : EIO;
}

static void fuse_cleanup(const char *mnt)
{
	pid_t pids[16];
	size_t n = fuse_pids(mnt, pids, 16);
	signal_all(pids, n, SIGKILL);
	wait_gone(pids, n, FUSE_TERM_MS);
	cleanup_free char *type = mounted_type(mnt);
	if (type && is_ceph_type(type))
		umount2(mnt, MNT_DETACH | UMOUNT_NOFOLLOW);
}

static int mount_fuse(const struct hsp_ceph_pool *p, const char *mnt, unsigned timeout_s,
		      hsp_error_t *err)
{
	char timeout[48];
	snprintf(timeout, sizeof(timeout), "--client_mount_timeout=%u", timeout_s);
	/* $pid: several ceph-fuse of one client id share a run dir, and the
	 * admin socket is how client_addr finds this one's address. */
	char *argv[] = {"ceph-fuse",
			"-c",
			(char *)p->conf,
			"--id",
			(char *)p->id,
			"-k",
			(char *)p->keyring,
			"-r",
			(char *)p->fs_path,
			"-o",
			"dev,suid",
			timeout,
			"--admin_socket=$run_dir/$cluster-$name.$pid.asok",
			(char *)mnt,
			NULL};
	struct proc pr = {.prog = "ceph-fuse", .argv = argv, .fd3 = -1};
	struct proc_result res;
	uint64_t t0 = hsp_now_ns();
	int r = proc_run(&pr, timeout_s * 1000 + GRACE_MS, &res, err);
	bool late = hsp_now_ns() - t0 >= (uint64_t)timeout_s * 1000000000;
	if (r == -ETIMEDOUT || (r == 0 && !exited_ok(&res) && late))
		r = hsp_make_error(err, ETIMEDOUT,
				   "ceph-fuse `%s`: no answer from the cluster (`%s`) within %u s",
				   mnt, p->conf, timeout_s);
	else if (r == 0 && !exited_ok(&res)) {
		cleanup_free char *msg = fuse_message(res.output);
		r = hsp_make_error(err, fuse_errno(msg), "ceph-fuse `%s`: mount %s: %s", mnt,
				   p->fs_path, msg);
	}
	proc_result_clear(&res);
	return r;
}

/* The last non-empty line of a program's output, in place. */
static const char *last_line(char *out)
{
	size_t n = out ? strlen(out) : 0;
	while (n > 0 && isspace((unsigned char)out[n - 1]))
		out[--n] = '\0';
	if (n == 0)
		return "failed without a message";
	char *nl = strrchr(out, '\n');
	return nl ? nl + 1 : out;
}

/* "key = <base64>" of [client.<id>] in a keyring. */
static int keyring_secret(const char *keyring, const char *id, char **key, hsp_error_t *err)
{
	cleanup_free char *text = NULL;
	int r = hsp_read_file(keyring, &text, NULL, err);
	if (r < 0)
		return r;
	cleanup_free char *section = hsp_strdup_printf("[client.%s]", id);
	bool in = false;
	for (char *save = NULL, *l = strtok_r(text, "\n", &save); l;
	     l = strtok_r(NULL, "\n", &save)) {
		l += strspn(l, " \t");
		if (*l == '[') {
			in = strncmp(l, section, strlen(section)) == 0;
		} else if (in && strncmp(l, "key", 3) == 0 && strchr(l, '=')) {
			char *v = strchr(l, '=') + 1;
			v += strspn(v, " \t");
			*key = strndup(v, strcspn(v, " \t\r"));
			return *key ? 0 : hsp_make_errno(err, ENOMEM, "keyring");
		}
	}
	return hsp_make_error(err, ENOKEY, "keyring `%s`: no key for client.%s", keyring, id);
}

/* mount.ceph finds the monitors in the conf; the secret reaches it as a
 * file only it can open (fd 3), not on a command line. */
static int mount_kernel(const struct hsp_ceph_pool *p, const char *mnt, unsigned timeout_s,
			hsp_error_t *err)
{
	cleanup_free char *key = NULL;
	int r = keyring_secret(p->keyring, p->id, &key, err);
	if (r < 0)
		return r;
	cleanup_close int fd = memfd_create("hsp-ceph-secret", MFD_CLOEXEC);
	if (fd < 0 || write(fd, key, strlen(key)) != (ssize_t)strlen(key))
		return hsp_make_errno(err, errno, "mount `%s`: secret", mnt);
	cleanup_free char *src = hsp_strdup_printf(":%s", p->fs_path);
	/* dev and suid are the kernel's defaults: no option needed.  ms_mode:
	 * without it mount.ceph (16.2) takes only the monitors' msgr1
	 * addresses from the conf, and a msgr2-only cluster has none ("Could
	 * not discover monitor addresses"); prefer-crc still speaks msgr2's
	 * secure mode to a cluster requiring it. */
	cleanup_free char *opts = hsp_strdup_printf(
	    "name=%s,conf=%s,secretfile=/proc/self/fd/3,mount_timeout=%u,ms_mode=prefer-crc", p->id,
	    p->conf, timeout_s);
	char *argv[] = {"mount.ceph", src, (char *)mnt, "-o", opts, NULL};
	struct proc pr = {.prog = "mount.ceph", .argv = argv, .fd3 = fd};
	struct proc_result res;
	r = proc_run(&pr, timeout_s * 1000 + GRACE_MS, &res, err);
	if (r == -ETIMEDOUT)
		r = hsp_make_error(err, ETIMEDOUT, "mount.ceph `%s`: no answer within %u s", mnt,
				   timeout_s);
	else if (r == 0 && !exited_ok(&res))
		r = hsp_make_error(err, EIO, "mount.ceph `%s`: %s", mnt, last_line(res.output));
	proc_result_clear(&res);
	return r;
}

/* A dead mount (its ceph-fuse gone) is replaced.  One that does not answer
 * may only be slow, with its users still waiting: not ours to kill. */
static int prepare_mnt(const char *mnt, hsp_error_t *err)
{
	int st = mount_state_at(mnt, 2000);
	if (st == -EMEDIUMTYPE)
		return hsp_make_error(err, EBUSY,
				      "mount `%s`: another file system is mounted there", mnt);
	if (st == -ETIMEDOUT)
		return hsp_make_error(err, ETIMEDOUT,
				      "mount `%s`: the CephFS mount there does not answer", mnt);
	if (st < 0)
		return umount_at(mnt, err);
	struct stat sb;
	if (st == 0 && stat(mnt, &sb) < 0)
		return hsp_make_errno(err, errno, "mount point `%s`", mnt);
	if (st == 0 && !S_ISDIR(sb.st_mode))
		return hsp_make_error(err, ENOTDIR, "mount point `%s`: not a directory", mnt);
	return st;
}

int hsp_ceph_mount(const struct hsp_ceph_pool *p, const char *mnt, unsigned timeout_s,
		   hsp_error_t *err)
{
	cleanup_free char *canon = NULL;
	int r = hsp_ceph_validate_pool(p, err);
	if (r == 0)
		r = canonical_mnt(mnt, &canon, err);
	if (r == 0 && (timeout_s == 0 || timeout_s > 3600))
		r = hsp_make_error(err, EINVAL, "ceph mount: timeout must be 1-3600 s");
	if (r == 0)
		r = prepare_mnt(canon, err);
	if (r != 0)
		return r < 0 ? r : 0;
	bool kernel = kernel_has_ceph();
	uint64_t t0 = hsp_now_ns();
	r = kernel ? mount_kernel(p, canon, timeout_s, err) : mount_fuse(p, canon, timeout_s, err);
	uint64_t spent_ms = (hsp_now_ns() - t0) / 1000000;
	unsigned left = spent_ms >= timeout_s * 1000ULL ? 1 : timeout_s * 1000 - (unsigned)spent_ms;
	if (r == 0 && (r = mount_state_at(canon, left)) != 1)
		r = hsp_make_error(err, r < 0 ? -r : EIO,
				   "ceph mount `%s`: not usable after mount%s", canon,
				   r < 0 ? "" : ": nothing mounted");
	if (r < 0 && !kernel)
		fuse_cleanup(canon);
	else if (r < 0)
		umount2(canon, MNT_DETACH | UMOUNT_NOFOLLOW);
	return r < 0 ? r : 0;
}

/* --- client address ------------------------------------------------------- */

/* Socket inodes among pid's fds (at most max). */
static size_t socket_inodes(pid_t pid, unsigned long *inodes, size_t max)
{
	char path[64], target[64];
	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	DIR *d = opendir(path);
	size_t n = 0;
	struct dirent *de;
	while (d && n < max && (de = readdir(d)) != NULL) {
		ssize_t len = readlinkat(dirfd(d), de->d_name, target, sizeof(target) - 1);
		if (len > 0 &&
		    (target[len] = '\0', sscanf(target, "socket:[%lu]", &inodes[n]) == 1))
			n++;
	}
	if (d)
		closedir(d);
	return n;
}

/* The admin socket of pid: the path of one of its unix sockets ending in
 * ".asok", from its net namespace's socket table (the conf may put it
 * anywhere). */
static int admin_socket(pid_t pid, char **out, hsp_error_t *err)
{
	unsigned long inodes[256];
	size_t n = socket_inodes(pid, inodes, 256);
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/net/unix", pid);
	cleanup_fclose FILE *f = fopen(path, "re");
	if (f == NULL)
		return hsp_make_errno(err, errno, "read `%s`", path);
	cleanup_free char *line = NULL;
	size_t cap = 0;
	while (getline(&line, &cap, f) > 0) {
		unsigned long inode;
		char sock[PATH_MAX];
		if (sscanf(line, "%*s %*s %*s %*s %*s %*s %lu %4095s", &inode, sock) != 2)
			continue;
		size_t len = strlen(sock);
		if (len < 5 || strcmp(sock + len - 5, ".asok") != 0)
			continue;
		for (size_t i = 0; i < n; i++)
			if (inodes[i] == inode)
				return (*out = strdup(sock)) ? 0
							     : hsp_make_errno(err, ENOMEM, "asok");
	}
	return hsp_make_error(err, ENOENT, "ceph-fuse (pid %d) has no admin socket", pid);
}

/* The admin socket protocol: a NUL-terminated JSON command in; a 32-bit
 * big-endian length and the reply out. */
static int asok_command(const char *sock, const char *cmd, char **reply, hsp_error_t *err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(sock) >= sizeof(sa.sun_path))
		return hsp_make_error(err, ENAMETOOLONG, "admin socket `%s`: path too long", sock);
	strcpy(sa.sun_path, sock);
	cleanup_close int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct timeval tv = {.tv_sec = 5};
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    send(fd, cmd, strlen(cmd) + 1, MSG_NOSIGNAL) != (ssize_t)strlen(cmd) + 1)
		return hsp_make_errno(err, errno, "admin socket `%s`", sock);
	unsigned char hdr[4];
	if (recv(fd, hdr, 4, MSG_WAITALL) != 4)
		return hsp_make_errno(err, errno ? errno : EPROTO, "admin socket `%s`: read", sock);
	size_t len = (size_t)hdr[0] << 24 | hdr[1] << 16 | hdr[2] << 8 | hdr[3];
	if (len > OUTPUT_MAX)
		return hsp_make_error(err, EPROTO, "admin socket `%s`: reply too long", sock);
	cleanup_free char *buf = malloc(len + 1);
	if (buf == NULL)
		return hsp_make_errno(err, ENOMEM, "admin socket `%s`", sock);
	if (len && recv(fd, buf, len, MSG_WAITALL) != (ssize_t)len)
		return hsp_make_errno(err, errno ? errno : EPROTO, "admin socket `%s`: read", sock);
	buf[len] = '\0';
	*reply = steal_pointer(&buf);
	return 0;
}

static int status_addr(const char *sock, const char *reply, char **addr, hsp_error_t *err)
{
	json_object *root = json_tokener_parse(reply), *a = NULL;
	int r = 0;
	if (root == NULL || !json_object_object_get_ex(root, "addr_str", &a) ||
	    !json_object_is_type(a, json_type_string))
		r = hsp_make_error(err, EPROTO, "admin socket `%s`: no addr_str in status", sock);
	else if ((*addr = strdup(json_object_get_string(a))) == NULL)
		r = hsp_make_errno(err, ENOMEM, "client address");
	json_object_put(root);
	return r;
}

int hsp_ceph_mount_client_addr(const char *mnt, char **addr, hsp_error_t *err)
{
	cleanup_free char *canon = NULL;
	int r = canonical_mnt(mnt, &canon, err);
	if (r < 0)
		return r;
	cleanup_free char *type = mounted_type(canon);
	if (type && strcmp(type, "ceph") == 0)
		return hsp_make_error(err, EOPNOTSUPP,
				      "`%s`: a kernel client mount has no admin socket", canon);
	pid_t pids[2];
	if (fuse_pids(canon, pids, 2) == 0)
		return hsp_make_error(err, ENOENT, "no ceph-fuse serves `%s`", canon);
	cleanup_free char *sock = NULL;
	if ((r = admin_socket(pids[0], &sock, err)) < 0)
		return r;
	cleanup_free char *reply = NULL;
	r = asok_command(sock, "{\"prefix\":\"status\"}", &reply, err);
	return r < 0 ? r : status_addr(sock, reply, addr, err);
}
