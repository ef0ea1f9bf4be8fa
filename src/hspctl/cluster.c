/* cluster: the Cluster service. */
#define _GNU_SOURCE
#include "hspctl.h"

#include <inttypes.h>
#include <stdio.h>

static void info_table(const ProtobufCMessage *m)
{
	const Hsp__V1__ClusterInfo *i = (const Hsp__V1__ClusterInfo *)m;
	char buf[64];
	ctl_kv(stdout, "name", i->name);
	ctl_kv(stdout, "version", i->version);
	ctl_kv(stdout, "whoami", i->whoami);
	ctl_kv(stdout, "ca-fingerprint", i->ca_fingerprint);
	snprintf(buf, sizeof(buf), "%" PRIu32 " (%" PRIu32 " ready)", i->nodes, i->nodes_ready);
	ctl_kv(stdout, "nodes", buf);
	snprintf(buf, sizeof(buf), "%" PRIu32 " (%" PRIu32 " running)", i->ves, i->ves_running);
	ctl_kv(stdout, "ves", buf);
	ctl_fmt_time(i->started_at, buf, sizeof(buf));
	ctl_kv(stdout, "started", buf);
}

static int cluster_info(struct ctl *g, int argc, char **argv)
{
	static const struct option opts[] = {CTL_COMMON_OPTIONS, {NULL, 0, NULL, 0}};
	Hsp__V1__Empty req = HSP__V1__EMPTY__INIT;
	int c, rc = 0;
	while ((c = ctl_getopt(g, argc, argv, CTL_COMMON_SHORT, opts, "cluster", &rc)) != -1)
		if (c == -2)
			return rc;
	rc = ctl_args(argc, 0, 0, "cluster", "info", "takes no arguments");
	if (rc)
		return rc;
	return ctl_query(g, "cluster info", "/hsp.v1.Cluster/Info", &req.base,
			 &hsp__v1__cluster_info__descriptor, info_table);
}

int cmd_cluster(struct ctl *g, int argc, char **argv)
{
	static const struct ctl_subverb v[] = {{"info", cluster_info}};
	return ctl_dispatch(g, "cluster", v, sizeof(v) / sizeof(v[0]), argc, argv);
}
