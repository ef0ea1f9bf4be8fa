#define _GNU_SOURCE
#include "internal.h"
#include "pool.h"
#include "utils.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static int absolute_dir(const char *path, const char *what, char **out, hsp_error_t *err)
{
	if (path == NULL || *path == '\0')
		return hsp_make_error(err, EINVAL, "invalid %s: empty path", what);
	if (hsp_mkdir_p(path, 0711, err) < 0)
		return hsp_error_wrap(err, "%s", what);
	char *real = realpath(path, NULL);
	if (real == NULL)
		return hsp_make_errno(err, errno, "%s `%s`", what, path);
	*out = real;
	return 0;
}

int hsp_runtime_open(hsp_runtime_t **out, const char *root, const char *run_dir, hsp_error_t *err)
{
	hsp_runtime_t *rt = calloc(1, sizeof(*rt));
	if (rt == NULL)
		return hsp_make_errno(err, ENOMEM, "runtime");
	int r = absolute_dir(root ? root : HSP_DEFAULT_ROOT, "root dir", &rt->root, err);
	if (r == 0)
		r = absolute_dir(run_dir ? run_dir : HSP_DEFAULT_RUN_DIR, "run dir", &rt->run_dir,
				 err);
	if (r == 0)
		r = hsp_cgroup_detect_mode(&rt->cg_mode, err);
	if (r < 0) {
		hsp_runtime_close(rt);
		return r;
	}
	/* Both dirs take part: two instances sharing a root (never intended)
	 * would at least not share cgroups. */
	cleanup_free char *key = hsp_strdup_printf("%s\n%s", rt->root, rt->run_dir);
	rt->instance = hsp_strdup_printf("%08llx", (unsigned long long)(hsp_hash64(key) >> 32));
	*out = rt;
	return 0;
}

void hsp_runtime_close(hsp_runtime_t *rt)
{
	if (rt == NULL)
		return;
	hsp_pools_free(rt);
	free(rt->root);
	free(rt->run_dir);
	free(rt->instance);
	free(rt);
}

void hsp_runtime_disable_cgroups(hsp_runtime_t *rt)
{
	rt->no_cgroups = true;
}

const char *hsp_runtime_root(const hsp_runtime_t *rt)
{
	return rt->root;
}

char *hsp_ve_dir(hsp_runtime_t *rt, const char *name)
{
	return hsp_strdup_printf("%s/ves/%s", hsp_ve_base(rt, name), name);
}

char *hsp_ve_rootfs(hsp_runtime_t *rt, const char *name)
{
	return hsp_strdup_printf("%s/ves/%s/rootfs", hsp_ve_base(rt, name), name);
}

char *hsp_ve_run_dir(hsp_runtime_t *rt, const char *name)
{
	return hsp_strdup_printf("%s/%s", rt->run_dir, name);
}

char *hsp_cache_dir(hsp_runtime_t *rt)
{
	return hsp_strdup_printf("%s/.cache", rt->run_dir);
}

static int lock_file(const char *path, int op, hsp_error_t *err)
{
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return hsp_make_errno(err, errno, "open lock `%s`", path);
	while (flock(fd, op) < 0) {
		if (errno == EINTR)
			continue;
		int e = errno;
		close(fd);
		return hsp_make_errno(err, e, "lock `%s`", path);
	}
	return fd;
}

int hsp_lock_root(hsp_runtime_t *rt, hsp_error_t *err)
{
	cleanup_free char *p = hsp_strdup_printf("%s/.lock", rt->root);
	return lock_file(p, LOCK_EX, err);
}

int hsp_lock_ve(hsp_runtime_t *rt, const char *name, hsp_error_t *err)
{
	cleanup_free char *p = hsp_strdup_printf("%s/%s.lock", rt->run_dir, name);
	return lock_file(p, LOCK_EX, err);
}

int hsp_ve_is_running(hsp_runtime_t *rt, const char *name)
{
	cleanup_free char *p = hsp_strdup_printf("%s/%s/monitor.lock", rt->run_dir, name);
	cleanup_close int fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	if (flock(fd, LOCK_SH | LOCK_NB) < 0)
		return errno == EWOULDBLOCK ? 1 : 0;
	return 0;
}

int hsp_wait_monitor_gone(hsp_runtime_t *rt, const char *name, unsigned timeout_ms)
{
	uint64_t deadline = hsp_now_ns() + (uint64_t)timeout_ms * 1000000ULL;
	unsigned delay_us = 200;
	while (hsp_ve_is_running(rt, name)) {
		if (hsp_now_ns() > deadline)
			return -ETIMEDOUT;
		usleep(delay_us);
		if (delay_us < 20000)
			delay_us *= 2;
	}
	return 0;
}

uint64_t hsp_pid_starttime(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	/* comm may hold spaces and parentheses: fields start after the last ')'. */
	char *p = strrchr(buf, ')');
	if (p == NULL)
		return 0;
	p++;
	for (int field = 3; field < 22 && p; field++)
		p = strchr(p + 1, ' ');
	return p ? strtoull(p + 1, NULL, 10) : 0;
}

int hsp_state_init_pidfd(const struct hsp_run_state *st)
{
	if (st->init_pid <= 0)
		return -ESRCH;
	int fd = (int)syscall(SYS_pidfd_open, st->init_pid, 0);
	if (fd < 0)
		return -errno;
	/* Checked after opening: the pidfd pins the process we verified. */
	if (hsp_pid_starttime(st->init_pid) != st->init_start) {
		close(fd);
		return -ESRCH;
	}
	return fd;
}

const char *hsp_ve_status_name(enum hsp_ve_status s)
{
	switch (s) {
	case HSP_VE_RUNNING:
		return "running";
	case HSP_VE_STOPPING:
		return "stopping";
	case HSP_VE_STOPPED:
	default:
		return "stopped";
	}
}
