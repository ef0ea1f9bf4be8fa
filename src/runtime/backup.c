/* Backups: a VE's files as the VE sees them (ids as stored, its root is 0)
 * plus its configuration, as a zstd-compressed tar:
 *   meta.json     {"format": 1, source VE, template, hostname, limits, created}
 *   config.json   the VE's configuration
 *   rootfs/...    the merged root
 * Merged rather than overlay layers: a backup must restore on any node and
 * pool, where the template tree it was made on may not exist.  The tar is
 * made and read by hsp-unpack, the one program linking libarchive. */
#define _GNU_SOURCE
#include "disk.h"
#include "errpipe.h"
#include "pool.h"
#include "rootfs.h"
#include "snapshot.h"
#include "utils.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <json-c/json.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BACKUP_FORMAT 1

/* ---- running hsp-unpack ---------------------------------------------------- */

/* ---- mounting an image read-only, in the child ------------------------------ */

static void mount_image_ro(const char *img, bool lock, const char *dst)
{
	hsp_error_t err = NULL;
	int lfd = hsp_disk_attach_readonly(img, lock, &err);
	if (lfd < 0)
		hsp_errpipe_fail(2, err->status, "%s", err->msg);
	char src[32];
	snprintf(src, sizeof(src), "/proc/self/fd/%d", lfd);
	int fs = fsopen("ext4", FSOPEN_CLOEXEC);
	if (fs < 0 || fsconfig(fs, FSCONFIG_SET_STRING, "source", src, 0) < 0 ||
	    fsconfig(fs, FSCONFIG_SET_FLAG, "ro", NULL, 0) < 0 ||
	    fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
		hsp_errpipe_fail(2, errno, "mount `%s`: %s", img, strerror(errno));
	int m =
	    fsmount(fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV);
	if (m < 0 || move_mount(m, "", AT_FDCWD, dst, MOVE_MOUNT_F_EMPTY_PATH) < 0)
		hsp_errpipe_fail(2, errno, "mount `%s`: %s", img, strerror(errno));
}

struct pack_job {
	const char *img;
	bool lock;
	const char *tree; /* NULL: a flat VE */
	const char *work; /* holds disk/, root/, meta.json, config.json */
	int outfd;
};

/* In a mount namespace of its own, whose mounts end with it: the image
 * mounted read-only, the VE's root rebuilt on it as the VE sees it (with the
 * same overlay options as its own mount), then packed by hsp-unpack. */
static void __attribute__((noreturn)) pack_child(const struct pack_job *j, const char *helper)
{
	if (dup2(j->outfd, 1) < 0 || unshare(CLONE_NEWNS) < 0 ||
	    mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0)
		hsp_errpipe_fail(2, errno, "backup: private mount namespace: %s", strerror(errno));
	char *disk = hsp_strdup_printf("%s/disk", j->work);
	char *view = hsp_strdup_printf("%s/root", disk);
	mount_image_ro(j->img, j->lock, disk);
	if (j->tree) {
		char *opts = hsp_strdup_printf("lowerdir=%s/upper:%s,userxattr", disk, j->tree);
		view = hsp_strdup_printf("%s/root", j->work);
		if (mount("overlay", view, "overlay", MS_RDONLY | MS_NOSUID | MS_NODEV, opts) < 0)
			hsp_errpipe_fail(2, errno, "backup: mount overlay: %s", strerror(errno));
	}
	char *meta = hsp_strdup_printf("%s/meta.json", j->work);
	char *cfg = hsp_strdup_printf("%s/config.json", j->work);
	char *argv[] = {"hsp-unpack", "pack",	  "--source", view, "--meta",
			meta,	      "--config", cfg,	      NULL};
	execv(helper, argv);
	hsp_errpipe_fail(2, errno, "exec `%s`: %s", helper, strerror(errno));
}

static int run_pack(const struct pack_job *j, hsp_error_t *err)
{
	cleanup_free char *helper = hsp_helper_path("HSP_UNPACK", "hsp-unpack");
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return hsp_make_errno(err, errno, "backup: pipe");
	pid_t pid = fork();
	if (pid == 0) {
		dup2(p[1], 2);
		pack_child(j, helper);
	}
	int e = errno;
	close(p[1]);
	if (pid < 0) {
		close(p[0]);
		return hsp_make_errno(err, e, "backup: fork");
	}
	return hsp_helper_wait(pid, p[0], "backup", err);
}

/* ---- backup ---------------------------------------------------------------- */

static void json_putp(void *p)
{
	json_object_put(*(json_object **)p);
}
#define cleanup_json __attribute__((cleanup(json_putp)))

/* config.json as it is in the source, and meta.json made from it. */
static int write_descriptions(const char *cfgsrc, const char *name, const char *work,
			      hsp_error_t *err)
{
	cleanup_json json_object *cfg = NULL;
	int r = hsp_json_load(cfgsrc, &cfg, err);
	if (r < 0)
		return r;
	cleanup_free char *cpath = hsp_strdup_printf("%s/config.json", work);
	cleanup_free char *mpath = hsp_strdup_printf("%s/meta.json", work);
	r = hsp_json_save(cpath, cfg, err);
	if (r < 0)
		return r;
	cleanup_json json_object *meta = json_object_new_object();
	json_object_object_add(meta, "format", json_object_new_int(BACKUP_FORMAT));
	json_object_object_add(meta, "ve", json_object_new_string(name));
	json_object_object_add(meta, "created", json_object_new_int64(time(NULL)));
	static const char *const keys[] = {"template", "hostname", "limits"};
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		json_object *val;
		if (json_object_object_get_ex(cfg, keys[i], &val))
			json_object_object_add(meta, keys[i], json_object_get(val));
	}
	return hsp_json_save(mpath, meta, err);
}

