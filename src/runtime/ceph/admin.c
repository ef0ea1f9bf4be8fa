/* The cluster administration the controller needs, run with its admin key:
 *
 *   authorize: a node's own cephx user, restricted to the cluster's path,
 *     so a node can be fenced without touching the others; prints the
 *     keyring.
 *   fence: every CephFS session of a node's user is blocklisted in the OSD
 *     map (librados), the map is waited for, then the sessions are evicted
 *     from the MDS, which drops their caps and locks (the flock on a VE's
 *     disk among them).  After that the node can write nothing more, even
 *     if it wakes up, and another node may mount what it held. */
#define _GNU_SOURCE
#include <errno.h>
#include <json-c/json.h>
#include <rados/librados.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hsp-ceph.h"
#include "utils.h"

static void rados_cleanup(rados_t *c)
{
	if (*c)
		rados_shutdown(*c);
}
#define cleanup_rados __attribute__((cleanup(rados_cleanup)))

static void cephfs_cleanup(struct ceph_mount_info **cm)
{
	if (*cm)
		ceph_release(*cm);
}
#define cleanup_cephfs __attribute__((cleanup(cephfs_cleanup)))

static void json_cleanup(json_object **o)
{
	if (*o)
		json_object_put(*o);
}
#define cleanup_json __attribute__((cleanup(json_cleanup)))

static int rados_open(const struct opts *o, rados_t *out, hsp_error_t *err)
{
	char timeout[16];
	snprintf(timeout, sizeof(timeout), "%u", o->timeout_s);
	rados_t c = NULL;
	int r = rados_create(&c, o->pool.id);
	if (r < 0)
		return hsp_make_error(err, -r, "rados: create client.%s: %s", o->pool.id,
				      strerror(-r));
	if ((r = rados_conf_read_file(c, o->pool.conf)) < 0 ||
	    (r = rados_conf_set(c, "keyring", o->pool.keyring)) < 0 ||
	    (r = rados_conf_set(c, "client_mount_timeout", timeout)) < 0 ||
	    (r = rados_conf_set(c, "rados_mon_op_timeout", timeout)) < 0 ||
	    (r = rados_conf_set(c, "admin_socket", "")) < 0 ||
	    (r = rados_conf_set(c, "log_to_stderr", "false")) < 0 ||
	    (r = rados_conf_set(c, "err_to_stderr", "false")) < 0 || (r = rados_connect(c)) < 0) {
		rados_shutdown(c);
		return hsp_make_error(err, -r, "rados: connect as client.%s: %s", o->pool.id,
				      strerror(-r));
	}
	*out = c;
	return 0;
}

/* A mon command; *out (may be NULL) gets its output buffer. */
static int mon_command(rados_t c, const char *cmd, char **out, hsp_error_t *err)
{
	char *buf = NULL, *st = NULL;
	size_t blen = 0, slen = 0;
	const char *cmds[] = {cmd};
	int r = rados_mon_command(c, cmds, 1, "", 0, &buf, &blen, &st, &slen);
	if (r < 0) {
		hsp_make_error(err, -r, "mon command %s: %.*s", cmd, (int)slen,
			       slen ? st : strerror(-r));
	} else if (out) {
		*out = strndup(buf ? buf : "", blen);
		if (*out == NULL)
			r = hsp_make_errno(err, ENOMEM, "mon command");
	}
	rados_buffer_free(buf);
	rados_buffer_free(st);
	return r < 0 ? r : 0;
}

static int fs_name(rados_t c, char **name, hsp_error_t *err)
{
	cleanup_free char *out = NULL;
	int r = mon_command(c, "{\"prefix\":\"fs ls\",\"format\":\"json\"}", &out, err);
	if (r < 0)
		return r;
	cleanup_json json_object *a = json_tokener_parse(out);
	json_object *first =
	    a && json_object_is_type(a, json_type_array) ? json_object_array_get_idx(a, 0) : NULL;
	json_object *n = NULL;
	if (first == NULL || !json_object_object_get_ex(first, "name", &n))
		return hsp_make_error(err, ENOENT, "the cluster has no CephFS file system");
	*name = strdup(json_object_get_string(n));
	return *name ? 0 : hsp_make_errno(err, ENOMEM, "fs ls");
}

/* The cluster's directories exist before a node, which can reach nothing
 * above them, first mounts them. */
