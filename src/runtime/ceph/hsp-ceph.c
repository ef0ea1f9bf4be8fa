/* hsp-ceph: the CephFS administration that needs libcephfs, for the runtime.
 *
 *   hsp-ceph check|snap-create|snap-remove|snap-list --conf C --id I
 *            --keyring K --fs-path P [--timeout S] [--path REL] [--snap NAME]
 *   hsp-ceph authorize|fence --conf C --id ADMIN --keyring K --fs-path P
 *            --entity NODE_ID [--perms rwps] [--timeout S]      (admin.c)
 *
 * Exits 0 (snap-list prints one name a line, authorize the keyring, fence
 * one line per fenced session), or 1 with "<errno>\t<message>"
 * on stderr.  Everything, from connecting to unmounting, ends within the
 * timeout: an unanswered cluster must not hang a node's agent. */
#define _GNU_SOURCE
#include <cephfs/libcephfs.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "errpipe.h"
#include "hsp-ceph.h"
#include "utils.h"

static unsigned alarm_timeout;

static void on_alarm(int sig)
{
	(void)sig;
	hsp_errpipe_write(2, ETIMEDOUT, "no answer from the cluster within %u s", alarm_timeout);
	_exit(1);
}

static int fail(hsp_error_t *err)
{
	hsp_errpipe_write(2, (*err)->status, "%s", (*err)->msg);
	hsp_error_release(err);
	return 1;
}

static int usage(void)
{
	hsp_errpipe_write(2, EINVAL,
			  "hsp-ceph: usage: "
			  "check|snap-create|snap-remove|snap-list|authorize|fence|revoke --conf C "
			  "--id I --keyring K --fs-path P [--timeout S] [--path REL] [--snap NAME] "
			  "[--entity ID] [--perms P]");
	return 1;
}

static int conf_set(struct ceph_mount_info *cm, const char *opt, const char *val, hsp_error_t *err)
{
	int r = ceph_conf_set(cm, opt, val);
	if (r < 0)
		return hsp_make_error(err, -r, "set %s=%s: %s", opt, val, strerror(-r));
	return 0;
}

/* Settings that keep the connection bounded and stderr ours: libcephfs
 * would print to it, and the caller reads one record from it. */
int hc_configure(struct ceph_mount_info *cm, const struct opts *o, hsp_error_t *err)
{
	int r = ceph_conf_read_file(cm, o->pool.conf);
	if (r < 0)
		return hsp_make_error(err, -r, "read `%s`: %s", o->pool.conf, strerror(-r));
	char timeout[16];
	snprintf(timeout, sizeof(timeout), "%u", o->timeout_s);
	/* A short-lived client needs no admin socket; one named without $pid
	 * in the conf would collide with the node's ceph-fuse.  The unmount
	 * releases cached inodes only on client ticks (whole seconds), one
	 * directory level each: 1-2 s per call at the default of 1 s, 20 ms
	 * with 0 (which ticks continuously, ~1 ms apart, while connected). */
	if ((r = conf_set(cm, "keyring", o->pool.keyring, err)) < 0 ||
	    (r = conf_set(cm, "client_mount_timeout", timeout, err)) < 0 ||
	    (r = conf_set(cm, "client_tick_interval", "0", err)) < 0 ||
	    (r = conf_set(cm, "rados_mon_op_timeout", timeout, err)) < 0 ||
	    (r = conf_set(cm, "admin_socket", "", err)) < 0 ||
	    (r = conf_set(cm, "log_to_stderr", "false", err)) < 0 ||
	    (r = conf_set(cm, "err_to_stderr", "false", err)) < 0)
		return r;
	return 0;
}

static int mount_at(const struct opts *o, const char *root, struct ceph_mount_info **out,
		    hsp_error_t *err)
{
	struct ceph_mount_info *cm = NULL;
	int r = ceph_create(&cm, o->pool.id);
	if (r < 0)
		return hsp_make_error(err, -r, "create client.%s: %s", o->pool.id, strerror(-r));
	r = hc_configure(cm, o, err);
	if (r == 0 && (r = ceph_mount(cm, root)) == -ETIMEDOUT)
		hsp_make_error(err, ETIMEDOUT, "mount %s: no answer from the cluster within %u s",
			       root, o->timeout_s);
	else if (r < 0)
		hsp_make_error(err, -r, "mount %s as client.%s: %s", root, o->pool.id,
			       strerror(-r));
	if (r < 0) {
		ceph_release(cm);
		return r;
	}
	*out = cm;
	return 0;
}

/* An unmount closes the MDS session: a client that just exits keeps its
 * caps (and other clients waiting for them) until the session times out. */
static int finish(struct ceph_mount_info *cm, int r, hsp_error_t *err)
{
	int u = ceph_unmount(cm);
	ceph_release(cm);
	if (r == 0 && u < 0)
		r = hsp_make_error(err, -u, "unmount: %s", strerror(-u));
	return r;
}

