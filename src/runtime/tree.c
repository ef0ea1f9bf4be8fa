/* Template trees: each stored template's archive unpacked once, with the ids
 * it has inside a VE, as the shared lower layer of its VEs.  A tree never
 * changes once made (an overlay's lower layer must not), so importing a
 * template again makes a new tree beside the old, which lives on while
 * some VE uses it.
 *
 * A local pool keeps its trees beside the archive.  A CephFS pool cannot
 * serve them (FUSE mounts cannot be idmapped, and metadata there is slow):
 * every node unpacks the trees it needs onto its own disk, under
 * <root>/trees/<pool>/, from the archive version a VE was made from, which
 * the pool keeps as templates/<t>/archives/<key>.tar.zst while VEs use it. */
#define _GNU_SOURCE
#include "pool.h"
#include "rootfs.h"
#include "utils.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Where the pool's trees of template `tmpl` are on this node. */
static char *trees_dir(hsp_runtime_t *rt, const struct hsp_pool *p, const char *tmpl)
{
	if (p->type == HSP_POOL_LOCAL)
		return hsp_strdup_printf("%s/templates/%s/trees", p->base, tmpl);
	return hsp_strdup_printf("%s/trees/%s/%s", rt->root, p->name, tmpl);
}

char *hsp_tree_path(hsp_runtime_t *rt, const struct hsp_pool *p, const char *tmpl, const char *key)
{
	cleanup_free char *dir = trees_dir(rt, p, tmpl);
	return hsp_strdup_printf("%s/%s", dir, key);
}

static char *archive_path(const struct hsp_pool *p, const char *tmpl, const char *key)
{
	return hsp_strdup_printf("%s/templates/%s/archives/%s.tar.zst", p->base, tmpl, key);
}

/* An import replaces the archive by rename, so inode, size and mtime
 * together name one version of it (CephFS inode numbers are the same on
 * every node). */
static int tree_key(const struct hsp_template *t, char **key, hsp_error_t *err)
{
	struct stat st;
	if (stat(t->source, &st) < 0)
		return hsp_make_errno(err, errno, "template `%s`: `%s`", t->name, t->source);
	*key = hsp_strdup_printf(
	    "%lx-%llx-%llx%09lx", (unsigned long)st.st_ino, (unsigned long long)st.st_size,
	    (unsigned long long)st.st_mtim.tv_sec, (unsigned long)st.st_mtim.tv_nsec);
	return 0;
}

/* Unpacks `t` into the tree `key` if this node lacks it: 0 if it was
 * there, 1 if made. */
static int unpack_tree(hsp_runtime_t *rt, const struct hsp_pool *p, const struct hsp_template *t,
		       const char *key, hsp_error_t *err)
{
	cleanup_free char *path = hsp_tree_path(rt, p, t->name, key);
	if (access(path, F_OK) == 0)
		return 0;
	/* 0700: a tree holds setuid-root files as the host sees them. */
	cleanup_free char *trees = trees_dir(rt, p, t->name);
	int r = hsp_mkdir_p(trees, 0700, err);
	if (r < 0)
		return r;
	cleanup_free char *tmp = hsp_strdup_printf("%s/.new-%s.%d", trees, key, getpid());
	r = hsp_rm_rf(tmp, err);
	if (r == 0)
		r = hsp_rootfs_populate(t, tmp, 0, err);
	if (r == 0 && rename(tmp, path) < 0 && errno != ENOTEMPTY && errno != EEXIST)
		r = hsp_make_errno(err, errno, "rename `%s`", tmp);
	hsp_error_t ignored = NULL;
	hsp_rm_rf(tmp, &ignored);
	hsp_error_release(&ignored);
	return r < 0 ? r : 1;
}

/* In a shared pool, the archive version stays while VEs use it. */
static int keep_archive(const struct hsp_pool *p, const struct hsp_template *t, const char *key,
			hsp_error_t *err)
{
	if (p->type == HSP_POOL_LOCAL)
		return 0;
	cleanup_free char *dir = hsp_strdup_printf("%s/templates/%s/archives", p->base, t->name);
	cleanup_free char *dst = archive_path(p, t->name, key);
	int r = hsp_mkdir_p(dir, 0700, err);
	if (r == 0 && link(t->source, dst) < 0 && errno != EEXIST)
		r = hsp_make_errno(err, errno, "keep template version `%s`", dst);
	return r;
}

