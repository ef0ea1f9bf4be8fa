/* The archive half of templates: walking a rootfs directory or a tar.zst
 * with libarchive, shifting owners into a VE's id range, extracting safely
 * and packing imports.  Linked only into hsp-unpack, so neither the CLI nor
 * the monitor map libarchive and the ~14 libraries it pulls in, and
 * untrusted archives are parsed in a process of their own. */
#define _GNU_SOURCE
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <linux/capability.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "hsp-runtime.h"
#include "template.h"
#include "template-internal.h"
#include "utils.h"

static void archive_read_freep(struct archive **a)
{
	if (*a)
		archive_read_free(*a);
}

static void archive_write_freep(struct archive **a)
{
	if (*a)
		archive_write_free(*a);
}

static void archive_entry_freep(struct archive_entry **e)
{
	if (*e)
		archive_entry_free(*e);
}

static void linkresolver_freep(struct archive_entry_linkresolver **r)
{
	if (*r)
		archive_entry_linkresolver_free(*r);
}

#define cleanup_archive_read __attribute__((cleanup(archive_read_freep)))
#define cleanup_archive_write __attribute__((cleanup(archive_write_freep)))
#define cleanup_entry __attribute__((cleanup(archive_entry_freep)))

typedef int (*sink_fn)(void *sink, struct archive *src, struct archive_entry *e);

static int archive_fail(hsp_error_t *err, struct archive *a, const char *what, const char *op,
			const char *path)
{
	int e = archive_errno(a);
	const char *msg = archive_error_string(a);
	if (e <= 0)
		e = EIO;
	return hsp_make_error(err, e, "template `%s`: %s `%s`: %s", what, op, path,
			      msg ? msg : strerror(e));
}

/* Canonical relative form: "a/b", or "." for the root.  Absolute paths and
 * ".." are refused rather than rewritten: a rootfs archive never needs them. */
static int normalize_path(const char *in, char **out)
{
	if (in == NULL || *in == '\0' || *in == '/')
		return -EINVAL;
	char *buf = malloc(strlen(in) + 2), *o = buf;
	if (buf == NULL)
		abort();
	for (const char *p = in; *p;) {
		const char *end = strchrnul(p, '/');
		size_t len = end - p;
		if (len == 2 && p[0] == '.' && p[1] == '.') {
			free(buf);
			return -EINVAL;
		}
		if (len > 0 && !(len == 1 && p[0] == '.')) {
			if (o != buf)
				*o++ = '/';
			memcpy(o, p, len);
			o += len;
		}
		p = *end ? end + 1 : end;
	}
	if (o == buf)
		*o++ = '.';
	*o = '\0';
	*out = buf;
	return 0;
}

static int normalize_entry(struct archive_entry *e, const char *what, hsp_error_t *err)
{
	cleanup_free char *path = NULL, *link = NULL;
	const char *p = archive_entry_pathname(e), *l = archive_entry_hardlink(e);
	if (normalize_path(p, &path) < 0)
		return hsp_make_error(err, EINVAL, "template `%s`: unsafe path `%s` in archive",
				      what, p ? p : "(none)");
	if (l && normalize_path(l, &link) < 0)
		return hsp_make_error(
		    err, EINVAL, "template `%s`: unsafe hard link target `%s` in archive", what, l);
	archive_entry_copy_pathname(e, path);
	if (link)
		archive_entry_copy_hardlink(e, link);
	return 0;
}

static int walk_tar(int fd, const char *what, sink_fn put, void *sink, hsp_error_t *err)
{
	cleanup_archive_read struct archive *a = archive_read_new();
	if (a == NULL)
		abort();
	archive_read_support_filter_zstd(a);
	archive_read_support_format_tar(a);
	if (archive_read_open_fd(a, fd, HSP_TPL_READ_BLOCK) != ARCHIVE_OK)
		return archive_fail(err, a, what, "open", "archive");
	for (;;) {
		struct archive_entry *e;
		int r = archive_read_next_header(a, &e);
		if (r == ARCHIVE_EOF)
			break;
		/* Warnings here are about charset conversion or ignored pax
		 * keywords; the entry itself is intact. */
		if (r < ARCHIVE_WARN)
			return archive_fail(err, a, what, "read", "archive");
		r = normalize_entry(e, what, err);
		if (r == 0)
			r = put(sink, a, e);
		if (r < 0)
			return r;
	}
	return 0;
}

static int dir_entry_path(struct archive_entry *e, const char *dir, const char *what,
			  hsp_error_t *err)
{
	const char *p = archive_entry_pathname(e);
	size_t n = strlen(dir);
	if (p == NULL || strncmp(p, dir, n) != 0 || (p[n] != '\0' && p[n] != '/'))
		return hsp_make_error(err, EIO, "template `%s`: unexpected path `%s` under `%s`",
				      what, p ? p : "(none)", dir);
	cleanup_free char *rel = NULL;
	if (normalize_path(p[n] ? p + n + 1 : ".", &rel) < 0)
		return hsp_make_error(err, EINVAL, "template `%s`: unsafe path `%s`", what, p);
	archive_entry_copy_pathname(e, rel);
	return 0;
}

