/* The node side of the cluster's VE network: the bridge every VE of this
 * node plugs into.  Alone (no uplink) it carries the cluster's gateway
 * address: VEs reach their gateway and the agent their sshd.  On a VE
 * segment shared by all nodes (--ve-uplink), so that a VE keeps its
 * address on any node, the gateway is a router on that segment and the
 * bridge carries the node's own address from the controller.  Netlink
 * through the runtime library: no fork, so safe in this threaded daemon. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "net.h"

struct net_job {
	char bridge[64];
	char cidr[64];
	char uplink[64];
};

static void *network_thread(void *arg)
{
	struct net_job *j = arg;
	hsp_error_t err = NULL;
	if (*j->uplink && hsp_net_bridge_uplink(j->bridge, j->uplink, &err) < 0) {
		agent_log("network: uplink %s into %s: %s", j->uplink, j->bridge, err->msg);
		hsp_error_release(&err);
	}
	if (*j->cidr == '\0') {
		agent_log("network: bridge %s on the VE segment: no address for this node",
			  j->bridge);
	} else if (hsp_net_bridge_gateway(j->bridge, j->cidr, &err) < 0) {
		agent_log("network: bridge %s with %s: %s", j->bridge, j->cidr, err->msg);
		hsp_error_release(&err);
	} else {
		agent_log("network: bridge %s has %s %s", j->bridge,
			  *j->uplink ? "node address" : "gateway", j->cidr);
	}
	free(j);
	return NULL;
}

void network_ensure_async(const Hsp__V1__ClusterConfig *cfg, const char *uplink)
{
	const Hsp__V1__NetworkConfig *n = cfg->network;
	if (n == NULL || *n->subnet == '\0' || *n->gateway == '\0' || *n->bridge == '\0')
		return;
	const char *slash = strchr(n->subnet, '/');
	struct net_job *j = calloc(1, sizeof(*j));
	if (j == NULL || slash == NULL) {
		free(j);
		agent_log("network: cannot use subnet `%s`", n->subnet);
		return;
	}
	snprintf(j->bridge, sizeof(j->bridge), "%s", n->bridge);
	/* With an uplink the gateway is elsewhere on the segment: an address
	 * of ours here would answer for it. */
	if (uplink) {
		snprintf(j->uplink, sizeof(j->uplink), "%s", uplink);
		snprintf(j->cidr, sizeof(j->cidr), "%s", n->node_address);
	} else {
		snprintf(j->cidr, sizeof(j->cidr), "%s%s", n->gateway, slash);
	}
	if (agent_thread(network_thread, j) < 0)
		free(j);
}
