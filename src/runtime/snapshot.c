/* VE snapshots (see snapshot.h): create, list, restore, delete. */
#define _GNU_SOURCE
#include "snapshot.h"
#include "disk.h"
#include "pool.h"
#include "rootfs.h"
#include "utils.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <linux/fs.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#define COPY_CHUNK (1 << 20)
#define ZERO_BLOCK (64 << 10)

/* ---- sparse copy ---------------------------------------------------------- */

static bool all_zero(const char *p, size_t n)
{
	return n == 0 || (p[0] == 0 && memcmp(p, p + 1, n - 1) == 0);
}

/* Writes the non-zero blocks of buf[0..n) at `off`: the target was
 * truncated to size, so what is skipped stays a hole. */
static int write_nonzero(int out, const char *buf, size_t n, off_t off)
{
	for (size_t i = 0; i < n; i += ZERO_BLOCK) {
		size_t len = n - i < ZERO_BLOCK ? n - i : ZERO_BLOCK;
		if (all_zero(buf + i, len))
			continue;
		for (size_t done = 0; done < len;) {
			ssize_t w =
			    pwrite(out, buf + i + done, len - done, off + (off_t)(i + done));
			if (w < 0 && errno != EINTR)
				return -errno;
			done += w > 0 ? (size_t)w : 0;
		}
	}
	return 0;
}

static int copy_range(int in, int out, off_t off, off_t end, char *buf)
{
	while (off < end) {
		size_t want = end - off < COPY_CHUNK ? (size_t)(end - off) : COPY_CHUNK;
		ssize_t n = pread(in, buf, want, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO; /* the file shrank under us */
		int r = write_nonzero(out, buf, (size_t)n, off);
		if (r < 0)
			return r;
		off += n;
	}
	return 0;
}

int hsp_copy_sparse(int in, int out)
{
	struct stat st;
	if (fstat(in, &st) < 0)
		return -errno;
	if (ioctl(out, FICLONE, in) == 0)
		return 0;
	if (ftruncate(out, st.st_size) < 0)
		return -errno;
	cleanup_free char *buf = malloc(COPY_CHUNK);
	if (buf == NULL)
		return -ENOMEM;
	for (off_t off = 0; off < st.st_size;) {
		off_t data = lseek(in, off, SEEK_DATA);
		if (data < 0 && errno == ENXIO)
			break; /* only a hole is left */
		/* Without SEEK_DATA (some FUSE file systems) all of it is data;
		 * write_nonzero still keeps the zero blocks holes. */
		off_t hole = data < 0 ? st.st_size : lseek(in, data, SEEK_HOLE);
		if (data < 0)
			data = off;
		if (hole < 0)
			hole = st.st_size;
		int r = copy_range(in, out, data, hole, buf);
		if (r < 0)
			return r;
		off = hole;
	}
	return fsync(out) < 0 ? -errno : 0;
}

/* ---- the VE and its snapshots --------------------------------------------- */

int hsp_snap_ve_open(hsp_runtime_t *rt, const char *name, struct hsp_snap_ve *v, hsp_error_t *err)
{
	memset(v, 0, sizeof(*v));
	int r = hsp_validate_name(name, "VE", err);
	if (r < 0)
		return r;
	int lock = hsp_lock_ve(rt, name, err);
	if (lock < 0)
		return lock;
	r = hsp_pool_of_ve(rt, name, &v->pool, err);
	if (r < 0) {
		close(lock);
		return r;
	}
	v->rt = rt;
	v->name = name;
	v->dir = hsp_strdup_printf("%s/ves/%s", v->pool->base, name);
	return lock;
}

void hsp_snap_ve_clear(struct hsp_snap_ve *v)
{
	free(v->dir);
	memset(v, 0, sizeof(*v));
}

static bool is_ceph(const struct hsp_snap_ve *v)
{
	return v->pool->type == HSP_POOL_CEPHFS;
}

char *hsp_snap_path(const struct hsp_snap_ve *v, const char *snap)
{
	return hsp_strdup_printf("%s/%s/%s", v->dir, is_ceph(v) ? ".snap" : "snapshots", snap);
}

int hsp_snap_check(const struct hsp_snap_ve *v, const char *snap, hsp_error_t *err)
{
	cleanup_free char *dir = hsp_snap_path(v, snap);
	cleanup_free char *img = hsp_strdup_printf("%s/disk.img", dir);
	if (access(img, F_OK) == 0)
		return 0;
	if (errno == ENOENT)
		return hsp_make_error(err, ENOENT, "VE `%s` has no snapshot `%s`", v->name, snap);
	return hsp_make_errno(err, errno, "snapshot `%s` of VE `%s`", snap, v->name);
}

static char *ceph_rel(const struct hsp_snap_ve *v)
{
	return hsp_strdup_printf("ves/%s", v->name);
}

/* ---- taking one ----------------------------------------------------------- */

/* The running VE's disk as its monitor mounted it, or -1 with *err set.
 * Only ever an ext4 mount root: a freeze of anything else (the host's own
 * file system, were the mount gone) must be impossible. */
static int open_live_fs(const struct hsp_snap_ve *v, hsp_error_t *err)
{
	cleanup_free char *mnt = hsp_strdup_printf("%s/%s/private", v->rt->run_dir, v->name);
	cleanup_close int fd = open(mnt, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct statx stx;
	struct statfs sf;
	if (fd < 0 || statx(fd, "", AT_EMPTY_PATH, 0, &stx) < 0 || fstatfs(fd, &sf) < 0)
		return hsp_make_errno(err, errno, "VE `%s`: reach its mounted disk", v->name);
	if (!(stx.stx_attributes & STATX_ATTR_MOUNT_ROOT) || sf.f_type != EXT4_SUPER_MAGIC)
		return hsp_make_error(err, EIO, "VE `%s` runs but its disk is not mounted at `%s`",
				      v->name, mnt);
	return steal_fd(&fd);
}

static int copy_file_to(const char *src, const char *dst, hsp_error_t *err)
{
	cleanup_free char *data = NULL;
	size_t len = 0;
	int r = hsp_read_file(src, &data, &len, err);
	return r < 0 ? r : hsp_write_file_atomic(dst, data, len, 0600, err);
}

static int write_meta(const char *dir, const char *snap, uint64_t frozen_us, hsp_error_t *err)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "name", json_object_new_string(snap));
	json_object_object_add(o, "created", json_object_new_int64(time(NULL)));
	json_object_object_add(o, "frozen_us", json_object_new_uint64(frozen_us));
	cleanup_free char *path = hsp_strdup_printf("%s/meta.json", dir);
	int r = hsp_json_save(path, o, err);
	json_object_put(o);
	return r;
}

