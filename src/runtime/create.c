/* Creating and destroying VEs.  A VE exists once its config.json is written,
 * which happens last; every failure before that removes what was made. */
#define _GNU_SOURCE
#include "internal.h"
#include "disk.h"
#include "net.h"
#include "pool.h"
#include "rootfs.h"
#include "template.h"
#include "utils.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int validate_limits(const struct hsp_limits *l, hsp_error_t *err)
{
	if ((l->set & HSP_LIMIT_MEMORY) && l->memory != 0 && l->memory < (4ULL << 20))
		return hsp_make_error(err, ERANGE, "invalid memory limit: at least 4M is needed");
	if ((l->set & HSP_LIMIT_SWAP) && !(l->set & HSP_LIMIT_MEMORY))
		return hsp_make_error(err, EINVAL, "a swap limit needs a memory limit");
	if ((l->set & HSP_LIMIT_CPU_WEIGHT) && (l->cpu_weight < 1 || l->cpu_weight > 10000))
		return hsp_make_error(err, ERANGE,
				      "invalid cpu weight: must be between 1 and 10000");
	if ((l->set & HSP_LIMIT_IO_WEIGHT) && (l->io_weight < 1 || l->io_weight > 10000))
		return hsp_make_error(err, ERANGE,
				      "invalid io weight: must be between 1 and 10000");
	if ((l->set & HSP_LIMIT_PIDS) && l->pids != 0 && l->pids < 8)
		return hsp_make_error(err, ERANGE, "invalid pids limit: at least 8 are needed");
	if ((l->set & HSP_LIMIT_DISK) && (l->disk < HSP_DISK_MIN || l->disk > HSP_DISK_MAX))
		return hsp_make_error(err, ERANGE,
				      "invalid disk size: must be between 64M and 64T");
	return hsp_cgroup_check_limits(l, err);
}

int hsp_limits_validate(const struct hsp_limits *l, hsp_error_t *err)
{
	return validate_limits(l, err);
}

int hsp_validate_network(const char *ip, const char *gateway, const char *bridge, hsp_error_t *err)
{
	if (ip == NULL) {
		if (gateway || bridge)
			return hsp_make_error(err, EINVAL, "--gateway and --bridge need --ip");
		return 0;
	}
	struct hsp_net_addr net, gw;
	int r = hsp_net_parse_cidr(ip, &net, err);
	if (r == 0 && bridge)
		r = hsp_net_validate_ifname(bridge, err);
	if (r == 0 && gateway) {
		r = hsp_net_parse_ip(gateway, &gw, err);
		if (r == 0 && !hsp_net_contains(&net, &gw))
			r = hsp_make_error(err, EINVAL, "gateway `%s` is outside `%s`", gateway,
					   ip);
	}
	return r;
}

/* Two VEs on one bridge with one address would take each other's traffic;
 * refused among the VEs of this root (a cluster checks its whole segment). */
int hsp_check_address_free(hsp_runtime_t *rt, const struct hsp_ve_config *c, hsp_error_t *err)
{
	if (c->ip == NULL)
		return 0;
	struct hsp_net_addr mine, theirs;
	int r = hsp_net_parse_cidr(c->ip, &mine, err);
	if (r < 0)
		return r;
	cleanup_strv char **names = NULL;
	int n = hsp_config_names(rt, &names, err);
	for (int i = 0; i < n && r == 0; i++) {
		struct hsp_ve_config other;
		hsp_error_t ignored = NULL;
		if (hsp_config_load(rt, names[i], &other, &ignored) < 0) {
			hsp_error_release(&ignored);
			continue;
		}
		if (other.ip && hsp_net_parse_cidr(other.ip, &theirs, &ignored) == 0 &&
		    theirs.family == mine.family &&
		    memcmp(theirs.addr, mine.addr, sizeof(mine.addr)) == 0)
			r = hsp_make_error(err, EADDRINUSE,
					   "address `%s` is already used by VE `%s`", c->ip,
					   other.name);
		hsp_error_release(&ignored);
		hsp_config_clear(&other);
	}
	return n < 0 ? n : r;
}

/* Reads and checks a public key file: one or more "type base64 [comment]"
 * lines, nothing that looks like a private key. */
static int read_ssh_key(const char *path, char **out, hsp_error_t *err)
{
	cleanup_free char *data = NULL;
	size_t len = 0;
	int r = hsp_read_file(path, &data, &len, err);
	if (r < 0)
		return hsp_error_wrap(err, "ssh key");
	if (len == 0 || len > 64 * 1024 || strstr(data, "PRIVATE KEY"))
		return hsp_make_error(err, EINVAL, "ssh key `%s`: not a public key file", path);
	for (char *line = data; line && *line;
	     line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
		if (*line == '\n' || *line == '#')
			continue;
		if (strncmp(line, "ssh-", 4) != 0 && strncmp(line, "ecdsa-", 6) != 0 &&
		    strncmp(line, "sk-", 3) != 0)
			return hsp_make_error(err, EINVAL, "ssh key `%s`: not a public key file",
					      path);
	}
	if (data[len - 1] != '\n') {
		char *nd = hsp_strdup_printf("%s\n", data);
		free(data);
		data = nd;
	}
	*out = steal_pointer(&data);
	return 0;
}

