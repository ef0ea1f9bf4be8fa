/* Starting VEs and the per-VE monitor.
 *
 * The monitor is a small detached process (child subreaper) that owns the
 * VE's init: it records init's exit, boots the VE again when it rebooted
 * itself (init killed by SIGHUP in its pid namespace), stops it on poweroff
 * (SIGINT) or any other exit, and removes the VE's cgroups afterwards.  It
 * holds <run>/<name>/monitor.lock for its whole life: that lock, not a pid,
 * is what "running" means, so a new runtime process re-adopts running VEs
 * from the run dir alone. */
#define _GNU_SOURCE
#include "checkpoint.h"
#include "errpipe.h"
#include "internal.h"
#include "net.h"
#include "ceph.h"
#include "disk.h"
#include "pool.h"
#include "rootfs.h"
#include "seccomp.h"
#include "spawn.h"
#include "utils.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <stdint.h>
#include <sys/mman.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <poll.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* How often a kernel client's mount is looked at, and how long a look may
 * take before it counts as "slow", not "dead". */
#define STORAGE_CHECK_MS 2000
#define STORAGE_CHECK_TIMEOUT_MS 10000

struct boot {
	hsp_runtime_t *rt;
	struct hsp_ve_config cfg;
	char *const *argv;
	struct hsp_seccomp_prog *seccomp;
	struct hsp_cgroup *cg;
	struct hsp_run_state st;
	bool detached; /* running as hsp-monitor, not in the caller */
	struct hsp_root_layers layers;
	bool layers_up;
	int storage_pidfd;	 /* the ceph-fuse serving the VE's pool, or -1 */
	char *storage_mnt;	 /* a CephFS mount with no process to watch (kernel client) */
	int64_t storage_checked; /* ms, CLOCK_MONOTONIC: its last check */
	const char *restore_dir; /* the first boot restores this checkpoint */
	char host_if[HSP_NET_IFNAME_MAX + 1];
	unsigned char mac[6]; /* the VE's eth0 */
};

static void shrink_footprint(void);

static void boot_clear(struct boot *b)
{
	hsp_config_clear(&b->cfg);
	hsp_seccomp_free(b->seccomp);
	hsp_cgroup_free(b->cg);
	hsp_state_clear(&b->st);
}

static char *stop_marker(hsp_runtime_t *rt, const char *name)
{
	return hsp_strdup_printf("%s/%s/stop", rt->run_dir, name);
}

/* The process serving a CephFS pool's mount, as a pidfd (-1: none).  A
 * kernel client's mount has no process that could die: its death is a
 * fence (blocklisted, evicted), which only a look at the mount tells, so
 * its path is kept in storage_mnt for wait_init's periodic checks. */