static int mkdir_in(struct ceph_mount_info *cm, const char *path, mode_t mode, hsp_error_t *err)
{
	int r = ceph_mkdirs(cm, path, mode);
	if (r < 0 && r != -EEXIST)
		return hsp_make_error(err, -r, "mkdir %s: %s", path, strerror(-r));
	return 0;
}

/* A missing fs_path is made from its nearest existing ancestor: a client
 * restricted to a path (cephx "path=") may mount nothing above it. */
static int make_fs_path(const struct opts *o, hsp_error_t *err)
{
	cleanup_free char *base = strdup(o->pool.fs_path);
	if (base == NULL)
		return hsp_make_errno(err, ENOMEM, "fs path");
	struct ceph_mount_info *cm = NULL;
	int r = -ENOENT;
	while (r == -ENOENT && strcmp(base, "/") != 0) {
		*strrchr(base, '/') = '\0';
		if (*base == '\0')
			strcpy(base, "/");
		hsp_error_release(err);
		r = mount_at(o, base, &cm, err);
	}
	if (r < 0)
		return r;
	const char *rest = o->pool.fs_path + (strcmp(base, "/") == 0 ? 0 : strlen(base));
	return finish(cm, mkdir_in(cm, rest, 0755, err), err);
}

static int do_check(const struct opts *o, hsp_error_t *err)
{
	struct ceph_mount_info *cm = NULL;
	int r = mount_at(o, o->pool.fs_path, &cm, err);
	if (r == -ENOENT) {
		hsp_error_release(err);
		r = make_fs_path(o, err);
		if (r == 0)
			r = mount_at(o, o->pool.fs_path, &cm, err);
	}
	if (r < 0)
		return r;
	int m = mkdir_in(cm, "/ves", 0700, err);
	if (m == 0)
		m = mkdir_in(cm, "/templates", 0755, err);
	return finish(cm, m, err);
}

/* One snapshot call: paths inside the mount, and the directory as the file
 * system names it, for messages. */
struct snap_call {
	struct ceph_mount_info *cm;
	const char *snap;
	char *dir;  /* "<rel>/.snap" from the mount's root */
	char *path; /* "<dir>/<snap>" */
	char *where;
};

static int snap_exists(const struct snap_call *c, hsp_error_t *err)
{
	struct ceph_statx stx;
	int r = ceph_statx(c->cm, c->path, &stx, CEPH_STATX_INO, AT_SYMLINK_NOFOLLOW);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return hsp_make_error(err, -r, "stat snapshot `%s` of %s: %s", c->snap, c->where,
				      strerror(-r));
	return 1;
}

static int snap_create(const struct snap_call *c, hsp_error_t *err)
{
	int r = ceph_mkdir(c->cm, c->path, 0755);
	if (r == -EEXIST)
		return hsp_make_error(err, EEXIST, "snapshot `%s` of %s exists already", c->snap,
				      c->where);
	if (r < 0)
		return hsp_make_error(err, -r, "create snapshot `%s` of %s: %s", c->snap, c->where,
				      strerror(-r));
	return 0;
}

/* libcephfs (16.2) bug: removing a snapshot that does not exist makes the
 * later ceph_unmount hang for good, so absence is found out first. */
static int snap_remove(const struct snap_call *c, hsp_error_t *err)
{
	int r = snap_exists(c, err);
	if (r == 0)
		return hsp_make_error(err, ENOENT, "no snapshot `%s` of %s", c->snap, c->where);
	if (r > 0 && (r = ceph_rmdir(c->cm, c->path)) < 0)
		return hsp_make_error(err, -r, "remove snapshot `%s` of %s: %s", c->snap, c->where,
				      strerror(-r));
	return r < 0 ? r : 0;
}

/* Snapshots of parent directories show up as "_<name>_<inode>"; the MDS
 * refuses names starting with '_' for a directory's own snapshots. */
static int snap_list(const struct snap_call *c, hsp_error_t *err)
{
	struct ceph_dir_result *d = NULL;
	int r = ceph_opendir(c->cm, c->dir, &d);
	if (r < 0)
		return hsp_make_error(err, -r, "list snapshots of %s: %s", c->where, strerror(-r));
	struct dirent *de;
	while ((de = ceph_readdir(c->cm, d)) != NULL)
		if (de->d_name[0] != '.' && de->d_name[0] != '_')
			printf("%s\n", de->d_name);
	ceph_closedir(c->cm, d);
	if (fflush(stdout) != 0)
		return hsp_make_errno(err, errno, "list snapshots of %s: write", c->where);
	return 0;
}

