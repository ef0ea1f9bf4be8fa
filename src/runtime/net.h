/* VE networking over rtnetlink (libnl-route-3, in-process: exec'ing `ip`
 * costs ~27 ms a call).  A VE gets one veth pair: the host end is attached
 * to a bridge in the caller's network namespace, the peer is created
 * directly inside the VE's namespace and configured from within it.
 *
 * Order for a start: the parent clones init (CLONE_NEWNET), calls
 * hsp_net_veth_create() with init's pid while init waits, then releases
 * init, which calls hsp_net_configure_inside() before exec.  Stop deletes
 * the host end with hsp_net_veth_delete() (the peer dies with the VE's
 * namespace, which takes the host end along, so that is only a safety net).
 *
 * All fallible calls return 0 or -errno and set *err. */
#ifndef HSP_NET_H
#define HSP_NET_H

#include <stdbool.h>
#include <sys/types.h>

#include "error.h"

/* Longest interface name the kernel accepts (IFNAMSIZ - 1). */
#define HSP_NET_IFNAME_MAX 15

struct hsp_net_addr {
	int family;		/* AF_INET or AF_INET6 */
	unsigned prefix;	/* 0-32 or 0-128 */
	unsigned char addr[16]; /* network byte order; AF_INET uses the first 4 */
};

/* "10.0.0.5", "fd00::5" -> family and address, prefix set to the full
 * length (32 or 128).  No prefix, zone ("%eth0") or surrounding spaces. */
int hsp_net_parse_ip(const char *s, struct hsp_net_addr *out, hsp_error_t *err);
/* "10.0.0.5/24", "fd00::5/64".  The prefix is required: a bare address
 * defaulting to /32 would leave the gateway off-link and the VE silently
 * without a route.  On error *out is untouched. */
int hsp_net_parse_cidr(const char *s, struct hsp_net_addr *out, hsp_error_t *err);
/* Whether ip (same family) lies in net's prefix, e.g. a gateway in the
 * VE's subnet. */
bool hsp_net_contains(const struct hsp_net_addr *net, const struct hsp_net_addr *ip);

/* The VE's host-side interface name: "hsp" + 10 hex digits of a hash of the
 * runtime instance and the VE name (13 characters: stable across starts,
 * distinct between instances sharing a host, and room for a 2-character
 * suffix).  A collision is not silent: the veth create fails with EEXIST. */
void hsp_net_host_ifname(const char *instance, const char *ve_name,
			 char out[HSP_NET_IFNAME_MAX + 1]);

/* The interface index of a VE veth's host end (even; the VE's end gets the
 * next one), from the host end's name: in [2^30, 2^31), clear of the
 * indexes a kernel allocates, and the same on every node. */
int hsp_net_ifindex(const char *host_if);

/* The MAC address of a VE's eth0: a hash of its name and address, unicast
 * and locally administered.  The same on every node and at every start, so
 * neighbours need no update when a VE restarts or moves with its address. */
void hsp_net_ve_mac(const char *ve_name, const char *cidr, unsigned char mac[6]);

/* 0 if `name` is a name the kernel accepts for an interface. */
int hsp_net_validate_ifname(const char *name, hsp_error_t *err);

/* Creates the bridge if missing and brings it up, in the caller's network
 * namespace.  An existing interface of that name must be a bridge. */
int hsp_net_bridge_ensure(const char *bridge, hsp_error_t *err);
/* The bridge exists, is up and has the address cidr (idempotent). */
int hsp_net_bridge_gateway(const char *bridge, const char *cidr, hsp_error_t *err);
/* Makes uplink a port of bridge (made if missing), up. */
int hsp_net_bridge_uplink(const char *bridge, const char *uplink, hsp_error_t *err);

/* Creates the veth pair host_if <-> peer_if in one request: host_if in the
 * caller's namespace, attached to `bridge` and up; peer_if (down) created
 * directly in the network namespace of target_pid, so its name need only be
 * free there ("eth0" is fine).  The kernel applies the request atomically:
 * on any failure (no such pid, name taken, no such bridge) nothing is left.
 * peer_mac (6 bytes) sets the peer's MAC address; NULL leaves a random one.
 * Needs CAP_NET_ADMIN over both namespaces. */
int hsp_net_veth_create(const char *host_if, const char *peer_if, pid_t target_pid,
			const char *bridge, const unsigned char *peer_mac, hsp_error_t *err);

/* Runs in the VE's network namespace (e.g. in its init before exec): renames
 * ifname to new_name (NULL or the same name: no rename), adds the address
 * `cidr`, brings the interface and lo up and, if gateway is not NULL, adds a
 * default route via it.  IPv6 addresses are added without duplicate address
 * detection, so they are usable at once.  Call once per address family to
 * give an interface both (new_name NULL the second time). */
int hsp_net_configure_inside(const char *ifname, const char *new_name, const char *cidr,
			     const char *gateway, hsp_error_t *err);

/* Announces the IPv4 address of `cidr` (an IPv6 one is left to the VE's
 * own neighbour discovery: 0, nothing sent) from `ifname` in the caller's
 * network namespace: one gratuitous ARP request and one reply, broadcast,
 * with the interface's MAC, over an AF_PACKET socket (CAP_NET_RAW). */
int hsp_net_announce(const char *ifname, const char *cidr, hsp_error_t *err);
/* The same `count` times, `interval_ms` apart, from a child process that
 * joins target_pid's network namespace, so the caller does not wait: the
 * first goes at once.  Returns the child's pid for the caller to reap (its
 * exit status is 0 if every announcement went out), 0 if there was nothing
 * to announce, or -errno. */
pid_t hsp_net_announce_async(pid_t target_pid, const char *ifname, const char *cidr, unsigned count,
			     unsigned interval_ms, hsp_error_t *err);

/* Deletes the host end of a VE's veth pair (the peer goes with it).  A
 * missing interface is success; an interface that is not a veth is refused. */
int hsp_net_veth_delete(const char *host_if, hsp_error_t *err);

#endif