/* `sparse` keeps holes as block offsets for the disk writer; the tar writer
 * wants a plain stream. */
static int walk_dir(const char *dir, bool sparse, const char *what, sink_fn put, void *sink,
		    hsp_error_t *err)
{
	cleanup_archive_read struct archive *a = archive_read_disk_new();
	__attribute__((cleanup(linkresolver_freep))) struct archive_entry_linkresolver *links =
	    archive_entry_linkresolver_new();
	cleanup_entry struct archive_entry *e = archive_entry_new();
	if (a == NULL || links == NULL || e == NULL)
		abort();
	/* Hard links become tar-style: the first path carries the data, later
	 * ones name it. */
	archive_entry_linkresolver_set_strategy(links, ARCHIVE_FORMAT_TAR_PAX_RESTRICTED);
	archive_read_disk_set_symlink_physical(a);
	archive_read_disk_set_behavior(a, ARCHIVE_READDISK_NO_TRAVERSE_MOUNTS |
					      ARCHIVE_READDISK_NO_FFLAGS |
					      (sparse ? 0 : ARCHIVE_READDISK_NO_SPARSE));
	if (archive_read_disk_open(a, dir) != ARCHIVE_OK)
		return archive_fail(err, a, what, "open", dir);
	for (;;) {
		archive_entry_clear(e);
		int r = archive_read_next_header2(a, e);
		if (r == ARCHIVE_EOF)
			break;
		/* A warning here means lost metadata (xattrs, ACLs): fatal. */
		if (r != ARCHIVE_OK)
			return archive_fail(err, a, what, "read", dir);
		if (archive_read_disk_can_descend(a))
			archive_read_disk_descend(a);
		r = dir_entry_path(e, dir, what, err);
		if (r < 0)
			return r;
		struct archive_entry *entry = e, *spare = NULL;
		archive_entry_linkify(links, &entry, &spare);
		r = entry ? put(sink, a, entry) : 0; /* tar strategy never defers */
		if (r < 0)
			return r;
	}
	return 0;
}

/* ---- id shifting --------------------------------------------------------- */

static int shift_id(int64_t id, uid_t shift, const char *what, const char *path, const char *kind,
		    int64_t *out, hsp_error_t *err)
{
	if (id < 0 || id >= HSP_IDMAP_SIZE)
		return hsp_make_error(err, EINVAL,
				      "template `%s`: `%s` has %s %lld: id out of range (0-%u)",
				      what, path, kind, (long long)id, HSP_IDMAP_SIZE - 1);
	*out = id + shift;
	return 0;
}

static int shift_owner(struct archive_entry *e, uid_t shift, const char *what, hsp_error_t *err)
{
	const char *path = archive_entry_pathname(e);
	int64_t uid = 0, gid = 0;
	int r = shift_id(archive_entry_uid(e), shift, what, path, "uid", &uid, err);
	if (r == 0)
		r = shift_id(archive_entry_gid(e), shift, what, path, "gid", &gid, err);
	if (r < 0)
		return r;
	archive_entry_set_uid(e, uid);
	archive_entry_set_gid(e, gid);
	return 0;
}

struct acl_item {
	int type, permset, tag, qual;
};

/* Named-user and named-group ACL entries carry ids too. */
static int shift_acl(struct archive_entry *e, uid_t shift, const char *what, hsp_error_t *err)
{
	int want = ARCHIVE_ENTRY_ACL_TYPE_POSIX1E | ARCHIVE_ENTRY_ACL_TYPE_NFS4;
	int n = archive_entry_acl_reset(e, want);
	if (n <= 0)
		return 0;
	cleanup_free struct acl_item *items = calloc(n, sizeof(*items));
	if (items == NULL)
		abort();
	int count = 0;
	const char *name;
	struct acl_item it;
	while (count < n && archive_entry_acl_next(e, want, &it.type, &it.permset, &it.tag,
						   &it.qual, &name) == ARCHIVE_OK) {
		if (it.tag == ARCHIVE_ENTRY_ACL_USER || it.tag == ARCHIVE_ENTRY_ACL_GROUP) {
			int64_t id = 0;
			int r = shift_id(it.qual, shift, what, archive_entry_pathname(e), "ACL id",
					 &id, err);
			if (r < 0)
				return r;
			it.qual = (int)id;
		}
		items[count++] = it;
	}
	archive_entry_acl_clear(e);
	for (int i = 0; i < count; i++)
		archive_entry_acl_add_entry(e, items[i].type, items[i].permset, items[i].tag,
					    items[i].qual, NULL);
	return 0;
}

/* File capabilities of every revision become v3 with the VE's root (the
 * shifted uid 0) as rootid: the kernel honours them in the VE's user namespace
 * and nowhere else, and VE root sees them as ordinary v2 caps.  A v3 rootid is
 * shifted like any other uid. */
