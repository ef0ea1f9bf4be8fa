/* Snapshots of a VE (snapshot.c), shared with backups (backup.c).
 *
 * A snapshot holds the VE's disk image and config.json as they were at one
 * instant; for a running VE its file system is frozen (FIFREEZE) for that
 * instant, so the image is crash-consistent and its journal clean.
 *   local pools:  <ve dir>/snapshots/<snap>/{disk.img,config.json,meta.json}
 *   cephfs pools: a CephFS snapshot of <ve dir>: <ve dir>/.snap/<snap>/ */
#ifndef HSP_SNAPSHOT_H
#define HSP_SNAPSHOT_H

#include <stdint.h>

#include "internal.h"

struct hsp_pool;

/* A VE whose lock is held, with its pool. */
struct hsp_snap_ve {
	hsp_runtime_t *rt;
	const char *name;
	const struct hsp_pool *pool;
	char *dir; /* <pool>/ves/<name> */
};

/* Takes the VE's lock (returned, an fd to close) and fills *v; the VE must
 * exist.  Free v with hsp_snap_ve_clear. */
int hsp_snap_ve_open(hsp_runtime_t *rt, const char *name, struct hsp_snap_ve *v, hsp_error_t *err);
void hsp_snap_ve_clear(struct hsp_snap_ve *v);

/* The directory holding the snapshot's disk.img and config.json. */
char *hsp_snap_path(const struct hsp_snap_ve *v, const char *snap);
/* Takes snapshot `snap` (not validated here: backups use internal names);
 * *frozen_us is how long a running VE's file system was frozen. */
int hsp_snap_take(const struct hsp_snap_ve *v, const char *snap, uint64_t *frozen_us,
		  hsp_error_t *err);
int hsp_snap_remove(const struct hsp_snap_ve *v, const char *snap, hsp_error_t *err);
/* -ENOENT with a one-line message if the snapshot does not exist. */
int hsp_snap_check(const struct hsp_snap_ve *v, const char *snap, hsp_error_t *err);

/* Copies the open file `in` into the empty file `out` keeping its holes:
 * a reflink (FICLONE) where the file system can, else only the data
 * extents (SEEK_DATA/SEEK_HOLE), skipping zero blocks.  0 or -errno. */
int hsp_copy_sparse(int in, int out);

#endif
