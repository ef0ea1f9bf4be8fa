/* Templates: store lookup, import, and populating a VE root with shifted owners.
 *
 * Every copy goes through one entry pipeline: a source (a .tar.zst reader, or a
 * disk reader over a rootfs directory) hands normalised entries to a sink (the
 * disk writer that populates a VE root, or the tar writer that imports into the
 * store).  So both kinds of template get the same checks and the same id shift.
 *
 * Containment of hostile archives does not rest on libarchive alone: every path
 * is normalised (no "..", not absolute), and the extract sink remembers what it
 * wrote, so an entry can only go beneath directories it created itself and a
 * hard link can only point at a file it created itself.  libarchive's SECURE_*
 * flags are a second layer. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "template.h"
#include "template-internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "hsp-runtime.h"
#include "utils.h"

const char *const hsp_tpl_default_init[] = {"/sbin/init", NULL};

static void json_putp(struct json_object **o)
{
	if (*o)
		json_object_put(*o);
}

static void closedirp(DIR **d)
{
	if (*d)
		closedir(*d);
}

#define cleanup_json __attribute__((cleanup(json_putp)))

char *hsp_tpl_strdup(const char *s)
{
	return s ? hsp_strdup_printf("%s", s) : NULL;
}

static char **strv_dup(const char *const *v)
{
	size_t n = hsp_strv_len((char *const *)v);
	char **out = calloc(n + 1, sizeof(*out));
	if (out == NULL)
		abort(); /* out of memory, as in hsp_strdup_printf */
	for (size_t i = 0; i < n; i++)
		out[i] = hsp_tpl_strdup(v[i]);
	return out;
}

bool hsp_tpl_has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && strcmp(s + n - m, suffix) == 0;
}

void hsp_template_clear(struct hsp_template *t)
{
	if (t == NULL)
		return;
	free(t->name);
	free(t->source);
	free(t->os);
	free(t->version);
	hsp_strv_free(t->init);
	free(t->stop_signal);
	memset(t, 0, sizeof(*t));
}

/* ---- manifest ---------------------------------------------------------- */

static int manifest_string(struct json_object *o, const char *key, char **out, const char *path,
			   hsp_error_t *err)
{
	struct json_object *v;
	*out = NULL;
	if (!json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null))
		return 0;
	if (!json_object_is_type(v, json_type_string))
		return hsp_make_error(err, EINVAL, "%s: \"%s\" must be a string", path, key);
	*out = hsp_tpl_strdup(json_object_get_string(v));
	return 0;
}

int hsp_tpl_check_init(char *const *init, const char *where, hsp_error_t *err)
{
	if (init == NULL || init[0] == NULL || init[0][0] != '/')
		return hsp_make_error(err, EINVAL,
				      "%s: init must be a non-empty command with an absolute path",
				      where);
	return 0;
}

static int manifest_init(struct json_object *o, char ***out, const char *path, hsp_error_t *err)
{
	struct json_object *v;
	if (!json_object_object_get_ex(o, "init", &v)) {
		*out = strv_dup(hsp_tpl_default_init);
		return 0;
	}
	if (!json_object_is_type(v, json_type_array))
		return hsp_make_error(err, EINVAL, "%s: \"init\" must be an array of strings",
				      path);
	size_t n = json_object_array_length(v);
	cleanup_strv char **argv = calloc(n + 1, sizeof(*argv));
	if (argv == NULL)
		abort();
	for (size_t i = 0; i < n; i++) {
		struct json_object *a = json_object_array_get_idx(v, i);
		if (!json_object_is_type(a, json_type_string))
			return hsp_make_error(err, EINVAL,
					      "%s: \"init\" must be an array of strings", path);
		argv[i] = hsp_tpl_strdup(json_object_get_string(a));
	}
	int r = hsp_tpl_check_init(argv, path, err);
	if (r < 0)
		return r;
	*out = steal_pointer(&argv);
	return 0;
}

/* Keeps the signal's canonical spelling so every consumer can parse it. */
int hsp_tpl_canonical_signal(const char *s, char **out, hsp_error_t *err)
{
	int sig;
	int r = hsp_parse_signal(s, &sig, err);
	if (r < 0)
		return r;
	char buf[16];
	*out = hsp_tpl_strdup(hsp_signal_name(sig, buf));
	return 0;
}