static int shift_caps(const void *val, size_t size, uid_t shift, struct vfs_ns_cap_data *out,
		      const char *what, const char *path, hsp_error_t *err)
{
	struct vfs_ns_cap_data in = {0};
	uint32_t magic;
	size_t want;
	int64_t rootid = 0;
	int r;
	if (size < sizeof(in.magic_etc) || size > sizeof(in))
		goto bad;
	memcpy(&in, val, size);
	magic = le32toh(in.magic_etc);
	want = (magic & VFS_CAP_REVISION_MASK) == VFS_CAP_REVISION_1   ? XATTR_CAPS_SZ_1
	       : (magic & VFS_CAP_REVISION_MASK) == VFS_CAP_REVISION_2 ? XATTR_CAPS_SZ_2
	       : (magic & VFS_CAP_REVISION_MASK) == VFS_CAP_REVISION_3 ? XATTR_CAPS_SZ_3
								       : 0;
	if (want == 0 || size != want)
		goto bad;
	r = shift_id(size == XATTR_CAPS_SZ_3 ? le32toh(in.rootid) : 0, shift, what, path,
		     "capability rootid", &rootid, err);
	if (r < 0)
		return r;
	*out = in;
	out->magic_etc = htole32(VFS_CAP_REVISION_3 | (magic & VFS_CAP_FLAGS_EFFECTIVE));
	out->rootid = htole32((uint32_t)rootid);
	return 0;
bad:
	return hsp_make_error(err, EINVAL, "template `%s`: `%s`: malformed security.capability",
			      what, path);
}

/* Raw POSIX ACL xattrs (as GNU tar may store them): header, then
 * {u16 tag, u16 perm, u32 id} entries. */
static int shift_raw_acl(void *val, size_t size, uid_t shift, const char *what, const char *path,
			 hsp_error_t *err)
{
	if (size < 4 || (size - 4) % 8 != 0)
		return hsp_make_error(err, EINVAL, "template `%s`: `%s`: malformed ACL xattr", what,
				      path);
	for (unsigned char *p = (unsigned char *)val + 4; p < (unsigned char *)val + size; p += 8) {
		uint16_t tag;
		uint32_t id;
		memcpy(&tag, p, 2);
		memcpy(&id, p + 4, 4);
		tag = le16toh(tag);
		if (tag != 0x02 && tag != 0x08) /* ACL_USER, ACL_GROUP */
			continue;
		int64_t shifted = 0;
		int r = shift_id(le32toh(id), shift, what, path, "ACL id", &shifted, err);
		if (r < 0)
			return r;
		id = htole32((uint32_t)shifted);
		memcpy(p + 4, &id, 4);
	}
	return 0;
}

struct xattr_item {
	char *name;
	void *value;
	size_t size;
};

static bool xattr_has_ids(const char *name)
{
	return strcmp(name, "security.capability") == 0 ||
	       strcmp(name, "system.posix_acl_access") == 0 ||
	       strcmp(name, "system.posix_acl_default") == 0;
}

static int shift_xattr(struct xattr_item *x, uid_t shift, const char *what, const char *path,
		       hsp_error_t *err)
{
	if (strcmp(x->name, "security.capability") != 0)
		return shift_raw_acl(x->value, x->size, shift, what, path, err);
	struct vfs_ns_cap_data caps;
	int r = shift_caps(x->value, x->size, shift, &caps, what, path, err);
	if (r < 0)
		return r;
	void *v = realloc(x->value, sizeof(caps));
	if (v == NULL)
		abort();
	memcpy(v, &caps, sizeof(caps));
	x->value = v;
	x->size = sizeof(caps);
	return 0;
}

static void xattr_items_free(struct xattr_item *items, int n)
{
	for (int i = 0; i < n; i++) {
		free(items[i].name);
		free(items[i].value);
	}
	free(items);
}

/* Rebuilds the xattr list only for entries that carry ids in xattrs (rare). */
static int shift_xattrs(struct archive_entry *e, uid_t shift, const char *what, hsp_error_t *err)
{
	int n = archive_entry_xattr_reset(e), count = 0, r = 0;
	const char *name;
	const void *value;
	size_t size;
	bool needed = false;
	while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK)
		needed = needed || xattr_has_ids(name);
	if (!needed)
		return 0;

	struct xattr_item *items = calloc(n, sizeof(*items));
	if (items == NULL)
		abort();
	archive_entry_xattr_reset(e);
	while (count < n && archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
		struct xattr_item *x = &items[count++];
		x->name = hsp_tpl_strdup(name);
		x->value = malloc(size ? size : 1);
		if (x->value == NULL)
			abort();
		memcpy(x->value, value, size);
		x->size = size;
		if (xattr_has_ids(name))
			r = shift_xattr(x, shift, what, archive_entry_pathname(e), err);
		if (r < 0)
			break;
	}
	if (r == 0) {
		archive_entry_xattr_clear(e);
		for (int i = 0; i < count; i++)
			archive_entry_xattr_add_entry(e, items[i].name, items[i].value,
						      items[i].size);
	}
	xattr_items_free(items, count);
	return r;
}

/* ---- extract sink: populate a VE root -------------------------------------- */

