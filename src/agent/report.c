/* What the agent tells the controller about the node: capacity, load,
 * the VEs and templates the runtime has, capabilities.  Everything here
 * may block (it spawns the runtime), so only workers call it. */
#define _GNU_SOURCE
#include "agent.h"
#include "utils.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#define GATHER_TIMEOUT_MS 60000

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size);
	if (p == NULL)
		abort();
	return p;
}

/* ------------------------------------------------------------ the node */

static int meminfo(uint64_t *total, uint64_t *avail)
{
	cleanup_fclose FILE *f = fopen("/proc/meminfo", "re");
	char line[256];
	unsigned long long v;
	*total = *avail = 0;
	if (f == NULL)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "MemTotal: %llu kB", &v) == 1)
			*total = v * 1024;
		else if (sscanf(line, "MemAvailable: %llu kB", &v) == 1)
			*avail = v * 1024;
	}
	return 0;
}

uint64_t report_memory_used(void)
{
	uint64_t total, avail;
	if (meminfo(&total, &avail) < 0 || avail > total)
		return 0;
	return total - avail;
}

double report_load1(void)
{
	cleanup_fclose FILE *f = fopen("/proc/loadavg", "re");
	double l = 0;
	if (f == NULL || fscanf(f, "%lf", &l) != 1)
		return 0;
	return l;
}

char *report_boot_id(void)
{
	char *s = NULL;
	size_t len = 0;
	hsp_error_t err = NULL;
	if (hsp_read_file("/proc/sys/kernel/random/boot_id", &s, &len, &err) < 0) {
		hsp_error_release(&err);
		return strdup("");
	}
	s[strcspn(s, "\n")] = '\0';
	return s;
}

/* The runtime root may not exist before the first VE: measure the file
 * system it will be made on. */
static uint64_t disk_bytes(const char *root)
{
	cleanup_free char *p = strdup(root);
	struct statvfs st;
	while (p && statvfs(p, &st) < 0) {
		char *slash = strrchr(p, '/');
		if (slash == NULL || slash == p)
			return statvfs("/", &st) == 0 ? (uint64_t)st.f_blocks * st.f_frsize : 0;
		*slash = '\0';
	}
	return p ? (uint64_t)st.f_blocks * st.f_frsize : 0;
}

int report_capacity(const struct agent_conf *c, Hsp__V1__NodeCapacity **cap)
{
	Hsp__V1__NodeCapacity *n = xcalloc(1, sizeof(*n));
	uint64_t avail;
	hsp__v1__node_capacity__init(n);
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	n->cpus = cpus > 0 ? (uint32_t)cpus : 1;
	meminfo(&n->memory_bytes, &avail);
	n->disk_bytes = disk_bytes(c->root);
	*cap = n;
	return 0;
}

/* ------------------------------------------------------------ the runtime */

int report_parse_json(const struct run_out *r, json_object **o, hsp_error_t *err)
{
	enum json_tokener_error jerr;
	*o = json_tokener_parse_verbose(r->out ? r->out : "", &jerr);
	if (*o == NULL)
		return hsp_make_error(err, EPROTO, "hsp-runtime printed invalid JSON: %s",
				      json_tokener_error_desc(jerr));
	return 0;
}

/* Runs a verb that prints JSON; -errno (the runtime's) on failure. */
static int runtime_json(const struct agent_conf *c, char *const *args, json_object **o,
			hsp_error_t *err)
{
	struct run_out r;
	int ret = run_runtime(c, args, GATHER_TIMEOUT_MS, &r, err);
	if (ret < 0)
		return ret;
	cleanup_free char *msg = NULL;
	int code = run_code(&r, &msg);
	if (code != GRPC_STATUS_OK)
		ret = hsp_make_error(err, r.err_no > 0 ? r.err_no : EIO, "%s %s: %s", args[0],
				     args[1] ? args[1] : "", msg);
	else
		ret = report_parse_json(&r, o, err);
	run_out_clear(&r);
	return ret;
}

static const char *jstr(json_object *o, const char *key)
{
	json_object *v;
	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return "";
	return json_object_get_string(v);
}

static uint64_t ju64(json_object *o, const char *key)
{
	json_object *v;
	if (!json_object_object_get_ex(o, key, &v))
		return 0;
	return json_object_get_uint64(v);
}

static Hsp__V1__VeState ve_state(const char *status)
{
	if (strcmp(status, "running") == 0)
		return HSP__V1__VE_STATE__VE_STATE_RUNNING;
	if (strcmp(status, "stopped") == 0)
		return HSP__V1__VE_STATE__VE_STATE_STOPPED;
	if (strcmp(status, "stopping") == 0)
		return HSP__V1__VE_STATE__VE_STATE_STOPPING;
	if (strcmp(status, "failed") == 0)
		return HSP__V1__VE_STATE__VE_STATE_FAILED;
	return HSP__V1__VE_STATE__VE_STATE_UNKNOWN;
}

