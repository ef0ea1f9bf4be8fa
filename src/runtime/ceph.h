/* CephFS storage pools: one file system shared by all nodes, mounted by each
 * under its runtime root and administered through libcephfs.  Only the
 * helper program hsp-ceph links libcephfs; this side runs it (and
 * ceph-fuse) and never links it, so the CLI and the monitors stay static.
 * All calls return 0 (or a count) or a negative errno with *err set. */
#ifndef HSP_CEPH_H
#define HSP_CEPH_H

#include <sys/types.h>

#include "error.h"

struct hsp_ceph_pool {
	const char *conf;    /* ceph.conf of the cluster */
	const char *id;	     /* cephx user without "client.", e.g. "node1" */
	const char *keyring; /* holds the key of client.<id> */
	const char *fs_path; /* absolute directory in the file system, e.g. "/hsp" */
};

/* What snapshot and other short administrative calls may take. */
#define HSP_CEPH_OP_TIMEOUT_S 30

/* Connects within timeout_s and creates fs_path, fs_path/ves and
 * fs_path/templates if missing.  A cluster that does not answer gives
 * -ETIMEDOUT (or what libcephfs returned), never a hang. */
int hsp_ceph_check(const struct hsp_ceph_pool *p, unsigned timeout_s, hsp_error_t *err);

/* Mounts fs_path at mnt (an existing directory; dev,suid) with the kernel
 * client if this kernel has one, else ceph-fuse.  Returns once the mount is
 * usable, or fails within timeout_s (+0.5 s) leaving nothing mounted or
 * running.  A live CephFS mount already at mnt: 0 (whatever it mounts); a
 * dead one is replaced; one that does not answer: -ETIMEDOUT. */
int hsp_ceph_mount(const struct hsp_ceph_pool *p, const char *mnt, unsigned timeout_s,
		   hsp_error_t *err);

/* Unmounts (lazily if busy) and makes sure the ceph-fuse serving mnt is
 * gone: it gets 10 s to end its MDS session (1 s when busy), then SIGTERM,
 * then SIGKILL.  Nothing mounted there: 0. */
int hsp_ceph_umount(const char *mnt, hsp_error_t *err);

/* 1: a live CephFS mount at mnt; 0: nothing mounted there; -ENOTCONN (or
 * the errno seen) for a dead mount, -ETIMEDOUT for one that does not answer
 * within timeout_ms, -EMEDIUMTYPE for another file system mounted there. */
int hsp_ceph_mount_state(const char *mnt, unsigned timeout_ms);

/* The ceph-fuse process serving mnt, or 0 (none, or a kernel mount). */
pid_t hsp_ceph_mount_pid(const char *mnt);

/* The client address ("IP:PORT/NONCE", malloc'd) of the ceph-fuse serving
 * mnt, from its admin socket: what an OSD blocklist entry fences.
 * -EOPNOTSUPP for a kernel client mount. */
int hsp_ceph_mount_client_addr(const char *mnt, char **addr, hsp_error_t *err);

/* Snapshots of directory `rel` (relative to fs_path; "." is fs_path
 * itself).  create: -EEXIST if it exists; remove: -ENOENT if it does not;
 * list: sorted names, NULL-terminated, returns the count.  Snapshots
 * inherited from parent directories are not listed. */
int hsp_ceph_snap_create(const struct hsp_ceph_pool *p, const char *rel, const char *snap,
			 hsp_error_t *err);
int hsp_ceph_snap_remove(const struct hsp_ceph_pool *p, const char *rel, const char *snap,
			 hsp_error_t *err);
int hsp_ceph_snap_list(const struct hsp_ceph_pool *p, const char *rel, char ***names,
		       hsp_error_t *err);

/* Argument checks shared with hsp-ceph. */
int hsp_ceph_validate_pool(const struct hsp_ceph_pool *p, hsp_error_t *err);
/* Relative, no "..", "." or ".snap" component (except "." alone). */
int hsp_ceph_validate_rel(const char *rel, hsp_error_t *err);

#endif