enum { SEEN_DIR = 1, SEEN_OTHER, SEEN_SKIPPED };

/* Open-addressing set of the paths written so far, with their kind. */
struct pathmap {
	char **keys;
	unsigned char *kinds;
	size_t cap; /* a power of two */
	size_t len;
};

static size_t pathmap_slot(const struct pathmap *m, const char *key)
{
	size_t i = hsp_hash64(key) & (m->cap - 1);
	while (m->keys[i] && strcmp(m->keys[i], key) != 0)
		i = (i + 1) & (m->cap - 1);
	return i;
}

static int pathmap_get(const struct pathmap *m, const char *key)
{
	if (m->cap == 0)
		return 0;
	size_t i = pathmap_slot(m, key);
	return m->keys[i] ? m->kinds[i] : 0;
}

static void pathmap_grow(struct pathmap *m)
{
	struct pathmap n = {.cap = m->cap ? m->cap * 2 : 1024, .len = m->len};
	n.keys = calloc(n.cap, sizeof(*n.keys));
	n.kinds = calloc(n.cap, sizeof(*n.kinds));
	if (n.keys == NULL || n.kinds == NULL)
		abort();
	for (size_t i = 0; i < m->cap; i++) {
		if (m->keys[i] == NULL)
			continue;
		size_t j = pathmap_slot(&n, m->keys[i]);
		n.keys[j] = m->keys[i];
		n.kinds[j] = m->kinds[i];
	}
	free(m->keys);
	free(m->kinds);
	*m = n;
}

static void pathmap_put(struct pathmap *m, const char *key, int kind)
{
	if ((m->len + 1) * 2 > m->cap)
		pathmap_grow(m);
	size_t i = pathmap_slot(m, key);
	if (m->keys[i] == NULL) {
		m->keys[i] = hsp_tpl_strdup(key);
		m->len++;
	}
	m->kinds[i] = (unsigned char)kind;
}

static void pathmap_free(struct pathmap *m)
{
	for (size_t i = 0; i < m->cap; i++)
		free(m->keys[i]);
	free(m->keys);
	free(m->kinds);
	memset(m, 0, sizeof(*m));
}

struct extract {
	struct archive *disk;
	struct pathmap seen;
	uid_t shift;
	const char *what;
	hsp_error_t *err;
	int metafd; /* backups: where meta.json and config.json go; else -1 */
	int descriptions;
};

static int copy_to_disk(struct extract *x, struct archive *src, const char *path)
{
	for (;;) {
		const void *buf;
		size_t size;
		la_int64_t off;
		int r = archive_read_data_block(src, &buf, &size, &off);
		if (r == ARCHIVE_EOF)
			return 0;
		if (r != ARCHIVE_OK)
			return archive_fail(x->err, src, x->what, "read", path);
		if (archive_write_data_block(x->disk, buf, size, off) != ARCHIVE_OK)
			return archive_fail(x->err, x->disk, x->what, "write", path);
	}
}

static int write_to_disk(struct extract *x, struct archive *src, struct archive_entry *e)
{
	const char *path = archive_entry_pathname(e);
	/* Any warning (an xattr, ACL or time not restored) is a broken VE root. */
	if (archive_write_header(x->disk, e) != ARCHIVE_OK)
		return archive_fail(x->err, x->disk, x->what, "extract", path);
	bool data = archive_entry_filetype(e) == AE_IFREG || archive_entry_hardlink(e);
	if (src && data && archive_entry_size(e) > 0) {
		int r = copy_to_disk(x, src, path);
		if (r < 0)
			return r;
	}
	if (archive_write_finish_entry(x->disk) != ARCHIVE_OK)
		return archive_fail(x->err, x->disk, x->what, "extract", path);
	pathmap_put(&x->seen, path, archive_entry_filetype(e) == AE_IFDIR ? SEEN_DIR : SEEN_OTHER);
	return 0;
}

/* Archives may omit directories; make them here, owned by the VE's root,
 * instead of letting libarchive create them owned by the host's root. */
static int synth_dir(struct extract *x, const char *path)
{
	cleanup_entry struct archive_entry *d = archive_entry_new();
	if (d == NULL)
		abort();
	archive_entry_copy_pathname(d, path);
	archive_entry_set_filetype(d, AE_IFDIR);
	archive_entry_set_perm(d, 0755);
	archive_entry_set_uid(d, x->shift);
	archive_entry_set_gid(d, x->shift);
	return write_to_disk(x, NULL, d);
}

/* `path` is modified temporarily; `entry` is only for the message. */
static int ensure_parents(struct extract *x, char *path, const char *entry)
{
	char *slash = strrchr(path, '/');
	if (slash == NULL)
		return 0; /* the parent is the root */
	*slash = '\0';
	int r = 0, kind = pathmap_get(&x->seen, path);
	if (kind != 0 && kind != SEEN_DIR)
		r = hsp_make_error(x->err, EINVAL,
				   "template `%s`: `%s` lies beneath non-directory `%s`", x->what,
				   entry, path);
	else if (kind == 0 && (r = ensure_parents(x, path, entry)) == 0)
		r = synth_dir(x, path);
	*slash = '/';
	return r;
}

