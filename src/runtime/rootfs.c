/* VE root file systems: the private area, the idmapped mounts a start
 * needs, and mounting a stopped VE's files on the host (see rootfs.h). */
#define _GNU_SOURCE
#include "rootfs.h"
#include "disk.h"
#include "pool.h"
#include "utils.h"

#include <errno.h>
#include <fcntl.h>
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

int hsp_idmap_write(pid_t pid, const char *file, uid_t base, hsp_error_t *err)
{
	char path[64], map[64];
	snprintf(path, sizeof(path), "/proc/%d/%s", pid, file);
	int n = snprintf(map, sizeof(map), "0 %u %u\n", base, HSP_IDMAP_SIZE);
	return hsp_write_file(path, map, n, err);
}

int hsp_userns_fd(uid_t base, hsp_error_t *err)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return hsp_make_errno(err, errno, "idmap: pipe");
	/* A child that only holds the namespace until we opened it. */
	pid_t pid = (pid_t)syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, NULL, NULL, NULL, 0);
	if (pid == 0) {
		char c;
		close(p[1]);
		_exit(read(p[0], &c, 1) < 0);
	}
	int e = errno;
	close(p[0]);
	if (pid < 0) {
		close(p[1]);
		return hsp_make_errno(err, e, "idmap: clone user namespace");
	}
	int r = hsp_idmap_write(pid, "uid_map", base, err);
	if (r == 0)
		r = hsp_idmap_write(pid, "gid_map", base, err);
	int fd = -1;
	if (r == 0) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/%d/ns/user", pid);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			r = hsp_make_errno(err, errno, "idmap: open `%s`", path);
	}
	close(p[1]);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	return r < 0 ? r : fd;
}

/* Attaches the detached mount `mfd` at `dst`, replacing one a crashed
 * monitor left, so that copies of it reach the VE's mount namespace. */
static int attach_at(int mfd, const char *dst, hsp_error_t *err)
{
	if (mkdir(dst, 0700) < 0 && errno != EEXIST)
		return hsp_make_errno(err, errno, "mkdir `%s`", dst);
	while (umount2(dst, MNT_DETACH | UMOUNT_NOFOLLOW) == 0)
		;
	if (move_mount(mfd, "", AT_FDCWD, dst, MOVE_MOUNT_F_EMPTY_PATH) < 0)
		return hsp_make_errno(err, errno, "attach mount at `%s`", dst);
	return 0;
}

/* Mounts `src` at `dst` with its ids shifted by the user namespace `userns`.
 * A mount left at `dst` by a start that crashed is replaced. */
