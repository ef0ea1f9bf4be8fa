/* Storage pools (see pool.h): configuration, lookup and the admin verbs. */
#define _GNU_SOURCE
#include "pool.h"
#include "utils.h"

#include <dirent.h>
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* How long a node waits for its CephFS mount before giving up. */
#define POOL_MOUNT_TIMEOUT_S 20

static void pool_free(struct hsp_pool *p)
{
	if (p == NULL)
		return;
	free(p->name);
	free(p->path);
	free(p->conf);
	free(p->id);
	free(p->keyring);
	free(p->fs_path);
	free(p->base);
	free(p);
}

static void forget_ves(hsp_runtime_t *rt)
{
	for (size_t i = 0; i < rt->nve; i++)
		free(rt->ve_names[i]);
	free(rt->ve_names);
	free(rt->ve_pools);
	rt->ve_names = NULL;
	rt->ve_pools = NULL;
	rt->nve = 0;
}

/* The pool recorded for VE `name`, or NULL. */
static const struct hsp_pool *cached(hsp_runtime_t *rt, const char *name)
{
	for (size_t i = 0; i < rt->nve; i++)
		if (strcmp(rt->ve_names[i], name) == 0)
			return rt->ve_pools[i];
	return NULL;
}

void hsp_pools_free(hsp_runtime_t *rt)
{
	for (size_t i = 0; i < rt->npools; i++)
		pool_free(rt->pools[i]);
	free(rt->pools);
	forget_ves(rt);
	rt->pools = NULL;
	rt->npools = 0;
	rt->pools_loaded = false;
}

struct hsp_ceph_pool hsp_pool_ceph(const struct hsp_pool *p)
{
	return (struct hsp_ceph_pool){p->conf, p->id, p->keyring, p->fs_path};
}

static char *str_of(json_object *o, const char *key)
{
	json_object *v;
	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return strdup(json_object_get_string(v));
}

static int add_pool(hsp_runtime_t *rt, struct hsp_pool *p)
{
	struct hsp_pool **v = realloc(rt->pools, (rt->npools + 1) * sizeof(*v));
	if (v == NULL)
		return -ENOMEM;
	rt->pools = v;
	rt->pools[rt->npools++] = p;
	return 0;
}

static char *pools_file(hsp_runtime_t *rt)
{
	return hsp_strdup_printf("%s/pools.json", rt->root);
}

static int pool_from_json(json_object *o, struct hsp_pool **out, const char *path, hsp_error_t *err)
{
	struct hsp_pool *p = calloc(1, sizeof(*p));
	if (p == NULL)
		return hsp_make_errno(err, ENOMEM, "pools");
	p->name = str_of(o, "name");
	cleanup_free char *type = str_of(o, "type");
	p->path = str_of(o, "path");
	p->conf = str_of(o, "conf");
	p->id = str_of(o, "id");
	p->keyring = str_of(o, "keyring");
	p->fs_path = str_of(o, "fs_path");
	bool ok = p->name && type;
	if (ok && strcmp(type, "local") == 0) {
		p->type = HSP_POOL_LOCAL;
		ok = p->path != NULL;
		p->base = ok ? strdup(p->path) : NULL;
	} else if (ok && strcmp(type, "cephfs") == 0) {
		p->type = HSP_POOL_CEPHFS;
		ok = p->conf && p->id && p->keyring && p->fs_path;
		json_object *rel = NULL;
		p->released =
		    json_object_object_get_ex(o, "released", &rel) && json_object_get_boolean(rel);
	} else {
		ok = false;
	}
	if (!ok) {
		pool_free(p);
		return hsp_make_error(err, EINVAL, "corrupt pool entry in `%s`", path);
	}
	*out = p;
	return 0;
}

static int load_pools(hsp_runtime_t *rt, hsp_error_t *err)
{
	if (rt->pools_loaded)
		return 0;
	struct hsp_pool *local = calloc(1, sizeof(*local));
	if (local == NULL || add_pool(rt, local) < 0) {
		free(local);
		return hsp_make_errno(err, ENOMEM, "pools");
	}
	local->name = strdup("local");
	local->type = HSP_POOL_LOCAL;
	local->path = strdup(rt->root);
	local->base = strdup(rt->root);
	rt->pools_loaded = true;
	cleanup_free char *path = pools_file(rt);
	if (access(path, F_OK) < 0)
		return 0;
	json_object *o = NULL, *list = NULL;
	int r = hsp_json_load(path, &o, err);
	if (r < 0)
		return r;
	if (json_object_object_get_ex(o, "pools", &list) &&
	    json_object_is_type(list, json_type_array)) {
		for (size_t i = 0; r == 0 && i < json_object_array_length(list); i++) {
			struct hsp_pool *p = NULL;
			r = pool_from_json(json_object_array_get_idx(list, i), &p, path, err);
			if (r == 0 && add_pool(rt, p) < 0) {
				pool_free(p);
				r = hsp_make_errno(err, ENOMEM, "pools");
			}
		}
	}
	json_object_put(o);
	return r;
}