static int extract_put(void *sink, struct archive *src, struct archive_entry *e)
{
	struct extract *x = sink;
	mode_t type = archive_entry_filetype(e);
	const char *link = archive_entry_hardlink(e);
	int target = link ? pathmap_get(&x->seen, link) : 0;
	if (strcmp(archive_entry_pathname(e), ".") == 0 && (link || type != AE_IFDIR))
		return hsp_make_error(x->err, EINVAL,
				      "template `%s`: the archive's root is not a directory",
				      x->what);
	/* /dev is a tmpfs in every VE, and sockets only exist while bound. */
	if (type == AE_IFCHR || type == AE_IFBLK || type == AE_IFSOCK || target == SEEN_SKIPPED) {
		pathmap_put(&x->seen, archive_entry_pathname(e), SEEN_SKIPPED);
		return 0;
	}
	/* Tar hard link entries carry no file type of their own. */
	if (link && target != SEEN_OTHER)
		return hsp_make_error(x->err, EINVAL,
				      "template `%s`: hard link `%s` to unknown file `%s`", x->what,
				      archive_entry_pathname(e), link);
	if (!link && type != AE_IFREG && type != AE_IFDIR && type != AE_IFLNK && type != AE_IFIFO)
		return hsp_make_error(x->err, EINVAL, "template `%s`: `%s`: unsupported file type",
				      x->what, archive_entry_pathname(e));
	cleanup_free char *path = hsp_tpl_strdup(archive_entry_pathname(e));
	int r = ensure_parents(x, path, archive_entry_pathname(e));
	if (r == 0)
		r = shift_owner(e, x->shift, x->what, x->err);
	if (r == 0)
		r = shift_acl(e, x->shift, x->what, x->err);
	if (r == 0)
		r = shift_xattrs(e, x->shift, x->what, x->err);
	if (r == 0)
		r = write_to_disk(x, src, e);
	return r;
}

/* ---- backups: meta.json, config.json, rootfs/ --------------------------- */

#define BACKUP_DESC_MAX (1 << 20)

static int save_description(struct extract *x, struct archive *src, struct archive_entry *e)
{
	const char *path = archive_entry_pathname(e);
	la_int64_t size = archive_entry_size(e);
	if (archive_entry_filetype(e) != AE_IFREG || size <= 0 || size > BACKUP_DESC_MAX)
		return hsp_make_error(x->err, EINVAL, "not a backup: bad `%s`", path);
	cleanup_free char *buf = malloc((size_t)size);
	if (buf == NULL)
		abort();
	if (archive_read_data(src, buf, (size_t)size) != size)
		return archive_fail(x->err, src, x->what, "read", path);
	cleanup_close int fd =
	    openat(x->metafd, path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, buf, (size_t)size) != size)
		return hsp_make_errno(x->err, errno, "backup: write `%s`", path);
	x->descriptions++;
	return 0;
}

/* "rootfs/a" -> "a", "rootfs" -> "."; anything else is not ours. */
static int strip_rootfs(struct archive_entry *e, const char *p, bool link, hsp_error_t *err)
{
	if (p == NULL)
		return 0;
	if (strncmp(p, "rootfs", 6) != 0 || (p[6] != '\0' && p[6] != '/'))
		return hsp_make_error(err, EINVAL, "not a backup: unexpected entry `%s`", p);
	const char *rel = p[6] ? p + 7 : ".";
	cleanup_free char *copy = hsp_tpl_strdup(rel);
	if (link)
		archive_entry_copy_hardlink(e, copy);
	else
		archive_entry_copy_pathname(e, copy);
	return 0;
}

static int backup_put(void *sink, struct archive *src, struct archive_entry *e)
{
	struct extract *x = sink;
	const char *path = archive_entry_pathname(e);
	if (strcmp(path, "meta.json") == 0 || strcmp(path, "config.json") == 0)
		return save_description(x, src, e);
	int r = strip_rootfs(e, path, false, x->err);
	if (r == 0)
		r = strip_rootfs(e, archive_entry_hardlink(e), true, x->err);
	return r < 0 ? r : extract_put(sink, src, e);
}

struct populate_job {
	const struct hsp_template *t;
	int metafd; /* a backup: see struct extract */
	int destfd;
	int tarfd; /* -1 for a directory source */
	uid_t shift;
	int ret;
	hsp_error_t *err;
};