static int fill_config(struct hsp_ve_config *c, const char *name, const struct hsp_create_opts *o,
		       const struct hsp_template *t, hsp_error_t *err)
{
	c->name = strdup(name);
	c->hostname = strdup(o->hostname ? o->hostname : name);
	c->template = strdup(t->name);
	char *const *init = o->init && o->init[0] ? o->init : t->init;
	size_t n = hsp_strv_len(init);
	c->init = calloc(n + 1, sizeof(char *));
	for (size_t i = 0; i < n; i++)
		c->init[i] = strdup(init[i]);
	c->limits = o->limits;
	if (!(c->limits.set & HSP_LIMIT_DISK)) {
		c->limits.set |= HSP_LIMIT_DISK;
		c->limits.disk = HSP_DISK_DEFAULT;
	}
	c->created = time(NULL);
	if (o->ip) {
		c->ip = strdup(o->ip);
		c->gateway = o->gateway ? strdup(o->gateway) : NULL;
		c->bridge = strdup(o->bridge ? o->bridge : HSP_DEFAULT_BRIDGE);
	}
	const char *sig =
	    o->stop_signal ? o->stop_signal : (t->stop_signal ? t->stop_signal : "SIGTERM");
	int r = hsp_parse_signal(sig, &c->stop_signal, err);
	if (r < 0)
		return r;
	if (n == 0 || init[0][0] != '/')
		return hsp_make_error(err, EINVAL, "invalid init command: needs an absolute path");
	return 0;
}

int hsp_ve_name_free(hsp_runtime_t *rt, const char *name, hsp_error_t *err)
{
	const struct hsp_pool *p;
	int r = hsp_pool_of_ve(rt, name, &p, err);
	if (r == 0)
		return hsp_make_error(err, EEXIST, "VE `%s` already exists (pool `%s`)", name,
				      p->name);
	if (r != -ENOENT)
		return r;
	hsp_error_release(err);
	return 0;
}

static int make_ve_dir(const struct hsp_pool *pool, const char *dir, hsp_error_t *err)
{
	/* On a node's own disk, a directory without config.json is what an
	 * interrupted create left; in a shared pool it may be another node's
	 * create in progress. */
	if (pool->type == HSP_POOL_LOCAL) {
		int r = hsp_rm_rf(dir, err);
		if (r < 0)
			return r;
	}
	cleanup_free char *ves = hsp_strdup_printf("%s/ves", pool->base);
	if (mkdir(ves, 0700) < 0 && errno != EEXIST)
		return hsp_make_errno(err, errno, "mkdir `%s`", ves);
	if (mkdir(dir, 0700) < 0) {
		if (errno == EEXIST)
			return hsp_make_error(err, EEXIST,
					      "`%s` exists: a create of this VE is under way "
					      "elsewhere, or was interrupted (remove it then)",
					      dir);
		return hsp_make_errno(err, errno, "mkdir `%s`", dir);
	}
	return 0;
}

static int create_locked(hsp_runtime_t *rt, struct hsp_ve_config *c, const struct hsp_pool *pool,
			 const struct hsp_template *t, const char *ssh_key, hsp_error_t *err)
{
	int r = hsp_ve_name_free(rt, c->name, err);
	if (r == 0)
		r = hsp_check_address_free(rt, c, err);
	if (r < 0)
		return r;
	hsp_pool_place(rt, c->name, pool);
	cleanup_free char *dir = hsp_ve_dir(rt, c->name);
	r = make_ve_dir(pool, dir, err);
	if (r < 0)
		return r;
	r = hsp_idmap_allocate(rt, c->name, &c->id_base, err);
	bool new_tree = false;
	if (r == 0 && t->stored) {
		r = hsp_tree_ensure(rt, pool, t, &c->tree, err);
		new_tree = r == 1;
		r = r < 0 ? r : 0;
	}
	if (r == 0)
		r = hsp_private_create(rt, c, t, ssh_key, err);
	if (r == 0)
		r = hsp_config_save(rt, c, err);
	if (r < 0) {
		hsp_error_t ignored = NULL;
		hsp_rm_rf(dir, &ignored);
		hsp_error_release(&ignored);
	} else if (new_tree) {
		/* The template was imported again: older trees may be unused. */
		hsp_tree_gc(rt, pool, t->name);
	}
	return r;
}

