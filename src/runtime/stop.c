/* Stopping VEs: every process gets SIGTERM, init gets the template's stop
 * signal, and whatever is still there after the timeout dies with init
 * (SIGKILL of a pid namespace's init kills every task in it). */
#define _GNU_SOURCE
#include "internal.h"
#include "utils.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

/* After init is gone the monitor still removes the cgroups. */
#define MONITOR_GRACE_MS 10000

static int pidfd_signal(int pidfd, int sig)
{
	return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
}

static bool wait_exit(int pidfd, unsigned timeout_ms)
{
	struct pollfd p = {.fd = pidfd, .events = POLLIN};
	uint64_t deadline = hsp_now_ns() + (uint64_t)timeout_ms * 1000000ULL;
	for (;;) {
		uint64_t now = hsp_now_ns();
		int left = now >= deadline ? 0 : (int)((deadline - now) / 1000000ULL);
		int r = poll(&p, 1, left);
		if (r > 0)
			return true;
		if (r == 0)
			return false;
		if (errno != EINTR)
			return false;
	}
}

static void signal_all_but_init(const struct hsp_run_state *st, int sig)
{
	struct hsp_cgroup *cg = NULL;
	hsp_error_t ignored = NULL;
	if (st->cgroup == NULL || hsp_cgroup_open(st->cgroup, &cg, &ignored) < 0) {
		hsp_error_release(&ignored);
		return;
	}
	pid_t *pids = NULL;
	int n = hsp_cgroup_pids(cg, &pids, &ignored);
	for (int i = 0; i < n; i++)
		if (pids[i] != st->init_pid)
			kill(pids[i], sig);
	free(pids);
	hsp_error_release(&ignored);
	hsp_cgroup_free(cg);
}

static int mark_stopping(hsp_runtime_t *rt, const char *name, hsp_error_t *err)
{
	cleanup_free char *marker = hsp_strdup_printf("%s/%s/stop", rt->run_dir, name);
	return hsp_write_file(marker, "", 0, err);
}

/* timeout_ms == 0: kill at once. */
static int stop_locked(hsp_runtime_t *rt, const char *name, int stop_signal, unsigned timeout_ms,
		       hsp_error_t *err)
{
	if (!hsp_ve_is_running(rt, name))
		return hsp_make_error(err, EINVAL, "VE `%s` is not running", name);
	struct hsp_run_state st;
	int r = hsp_state_load(rt, name, &st, err);
	if (r < 0)
		return r;
	cleanup_close int pidfd = -1;
	r = mark_stopping(rt, name, err);
	if (r < 0)
		goto out;
	pidfd = hsp_state_init_pidfd(&st);
	if (pidfd >= 0 && timeout_ms > 0) {
		signal_all_but_init(&st, SIGTERM);
		pidfd_signal(pidfd, stop_signal);
		if (!wait_exit(pidfd, timeout_ms))
			pidfd_signal(pidfd, SIGKILL);
	} else if (pidfd >= 0) {
		pidfd_signal(pidfd, SIGKILL);
	}
	if (hsp_wait_monitor_gone(rt, name, MONITOR_GRACE_MS) < 0)
		r = hsp_make_error(err, ETIMEDOUT, "VE `%s`: monitor did not finish within %u s",
				   name, MONITOR_GRACE_MS / 1000);
out:
	hsp_state_clear(&st);
	return r;
}

static int stop_common(hsp_runtime_t *rt, const char *name, bool kill_now, unsigned timeout_s,
		       hsp_error_t *err)
{
	int r = hsp_validate_name(name, "VE", err);
	if (r < 0)
		return r;
	struct hsp_ve_config c;
	r = hsp_config_load(rt, name, &c, err);
	if (r < 0)
		return r;
	cleanup_close int lock = hsp_lock_ve(rt, name, err);
	if (lock >= 0)
		r = stop_locked(rt, name, c.stop_signal, kill_now ? 0 : timeout_s * 1000U, err);
	else
		r = lock;
	hsp_config_clear(&c);
	return r;
}

int hsp_ve_stop(hsp_runtime_t *rt, const char *name, unsigned timeout_s, hsp_error_t *err)
{
	return stop_common(rt, name, false, timeout_s, err);
}

int hsp_ve_kill(hsp_runtime_t *rt, const char *name, hsp_error_t *err)
{
	return stop_common(rt, name, true, 0, err);
}

int hsp_ve_restart(hsp_runtime_t *rt, const char *name, unsigned timeout_s, hsp_error_t *err)
{
	int r = hsp_ve_stop(rt, name, timeout_s, err);
	if (r < 0 && r != -EINVAL)
		return r;
	hsp_error_release(err);
	return hsp_ve_start(rt, name, err);
}
