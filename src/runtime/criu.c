/* Running criu from its own tree (see criu.h). */
#define _GNU_SOURCE
#include "criu.h"
#include "errpipe.h"
#include "utils.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define FAIL(fmt, ...) hsp_errpipe_fail(errfd, errno, fmt ": %s", ##__VA_ARGS__, strerror(errno))
/* snprintf into a PATH_MAX buffer, failing the child on truncation. */
#define PATHF(buf, fmt, ...)                                                                       \
	do {                                                                                       \
		if ((size_t)snprintf(buf, sizeof(buf), fmt, ##__VA_ARGS__) >= sizeof(buf))         \
			hsp_errpipe_fail(errfd, ENAMETOOLONG, "criu root: path too long");         \
	} while (0)

void hsp_criu_clear(struct hsp_criu *c)
{
	free(c->tree);
	free(c->bin);
	c->tree = c->bin = NULL;
}

static char *find_on_path(const char *prog)
{
	const char *path = getenv("PATH");
	cleanup_free char *copy = strdup(path && *path ? path : "/usr/sbin:/usr/bin:/sbin:/bin");
	char *save = NULL;
	for (char *d = strtok_r(copy, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		char *p = hsp_strdup_printf("%s/%s", d, prog);
		if (access(p, X_OK) == 0)
			return p;
		free(p);
	}
	return NULL;
}

int hsp_criu_find(struct hsp_criu *c, hsp_error_t *err)
{
	memset(c, 0, sizeof(*c));
	const char *tree = getenv("HSP_CRIU_ROOT");
	if (tree == NULL || *tree == '\0')
		tree = HSP_CRIU_DEFAULT_ROOT;
	cleanup_free char *bin = hsp_strdup_printf("%s/usr/sbin/criu", tree);
	if (access(bin, X_OK) == 0) {
		c->tree = strdup(tree);
		c->bin = strdup("/usr/sbin/criu");
		return 0;
	}
	c->bin = find_on_path("criu");
	if (c->bin)
		return 0;
	return hsp_make_error(
	    err, ENOENT, "no criu: neither `%s` nor criu on PATH (run scripts/install-criu.sh)",
	    bin);
}

/* Binds host `path` at the same place under `root` (a tmpfs of ours). */
static void bind_same(int errfd, const char *root, const char *path)
{
	char dst[PATH_MAX];
	PATHF(dst, "%s%s", root, path);
	hsp_error_t e = NULL;
	if (hsp_mkdir_p(dst, 0755, &e) < 0)
		hsp_errpipe_fail(errfd, e->status, "criu root: %s", e->msg);
	if (mount(path, dst, NULL, MS_BIND | MS_REC, NULL) < 0)
		FAIL("criu root: bind `%s`", path);
}

/* Makes the new root: the tree's /usr and /etc, its top-level symlinks
 * (/bin → usr/bin on a merged-/usr tree), the host's kernel file systems
 * and the caller's paths.  Nothing in the tree itself is changed. */
static void build_root(int errfd, const char *tree, const char *const *paths)
{
	char root[PATH_MAX], p[PATH_MAX], q[PATH_MAX];
	PATHF(root, "%s/mnt", tree);
	if (mount("tmpfs", root, "tmpfs", MS_NOSUID, "mode=755,size=1m") < 0)
		FAIL("criu root: tmpfs on `%s`", root);
	static const char *const dirs[] = {"usr", "etc"};
	for (size_t i = 0; i < 2; i++) {
		PATHF(p, "%s/%s", tree, dirs[i]);
		PATHF(q, "%s/%s", root, dirs[i]);
		if (mkdir(q, 0755) < 0 || mount(p, q, NULL, MS_BIND | MS_REC, NULL) < 0)
			FAIL("criu root: bind `%s`", p);
	}
	DIR *d = opendir(tree);
	if (d == NULL)
		FAIL("criu root: open `%s`", tree);
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (de->d_type != DT_LNK)
			continue;
		PATHF(p, "%s/%s", tree, de->d_name);
		ssize_t n = readlink(p, q, sizeof(q) - 1);
		if (n <= 0)
			continue;
		q[n] = '\0';
		PATHF(p, "%s/%s", root, de->d_name);
		if (symlink(q, p) < 0)
			FAIL("criu root: symlink `%s`", de->d_name);
	}
	closedir(d);
	PATHF(p, "%s/tmp", root);
	/* chmod: criu's umask is 077; restored tasks make temporary files. */
	if (mkdir(p, 01777) < 0 || chmod(p, 01777) < 0)
		FAIL("criu root: mkdir /tmp");
	/* criu restores a network namespace's iptables with /run hidden by a
	 * tmpfs of its own. */
	PATHF(p, "%s/run", root);
	if (mkdir(p, 0755) < 0)
		FAIL("criu root: mkdir /run");
	static const char *const kernel[] = {"/proc", "/sys", "/dev"};
	for (size_t i = 0; i < 3; i++)
		bind_same(errfd, root, kernel[i]);
	for (size_t i = 0; paths && paths[i]; i++)
		bind_same(errfd, root, paths[i]);
	if (chdir(root) < 0)
		FAIL("criu root: chdir");
	/* The old root stacks under the new one; detaching it leaves criu a
	 * mount table it can make sense of. */
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		FAIL("criu root: pivot_root");
	if (umount2(".", MNT_DETACH) < 0)
		FAIL("criu root: detach old root");
	if (chdir("/") < 0)
		FAIL("criu root: chdir /");
}

static __attribute__((noreturn)) void child(const struct hsp_criu *c,
					    const struct hsp_criu_run *run, int errfd)
{
	hsp_error_t e = NULL;
	/* A monitor ignores SIGTERM and friends, and ignored signals survive
	 * exec: criu stops its helper daemons with SIGTERM and waits. */
	for (int sig = 1; sig < NSIG; sig++)
		signal(sig, SIG_DFL);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (run->cg && hsp_cgroup_attach(run->cg, getpid(), &e) < 0)
		hsp_errpipe_fail(errfd, e->status, "criu: %s", e->msg);
	if (c->tree) {
		if (unshare(CLONE_NEWNS) < 0)
			FAIL("criu: unshare mount namespace");
		if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
			FAIL("criu: make / private");
		build_root(errfd, c->tree, run->paths);
	}
	int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
	int out = run->out_fd >= 0 ? run->out_fd : nul;
	if (nul < 0 || dup2(nul, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
		FAIL("criu: stdio");
	/* criu must not hand a caller's fd to what it restores. */
	if (syscall(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
		FAIL("criu: close_range");
	size_t n = hsp_strv_len(run->argv);
	const char **argv = calloc(n + 2, sizeof(char *));
	if (argv == NULL)
		FAIL("criu: argv");
	argv[0] = "criu";
	for (size_t i = 0; i < n; i++)
		argv[i + 1] = run->argv[i];
	static char *const tree_env[] = {
	    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	    "HOME=/",
	    NULL,
	};
	execve(c->bin, (char *const *)argv, c->tree ? tree_env : environ);
	FAIL("exec `%s`", c->bin);
}

int hsp_criu_spawn(const struct hsp_criu *c, const struct hsp_criu_run *run, pid_t *pid,
		   hsp_error_t *err)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return hsp_make_errno(err, errno, "criu: pipe");
	pid_t child_pid = fork();
	if (child_pid == 0) {
		close(p[0]);
		child(c, run, p[1]);
	}
	int e = errno;
	close(p[1]);
	if (child_pid < 0) {
		close(p[0]);
		return hsp_make_errno(err, e, "criu: fork");
	}
	int r = hsp_errpipe_read(p[0], NULL, err);
	close(p[0]);
	if (r < 0) {
		while (waitpid(child_pid, NULL, 0) < 0 && errno == EINTR)
			;
		return r;
	}
	*pid = child_pid;
	return 0;
}

/* Lines criu reports as errors that are no reason for a failure: this
 * sandbox withholds CAP_SYS_RESOURCE, iptables tools the tree lacks (the
 * VEs' rules are nftables), the closing summary and its aftermath. */
static bool benign(const char *msg)
{
	static const char *const noise[] = {
	    "RLIMIT_NOFILE",
	    "FAILED",
	    "exited, status=",
	    "execvp(",
	    "-V failed",
	    "cgroupd: recv req error",
	    "Can't wait or bad status",
	    NULL,
	};
	for (size_t i = 0; noise[i]; i++)
		if (strstr(msg, noise[i]))
			return true;
	return false;
}

char *hsp_criu_log_error(const char *log)
{
	cleanup_free char *text = NULL;
	hsp_error_t ignored = NULL;
	if (log == NULL || hsp_read_file(log, &text, NULL, &ignored) < 0) {
		hsp_error_release(&ignored);
		return NULL;
	}
	/* The first error is the cause; what follows is criu unwinding. */
	char *save = NULL;
	for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		char *e = strstr(l, "Error (");
		char *msg = e ? strstr(e, "): ") : NULL;
		if (msg && !benign(msg + 3))
			return strdup(msg + 3);
	}
	return NULL;
}

int hsp_criu_run(const struct hsp_criu *c, const struct hsp_criu_run *run, const char *log,
		 const char *what, hsp_error_t *err)
{
	pid_t pid;
	int r = hsp_criu_spawn(c, run, &pid, err);
	if (r < 0)
		return r;
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return hsp_make_errno(err, errno, "%s: wait for criu", what);
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 0;
	cleanup_free char *why = hsp_criu_log_error(log);
	if (why)
		return hsp_make_error(err, EIO, "%s: criu: %s (log: %s)", what, why, log);
	if (WIFSIGNALED(st))
		return hsp_make_error(err, EIO, "%s: criu killed by signal %d", what, WTERMSIG(st));
	return hsp_make_error(err, EIO, "%s: criu exited with status %d%s%s", what, WEXITSTATUS(st),
			      log ? " (log: " : "", log ? log : "");
}

int hsp_criu_parse_version(const char *out, int v[3])
{
	const char *p = out ? strstr(out, "Version:") : NULL;
	if (p == NULL)
		return -EINVAL;
	v[0] = v[1] = v[2] = 0;
	int n = sscanf(p, "Version: %d.%d.%d", &v[0], &v[1], &v[2]);
	return n >= 2 ? 0 : -EINVAL;
}

int hsp_kernel_parse_version(const char *release, int v[2])
{
	if (release == NULL || sscanf(release, "%d.%d", &v[0], &v[1]) != 2)
		return -EINVAL;
	return 0;
}