static int idmapped_bind(const char *src, const char *dst, int userns, hsp_error_t *err)
{
	cleanup_close int t = open_tree(AT_FDCWD, src, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
	if (t < 0)
		return hsp_make_errno(err, errno, "clone mount of `%s`", src);
	struct mount_attr a = {.attr_set = MOUNT_ATTR_IDMAP, .userns_fd = (uint64_t)userns};
	if (mount_setattr(t, "", AT_EMPTY_PATH, &a, sizeof(a)) < 0) {
		if (errno == EINVAL)
			return hsp_make_error(err, EINVAL,
					      "idmapped mount of `%s`: not supported by its file "
					      "system (ext4, xfs and btrfs are)",
					      src);
		return hsp_make_errno(err, errno, "idmapped mount of `%s`", src);
	}
	return attach_at(t, dst, err);
}

/* The VE's template tree on this node, unpacked here if it must be. */
static int ve_tree(hsp_runtime_t *rt, const struct hsp_ve_config *c, char **path, hsp_error_t *err)
{
	const struct hsp_pool *p;
	int r = hsp_pool_of_ve(rt, c->name, &p, err);
	if (r == 0)
		r = hsp_tree_require(rt, p, c->template, c->tree, err);
	if (r == 0)
		*path = hsp_tree_path(rt, p, c->template, c->tree);
	return r;
}

char *hsp_disk_path(hsp_runtime_t *rt, const char *name)
{
	return hsp_strdup_printf("%s/ves/%s/disk.img", hsp_ve_base(rt, name), name);
}

/* Mounts the VE's disk (idmapped into `userns`, unless -1) at `dst`. */
static int mount_disk(hsp_runtime_t *rt, const char *name, int userns, const char *dst,
		      struct hsp_root_layers *l, hsp_error_t *err)
{
	cleanup_free char *img = hsp_disk_path(rt, name);
	if (access(img, F_OK) < 0)
		return hsp_make_errno(err, errno, "VE `%s`: disk `%s`", name, img);
	/* A stop returns once the disk is free; this covers a monitor that was
	 * killed, whose VE's mounts go with its last process. */
	l->loopfd = hsp_disk_attach(img, 3000, err);
	if (l->loopfd < 0)
		return l->loopfd;
	l->diskfd = hsp_disk_mount(l->loopfd, userns, err);
	if (l->diskfd < 0)
		return l->diskfd;
	return attach_at(l->diskfd, dst, err);
}

int hsp_rootfs_attach(hsp_runtime_t *rt, const struct hsp_ve_config *c, struct hsp_root_layers *l,
		      hsp_error_t *err)
{
	memset(l, 0, sizeof(*l));
	l->loopfd = l->diskfd = -1;
	cleanup_free char *run = hsp_ve_run_dir(rt, c->name);
	l->mnt_private = hsp_strdup_printf("%s/private", run);
	l->mnt_lower = hsp_strdup_printf("%s/lower", run);
	/* A monitor killed outright leaves these, holding the disk (the root
	 * one only while it restored a checkpoint). */
	cleanup_free char *root = hsp_strdup_printf("%s/root", run);
	while (umount2(root, MNT_DETACH | UMOUNT_NOFOLLOW) == 0)
		;
	while (umount2(l->mnt_private, MNT_DETACH | UMOUNT_NOFOLLOW) == 0)
		;
	while (umount2(l->mnt_lower, MNT_DETACH | UMOUNT_NOFOLLOW) == 0)
		;
	cleanup_close int userns = hsp_userns_fd(c->id_base, err);
	if (userns < 0)
		return userns;
	int r = mount_disk(rt, c->name, userns, l->mnt_private, l, err);
	if (r < 0 || c->tree == NULL) {
		l->root = hsp_strdup_printf("%s/root", l->mnt_private);
		return r;
	}
	cleanup_free char *tree = NULL;
	r = ve_tree(rt, c, &tree, err);
	if (r < 0)
		return r;
	r = idmapped_bind(tree, l->mnt_lower, userns, err);
	if (r < 0)
		return r;
	l->root = hsp_strdup_printf("%s/root", run);
	if (mkdir(l->root, 0700) < 0 && errno != EEXIST)
		return hsp_make_errno(err, errno, "mkdir `%s`", l->root);
	l->lower = strdup(l->mnt_lower);
	l->upper = hsp_strdup_printf("%s/upper", l->mnt_private);
	l->work = hsp_strdup_printf("%s/work", l->mnt_private);
	return 0;
}

void hsp_rootfs_detach(struct hsp_root_layers *l)
{
	if (l->mnt_lower)
		umount2(l->mnt_lower, MNT_DETACH | UMOUNT_NOFOLLOW);
	if (l->mnt_private)
		umount2(l->mnt_private, MNT_DETACH | UMOUNT_NOFOLLOW);
	/* The disk goes once its last mount (the VE's) is gone. */
	if (l->diskfd >= 0)
		close(l->diskfd);
	if (l->loopfd >= 0)
		close(l->loopfd);
	free(l->root);
	free(l->lower);
	free(l->upper);
	free(l->work);
	free(l->mnt_lower);
	free(l->mnt_private);
	memset(l, 0, sizeof(*l));
	l->loopfd = l->diskfd = -1;
}

/* mkdir `name` in `dirfd` with the mode and owner of `like`. */
static int mkdir_like(int dirfd, const char *name, const struct stat *like, const char *what,
		      hsp_error_t *err)
{
	if (mkdirat(dirfd, name, like->st_mode & 07777) < 0)
		return hsp_make_errno(err, errno, "mkdir `%s`", what);
	cleanup_close int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || fchown(fd, like->st_uid, like->st_gid) < 0 ||
	    fchmod(fd, like->st_mode & 07777) < 0)
		return hsp_make_errno(err, errno, "set owner of `%s`", what);
	return 0;
}