static int watch_storage(struct boot *b)
{
	const struct hsp_pool *p;
	hsp_error_t ignored = NULL;
	int r = hsp_pool_of_ve(b->rt, b->cfg.name, &p, &ignored);
	hsp_error_release(&ignored);
	if (r < 0 || p->type != HSP_POOL_CEPHFS)
		return -1;
	pid_t pid = hsp_ceph_mount_pid(p->base);
	int fd = pid > 0 ? (int)syscall(SYS_pidfd_open, pid, 0) : -1;
	if (fd < 0) {
		free(b->storage_mnt);
		b->storage_mnt = strdup(p->base);
	}
	return fd;
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Whether the unwatched mount is dead: gone, or answering with an error
 * (a fenced client's listing fails).  A check that times out is not
 * taken for death: an MDS restarting makes the mount wait, and the VE
 * must carry on through that. */
static bool storage_dead(struct boot *b)
{
	int64_t now = mono_ms();
	if (b->storage_mnt == NULL || now - b->storage_checked < STORAGE_CHECK_MS)
		return false;
	b->storage_checked = now;
	int r = hsp_ceph_mount_state(b->storage_mnt, STORAGE_CHECK_TIMEOUT_MS);
	return r == 0 || (r < 0 && r != -ETIMEDOUT && r != -EINTR && r != -ENOMEM);
}

/* The disk and template tree, attached for the VE's first boot and kept
 * across reboots inside it. */
static int attach_layers(struct boot *b, hsp_error_t *err)
{
	if (b->layers_up)
		return 0;
	b->layers_up = true;
	int r = hsp_rootfs_attach(b->rt, &b->cfg, &b->layers, err);
	if (r < 0)
		return r;
	b->st.disk_loop_fd = b->layers.loopfd;
	b->storage_pidfd = watch_storage(b);
	b->st.storage_lost = false;
	return 0;
}

static void record_start(struct boot *b, pid_t pid)
{
	b->st.init_pid = pid;
	b->st.init_start = hsp_pid_starttime(pid);
	b->st.started = time(NULL);
	hsp_error_t ignored = NULL;
	/* The address may have been another node's a moment ago: neighbours
	 * learn where it is now.  Best effort, reaped with the orphans. */
	if (b->cfg.ip && hsp_net_announce_async(pid, "eth0", b->cfg.ip, 3, 100, &ignored) < 0)
		hsp_error_release(&ignored);
	/* The state file is advisory for readers; a write failure must not
	 * take down a VE that is running. */
	hsp_state_save(b->rt, b->cfg.name, &b->st, &ignored);
	hsp_error_release(&ignored);
}

/* The first boot of a migrated VE: criu brings back its processes, with
 * this monitor as init's parent (and so its reaper and pdeath target). */
static int restore(struct boot *b, hsp_error_t *err)
{
	int r = attach_layers(b, err);
	pid_t pid;
	if (r == 0)
		r = hsp_checkpoint_restore_tree(b->rt, &b->cfg, &b->layers, b->cg, b->host_if,
						b->restore_dir, &pid, &b->st.restored, err);
	if (r == 0)
		record_start(b, pid);
	return r;
}

static int spawn(struct boot *b, hsp_error_t *err)
{
	int r = attach_layers(b, err);
	if (r < 0)
		return r;
	const struct hsp_root_layers l = b->layers;
	struct hsp_spawn s = {
	    .rootfs = l.root,
	    .lower = l.lower,
	    .upper = l.upper,
	    .work = l.work,
	    .hostname = b->cfg.hostname,
	    .argv = b->argv,
	    .id_base = b->cfg.id_base,
	    .cg_mode = b->rt->cg_mode,
	    .cg = b->cg,
	    .seccomp = b->seccomp,
	    .ip = b->cfg.ip,
	    .gateway = b->cfg.gateway,
	    .bridge = b->cfg.bridge,
	    .host_if = b->host_if,
	    .mac = b->mac,
	    .rescue = b->st.rescue,
	    .ssh_keys = b->cfg.ssh_keys,
	};
	pid_t pid;
	r = hsp_spawn_init(&s, &pid, err);
	if (r < 0)
		return r;
	record_start(b, pid);
	return 0;
}

/* Reaps what has exited: 1 and *status once init has. */
static int reap_children(pid_t init, int *status)
{
	for (;;) {
		int st;
		pid_t p = waitpid(-1, &st, WNOHANG);
		if (p == init) {
			*status = st;
			return 1;
		}
		if (p < 0 && errno == ECHILD) {
			*status = 0;
			return 1;
		}
		if (p <= 0)
			return 0;
	}
}

/* Waits for init, reaping any orphan handed to us as subreaper.  With a
 * CephFS pool it also watches the ceph-fuse serving the VE's disk: if that
 * dies, the disk is gone and the VE is killed rather than left writing into
 * nothing (a clean stop would hang on its I/O). */
static int wait_init(struct boot *b)
{
	pid_t init = b->st.init_pid;
	if (b->storage_pidfd < 0 && b->storage_mnt == NULL) {
		for (;;) {
			int status;
			pid_t p = waitpid(-1, &status, 0);
			if (p == init)
				return status;
			if (p < 0 && errno == ECHILD)
				return 0;
		}
	}
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, NULL);
	cleanup_close int sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	int status;
	for (;;) {
		if (reap_children(init, &status)) {
			/* A restarted init must not inherit the mask. */
			sigprocmask(SIG_UNBLOCK, &set, NULL);
			return status;
		}
		struct pollfd fds[2] = {{.fd = sfd, .events = POLLIN},
					{.fd = b->storage_pidfd, .events = POLLIN}};
		if (poll(fds, b->storage_pidfd >= 0 ? 2 : 1,
			 b->storage_mnt ? STORAGE_CHECK_MS : -1) < 0 &&
		    errno != EINTR)
			usleep(100000);
		struct signalfd_siginfo si;
		while (sfd >= 0 && read(sfd, &si, sizeof(si)) > 0)
			;
		bool lost = b->storage_pidfd >= 0 && (fds[1].revents & (POLLIN | POLLHUP));
		if (lost || storage_dead(b)) {
			hsp_closep(&b->storage_pidfd);
			free(b->storage_mnt);
			b->storage_mnt = NULL;
			b->st.storage_lost = true;
			/* Init's death takes its whole pid namespace. */
			kill(init, SIGKILL);
		}
	}
}

/* Kills anything left in the VE's cgroups (processes that escaped the
 * pid namespace cannot exist, but a failed boot may leave a child) and
 * removes the groups. */
static void teardown(struct boot *b)
{
	hsp_error_t ignored = NULL;
	for (int i = 0; b->cg && i < 50; i++) {
		pid_t *pids = NULL;
		int n = hsp_cgroup_pids(b->cg, &pids, &ignored);
		hsp_error_release(&ignored);
		for (int j = 0; j < n; j++)
			kill(pids[j], SIGKILL);
		free(pids);
		if (n <= 0 && hsp_cgroup_destroy(b->cg, &ignored) == 0)
			break;
		hsp_error_release(&ignored);
		usleep(20000);
	}
	hsp_error_release(&ignored);
	if (b->storage_pidfd >= 0) {
		close(b->storage_pidfd);
		b->storage_pidfd = -1;
	}
	free(b->storage_mnt);
	b->storage_mnt = NULL;
	if (b->layers_up) {
		bool had_disk = b->layers.loopfd >= 0;
		hsp_rootfs_detach(&b->layers);
		b->layers_up = false;
		b->st.disk_loop_fd = -1;
		/* Stopped means the disk is free for another node to mount; a
		 * boot that never got it (in use elsewhere) has nothing to wait
		 * for. */
		cleanup_free char *img = hsp_disk_path(b->rt, b->cfg.name);
		if (had_disk)
			hsp_disk_wait_released(img, 10000);
	}
	if (b->cfg.ip) {
		/* Synchronous: a start right after finds the name free. */
		hsp_net_veth_delete(b->host_if, &ignored);
		hsp_error_release(&ignored);
	}
	b->st.init_pid = 0;
	b->st.init_start = 0;
	b->st.monitor_pid = 0;
	hsp_state_save(b->rt, b->cfg.name, &b->st, &ignored);
	hsp_error_release(&ignored);
	cleanup_free char *marker = stop_marker(b->rt, b->cfg.name);
	unlink(marker);
}

/* Runs the VE until it stops; returns init's last wait status. */
static int supervise(struct boot *b)
{
	cleanup_free char *marker = stop_marker(b->rt, b->cfg.name);
	for (;;) {
		int status = wait_init(b);
		b->st.last_exit = status;
		bool rebooted = WIFSIGNALED(status) && WTERMSIG(status) == SIGHUP;
		if (!rebooted || access(marker, F_OK) == 0)
			break;
		/* The pid namespace died with init; wait for its tasks to leave
		 * the cgroup before the new init joins it. */
		for (int i = 0; b->cg && i < 100; i++) {
			pid_t *pids = NULL;
			hsp_error_t ignored = NULL;
			int n = hsp_cgroup_pids(b->cg, &pids, &ignored);
			hsp_error_release(&ignored);
			free(pids);
			if (n <= 0)
				break;
			usleep(10000);
		}
		b->st.restarts++;
		hsp_error_t err = NULL;
		if (spawn(b, &err) < 0) {
			hsp_error_release(&err);
			break;
		}
		if (b->detached)
			shrink_footprint();
	}
	teardown(b);
	return b->st.last_exit;
}

static void report(int fd, int r, hsp_error_t err)
{
	if (r < 0)
		hsp_errpipe_write(fd, err->status, "%s", err->msg);
	else
		hsp_errpipe_write(fd, 0, "started");
}

static int take_monitor_lock(hsp_runtime_t *rt, const char *name, hsp_error_t *err)
{
	cleanup_free char *p = hsp_strdup_printf("%s/%s/monitor.lock", rt->run_dir, name);
	int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return hsp_make_errno(err, errno, "open `%s`", p);
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		close(fd);
		return hsp_make_error(err, EBUSY, "VE `%s` is already running", name);
	}
	return fd;
}

