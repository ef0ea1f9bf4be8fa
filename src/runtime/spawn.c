#define _GNU_SOURCE
#include "spawn.h"
#include "caps.h"
#include "errpipe.h"
#include "net.h"
#include "rootfs.h"
#include "utils.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/sched.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

char *const hsp_default_env[] = {
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME=/root",
    "TERM=linux",
    "container=hsp",
    NULL,
};

#define FAIL(fmt, ...) hsp_errpipe_fail(errfd, errno, fmt ": %s", ##__VA_ARGS__, strerror(errno))

static void fdpath(char buf[32], int fd)
{
	snprintf(buf, 32, "/proc/self/fd/%d", fd);
}

/* Opens (creating if needed) a top-level directory of the VE root without
 * following symlinks: the VE owns its root and could have planted one to
 * redirect our mounts. */
static int ensure_dir(int errfd, int rootfd, const char *name)
{
	if (mkdirat(rootfd, name, 0755) < 0 && errno != EEXIST)
		FAIL("mkdir /%s in VE root", name);
	int fd = openat(rootfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		FAIL("VE root: /%s must be a directory", name);
	return fd;
}

static void mount_at(int errfd, int dirfd, const char *what, const char *type, unsigned long flags,
		     const char *data)
{
	char p[32];
	fdpath(p, dirfd);
	if (mount(what, p, type, flags, data) < 0)
		FAIL("mount %s", type ? type : what);
}

static void bind_dev(int errfd, const char *rootfs, const char *name)
{
	char src[64], dst[4096];
	snprintf(src, sizeof(src), "/dev/%s", name);
	snprintf(dst, sizeof(dst), "%s/dev/%s", rootfs, name);
	int fd = open(dst, O_CREAT | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0666);
	if (fd < 0)
		FAIL("create /dev/%s", name);
	close(fd);
	if (mount(src, dst, NULL, MS_BIND, NULL) < 0)
		FAIL("bind /dev/%s", name);
}

static void setup_dev(int errfd, int rootfd, const char *rootfs)
{
	int devfd = ensure_dir(errfd, rootfd, "dev");
	mount_at(errfd, devfd, "tmpfs", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=755,size=1m");
	close(devfd);

	static const char *const nodes[] = {"null", "zero", "full", "random", "urandom", "tty"};
	for (size_t i = 0; i < sizeof(nodes) / sizeof(nodes[0]); i++)
		bind_dev(errfd, rootfs, nodes[i]);

	char p[4096];
	static const struct {
		const char *dir, *type;
		unsigned long flags;
		const char *data;
	} mounts[] = {
	    {"pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620,gid=5"},
	    {"shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777"},
	    {"mqueue", "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL},
	};
	for (size_t i = 0; i < sizeof(mounts) / sizeof(mounts[0]); i++) {
		snprintf(p, sizeof(p), "%s/dev/%s", rootfs, mounts[i].dir);
		if (mkdir(p, 0755) < 0)
			FAIL("mkdir /dev/%s", mounts[i].dir);
		if (mount(mounts[i].type, p, mounts[i].type, mounts[i].flags, mounts[i].data) < 0)
			FAIL("mount /dev/%s", mounts[i].dir);
	}

	static const char *const links[][2] = {
	    {"pts/ptmx", "ptmx"},	   {"/proc/self/fd", "fd"},
	    {"/proc/self/fd/0", "stdin"},  {"/proc/self/fd/1", "stdout"},
	    {"/proc/self/fd/2", "stderr"},
	};
	for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++) {
		snprintf(p, sizeof(p), "%s/dev/%s", rootfs, links[i][1]);
		if (symlink(links[i][0], p) < 0)
			FAIL("symlink /dev/%s", links[i][1]);
	}
	/* init and daemons write to /dev/console; nothing reads it yet. */
	snprintf(p, sizeof(p), "%s/dev/console", rootfs);
	char nul[4096];
	snprintf(nul, sizeof(nul), "%s/dev/null", rootfs);
	int fd = open(p, O_CREAT | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		FAIL("create /dev/console");
	close(fd);
	if (mount(nul, p, NULL, MS_BIND, NULL) < 0)
		FAIL("bind /dev/console");
}

static const char *const masked_files[] = {
    "proc/kcore",
    "proc/keys",
    "proc/key-users",
    "proc/sysrq-trigger",
    "proc/timer_list",
    "proc/timer_stats",
    "proc/sched_debug",
    "proc/latency_stats",
    "proc/kallsyms",
    "proc/config.gz",
    NULL,
};
static const char *const masked_dirs[] = {
    "proc/acpi",    "proc/asound",	"proc/scsi", "proc/driver",
    "sys/firmware", "sys/kernel/debug", NULL,
};
/* sysrq-trigger is read-only rather than masked, so a write fails loudly. */
static const char *const readonly_dirs[] = {"proc/bus",		  "proc/fs", "proc/irq", "proc/sys",
					    "proc/sysrq-trigger", NULL};

static void remount_ro(int errfd, const char *p)
{
	if (mount(p, p, NULL, MS_BIND | MS_REC, NULL) < 0)
		FAIL("bind %s", p);
	if (mount(NULL, p, NULL,
		  MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		FAIL("remount %s read-only", p);
}

static void setup_proc_masks(int errfd, const char *rootfs)
{
	char p[4096], nul[4096];
	snprintf(nul, sizeof(nul), "%s/dev/null", rootfs);
	for (size_t i = 0; masked_files[i]; i++) {
		snprintf(p, sizeof(p), "%s/%s", rootfs, masked_files[i]);
		if (mount(nul, p, NULL, MS_BIND, NULL) < 0 && errno != ENOENT)
			FAIL("mask /%s", masked_files[i]);
	}
	for (size_t i = 0; masked_dirs[i]; i++) {
		snprintf(p, sizeof(p), "%s/%s", rootfs, masked_dirs[i]);
		if (mount("tmpfs", p, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
			  "size=0,mode=555") < 0 &&
		    errno != ENOENT)
			FAIL("mask /%s", masked_dirs[i]);
	}
	for (size_t i = 0; readonly_dirs[i]; i++) {
		snprintf(p, sizeof(p), "%s/%s", rootfs, readonly_dirs[i]);
		if (access(p, F_OK) == 0)
			remount_ro(errfd, p);
	}
	/* The VE has its own network namespace: its sysctls are its own. */
	snprintf(p, sizeof(p), "%s/proc/sys/net", rootfs);
	if (mount(p, p, NULL, MS_BIND, NULL) < 0)
		FAIL("bind /proc/sys/net");
	if (mount(NULL, p, NULL, MS_BIND | MS_REMOUNT | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		FAIL("remount /proc/sys/net read-write");
}

/* Runs while we still have the host uid of our creator: the VE root's
 * host id may not traverse the runtime's private directories. */
static int bind_rootfs(int errfd, const struct hsp_spawn *s)
{
	if (mount(s->rootfs, s->rootfs, NULL, MS_BIND | MS_REC, NULL) < 0)
		FAIL("bind VE root `%s`", s->rootfs);
	/* Opened after the bind, so the fd is the new mount's root. */
	int rootfd = open(s->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		FAIL("open VE root `%s`", s->rootfs);
	return rootfd;
}

/* Also before we become the VE's root, for the same reason: the overlay's
 * layers and mount point, as fds. */
static void open_layers(int errfd, const struct hsp_spawn *s, int fds[4])
{
	const char *paths[4] = {s->lower, s->upper, s->work, s->rootfs};
	for (int i = 0; i < 4; i++) {
		fds[i] = open(paths[i], O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (fds[i] < 0)
			FAIL("open `%s`", paths[i]);
	}
}

/* Mounted as the VE's root, in its user namespace: copy-up then creates
 * files as the VE's root, through the idmapped upper layer, so they are
 * stored with the VE's own ids. */
int hsp_overlay_fsmount(const int layers[3], const char *what, hsp_error_t *err)
{
	static const char *const keys[3] = {"lowerdir", "upperdir", "workdir"};
	cleanup_close int fs = fsopen("overlay", FSOPEN_CLOEXEC);
	if (fs < 0)
		return hsp_make_errno(err, errno, "open overlay file system");
	for (int i = 0; i < 3; i++) {
		char p[32];
		fdpath(p, layers[i]);
		if (fsconfig(fs, FSCONFIG_SET_STRING, keys[i], p, 0) < 0)
			return hsp_make_errno(err, errno, "overlay: set %s", keys[i]);
	}
	/* trusted.* xattrs are out of reach in a user namespace. */
	if (fsconfig(fs, FSCONFIG_SET_FLAG, "userxattr", NULL, 0) < 0)
		return hsp_make_errno(err, errno, "overlay: set userxattr");
	if (fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
		return hsp_make_errno(err, errno, "mount overlay for %s", what);
	int m = fsmount(fs, FSMOUNT_CLOEXEC, 0);
	if (m < 0)
		return hsp_make_errno(err, errno, "overlay: fsmount");
	return m;
}

/* Returns the root of the VE's root mount: its overlay, or in rescue mode
 * the rescue root with the overlay under it. */
static int mount_overlay(int errfd, const struct hsp_spawn *s, const int fds[4])
{
	hsp_error_t err = NULL;
	int m = s->rescue ? hsp_rescue_mount(fds, s->ssh_keys, &err)
			  : hsp_overlay_fsmount(fds, "the VE root", &err);
	if (m < 0)
		hsp_errpipe_fail(errfd, err->status, "%s", err->msg);
	if (!s->rescue &&
	    move_mount(m, "", fds[3], "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
		FAIL("attach VE root overlay");
	for (int i = 0; i < 4; i++)
		close(fds[i]);
	return m;
}

static void setup_mounts(int errfd, int rootfd, const struct hsp_spawn *s)
{
	/* From here on the VE root is reached only through its fd. */
	char rootfs[32];
	fdpath(rootfs, rootfd);

	int fd = ensure_dir(errfd, rootfd, "proc");
	mount_at(errfd, fd, "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	close(fd);
	fd = ensure_dir(errfd, rootfd, "sys");
	mount_at(errfd, fd, "sysfs", "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	close(fd);
	hsp_error_t cgerr = NULL;
	if (s->cg == NULL) {
		/* No groups of its own: show the VE an empty, read-only tree. */
		char p[64];
		snprintf(p, sizeof(p), "%s/sys/fs/cgroup", rootfs);
		if (mount("tmpfs", p, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
			  "size=0,mode=555") < 0)
			FAIL("mount empty /sys/fs/cgroup");
	} else if (hsp_cgroup_mount_in_ve(s->cg_mode, rootfs, &cgerr) < 0) {
		hsp_errpipe_fail(errfd, cgerr->status, "%s", cgerr->msg);
	}
	setup_dev(errfd, rootfd, rootfs);
	setup_proc_masks(errfd, rootfs);

	if (fchdir(rootfd) < 0)
		FAIL("chdir VE root");
	/* pivot_root(".", ".") stacks the old root under the new one; detaching
	 * it leaves no path back to the host. */
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		FAIL("pivot_root");
	if (umount2(".", MNT_DETACH) < 0)
		FAIL("detach old root");
	if (chdir("/") < 0)
		FAIL("chdir /");
	close(rootfd);
}

static void loopback_up(int errfd)
{
	int sk = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (sk < 0)
		FAIL("socket");
	struct ifreq ifr = {0};
	strcpy(ifr.ifr_name, "lo");
	ifr.ifr_flags = IFF_UP | IFF_LOOPBACK | IFF_RUNNING;
	if (ioctl(sk, SIOCSIFFLAGS, &ifr) < 0)
		FAIL("bring up lo");
	close(sk);
}

static void stdio_devnull(int errfd)
{
	int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		FAIL("open /dev/null");
	for (int i = 0; i < 3; i++)
		if (dup2(fd, i) < 0)
			FAIL("dup2");
	close(fd);
}

static __attribute__((noreturn)) void child_main(const struct hsp_spawn *s, int syncfd, int errfd)
{
	char c;
	/* Wait until the parent mapped our ids and placed us in the cgroups. */
	if (read(syncfd, &c, 1) != 1)
		_exit(127);
	close(syncfd);

	/* Nothing we mount may reach the host's mount namespace. */
	if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0)
		FAIL("make / a slave mount");
	int layers[4];
	int rootfd = -1;
	if (s->upper)
		open_layers(errfd, s, layers);
	else
		rootfd = bind_rootfs(errfd, s);
	if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)
		FAIL("become root in the VE's user namespace");
	if (s->upper)
		rootfd = mount_overlay(errfd, s, layers);
	else if (s->rescue)
		hsp_errpipe_fail(errfd, EINVAL, "rescue needs a VE created from a stored template");
	if (setgroups(0, NULL) < 0)
		FAIL("setgroups");
	/* The monitor owns the VE: should it die, the VE dies with it rather
	 * than run on unsupervised, where a second start could run it twice.
	 * Set after setresuid, which clears it. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
		FAIL("set parent-death signal");
	/* Unshared only now, so the namespace is rooted at the VE's group. */
	if (unshare(CLONE_NEWCGROUP) < 0)
		FAIL("unshare cgroup namespace");
	if (sethostname(s->hostname, strlen(s->hostname)) < 0)
		FAIL("sethostname");
	setup_mounts(errfd, rootfd, s);
	if (s->ip) {
		hsp_error_t nerr = NULL;
		if (hsp_net_configure_inside("eth0", NULL, s->ip, s->gateway, &nerr) < 0)
			hsp_errpipe_fail(errfd, nerr->status, "%s", nerr->msg);
	} else {
		loopback_up(errfd);
	}
	stdio_devnull(errfd);
	int r = hsp_seccomp_install(s->seccomp);
	if (r < 0) {
		errno = -r;
		FAIL("load seccomp filter");
	}
	r = hsp_caps_drop();
	if (r < 0) {
		errno = -r;
		FAIL("drop capabilities");
	}
	/* Every inherited fd goes at exec, the error pipe included. */
	if (syscall(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
		FAIL("close_range");
	execve(s->argv[0], s->argv, hsp_default_env);
	FAIL("exec init `%s`", s->argv[0]);
}

/* The VE's eth0 is born inside its network namespace, its peer on the
 * bridge, before init runs.  A host end left by the previous boot (the old
 * netns goes away asynchronously) is removed and the pair made again. */
static int plug_network(const struct hsp_spawn *s, pid_t pid, hsp_error_t *err)
{
	int r = hsp_net_bridge_ensure(s->bridge, err);
	if (r < 0)
		return r;
	r = hsp_net_veth_create(s->host_if, "eth0", pid, s->bridge, s->mac, err);
	if (r == -EEXIST) {
		hsp_error_release(err);
		r = hsp_net_veth_delete(s->host_if, err);
		if (r == 0)
			r = hsp_net_veth_create(s->host_if, "eth0", pid, s->bridge, s->mac, err);
	}
	return r;
}

int hsp_spawn_init(const struct hsp_spawn *s, pid_t *pidp, hsp_error_t *err)
{
	int syncp[2], errp[2];
	if (pipe2(syncp, O_CLOEXEC) < 0)
		return hsp_make_errno(err, errno, "pipe");
	if (pipe2(errp, O_CLOEXEC) < 0) {
		close(syncp[0]);
		close(syncp[1]);
		return hsp_make_errno(err, errno, "pipe");
	}
	unsigned long flags =
	    CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET;
	pid_t pid = (pid_t)syscall(SYS_clone, flags | SIGCHLD, NULL, NULL, NULL, 0);
	if (pid == 0) {
		close(syncp[1]);
		close(errp[0]);
		child_main(s, syncp[0], errp[1]);
	}
	int e = errno;
	close(syncp[0]);
	close(errp[1]);
	if (pid < 0) {
		close(syncp[1]);
		close(errp[0]);
		return hsp_make_errno(err, e, "clone VE init");
	}

	int r = hsp_idmap_write(pid, "uid_map", s->id_base, err);
	if (r == 0)
		r = hsp_idmap_write(pid, "gid_map", s->id_base, err);
	if (r == 0 && s->cg)
		r = hsp_cgroup_attach(s->cg, pid, err);
	if (r == 0 && s->ip)
		r = plug_network(s, pid, err);
	if (r == 0 && write(syncp[1], "x", 1) != 1)
		r = hsp_make_errno(err, errno, "release VE init");
	close(syncp[1]);
	/* On our own failure the child sees EOF on sync and exits. */
	if (r == 0)
		r = hsp_errpipe_read(errp[0], "start VE: ", err);
	if (r > 0)
		r = 0; /* nothing written: exec succeeded */
	close(errp[0]);
	if (r < 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return r;
	}
	*pidp = pid;
	return 0;
}
