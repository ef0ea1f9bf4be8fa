/* The monitor's side of a restore (checkpoint.c). */
#ifndef HSP_CHECKPOINT_H
#define HSP_CHECKPOINT_H

#include <sys/types.h>

#include "cgroup.h"
#include "internal.h"
#include "rootfs.h"

/* Runs in a fresh monitor with the VE's disk attached (`l`): mounts the VE
 * root where criu can see it, has criu restore the tree of `dir` into the
 * groups `cg` as the caller's child (--restore-sibling), and returns its
 * init in *pid.  t->restore_us and t->frozen_us are filled.  On failure
 * nothing of the VE runs; the caller tears the rest down. */
int hsp_checkpoint_restore_tree(hsp_runtime_t *rt, const struct hsp_ve_config *cfg,
				const struct hsp_root_layers *l, struct hsp_cgroup *cg,
				const char *host_if, const char *dir, pid_t *pid,
				struct hsp_migration_times *t, hsp_error_t *err);

#endif
