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
 *   <root>/ves/<name>/disk.img            the VE's disk (disk.h), holding
 *       upper/, work/                     overlay layout: the VE's own changes
 *       root/                             flat layout: a VE made from a path
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

/* Host-side mounts a running VE's init is made from, under its run dir:
 * its disk (private/) and template tree (lower/), idmapped.  Kept while the
 * VE runs, so a reboot inside starts from them again. */
struct hsp_root_layers {
	char *root;		    /* flat: the dir to bind; overlay: the mount point */
	char *lower, *upper, *work; /* overlay only */
	char *mnt_lower, *mnt_private;
	int loopfd, diskfd; /* the disk's loop device and mount */
};

int hsp_rootfs_attach(hsp_runtime_t *rt, const struct hsp_ve_config *c, struct hsp_root_layers *l,
		      hsp_error_t *err);
/* Detaches what attach made (a child keeps its copies) and frees *l. */
void hsp_rootfs_detach(struct hsp_root_layers *l);

/* Makes the VE's disk (the tree must exist for an overlay VE), with root's
 * ssh key when `ssh_key` is set; on failure the caller removes the VE dir. */
int hsp_private_create(hsp_runtime_t *rt, const struct hsp_ve_config *c,
		       const struct hsp_template *t, const char *ssh_key, hsp_error_t *err);
char *hsp_disk_path(hsp_runtime_t *rt, const char *name);
/* Appends `key` to /root/.ssh/authorized_keys under `top` (a fresh VE's
 * private area, or a rescue root), owned by uid 0, without following any
 * symlink the template might hold.  With `tree` (the template tree under
 * top), a missing /root is made with the tree's owner and mode, as a
 * copy-up would. */
int hsp_install_ssh_key(const char *top, const char *tree, const char *key, hsp_error_t *err);

/* Template trees (tree.c).  The key names one version of the template's
 * archive; the path is on this node's disk. */
struct hsp_pool;
char *hsp_tree_path(hsp_runtime_t *rt, const struct hsp_pool *p, const char *tmpl, const char *key);
/* For a create: the tree of the template's current archive, made on this
 * node if missing (0 if it existed, 1 if made); *key names it. */
int hsp_tree_ensure(hsp_runtime_t *rt, const struct hsp_pool *p, const struct hsp_template *t,
		    char **key, hsp_error_t *err);
/* For a start or mount: the tree a VE was made on, unpacked on this node
 * from the version the pool kept if this node has not got it. */
int hsp_tree_require(hsp_runtime_t *rt, const struct hsp_pool *p, const char *tmpl, const char *key,
		     hsp_error_t *err);
/* Removes the trees (and kept archive versions) of `tmpl` that no VE
 * uses, except the current one.  Call with the root lock held. */
void hsp_tree_gc(hsp_runtime_t *rt, const struct hsp_pool *p, const char *tmpl);

/* Ends `hsp-runtime mount` (umount, destroy). */
int hsp_ve_unmount_host(hsp_runtime_t *rt, const char *name, hsp_error_t *err);
/* 1 if the VE's files are mounted on the host at <ve dir>/rootfs, else 0. */
int hsp_ve_is_mounted(hsp_runtime_t *rt, const char *name);

/* A user-namespace fd mapping 0..HSP_IDMAP_SIZE-1 to base.., for idmapped
 * mounts. */
int hsp_userns_fd(uid_t base, hsp_error_t *err);
int hsp_idmap_write(pid_t pid, const char *file, uid_t base, hsp_error_t *err);

#endif
