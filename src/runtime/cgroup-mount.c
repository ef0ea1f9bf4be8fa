/* The VE's view of cgroupfs (hsp_cgroup_mount_in_ve, see cgroup.h).  Runs in
 * the VE child between clone and exec: no heap allocation unless it fails. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cgroup-internal.h"

#define VE_MOUNT_FLAGS (MS_NOSUID | MS_NODEV | MS_NOEXEC)

static bool v1_list_is_ours(const char *list, size_t len)
{
	for (size_t i = 0; i < CG_MAX_CTRL; i++)
		if (hsp_cg_list_has(list, len, hsp_cg_v1_ctrls[i].name))
			return true;
	return false;
}

/* Links each member of a co-mounted hierarchy ("cpu,cpuacct") to it. */
static int link_members(const char *base, const char *list, hsp_error_t *err)
{
	for (const char *p = list; *p;) {
		size_t n = strcspn(p, ",");
		char link[PATH_MAX];
		if (snprintf(link, sizeof(link), "%s/%.*s", base, (int)n, p) >= (int)sizeof(link))
			return hsp_make_error(err, ENAMETOOLONG, "cgroup: path `%s` too long",
					      base);
		if (symlink(list, link) < 0 && errno != EEXIST)
			return hsp_make_errno(err, errno, "cgroup: symlink `%s`", link);
		p += n + (p[n] == ',');
	}
	return 0;
}

static int mount_v1_one(const char *base, const char *list, size_t len, hsp_error_t *err)
{
	char data[256], dir[PATH_MAX];
	if (len >= sizeof(data))
		return hsp_make_error(err, ENAMETOOLONG, "cgroup: hierarchy `%.*s`", (int)len,
				      list);
	memcpy(data, list, len);
	data[len] = '\0';
	if (snprintf(dir, sizeof(dir), "%s/%s", base, data) >= (int)sizeof(dir))
		return hsp_make_error(err, ENAMETOOLONG, "cgroup: path `%s` too long", base);
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return hsp_make_errno(err, errno, "cgroup: mkdir `%s`", dir);
	if (mount("cgroup", dir, "cgroup", MS_RDONLY | VE_MOUNT_FLAGS, data) < 0)
		return hsp_make_errno(err, errno, "cgroup: mount cgroup `%s` at `%s`", data, dir);
	return memchr(data, ',', len) ? link_members(base, data, err) : 0;
}

static int read_self_cgroup(char *buf, size_t size, hsp_error_t *err)
{
	size_t len = 0;
	ssize_t n = 0;
	int fd = open("/proc/self/cgroup", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return hsp_make_errno(err, errno, "cgroup: open /proc/self/cgroup");
	while (len < size - 1 && (n = read(fd, buf + len, size - 1 - len)) != 0) {
		if (n < 0 && errno != EINTR)
			break;
		len += n > 0 ? (size_t)n : 0;
	}
	close(fd);
	buf[len] = '\0';
	return n < 0 ? hsp_make_errno(err, errno, "cgroup: read /proc/self/cgroup") : 0;
}

/* One read-only mount per v1 hierarchy holding our controllers, named as
 * /proc/self/cgroup lists it.  Runs in the VE child after clone: stack
 * buffers and syscalls only on the success path. */
static int mount_v1(const char *base, hsp_error_t *err)
{
	char buf[8192];
	int r = read_self_cgroup(buf, sizeof(buf), err);
	for (const char *line = buf; r == 0 && *line;) {
		const char *nl = strchrnul(line, '\n');
		const char *c1 = memchr(line, ':', (size_t)(nl - line));
		const char *c2 = c1 ? memchr(c1 + 1, ':', (size_t)(nl - c1 - 1)) : NULL;
		size_t len = c2 ? (size_t)(c2 - c1 - 1) : 0;
		if (len > 0 && v1_list_is_ours(c1 + 1, len))
			r = mount_v1_one(base, c1 + 1, len, err);
		line = *nl ? nl + 1 : nl;
	}
	return r;
}

int hsp_cgroup_mount_in_ve(enum hsp_cgroup_mode mode, const char *rootfs, hsp_error_t *err)
{
	char target[PATH_MAX];
	if ((size_t)snprintf(target, sizeof(target), "%s/sys/fs/cgroup", rootfs) >= sizeof(target))
		return hsp_make_error(err, ENAMETOOLONG, "cgroup: rootfs path too long");
	if (mode == HSP_CGROUP_V2) {
		if (mount("cgroup2", target, "cgroup2", MS_RDONLY | VE_MOUNT_FLAGS, NULL) < 0)
			return hsp_make_errno(err, errno, "cgroup: mount cgroup2 at `%s`", target);
		return 0;
	}
	if (mount("tmpfs", target, "tmpfs", VE_MOUNT_FLAGS, "mode=755") < 0)
		return hsp_make_errno(err, errno, "cgroup: mount tmpfs at `%s`", target);
	int r = mount_v1(target, err);
	if (r < 0)
		return r;
	if (mount(NULL, target, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | VE_MOUNT_FLAGS, NULL) < 0)
		return hsp_make_errno(err, errno, "cgroup: remount `%s` read-only", target);
	return 0;
}
