/* The node side of the cluster's VE network: the bridge every VE of this
 * node plugs into, carrying the cluster's gateway address, so VEs reach
 * their gateway and the agent reaches their sshd.  Netlink through the
 * runtime library: no fork, so safe in this threaded daemon. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "net.h"

struct net_job {
	char bridge[64];
	char cidr[64];
};

static void *network_thread(void *arg)
{
	struct net_job *j = arg;
	hsp_error_t err = NULL;
	if (hsp_net_bridge_gateway(j->bridge, j->cidr, &err) < 0) {
		agent_log("network: bridge %s with %s: %s", j->bridge, j->cidr, err->msg);
		hsp_error_release(&err);
	} else {
		agent_log("network: bridge %s has gateway %s", j->bridge, j->cidr);
	}
	free(j);
	return NULL;
}

void network_ensure_async(const Hsp__V1__ClusterConfig *cfg)
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
	snprintf(j->cidr, sizeof(j->cidr), "%s%s", n->gateway, slash);
	if (agent_thread(network_thread, j) < 0)
		free(j);
}