static int create_cgroup(struct boot *b, hsp_error_t *err)
{
	if (!b->rt->no_cgroups)
		return hsp_cgroup_create(b->rt->instance, b->cfg.name, &b->cfg.limits, &b->cg, err);
	if ((b->cfg.limits.set & ~HSP_LIMIT_DISK) != 0)
		return hsp_make_error(
		    err, EINVAL, "VE `%s` has limits, which cannot be enforced without cgroups",
		    b->cfg.name);
	return 0;
}

static int first_boot(struct boot *b, hsp_error_t *err)
{
	b->st.monitor_pid = getpid();
	b->st.last_exit = -1;
	b->st.disk_loop_fd = -1;
	int r = create_cgroup(b, err);
	if (r < 0)
		return r;
	b->st.cgroup = b->cg ? strdup(hsp_cgroup_path(b->cg)) : NULL;
	r = spawn(b, err);
	if (r < 0)
		teardown(b);
	return r;
}

/* Detached from the caller's session and files: the VE outlives it. */
static void detach_self(void)
{
	if (chdir("/") < 0)
		_exit(1);
	int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
	for (int i = 0; i < 3 && nul >= 0; i++)
		dup2(nul, i);
	/* fd 3 is the report pipe. */
	syscall(SYS_close_range, 4, ~0U, 0);
	signal(SIGHUP, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	prctl(PR_SET_NAME, "hsp-monitor");
}

static int prepare(hsp_runtime_t *rt, const char *name, char *const *init_override,
		   const struct hsp_start_opts *opts, struct boot *b, hsp_error_t *err);

/* A flat root has no pristine tree to boot in place of the VE's own. */
static int check_rescue(const struct boot *b, hsp_error_t *err)
{
	if (b->st.rescue && b->cfg.tree == NULL)
		return hsp_make_error(err, EINVAL,
				      "VE `%s`: rescue needs a VE created from a stored template",
				      b->cfg.name);
	return 0;
}

/* A node runs one monitor per VE for the VE's lifetime, so what it keeps
 * resident matters: the code of our own image that booting faulted in
 * (with fault-around) is dropped and the wait loop refaults the few pages
 * it needs; heap left from start-up goes back too. */
static void shrink_footprint(void)
{
	char self[PATH_MAX], line[PATH_MAX + 128];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	FILE *f = n > 0 ? fopen("/proc/self/maps", "re") : NULL;
	if (f == NULL)
		return;
	self[n] = '\0';
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;
		char perms[5], path[PATH_MAX];
		if (sscanf(line, "%lx-%lx %4s %*s %*s %*s %4095s", &lo, &hi, perms, path) != 4)
			continue;
		/* Only code: it is never written, so dropping it just refaults
		 * from the file.  Read-only data may be RELRO, relocated in
		 * memory and then protected: dropping that would undo the
		 * relocations.  MADV_RANDOM stops fault-around before 6.4. */
		if (perms[2] != 'x' || perms[1] == 'w' || strcmp(path, self) != 0)
			continue;
		madvise((void *)lo, hi - lo, MADV_RANDOM);
		madvise((void *)lo, hi - lo, MADV_DONTNEED);
	}
	fclose(f);
	malloc_trim(0);
}