static int make_work(const char *work, hsp_error_t *err)
{
	cleanup_free char *disk = hsp_strdup_printf("%s/disk", work);
	cleanup_free char *root = hsp_strdup_printf("%s/root", work);
	int r = hsp_rm_rf(work, err);
	if (r == 0 && (mkdir(work, 0700) < 0 || mkdir(disk, 0700) < 0 || mkdir(root, 0700) < 0))
		r = hsp_make_errno(err, errno, "mkdir `%s`", work);
	return r;
}

/* The image and configuration to back up: a snapshot's, a temporary
 * snapshot's (running VE: `*tmp` names it), or the stopped VE's own. */
static int backup_source(const struct hsp_snap_ve *v, const char *snap, char **tmp, char **dir,
			 hsp_error_t *err)
{
	if (snap) {
		int r = hsp_snap_check(v, snap, err);
		if (r == 0)
			*dir = hsp_snap_path(v, snap);
		return r;
	}
	if (!hsp_ve_is_running(v->rt, v->name)) {
		if (hsp_ve_is_mounted(v->rt, v->name))
			return hsp_make_error(
			    err, EBUSY, "VE `%s` is mounted on the host: umount it first", v->name);
		*dir = strdup(v->dir);
		return 0;
	}
	*tmp = hsp_strdup_printf("backup-%d", (int)getpid());
	int r = hsp_snap_take(v, *tmp, NULL, err);
	if (r == 0)
		*dir = hsp_snap_path(v, *tmp);
	else
		free(steal_pointer(tmp));
	return r;
}