static int make_dirs(const struct opts *o, hsp_error_t *err)
{
	cleanup_cephfs struct ceph_mount_info *cm = NULL;
	int r = ceph_create(&cm, o->pool.id);
	if (r < 0)
		return hsp_make_error(err, -r, "create client.%s: %s", o->pool.id, strerror(-r));
	if ((r = hc_configure(cm, o, err)) < 0)
		return r;
	if ((r = ceph_mount(cm, "/")) < 0)
		return hsp_make_error(err, -r, "mount / as client.%s: %s", o->pool.id,
				      strerror(-r));
	static const char *const subs[] = {"/ves", "/templates"};
	for (size_t i = 0; r == 0 && i < 2; i++) {
		cleanup_free char *p = hsp_strdup_printf("%s%s", o->pool.fs_path, subs[i]);
		r = ceph_mkdirs(cm, p, i == 0 ? 0700 : 0755);
		if (r == -EEXIST)
			r = 0;
		else if (r < 0)
			hsp_make_error(err, -r, "mkdir %s: %s", p, strerror(-r));
	}
	int u = ceph_unmount(cm);
	if (r == 0 && u < 0)
		r = hsp_make_error(err, -u, "unmount: %s", strerror(-u));
	return r;
}

int hc_authorize(const struct opts *o, hsp_error_t *err)
{
	cleanup_rados rados_t c = NULL;
	cleanup_free char *fs = NULL;
	cleanup_free char *keyring = NULL;
	int r = make_dirs(o, err);
	if (r == 0)
		r = rados_open(o, &c, err);
	if (r == 0)
		r = fs_name(c, &fs, err);
	if (r < 0)
		return r;
	cleanup_json json_object *cmd = json_object_new_object();
	json_object *caps = json_object_new_array();
	json_object_array_add(caps, json_object_new_string(o->pool.fs_path));
	json_object_array_add(caps, json_object_new_string(o->perms ? o->perms : "rwps"));
	cleanup_free char *entity = hsp_strdup_printf("client.%s", o->entity);
	json_object_object_add(cmd, "prefix", json_object_new_string("fs authorize"));
	json_object_object_add(cmd, "filesystem", json_object_new_string(fs));
	json_object_object_add(cmd, "entity", json_object_new_string(entity));
	json_object_object_add(cmd, "caps", caps);
	r = mon_command(c, json_object_to_json_string(cmd), &keyring, err);
	if (r < 0)
		return r;
	if (strstr(keyring, "key =") == NULL)
		return hsp_make_error(err, EPROTO, "fs authorize %s: no key in the answer", entity);
	fputs(keyring, stdout);
	return fflush(stdout) == 0 ? 0 : hsp_make_errno(err, errno, "write keyring");
}

/* ---------------------------------------------------------------- fence */

struct session {
	long id;
	char *addr; /* "IP:PORT/NONCE", what a blocklist takes */
};

static int mds_command(struct ceph_mount_info *cm, const char *cmd, char **out, hsp_error_t *err)
{
	char *buf = NULL, *st = NULL;
	size_t blen = 0, slen = 0;
	const char *cmds[] = {cmd};
	int r = ceph_mds_command(cm, "*", cmds, 1, "", 0, &buf, &blen, &st, &slen);
	if (r < 0)
		hsp_make_error(err, -r, "mds command %s: %.*s", cmd, (int)slen,
			       slen ? st : strerror(-r));
	else if (out && (*out = strndup(buf ? buf : "", blen)) == NULL)
		r = hsp_make_errno(err, ENOMEM, "mds command");
	ceph_buffer_free(buf);
	ceph_buffer_free(st);
	return r < 0 ? r : 0;
}

static const char *str_at(json_object *o, const char *k1, const char *k2)
{
	json_object *v = NULL;
	if (!json_object_object_get_ex(o, k1, &v) || (k2 && !json_object_object_get_ex(v, k2, &v)))
		return NULL;
	return json_object_get_string(v);
}

/* The sessions whose cephx user is o->entity, from every MDS's answer (the
 * answers of several MDSs come one after the other). */
static int node_sessions(const char *text, const char *entity, struct session *s, size_t max,
			 size_t *n, hsp_error_t *err)
{
	json_tokener *tok = json_tokener_new();
	if (tok == NULL)
		return hsp_make_errno(err, ENOMEM, "session ls");
	const char *p = text;
	size_t left = strlen(text);
	int r = 0;
	*n = 0;
	while (r == 0 && left > 0) {
		json_object *a = json_tokener_parse_ex(tok, p, (int)left);
		if (a == NULL) {
			if (json_tokener_get_error(tok) != json_tokener_continue)
				r = hsp_make_error(err, EPROTO, "session ls: not JSON");
			break;
		}
		size_t used = json_tokener_get_parse_end(tok);
		p += used;
		left -= used;
		for (size_t i = 0; json_object_is_type(a, json_type_array) &&
				   i < json_object_array_length(a) && *n < max;
		     i++) {
			json_object *e = json_object_array_get_idx(a, i);
			const char *who = str_at(e, "client_metadata", "entity_id");
			const char *inst = str_at(e, "inst", NULL);
			const char *sp = inst ? strchr(inst, ' ') : NULL;
			json_object *id = NULL;
			if (who == NULL || strcmp(who, entity) != 0 || sp == NULL ||
			    !json_object_object_get_ex(e, "id", &id))
				continue;
			s[*n].id = json_object_get_int64(id);
			s[*n].addr = strdup(sp + 1);
			if (s[*n].addr)
				(*n)++;
		}
		json_object_put(a);
		json_tokener_reset(tok);
		while (left > 0 && (*p == '\n' || *p == ' ')) {
			p++;
			left--;
		}
	}
	json_tokener_free(tok);
	return r;
}