/* hsp-monitor's body.  The caller made the cgroup (so the monitor, which
 * lives as long as the VE, never loads libcgroup's tables); the monitor
 * takes the VE's lock, boots it, reports on fd 3 and supervises. */
void hsp_monitor_main(hsp_runtime_t *rt, const char *name, const char *cgroup,
		      char *const *init_override, const struct hsp_start_opts *opts,
		      const char *restore_dir)
{
	const int report_fd = 3;
	detach_self();
	struct boot b = {.detached = true, .storage_pidfd = -1, .restore_dir = restore_dir};
	hsp_error_t err = NULL;
	int lock = -1;
	int r = prepare(rt, name, init_override, opts, &b, &err);
	if (r == 0)
		r = lock = take_monitor_lock(rt, name, &err);
	if (r >= 0 && cgroup)
		r = hsp_cgroup_open(cgroup, &b.cg, &err);
	if (r >= 0) {
		b.st.monitor_pid = getpid();
		b.st.last_exit = -1;
		b.st.disk_loop_fd = -1;
		b.st.cgroup = cgroup ? strdup(cgroup) : NULL;
		r = restore_dir ? restore(&b, &err) : spawn(&b, &err);
		if (r < 0)
			teardown(&b);
	}
	report(report_fd, r, err);
	close(report_fd);
	if (r < 0)
		_exit(1);
	shrink_footprint();
	supervise(&b);
	_exit(0);
}