/* A CephFS pool is mounted on this node when first used. */
static int ensure_base(hsp_runtime_t *rt, struct hsp_pool *p, hsp_error_t *err)
{
	if (p->base)
		return 0;
	/* Listing skips it quietly, like any pool that does not answer. */
	if (p->released)
		return hsp_make_error(
		    err, EHOSTDOWN,
		    "pool `%s` is released on this node (pool mount brings it back)", p->name);
	cleanup_free char *mnt = hsp_strdup_printf("%s/pools/%s", rt->root, p->name);
	cleanup_free char *lockf = hsp_strdup_printf("%s/pools/.%s.mount", rt->root, p->name);
	int r = hsp_mkdir_p(mnt, 0700, err);
	/* One process at a time checks, replaces or makes the mount: two
	 * replacing a dead one at once would end each other's fresh mount,
	 * and a ceph-fuse ended so keeps its MDS session and caps. */
	cleanup_close int lock = r == 0 ? open(lockf, O_RDWR | O_CREAT | O_CLOEXEC, 0600) : -1;
	if (r == 0 && lock < 0)
		r = hsp_make_errno(err, errno, "open `%s`", lockf);
	while (r == 0 && flock(lock, LOCK_EX) < 0)
		if (errno != EINTR)
			r = hsp_make_errno(err, errno, "lock `%s`", lockf);
	struct hsp_ceph_pool cp = hsp_pool_ceph(p);
	if (r == 0)
		r = hsp_ceph_mount(&cp, mnt, POOL_MOUNT_TIMEOUT_S, err);
	if (r < 0)
		return hsp_error_wrap(err, "pool `%s`", p->name);
	p->base = steal_pointer(&mnt);
	return 0;
}

static struct hsp_pool *find(hsp_runtime_t *rt, const char *name)
{
	for (size_t i = 0; i < rt->npools; i++)
		if (strcmp(rt->pools[i]->name, name) == 0)
			return rt->pools[i];
	return NULL;
}

int hsp_pool_get(hsp_runtime_t *rt, const char *name, const struct hsp_pool **out, hsp_error_t *err)
{
	int r = load_pools(rt, err);
	if (r < 0)
		return r;
	struct hsp_pool *p = find(rt, name ? name : "local");
	if (p == NULL)
		return hsp_make_error(err, ENOENT, "pool `%s` not found", name);
	r = ensure_base(rt, p, err);
	if (r == 0)
		*out = p;
	return r;
}

int hsp_pool_dir(hsp_runtime_t *rt, const char *name, const char **dir, hsp_error_t *err)
{
	const struct hsp_pool *p;
	int r = hsp_pool_get(rt, name, &p, err);
	if (r == 0)
		*dir = p->base;
	return r;
}

int hsp_pools(hsp_runtime_t *rt, const struct hsp_pool *const **pools, hsp_error_t *err)
{
	int r = load_pools(rt, err);
	if (r < 0)
		return r;
	*pools = (const struct hsp_pool *const *)rt->pools;
	return (int)rt->npools;
}

void hsp_pool_place(hsp_runtime_t *rt, const char *name, const struct hsp_pool *p)
{
	for (size_t i = 0; i < rt->nve; i++) {
		if (strcmp(rt->ve_names[i], name) == 0) {
			rt->ve_pools[i] = p;
			return;
		}
	}
	char **names = realloc(rt->ve_names, (rt->nve + 1) * sizeof(*names));
	if (names)
		rt->ve_names = names;
	const struct hsp_pool **pools = realloc(rt->ve_pools, (rt->nve + 1) * sizeof(*pools));
	if (pools)
		rt->ve_pools = pools;
	char *copy = strdup(name);
	if (names == NULL || pools == NULL || copy == NULL) {
		free(copy);
		return; /* only a cache */
	}
	rt->ve_names[rt->nve] = copy;
	rt->ve_pools[rt->nve++] = p;
}

