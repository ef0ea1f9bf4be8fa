/* VE disks: ext4 images on loop devices (see disk.h). */
#define _GNU_SOURCE
#include "disk.h"
#include "utils.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/loop.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

/* From the kernel's fs/ext4/ext4.h (no uapi header carries it). */
#ifndef EXT4_IOC_RESIZE_FS
#define EXT4_IOC_RESIZE_FS _IOW('f', 16, uint64_t)
#endif

/* The last non-empty line of `buf`, in place. */
static const char *last_line(char *buf)
{
	size_t n = strlen(buf);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	char *nl = strrchr(buf, '\n');
	return nl ? nl + 1 : buf;
}

/* Runs an e2fsprogs tool; its last line of output is the error. */
static int run_tool(char *const *argv, const char *what, hsp_error_t *err)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return hsp_make_errno(err, errno, "%s: pipe", what);
	pid_t pid = fork();
	if (pid == 0) {
		char path[64];
		dup2(p[1], 1);
		dup2(p[1], 2);
		snprintf(path, sizeof(path), "/sbin/%s", argv[0]);
		execv(path, argv);
		snprintf(path, sizeof(path), "/usr/sbin/%s", argv[0]);
		execv(path, argv);
		dprintf(2, "cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	int e = errno;
	close(p[1]);
	if (pid < 0) {
		close(p[0]);
		return hsp_make_errno(err, e, "%s: fork", what);
	}
	char out[4096];
	size_t len = 0;
	ssize_t n;
	while ((n = read(p[0], out + len, sizeof(out) - 1 - len)) > 0 && len < sizeof(out) - 1)
		len += (size_t)n;
	out[len] = '\0';
	close(p[0]);
	int st = 0;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 0;
	return hsp_make_error(err, EIO, "%s: %s", what, last_line(out));
}

static int run_mke2fs(const char *img, const char *stage, hsp_error_t *err)
{
	/* No reserved blocks: the quota is what the customer can use.  Lazy
	 * inode tables and journal: a sparse image reads as zeroes, and
	 * writing them out would cost ~1.6% of the size at every create. */
	char *argv[] = {"mke2fs", "-F",		 "-q",
			"-t",	  "ext4",	 "-m",
			"0",	  "-E",		 "lazy_itable_init=1,lazy_journal_init=1",
			"-d",	  (char *)stage, (char *)img,
			NULL};
	cleanup_free char *what = hsp_strdup_printf("make disk `%s`", img);
	return run_tool(argv, what, err);
}

int hsp_disk_make(const char *img, uint64_t size, const char *stage, hsp_error_t *err)
{
	if (size < HSP_DISK_MIN || size > HSP_DISK_MAX)
		return hsp_make_error(err, ERANGE,
				      "invalid disk size: must be between 64M and 64T");
	cleanup_close int fd = open(img, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return hsp_make_errno(err, errno, "create `%s`", img);
	if (ftruncate(fd, (off_t)size) < 0)
		return hsp_make_errno(err, errno, "size `%s`", img);
	return run_mke2fs(img, stage, err);
}

static int lock_image(int fd, const char *img, unsigned wait_ms, hsp_error_t *err)
{
	for (unsigned waited = 0;; waited += 20) {
		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			return 0;
		if (errno != EWOULDBLOCK && errno != EINTR)
			return hsp_make_errno(err, errno, "lock `%s`", img);
		if (waited >= wait_ms)
			return hsp_make_error(err, EBUSY,
					      "disk `%s` is in use (mounted by another node or "
					      "on the host, or its last user is still stopping)",
					      img);
		usleep(20000);
	}
}

int hsp_disk_wait_released(const char *img, unsigned wait_ms)
{
	cleanup_close int fd = open(img, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	hsp_error_t ignored = NULL;
	int r = lock_image(fd, img, wait_ms, &ignored);
	hsp_error_release(&ignored);
	return r < 0 ? -EBUSY : 0;
}

/* Attaches the open image `fd` to a free loop device that detaches itself
 * when unused; read-only when `ro`.  Returns the loop device's fd. */
static int loop_configure(int fd, const char *img, bool ro, hsp_error_t *err)
{
	cleanup_close int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	if (ctl < 0)
		return hsp_make_errno(err, errno, "open /dev/loop-control");
	/* Another process may take the device we were offered: try again. */
	for (int tries = 0; tries < 32; tries++) {
		int n = ioctl(ctl, LOOP_CTL_GET_FREE);
		if (n < 0)
			return hsp_make_errno(err, errno, "find a free loop device");
		char dev[32];
		snprintf(dev, sizeof(dev), "/dev/loop%d", n);
		int lfd = open(dev, (ro ? O_RDONLY : O_RDWR) | O_CLOEXEC);
		if (lfd < 0)
			return hsp_make_errno(err, errno, "open `%s`", dev);
		/* The device keeps its own reference to our open file, and
		 * with it the lock, until it detaches. */
		struct loop_config cfg = {.fd = (uint32_t)fd};
		cfg.info.lo_flags = LO_FLAGS_AUTOCLEAR | (ro ? LO_FLAGS_READ_ONLY : 0);
		snprintf((char *)cfg.info.lo_file_name, sizeof(cfg.info.lo_file_name), "%s", img);
		if (ioctl(lfd, LOOP_CONFIGURE, &cfg) == 0)
			return lfd;
		int e = errno;
		close(lfd);
		if (e != EBUSY)
			return hsp_make_errno(err, e, "attach `%s` to `%s`", img, dev);
	}
	return hsp_make_error(err, EBUSY, "attach `%s`: no free loop device", img);
}

int hsp_disk_attach(const char *img, unsigned wait_ms, hsp_error_t *err)
{
	cleanup_close int fd = open(img, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return hsp_make_errno(err, errno, "open disk `%s`", img);
	int r = lock_image(fd, img, wait_ms, err);
	return r < 0 ? r : loop_configure(fd, img, false, err);
}

int hsp_disk_attach_readonly(const char *img, bool lock, hsp_error_t *err)
{
	bool ro = false;
	cleanup_close int fd = open(img, O_RDWR | O_CLOEXEC);
	if (fd < 0 && (errno == EROFS || errno == EACCES)) {
		ro = true;
		fd = open(img, O_RDONLY | O_CLOEXEC);
	}
	if (fd < 0)
		return hsp_make_errno(err, errno, "open `%s`", img);
	int r = lock ? lock_image(fd, img, 0, err) : 0;
	return r < 0 ? r : loop_configure(fd, img, ro, err);
}

/* Grows the mounted file system to the size of its device. */
static int fit_device(int loopfd, int mfd, hsp_error_t *err)
{
	uint64_t dev = 0;
	struct statfs sf;
	if (ioctl(loopfd, BLKGETSIZE64, &dev) < 0)
		return hsp_make_errno(err, errno, "disk: size of the loop device");
	cleanup_close int dfd = openat(mfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || fstatfs(dfd, &sf) < 0)
		return hsp_make_errno(err, errno, "disk: open its file system");
	uint64_t blocks = dev / (uint64_t)sf.f_bsize;
	if (ioctl(dfd, EXT4_IOC_RESIZE_FS, &blocks) < 0) {
		if (errno == EPERM)
			return hsp_make_error(err, EPERM,
					      "disk: growing a mounted file system needs "
					      "CAP_SYS_RESOURCE, which this host withholds: stop "
					      "the VE first");
		return hsp_make_errno(err, errno, "disk: grow its file system to %llu bytes",
				      (unsigned long long)dev);
	}
	return 0;
}

/* The kernel's own words on a refused mount, from the fs context. */
static int mount_failed(int fs, const char *what, hsp_error_t *err)
{
	int e = errno;
	char msg[256];
	ssize_t n = read(fs, msg, sizeof(msg) - 1);
	if (n > 2) {
		msg[n] = '\0';
		return hsp_make_error(err, e, "disk: %s: %s (%s)", what, strerror(e),
				      last_line(msg + 2));
	}
	return hsp_make_errno(err, e, "disk: %s", what);
}

int hsp_disk_mount(int loopfd, int userns, hsp_error_t *err)
{
	char src[32];
	snprintf(src, sizeof(src), "/proc/self/fd/%d", loopfd);
	cleanup_close int fs = fsopen("ext4", FSOPEN_CLOEXEC);
	if (fs < 0)
		return hsp_make_errno(err, errno, "disk: open ext4");
	if (fsconfig(fs, FSCONFIG_SET_STRING, "source", src, 0) < 0)
		return mount_failed(fs, "set source", err);
	/* A damaged file system stops taking writes rather than spreading. */
	if (fsconfig(fs, FSCONFIG_SET_STRING, "errors", "remount-ro", 0) < 0)
		return mount_failed(fs, "set errors=remount-ro", err);
	/* mke2fs left the inode tables lazy: do not zero them behind the
	 * VE's back (on CephFS that is a write of ~1.6% of the disk). */
	if (fsconfig(fs, FSCONFIG_SET_FLAG, "noinit_itable", NULL, 0) < 0)
		return mount_failed(fs, "set noinit_itable", err);
	if (fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
		return mount_failed(fs, "mount", err);
	cleanup_close int m = fsmount(fs, FSMOUNT_CLOEXEC, 0);
	if (m < 0)
		return mount_failed(fs, "fsmount", err);
	if (userns >= 0) {
		struct mount_attr a = {.attr_set = MOUNT_ATTR_IDMAP, .userns_fd = (uint64_t)userns};
		if (mount_setattr(m, "", AT_EMPTY_PATH, &a, sizeof(a)) < 0)
			return hsp_make_errno(err, errno, "disk: idmap its mount");
	}
	return steal_fd(&m);
}

static int grow_file(const char *img, uint64_t size, hsp_error_t *err)
{
	cleanup_close int fd = open(img, O_RDWR | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0)
		return hsp_make_errno(err, errno, "open disk `%s`", img);
	if (size < (uint64_t)st.st_size)
		return hsp_make_error(err, EINVAL,
				      "disk can only grow: it has %llu bytes, %llu asked",
				      (unsigned long long)st.st_size, (unsigned long long)size);
	if (size > HSP_DISK_MAX)
		return hsp_make_error(err, ERANGE,
				      "invalid disk size: must be between 64M and 64T");
	if (ftruncate(fd, (off_t)size) < 0)
		return hsp_make_errno(err, errno, "grow `%s`", img);
	return 0;
}

int hsp_disk_grow_offline(const char *img, uint64_t size, hsp_error_t *err)
{
	int r = grow_file(img, size, err);
	if (r < 0)
		return r;
	/* resize2fs wants a file system checked since it was last mounted. */
	char *fsck[] = {"e2fsck", "-f", "-p", (char *)img, NULL};
	char *resize[] = {"resize2fs", (char *)img, NULL};
	cleanup_free char *what = hsp_strdup_printf("grow disk `%s`", img);
	r = run_tool(fsck, what, err);
	return r < 0 ? r : run_tool(resize, what, err);
}

int hsp_disk_grow(const char *img, int loopfd, int fsfd, uint64_t size, hsp_error_t *err)
{
	struct stat st;
	if (stat(img, &st) < 0)
		return hsp_make_errno(err, errno, "disk `%s`", img);
	int r = grow_file(img, size, err);
	if (r < 0)
		return r;
	if (ioctl(loopfd, LOOP_SET_CAPACITY, 0) < 0)
		r = hsp_make_errno(err, errno, "disk: resize its loop device");
	if (r == 0)
		r = fit_device(loopfd, fsfd, err);
	if (r < 0 && truncate(img, st.st_size) == 0) {
		/* The file system did not grow: nothing may use the tail yet. */
		ioctl(loopfd, LOOP_SET_CAPACITY, 0);
	}
	return r;
}