static int backup_locked(const struct hsp_snap_ve *v, const char *snap, int fd, hsp_error_t *err)
{
	struct hsp_ve_config c;
	int r = hsp_config_load(v->rt, v->name, &c, err);
	if (r < 0)
		return r;
	cleanup_free char *tree = NULL, *tmp = NULL, *dir = NULL;
	if (c.tree)
		r = hsp_tree_require(v->rt, v->pool, c.template, c.tree, err);
	if (r == 0 && c.tree)
		tree = hsp_tree_path(v->rt, v->pool, c.template, c.tree);
	hsp_config_clear(&c);
	if (r == 0)
		r = backup_source(v, snap, &tmp, &dir, err);
	if (r < 0)
		return r;
	cleanup_free char *img = hsp_strdup_printf("%s/disk.img", dir);
	cleanup_free char *cfg = hsp_strdup_printf("%s/config.json", dir);
	cleanup_free char *work =
	    hsp_strdup_printf("%s/%s/backup.%d", v->rt->run_dir, v->name, (int)getpid());
	cleanup_free char *run = hsp_ve_run_dir(v->rt, v->name);
	if (mkdir(run, 0700) < 0 && errno != EEXIST)
		r = hsp_make_errno(err, errno, "mkdir `%s`", run);
	if (r == 0)
		r = make_work(work, err);
	if (r == 0)
		r = write_descriptions(cfg, v->name, work, err);
	struct pack_job j = {
	    .img = img, .lock = !snap && !tmp, .tree = tree, .work = work, .outfd = fd};
	if (r == 0)
		r = run_pack(&j, err);
	hsp_error_t ignored = NULL;
	hsp_rm_rf(work, &ignored);
	if (tmp)
		hsp_snap_remove(v, tmp, &ignored);
	hsp_error_release(&ignored);
	return r;
}

int hsp_ve_backup(hsp_runtime_t *rt, const char *name, const char *snap, int fd, hsp_error_t *err)
{
	int r = snap ? hsp_validate_name(snap, "snapshot", err) : 0;
	if (r < 0)
		return r;
	struct hsp_snap_ve v;
	cleanup_close int lock = hsp_snap_ve_open(rt, name, &v, err);
	if (lock < 0)
		return lock;
	r = backup_locked(&v, snap, fd, err);
	hsp_snap_ve_clear(&v);
	return r < 0 ? hsp_error_wrap(err, "backup of `%s`", name) : 0;
}

/* ---- restore --------------------------------------------------------------- */

static int run_unbackup(const char *stage, int fd, hsp_error_t *err)
{
	cleanup_free char *helper = hsp_helper_path("HSP_UNPACK", "hsp-unpack");
	cleanup_free char *dest = hsp_strdup_printf("%s/disk/root", stage);
	char *argv[] = {"hsp-unpack", "unbackup",    "--dest", dest,
			"--meta-dir", (char *)stage, NULL};
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return hsp_make_errno(err, errno, "restore: pipe");
	pid_t pid = fork();
	if (pid == 0) {
		dup2(p[1], 2);
		if (fd != 0 && dup2(fd, 0) < 0)
			hsp_errpipe_fail(2, errno, "restore: stdin: %s", strerror(errno));
		execv(helper, argv);
		hsp_errpipe_fail(2, errno, "exec `%s`: %s", helper, strerror(errno));
	}
	int e = errno;
	close(p[1]);
	if (pid < 0) {
		close(p[0]);
		return hsp_make_errno(err, e, "restore: fork");
	}
	return hsp_helper_wait(pid, p[0], "restore", err);
}

static char *str_of(json_object *o, const char *key)
{
	json_object *v;
	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return strdup(json_object_get_string(v));
}

static uint64_t u64_of(json_object *o, const char *key, unsigned bit, unsigned *set)
{
	json_object *v;
	if (!json_object_object_get_ex(o, key, &v))
		return 0;
	*set |= bit;
	return json_object_get_uint64(v);
}

static void limits_of(json_object *o, struct hsp_limits *l)
{
	memset(l, 0, sizeof(*l));
	l->memory = u64_of(o, "memory", HSP_LIMIT_MEMORY, &l->set);
	l->swap = u64_of(o, "swap", HSP_LIMIT_SWAP, &l->set);
	l->cpus_milli = u64_of(o, "cpus_milli", HSP_LIMIT_CPUS, &l->set);
	l->cpu_weight = u64_of(o, "cpu_weight", HSP_LIMIT_CPU_WEIGHT, &l->set);
	l->pids = u64_of(o, "pids", HSP_LIMIT_PIDS, &l->set);
	l->io_weight = u64_of(o, "io_weight", HSP_LIMIT_IO_WEIGHT, &l->set);
	l->disk = u64_of(o, "disk", HSP_LIMIT_DISK, &l->set);
}

