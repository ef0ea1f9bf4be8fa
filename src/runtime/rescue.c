/* Rescue mode: the root a VE boots when its own does not (hsp_start_opts).
 *
 * Runs in the VE's init, as the VE's root in its user and mount namespaces,
 * before pivot_root, so everything mounted here belongs to that mount
 * namespace and goes with it when the VE stops: nothing of a rescue outlives
 * it but what was written under /repair, which is the VE's own disk. */
#define _GNU_SOURCE
#include "rootfs.h"
#include "spawn.h"
#include "utils.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Key files are small: anything larger is not one. */
#define KEY_FILE_MAX (64 * 1024)

#define MOVE_EMPTY (MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH)

/* A regular file of the VE's own root (`rootfd`), its symlinks resolved as
 * the VE would: within its root, never onto the host's files that this
 * mount namespace still shows.  NULL if missing, not a regular file, or
 * too large: the root being rescued may be broken in any way. */
static char *read_in_root(int rootfd, const char *path)
{
	struct open_how how = {
	    .flags = O_RDONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC,
	    .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
	};
	cleanup_close int fd = (int)syscall(SYS_openat2, rootfd, path, &how, sizeof(how));
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > KEY_FILE_MAX)
		return NULL;
	char *data = calloc(1, (size_t)st.st_size + 1);
	size_t len = 0;
	ssize_t n = 1;
	while (data && len < (size_t)st.st_size && n > 0) {
		n = read(fd, data + len, (size_t)st.st_size - len);
		len += n > 0 ? (size_t)n : 0;
	}
	if (data && n < 0) {
		free(data);
		return NULL;
	}
	return data;
}

static bool has_line(const char *text, const char *line, size_t len)
{
	for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
		if ((p == text || p[-1] == '\n') && (p[len] == '\n' || p[len] == '\0'))
			return true;
	return false;
}

/* The keys create authorized, then every other key line of the VE's own
 * file: the customer logs in with whichever key they use. */
static char *merge_keys(const char *recorded, const char *own)
{
	size_t cap = (recorded ? strlen(recorded) : 0) + (own ? strlen(own) : 0) + 3;
	char *out = calloc(1, cap);
	if (out == NULL)
		return NULL;
	size_t len = 0;
	if (recorded && *recorded) {
		len = (size_t)snprintf(out, cap, "%s", recorded);
		if (out[len - 1] != '\n')
			out[len++] = '\n';
	}
	for (const char *p = own; p && *p;) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);
		char line[8192];
		if (n > 0 && n < sizeof(line) && *p != '#') {
			memcpy(line, p, n);
			line[n] = '\0';
			if (!has_line(out, line, n))
				len += (size_t)snprintf(out + len, cap - len, "%s\n", line);
		}
		p = nl ? nl + 1 : p + n;
	}
	return out;
}

static int write_key(int dir, const char *name, const char *data, mode_t mode, hsp_error_t *err)
{
	cleanup_close int fd =
	    openat(dir, name, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, mode);
	if (fd < 0)
		return hsp_make_errno(err, errno, "rescue root: create /etc/ssh/%s", name);
	size_t n = strlen(data);
	ssize_t w = write(fd, data, n);
	if (w != (ssize_t)n || fchmod(fd, mode) < 0)
		return hsp_make_errno(err, w < 0 || w == (ssize_t)n ? errno : EIO,
				      "rescue root: write /etc/ssh/%s", name);
	return 0;
}

/* The VE's ssh host keys: a rescue root would make new ones at its first
 * boot, and ssh refuses a known host whose key changed. */
