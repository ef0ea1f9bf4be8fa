/* Control groups for VEs, through libcgroup, on v1, hybrid and pure v2 hosts.
 *
 * A VE's group lives at <parent>/hsp-<instance>/<ve> in every hierarchy we
 * use, where <parent> is the calling process's own group in that hierarchy
 * (so VE groups nest under the runtime's own memory cgroup, never at the
 * root) unless the HSP_CGROUP_PARENT environment variable names another.
 * Limits sit on that group; the VE's cgroup namespace is rooted there and
 * its cgroupfs is mounted read-only, so VE root cannot lift them. */
#ifndef HSP_CGROUP_H
#define HSP_CGROUP_H

#include <stdint.h>
#include <sys/types.h>

#include "error.h"
#include "hsp-runtime.h"

enum hsp_cgroup_mode {
	HSP_CGROUP_V1,	   /* only v1 hierarchies */
	HSP_CGROUP_HYBRID, /* v1 controllers plus a (mostly empty) v2 at unified/ */
	HSP_CGROUP_V2,	   /* pure unified hierarchy */
};

/* Pure classification from the filesystem magic numbers of
 * /sys/fs/cgroup and /sys/fs/cgroup/unified (0 when absent). */
int hsp_cgroup_mode_from_magic(long root_magic, long unified_magic, enum hsp_cgroup_mode *mode);
int hsp_cgroup_detect_mode(enum hsp_cgroup_mode *mode, hsp_error_t *err);
const char *hsp_cgroup_mode_name(enum hsp_cgroup_mode mode);

struct hsp_cgroup; /* opaque */

/* Fails with EOPNOTSUPP and a clear message when a set limit cannot be
 * enforced on this host (e.g. swap without memsw accounting, io weight
 * without an io-weight capable scheduler/controller). */
int hsp_cgroup_check_limits(const struct hsp_limits *lim, hsp_error_t *err);

/* Creates (or reuses, if left over) the VE's group, applies the limits and
 * the device allow-list.  `instance` distinguishes runtime instances. */
int hsp_cgroup_create(const char *instance, const char *ve, const struct hsp_limits *lim,
		      struct hsp_cgroup **out, hsp_error_t *err);
/* Re-opens an existing group from hsp_cgroup_path() output (no creation). */
int hsp_cgroup_open(const char *serialized, struct hsp_cgroup **out, hsp_error_t *err);
/* A string that hsp_cgroup_open accepts; owned by the cgroup object.
 * "<mode>;<controller>=<path>;..." with paths relative to each hierarchy
 * root, e.g. "v2;unified=/hsp.slice/hsp-1f2e/web" (details in cgroup.c). */
const char *hsp_cgroup_path(const struct hsp_cgroup *cg);

/* Moves the whole process (all its threads) into the group. */
int hsp_cgroup_attach(struct hsp_cgroup *cg, pid_t pid, hsp_error_t *err);
/* Applies only the fields set in lim; used at creation and by `set`. */
int hsp_cgroup_set_limits(struct hsp_cgroup *cg, const struct hsp_limits *lim, hsp_error_t *err);
int hsp_cgroup_usage(struct hsp_cgroup *cg, struct hsp_usage *u, hsp_error_t *err);
/* Returns the number of pids written to *pids (malloc'd). */
int hsp_cgroup_pids(struct hsp_cgroup *cg, pid_t **pids, hsp_error_t *err);
/* Freezes or thaws every task in the group (v1 freezer / v2 cgroup.freeze). */
int hsp_cgroup_freeze(struct hsp_cgroup *cg, int frozen, hsp_error_t *err);
/* Removes the group, and sub-groups the VE made, from every hierarchy
 * (hsp-<instance> too once it is empty).  Thaws a v1 freezer first so
 * killed tasks can exit; EBUSY if tasks remain after 2 s.  Idempotent. */
int hsp_cgroup_destroy(struct hsp_cgroup *cg, hsp_error_t *err);
void hsp_cgroup_free(struct hsp_cgroup *cg);

/* Attaches the VE device allow-list, as a BPF_PROG_TYPE_CGROUP_DEVICE
 * program, to a cgroup2 directory and detaches any device program that was
 * there before.  hsp_cgroup_create does this on v2 hosts; exposed for tests
 * (it also works on the unified hierarchy of a hybrid host). */
int hsp_cgroup_attach_device_filter(const char *dir, hsp_error_t *err);

/* Inside a new mount namespace, after the VE's cgroup namespace exists and
 * before pivot_root: mounts the VE's cgroup view read-only at
 * <rootfs>/sys/fs/cgroup (sysfs already mounted there).  v2: one cgroup2
 * mount; v1/hybrid: a tmpfs with one cgroup mount per hierarchy the VE
 * group lives in (named as /proc/self/cgroup lists it, co-mounted members
 * symlinked), then the tmpfs is made read-only.  No heap allocation unless
 * it fails, so it is fit for the child between clone and exec. */
int hsp_cgroup_mount_in_ve(enum hsp_cgroup_mode mode, const char *rootfs, hsp_error_t *err);

#endif