static int init_of(json_object *o, struct hsp_ve_config *c)
{
	json_object *a;
	if (!json_object_object_get_ex(o, "init", &a) || !json_object_is_type(a, json_type_array))
		return -EINVAL;
	size_t n = json_object_array_length(a);
	c->init = calloc(n + 1, sizeof(char *));
	for (size_t i = 0; c->init && i < n; i++)
		c->init[i] = strdup(json_object_get_string(json_object_array_get_idx(a, i)));
	return n > 0 && c->init && c->init[0][0] == '/' ? 0 : -EINVAL;
}

/* The new VE's configuration: the backup's, on a flat root. */
static int parse_config(const char *stage, const char *name, struct hsp_ve_config *c,
			const struct hsp_restore_opts *o, hsp_error_t *err)
{
	cleanup_free char *mpath = hsp_strdup_printf("%s/meta.json", stage);
	cleanup_free char *cpath = hsp_strdup_printf("%s/config.json", stage);
	cleanup_json json_object *meta = NULL, *cfg = NULL;
	json_object *v = NULL; /* borrowed */
	int r = hsp_json_load(mpath, &meta, err);
	if (r == 0)
		r = hsp_json_load(cpath, &cfg, err);
	if (r < 0)
		return r;
	if (!json_object_object_get_ex(meta, "format", &v) ||
	    json_object_get_int(v) != BACKUP_FORMAT)
		return hsp_make_error(err, EINVAL, "not a backup of a known format (version %d)",
				      BACKUP_FORMAT);
	memset(c, 0, sizeof(*c));
	c->name = strdup(name);
	c->hostname = str_of(cfg, "hostname");
	c->template = str_of(cfg, "template");
	json_object *net = NULL, *lim = NULL;
	json_object_object_get_ex(cfg, "limits", &lim);
	limits_of(lim, &c->limits);
	if (json_object_object_get_ex(cfg, "stop_signal", &v))
		c->stop_signal = json_object_get_int(v);
	c->created = time(NULL);
	if (json_object_object_get_ex(cfg, "network", &net)) {
		c->ip = str_of(net, "ip");
		c->gateway = str_of(net, "gateway");
		c->bridge = str_of(net, "bridge");
	}
	if (c->hostname == NULL || c->template == NULL || init_of(cfg, c) < 0 ||
	    c->stop_signal <= 0 || (net && (c->ip == NULL || c->bridge == NULL)))
		return hsp_make_error(err, EINVAL, "backup: config.json is incomplete");
	if (o->set_network) {
		free(c->ip), free(c->gateway), free(c->bridge);
		c->ip = o->ip ? strdup(o->ip) : NULL;
		c->gateway = o->gateway ? strdup(o->gateway) : NULL;
		c->bridge = o->ip ? strdup(o->bridge ? o->bridge : HSP_DEFAULT_BRIDGE) : NULL;
	}
	r = hsp_validate_hostname(c->hostname, err);
	return r < 0 ? r : hsp_limits_validate(&c->limits, err);
}

static uint64_t tree_bytes;

static int count_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)path, (void)type, (void)ftw;
	tree_bytes += (uint64_t)st->st_blocks * 512 + 4096; /* plus an inode's share */
	return 0;
}

/* The backup's disk size, or more if its files need it (ext4's own
 * metadata takes a few percent). */
static uint64_t disk_size(const char *root, uint64_t want)
{
	tree_bytes = 0;
	nftw(root, count_entry, 64, FTW_PHYS | FTW_MOUNT);
	uint64_t need = tree_bytes + tree_bytes / 8 + HSP_DISK_MIN;
	need = (need + (1 << 20) - 1) & ~(uint64_t)((1 << 20) - 1);
	return want > need ? want : need;
}

