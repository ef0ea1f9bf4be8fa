/* node: the Nodes service. */
#define _GNU_SOURCE
#include "hspctl.h"
#include "utils.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NODES "/hsp.v1.Nodes/"

static const Hsp__V1__NodeCapacity no_capacity = HSP__V1__NODE_CAPACITY__INIT;

/* "3/6.0G": CPUs and memory */
static void fmt_capacity(const Hsp__V1__NodeCapacity *c, char *buf, size_t len)
{
	char mem[32];
	c = c ? c : &no_capacity;
	ctl_fmt_size(c->memory_bytes, false, mem, sizeof(mem));
	snprintf(buf, len, "%" PRIu32 "/%s", c->cpus, mem);
}

static void node_list_table(const ProtobufCMessage *m)
{
	static const char *const head[] = {"NAME", "STATE",  "ADDRESS",	  "VES",
					   "CPUS", "MEMORY", "ALLOCATED", "LAST-SEEN"};
	const Hsp__V1__ListNodesResponse *r = (const Hsp__V1__ListNodesResponse *)m;
	struct ctl_table *t = ctl_table_new(8, head);
	int64_t now = time(NULL);
	for (size_t i = 0; i < r->n_nodes; i++) {
		const Hsp__V1__Node *n = r->nodes[i];
		const Hsp__V1__NodeCapacity *cap = n->capacity ? n->capacity : &no_capacity;
		char state[32], ves[16], cpus[16], mem[32], alloc[48], seen[32];
		ctl_fmt_enum(&hsp__v1__node_state__descriptor, n->state, state, sizeof(state));
		snprintf(ves, sizeof(ves), "%" PRIu32, n->ve_count);
		snprintf(cpus, sizeof(cpus), "%" PRIu32, cap->cpus);
		ctl_fmt_size(cap->memory_bytes, true, mem, sizeof(mem));
		fmt_capacity(n->allocated, alloc, sizeof(alloc));
		ctl_fmt_age(n->last_seen, now, seen, sizeof(seen));
		const char *row[] = {n->name, state, n->address, ves, cpus, mem, alloc, seen};
		ctl_table_add(t, row);
	}
	ctl_table_print(t, stdout);
	ctl_table_free(t);
}

static void kv_capacity(const char *prefix, const Hsp__V1__NodeCapacity *c)
{
	char key[32], buf[32];
	c = c ? c : &no_capacity;
	snprintf(key, sizeof(key), "%scpus", prefix);
	snprintf(buf, sizeof(buf), "%" PRIu32, c->cpus);
	ctl_kv(stdout, key, buf);
	snprintf(key, sizeof(key), "%smemory", prefix);
	ctl_fmt_size(c->memory_bytes, true, buf, sizeof(buf));
	ctl_kv(stdout, key, buf);
	snprintf(key, sizeof(key), "%sdisk", prefix);
	ctl_fmt_size(c->disk_bytes, true, buf, sizeof(buf));
	ctl_kv(stdout, key, buf);
}

static void node_show_table(const ProtobufCMessage *m)
{
	const Hsp__V1__Node *n = (const Hsp__V1__Node *)m;
	char buf[64], age[32];
	ctl_kv(stdout, "name", n->name);
	ctl_fmt_enum(&hsp__v1__node_state__descriptor, n->state, buf, sizeof(buf));
	ctl_kv(stdout, "state", buf);
	ctl_kv(stdout, "connected", n->connected ? "yes" : "no");
	ctl_kv(stdout, "address", n->address);
	ctl_kv(stdout, "agent-version", n->agent_version);
	for (size_t i = 0; i < n->n_capabilities; i++)
		ctl_kv(stdout, "capability", n->capabilities[i]);
	snprintf(buf, sizeof(buf), "%" PRIu32, n->ve_count);
	ctl_kv(stdout, "ves", buf);
	kv_capacity("", n->capacity);
	kv_capacity("allocated-", n->allocated);
	snprintf(buf, sizeof(buf), "%.2f", n->load1);
	ctl_kv(stdout, "load1", buf);
	ctl_fmt_size(n->memory_used_bytes, true, buf, sizeof(buf));
	ctl_kv(stdout, "memory-used", buf);
	ctl_fmt_time(n->joined_at, buf, sizeof(buf));
	ctl_kv(stdout, "joined", buf);
	ctl_fmt_time(n->last_seen, buf, sizeof(buf));
	ctl_fmt_age(n->last_seen, time(NULL), age, sizeof(age));
	if (n->last_seen) {
		size_t l = strlen(buf);
		snprintf(buf + l, sizeof(buf) - l, " (%s ago)", age);
	}
	ctl_kv(stdout, "last-seen", buf);
}

