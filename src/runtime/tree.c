/* Template trees: each stored template's archive unpacked once, with the ids
 * it has inside a VE, as the shared lower layer of its VEs.  A tree never
 * changes once made (an overlay's lower layer must not), so importing a
 * template again makes a new tree beside the old, which lives on while
 * some VE uses it. */
#define _GNU_SOURCE
#include "rootfs.h"
#include "utils.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char *hsp_tree_path(hsp_runtime_t *rt, const char *tmpl, const char *key)
{
	return hsp_strdup_printf("%s/templates/%s/trees/%s", rt->root, tmpl, key);
}

/* An import replaces the archive by rename, so inode, size and mtime
 * together name one version of it. */
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

int hsp_tree_ensure(hsp_runtime_t *rt, const struct hsp_template *t, char **keyp, hsp_error_t *err)
{
	cleanup_free char *key = NULL;
	int r = tree_key(t, &key, err);
	if (r < 0)
		return r;
	cleanup_free char *path = hsp_tree_path(rt, t->name, key);
	if (access(path, F_OK) == 0) {
		*keyp = steal_pointer(&key);
		return 0;
	}
	/* 0700: a tree holds setuid-root files as the host sees them. */
	cleanup_free char *trees = hsp_strdup_printf("%s/templates/%s/trees", rt->root, t->name);
	r = hsp_mkdir_p(trees, 0700, err);
	if (r < 0)
		return r;
	cleanup_free char *tmp = hsp_strdup_printf("%s/.new-%s", trees, key);
	r = hsp_rm_rf(tmp, err);
	if (r == 0)
		r = hsp_rootfs_populate(t, tmp, 0, err);
	if (r == 0 && rename(tmp, path) < 0)
		r = hsp_make_errno(err, errno, "rename `%s`", tmp);
	if (r < 0) {
		hsp_error_t ignored = NULL;
		hsp_rm_rf(tmp, &ignored);
		hsp_error_release(&ignored);
		return r;
	}
	*keyp = steal_pointer(&key);
	return 1;
}

static bool tree_in_use(char *const *names, hsp_runtime_t *rt, const char *tmpl, const char *key)
{
	for (size_t i = 0; names && names[i]; i++) {
		struct hsp_ve_config c;
		hsp_error_t ignored = NULL;
		if (hsp_config_load(rt, names[i], &c, &ignored) < 0) {
			hsp_error_release(&ignored);
			/* Unreadable: keep what it might use. */
			return true;
		}
		bool used = c.tree && strcmp(c.tree, key) == 0 && strcmp(c.template, tmpl) == 0;
		hsp_config_clear(&c);
		if (used)
			return true;
	}
	return false;
}

void hsp_tree_gc(hsp_runtime_t *rt, const char *tmpl)
{
	hsp_error_t ignored = NULL;
	struct hsp_template t;
	cleanup_free char *current = NULL;
	if (hsp_template_resolve(rt->root, tmpl, &t, &ignored) == 0) {
		tree_key(&t, &current, &ignored);
		hsp_template_clear(&t);
	}
	hsp_error_release(&ignored);
	cleanup_free char *trees = hsp_strdup_printf("%s/templates/%s/trees", rt->root, tmpl);
	DIR *d = opendir(trees);
	if (d == NULL)
		return;
	cleanup_strv char **names = NULL;
	if (hsp_config_names(rt, &names, &ignored) < 0) {
		hsp_error_release(&ignored);
		closedir(d);
		return;
	}
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		if (current && strcmp(e->d_name, current) == 0)
			continue;
		if (tree_in_use(names, rt, tmpl, e->d_name))
			continue;
		cleanup_free char *p = hsp_strdup_printf("%s/%s", trees, e->d_name);
		hsp_rm_rf(p, &ignored);
		hsp_error_release(&ignored);
	}
	closedir(d);
}