/* As a create does it: config.json last, everything removed on failure. */
static int make_ve(hsp_runtime_t *rt, const struct hsp_pool *pool, struct hsp_ve_config *c,
		   const char *stage, hsp_error_t *err)
{
	cleanup_close int lock = hsp_lock_root(rt, err);
	if (lock < 0)
		return lock;
	int r = hsp_ve_name_free(rt, c->name, err);
	if (r == 0)
		r = hsp_check_address_free(rt, c, err);
	if (r < 0)
		return r;
	hsp_pool_place(rt, c->name, pool);
	cleanup_free char *ves = hsp_strdup_printf("%s/ves", pool->base);
	cleanup_free char *dir = hsp_ve_dir(rt, c->name);
	cleanup_free char *disk = hsp_strdup_printf("%s/disk", stage);
	cleanup_free char *img = hsp_disk_path(rt, c->name);
	if (mkdir(ves, 0700) < 0 && errno != EEXIST)
		return hsp_make_errno(err, errno, "mkdir `%s`", ves);
	if (mkdir(dir, 0700) < 0)
		return hsp_make_errno(err, errno, "mkdir `%s`", dir);
	r = hsp_idmap_allocate(rt, c->name, &c->id_base, err);
	if (r == 0)
		r = hsp_disk_make(img, c->limits.disk, disk, err);
	if (r == 0)
		r = hsp_config_save(rt, c, err);
	if (r < 0) {
		hsp_error_t ignored = NULL;
		hsp_rm_rf(dir, &ignored);
		hsp_error_release(&ignored);
	}
	return r;
}

static int restore_staged(hsp_runtime_t *rt, const char *name, const struct hsp_pool *pool,
			  const struct hsp_restore_opts *o, int fd, const char *stage,
			  hsp_error_t *err)
{
	cleanup_free char *disk = hsp_strdup_printf("%s/disk", stage);
	cleanup_free char *root = hsp_strdup_printf("%s/root", disk);
	/* 0711: the disk's root, which the VE's init crosses before it is
	 * root in its own namespace (as create makes it). */
	if (mkdir(stage, 0700) < 0 || mkdir(disk, 0711) < 0)
		return hsp_make_errno(err, errno, "mkdir `%s`", disk);
	int r = run_unbackup(stage, fd, err);
	struct hsp_ve_config c = {0};
	if (r == 0)
		r = parse_config(stage, name, &c, o, err);
	if (r == 0) {
		c.limits.set |= HSP_LIMIT_DISK;
		c.limits.disk = disk_size(root, c.limits.disk);
		r = make_ve(rt, pool, &c, stage, err);
	}
	hsp_config_clear(&c);
	return r;
}

int hsp_ve_restore_backup(hsp_runtime_t *rt, const char *name, const struct hsp_restore_opts *o,
			  int fd, hsp_error_t *err)
{
	const struct hsp_pool *p;
	int r = hsp_validate_name(name, "VE", err);
	if (r == 0 && o->set_network)
		r = hsp_validate_network(o->ip, o->gateway, o->bridge, err);
	if (r == 0)
		r = hsp_pool_get(rt, o->pool, &p, err);
	/* Checked first too: a clash should not cost unpacking the stream. */
	if (r == 0)
		r = hsp_ve_name_free(rt, name, err);
	if (r < 0)
		return r;
	cleanup_free char *stages = hsp_strdup_printf("%s/.stage", rt->root);
	cleanup_free char *stage = hsp_strdup_printf("%s/%s.%d", stages, name, (int)getpid());
	r = hsp_mkdir_p(stages, 0700, err);
	if (r == 0)
		r = hsp_rm_rf(stage, err);
	if (r == 0)
		r = restore_staged(rt, name, p, o, fd, stage, err);
	hsp_error_t ignored = NULL;
	hsp_rm_rf(stage, &ignored);
	hsp_error_release(&ignored);
	return r < 0 ? hsp_error_wrap(err, "restore of `%s`", name) : 0;
}