static int read_manifest(const char *path, struct hsp_template *t, hsp_error_t *err)
{
	cleanup_free char *text = NULL;
	int r = hsp_read_file(path, &text, NULL, err);
	if (r < 0)
		return r;
	enum json_tokener_error jerr = json_tokener_success;
	cleanup_json struct json_object *o = json_tokener_parse_verbose(text, &jerr);
	if (o == NULL)
		return hsp_make_error(err, EINVAL, "%s: invalid JSON: %s", path,
				      json_tokener_error_desc(jerr));
	if (!json_object_is_type(o, json_type_object))
		return hsp_make_error(err, EINVAL, "%s: not a JSON object", path);

	cleanup_free char *sig = NULL;
	r = manifest_string(o, "os", &t->os, path, err);
	if (r == 0)
		r = manifest_string(o, "version", &t->version, path, err);
	if (r == 0)
		r = manifest_string(o, "stop_signal", &sig, path, err);
	if (r == 0)
		r = manifest_init(o, &t->init, path, err);
	if (r < 0)
		return r;
	r = hsp_tpl_canonical_signal(sig ? sig : HSP_TPL_DEFAULT_STOP_SIGNAL, &t->stop_signal, err);
	return r < 0 ? hsp_error_wrap(err, "%s", path) : 0;
}

int hsp_tpl_write_manifest(const char *dir, const char *name, const char *os, const char *version,
			   char *const *init, const char *stop_signal, hsp_error_t *err)
{
	cleanup_json struct json_object *o = json_object_new_object();
	struct json_object *argv = json_object_new_array();
	if (o == NULL || argv == NULL)
		abort();
	json_object_object_add(o, "name", json_object_new_string(name));
	json_object_object_add(o, "os", os ? json_object_new_string(os) : NULL);
	json_object_object_add(o, "version", version ? json_object_new_string(version) : NULL);
	for (size_t i = 0; init[i]; i++)
		json_object_array_add(argv, json_object_new_string(init[i]));
	json_object_object_add(o, "init", argv);
	json_object_object_add(o, "stop_signal", json_object_new_string(stop_signal));
	json_object_object_add(o, "created", json_object_new_int64(time(NULL)));

	const char *s = json_object_to_json_string_ext(
	    o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE);
	cleanup_free char *text = hsp_strdup_printf("%s\n", s);
	cleanup_free char *path = hsp_strdup_printf("%s/" HSP_TPL_MANIFEST, dir);
	return hsp_write_file_atomic(path, text, strlen(text), 0644, err);
}

/* ---- resolve and list -------------------------------------------------- */

/* A directory is taken for a root file system when it has the places an init
 * could live in; bin and sbin may be merged-/usr symlinks. */
bool hsp_tpl_looks_like_rootfs(const char *dir)
{
	cleanup_close int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return false;
	static const char *const names[] = {"bin", "sbin", "usr"};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		struct stat st;
		if (fstatat(fd, names[i], &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    (S_ISDIR(st.st_mode) || S_ISLNK(st.st_mode)))
			return true;
	}
	return false;
}

int hsp_tpl_not_rootfs(const char *what, const char *path, hsp_error_t *err)
{
	return hsp_make_error(
	    err, EINVAL, "template `%s`: `%s` has no bin, sbin or usr: not a rootfs", what, path);
}

int hsp_tpl_not_template(const char *what, const char *path, hsp_error_t *err)
{
	return hsp_make_error(err, EINVAL,
			      "template `%s`: `%s` is not a rootfs directory or .tar.zst file",
			      what, path);
}

int hsp_tpl_check_zstd_file(const char *path, const char *what, hsp_error_t *err)
{
	static const unsigned char magic[4] = {0x28, 0xb5, 0x2f, 0xfd};
	unsigned char buf[4];
	cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return hsp_make_errno(err, errno, "template `%s`: open `%s`", what, path);
	ssize_t n = pread(fd, buf, sizeof(buf), 0);
	if (n < 0)
		return hsp_make_errno(err, errno, "template `%s`: read `%s`", what, path);
	if (n != (ssize_t)sizeof(buf) || memcmp(buf, magic, sizeof(magic)) != 0)
		return hsp_make_error(err, EINVAL, "template `%s`: `%s` is not zstd-compressed",
				      what, path);
	return 0;
}