int hsp_ve_create(hsp_runtime_t *rt, const char *name, const struct hsp_create_opts *o,
		  hsp_error_t *err)
{
	int r = hsp_validate_name(name, "VE", err);
	if (r == 0 && o->hostname)
		r = hsp_validate_hostname(o->hostname, err);
	if (r == 0)
		r = validate_limits(&o->limits, err);
	if (r == 0)
		r = hsp_validate_network(o->ip, o->gateway, o->bridge, err);
	if (r == 0 && (o->template == NULL || *o->template == '\0'))
		r = hsp_make_error(err, EINVAL, "a template is required (--template)");
	if (r < 0)
		return r;

	struct hsp_template t = {0};
	struct hsp_ve_config c = {0};
	cleanup_free char *key = NULL;
	const struct hsp_pool *pool = NULL;
	if (o->ssh_key)
		r = read_ssh_key(o->ssh_key, &key, err);
	if (r == 0)
		r = hsp_pool_get(rt, o->pool, &pool, err);
	if (r == 0)
		r = hsp_template_resolve(pool->base, o->template, &t, err);
	if (r == 0)
		r = fill_config(&c, name, o, &t, err);
	if (r == 0 && key)
		c.ssh_keys = strdup(key);
	if (r == 0) {
		cleanup_close int lock = hsp_lock_root(rt, err);
		r = lock < 0 ? lock : create_locked(rt, &c, pool, &t, key, err);
	}
	hsp_config_clear(&c);
	hsp_template_clear(&t);
	return r;
}

/* CephFS keeps a directory with snapshots: they go first, so destroy does
 * not stop half-way with the VE's config gone and its disk left. */
static int drop_ceph_snapshots(const struct hsp_pool *p, const char *name, hsp_error_t *err)
{
	if (p == NULL || p->type != HSP_POOL_CEPHFS)
		return 0;
	struct hsp_ceph_pool cp = hsp_pool_ceph(p);
	cleanup_free char *rel = hsp_strdup_printf("ves/%s", name);
	cleanup_strv char **snaps = NULL;
	int n = hsp_ceph_snap_list(&cp, rel, &snaps, err);
	int r = n < 0 ? n : 0;
	for (int i = 0; r == 0 && i < n; i++)
		r = hsp_ceph_snap_remove(&cp, rel, snaps[i], err);
	return r;
}

int hsp_ve_destroy(hsp_runtime_t *rt, const char *name, bool force, hsp_error_t *err)
{
	int r = hsp_validate_name(name, "VE", err);
	if (r < 0)
		return r;
	struct hsp_ve_config c;
	r = hsp_config_load(rt, name, &c, err);
	if (r < 0)
		return r;
	uid_t base = c.id_base;
	cleanup_free char *tmpl = c.tree ? strdup(c.template) : NULL;
	const struct hsp_pool *pool = NULL;
	hsp_error_t perr = NULL;
	hsp_pool_of_ve(rt, name, &pool, &perr);
	hsp_error_release(&perr);
	hsp_config_clear(&c);
	if (hsp_ve_is_running(rt, name)) {
		if (!force)
			return hsp_make_error(
			    err, EBUSY, "VE `%s` is running: stop it first or use --force", name);
		r = hsp_ve_kill(rt, name, err);
		if (r < 0 && r != -EINVAL)
			return r;
		hsp_error_release(err);
	}
	cleanup_close int rootlock = hsp_lock_root(rt, err);
	if (rootlock < 0)
		return rootlock;
	cleanup_close int lock = hsp_lock_ve(rt, name, err);
	if (lock < 0)
		return lock;
	if (hsp_ve_is_running(rt, name))
		return hsp_make_error(err, EBUSY, "VE `%s` was started again meanwhile", name);
	if (hsp_ve_is_mounted(rt, name)) {
		r = hsp_ve_unmount_host(rt, name, err);
		if (r < 0)
			return r;
	}
	r = drop_ceph_snapshots(pool, name, err);
	if (r < 0)
		return r;
	/* config.json goes first: from then on the VE does not exist, even if
	 * removing its files is interrupted. */
	cleanup_free char *dir = hsp_ve_dir(rt, name);
	cleanup_free char *cfg = hsp_strdup_printf("%s/config.json", dir);
	if (unlink(cfg) < 0)
		return hsp_make_errno(err, errno, "remove `%s`", cfg);
	r = hsp_rm_rf(dir, err);
	if (r == 0)
		hsp_idmap_release(rt, name, base);
	if (r == 0 && tmpl && pool)
		hsp_tree_gc(rt, pool, tmpl);
	cleanup_free char *rundir = hsp_ve_run_dir(rt, name);
	hsp_error_t ignored = NULL;
	hsp_rm_rf(rundir, &ignored);
	hsp_error_release(&ignored);
	cleanup_free char *lockpath = hsp_strdup_printf("%s/%s.lock", rt->run_dir, name);
	unlink(lockpath);
	return r;
}