static __attribute__((noreturn)) void exec_monitor(struct boot *b, const char *path,
						   char *const *init_override, int report_fd)
{
	setsid();
	/* dup2 to 3 leaves the copy without close-on-exec; if it already is
	 * fd 3, clear the flag by hand. */
	if (report_fd == 3)
		fcntl(3, F_SETFD, 0);
	else
		dup2(report_fd, 3);
	size_t n = hsp_strv_len(init_override);
	const char **argv = calloc(n + 15, sizeof(char *));
	size_t i = 0;
	if (argv) {
		argv[i++] = "hsp-monitor";
		argv[i++] = "--root";
		argv[i++] = b->rt->root;
		argv[i++] = "--run-dir";
		argv[i++] = b->rt->run_dir;
		if (b->cg) {
			argv[i++] = "--cgroup";
			argv[i++] = hsp_cgroup_path(b->cg);
		}
		if (b->restore_dir) {
			argv[i++] = "--restore";
			argv[i++] = b->restore_dir;
		}
		if (b->st.rescue)
			argv[i++] = "--rescue";
		argv[i++] = b->cfg.name;
		if (n > 0)
			argv[i++] = "--";
		for (size_t j = 0; j < n; j++)
			argv[i++] = init_override[j];
		execv(path, (char *const *)argv);
	}
	hsp_errpipe_fail(3, errno, "exec monitor `%s`: %s", path, strerror(errno));
}
static int read_report(int fd, hsp_error_t *err)
{
	int r = hsp_errpipe_read(fd, NULL, err);
	return r > 0 ? hsp_make_error(err, EIO, "VE monitor died before reporting") : r;
}

static int run_monitor(struct boot *b, const char *path, char *const *init_override,
		       hsp_error_t *err)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return hsp_make_errno(err, errno, "pipe");
	pid_t mid = fork();
	if (mid == 0) {
		close(p[0]);
		/* Double fork: the monitor is nobody's child but init's (or the
		 * nearest subreaper's), so callers never have to reap it. */
		if (fork() == 0)
			exec_monitor(b, path, init_override, p[1]);
		_exit(0);
	}
	int e = errno;
	close(p[1]);
	if (mid < 0) {
		close(p[0]);
		return hsp_make_errno(err, e, "fork monitor");
	}
	waitpid(mid, NULL, 0);
	int r = read_report(p[0], err);
	close(p[0]);
	return r;
}

static int detach_monitor(struct boot *b, char *const *init_override, hsp_error_t *err)
{
	cleanup_free char *path = hsp_helper_path("HSP_MONITOR", "hsp-monitor");
	if (access(path, X_OK) < 0)
		return hsp_make_errno(err, errno, "monitor `%s`", path);
	/* No VE runs (we hold its lock and checked), so a group found here is
	 * a leftover and ours to remove if the start fails. */
	int r = create_cgroup(b, err);
	if (r < 0)
		return r;
	r = run_monitor(b, path, init_override, err);
	if (r < 0 && b->cg && !hsp_ve_is_running(b->rt, b->cfg.name)) {
		hsp_error_t ignored = NULL;
		hsp_cgroup_destroy(b->cg, &ignored);
		hsp_error_release(&ignored);
	}
	return r;
}