static int node_list(struct ctl *g, int argc, char **argv)
{
	static const struct option opts[] = {CTL_COMMON_OPTIONS, {NULL, 0, NULL, 0}};
	Hsp__V1__Empty req = HSP__V1__EMPTY__INIT;
	int c, rc = 0;
	while ((c = ctl_getopt(g, argc, argv, CTL_COMMON_SHORT, opts, "node", &rc)) != -1)
		if (c == -2)
			return rc;
	rc = ctl_args(argc, 0, 0, "node", "list", "takes no arguments");
	if (rc)
		return rc;
	return ctl_query(g, "node list", NODES "List", &req.base,
			 &hsp__v1__list_nodes_response__descriptor, node_list_table);
}

/* show, drain, undrain, remove: NODE [--wait (drain)].  *name NULL when
 * the verb must return the exit code now (--help, a usage error). */
static int node_one(struct ctl *g, int argc, char **argv, const char *verb, bool *wait,
		    const char **name)
{
	static const struct option opts[] = {
	    {"wait", no_argument, NULL, 'w'}, CTL_COMMON_OPTIONS, {NULL, 0, NULL, 0}};
	int c, rc = 0;
	*name = NULL;
	while ((c = ctl_getopt(g, argc, argv, CTL_COMMON_SHORT, opts, "node", &rc)) != -1) {
		if (c == -2)
			return rc;
		if (wait == NULL)
			return ctl_usage("node", "node %s: takes no --wait", verb);
		*wait = true;
	}
	rc = ctl_args(argc, 1, 1, "node", verb, "expected exactly one node name");
	*name = rc ? NULL : argv[optind];
	return rc;
}

static int node_show(struct ctl *g, int argc, char **argv)
{
	Hsp__V1__NodeRef ref = HSP__V1__NODE_REF__INIT;
	const char *name = NULL;
	int rc = node_one(g, argc, argv, "show", NULL, &name);
	if (name == NULL)
		return rc;
	ref.name = (char *)name;
	cleanup_free char *what = hsp_strdup_printf("node show %s", ref.name);
	return ctl_query(g, what, NODES "Get", &ref.base, &hsp__v1__node__descriptor,
			 node_show_table);
}

static int node_drain(struct ctl *g, int argc, char **argv)
{
	Hsp__V1__NodeRef ref = HSP__V1__NODE_REF__INIT;
	bool wait = false;
	const char *name = NULL;
	int rc = node_one(g, argc, argv, "drain", &wait, &name);
	if (name == NULL)
		return rc;
	ref.name = (char *)name;
	cleanup_free char *what = hsp_strdup_printf("node drain %s", ref.name);
	return ctl_operation_call(g, what, NODES "Drain", &ref.base, wait);
}

static int node_undrain(struct ctl *g, int argc, char **argv)
{
	Hsp__V1__NodeRef ref = HSP__V1__NODE_REF__INIT;
	const char *name = NULL;
	int rc = node_one(g, argc, argv, "undrain", NULL, &name);
	if (name == NULL)
		return rc;
	ref.name = (char *)name;
	cleanup_free char *what = hsp_strdup_printf("node undrain %s", ref.name);
	return ctl_query(g, what, NODES "Undrain", &ref.base, &hsp__v1__node__descriptor,
			 node_show_table);
}

static int node_remove(struct ctl *g, int argc, char **argv)
{
	Hsp__V1__NodeRef ref = HSP__V1__NODE_REF__INIT;
	const char *name = NULL;
	int rc = node_one(g, argc, argv, "remove", NULL, &name);
	if (name == NULL)
		return rc;
	ref.name = (char *)name;
	cleanup_free char *what = hsp_strdup_printf("node remove %s", ref.name);
	return ctl_query(g, what, NODES "Remove", &ref.base, &hsp__v1__empty__descriptor, NULL);
}

int cmd_node(struct ctl *g, int argc, char **argv)
{
	static const struct ctl_subverb v[] = {
	    {"list", node_list},       {"show", node_show},	{"drain", node_drain},
	    {"undrain", node_undrain}, {"remove", node_remove},
	};
	return ctl_dispatch(g, "node", v, sizeof(v) / sizeof(v[0]), argc, argv);
}
