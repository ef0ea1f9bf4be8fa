/* Persistence of VE configurations and run states as JSON (json-c). */
#define _GNU_SOURCE
#include "internal.h"
#include "pool.h"
#include "utils.h"

#include <dirent.h>
#include <errno.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void json_putp(void *p)
{
	json_object_put(*(json_object **)p);
}
#define cleanup_json __attribute__((cleanup(json_putp)))

static const struct {
	const char *key;
	unsigned bit;
	size_t off;
} limit_fields[] = {
    {"memory", HSP_LIMIT_MEMORY, offsetof(struct hsp_limits, memory)},
    {"swap", HSP_LIMIT_SWAP, offsetof(struct hsp_limits, swap)},
    {"cpus_milli", HSP_LIMIT_CPUS, offsetof(struct hsp_limits, cpus_milli)},
    {"cpu_weight", HSP_LIMIT_CPU_WEIGHT, offsetof(struct hsp_limits, cpu_weight)},
    {"pids", HSP_LIMIT_PIDS, offsetof(struct hsp_limits, pids)},
    {"io_weight", HSP_LIMIT_IO_WEIGHT, offsetof(struct hsp_limits, io_weight)},
    {"disk", HSP_LIMIT_DISK, offsetof(struct hsp_limits, disk)},
};

static json_object *hsp_limits_to_json(const struct hsp_limits *l)
{
	json_object *o = json_object_new_object();
	for (size_t i = 0; i < sizeof(limit_fields) / sizeof(limit_fields[0]); i++) {
		if (!(l->set & limit_fields[i].bit))
			continue;
		uint64_t v = *(const uint64_t *)((const char *)l + limit_fields[i].off);
		json_object_object_add(o, limit_fields[i].key, json_object_new_uint64(v));
	}
	return o;
}

static void limits_from_json(json_object *o, struct hsp_limits *l)
{
	memset(l, 0, sizeof(*l));
	for (size_t i = 0; o && i < sizeof(limit_fields) / sizeof(limit_fields[0]); i++) {
		json_object *v;
		if (!json_object_object_get_ex(o, limit_fields[i].key, &v))
			continue;
		*(uint64_t *)((char *)l + limit_fields[i].off) = json_object_get_uint64(v);
		l->set |= limit_fields[i].bit;
	}
}

static char *get_str(json_object *o, const char *key)
{
	json_object *v;
	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return strdup(json_object_get_string(v));
}

static int64_t get_int(json_object *o, const char *key, int64_t dflt)
{
	json_object *v;
	if (!json_object_object_get_ex(o, key, &v))
		return dflt;
	return json_object_get_int64(v);
}

static json_object *strv_to_json(char *const *v)
{
	json_object *a = json_object_new_array();
	for (; v && *v; v++)
		json_object_array_add(a, json_object_new_string(*v));
	return a;
}

static char **strv_from_json(json_object *a)
{
	size_t n = a && json_object_is_type(a, json_type_array) ? json_object_array_length(a) : 0;
	char **v = calloc(n + 1, sizeof(char *));
	if (v == NULL)
		abort();
	for (size_t i = 0; i < n; i++)
		v[i] = strdup(json_object_get_string(json_object_array_get_idx(a, i)));
	return v;
}

int hsp_json_load(const char *path, json_object **out, hsp_error_t *err)
{
	cleanup_free char *data = NULL;
	int r = hsp_read_file(path, &data, NULL, err);
	if (r < 0)
		return r;
	json_object *o = json_tokener_parse(data);
	if (o == NULL || !json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		return hsp_make_error(err, EINVAL, "corrupt JSON in `%s`", path);
	}
	*out = o;
	return 0;
}

int hsp_json_save(const char *path, json_object *o, hsp_error_t *err)
{
	const char *s = json_object_to_json_string_ext(
	    o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE);
	cleanup_free char *text = hsp_strdup_printf("%s\n", s);
	return hsp_write_file_atomic(path, text, strlen(text), 0600, err);
}

