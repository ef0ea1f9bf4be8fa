/* A VE's disk: an ext4 image file (`disk.img` in the VE's directory of its
 * pool) holding its private area, loop-mounted on the node that runs it.
 *
 * Why an image rather than a directory: its size is the VE's quota, exact
 * (ENOSPC at the limit) and what `df /` shows inside; it can grow while the
 * VE runs; and on CephFS, metadata-heavy work inside the image runs at local
 * disk speed (the notes measured ~15x slower directly on ceph-fuse), while
 * the image itself can be mounted by any node.
 *
 * An image must be mounted by one kernel at a time.  The lock that enforces
 * it is an flock on the open file the loop device holds: it lives exactly
 * as long as the loop device uses the image (until the last mount of it is
 * gone), on CephFS too, where the MDS holds it for the client; fencing a
 * dead node releases it. */
#ifndef HSP_DISK_H
#define HSP_DISK_H

#include <stdbool.h>
#include <stdint.h>

#include "error.h"

#define HSP_DISK_DEFAULT (10ULL << 30)
#define HSP_DISK_MIN (64ULL << 20)
#define HSP_DISK_MAX (64ULL << 40)

/* Makes `img` (which must not exist) of `size` bytes, sparse, with an ext4
 * file system holding a copy of the directory `stage`. */
int hsp_disk_make(const char *img, uint64_t size, const char *stage, hsp_error_t *err);

/* Locks `img` (waiting up to wait_ms for a previous user to let go) and
 * attaches it to a free loop device that detaches itself when no longer
 * used.  Returns the loop device's fd. */
int hsp_disk_attach(const char *img, unsigned wait_ms, hsp_error_t *err);

/* Mounts the file system on the loop device `loopfd` as a detached mount,
 * idmapped into the user namespace `userns` unless it is -1.  Returns the
 * mount's fd. */
int hsp_disk_mount(int loopfd, int userns, hsp_error_t *err);

/* For reading an image: attached read-only when the file is (a CephFS
 * snapshot), locked without waiting when `lock` (a stopped VE's own disk). */
int hsp_disk_attach_readonly(const char *img, bool lock, hsp_error_t *err);

/* Waits up to wait_ms until no loop device holds `img`: 0 or -EBUSY. */
int hsp_disk_wait_released(const char *img, unsigned wait_ms);

/* Grows a mounted disk to `size` bytes: the image file, the loop device
 * (`loopfd`), then the file system (`fsfd`: any fd on it), which needs
 * CAP_SYS_RESOURCE; on failure the image keeps its size.  Shrinking is
 * refused. */
int hsp_disk_grow(const char *img, int loopfd, int fsfd, uint64_t size, hsp_error_t *err);

/* Grows a disk that is not mounted: the image and its file system. */
int hsp_disk_grow_offline(const char *img, uint64_t size, hsp_error_t *err);

#endif