static bool holds_ve(const struct hsp_pool *p, const char *name)
{
	cleanup_free char *cfg = hsp_strdup_printf("%s/ves/%s/config.json", p->base, name);
	return access(cfg, F_OK) == 0;
}

int hsp_pool_of_ve(hsp_runtime_t *rt, const char *name, const struct hsp_pool **out,
		   hsp_error_t *err)
{
	int r = load_pools(rt, err);
	if (r < 0)
		return r;
	/* A VE being created has its directory but no config.json yet. */
	const struct hsp_pool *c = cached(rt, name);
	cleanup_free char *dir = c ? hsp_strdup_printf("%s/ves/%s", c->base, name) : NULL;
	if (c && access(dir, F_OK) == 0) {
		*out = c;
		return 0;
	}
	cleanup_free char *unreachable = NULL;
	int status = ENOENT;
	for (size_t i = 0; i < rt->npools; i++) {
		struct hsp_pool *p = rt->pools[i];
		hsp_error_t perr = NULL;
		if (ensure_base(rt, p, &perr) < 0) {
			if (unreachable == NULL) {
				unreachable = hsp_strdup_printf("%s", perr->msg);
				status = perr->status;
			}
			hsp_error_release(&perr);
			continue;
		}
		if (holds_ve(p, name)) {
			hsp_pool_place(rt, name, p);
			*out = p;
			return 0;
		}
	}
	/* Not ENOENT: the VE may well be in the pool that did not answer. */
	if (unreachable)
		return hsp_make_error(err, status, "VE `%s` not found (not searched: %s)", name,
				      unreachable);
	return hsp_make_error(err, ENOENT, "VE `%s` not found", name);
}

const char *hsp_ve_base(hsp_runtime_t *rt, const char *name)
{
	const struct hsp_pool *p = cached(rt, name);
	if (p)
		return p->base;
	hsp_error_t ignored = NULL;
	int r = hsp_pool_of_ve(rt, name, &p, &ignored);
	hsp_error_release(&ignored);
	return r == 0 ? p->base : rt->root;
}

/* ---- the admin verbs ---------------------------------------------------- */

static int save_pools(hsp_runtime_t *rt, hsp_error_t *err)
{
	json_object *o = json_object_new_object(), *list = json_object_new_array();
	for (size_t i = 1; i < rt->npools; i++) {
		const struct hsp_pool *p = rt->pools[i];
		json_object *e = json_object_new_object();
		json_object_object_add(e, "name", json_object_new_string(p->name));
		if (p->type == HSP_POOL_LOCAL) {
			json_object_object_add(e, "type", json_object_new_string("local"));
			json_object_object_add(e, "path", json_object_new_string(p->path));
		} else {
			json_object_object_add(e, "type", json_object_new_string("cephfs"));
			json_object_object_add(e, "conf", json_object_new_string(p->conf));
			json_object_object_add(e, "id", json_object_new_string(p->id));
			json_object_object_add(e, "keyring", json_object_new_string(p->keyring));
			json_object_object_add(e, "fs_path", json_object_new_string(p->fs_path));
			if (p->released)
				json_object_object_add(e, "released",
						       json_object_new_boolean(true));
		}
		json_object_array_add(list, e);
	}
	json_object_object_add(o, "pools", list);
	cleanup_free char *path = pools_file(rt);
	int r = hsp_json_save(path, o, err);
	json_object_put(o);
	return r;
}

static int absolute_file(const char *path, const char *what, char **out, hsp_error_t *err)
{
	if (path == NULL || *path == '\0')
		return hsp_make_error(err, EINVAL, "cephfs pool: %s is required", what);
	char *real = realpath(path, NULL);
	if (real == NULL || access(real, R_OK) < 0) {
		free(real);
		return hsp_make_errno(err, errno, "cephfs pool: %s `%s`", what, path);
	}
	*out = real;
	return 0;
}

static int new_local(const struct hsp_pool_spec *s, struct hsp_pool *p, hsp_error_t *err)
{
	if (s->path == NULL || s->path[0] != '/')
		return hsp_make_error(err, EINVAL, "local pool: --path must be an absolute path");
	if (s->conf || s->id || s->keyring || s->fs_path)
		return hsp_make_error(
		    err, EINVAL, "local pool: --conf, --id, --keyring, --fs-path are for cephfs");
	cleanup_free char *ves = hsp_strdup_printf("%s/ves", s->path);
	cleanup_free char *tpl = hsp_strdup_printf("%s/templates", s->path);
	int r = hsp_mkdir_p(ves, 0700, err);
	if (r == 0)
		r = hsp_mkdir_p(tpl, 0700, err);
	if (r < 0)
		return r;
	p->type = HSP_POOL_LOCAL;
	p->path = realpath(s->path, NULL);
	p->base = p->path ? strdup(p->path) : NULL;
	return p->path ? 0 : hsp_make_errno(err, errno, "local pool `%s`", s->path);
}

