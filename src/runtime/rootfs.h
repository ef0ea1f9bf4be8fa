/* A VE's root file system: its private area on disk, the shared template
 * trees, and the mounts that make them the VE's root.
 *
 * On disk a VE's files keep the ids they have inside the VE (its root is
 * uid 0).  Only when the VE starts does an idmapped mount shift them into
 * the VE's id range, so a private area can move to another node or id
 * range, be backed up, or be mounted by a rescue VE, without a chown pass.
 *
 *   <root>/templates/<t>/trees/<key>/   a template unpacked once per archive
 *                                       version, shared read-only by its VEs
 *   <root>/ves/<name>/private/upper,work  overlay layout: the VE's own changes
 *   <root>/ves/<name>/private/root        flat layout: a VE made from a path
 *   <root>/ves/<name>/rootfs              where `hsp-runtime mount` shows it
 *
 * The VE's init mounts the overlay itself, inside its user namespace
 * (overlayfs cannot be idmapped, but its layers can): the mounter's
 * credentials, which overlayfs uses for copy-up, are then the VE root's. */
#ifndef HSP_ROOTFS_H
#define HSP_ROOTFS_H

#include <stdbool.h>
#include <sys/types.h>

#include "internal.h"
#include "template.h"

/* Host-side mounts made for one start, under the VE's run dir. */
struct hsp_root_layers {
	char *root;		    /* flat: the dir to bind; overlay: the mount point */
	char *lower, *upper, *work; /* overlay only */
	char *mnt_lower, *mnt_private;
};

/* Makes idmapped mounts of the VE's private area (and template tree) in the
 * caller's mount namespace, for a child cloned afterwards to use. */
int hsp_rootfs_attach(hsp_runtime_t *rt, const struct hsp_ve_config *c, struct hsp_root_layers *l,
		      hsp_error_t *err);
/* Detaches what attach made (the child keeps its copies) and frees *l. */
void hsp_rootfs_detach(struct hsp_root_layers *l);

/* Creates <ve dir>/private for a VE (the tree must exist for an overlay
 * VE); on failure the caller removes the VE dir. */
int hsp_private_create(hsp_runtime_t *rt, const struct hsp_ve_config *c,
		       const struct hsp_template *t, hsp_error_t *err);
/* The directory new files for the VE go to before its first start:
 * private/upper or private/root (malloc'd). */
char *hsp_private_top(hsp_runtime_t *rt, const char *name, bool overlay);

/* Template trees.  The key names one version of the template's archive. */
char *hsp_tree_path(hsp_runtime_t *rt, const char *tmpl, const char *key);
/* 0 if the tree for the template's current archive existed, 1 if made. */
int hsp_tree_ensure(hsp_runtime_t *rt, const struct hsp_template *t, char **key, hsp_error_t *err);
/* Removes the trees of `tmpl` that no VE uses, except the current one.
 * Call with the root lock held. */
void hsp_tree_gc(hsp_runtime_t *rt, const char *tmpl);

/* 1 if the VE's files are mounted on the host at <ve dir>/rootfs, else 0. */
int hsp_ve_is_mounted(hsp_runtime_t *rt, const char *name);

/* A user-namespace fd mapping 0..HSP_IDMAP_SIZE-1 to base.., for idmapped
 * mounts. */
int hsp_userns_fd(uid_t base, hsp_error_t *err);
int hsp_idmap_write(pid_t pid, const char *file, uid_t base, hsp_error_t *err);

#endif
