/* VE addresses: one IPv4 subnet for the whole cluster, so a VE keeps its
 * address on any node.  The gateway is the subnet's first host; a VE gets
 * the lowest address no other VE holds. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

static unsigned prefix_len;

int ipam_init(hsp_error_t *err)
{
	if (ctl->o.subnet == NULL)
		return 0;
	char buf[64];
	snprintf(buf, sizeof(buf), "%s", ctl->o.subnet);
	char *slash = strchr(buf, '/');
	char *end = NULL;
	long len = slash ? strtol(slash + 1, &end, 10) : -1;
	struct in_addr a;
	if (slash)
		*slash = '\0';
	if (slash == NULL || *end || len < 8 || len > 30 || inet_pton(AF_INET, buf, &a) != 1)
		return hsp_make_error(err, EINVAL,
				      "invalid --subnet `%s`: an IPv4 CIDR with a prefix of 8-30",
				      ctl->o.subnet);
	prefix_len = (unsigned)len;
	ctl->subnet_mask = len == 0 ? 0 : ~0U << (32 - len);
	ctl->subnet_base = ntohl(a.s_addr) & ctl->subnet_mask;
	ctl->gateway = ctl->subnet_base + 1;
	struct in_addr g = {htonl(ctl->gateway)};
	char gs[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &g, gs, sizeof(gs));
	ctl->gateway_str = strdup(gs);
	return ctl->gateway_str ? 0 : hsp_make_errno(err, ENOMEM, "ipam");
}

static bool taken(uint32_t host)
{
	char want[INET_ADDRSTRLEN];
	struct in_addr a = {htonl(host)};
	inet_ntop(AF_INET, &a, want, sizeof(want));
	size_t wl = strlen(want);
	for (size_t i = 0; i < ctl->n_ves + ctl->n_nodes; i++) {
		const char *ip =
		    i < ctl->n_ves ? ctl->ves[i]->ip : ctl->nodes[i - ctl->n_ves]->pb->ve_address;
		if (strncmp(ip, want, wl) == 0 && (ip[wl] == '/' || ip[wl] == '\0'))
			return true;
	}
	return false;
}

static int format(uint32_t host, char **cidr, hsp_error_t *err)
{
	struct in_addr a = {htonl(host)};
	char s[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &a, s, sizeof(s));
	if (asprintf(cidr, "%s/%u", s, prefix_len) < 0)
		return hsp_make_errno(err, ENOMEM, "ipam");
	return 0;
}

int ipam_alloc_node(char **cidr, hsp_error_t *err)
{
	uint32_t size = ~ctl->subnet_mask + 1;
	for (uint32_t off = size - 2; off >= 2; off--)
		if (!taken(ctl->subnet_base + off))
			return format(ctl->subnet_base + off, cidr, err);
	return hsp_make_error(err, ENOSPC, "no free address left in %s", ctl->o.subnet);
}

int ipam_alloc(char **cidr, hsp_error_t *err)
{
	uint32_t size = ~ctl->subnet_mask + 1;
	for (uint32_t off = 2; off < size - 1; off++) {
		uint32_t host = ctl->subnet_base + off;
		if (!taken(host))
			return format(host, cidr, err);
	}
	return hsp_make_error(err, ENOSPC, "no free address left in %s", ctl->o.subnet);
}
