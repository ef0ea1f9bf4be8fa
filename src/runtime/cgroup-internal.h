/* Private to the cgroup*.c files: the cgroup object and the helpers they
 * share.  The public interface is cgroup.h.
 *
 *   cgroup.c          mode, paths, the object, create/open, tasks, freeze,
 *                     destroy; also the libcgroup glue and file helpers below
 *   cgroup-limits.c   checking and setting limits, usage
 *   cgroup-devices.c  the device allow-list (v1 rules, v2 eBPF program)
 *   cgroup-mount.c    the VE's read-only view of cgroupfs */
#ifndef HSP_CGROUP_INTERNAL_H
#define HSP_CGROUP_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cgroup.h"
#include "error.h"

#define CG_ROOT "/sys/fs/cgroup"
#define CG_UNLIMITED UINT64_MAX
#define CG_MAX_CTRL 8

struct cg_ctrl {
	const char *name; /* static: a v1 controller, or "unified" on v2 */
	char *rel;	  /* the VE group, relative to the hierarchy root */
	char *dir;	  /* absolute directory of the VE group */
};

struct hsp_cgroup {
	enum hsp_cgroup_mode mode;
	size_t n;
	struct cg_ctrl c[CG_MAX_CTRL];
	char *serialized;
};

/* The v1 controllers a VE group is created in (cgroup.c). */
struct cg_ctrl_spec {
	const char *name;
	bool required;
};
extern const struct cg_ctrl_spec hsp_cg_v1_ctrls[CG_MAX_CTRL];

/* ---- cgroup.c: libcgroup glue and file helpers ---- */

/* Every use of libcgroup goes through here first.  Not for the monitor's
 * calls (open, attach, pids, destroy, mount_in_ve, detect_mode): its
 * cgroup_init() would leave ~800 KiB resident in each monitor. */
int hsp_cg_lib_init(hsp_error_t *err);
/* How many times hsp_cg_lib_init was entered in this process (tests). */
unsigned long hsp_cg_lib_entries(void);
char *hsp_cg_path_join(const char *dir, const char *file);
bool hsp_cg_file_exists(const char *dir, const char *file);
int hsp_cg_read_str(const char *dir, const char *file, char **out, hsp_error_t *err);
/* "max" reads as CG_UNLIMITED. */
int hsp_cg_read_u64(const char *dir, const char *file, uint64_t *v, hsp_error_t *err);
int hsp_cg_read_key(const char *dir, const char *file, const char *key, uint64_t *v,
		    hsp_error_t *err);
/* No allocation: fit for the VE child after clone. */
bool hsp_cg_list_has(const char *list, size_t len, const char *ctrl);
/* The hierarchy holding controller `name` (the single one on v2), or NULL. */
struct cg_ctrl *hsp_cg_ctrl_of(struct hsp_cgroup *cg, const char *name);
/* Writes one control file of the VE group, through libcgroup. */
int hsp_cg_set(struct hsp_cgroup *cg, const char *file, const char *value, hsp_error_t *err);
int hsp_cg_set_u64(struct hsp_cgroup *cg, const char *file, uint64_t v, hsp_error_t *err);
/* The mount point of a v1 controller (one of hsp_cg_v1_ctrls), or NULL;
 * from /proc/self/mountinfo, parsed once per process, without libcgroup. */
const char *hsp_cg_v1_mount(const char *ctrl);
/* Does the v2 root offer controller `name`? */
bool hsp_cg_v2_has_controller(const char *name);

/* ---- cgroup-limits.c ---- */

/* Range checks of the set fields, before any host lookup. */
int hsp_cg_validate_limits(const struct hsp_limits *lim, hsp_error_t *err);

/* ---- cgroup-devices.c ---- */

/* The v1 devices.deny/devices.allow rules of the allow-list (v2 uses
 * hsp_cgroup_attach_device_filter). */
int hsp_cg_v1_devices(struct hsp_cgroup *cg, hsp_error_t *err);

#endif