/* The instant itself: the image copied (local) or the directory snapshotted
 * (CephFS), while a running VE's file system is frozen.  The loop device
 * writes through the image's page cache, hence the fsync: a CephFS
 * snapshot only holds what reached the cluster. */
static int take_instant(const struct hsp_snap_ve *v, const char *snap, int imgfd, int fsfd,
			const char *tmp, uint64_t *frozen_us, hsp_error_t *err)
{
	uint64_t t0 = hsp_now_ns();
	if (fsfd >= 0 && ioctl(fsfd, FIFREEZE, 0) < 0)
		return hsp_make_errno(err, errno, "VE `%s`: freeze its file system", v->name);
	int r =
	    fsync(imgfd) < 0 ? hsp_make_errno(err, errno, "VE `%s`: sync its disk", v->name) : 0;
	if (r == 0 && is_ceph(v)) {
		struct hsp_ceph_pool cp = hsp_pool_ceph(v->pool);
		cleanup_free char *rel = ceph_rel(v);
		r = hsp_ceph_snap_create(&cp, rel, snap, err);
	} else if (r == 0) {
		cleanup_free char *img = hsp_strdup_printf("%s/disk.img", tmp);
		cleanup_close int out = open(img, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		r = out < 0 ? -errno : hsp_copy_sparse(imgfd, out);
		if (r < 0)
			r = hsp_make_errno(err, -r, "snapshot `%s`: copy the disk", snap);
	}
	/* Always thawed: a VE left frozen hangs on its next write. */
	if (fsfd >= 0 && ioctl(fsfd, FITHAW, 0) < 0 && r == 0)
		r = hsp_make_errno(err, errno, "VE `%s`: thaw its file system", v->name);
	if (frozen_us)
		*frozen_us = fsfd >= 0 ? (hsp_now_ns() - t0) / 1000 : 0;
	return r;
}

/* A stopped VE's disk must stay unmounted meanwhile, here and on any other
 * node of a shared pool: the loop device's lock (disk.h), taken here. */
static int lock_stopped_disk(const struct hsp_snap_ve *v, int imgfd, hsp_error_t *err)
{
	if (hsp_ve_is_mounted(v->rt, v->name))
		return hsp_make_error(err, EBUSY, "VE `%s` is mounted on the host: umount it first",
				      v->name);
	if (flock(imgfd, LOCK_EX | LOCK_NB) == 0)
		return 0;
	if (errno == EWOULDBLOCK)
		return hsp_make_error(err, EBUSY,
				      "VE `%s`: its disk is in use (running on another "
				      "node?)",
				      v->name);
	return hsp_make_errno(err, errno, "VE `%s`: lock its disk", v->name);
}

static int take_local(const struct hsp_snap_ve *v, const char *snap, int imgfd, int fsfd,
		      uint64_t *frozen_us, hsp_error_t *err)
{
	cleanup_free char *dir = hsp_strdup_printf("%s/snapshots", v->dir);
	cleanup_free char *final = hsp_snap_path(v, snap);
	cleanup_free char *tmp = hsp_strdup_printf("%s/.tmp-%s-%d", dir, snap, (int)getpid());
	cleanup_free char *cfg = hsp_strdup_printf("%s/config.json", v->dir);
	cleanup_free char *tcfg = hsp_strdup_printf("%s/config.json", tmp);
	if (access(final, F_OK) == 0)
		return hsp_make_error(err, EEXIST, "VE `%s` already has a snapshot `%s`", v->name,
				      snap);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return hsp_make_errno(err, errno, "mkdir `%s`", dir);
	int r = hsp_rm_rf(tmp, err);
	if (r == 0 && mkdir(tmp, 0700) < 0)
		r = hsp_make_errno(err, errno, "mkdir `%s`", tmp);
	if (r == 0)
		r = copy_file_to(cfg, tcfg, err);
	uint64_t us = 0;
	if (r == 0)
		r = take_instant(v, snap, imgfd, fsfd, tmp, &us, err);
	if (r == 0)
		r = write_meta(tmp, snap, us, err);
	if (r == 0 && renameat2(AT_FDCWD, tmp, AT_FDCWD, final, RENAME_NOREPLACE) < 0)
		r = hsp_make_errno(err, errno, "snapshot `%s`: rename into place", snap);
	if (r < 0) {
		hsp_error_t ignored = NULL;
		hsp_rm_rf(tmp, &ignored);
		hsp_error_release(&ignored);
	} else if (frozen_us) {
		*frozen_us = us;
	}
	return r;
}

int hsp_snap_take(const struct hsp_snap_ve *v, const char *snap, uint64_t *frozen_us,
		  hsp_error_t *err)
{
	cleanup_free char *img = hsp_strdup_printf("%s/disk.img", v->dir);
	cleanup_close int imgfd = open(img, O_RDONLY | O_CLOEXEC);
	if (imgfd < 0)
		return hsp_make_errno(err, errno, "VE `%s`: disk `%s`", v->name, img);
	cleanup_close int fsfd = -1;
	int r = 0;
	if (hsp_ve_is_running(v->rt, v->name))
		r = fsfd = open_live_fs(v, err);
	else
		r = lock_stopped_disk(v, imgfd, err);
	if (r < 0)
		return r;
	if (!is_ceph(v))
		return take_local(v, snap, imgfd, fsfd, frozen_us, err);
	return take_instant(v, snap, imgfd, fsfd, NULL, frozen_us, err);
}

int hsp_snap_remove(const struct hsp_snap_ve *v, const char *snap, hsp_error_t *err)
{
	if (is_ceph(v)) {
		struct hsp_ceph_pool cp = hsp_pool_ceph(v->pool);
		cleanup_free char *rel = ceph_rel(v);
		return hsp_ceph_snap_remove(&cp, rel, snap, err);
	}
	cleanup_free char *dir = hsp_snap_path(v, snap);
	return hsp_rm_rf(dir, err);
}

/* ---- the verbs ------------------------------------------------------------ */

int hsp_ve_snapshot_create(hsp_runtime_t *rt, const char *name, const char *snap,
			   uint64_t *frozen_us, hsp_error_t *err)
{
	int r = hsp_validate_name(snap, "snapshot", err);
	if (r < 0)
		return r;
	struct hsp_snap_ve v;
	cleanup_close int lock = hsp_snap_ve_open(rt, name, &v, err);
	if (lock < 0)
		return lock;
	r = hsp_snap_take(&v, snap, frozen_us, err);
	hsp_snap_ve_clear(&v);
	return r;
}

int hsp_ve_snapshot_delete(hsp_runtime_t *rt, const char *name, const char *snap, hsp_error_t *err)
{
	int r = hsp_validate_name(snap, "snapshot", err);
	if (r < 0)
		return r;
	struct hsp_snap_ve v;
	cleanup_close int lock = hsp_snap_ve_open(rt, name, &v, err);
	if (lock < 0)
		return lock;
	r = hsp_snap_check(&v, snap, err);
	if (r == 0)
		r = hsp_snap_remove(&v, snap, err);
	hsp_snap_ve_clear(&v);
	return r;
}

/* When the snapshot was taken: meta.json of a local one, the CephFS
 * snapshot's birth time (a virtual xattr), else its directory's mtime. */
static int64_t snap_created(const char *dir)
{
	cleanup_free char *meta = hsp_strdup_printf("%s/meta.json", dir);
	json_object *o = NULL, *t;
	hsp_error_t ignored = NULL;
	int64_t created = 0;
	if (access(meta, F_OK) == 0 && hsp_json_load(meta, &o, &ignored) == 0 &&
	    json_object_object_get_ex(o, "created", &t))
		created = json_object_get_int64(t);
	json_object_put(o);
	hsp_error_release(&ignored);
	char buf[64];
	ssize_t n = created ? -1 : getxattr(dir, "ceph.snap.btime", buf, sizeof(buf) - 1);
	if (n > 0) {
		buf[n] = '\0';
		created = strtoll(buf, NULL, 10);
	}
	struct stat st;
	if (created == 0 && stat(dir, &st) == 0)
		created = st.st_mtime;
	return created;
}

static void snap_info(const struct hsp_snap_ve *v, const char *snap, struct hsp_snapshot_info *i)
{
	cleanup_free char *dir = hsp_snap_path(v, snap);
	cleanup_free char *img = hsp_strdup_printf("%s/disk.img", dir);
	struct stat st;
	i->name = strdup(snap);
	i->created = snap_created(dir);
	i->size = stat(img, &st) == 0 ? (uint64_t)st.st_blocks * 512 : 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Local snapshots: every complete one (a .tmp- directory is one being made
 * or a crashed attempt), sorted. */
static int local_names(const struct hsp_snap_ve *v, char ***names, hsp_error_t *err)
{
	cleanup_free char *dir = hsp_strdup_printf("%s/snapshots", v->dir);
	DIR *d = opendir(dir);
	size_t n = 0;
	char **out = calloc(1, sizeof(char *));
	if (d == NULL && errno != ENOENT) {
		free(out);
		return hsp_make_errno(err, errno, "open `%s`", dir);
	}
	for (struct dirent *e; d && (e = readdir(d)) != NULL;) {
		if (e->d_name[0] == '.')
			continue;
		char **nv = realloc(out, (n + 2) * sizeof(char *));
		if (nv == NULL)
			break;
		out = nv;
		out[n++] = strdup(e->d_name);
		out[n] = NULL;
	}
	if (d)
		closedir(d);
	qsort(out, n, sizeof(char *), cmp_str);
	*names = out;
	return (int)n;
}

int hsp_ve_snapshot_list(hsp_runtime_t *rt, const char *name, struct hsp_snapshot_info **snaps,
			 hsp_error_t *err)
{
	struct hsp_snap_ve v;
	cleanup_close int lock = hsp_snap_ve_open(rt, name, &v, err);
	if (lock < 0)
		return lock;
	cleanup_strv char **names = NULL;
	struct hsp_ceph_pool cp = hsp_pool_ceph(v.pool);
	cleanup_free char *rel = ceph_rel(&v);
	int n =
	    is_ceph(&v) ? hsp_ceph_snap_list(&cp, rel, &names, err) : local_names(&v, &names, err);
	struct hsp_snapshot_info *out = n < 0 ? NULL : calloc((size_t)n + 1, sizeof(*out));
	for (int i = 0; out && i < n; i++)
		snap_info(&v, names[i], &out[i]);
	hsp_snap_ve_clear(&v);
	if (n >= 0 && out == NULL)
		return hsp_make_errno(err, ENOMEM, "snapshot list");
	*snaps = out;
	return n;
}

void hsp_snapshot_info_free(struct hsp_snapshot_info *v, int n)
{
	for (int i = 0; v && i < n; i++)
		free(v[i].name);
	free(v);
}

/* ---- restore -------------------------------------------------------------- */

/* The snapshot's image copied next to disk.img, then renamed over it: a
 * failure leaves the VE's disk as it was. */
static int restore_disk(const struct hsp_snap_ve *v, const char *snapdir, hsp_error_t *err)
{
	cleanup_free char *src = hsp_strdup_printf("%s/disk.img", snapdir);
	cleanup_free char *img = hsp_strdup_printf("%s/disk.img", v->dir);
	cleanup_free char *tmp = hsp_strdup_printf("%s/disk.img.restore", v->dir);
	cleanup_close int in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return hsp_make_errno(err, errno, "open `%s`", src);
	unlink(tmp);
	cleanup_close int out = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (out < 0)
		return hsp_make_errno(err, errno, "create `%s`", tmp);
	int r = hsp_copy_sparse(in, out);
	if (r < 0)
		r = hsp_make_errno(err, -r, "restore: copy `%s`", src);
	else if (rename(tmp, img) < 0)
		r = hsp_make_errno(err, errno, "restore: rename `%s` over `%s`", tmp, img);
	if (r < 0)
		unlink(tmp);
	return r;
}

/* The snapshot's configuration, except the id range: ranges belong to the
 * node that allocated them, and the VE keeps the one it has. */
static int restore_config(const struct hsp_snap_ve *v, const char *snapdir, hsp_error_t *err)
{
	struct hsp_ve_config now, then;
	int r = hsp_config_load(v->rt, v->name, &now, err);
	if (r < 0)
		return r;
	cleanup_free char *src = hsp_strdup_printf("%s/config.json", snapdir);
	cleanup_free char *cfg = hsp_strdup_printf("%s/config.json", v->dir);
	r = copy_file_to(src, cfg, err);
	if (r == 0)
		r = hsp_config_load(v->rt, v->name, &then, err);
	if (r == 0) {
		then.id_base = now.id_base;
		r = hsp_config_save(v->rt, &then, err);
		hsp_config_clear(&then);
	}
	if (r < 0) {
		hsp_error_t ignored = NULL;
		hsp_config_save(v->rt, &now, &ignored);
		hsp_error_release(&ignored);
	}
	hsp_config_clear(&now);
	return r;
}

int hsp_ve_snapshot_restore(hsp_runtime_t *rt, const char *name, const char *snap, hsp_error_t *err)
{
	int r = hsp_validate_name(snap, "snapshot", err);
	if (r < 0)
		return r;
	struct hsp_snap_ve v;
	cleanup_close int lock = hsp_snap_ve_open(rt, name, &v, err);
	if (lock < 0)
		return lock;
	cleanup_free char *snapdir = hsp_snap_path(&v, snap);
	cleanup_free char *img = hsp_strdup_printf("%s/disk.img", v.dir);
	cleanup_close int imgfd = open(img, O_RDONLY | O_CLOEXEC);
	r = hsp_snap_check(&v, snap, err);
	if (r == 0 && hsp_ve_is_running(rt, name))
		r = hsp_make_error(err, EBUSY, "VE `%s` is running: stop it before a restore",
				   name);
	else if (r == 0 && imgfd < 0)
		r = hsp_make_errno(err, errno, "VE `%s`: disk `%s`", name, img);
	/* Held until the new image is in place: no node mounts the VE meanwhile. */
	if (r == 0)
		r = lock_stopped_disk(&v, imgfd, err);
	if (r == 0)
		r = restore_disk(&v, snapdir, err);
	if (r == 0)
		r = restore_config(&v, snapdir, err);
	hsp_snap_ve_clear(&v);
	return r;
}
