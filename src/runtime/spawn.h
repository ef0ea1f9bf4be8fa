/* Creating a VE's init: clone into new namespaces, map ids, join cgroups,
 * build the VE's mounts, confine, exec. */
#ifndef HSP_SPAWN_H
#define HSP_SPAWN_H

#include <sys/types.h>

#include "cgroup.h"
#include "error.h"
#include "seccomp.h"

struct hsp_spawn {
	/* The VE root: a directory to bind, or with `upper` set the mount point
	 * of an overlay of lower, upper and work (see rootfs.h). */
	const char *rootfs;
	const char *lower, *upper, *work;
	const char *hostname;
	char *const *argv;
	uid_t id_base;
	enum hsp_cgroup_mode cg_mode;
	struct hsp_cgroup *cg; /* NULL: no cgroups */
	const struct hsp_seccomp_prog *seccomp;
	/* Network: ip NULL means loopback only. */
	const char *ip, *gateway, *bridge, *host_if;
	const unsigned char *mac; /* eth0's; NULL: random */
};

/* Returns once init has been exec'd (0, *pid set) or has failed before
 * exec (negative errno, *err says where; the child is reaped). */
int hsp_spawn_init(const struct hsp_spawn *s, pid_t *pid, hsp_error_t *err);

/* Used by exec as well: the environment of a process started in a VE. */
extern char *const hsp_default_env[];

#endif