static int do_snap(const struct opts *o, hsp_error_t *err)
{
	bool top = strcmp(o->path, ".") == 0;
	bool root = strcmp(o->pool.fs_path, "/") == 0;
	cleanup_free char *dir =
	    hsp_strdup_printf("%s%s/.snap", top ? "" : "/", top ? "" : o->path);
	cleanup_free char *path = hsp_strdup_printf("%s/%s", dir, o->snap ? o->snap : "");
	cleanup_free char *where =
	    top ? strdup(o->pool.fs_path)
		: hsp_strdup_printf("%s/%s", root ? "" : o->pool.fs_path, o->path);
	struct snap_call c = {.snap = o->snap, .dir = dir, .path = path, .where = where};
	int r = mount_at(o, o->pool.fs_path, &c.cm, err);
	if (r < 0)
		return r;
	if (strcmp(o->verb, "snap-create") == 0)
		r = snap_create(&c, err);
	else if (strcmp(o->verb, "snap-remove") == 0)
		r = snap_remove(&c, err);
	else
		r = snap_list(&c, err);
	return finish(c.cm, r, err);
}

static int parse(int argc, char **argv, struct opts *o, hsp_error_t *err)
{
	static const struct option opts[] = {
	    {"conf", required_argument, NULL, 'c'},    {"id", required_argument, NULL, 'i'},
	    {"keyring", required_argument, NULL, 'k'}, {"fs-path", required_argument, NULL, 'f'},
	    {"timeout", required_argument, NULL, 't'}, {"path", required_argument, NULL, 'p'},
	    {"snap", required_argument, NULL, 's'},    {"entity", required_argument, NULL, 'e'},
	    {"perms", required_argument, NULL, 'm'},   {NULL, 0, NULL, 0},
	};
	uint64_t t = HSP_CEPH_OP_TIMEOUT_S;
	int c;
	opterr = 0;
	optind = 2;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			o->pool.conf = optarg;
			break;
		case 'i':
			o->pool.id = optarg;
			break;
		case 'k':
			o->pool.keyring = optarg;
			break;
		case 'f':
			o->pool.fs_path = optarg;
			break;
		case 't':
			if (hsp_parse_u64(optarg, 1, 3600, &t, "timeout", err) < 0)
				return -EINVAL;
			break;
		case 'p':
			o->path = optarg;
			break;
		case 's':
			o->snap = optarg;
			break;
		case 'e':
			o->entity = optarg;
			break;
		case 'm':
			o->perms = optarg;
			break;
		default:
			return hsp_make_error(err, EINVAL,
					      "hsp-ceph: unknown option or missing value: `%s`",
					      argv[optind - 1]);
		}
	}
	o->timeout_s = (unsigned)t;
	return optind == argc ? 0 : hsp_make_error(err, EINVAL, "hsp-ceph: extra arguments");
}

static bool is_admin_verb(const char *verb)
{
	return strcmp(verb, "authorize") == 0 || strcmp(verb, "fence") == 0 ||
	       strcmp(verb, "revoke") == 0;
}

static int validate(const struct opts *o, bool snap, hsp_error_t *err)
{
	int r = hsp_ceph_validate_pool(&o->pool, err);
	if (r == 0 && is_admin_verb(o->verb)) {
		size_t n = o->entity ? strlen(o->entity) : 0;
		if (n == 0 || n > 64 ||
		    strspn(o->entity, "abcdefghijklmnopqrstuvwxyz0123456789_.-") != n)
			return hsp_make_error(err, EINVAL,
					      "invalid --entity `%s`: use 1-64 lower-case letters, "
					      "digits, '_', '.', '-'",
					      o->entity ? o->entity : "");
		if (o->perms && strspn(o->perms, "rwps") != strlen(o->perms))
			return hsp_make_error(err, EINVAL, "invalid --perms `%s`: letters of rwps",
					      o->perms);
	}
	if (r == 0 && snap)
		r = hsp_ceph_validate_rel(o->path, err);
	if (r == 0 && snap && strcmp(o->verb, "snap-list") != 0)
		r = hsp_validate_name(o->snap, "snapshot", err);
	return r;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return usage();
	struct opts o = {.verb = argv[1]};
	bool check = strcmp(o.verb, "check") == 0;
	bool snap = strcmp(o.verb, "snap-create") == 0 || strcmp(o.verb, "snap-remove") == 0 ||
		    strcmp(o.verb, "snap-list") == 0;
	bool admin = is_admin_verb(o.verb);
	if (!check && !snap && !admin)
		return usage();
	hsp_error_t err = NULL;
	if (parse(argc, argv, &o, &err) < 0 || validate(&o, snap, &err) < 0)
		return fail(&err);
	/* The backstop for whatever client_mount_timeout does not cover
	 * (an MDS that never answers, a hung unmount). */
	alarm_timeout = o.timeout_s;
	signal(SIGALRM, on_alarm);
	alarm(o.timeout_s);
	int r;
	if (admin)
		r = strcmp(o.verb, "fence") == 0    ? hc_fence(&o, &err)
		    : strcmp(o.verb, "revoke") == 0 ? hc_revoke(&o, &err)
						    : hc_authorize(&o, &err);
	else
		r = check ? do_check(&o, &err) : do_snap(&o, &err);
	return r < 0 ? fail(&err) : 0;
}
