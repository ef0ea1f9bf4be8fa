#define _GNU_SOURCE
#include "cli.h"
#include "utils.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

int cli_parse_limit(int opt, const char *arg, struct hsp_limits *l, hsp_error_t *err)
{
	int r;
	switch (opt) {
	case OPT_MEMORY:
		r = hsp_parse_size(arg, &l->memory, err);
		l->set |= HSP_LIMIT_MEMORY;
		break;
	case OPT_SWAP:
		r = hsp_parse_size(arg, &l->swap, err);
		l->set |= HSP_LIMIT_SWAP;
		break;
	case OPT_CPUS:
		r = hsp_parse_cpus(arg, &l->cpus_milli, err);
		l->set |= HSP_LIMIT_CPUS;
		break;
	case OPT_CPU_WEIGHT:
		r = hsp_parse_u64(arg, 1, 10000, &l->cpu_weight, "cpu weight", err);
		l->set |= HSP_LIMIT_CPU_WEIGHT;
		break;
	case OPT_PIDS:
		r = hsp_parse_u64(arg, 0, 4194304, &l->pids, "pids limit", err);
		l->set |= HSP_LIMIT_PIDS;
		break;
	case OPT_IO_WEIGHT:
		r = hsp_parse_u64(arg, 1, 10000, &l->io_weight, "io weight", err);
		l->set |= HSP_LIMIT_IO_WEIGHT;
		break;
	case OPT_DISK:
		r = hsp_parse_size(arg, &l->disk, err);
		l->set |= HSP_LIMIT_DISK;
		break;
	default:
		return 0;
	}
	return r < 0 ? r : 1;
}

static void add_u64(json_object *o, const char *k, uint64_t v)
{
	json_object_object_add(o, k, json_object_new_uint64(v));
}

json_object *cli_limits_json(const struct hsp_limits *l)
{
	json_object *o = json_object_new_object();
	if (l->set & HSP_LIMIT_MEMORY)
		add_u64(o, "memory", l->memory);
	if (l->set & HSP_LIMIT_SWAP)
		add_u64(o, "swap", l->swap);
	if (l->set & HSP_LIMIT_CPUS)
		json_object_object_add(o, "cpus", json_object_new_double(l->cpus_milli / 1000.0));
	if (l->set & HSP_LIMIT_CPU_WEIGHT)
		add_u64(o, "cpu_weight", l->cpu_weight);
	if (l->set & HSP_LIMIT_PIDS)
		add_u64(o, "pids", l->pids);
	if (l->set & HSP_LIMIT_IO_WEIGHT)
		add_u64(o, "io_weight", l->io_weight);
	if (l->set & HSP_LIMIT_DISK)
		add_u64(o, "disk", l->disk);
	return o;
}

/* "hybrid;memory=/a;pids=/b" -> {"mode": "hybrid", "memory": "/a", ...} */
static json_object *cgroup_json(const char *spec)
{
	json_object *o = json_object_new_object();
	char *copy = strdup(spec), *save = NULL;
	for (char *tok = strtok_r(copy, ";", &save); tok; tok = strtok_r(NULL, ";", &save)) {
		char *eq = strchr(tok, '=');
		if (eq == NULL) {
			json_object_object_add(o, "mode", json_object_new_string(tok));
			continue;
		}
		*eq = '\0';
		json_object_object_add(o, tok, json_object_new_string(eq + 1));
	}
	free(copy);
	return o;
}

json_object *cli_info_json(const struct hsp_ve_info *i)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "name", json_object_new_string(i->name));
	json_object_object_add(o, "status", json_object_new_string(hsp_ve_status_name(i->status)));
	json_object_object_add(o, "hostname",
			       json_object_new_string(i->hostname ? i->hostname : ""));
	json_object_object_add(o, "template",
			       json_object_new_string(i->template ? i->template : ""));
	json_object_object_add(o, "init_pid", json_object_new_int(i->init_pid));
	json_object_object_add(o, "monitor_pid", json_object_new_int(i->monitor_pid));
	json_object_object_add(o, "started", json_object_new_int64(i->started));
	json_object_object_add(o, "restarts", json_object_new_int((int)i->restarts));
	json_object_object_add(o, "rescue", json_object_new_boolean(i->rescue));
	if (i->last_exit >= 0) {
		int s = i->last_exit;
		char buf[32];
		if (WIFSIGNALED(s))
			snprintf(buf, sizeof(buf), "signal %d", WTERMSIG(s));
		else
			snprintf(buf, sizeof(buf), "exit %d", WEXITSTATUS(s));
		json_object_object_add(o, "last_exit", json_object_new_string(buf));
		if (i->storage_lost)
			json_object_object_add(o, "storage_lost", json_object_new_boolean(true));
	}
	json_object *ids = json_object_new_object();
	add_u64(ids, "base", i->id_base);
	add_u64(ids, "size", HSP_IDMAP_SIZE);
	json_object_object_add(o, "idmap", ids);
	json_object_object_add(o, "limits", cli_limits_json(&i->limits));
	if (i->ip) {
		json_object *net = json_object_new_object();
		json_object_object_add(net, "ip", json_object_new_string(i->ip));
		if (i->gateway)
			json_object_object_add(net, "gateway", json_object_new_string(i->gateway));
		json_object_object_add(net, "bridge", json_object_new_string(i->bridge));
		json_object_object_add(o, "network", net);
	}
	if (i->status != HSP_VE_STOPPED) {
		json_object *u = json_object_new_object();
		add_u64(u, "memory", i->usage.memory);
		add_u64(u, "swap", i->usage.swap);
		add_u64(u, "cpu_ns", i->usage.cpu_ns);
		add_u64(u, "pids", i->usage.pids);
		json_object_object_add(o, "usage", u);
		if (i->cgroup)
			json_object_object_add(o, "cgroup", cgroup_json(i->cgroup));
		if (i->restored.frozen_us) {
			json_object *m = json_object_new_object();
			add_u64(m, "frozen_us", i->restored.frozen_us);
			add_u64(m, "dump_us", i->restored.dump_us);
			add_u64(m, "restore_us", i->restored.restore_us);
			json_object_object_add(o, "restored", m);
		}
	}
	return o;
}

void cli_print_json(json_object *o)
{
	puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
						   JSON_C_TO_STRING_NOSLASHESCAPE));
}

void cli_format_size(uint64_t v, char *buf, size_t len)
{
	static const char units[] = "BKMGT";
	int u = 0;
	double d = (double)v;
	while (d >= 1024 && u < 4) {
		d /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%" PRIu64 "B", v);
	else
		snprintf(buf, len, "%.1f%c", d, units[u]);
}