static int resolve_stored(const char *root, const char *name, struct hsp_template *t,
			  hsp_error_t *err)
{
	cleanup_free char *dir = hsp_strdup_printf("%s/templates/%s", root, name);
	cleanup_free char *manifest = hsp_strdup_printf("%s/" HSP_TPL_MANIFEST, dir);
	cleanup_free char *tar = hsp_strdup_printf("%s/" HSP_TPL_TAR, dir);
	struct stat st;
	if (stat(manifest, &st) < 0 && errno == ENOENT)
		return hsp_make_error(err, ENOENT, "template `%s` not found in %s/templates", name,
				      root);
	t->source = realpath(tar, NULL);
	if (t->source == NULL)
		return hsp_make_errno(err, errno, "template `%s`: `%s`", name, tar);
	t->name = hsp_tpl_strdup(name);
	t->stored = true;
	return read_manifest(manifest, t, err);
}

static int resolve_path(const char *arg, struct hsp_template *t, hsp_error_t *err)
{
	cleanup_free char *abs = realpath(arg, NULL);
	if (abs == NULL)
		return hsp_make_errno(err, errno, "template `%s`", arg);
	struct stat st;
	if (stat(abs, &st) < 0)
		return hsp_make_errno(err, errno, "template `%s`", arg);
	if (S_ISDIR(st.st_mode)) {
		if (!hsp_tpl_looks_like_rootfs(abs))
			return hsp_tpl_not_rootfs(arg, abs, err);
	} else if (!S_ISREG(st.st_mode) || !hsp_tpl_has_suffix(abs, ".tar.zst")) {
		return hsp_tpl_not_template(arg, abs, err);
	} else {
		int r = hsp_tpl_check_zstd_file(abs, arg, err);
		if (r < 0)
			return r;
	}
	t->name = hsp_tpl_strdup(arg);
	t->source = steal_pointer(&abs);
	t->init = strv_dup(hsp_tpl_default_init);
	t->stop_signal = hsp_tpl_strdup(HSP_TPL_DEFAULT_STOP_SIGNAL);
	return 0;
}

int hsp_template_resolve(const char *root, const char *arg, struct hsp_template *t,
			 hsp_error_t *err)
{
	memset(t, 0, sizeof(*t));
	if (arg == NULL || *arg == '\0')
		return hsp_make_error(err, EINVAL, "template: empty name");
	hsp_error_t ignored = NULL;
	bool is_name =
	    strchr(arg, '/') == NULL && hsp_validate_name(arg, "template", &ignored) == 0;
	hsp_error_release(&ignored);
	int r = is_name ? resolve_stored(root, arg, t, err) : resolve_path(arg, t, err);
	if (r < 0)
		hsp_template_clear(t);
	return r;
}

static int compare_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int hsp_template_list(const char *root, char ***names, hsp_error_t *err)
{
	*names = NULL;
	cleanup_free char *dir = hsp_strdup_printf("%s/templates", root);
	__attribute__((cleanup(closedirp))) DIR *d = opendir(dir);
	if (d == NULL && errno != ENOENT)
		return hsp_make_errno(err, errno, "list templates in `%s`", dir);

	size_t n = 0, cap = 8;
	cleanup_strv char **v = calloc(cap, sizeof(*v));
	if (v == NULL)
		abort();
	struct dirent *de;
	while (d && (de = readdir(d)) != NULL) {
		hsp_error_t ignored = NULL;
		bool valid = hsp_validate_name(de->d_name, "template", &ignored) == 0;
		hsp_error_release(&ignored);
		cleanup_free char *m = hsp_strdup_printf("%s/" HSP_TPL_MANIFEST, de->d_name);
		struct stat st;
		if (!valid || fstatat(dirfd(d), m, &st, 0) < 0 || !S_ISREG(st.st_mode))
			continue;
		if (n + 2 > cap) {
			char **nv = realloc(v, (cap *= 2) * sizeof(*v));
			if (nv == NULL)
				abort();
			v = nv;
		}
		v[n++] = hsp_tpl_strdup(de->d_name);
		v[n] = NULL;
	}
	qsort(v, n, sizeof(*v), compare_names);
	*names = steal_pointer(&v);
	return (int)n;
}

/* ---- entry pipeline: sources --------------------------------------------- */

/* A sink consumes one entry whose path (and hard link target) is already
 * normalised; data, if any, is read from `src`. */
