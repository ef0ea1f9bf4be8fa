/* Storage pools: where VEs and their templates live.
 *
 * A pool is a directory tree with `ves/<name>/` (config.json, disk.img) and
 * `templates/<name>/`.  The pool "local" is the runtime root itself (the
 * embedded default).  Others are configured per runtime root in
 * <root>/pools.json: `local` pools at another directory, and `cephfs`
 * pools, a directory of a CephFS file system shared by every node, mounted
 * at <root>/pools/<name> when first needed.  Because a VE's configuration
 * and disk both live in its pool, any node with the pool configured can
 * start any VE in it. */
#ifndef HSP_POOL_H
#define HSP_POOL_H

#include "ceph.h"
#include "internal.h"

enum hsp_pool_type { HSP_POOL_LOCAL, HSP_POOL_CEPHFS };

struct hsp_pool {
	char *name;
	enum hsp_pool_type type;
	char *path;			     /* local: the directory */
	char *conf, *id, *keyring, *fs_path; /* cephfs */
	char *base;			     /* where its ves/ and templates/ are on this node */
	bool released; /* cephfs: unmounted on purpose (maintenance), not mounted on use */
};

/* The pool named `name` (NULL: "local"), its base mounted; the pointer
 * belongs to the runtime handle. */
int hsp_pool_get(hsp_runtime_t *rt, const char *name, const struct hsp_pool **p, hsp_error_t *err);
/* The pool that holds VE `name`: -ENOENT with "VE `name` not found" (and
 * which pools could not be searched) if none does. */
int hsp_pool_of_ve(hsp_runtime_t *rt, const char *name, const struct hsp_pool **p,
		   hsp_error_t *err);
/* Where VE `name` lives: its pool's base if found (or placed with
 * hsp_pool_place), else the runtime root. */
const char *hsp_ve_base(hsp_runtime_t *rt, const char *name);
/* Records that VE `name` is being created in pool `p`. */
void hsp_pool_place(hsp_runtime_t *rt, const char *name, const struct hsp_pool *p);
/* Every pool, in configuration order after "local"; the count. */
int hsp_pools(hsp_runtime_t *rt, const struct hsp_pool *const **pools, hsp_error_t *err);
void hsp_pools_free(hsp_runtime_t *rt);

struct hsp_ceph_pool hsp_pool_ceph(const struct hsp_pool *p);

#endif
