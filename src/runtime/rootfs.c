/* VE root file systems: the private area, the idmapped mounts a start
 * needs, and mounting a stopped VE's files on the host (see rootfs.h). */
#define _GNU_SOURCE
#include "rootfs.h"
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

/* Mounts `src` at `dst` with its ids shifted by the user namespace `userns`.
 * A mount left at `dst` by a start that crashed is replaced. */
static int idmapped_bind(const char *src, const char *dst, int userns, hsp_error_t *err)
{
	if (mkdir(dst, 0700) < 0 && errno != EEXIST)
		return hsp_make_errno(err, errno, "mkdir `%s`", dst);
	while (umount2(dst, MNT_DETACH | UMOUNT_NOFOLLOW) == 0)
		;
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
	if (move_mount(t, "", AT_FDCWD, dst, MOVE_MOUNT_F_EMPTY_PATH) < 0)
		return hsp_make_errno(err, errno, "attach idmapped mount at `%s`", dst);
	return 0;
}

char *hsp_private_top(hsp_runtime_t *rt, const char *name, bool overlay)
{
	return hsp_strdup_printf("%s/ves/%s/private/%s", rt->root, name,
				 overlay ? "upper" : "root");
}

int hsp_rootfs_attach(hsp_runtime_t *rt, const struct hsp_ve_config *c, struct hsp_root_layers *l,
		      hsp_error_t *err)
{
	memset(l, 0, sizeof(*l));
	cleanup_free char *run = hsp_ve_run_dir(rt, c->name);
	cleanup_free char *priv = hsp_strdup_printf("%s/ves/%s/private", rt->root, c->name);
	cleanup_close int userns = hsp_userns_fd(c->id_base, err);
	if (userns < 0)
		return userns;
	l->mnt_private = hsp_strdup_printf("%s/private", run);
	int r = idmapped_bind(priv, l->mnt_private, userns, err);
	if (r < 0 || c->tree == NULL) {
		l->root = hsp_strdup_printf("%s/root", l->mnt_private);
		return r;
	}
	cleanup_free char *tree = hsp_tree_path(rt, c->template, c->tree);
	if (access(tree, F_OK) < 0)
		return hsp_make_errno(err, errno, "VE `%s`: template tree `%s`", c->name, tree);
	l->mnt_lower = hsp_strdup_printf("%s/lower", run);
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
	free(l->root);
	free(l->lower);
	free(l->upper);
	free(l->work);
	free(l->mnt_lower);
	free(l->mnt_private);
	memset(l, 0, sizeof(*l));
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

int hsp_private_create(hsp_runtime_t *rt, const struct hsp_ve_config *c,
		       const struct hsp_template *t, hsp_error_t *err)
{
	cleanup_free char *priv = hsp_strdup_printf("%s/ves/%s/private", rt->root, c->name);
	/* 0711: the VE's init reaches its root through here before it is
	 * root in its own namespace. */
	if (mkdir(priv, 0711) < 0)
		return hsp_make_errno(err, errno, "mkdir `%s`", priv);
	if (c->tree == NULL) {
		cleanup_free char *root = hsp_strdup_printf("%s/root", priv);
		return hsp_rootfs_populate(t, root, 0, err);
	}
	cleanup_free char *tree = hsp_tree_path(rt, c->template, c->tree);
	struct stat st;
	if (stat(tree, &st) < 0)
		return hsp_make_errno(err, errno, "template tree `%s`", tree);
	cleanup_close int pfd = open(priv, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (pfd < 0)
		return hsp_make_errno(err, errno, "open `%s`", priv);
	/* The upper dir's owner and mode are those of the VE's /. */
	int r = mkdir_like(pfd, "upper", &st, "private/upper", err);
	if (r == 0 && mkdirat(pfd, "work", 0700) < 0)
		r = hsp_make_errno(err, errno, "mkdir `%s/work`", priv);
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
 * read the upper layer alike. */
static int mount_on_host(hsp_runtime_t *rt, const struct hsp_ve_config *c, const char *mnt, bool ro,
			 hsp_error_t *err)
{
	cleanup_free char *priv = hsp_strdup_printf("%s/ves/%s/private", rt->root, c->name);
	unsigned long flags = MS_NOSUID | MS_NODEV | (ro ? MS_RDONLY : 0);
	if (c->tree == NULL) {
		cleanup_free char *root = hsp_strdup_printf("%s/root", priv);
		if (mount(root, mnt, NULL, MS_BIND, NULL) < 0)
			return hsp_make_errno(err, errno, "bind `%s` at `%s`", root, mnt);
		if (mount(NULL, mnt, NULL, MS_BIND | MS_REMOUNT | flags, NULL) < 0) {
			int e = errno;
			umount2(mnt, MNT_DETACH);
			return hsp_make_errno(err, e, "remount `%s`", mnt);
		}
		return 0;
	}
	cleanup_free char *tree = hsp_tree_path(rt, c->template, c->tree);
	cleanup_free char *opts = hsp_strdup_printf(
	    "lowerdir=%s,upperdir=%s/upper,workdir=%s/work,userxattr", tree, priv, priv);
	if (mount("overlay", mnt, "overlay", flags, opts) < 0)
		return hsp_make_errno(err, errno, "mount overlay at `%s`", mnt);
	return 0;
}

/* The VE's operation lock, for a name that has been checked. */
static int lock_named(hsp_runtime_t *rt, const char *name, hsp_error_t *err)
{
	int r = hsp_validate_name(name, "VE", err);
	return r < 0 ? r : hsp_lock_ve(rt, name, err);
}

int hsp_ve_mount(hsp_runtime_t *rt, const char *name, bool read_only, hsp_error_t *err)
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
	cleanup_free char *mnt = hsp_ve_rootfs(rt, name);
	if (umount2(mnt, UMOUNT_NOFOLLOW) < 0) {
		if (errno == EBUSY)
			return hsp_make_error(err, EBUSY, "VE `%s`: `%s` is in use", name, mnt);
		return hsp_make_errno(err, errno, "unmount `%s`", mnt);
	}
	return 0;
}