static int populate_here(struct populate_job *j)
{
	const char *what = j->t->name;
	/* The disk writer's SECURE_* checks need paths relative to the cwd:
	 * give this thread its own cwd (and umask) so the caller's stay. */
	if (unshare(CLONE_FS) < 0)
		return hsp_make_errno(j->err, errno, "template `%s`: unshare(CLONE_FS)", what);
	if (fchdir(j->destfd) < 0)
		return hsp_make_errno(j->err, errno, "template `%s`: enter destination", what);
	umask(022);

	struct extract x = {.shift = j->shift, .what = what, .err = j->err, .metafd = j->metafd};
	cleanup_archive_write struct archive *disk = x.disk = archive_write_disk_new();
	if (disk == NULL)
		abort();
	archive_write_disk_set_options(
	    disk, ARCHIVE_EXTRACT_OWNER | ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_TIME |
		      ARCHIVE_EXTRACT_XATTR | ARCHIVE_EXTRACT_ACL |
		      ARCHIVE_EXTRACT_SECURE_SYMLINKS | ARCHIVE_EXTRACT_SECURE_NODOTDOT |
		      ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS | ARCHIVE_EXTRACT_NO_AUTODIR);
	pathmap_put(&x.seen, ".", SEEN_DIR);
	sink_fn put = j->metafd >= 0 ? backup_put : extract_put;
	int r = j->tarfd >= 0 ? walk_tar(j->tarfd, what, put, &x, j->err)
			      : walk_dir(j->t->source, true, what, put, &x, j->err);
	if (r == 0 && j->metafd >= 0 && x.descriptions != 2)
		r = hsp_make_error(j->err, EINVAL,
				   "not a backup: meta.json or config.json missing");
	/* Closing applies the deferred modes and times of directories. */
	if (r == 0 && archive_write_close(disk) != ARCHIVE_OK)
		r = archive_fail(j->err, disk, what, "finish", ".");
	pathmap_free(&x.seen);
	return r;
}

static void *populate_thread(void *arg)
{
	struct populate_job *j = arg;
	j->ret = populate_here(j);
	return NULL;
}