int hsp_tree_ensure(hsp_runtime_t *rt, const struct hsp_pool *p, const struct hsp_template *t,
		    char **keyp, hsp_error_t *err)
{
	cleanup_free char *key = NULL;
	int r = tree_key(t, &key, err);
	if (r == 0)
		r = keep_archive(p, t, key, err);
	int made = r == 0 ? unpack_tree(rt, p, t, key, err) : r;
	if (made < 0)
		return made;
	*keyp = steal_pointer(&key);
	return made;
}

int hsp_tree_require(hsp_runtime_t *rt, const struct hsp_pool *p, const char *tmpl, const char *key,
		     hsp_error_t *err)
{
	cleanup_free char *path = hsp_tree_path(rt, p, tmpl, key);
	if (access(path, F_OK) == 0)
		return 0;
	if (p->type == HSP_POOL_LOCAL)
		return hsp_make_errno(err, errno, "template tree `%s`", path);
	cleanup_free char *archive = archive_path(p, tmpl, key);
	if (access(archive, R_OK) < 0)
		return hsp_make_errno(err, errno, "template `%s` version `%s`", tmpl, archive);
	struct hsp_template t = {.name = (char *)tmpl, .source = archive};
	int r = unpack_tree(rt, p, &t, key, err);
	return r < 0 ? r : 0;
}

static bool tree_in_use(char *const *names, hsp_runtime_t *rt, const struct hsp_pool *p,
			const char *tmpl, const char *key)
{
	for (size_t i = 0; names && names[i]; i++) {
		struct hsp_ve_config c;
		hsp_error_t ignored = NULL;
		if (hsp_config_load(rt, names[i], &c, &ignored) < 0) {
			hsp_error_release(&ignored);
			/* Unreadable: keep what it might use. */
			return true;
		}
		bool used = c.tree && strcmp(c.tree, key) == 0 && strcmp(c.template, tmpl) == 0 &&
			    strcmp(hsp_ve_base(rt, names[i]), p->base) == 0;
		hsp_config_clear(&c);
		if (used)
			return true;
	}
	return false;
}

/* Removes the entries of `dir` (trees, or archives with `suffix`) that no VE
 * uses, except the current version. */
static void gc_dir(hsp_runtime_t *rt, const struct hsp_pool *p, const char *tmpl, const char *dir,
		   const char *suffix, const char *current, char *const *names)
{
	DIR *d = opendir(dir);
	if (d == NULL)
		return;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		size_t n = strlen(e->d_name), sn = strlen(suffix);
		if (e->d_name[0] == '.' || n <= sn || strcmp(e->d_name + n - sn, suffix) != 0)
			continue;
		cleanup_free char *key = strndup(e->d_name, n - sn);
		if ((current && strcmp(key, current) == 0) || tree_in_use(names, rt, p, tmpl, key))
			continue;
		cleanup_free char *path = hsp_strdup_printf("%s/%s", dir, e->d_name);
		hsp_error_t ignored = NULL;
		hsp_rm_rf(path, &ignored);
		hsp_error_release(&ignored);
	}
	closedir(d);
}

void hsp_tree_gc(hsp_runtime_t *rt, const struct hsp_pool *p, const char *tmpl)
{
	hsp_error_t ignored = NULL;
	struct hsp_template t;
	cleanup_free char *current = NULL;
	if (hsp_template_resolve(p->base, tmpl, &t, &ignored) == 0) {
		tree_key(&t, &current, &ignored);
		hsp_template_clear(&t);
	}
	hsp_error_release(&ignored);
	cleanup_strv char **names = NULL;
	if (hsp_config_names(rt, &names, &ignored) < 0) {
		hsp_error_release(&ignored);
		return;
	}
	cleanup_free char *trees = trees_dir(rt, p, tmpl);
	gc_dir(rt, p, tmpl, trees, "", current, names);
	if (p->type == HSP_POOL_CEPHFS) {
		cleanup_free char *archives =
		    hsp_strdup_printf("%s/templates/%s/archives", p->base, tmpl);
		gc_dir(rt, p, tmpl, archives, ".tar.zst", current, names);
	}
}