static int prepare(hsp_runtime_t *rt, const char *name, char *const *init_override,
		   const struct hsp_start_opts *opts, struct boot *b, hsp_error_t *err)
{
	b->rt = rt;
	int r = hsp_config_load(rt, name, &b->cfg, err);
	if (r < 0)
		return r;
	uid_t base = b->cfg.id_base;
	b->st.rescue = opts && opts->rescue;
	r = check_rescue(b, err);
	if (r < 0)
		return r;
	r = hsp_idmap_claim(rt, name, &b->cfg.id_base, err);
	if (r == 1 && b->restore_dir) {
		/* criu restores the user namespace's mapping as it was. */
		hsp_idmap_release(rt, name, b->cfg.id_base);
		return hsp_make_error(err, EBUSY,
				      "restore: VE `%s`'s id range %u is used by another VE on "
				      "this node",
				      name, base);
	}
	if (r == 1)
		r = hsp_config_save(rt, &b->cfg, err);
	if (r < 0)
		return r;
	hsp_net_host_ifname(rt->instance, name, b->host_if);
	if (b->cfg.ip)
		hsp_net_ve_mac(name, b->cfg.ip, b->mac);
	b->argv = init_override && init_override[0] ? init_override : b->cfg.init;
	cleanup_free char *img = hsp_disk_path(rt, name);
	if (access(img, F_OK) < 0)
		return hsp_make_errno(err, errno, "VE `%s`: disk `%s`", name, img);
	if (hsp_ve_is_mounted(rt, name))
		return hsp_make_error(
		    err, EBUSY, "VE `%s` is mounted on the host: run `hsp-runtime umount %s` first",
		    name, name);
	cleanup_free char *cache = hsp_cache_dir(rt);
	r = hsp_seccomp_load_cached(cache, &b->seccomp, err);
	if (r < 0)
		return r;
	cleanup_free char *rundir = hsp_ve_run_dir(rt, name);
	if (mkdir(rundir, 0700) < 0 && errno != EEXIST)
		return hsp_make_errno(err, errno, "mkdir `%s`", rundir);
	cleanup_free char *marker = stop_marker(rt, name);
	unlink(marker);
	return 0;
}

int hsp_ve_boot(hsp_runtime_t *rt, const char *name, char *const *init_override,
		const struct hsp_start_opts *opts, bool foreground, int *status, hsp_error_t *err)
{
	int r = hsp_validate_name(name, "VE", err);
	if (r < 0)
		return r;
	cleanup_close int oplock = hsp_lock_ve(rt, name, err);
	if (oplock < 0)
		return oplock;
	cleanup_close int lock = -1;
	int st;
	struct boot b = {.storage_pidfd = -1};
	/* Before prepare, which would change things on the way. */
	if (hsp_ve_is_running(rt, name))
		r = hsp_make_error(err, EBUSY, "VE `%s` is already running", name);
	else
		r = prepare(rt, name, init_override, opts, &b, err);
	if (r < 0)
		goto out;
	if (!foreground) {
		r = detach_monitor(&b, init_override, err);
		goto out;
	}
	lock = take_monitor_lock(rt, name, err);
	if (lock < 0) {
		r = lock;
		goto out;
	}
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	r = first_boot(&b, err);
	if (r < 0)
		goto out;
	/* Let concurrent stop/exec in while the VE runs. */
	close(steal_fd(&oplock));
	st = supervise(&b);
	if (status)
		*status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
out:
	boot_clear(&b);
	return r;
}

int hsp_ve_boot_restore(hsp_runtime_t *rt, const char *name, const char *dir, hsp_error_t *err)
{
	cleanup_close int oplock = hsp_lock_ve(rt, name, err);
	if (oplock < 0)
		return oplock;
	struct boot b = {.storage_pidfd = -1, .restore_dir = dir};
	int r = prepare(rt, name, NULL, NULL, &b, err);
	if (r == 0 && hsp_ve_is_running(rt, name))
		r = hsp_make_error(err, EBUSY, "restore: VE `%s` is already running", name);
	if (r == 0 && b.rt->no_cgroups)
		r = hsp_make_error(err, EOPNOTSUPP, "restore: VEs need cgroups to be restored");
	if (r == 0)
		r = detach_monitor(&b, NULL, err);
	boot_clear(&b);
	return r;
}

int hsp_ve_start(hsp_runtime_t *rt, const char *name, hsp_error_t *err)
{
	return hsp_ve_boot(rt, name, NULL, NULL, false, NULL, err);
}

int hsp_ve_start_opts(hsp_runtime_t *rt, const char *name, const struct hsp_start_opts *opts,
		      hsp_error_t *err)
{
	return hsp_ve_boot(rt, name, NULL, opts, false, NULL, err);
}

int hsp_ve_run(hsp_runtime_t *rt, const char *name, char *const *init, int *status,
	       hsp_error_t *err)
{
	return hsp_ve_boot(rt, name, init, NULL, true, status, err);
}