int hsp_config_load(hsp_runtime_t *rt, const char *name, struct hsp_ve_config *c, hsp_error_t *err)
{
	memset(c, 0, sizeof(*c));
	const struct hsp_pool *pool;
	int pr = hsp_pool_of_ve(rt, name, &pool, err);
	if (pr < 0)
		return pr;
	cleanup_free char *path = hsp_strdup_printf("%s/ves/%s/config.json", pool->base, name);

	cleanup_json json_object *o = NULL;
	int r = hsp_json_load(path, &o, err);
	if (r < 0)
		return r;
	json_object *v = NULL;
	c->name = strdup(name);
	c->hostname = get_str(o, "hostname");
	c->template = get_str(o, "template");
	c->tree = get_str(o, "tree");
	json_object_object_get_ex(o, "init", &v);
	c->init = strv_from_json(v);
	c->stop_signal = (int)get_int(o, "stop_signal", 15);
	c->id_base = (uid_t)get_int(o, "id_base", 0);
	c->created = get_int(o, "created", 0);
	json_object *net = NULL;
	if (json_object_object_get_ex(o, "network", &net)) {
		c->ip = get_str(net, "ip");
		c->gateway = get_str(net, "gateway");
		c->bridge = get_str(net, "bridge");
	}
	c->ssh_keys = get_str(o, "ssh_keys");
	v = NULL;
	json_object_object_get_ex(o, "limits", &v);
	limits_from_json(v, &c->limits);
	if (c->id_base < HSP_IDMAP_FIRST || c->init[0] == NULL ||
	    (c->tree &&
	     (c->tree[0] == '\0' || strspn(c->tree, "0123456789abcdef-") != strlen(c->tree)))) {
		hsp_config_clear(c);
		return hsp_make_error(err, EINVAL, "corrupt configuration `%s`", path);
	}
	return 0;
}

int hsp_config_save(hsp_runtime_t *rt, const struct hsp_ve_config *c, hsp_error_t *err)
{
	cleanup_json json_object *o = json_object_new_object();
	json_object_object_add(o, "name", json_object_new_string(c->name));
	json_object_object_add(o, "hostname", json_object_new_string(c->hostname));
	json_object_object_add(o, "template", json_object_new_string(c->template));
	if (c->tree)
		json_object_object_add(o, "tree", json_object_new_string(c->tree));
	json_object_object_add(o, "init", strv_to_json(c->init));
	json_object_object_add(o, "stop_signal", json_object_new_int(c->stop_signal));
	json_object_object_add(o, "id_base", json_object_new_int64(c->id_base));
	json_object_object_add(o, "id_size", json_object_new_int64(HSP_IDMAP_SIZE));
	json_object_object_add(o, "limits", hsp_limits_to_json(&c->limits));
	json_object_object_add(o, "created", json_object_new_int64(c->created));
	if (c->ip) {
		json_object *net = json_object_new_object();
		json_object_object_add(net, "ip", json_object_new_string(c->ip));
		if (c->gateway)
			json_object_object_add(net, "gateway", json_object_new_string(c->gateway));
		json_object_object_add(net, "bridge", json_object_new_string(c->bridge));
		json_object_object_add(o, "network", net);
	}
	if (c->ssh_keys)
		json_object_object_add(o, "ssh_keys", json_object_new_string(c->ssh_keys));
	cleanup_free char *path =
	    hsp_strdup_printf("%s/ves/%s/config.json", hsp_ve_base(rt, c->name), c->name);
	return hsp_json_save(path, o, err);
}