static int copy_host_keys(int own, int rescue, hsp_error_t *err)
{
	static const char *const types[] = {"rsa", "ecdsa", "ed25519"};
	struct open_how how = {
	    .flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
	    .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS,
	};
	cleanup_close int dir = (int)syscall(SYS_openat2, rescue, "etc/ssh", &how, sizeof(how));
	if (dir < 0)
		return 0; /* a template without ssh */
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		char key[48], pub[64];
		snprintf(key, sizeof(key), "etc/ssh/ssh_host_%s_key", types[i]);
		snprintf(pub, sizeof(pub), "%s.pub", key);
		cleanup_free char *k = read_in_root(own, key);
		cleanup_free char *p = read_in_root(own, pub);
		if (k == NULL || p == NULL)
			continue;
		int r = write_key(dir, key + strlen("etc/ssh/"), k, 0600, err);
		if (r == 0)
			r = write_key(dir, pub + strlen("etc/ssh/"), p, 0644, err);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Root's keys and the host keys, as the VE has them. */
static int install_keys(int own, int rescue, const char *ssh_keys, hsp_error_t *err)
{
	cleanup_free char *theirs = read_in_root(own, "root/.ssh/authorized_keys");
	cleanup_free char *keys = merge_keys(ssh_keys, theirs);
	if (keys == NULL)
		return hsp_make_errno(err, ENOMEM, "rescue root: ssh keys");
	if (*keys) {
		char top[32];
		snprintf(top, sizeof(top), "/proc/self/fd/%d", rescue);
		int r = hsp_install_ssh_key(top, NULL, keys, err);
		if (r < 0)
			return hsp_error_wrap(err, "rescue root");
	}
	return copy_host_keys(own, rescue, err);
}

/* The throw-away upper layer, in memory: a rescue must work when the VE's
 * disk is full, a likely reason it needs one.  Its pages count against the
 * VE's memory.  It is attached on the VE root's mount point (under the
 * rescue root, which is stacked on it) rather than left detached, so it is
 * a layer like any mount of this namespace.  Returns its mount fd. */
static int mount_scratch(int mountpoint, const struct stat *like, hsp_error_t *err)
{
	cleanup_close int fs = fsopen("tmpfs", FSOPEN_CLOEXEC);
	if (fs < 0 || fsconfig(fs, FSCONFIG_SET_STRING, "mode", "0700", 0) < 0 ||
	    fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
		return hsp_make_errno(err, errno, "rescue root: make tmpfs");
	cleanup_close int m = fsmount(fs, FSMOUNT_CLOEXEC, 0);
	if (m < 0 || move_mount(m, "", mountpoint, "", MOVE_EMPTY) < 0)
		return hsp_make_errno(err, errno, "rescue root: mount tmpfs");
	/* The upper dir's owner and mode are those of the root it shows. */
	if (mkdirat(m, "upper", 0700) < 0 ||
	    fchownat(m, "upper", like->st_uid, like->st_gid, AT_SYMLINK_NOFOLLOW) < 0 ||
	    fchmodat(m, "upper", like->st_mode & 07777, 0) < 0 || mkdirat(m, "work", 0700) < 0)
		return hsp_make_errno(err, errno, "rescue root: make its layers");
	return steal_fd(&m);
}

int hsp_rescue_mount(const int layers[4], const char *ssh_keys, hsp_error_t *err)
{
	struct stat like;
	if (fstat(layers[0], &like) < 0)
		return hsp_make_errno(err, errno, "rescue root: template tree");
	cleanup_close int scratch = mount_scratch(layers[3], &like, err);
	if (scratch < 0)
		return scratch;
	cleanup_close int up = openat(scratch, "upper", O_PATH | O_DIRECTORY | O_CLOEXEC);
	cleanup_close int work = openat(scratch, "work", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (up < 0 || work < 0)
		return hsp_make_errno(err, errno, "rescue root: open its layers");
	const int fds[3] = {layers[0], up, work};
	cleanup_close int root = hsp_overlay_fsmount(fds, "the rescue root", err);
	if (root < 0)
		return root;
	if (move_mount(root, "", scratch, "", MOVE_EMPTY) < 0)
		return hsp_make_errno(err, errno, "rescue root: attach its overlay");
	/* The VE's own root, exactly as a normal start mounts it. */
	cleanup_close int own = hsp_overlay_fsmount(layers, "the VE root", err);
	if (own < 0)
		return own;
	int r = install_keys(own, root, ssh_keys, err);
	if (r < 0)
		return r;
	if (mkdirat(root, "repair", 0755) < 0 && errno != EEXIST)
		return hsp_make_errno(err, errno, "rescue root: mkdir /repair");
	cleanup_close int at =
	    openat(root, "repair", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (at < 0 || move_mount(own, "", at, "", MOVE_EMPTY) < 0)
		return hsp_make_errno(err, errno, "rescue root: mount the VE's root at /repair");
	return steal_fd(&root);
}