static int populate_dest(const struct hsp_template *t, const char *dest, uid_t shift,
			 hsp_error_t *err)
{
	cleanup_close int destfd = open(dest, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (destfd < 0)
		return hsp_make_errno(err, errno, "open `%s`", dest);
	/* The root is the VE's even if the archive has no "." entry. */
	if (fchown(destfd, shift, shift) < 0 || fchmod(destfd, 0755) < 0)
		return hsp_make_errno(err, errno, "chown `%s`", dest);

	struct stat st;
	if (stat(t->source, &st) < 0)
		return hsp_make_errno(err, errno, "template `%s`: `%s`", t->name, t->source);
	cleanup_close int tarfd = -1;
	if (!S_ISDIR(st.st_mode) && (tarfd = open(t->source, O_RDONLY | O_CLOEXEC)) < 0)
		return hsp_make_errno(err, errno, "template `%s`: open `%s`", t->name, t->source);

	struct populate_job j = {
	    .t = t, .metafd = -1, .destfd = destfd, .tarfd = tarfd, .shift = shift, .err = err};
	pthread_t th;
	int e = pthread_create(&th, NULL, populate_thread, &j);
	if (e != 0)
		return hsp_make_errno(err, e, "template `%s`: start extraction thread", t->name);
	pthread_join(th, NULL);
	return j.ret;
}

int hsp_archive_populate(const struct hsp_template *t, const char *dest, uid_t id_shift,
			 hsp_error_t *err)
{
	if (id_shift > (uid_t)-1 - HSP_IDMAP_SIZE)
		return hsp_make_error(err, EINVAL, "populate `%s`: id shift %u too large", dest,
				      id_shift);
	if (mkdir(dest, 0755) < 0)
		return hsp_make_errno(err, errno, "create root file system `%s`", dest);
	int r = populate_dest(t, dest, id_shift, err);
	if (r < 0)
		hsp_rm_rf(dest, NULL);
	return r;
}

int hsp_archive_unbackup(int infd, const char *meta_dir, const char *dest, hsp_error_t *err)
{
	cleanup_close int metafd = open(meta_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (metafd < 0)
		return hsp_make_errno(err, errno, "open `%s`", meta_dir);
	if (mkdir(dest, 0755) < 0)
		return hsp_make_errno(err, errno, "create root file system `%s`", dest);
	cleanup_close int destfd = open(dest, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (destfd < 0)
		return hsp_make_errno(err, errno, "open `%s`", dest);
	struct hsp_template t = {.name = "backup", .source = "-"};
	struct populate_job j = {
	    .t = &t, .metafd = metafd, .destfd = destfd, .tarfd = infd, .shift = 0, .err = err};
	pthread_t th;
	int e = pthread_create(&th, NULL, populate_thread, &j);
	if (e != 0)
		return hsp_make_errno(err, e, "backup: start extraction thread");
	pthread_join(th, NULL);
	return j.ret;
}

/* ---- pack sink: import a directory into the store ------------------------- */

struct pack {
	struct archive *out;
	const char *prefix; /* "." for templates, "rootfs" in backups */
	const char *what;
	hsp_error_t *err;
};

static int copy_to_tar(struct pack *p, struct archive *src, const char *path)
{
	la_int64_t expect = 0;
	for (;;) {
		const void *buf;
		size_t size;
		la_int64_t off;
		int r = archive_read_data_block(src, &buf, &size, &off);
		if (r == ARCHIVE_EOF)
			return 0;
		if (r != ARCHIVE_OK)
			return archive_fail(p->err, src, p->what, "read", path);
		if (off != expect)
			return hsp_make_error(p->err, EIO,
					      "template `%s`: read `%s`: unexpected hole", p->what,
					      path);
		if (archive_write_data(p->out, buf, size) != (la_ssize_t)size)
			return archive_fail(p->err, p->out, p->what, "pack", path);
		expect += size;
	}
}

static char *tar_path(const char *prefix, const char *path)
{
	return strcmp(path, ".") == 0 ? hsp_strdup_printf("%s/", prefix)
				      : hsp_strdup_printf("%s/%s", prefix, path);
}

static int pack_put(void *sink, struct archive *src, struct archive_entry *e)
{
	struct pack *p = sink;
	if (archive_entry_filetype(e) == AE_IFSOCK)
		return 0;
	/* Checked here too so a bad tree fails at import, not at first use. */
	int r = shift_owner(e, 0, p->what, p->err);
	if (r < 0)
		return r;
	cleanup_free char *path = tar_path(p->prefix, archive_entry_pathname(e));
	archive_entry_copy_pathname(e, path);
	if (archive_entry_hardlink(e)) {
		cleanup_free char *link = tar_path(p->prefix, archive_entry_hardlink(e));
		archive_entry_copy_hardlink(e, link);
	}
	/* A warning is a name not convertible to UTF-8 in this locale: it is
	 * stored as raw bytes (hdrcharset=BINARY), which is what we want. */
	if (archive_write_header(p->out, e) < ARCHIVE_WARN)
		return archive_fail(p->err, p->out, p->what, "pack", path);
	if (archive_entry_filetype(e) == AE_IFREG && archive_entry_size(e) > 0 &&
	    (r = copy_to_tar(p, src, path)) < 0)
		return r;
	if (archive_write_finish_entry(p->out) != ARCHIVE_OK)
		return archive_fail(p->err, p->out, p->what, "pack", path);
	return 0;
}

static int pack_dir(const char *src, int outfd, const char *what, hsp_error_t *err)
{
	cleanup_archive_write struct archive *a = archive_write_new();
	if (a == NULL)
		abort();
	if (archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
	    archive_write_add_filter_zstd(a) != ARCHIVE_OK ||
	    archive_write_set_filter_option(a, "zstd", "compression-level", "3") != ARCHIVE_OK ||
	    archive_write_open_fd(a, outfd) != ARCHIVE_OK)
		return archive_fail(err, a, what, "create", HSP_TPL_TAR);
	struct pack p = {.out = a, .prefix = ".", .what = what, .err = err};
	int r = walk_dir(src, false, what, pack_put, &p, err);
	if (r == 0 && archive_write_close(a) != ARCHIVE_OK)
		r = archive_fail(err, a, what, "finish", HSP_TPL_TAR);
	return r;
}

static int copy_fd(int in, int out)
{
	for (;;) {
		ssize_t n = copy_file_range(in, NULL, out, NULL, 1 << 30, 0);
		if (n == 0)
			return 0;
		if (n > 0)
			continue;
		if (errno == EINTR)
			continue;
		if (errno != EXDEV && errno != ENOSYS && errno != EINVAL && errno != EOPNOTSUPP)
			return -errno;
		break; /* no in-kernel copy between these files: do it by hand */
	}
	char buf[HSP_TPL_READ_BLOCK];
	for (;;) {
		ssize_t n = read(in, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : 0;
		for (ssize_t done = 0; done < n;) {
			ssize_t w = write(out, buf + done, n - done);
			if (w < 0 && errno != EINTR)
				return -errno;
			done += w > 0 ? w : 0;
		}
	}
}

static int store_rootfs(const char *dir, const char *source, const char *what, hsp_error_t *err)
{
	struct stat st;
	if (stat(source, &st) < 0)
		return hsp_make_errno(err, errno, "template `%s`: `%s`", what, source);
	bool is_dir = S_ISDIR(st.st_mode);
	if (is_dir && !hsp_tpl_looks_like_rootfs(source))
		return hsp_tpl_not_rootfs(what, source, err);
	if (!is_dir && (!S_ISREG(st.st_mode) || !hsp_tpl_has_suffix(source, ".tar.zst")))
		return hsp_tpl_not_template(what, source, err);
	int r = is_dir ? 0 : hsp_tpl_check_zstd_file(source, what, err);
	if (r < 0)
		return r;

	cleanup_free char *tar = hsp_strdup_printf("%s/" HSP_TPL_TAR, dir);
	/* Templates may hold password hashes: readable by root only. */
	cleanup_close int out = open(tar, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (out < 0)
		return hsp_make_errno(err, errno, "template `%s`: create `%s`", what, tar);
	if (is_dir) {
		r = pack_dir(source, out, what, err);
	} else {
		cleanup_close int in = open(source, O_RDONLY | O_CLOEXEC);
		r = in < 0 ? -errno : copy_fd(in, out);
		if (r < 0)
			r = hsp_make_errno(err, -r, "template `%s`: copy `%s`", what, source);
	}
	if (r == 0 && fsync(out) < 0)
		r = hsp_make_errno(err, errno, "template `%s`: sync `%s`", what, tar);
	return r;
}

static int import_into(const char *tmp, const char *name, const char *source, const char *os,
		       const char *version, char *const *init, const char *stop_signal,
		       hsp_error_t *err)
{
	if (mkdir(tmp, 0755) < 0)
		return hsp_make_errno(err, errno, "template `%s`: create `%s`", name, tmp);
	int r = store_rootfs(tmp, source, name, err);
	if (r == 0)
		r = hsp_tpl_write_manifest(tmp, name, os, version, init, stop_signal, err);
	return r;
}

int hsp_archive_import(const char *root, const char *name, const char *source, const char *os,
		       const char *version, char *const *init, const char *stop_signal,
		       hsp_error_t *err)
{
	int r = hsp_validate_name(name, "template", err);
	if (r < 0)
		return r;
	if (init == NULL)
		init = (char *const *)hsp_tpl_default_init;
	cleanup_free char *where = hsp_strdup_printf("template `%s`", name);
	cleanup_free char *sig = NULL;
	r = hsp_tpl_check_init(init, where, err);
	if (r == 0)
		r = hsp_tpl_canonical_signal(
		    stop_signal ? stop_signal : HSP_TPL_DEFAULT_STOP_SIGNAL, &sig, err);
	if (r < 0)
		return r;

	cleanup_free char *dir = hsp_strdup_printf("%s/templates", root);
	cleanup_free char *final = hsp_strdup_printf("%s/%s", dir, name);
	cleanup_free char *tmp = hsp_strdup_printf("%s/.tmp-%s-%d", dir, name, (int)getpid());
	struct stat st;
	if (lstat(final, &st) == 0)
		return hsp_make_error(err, EEXIST, "template `%s` already exists in %s", name, dir);
	r = hsp_mkdir_p(dir, 0755, err);
	if (r < 0)
		return r;
	hsp_rm_rf(tmp, NULL); /* left over by a crashed import with our pid */
	r = import_into(tmp, name, source, os, version, init, sig, err);
	/* FUSE (a CephFS pool through ceph-fuse) refuses rename flags; a
	 * plain rename of a directory still fails onto a non-empty one. */
	int rr = r == 0 ? renameat2(AT_FDCWD, tmp, AT_FDCWD, final, RENAME_NOREPLACE) : 0;
	if (rr < 0 && errno == EINVAL)
		rr = rename(tmp, final);
	if (rr < 0)
		r = errno == EEXIST || errno == ENOTEMPTY
			? hsp_make_error(err, EEXIST, "template `%s` already exists in %s", name,
					 dir)
			: hsp_make_errno(err, errno, "template `%s`: rename into place", name);
	if (r < 0)
		hsp_rm_rf(tmp, NULL);
	return r;
}

/* ---- pack a backup -------------------------------------------------------- */

static int add_description(struct archive *a, const char *file, const char *name, hsp_error_t *err)
{
	cleanup_free char *data = NULL;
	size_t len = 0;
	int r = hsp_read_file(file, &data, &len, err);
	if (r < 0)
		return r;
	cleanup_entry struct archive_entry *e = archive_entry_new();
	if (e == NULL)
		abort();
	archive_entry_copy_pathname(e, name);
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, 0600);
	archive_entry_set_size(e, (la_int64_t)len);
	archive_entry_set_mtime(e, time(NULL), 0);
	if (archive_write_header(a, e) != ARCHIVE_OK ||
	    archive_write_data(a, data, len) != (la_ssize_t)len ||
	    archive_write_finish_entry(a) != ARCHIVE_OK)
		return archive_fail(err, a, "backup", "pack", name);
	return 0;
}

int hsp_archive_pack_backup(const char *src, const char *meta, const char *config, int outfd,
			    hsp_error_t *err)
{
	cleanup_archive_write struct archive *a = archive_write_new();
	if (a == NULL)
		abort();
	/* Level 3: fast enough to keep up with a disk; --fast levels barely
	 * gain speed and lose much of the ratio. */
	/* No zero padding after the zstd frame: zstd and libarchive's reader
	 * take trailing zeroes for a corrupt frame. */
	if (archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
	    archive_write_add_filter_zstd(a) != ARCHIVE_OK ||
	    archive_write_set_filter_option(a, "zstd", "compression-level", "3") != ARCHIVE_OK ||
	    archive_write_set_bytes_in_last_block(a, 1) != ARCHIVE_OK ||
	    archive_write_open_fd(a, outfd) != ARCHIVE_OK)
		return archive_fail(err, a, "backup", "create", "stream");
	struct pack p = {.out = a, .prefix = "rootfs", .what = "backup", .err = err};
	int r = add_description(a, meta, "meta.json", err);
	if (r == 0)
		r = add_description(a, config, "config.json", err);
	if (r == 0)
		r = walk_dir(src, false, "backup", pack_put, &p, err);
	if (r == 0 && archive_write_close(a) != ARCHIVE_OK)
		r = archive_fail(err, a, "backup", "finish", "stream");
	return r;
}