static int new_cephfs(hsp_runtime_t *rt, const struct hsp_pool_spec *s, struct hsp_pool *p,
		      hsp_error_t *err)
{
	if (s->path)
		return hsp_make_error(err, EINVAL, "cephfs pool: --path is for local pools");
	if (s->id == NULL || *s->id == '\0')
		return hsp_make_error(err, EINVAL, "cephfs pool: --id is required");
	if (s->fs_path == NULL || s->fs_path[0] != '/')
		return hsp_make_error(err, EINVAL, "cephfs pool: --fs-path must be absolute");
	p->type = HSP_POOL_CEPHFS;
	int r = absolute_file(s->conf, "--conf", &p->conf, err);
	if (r == 0)
		r = absolute_file(s->keyring, "--keyring", &p->keyring, err);
	if (r < 0)
		return r;
	p->id = strdup(s->id);
	p->fs_path = strdup(s->fs_path);
	struct hsp_ceph_pool cp = hsp_pool_ceph(p);
	r = hsp_ceph_validate_pool(&cp, err);
	if (r == 0)
		r = hsp_ceph_check(&cp, POOL_MOUNT_TIMEOUT_S, err);
	if (r == 0)
		r = ensure_base(rt, p, err);
	return r;
}

int hsp_pool_add(hsp_runtime_t *rt, const struct hsp_pool_spec *s, hsp_error_t *err)
{
	int r = hsp_validate_name(s->name, "pool", err);
	if (r < 0)
		return r;
	cleanup_close int lock = hsp_lock_root(rt, err);
	if (lock < 0)
		return lock;
	hsp_pools_free(rt);
	r = load_pools(rt, err);
	if (r < 0)
		return r;
	if (find(rt, s->name))
		return hsp_make_error(err, EEXIST, "pool `%s` already exists", s->name);
	struct hsp_pool *p = calloc(1, sizeof(*p));
	if (p == NULL)
		return hsp_make_errno(err, ENOMEM, "pool");
	p->name = strdup(s->name);
	if (s->type && strcmp(s->type, "local") == 0)
		r = new_local(s, p, err);
	else if (s->type && strcmp(s->type, "cephfs") == 0)
		r = new_cephfs(rt, s, p, err);
	else
		r = hsp_make_error(err, EINVAL, "invalid pool type `%s`: local or cephfs",
				   s->type ? s->type : "");
	if (r == 0 && add_pool(rt, p) < 0)
		r = hsp_make_errno(err, ENOMEM, "pool");
	if (r < 0) {
		if (p->type == HSP_POOL_CEPHFS && p->base) {
			hsp_error_t ignored = NULL;
			hsp_ceph_umount(p->base, &ignored);
			hsp_error_release(&ignored);
		}
		pool_free(p);
		return r;
	}
	return save_pools(rt, err);
}

static int count_ves(const struct hsp_pool *p)
{
	cleanup_free char *dir = hsp_strdup_printf("%s/ves", p->base);
	DIR *d = opendir(dir);
	if (d == NULL)
		return errno == ENOENT ? 0 : -errno;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.' && holds_ve(p, e->d_name))
			n++;
	closedir(d);
	return n;
}

int hsp_pool_remove(hsp_runtime_t *rt, const char *name, hsp_error_t *err)
{
	cleanup_close int lock = hsp_lock_root(rt, err);
	if (lock < 0)
		return lock;
	const struct hsp_pool *cp;
	int r = hsp_pool_get(rt, name, &cp, err);
	if (r < 0)
		return r;
	struct hsp_pool *p = find(rt, name);
	if (p == rt->pools[0])
		return hsp_make_error(err, EINVAL, "pool `local` is the runtime root: it stays");
	int n = count_ves(p);
	if (n != 0)
		return hsp_make_error(
		    err, EBUSY, "pool `%s` holds %d VEs: destroy or move them first", name, n);
	if (p->type == HSP_POOL_CEPHFS) {
		r = hsp_ceph_umount(p->base, err);
		if (r < 0)
			return r;
		rmdir(p->base);
	}
	size_t i = 0;
	while (rt->pools[i] != p)
		i++;
	memmove(&rt->pools[i], &rt->pools[i + 1], (rt->npools - i - 1) * sizeof(*rt->pools));
	rt->npools--;
	pool_free(p);
	forget_ves(rt);
	return save_pools(rt, err);
}