int hsp_install_ssh_key(const char *top, const char *tree, const char *key, hsp_error_t *err)
{
	cleanup_close int rfd = open(top, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rfd < 0)
		return hsp_make_errno(err, errno, "open `%s`", top);
	struct stat like = {.st_mode = S_IFDIR | 0700};
	if (tree) {
		cleanup_free char *home = hsp_strdup_printf("%s/root", tree);
		if (lstat(home, &like) == 0 && !S_ISDIR(like.st_mode))
			return hsp_make_error(err, EINVAL,
					      "ssh key: /root in the template is not a directory");
	}
	if (mkdirat(rfd, "root", like.st_mode & 07777) < 0 && errno != EEXIST)
		return hsp_make_errno(err, errno, "ssh key: mkdir /root");
	cleanup_close int home =
	    openat(rfd, "root", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (home < 0)
		return hsp_make_errno(err, errno, "ssh key: /root in the template");
	if (tree && fchown(home, like.st_uid, like.st_gid) < 0)
		return hsp_make_errno(err, errno, "ssh key: chown /root");
	if (mkdirat(home, ".ssh", 0700) < 0 && errno != EEXIST)
		return hsp_make_errno(err, errno, "ssh key: mkdir /root/.ssh");
	cleanup_close int dir =
	    openat(home, ".ssh", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dir < 0 || fchown(dir, 0, 0) < 0 || fchmod(dir, 0700) < 0)
		return hsp_make_errno(err, errno, "ssh key: /root/.ssh");
	cleanup_close int fd = openat(dir, "authorized_keys",
				      O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return hsp_make_errno(err, errno, "ssh key: /root/.ssh/authorized_keys");
	size_t n = strlen(key);
	if (write(fd, key, n) != (ssize_t)n || fchown(fd, 0, 0) < 0 || fchmod(fd, 0600) < 0)
		return hsp_make_errno(err, errno, "ssh key: write /root/.ssh/authorized_keys");
	return 0;
}

/* The VE's first files, staged on the node's own disk for mke2fs -d. */
static int stage_private(hsp_runtime_t *rt, const struct hsp_ve_config *c,
			 const struct hsp_template *t, const char *stage, const char *ssh_key,
			 hsp_error_t *err)
{
	/* 0711: the root of the disk, which the VE's init crosses before it
	 * is root in its own namespace. */
	if (mkdir(stage, 0711) < 0)
		return hsp_make_errno(err, errno, "mkdir `%s`", stage);
	cleanup_free char *tree = NULL;
	if (c->tree) {
		int tr = ve_tree(rt, c, &tree, err);
		if (tr < 0)
			return tr;
	}
	cleanup_free char *top = hsp_strdup_printf("%s/%s", stage, tree ? "upper" : "root");
	int r;
	if (tree == NULL) {
		r = hsp_rootfs_populate(t, top, 0, err);
	} else {
		struct stat st;
		cleanup_close int sfd = open(stage, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (stat(tree, &st) < 0 || sfd < 0)
			return hsp_make_errno(err, errno, "template tree `%s`", tree);
		/* The upper dir's owner and mode are those of the VE's /. */
		r = mkdir_like(sfd, "upper", &st, "upper", err);
		if (r == 0 && mkdirat(sfd, "work", 0700) < 0)
			r = hsp_make_errno(err, errno, "mkdir `%s/work`", stage);
	}
	if (r == 0 && ssh_key)
		r = hsp_install_ssh_key(top, tree, ssh_key, err);
	return r;
}

int hsp_private_create(hsp_runtime_t *rt, const struct hsp_ve_config *c,
		       const struct hsp_template *t, const char *ssh_key, hsp_error_t *err)
{
	cleanup_free char *stages = hsp_strdup_printf("%s/.stage", rt->root);
	cleanup_free char *stage = hsp_strdup_printf("%s/%s.%d", stages, c->name, getpid());
	cleanup_free char *img = hsp_disk_path(rt, c->name);
	int r = hsp_mkdir_p(stages, 0700, err);
	if (r == 0)
		r = hsp_rm_rf(stage, err);
	if (r == 0)
		r = stage_private(rt, c, t, stage, ssh_key, err);
	if (r == 0)
		r = hsp_disk_make(img, c->limits.disk, stage, err);
	hsp_error_t ignored = NULL;
	hsp_rm_rf(stage, &ignored);
	hsp_error_release(&ignored);
	return r;
}

int hsp_ve_is_mounted(hsp_runtime_t *rt, const char *name)
{
	cleanup_free char *mnt = hsp_ve_rootfs(rt, name);
	struct statx stx;
	if (statx(AT_FDCWD, mnt, AT_SYMLINK_NOFOLLOW, 0, &stx) < 0)
		return 0;
	return (stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) &&
	       (stx.stx_attributes & STATX_ATTR_MOUNT_ROOT);
}

/* The host's view: ids as stored (the VE's root is the host's root), so
 * nosuid and nodev; the overlay options match the VE's own mount so both
 * read the upper layer alike.  The disk itself is at <run>/<name>/disk. */
static int mount_on_host(hsp_runtime_t *rt, const struct hsp_ve_config *c, const char *mnt, bool ro,
			 hsp_error_t *err)
{
	cleanup_free char *run = hsp_ve_run_dir(rt, c->name);
	cleanup_free char *disk = hsp_strdup_printf("%s/disk", run);
	if (mkdir(run, 0700) < 0 && errno != EEXIST)
		return hsp_make_errno(err, errno, "mkdir `%s`", run);
	struct hsp_root_layers l = {.loopfd = -1, .diskfd = -1};
	int r = mount_disk(rt, c->name, -1, disk, &l, err);
	hsp_rootfs_detach(&l);
	if (r < 0) {
		umount2(disk, MNT_DETACH | UMOUNT_NOFOLLOW);
		return r;
	}
	unsigned long flags = MS_NOSUID | MS_NODEV | (ro ? MS_RDONLY : 0);
	if (c->tree == NULL) {
		cleanup_free char *root = hsp_strdup_printf("%s/root", disk);
		if (mount(root, mnt, NULL, MS_BIND, NULL) < 0)
			r = hsp_make_errno(err, errno, "bind `%s` at `%s`", root, mnt);
		else if (mount(NULL, mnt, NULL, MS_BIND | MS_REMOUNT | flags, NULL) < 0)
			r = hsp_make_errno(err, errno, "remount `%s`", mnt);
	} else {
		cleanup_free char *tree = NULL;
		r = ve_tree(rt, c, &tree, err);
		if (r < 0) {
			umount2(disk, MNT_DETACH | UMOUNT_NOFOLLOW);
			return r;
		}
		cleanup_free char *opts = hsp_strdup_printf(
		    "lowerdir=%s,upperdir=%s/upper,workdir=%s/work,userxattr", tree, disk, disk);
		if (mount("overlay", mnt, "overlay", flags, opts) < 0)
			r = hsp_make_errno(err, errno, "mount overlay at `%s`", mnt);
	}
	if (r < 0) {
		umount2(mnt, MNT_DETACH | UMOUNT_NOFOLLOW);
		umount2(disk, MNT_DETACH | UMOUNT_NOFOLLOW);
	}
	return r;
}

/* The VE's operation lock, for a name that has been checked. */
static int lock_named(hsp_runtime_t *rt, const char *name, hsp_error_t *err)
{
	int r = hsp_validate_name(name, "VE", err);
	return r < 0 ? r : hsp_lock_ve(rt, name, err);
}

int hsp_ve_mount(hsp_runtime_t *rt, const char *name, bool read_only, char **path, hsp_error_t *err)
{
	cleanup_close int lock = lock_named(rt, name, err);
	if (lock < 0)
		return lock;
	struct hsp_ve_config c;
	int r = hsp_config_load(rt, name, &c, err);
	if (r < 0)
		return r;
	cleanup_free char *mnt = hsp_ve_rootfs(rt, name);
	if (hsp_ve_is_running(rt, name))
		r = hsp_make_error(err, EBUSY, "VE `%s` is running: stop it first", name);
	else if (hsp_ve_is_mounted(rt, name))
		r = hsp_make_error(err, EBUSY, "VE `%s` is already mounted at `%s`", name, mnt);
	else if (mkdir(mnt, 0700) < 0 && errno != EEXIST)
		r = hsp_make_errno(err, errno, "mkdir `%s`", mnt);
	if (r == 0)
		r = mount_on_host(rt, &c, mnt, read_only, err);
	hsp_config_clear(&c);
	if (r == 0 && path)
		*path = steal_pointer(&mnt);
	return r;
}

int hsp_ve_umount(hsp_runtime_t *rt, const char *name, hsp_error_t *err)
{
	cleanup_close int lock = lock_named(rt, name, err);
	if (lock < 0)
		return lock;
	cleanup_free char *dir = hsp_ve_dir(rt, name);
	if (access(dir, F_OK) < 0)
		return hsp_make_error(err, ENOENT, "VE `%s` not found", name);
	if (!hsp_ve_is_mounted(rt, name))
		return hsp_make_error(err, EINVAL, "VE `%s` is not mounted", name);
	return hsp_ve_unmount_host(rt, name, err);
}

int hsp_ve_unmount_host(hsp_runtime_t *rt, const char *name, hsp_error_t *err)
{
	cleanup_free char *mnt = hsp_ve_rootfs(rt, name);
	if (umount2(mnt, UMOUNT_NOFOLLOW) < 0) {
		if (errno == EBUSY)
			return hsp_make_error(err, EBUSY, "VE `%s`: `%s` is in use", name, mnt);
		return hsp_make_errno(err, errno, "unmount `%s`", mnt);
	}
	cleanup_free char *disk = hsp_strdup_printf("%s/%s/disk", rt->run_dir, name);
	umount2(disk, MNT_DETACH | UMOUNT_NOFOLLOW);
	return 0;
}