void hsp_config_clear(struct hsp_ve_config *c)
{
	free(c->name);
	free(c->hostname);
	free(c->template);
	free(c->tree);
	hsp_strv_free(c->init);
	free(c->ip);
	free(c->gateway);
	free(c->bridge);
	free(c->ssh_keys);
	memset(c, 0, sizeof(*c));
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Adds the VEs of one pool's ves/ to v (n of cap used). */
static int add_names(const char *dir, char ***v, size_t *n, size_t *cap, hsp_error_t *err)
{
	DIR *d = opendir(dir);
	if (d == NULL)
		return errno == ENOENT ? 0 : hsp_make_errno(err, errno, "open `%s`", dir);
	struct dirent *de;
	int r = 0;
	while (r == 0 && (de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		cleanup_free char *cfg = hsp_strdup_printf("%s/%s/config.json", dir, de->d_name);
		if (access(cfg, F_OK) < 0)
			continue;
		if (*n == *cap) {
			char **nv = realloc(*v, (*cap * 2 + 1) * sizeof(char *));
			if (nv == NULL) {
				r = hsp_make_errno(err, ENOMEM, "list VEs");
				break;
			}
			*v = nv;
			*cap *= 2;
		}
		(*v)[(*n)++] = strdup(de->d_name);
		(*v)[*n] = NULL;
	}
	closedir(d);
	return r;
}

int hsp_config_names(hsp_runtime_t *rt, char ***names, hsp_error_t *err)
{
	size_t n = 0, cap = 16;
	cleanup_strv char **v = calloc(cap + 1, sizeof(char *));
	if (v == NULL)
		return hsp_make_errno(err, ENOMEM, "list VEs");
	const struct hsp_pool *const *pools;
	int np = hsp_pools(rt, &pools, err);
	if (np < 0)
		return np;
	for (int i = 0; i < np; i++) {
		const struct hsp_pool *p;
		hsp_error_t ignored = NULL;
		/* An unreachable pool's VEs are not listed (pool list says why). */
		if (hsp_pool_get(rt, pools[i]->name, &p, &ignored) < 0) {
			hsp_error_release(&ignored);
			continue;
		}
		cleanup_free char *dir = hsp_strdup_printf("%s/ves", p->base);
		int r = add_names(dir, &v, &n, &cap, err);
		if (r < 0)
			return r;
	}
	qsort(v, n, sizeof(char *), cmp_str);
	*names = steal_pointer(&v);
	return (int)n;
}

int hsp_state_load(hsp_runtime_t *rt, const char *name, struct hsp_run_state *st, hsp_error_t *err)
{
	memset(st, 0, sizeof(*st));
	st->last_exit = -1;
	st->disk_loop_fd = -1;
	cleanup_free char *path = hsp_strdup_printf("%s/%s/state.json", rt->run_dir, name);
	if (access(path, F_OK) < 0)
		return hsp_make_error(err, ENOENT, "VE `%s` has no run state", name);
	cleanup_json json_object *o = NULL;
	int r = hsp_json_load(path, &o, err);
	if (r < 0)
		return r;
	st->monitor_pid = (pid_t)get_int(o, "monitor_pid", 0);
	st->init_pid = (pid_t)get_int(o, "init_pid", 0);
	st->init_start = (uint64_t)get_int(o, "init_start", 0);
	st->started = get_int(o, "started", 0);
	st->restarts = (unsigned)get_int(o, "restarts", 0);
	st->disk_loop_fd = (int)get_int(o, "disk_loop_fd", -1);
	st->storage_lost = get_int(o, "storage_lost", 0) != 0;
	st->rescue = get_int(o, "rescue", 0) != 0;
	st->last_exit = (int)get_int(o, "last_exit", -1);
	st->cgroup = get_str(o, "cgroup");
	st->restored.frozen_us = (uint64_t)get_int(o, "frozen_us", 0);
	st->restored.dump_us = (uint64_t)get_int(o, "dump_us", 0);
	st->restored.restore_us = (uint64_t)get_int(o, "restore_us", 0);
	return 0;
}

int hsp_state_save(hsp_runtime_t *rt, const char *name, const struct hsp_run_state *st,
		   hsp_error_t *err)
{
	cleanup_json json_object *o = json_object_new_object();
	json_object_object_add(o, "monitor_pid", json_object_new_int(st->monitor_pid));
	json_object_object_add(o, "init_pid", json_object_new_int(st->init_pid));
	json_object_object_add(o, "init_start", json_object_new_int64((int64_t)st->init_start));
	json_object_object_add(o, "started", json_object_new_int64(st->started));
	json_object_object_add(o, "restarts", json_object_new_int((int)st->restarts));
	if (st->disk_loop_fd >= 0)
		json_object_object_add(o, "disk_loop_fd", json_object_new_int(st->disk_loop_fd));
	if (st->storage_lost)
		json_object_object_add(o, "storage_lost", json_object_new_int(1));
	if (st->rescue)
		json_object_object_add(o, "rescue", json_object_new_int(1));
	json_object_object_add(o, "last_exit", json_object_new_int(st->last_exit));
	if (st->cgroup)
		json_object_object_add(o, "cgroup", json_object_new_string(st->cgroup));
	if (st->restored.frozen_us) {
		json_object_object_add(o, "frozen_us",
				       json_object_new_int64((int64_t)st->restored.frozen_us));
		json_object_object_add(o, "dump_us",
				       json_object_new_int64((int64_t)st->restored.dump_us));
		json_object_object_add(o, "restore_us",
				       json_object_new_int64((int64_t)st->restored.restore_us));
	}
	cleanup_free char *path = hsp_strdup_printf("%s/%s/state.json", rt->run_dir, name);
	return hsp_json_save(path, o, err);
}

void hsp_state_clear(struct hsp_run_state *st)
{
	free(st->cgroup);
	memset(st, 0, sizeof(*st));
}