int hsp_pool_list(hsp_runtime_t *rt, struct hsp_pool_info **out, hsp_error_t *err)
{
	int r = load_pools(rt, err);
	if (r < 0)
		return r;
	struct hsp_pool_info *v = calloc(rt->npools, sizeof(*v));
	if (v == NULL)
		return hsp_make_errno(err, ENOMEM, "pools");
	for (size_t i = 0; i < rt->npools; i++) {
		struct hsp_pool *p = rt->pools[i];
		v[i].name = strdup(p->name);
		v[i].type = strdup(p->type == HSP_POOL_LOCAL ? "local" : "cephfs");
		v[i].location =
		    p->type == HSP_POOL_LOCAL
			? strdup(p->path)
			: hsp_strdup_printf("%s:%s (client.%s)", p->conf, p->fs_path, p->id);
		hsp_error_t perr = NULL;
		if (ensure_base(rt, p, &perr) == 0) {
			v[i].online = true;
			v[i].ves = count_ves(p);
		} else {
			v[i].error = strdup(perr->msg);
			hsp_error_release(&perr);
		}
	}
	*out = v;
	return (int)rt->npools;
}

void hsp_pool_info_free(struct hsp_pool_info *v, int n)
{
	for (int i = 0; v && i < n; i++) {
		free(v[i].name);
		free(v[i].type);
		free(v[i].location);
		free(v[i].error);
	}
	free(v);
}

/* A VE of the pool runs here while a loop device has its disk: read from
 * sysfs, which a hung FUSE mount cannot block. */
static bool pool_disk_attached(const char *base)
{
	DIR *d = opendir("/sys/block");
	struct dirent *e;
	bool found = false;
	size_t n = strlen(base);
	while (d && !found && (e = readdir(d)) != NULL) {
		if (strncmp(e->d_name, "loop", 4) != 0)
			continue;
		cleanup_free char *f =
		    hsp_strdup_printf("/sys/block/%s/loop/backing_file", e->d_name);
		cleanup_free char *back = NULL;
		if (hsp_read_file(f, &back, NULL, NULL) == 0 && strncmp(back, base, n) == 0 &&
		    back[n] == '/')
			found = true;
	}
	if (d)
		closedir(d);
	return found;
}

static int cephfs_pool(hsp_runtime_t *rt, const char *name, struct hsp_pool **out, hsp_error_t *err)
{
	int r = load_pools(rt, err);
	if (r < 0)
		return r;
	struct hsp_pool *p = find(rt, name);
	if (p == NULL)
		return hsp_make_error(err, ENOENT, "no pool `%s`", name);
	if (p->type != HSP_POOL_CEPHFS)
		return hsp_make_error(err, EINVAL, "pool `%s` is not CephFS: it is always there",
				      name);
	*out = p;
	return 0;
}

int hsp_pool_unmount(hsp_runtime_t *rt, const char *name, hsp_error_t *err)
{
	cleanup_close int lock = hsp_lock_root(rt, err);
	if (lock < 0)
		return lock;
	struct hsp_pool *p = NULL;
	int r = cephfs_pool(rt, name, &p, err);
	if (r < 0)
		return r;
	/* Not through ensure_base: that would mount it first. */
	cleanup_free char *mnt = hsp_strdup_printf("%s/pools/%s", rt->root, p->name);
	if (pool_disk_attached(mnt))
		return hsp_make_error(err, EBUSY, "pool `%s`: a VE of it runs on this node", name);
	p->released = true;
	r = save_pools(rt, err);
	return r < 0 ? r : hsp_ceph_umount(mnt, err);
}

int hsp_pool_mount(hsp_runtime_t *rt, const char *name, hsp_error_t *err)
{
	cleanup_close int lock = hsp_lock_root(rt, err);
	if (lock < 0)
		return lock;
	struct hsp_pool *p = NULL;
	int r = cephfs_pool(rt, name, &p, err);
	if (r < 0)
		return r;
	if (p->released) {
		p->released = false;
		r = save_pools(rt, err);
	}
	return r < 0 ? r : ensure_base(rt, p, err);
}
