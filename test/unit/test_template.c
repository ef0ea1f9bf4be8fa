/* Templates: import, list, resolve, and populating VE roots with shifted ids.
 * Runs as root (chown, mknod, trusted owners in the built trees). */
#include <archive.h>
#include <archive_entry.h>
#include <check.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "template.h"
#include "utils.h"

#define SHIFT 1048576u
#define MTIME 1000000000

static char *tmp;

static char *tpath(const char *rel)
{
	return hsp_strdup_printf("%s/%s", tmp, rel);
}

static void setup(void)
{
	tmp = strdup("/tmp/hsp-test-template-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmp));
}

static void teardown(void)
{
	hsp_rm_rf(tmp, NULL);
	free(tmp);
}

static void mkfile(const char *dir, const char *name, const char *data, mode_t mode, uid_t uid,
		   gid_t gid)
{
	cleanup_free char *p = hsp_strdup_printf("%s/%s", dir, name);
	hsp_error_t err = NULL;
	ck_assert_int_eq(hsp_write_file(p, data, strlen(data), &err), 0);
	ck_assert_int_eq(chown(p, uid, gid), 0);
	ck_assert_int_eq(chmod(p, mode), 0); /* after chown, which clears setuid */
}

static void mkdir_owned(const char *dir, const char *name, uid_t uid, gid_t gid)
{
	cleanup_free char *p = hsp_strdup_printf("%s/%s", dir, name);
	ck_assert_int_eq(mkdir(p, 0755), 0);
	ck_assert_int_eq(chown(p, uid, gid), 0);
}

static void set_caps_v2(const char *path)
{
	struct vfs_cap_data caps = {0};
	caps.magic_etc = htole32(VFS_CAP_REVISION_2 | VFS_CAP_FLAGS_EFFECTIVE);
	caps.data[0].permitted = htole32(1u << CAP_NET_RAW);
	ck_assert_int_eq(setxattr(path, "security.capability", &caps, XATTR_CAPS_SZ_2, 0), 0);
}

/* Raw POSIX ACL: user_obj rw, user:1000 r, group_obj r, group:6 r, mask r, other r. */
static void set_acl(const char *path, const char *name)
{
	struct {
		uint16_t tag, perm;
		uint32_t id;
	} __attribute__((packed)) acl[] = {
	    {0x01, 6, UINT32_MAX}, {0x02, 4, 1000},	  {0x04, 4, UINT32_MAX},
	    {0x08, 4, 6},	   {0x10, 4, UINT32_MAX}, {0x20, 4, UINT32_MAX},
	};
	unsigned char buf[4 + sizeof(acl)];
	uint32_t version = htole32(2);
	for (size_t i = 0; i < sizeof(acl) / sizeof(acl[0]); i++) {
		acl[i].tag = htole16(acl[i].tag);
		acl[i].perm = htole16(acl[i].perm);
		acl[i].id = htole32(acl[i].id);
	}
	memcpy(buf, &version, 4);
	memcpy(buf + 4, acl, sizeof(acl));
	ck_assert_int_eq(setxattr(path, name, buf, sizeof(buf), 0), 0);
}

static void assert_acl_shifted(const char *dir, const char *rel, const char *name)
{
	cleanup_free char *p = hsp_strdup_printf("%s/%s", dir, rel);
	unsigned char buf[128];
	ssize_t n = getxattr(p, name, buf, sizeof(buf));
	ck_assert_msg(n > 4, "%s: no %s", rel, name);
	int named = 0;
	for (ssize_t off = 4; off + 8 <= n; off += 8) {
		uint16_t tag;
		uint32_t id;
		memcpy(&tag, buf + off, 2);
		memcpy(&id, buf + off + 4, 4);
		if (le16toh(tag) == 0x02) {
			ck_assert_uint_eq(le32toh(id), SHIFT + 1000);
			named++;
		}
		if (le16toh(tag) == 0x08) {
			ck_assert_uint_eq(le32toh(id), SHIFT + 6);
			named++;
		}
	}
	ck_assert_int_eq(named, 2);
}

/* A tiny tree with every kind of file populate must get right. */
static char *build_rootfs(void)
{
	char *src = tpath("src");
	ck_assert_int_eq(mkdir(src, 0755), 0);
	mkdir_owned(src, "bin", 0, 0);
	mkfile(src, "bin/x", "#!/bin/sh\n", 0755, 0, 0);
	mkfile(src, "bin/su", "su\n", 04755, 0, 0);
	mkfile(src, "bin/a", "linked\n", 0644, 0, 0);
	cleanup_free char *a = hsp_strdup_printf("%s/bin/a", src);
	cleanup_free char *b = hsp_strdup_printf("%s/bin/b", src);
	ck_assert_int_eq(link(a, b), 0);
	cleanup_free char *abs = hsp_strdup_printf("%s/abs", src);
	cleanup_free char *rel = hsp_strdup_printf("%s/bin/rel", src);
	ck_assert_int_eq(symlink("/bin/x", abs), 0);
	ck_assert_int_eq(symlink("x", rel), 0);
	mkfile(src, "xattr", "x\n", 0644, 0, 0);
	cleanup_free char *xa = hsp_strdup_printf("%s/xattr", src);
	ck_assert_int_eq(setxattr(xa, "user.test", "v", 1, 0), 0);
	cleanup_free char *fifo = hsp_strdup_printf("%s/fifo", src);
	ck_assert_int_eq(mkfifo(fifo, 0600), 0);
	mkdir_owned(src, "owned", 5, 6);
	mkfile(src, "owned/home1000", "u\n", 0600, 1000, 1000);
	mkfile(src, "bin/sg", "sg\n", 02755, 0, 6);
	mkfile(src, "acl", "acl\n", 0644, 0, 0);
	cleanup_free char *acl = hsp_strdup_printf("%s/acl", src);
	set_acl(acl, "system.posix_acl_access");
	cleanup_free char *owned = hsp_strdup_printf("%s/owned", src);
	set_acl(owned, "system.posix_acl_default");
	mkfile(src, "ping", "ping\n", 0755, 0, 0);
	cleanup_free char *ping = hsp_strdup_printf("%s/ping", src);
	set_caps_v2(ping);
	cleanup_free char *null = hsp_strdup_printf("%s/null", src);
	(void)mknod(null, S_IFCHR | 0666, makedev(1, 3)); /* skipped by populate if made */
	cleanup_free char *x = hsp_strdup_printf("%s/bin/x", src);
	struct timespec ts[2] = {{MTIME, 0}, {MTIME, 0}};
	ck_assert_int_eq(utimensat(AT_FDCWD, x, ts, 0), 0);
	return src;
}

static struct stat lstat_at(const char *dir, const char *name)
{
	cleanup_free char *p = hsp_strdup_printf("%s/%s", dir, name);
	struct stat st;
	ck_assert_msg(lstat(p, &st) == 0, "lstat %s: %s", p, strerror(errno));
	return st;
}

static void assert_owner(const char *dir, const char *name, uid_t uid, gid_t gid)
{
	struct stat st = lstat_at(dir, name);
	ck_assert_msg(st.st_uid == uid && st.st_gid == gid, "%s owned by %u:%u, want %u:%u", name,
		      st.st_uid, st.st_gid, uid, gid);
}

static void assert_link(const char *dir, const char *name, const char *target)
{
	cleanup_free char *p = hsp_strdup_printf("%s/%s", dir, name);
	char buf[256];
	ssize_t n = readlink(p, buf, sizeof(buf) - 1);
	ck_assert_int_gt(n, 0);
	buf[n] = '\0';
	ck_assert_str_eq(buf, target);
	assert_owner(dir, name, SHIFT, SHIFT);
}

static void assert_caps_v3(const char *dir)
{
	cleanup_free char *p = hsp_strdup_printf("%s/ping", dir);
	struct vfs_ns_cap_data caps;
	ssize_t n = getxattr(p, "security.capability", &caps, sizeof(caps));
	ck_assert_int_eq(n, XATTR_CAPS_SZ_3);
	ck_assert_uint_eq(le32toh(caps.magic_etc) & VFS_CAP_REVISION_MASK, VFS_CAP_REVISION_3);
	ck_assert_uint_eq(le32toh(caps.rootid), SHIFT);
	ck_assert_uint_eq(le32toh(caps.data[0].permitted), 1u << CAP_NET_RAW);
}

static void assert_populated(const char *dest)
{
	assert_owner(dest, ".", SHIFT, SHIFT);
	assert_owner(dest, "bin", SHIFT, SHIFT);
	assert_owner(dest, "bin/x", SHIFT, SHIFT);
	assert_owner(dest, "owned", SHIFT + 5, SHIFT + 6);
	assert_owner(dest, "owned/home1000", SHIFT + 1000, SHIFT + 1000);
	ck_assert_uint_eq(lstat_at(dest, "bin/su").st_mode & 07777, 04755);
	ck_assert_uint_eq(lstat_at(dest, "bin/sg").st_mode & 07777, 02755);
	assert_owner(dest, "bin/sg", SHIFT, SHIFT + 6);
	assert_acl_shifted(dest, "acl", "system.posix_acl_access");
	assert_acl_shifted(dest, "owned", "system.posix_acl_default");
	ck_assert_uint_eq(lstat_at(dest, "owned/home1000").st_mode & 07777, 0600);
	ck_assert_int_eq(lstat_at(dest, "bin/x").st_mtime, MTIME);
	struct stat a = lstat_at(dest, "bin/a"), b = lstat_at(dest, "bin/b");
	ck_assert_uint_eq(a.st_ino, b.st_ino);
	ck_assert_uint_eq(a.st_nlink, 2);
	assert_link(dest, "abs", "/bin/x");
	assert_link(dest, "bin/rel", "x");
	cleanup_free char *xa = hsp_strdup_printf("%s/xattr", dest);
	char v[8];
	ck_assert_int_eq(getxattr(xa, "user.test", v, sizeof(v)), 1);
	ck_assert_int_eq(v[0], 'v');
	ck_assert(S_ISFIFO(lstat_at(dest, "fifo").st_mode));
	cleanup_free char *null = hsp_strdup_printf("%s/null", dest);
	ck_assert_int_eq(access(null, F_OK), -1);
	assert_caps_v3(dest);
}

START_TEST(test_import_list_resolve_populate)
{
	cleanup_free char *src = build_rootfs();
	cleanup_free char *store = tpath("store");
	cleanup_free char *dest = tpath("dest");
	hsp_error_t err = NULL;
	char *init[] = {"/sbin/init", "--quiet", NULL};

	ck_assert_int_eq(hsp_template_import(store, "t1", src, "test", "1", init, "USR2", &err), 0);
	char **names = NULL;
	ck_assert_int_eq(hsp_template_list(store, &names, &err), 1);
	ck_assert_str_eq(names[0], "t1");
	ck_assert_ptr_null(names[1]);
	hsp_strv_free(names);

	struct hsp_template t;
	ck_assert_int_eq(hsp_template_resolve(store, "t1", &t, &err), 0);
	ck_assert_str_eq(t.name, "t1");
	ck_assert_str_eq(t.os, "test");
	ck_assert_str_eq(t.version, "1");
	ck_assert_str_eq(t.init[0], "/sbin/init");
	ck_assert_str_eq(t.init[1], "--quiet");
	ck_assert_ptr_null(t.init[2]);
	ck_assert_str_eq(t.stop_signal, "SIGUSR2");
	cleanup_free char *want = hsp_strdup_printf("%s/templates/t1/rootfs.tar.zst", store);
	ck_assert_str_eq(t.source, want);

	ck_assert_msg(hsp_rootfs_populate(&t, dest, SHIFT, &err) == 0, "%s", err ? err->msg : "");
	assert_populated(dest);
	hsp_template_clear(&t);

	ck_assert_int_eq(hsp_template_import(store, "t1", src, NULL, NULL, NULL, NULL, &err),
			 -EEXIST);
	ck_assert_ptr_nonnull(strstr(err->msg, "already exists"));
	hsp_error_release(&err);
}
END_TEST

START_TEST(test_import_tar_and_defaults)
{
	cleanup_free char *src = build_rootfs();
	cleanup_free char *store = tpath("store");
	hsp_error_t err = NULL;
	ck_assert_int_eq(hsp_template_import(store, "t1", src, NULL, NULL, NULL, NULL, &err), 0);
	cleanup_free char *tar = hsp_strdup_printf("%s/templates/t1/rootfs.tar.zst", store);
	cleanup_free char *copy = tpath("copy.tar.zst");
	cleanup_free char *cmd = hsp_strdup_printf("cp %s %s", tar, copy);
	ck_assert_int_eq(system(cmd), 0);
	ck_assert_int_eq(hsp_template_import(store, "t2", copy, "x", "2", NULL, "TERM", &err), 0);

	struct hsp_template t;
	ck_assert_int_eq(hsp_template_resolve(store, "t1", &t, &err), 0);
	ck_assert_ptr_null(t.os);
	ck_assert_str_eq(t.init[0], "/sbin/init");
	ck_assert_str_eq(t.stop_signal, "SIGTERM");
	hsp_template_clear(&t);

	/* A path to a .tar.zst works like a store name. */
	ck_assert_int_eq(hsp_template_resolve(store, copy, &t, &err), 0);
	cleanup_free char *dest = tpath("dest");
	ck_assert_msg(hsp_rootfs_populate(&t, dest, SHIFT, &err) == 0, "%s", err ? err->msg : "");
	assert_populated(dest);
	hsp_template_clear(&t);

	char **names = NULL;
	ck_assert_int_eq(hsp_template_list(store, &names, &err), 2);
	ck_assert_str_eq(names[0], "t1");
	ck_assert_str_eq(names[1], "t2");
	hsp_strv_free(names);
}
END_TEST

START_TEST(test_populate_from_dir)
{
	cleanup_free char *src = build_rootfs();
	cleanup_free char *dest = tpath("dest");
	hsp_error_t err = NULL;
	struct hsp_template t;
	ck_assert_int_eq(hsp_template_resolve(tmp, src, &t, &err), 0);
	ck_assert_str_eq(t.source, src);
	ck_assert_str_eq(t.init[0], "/sbin/init");
	ck_assert_ptr_null(t.init[1]);
	ck_assert_str_eq(t.stop_signal, "SIGTERM");
	ck_assert_msg(hsp_rootfs_populate(&t, dest, SHIFT, &err) == 0, "%s", err ? err->msg : "");
	assert_populated(dest);
	hsp_template_clear(&t);
}
END_TEST

START_TEST(test_resolve_errors)
{
	hsp_error_t err = NULL;
	struct hsp_template t;
	ck_assert_int_eq(hsp_template_resolve(tmp, "nosuch", &t, &err), -ENOENT);
	cleanup_free char *want =
	    hsp_strdup_printf("template `nosuch` not found in %s/templates", tmp);
	ck_assert_str_eq(err->msg, want);
	hsp_error_release(&err);

	ck_assert_int_eq(hsp_template_resolve(tmp, "/etc/passwd", &t, &err), -EINVAL);
	hsp_error_release(&err);
	ck_assert_int_eq(hsp_template_resolve(tmp, "/nonexistent/rootfs", &t, &err), -ENOENT);
	hsp_error_release(&err);
	ck_assert_int_eq(hsp_template_resolve(tmp, tmp, &t, &err), -EINVAL); /* no bin/usr */
	hsp_error_release(&err);
	ck_assert_int_lt(hsp_template_resolve(tmp, "", &t, &err), 0);
	hsp_error_release(&err);
}
END_TEST

START_TEST(test_populate_existing_dest)
{
	cleanup_free char *src = build_rootfs();
	cleanup_free char *dest = tpath("dest");
	ck_assert_int_eq(mkdir(dest, 0700), 0);
	mkfile(dest, "keep", "keep\n", 0644, 0, 0);
	hsp_error_t err = NULL;
	struct hsp_template t;
	ck_assert_int_eq(hsp_template_resolve(tmp, src, &t, &err), 0);
	ck_assert_int_eq(hsp_rootfs_populate(&t, dest, SHIFT, &err), -EEXIST);
	hsp_error_release(&err);
	assert_owner(dest, ".", 0, 0);
	ck_assert_uint_eq(lstat_at(dest, ".").st_mode & 07777, 0700);
	assert_owner(dest, "keep", 0, 0);
	hsp_template_clear(&t);
}
END_TEST

START_TEST(test_id_out_of_range)
{
	cleanup_free char *src = build_rootfs();
	mkfile(src, "bin/big", "x\n", 0644, 70000, 0);
	cleanup_free char *dest = tpath("dest");
	hsp_error_t err = NULL;
	struct hsp_template t;
	ck_assert_int_eq(hsp_template_resolve(tmp, src, &t, &err), 0);
	ck_assert_int_eq(hsp_rootfs_populate(&t, dest, SHIFT, &err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err->msg, "id out of range"));
	hsp_error_release(&err);
	ck_assert_int_eq(access(dest, F_OK), -1);
	hsp_template_clear(&t);

	/* The store refuses such a tree up front. */
	cleanup_free char *store = tpath("store");
	ck_assert_int_eq(hsp_template_import(store, "big", src, NULL, NULL, NULL, NULL, &err),
			 -EINVAL);
	hsp_error_release(&err);
	char **names = NULL;
	ck_assert_int_eq(hsp_template_list(store, &names, &err), 0);
	hsp_strv_free(names);
	cleanup_free char *leftover = hsp_strdup_printf("%s/templates", store);
	cleanup_free char *cmd = hsp_strdup_printf("test -z \"$(ls -A %s)\"", leftover);
	ck_assert_int_eq(system(cmd), 0);
}
END_TEST

START_TEST(test_list_ignores_partial)
{
	cleanup_free char *store = tpath("store");
	hsp_error_t err = NULL;
	char **names = NULL;
	ck_assert_int_eq(hsp_template_list(store, &names, &err), 0); /* no store yet */
	ck_assert_ptr_null(names[0]);
	hsp_strv_free(names);
	cleanup_free char *tdir = hsp_strdup_printf("%s/templates/.tmp-x-1", store);
	ck_assert_int_eq(hsp_mkdir_p(tdir, 0755, &err), 0);
	mkfile(tdir, "manifest.json", "{}", 0644, 0, 0);
	cleanup_free char *nomanifest = hsp_strdup_printf("%s/templates/half", store);
	ck_assert_int_eq(mkdir(nomanifest, 0755), 0);
	ck_assert_int_eq(hsp_template_list(store, &names, &err), 0);
	hsp_strv_free(names);
}
END_TEST

/* ---- hostile archives ---- */

struct tar_entry {
	const char *path;
	mode_t type;
	const char *symlink;
	const char *hardlink;
};

static char *write_tar(const char *name, const struct tar_entry *entries, size_t n)
{
	char *path = tpath(name);
	struct archive *a = archive_write_new();
	ck_assert_int_eq(archive_write_set_format_pax_restricted(a), ARCHIVE_OK);
	ck_assert_int_eq(archive_write_add_filter_zstd(a), ARCHIVE_OK);
	ck_assert_int_eq(archive_write_open_filename(a, path), ARCHIVE_OK);
	for (size_t i = 0; i < n; i++) {
		struct archive_entry *e = archive_entry_new();
		archive_entry_set_pathname(e, entries[i].path);
		archive_entry_set_filetype(e, entries[i].type);
		archive_entry_set_perm(e, entries[i].type == AE_IFDIR ? 0755 : 0644);
		if (entries[i].symlink)
			archive_entry_set_symlink(e, entries[i].symlink);
		if (entries[i].hardlink)
			archive_entry_set_hardlink(e, entries[i].hardlink);
		bool data = entries[i].type == AE_IFREG && !entries[i].hardlink;
		archive_entry_set_size(e, data ? 6 : 0);
		ck_assert_int_eq(archive_write_header(a, e), ARCHIVE_OK);
		if (data)
			ck_assert_int_eq(archive_write_data(a, "pwned\n", 6), 6);
		archive_entry_free(e);
	}
	ck_assert_int_eq(archive_write_close(a), ARCHIVE_OK);
	archive_write_free(a);
	return path;
}

/* Populates dest from the archive; it may fail, but nothing may appear outside. */
static int populate_tar(const char *tar, const char *dest)
{
	hsp_error_t err = NULL;
	struct hsp_template t;
	ck_assert_int_eq(hsp_template_resolve(tmp, tar, &t, &err), 0);
	int r = hsp_rootfs_populate(&t, dest, SHIFT, &err);
	if (r < 0)
		ck_assert_int_eq(access(dest, F_OK), -1); /* removed on failure */
	hsp_error_release(&err);
	hsp_template_clear(&t);
	return r;
}

static void assert_absent(const char *path)
{
	ck_assert_msg(access(path, F_OK) < 0, "%s was written outside dest", path);
}

START_TEST(test_hostile_archives)
{
	cleanup_free char *outside = tpath("outside");
	ck_assert_int_eq(mkdir(outside, 0755), 0);
	mkfile(outside, "victim", "victim\n", 0644, 0, 0);
	cleanup_free char *parent = tpath("p");
	ck_assert_int_eq(mkdir(parent, 0755), 0);
	cleanup_free char *dest = tpath("p/dest");
	ck_assert_int_eq(access("/etc/pwned", F_OK), -1);

	const struct tar_entry dotdot[] = {{"bin/", AE_IFDIR, NULL, NULL},
					   {"../escape", AE_IFREG, NULL, NULL}};
	const struct tar_entry via_root[] = {{"bin/", AE_IFDIR, NULL, NULL},
					     {"link", AE_IFLNK, "/", NULL},
					     {"link/etc/pwned", AE_IFREG, NULL, NULL}};
	const struct tar_entry via_abs[] = {{"bin/", AE_IFDIR, NULL, NULL},
					    {"out", AE_IFLNK, outside, NULL},
					    {"out/pwned", AE_IFREG, NULL, NULL}};
	const struct tar_entry via_rel[] = {{"bin/", AE_IFDIR, NULL, NULL},
					    {"up", AE_IFLNK, "../..", NULL},
					    {"up/outside/pwned", AE_IFREG, NULL, NULL}};
	const struct tar_entry hardlink_out[] = {{"bin/", AE_IFDIR, NULL, NULL},
						 {"hl", AE_IFREG, NULL, "../../outside/victim"}};
	cleanup_free char *abs_victim = hsp_strdup_printf("%s/victim", outside);
	const struct tar_entry hardlink_abs[] = {{"bin/", AE_IFDIR, NULL, NULL},
						 {"hl", AE_IFREG, NULL, abs_victim}};
	const struct tar_entry absolute[] = {{"bin/", AE_IFDIR, NULL, NULL},
					     {"/tmp/hsp-test-abs-pwned", AE_IFREG, NULL, NULL}};
	/* A symlink replacing a directory after the fact must not be followed. */
	const struct tar_entry swap[] = {{"d/", AE_IFDIR, NULL, NULL},
					 {"d", AE_IFLNK, outside, NULL},
					 {"d/pwned", AE_IFREG, NULL, NULL}};
	struct {
		const char *name;
		const struct tar_entry *e;
		size_t n;
	} cases[] = {
	    {"dotdot.tar.zst", dotdot, 2},     {"root.tar.zst", via_root, 3},
	    {"abs.tar.zst", via_abs, 3},       {"rel.tar.zst", via_rel, 3},
	    {"hl.tar.zst", hardlink_out, 2},   {"hlabs.tar.zst", hardlink_abs, 2},
	    {"absolute.tar.zst", absolute, 2}, {"swap.tar.zst", swap, 3},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cleanup_free char *tar = write_tar(cases[i].name, cases[i].e, cases[i].n);
		int r = populate_tar(tar, dest);
		ck_assert_msg(r < 0, "%s: hostile archive accepted", cases[i].name);
		hsp_rm_rf(dest, NULL);
	}
	cleanup_free char *escape = tpath("p/escape");
	cleanup_free char *pwned = hsp_strdup_printf("%s/pwned", outside);
	assert_absent(escape);
	assert_absent("/etc/pwned");
	assert_absent(pwned);
	assert_absent("/tmp/hsp-test-abs-pwned");
	struct stat st = lstat_at(outside, "victim");
	ck_assert_uint_eq(st.st_nlink, 1);
	ck_assert_uint_eq(st.st_uid, 0);
}
END_TEST

START_TEST(test_missing_parent_dirs_are_shifted)
{
	const struct tar_entry sparse[] = {{"./usr/lib/deep/file", AE_IFREG, NULL, NULL},
					   {"bin/sh", AE_IFREG, NULL, NULL}};
	cleanup_free char *tar = write_tar("sparse.tar.zst", sparse, 2);
	cleanup_free char *dest = tpath("dest");
	ck_assert_int_eq(populate_tar(tar, dest), 0);
	assert_owner(dest, "usr", SHIFT, SHIFT);
	assert_owner(dest, "usr/lib/deep", SHIFT, SHIFT);
	assert_owner(dest, "usr/lib/deep/file", SHIFT, SHIFT);
	ck_assert_uint_eq(lstat_at(dest, "usr/lib").st_mode & 07777, 0755);
}
END_TEST

static Suite *template_suite(void)
{
	Suite *s = suite_create("template");
	TCase *tc = tcase_create("core");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_import_list_resolve_populate);
	tcase_add_test(tc, test_import_tar_and_defaults);
	tcase_add_test(tc, test_populate_from_dir);
	tcase_add_test(tc, test_resolve_errors);
	tcase_add_test(tc, test_populate_existing_dest);
	tcase_add_test(tc, test_id_out_of_range);
	tcase_add_test(tc, test_list_ignores_partial);
	tcase_add_test(tc, test_hostile_archives);
	tcase_add_test(tc, test_missing_parent_dirs_are_shifted);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	if (geteuid() != 0) {
		fprintf(stderr, "test_template: needs root, skipped\n");
		return 77;
	}
	SRunner *sr = srunner_create(template_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
