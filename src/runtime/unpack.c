/* hsp_rootfs_populate and hsp_template_import run in hsp-unpack, a helper
 * program that alone links libarchive: the CLI, the agent and the monitors
 * stay small (and static), and untrusted archives are parsed in a process
 * of their own.  Protocol: argv in, exit 0 or a "<errno>\t<message>" line on
 * the helper's stderr. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "errpipe.h"
#include "internal.h"
#include "template.h"
#include "utils.h"

char *hsp_helper_path(const char *env, const char *name)
{
	const char *e = getenv(env);
	if (e && *e)
		return strdup(e);
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n < 0)
		return hsp_strdup_printf("/usr/local/sbin/%s", name);
	self[n] = '\0';
	char *slash = strrchr(self, '/');
	if (slash)
		*slash = '\0';
	return hsp_strdup_printf("%s/%s", self, name);
}

static int run_helper(char *const *argv, const char *what, hsp_error_t *err)
{
	cleanup_free char *path = hsp_helper_path("HSP_UNPACK", "hsp-unpack");
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return hsp_make_errno(err, errno, "%s: pipe", what);
	pid_t pid = fork();
	if (pid == 0) {
		dup2(p[1], 2);
		execv(path, argv);
		hsp_errpipe_fail(2, errno, "exec `%s`: %s", path, strerror(errno));
	}
	int e = errno;
	close(p[1]);
	if (pid < 0) {
		close(p[0]);
		return hsp_make_errno(err, e, "%s: fork", what);
	}
	return hsp_helper_wait(pid, p[0], what, err);
}

int hsp_helper_wait(pid_t pid, int errfd, const char *what, hsp_error_t *err)
{
	int st = 0;
	int r = hsp_errpipe_read(errfd, NULL, err);
	close(errfd);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 0;
	if (r < 0)
		return r;
	return hsp_make_error(err, EIO, "%s: hsp-unpack failed without a message", what);
}

int hsp_rootfs_populate(const struct hsp_template *t, const char *dest, uid_t id_shift,
			hsp_error_t *err)
{
	char shift[16];
	snprintf(shift, sizeof(shift), "%u", id_shift);
	char *argv[] = {"hsp-unpack", "populate",   "--name",  t->name, "--source", t->source,
			"--dest",     (char *)dest, "--shift", shift,	NULL};
	return run_helper(argv, "populate", err);
}

int hsp_template_import(const char *root, const char *name, const char *source, const char *os,
			const char *version, char *const *init, const char *stop_signal,
			hsp_error_t *err)
{
	size_t n = hsp_strv_len(init);
	char **argv = calloc(n + 20, sizeof(char *));
	if (argv == NULL)
		return hsp_make_errno(err, ENOMEM, "import");
	size_t i = 0;
	argv[i++] = "hsp-unpack";
	argv[i++] = "import";
	argv[i++] = "--root";
	argv[i++] = (char *)root;
	argv[i++] = "--name";
	argv[i++] = (char *)name;
	argv[i++] = "--source";
	argv[i++] = (char *)source;
	if (os) {
		argv[i++] = "--os";
		argv[i++] = (char *)os;
	}
	if (version) {
		argv[i++] = "--version";
		argv[i++] = (char *)version;
	}
	if (stop_signal) {
		argv[i++] = "--stop-signal";
		argv[i++] = (char *)stop_signal;
	}
	argv[i++] = "--";
	for (size_t j = 0; j < n; j++)
		argv[i++] = init[j];
	int r = run_helper(argv, "import", err);
	free(argv);
	return r;
}