Hsp__V1__VeStatus *report_ve_from_json(json_object *o)
{
	Hsp__V1__VeStatus *v = xcalloc(1, sizeof(*v));
	json_object *u;
	hsp__v1__ve_status__init(v);
	v->name = pb_str(jstr(o, "name"));
	v->state = ve_state(jstr(o, "status"));
	json_object *rescue = NULL;
	if (v->state == HSP__V1__VE_STATE__VE_STATE_RUNNING &&
	    json_object_object_get_ex(o, "rescue", &rescue) && json_object_get_boolean(rescue))
		v->state = HSP__V1__VE_STATE__VE_STATE_RESCUE;
	v->restarts = (uint32_t)ju64(o, "restarts");
	v->template_ = pb_str(jstr(o, "template"));
	v->hostname = pb_str(jstr(o, "hostname"));
	if (json_object_object_get_ex(o, "usage", &u)) {
		v->usage = xcalloc(1, sizeof(*v->usage));
		hsp__v1__ve_usage__init(v->usage);
		v->usage->memory_bytes = ju64(u, "memory");
		v->usage->cpu_ns = ju64(u, "cpu_ns");
		v->usage->pids = (uint32_t)ju64(u, "pids");
	}
	return v;
}

void report_ves_free(Hsp__V1__VeStatus **ves, size_t n)
{
	for (size_t i = 0; i < n; i++)
		pb_free(ves[i]);
	free(ves);
}

int report_ves(const struct agent_conf *c, Hsp__V1__VeStatus ***ves, size_t *n, hsp_error_t *err)
{
	char *args[] = {"list", "--json", NULL};
	json_object *a = NULL;
	int r = runtime_json(c, args, &a, err);
	if (r < 0)
		return r;
	if (!json_object_is_type(a, json_type_array)) {
		json_object_put(a);
		return hsp_make_error(err, EPROTO, "list --json: not an array");
	}
	*n = json_object_array_length(a);
	*ves = xcalloc(*n, sizeof(**ves));
	for (size_t i = 0; i < *n; i++)
		(*ves)[i] = report_ve_from_json(json_object_array_get_idx(a, i));
	json_object_put(a);
	return 0;
}

/* "10.0.0.5/24" -> "10.0.0.5" */
static char *network_ip(json_object *o)
{
	json_object *net;
	if (!json_object_object_get_ex(o, "network", &net))
		return NULL;
	const char *ip = jstr(net, "ip");
	return *ip ? strndup(ip, strcspn(ip, "/")) : NULL;
}

int report_ve_state(const struct agent_conf *c, const char *name, Hsp__V1__VeStatus **ve, char **ip,
		    hsp_error_t *err)
{
	char *args[] = {"state", (char *)name, "--json", NULL};
	json_object *o = NULL;
	int r = runtime_json(c, args, &o, err);
	if (r < 0)
		return r;
	*ve = report_ve_from_json(o);
	if (ip)
		*ip = network_ip(o);
	json_object_put(o);
	return 0;
}

int report_templates(const struct agent_conf *c, const char *pool, Hsp__V1__Template ***t,
		     size_t *n, hsp_error_t *err)
{
	char *args[] = {"template", "list", "--json", pool ? "--pool" : NULL, (char *)pool, NULL};
	json_object *a = NULL;
	int r = runtime_json(c, args, &a, err);
	if (r < 0)
		return r;
	size_t len = json_object_is_type(a, json_type_array) ? json_object_array_length(a) : 0;
	*t = xcalloc(len, sizeof(**t));
	*n = len;
	for (size_t i = 0; i < len; i++) {
		json_object *o = json_object_array_get_idx(a, i);
		Hsp__V1__Template *tp = xcalloc(1, sizeof(*tp));
		hsp__v1__template__init(tp);
		tp->name = pb_str(jstr(o, "name"));
		tp->os = pb_str(jstr(o, "os"));
		tp->version = pb_str(jstr(o, "version"));
		(*t)[i] = tp;
	}
	json_object_put(a);
	return 0;
}

/* The runtime knows whether this node can checkpoint (its criu, its
 * kernel): `info --json`. */
bool report_has_criu(const struct agent_conf *c)
{
	char *args[] = {"info", "--json", NULL};
	json_object *o = NULL, *cp = NULL, *sup = NULL;
	hsp_error_t err = NULL;
	if (runtime_json(c, args, &o, &err) < 0) {
		hsp_error_release(&err);
		return false;
	}
	bool ok = json_object_object_get_ex(o, "checkpoint", &cp) &&
		  json_object_object_get_ex(cp, "supported", &sup) && json_object_get_boolean(sup);
	json_object_put(o);
	return ok;
}

/* ------------------------------------------------------------ hello */

int report_hello(const struct agent_conf *c, const char *pool, Hsp__V1__Hello **hello,
		 hsp_error_t *err)
{
	Hsp__V1__Hello *h = xcalloc(1, sizeof(*h));
	hsp__v1__hello__init(h);
	/* Without its VEs a hello would tell the controller they are gone:
	 * better no hello (the session retries) than a wrong one. */
	int r = report_ves(c, &h->ves, &h->n_ves, err);
	if (r < 0) {
		pb_free(h);
		return r;
	}
	hsp_error_t terr = NULL;
	if (report_templates(c, pool, &h->templates, &h->n_templates, &terr) < 0) {
		agent_log("templates unknown: %s", terr->msg);
		hsp_error_release(&terr);
	}
	report_capacity(c, &h->capacity);
	h->agent_version = pb_str(AGENT_VERSION);
	h->boot_id = pb_str(c->boot_id);
	h->address = pb_str(c->address);
	if (report_has_criu(c)) {
		h->capabilities = xcalloc(1, sizeof(char *));
		h->capabilities[h->n_capabilities++] = pb_str("criu");
	}
	*hello = h;
	return 0;
}
