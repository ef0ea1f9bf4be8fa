/* Creating a VE's init: clone into new namespaces, map ids, join cgroups,
 * build the VE's mounts, confine, exec. */
#ifndef HSP_SPAWN_H
#define HSP_SPAWN_H

#include <stdbool.h>
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
	/* Rescue mode (overlay VEs only): a fresh root from `lower` with root's
	 * ssh_keys (may be NULL) and the VE's own overlay at /repair. */
	bool rescue;
	const char *ssh_keys;
};

/* Returns once init has been exec'd (0, *pid set) or has failed before
 * exec (negative errno, *err says where; the child is reaped). */
int hsp_spawn_init(const struct hsp_spawn *s, pid_t *pid, hsp_error_t *err);

/* In the VE's init, as its root: a detached overlay mount of the layers
 * lower, upper and work (O_PATH fds); `what` names it in errors. */
int hsp_overlay_fsmount(const int layers[3], const char *what, hsp_error_t *err);

/* Also in init, as the VE's root (rescue.c): mounts a tmpfs on layers[3]
 * (the VE root's mount point) and on it the rescue root, an overlay of
 * layers[0] with an upper layer on the tmpfs; installs `ssh_keys` and the
 * VE's own root keys and host keys there; mounts the VE's own overlay of
 * layers[0..2] at its /repair.  Returns the rescue root's mount fd. */
int hsp_rescue_mount(const int layers[4], const char *ssh_keys, hsp_error_t *err);

/* Used by exec as well: the environment of a process started in a VE. */
extern char *const hsp_default_env[];

#endif