static int blocklist(rados_t c, const struct session *s, size_t n, hsp_error_t *err)
{
	for (size_t i = 0; i < n; i++) {
		cleanup_free char *cmd = hsp_strdup_printf(
		    "{\"prefix\":\"osd blocklist\",\"blocklistop\":\"add\",\"addr\":\"%s\"}",
		    s[i].addr);
		int r = mon_command(c, cmd, NULL, err);
		if (r < 0)
			return r;
	}
	/* The blocklist is in force once the OSD map carrying it is out;
	 * the MDS's evict then makes every new client wait for that map. */
	int r = rados_wait_for_latest_osdmap(c);
	return r < 0 ? hsp_make_error(err, -r, "wait for the OSD map: %s", strerror(-r)) : 0;
}

static int evict(struct ceph_mount_info *cm, const struct session *s, size_t n, hsp_error_t *err)
{
	for (size_t i = 0; i < n; i++) {
		cleanup_free char *cmd = hsp_strdup_printf(
		    "{\"prefix\":\"session evict\",\"filters\":[\"id=%ld\"]}", s[i].id);
		int r = mds_command(cm, cmd, NULL, err);
		if (r < 0)
			return r;
	}
	return 0;
}

#define FENCE_MAX_SESSIONS 64

int hc_fence(const struct opts *o, hsp_error_t *err)
{
	cleanup_cephfs struct ceph_mount_info *cm = NULL;
	cleanup_rados rados_t c = NULL;
	cleanup_free char *ls = NULL;
	struct session s[FENCE_MAX_SESSIONS];
	size_t n = 0;
	int r = ceph_create(&cm, o->pool.id);
	if (r < 0)
		return hsp_make_error(err, -r, "create client.%s: %s", o->pool.id, strerror(-r));
	if ((r = hc_configure(cm, o, err)) < 0)
		return r;
	if ((r = ceph_init(cm)) < 0)
		return hsp_make_error(err, -r, "connect as client.%s: %s", o->pool.id,
				      strerror(-r));
	r = mds_command(cm, "{\"prefix\":\"session ls\"}", &ls, err);
	if (r == 0)
		r = node_sessions(ls, o->entity, s, FENCE_MAX_SESSIONS, &n, err);
	if (r == 0)
		r = rados_open(o, &c, err);
	if (r == 0)
		r = blocklist(c, s, n, err);
	if (r == 0)
		r = evict(cm, s, n, err);
	for (size_t i = 0; i < n; i++) {
		if (r == 0)
			printf("fenced client.%s session %ld at %s\n", o->entity, s[i].id,
			       s[i].addr);
		free(s[i].addr);
	}
	if (r == 0 && fflush(stdout) != 0)
		r = hsp_make_errno(err, errno, "write");
	return r;
}

/* ---------------------------------------------------------------- revoke */

/* A node that leaves the cluster for good: its user is removed first, so
 * nothing of it authenticates again (its runtime remounts a mount it finds
 * dead, and would do so between an eviction and the removal), then its
 * sessions are fenced.  A user already gone is not an error. */
int hc_revoke(const struct opts *o, hsp_error_t *err)
{
	cleanup_rados rados_t c = NULL;
	int r = rados_open(o, &c, err);
	if (r < 0)
		return r;
	cleanup_json json_object *cmd = json_object_new_object();
	cleanup_free char *entity = hsp_strdup_printf("client.%s", o->entity);
	json_object_object_add(cmd, "prefix", json_object_new_string("auth rm"));
	json_object_object_add(cmd, "entity", json_object_new_string(entity));
	cleanup_free char *out = NULL;
	r = mon_command(c, json_object_to_json_string(cmd), &out, err);
	if (r == 0)
		r = hc_fence(o, err);
	if (r < 0)
		return r;
	printf("removed %s\n", entity);
	return fflush(stdout) == 0 ? 0 : hsp_make_errno(err, errno, "write");
}
