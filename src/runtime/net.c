#define _GNU_SOURCE
#include "net.h"
#include "utils.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/if.h>
#include <linux/if_addr.h>
#include <linux/if_packet.h>
#include <linux/rtnetlink.h>
#include <net/ethernet.h>
#include <netinet/if_ether.h>
#include <netlink/addr.h>
#include <netlink/errno.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/bridge.h>
#include <netlink/route/link/veth.h>
#include <netlink/route/route.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* ---- Parsing ---- */

static unsigned family_bits(int family)
{
	return family == AF_INET ? 32 : 128;
}

static int parse_addr(const char *s, size_t len, struct hsp_net_addr *out)
{
	char buf[INET6_ADDRSTRLEN];
	if (len == 0 || len >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, len);
	buf[len] = '\0';
	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET, buf, out->addr) == 1)
		out->family = AF_INET;
	else if (inet_pton(AF_INET6, buf, out->addr) == 1)
		out->family = AF_INET6;
	else
		return -EINVAL;
	out->prefix = family_bits(out->family);
	return 0;
}

int hsp_net_parse_ip(const char *s, struct hsp_net_addr *out, hsp_error_t *err)
{
	struct hsp_net_addr a;
	if (s == NULL || parse_addr(s, strlen(s), &a) < 0)
		return hsp_make_error(err, EINVAL, "invalid IP address `%s`", s ? s : "");
	*out = a;
	return 0;
}

int hsp_net_parse_cidr(const char *s, struct hsp_net_addr *out, hsp_error_t *err)
{
	if (s == NULL)
		s = "";
	const char *slash = strchr(s, '/');
	if (slash == NULL)
		return hsp_make_error(err, EINVAL, "invalid CIDR `%s`: expected ADDRESS/PREFIX", s);
	struct hsp_net_addr a;
	if (parse_addr(s, (size_t)(slash - s), &a) < 0)
		return hsp_make_error(err, EINVAL, "invalid CIDR `%s`: bad address", s);
	const char *p = slash + 1;
	unsigned prefix = 0;
	size_t n = strlen(p);
	/* Digits only, no leading zeros, and short enough not to overflow. */
	bool ok = n >= 1 && n <= 3 && !(n > 1 && p[0] == '0');
	for (size_t i = 0; ok && i < n; i++) {
		ok = p[i] >= '0' && p[i] <= '9';
		prefix = prefix * 10 + (unsigned)(p[i] - '0');
	}
	if (!ok || prefix > family_bits(a.family))
		return hsp_make_error(err, EINVAL, "invalid CIDR `%s`: prefix must be 0-%u", s,
				      family_bits(a.family));
	a.prefix = prefix;
	*out = a;
	return 0;
}

bool hsp_net_contains(const struct hsp_net_addr *net, const struct hsp_net_addr *ip)
{
	if (net->family != ip->family || net->prefix > family_bits(net->family))
		return false;
	unsigned full = net->prefix / 8, rest = net->prefix % 8;
	if (memcmp(net->addr, ip->addr, full) != 0)
		return false;
	if (rest == 0)
		return true;
	unsigned char mask = (unsigned char)(0xff << (8 - rest));
	return (net->addr[full] & mask) == (ip->addr[full] & mask);
}

void hsp_net_host_ifname(const char *instance, const char *ve_name,
			 char out[HSP_NET_IFNAME_MAX + 1])
{
	/* Instances are 8 hex digits and VE names at most 63 bytes. */
	char key[256];
	snprintf(key, sizeof(key), "%s/%s", instance ? instance : "", ve_name);
	snprintf(out, HSP_NET_IFNAME_MAX + 1, "hsp%010llx",
		 (unsigned long long)(hsp_hash64(key) >> 24));
}

int hsp_net_ifindex(const char *host_if)
{
	return (int)(0x40000000U | (uint32_t)(hsp_hash64(host_if) & 0x3ffffffeU));
}

void hsp_net_ve_mac(const char *ve_name, const char *cidr, unsigned char mac[6])
{
	char key[256];
	snprintf(key, sizeof(key), "%s/%s", ve_name, cidr ? cidr : "");
	uint64_t h = hsp_hash64(key);
	for (int i = 0; i < 6; i++)
		mac[i] = (unsigned char)(h >> (56 - 8 * i));
	/* Unicast, locally administered: never an address a vendor made. */
	mac[0] = (unsigned char)((mac[0] & 0xfe) | 0x02);
}

int hsp_net_validate_ifname(const char *name, hsp_error_t *err)
{
	/* The kernel's dev_valid_name(). */
	bool ok = name != NULL && name[0] != '\0' && strlen(name) <= HSP_NET_IFNAME_MAX &&
		  strcmp(name, ".") != 0 && strcmp(name, "..") != 0;
	for (const char *c = name; ok && *c; c++)
		ok = *c != '/' && *c != ':' && *c != ' ' && !(*c >= '\t' && *c <= '\r');
	if (!ok)
		return hsp_make_error(err, EINVAL,
				      "invalid interface name `%s`: 1-%d characters, no "
				      "'/', ':' or spaces",
				      name ? name : "", HSP_NET_IFNAME_MAX);
	return 0;
}

/* ---- rtnetlink ---- */

/* A route socket that remembers the errno of the kernel's last error reply:
 * libnl folds errnos into its own coarser codes (ESRCH and ENOENT are both
 * NLE_OBJ_NOTFOUND). */
struct nl {
	struct nl_sock *sk;
	int kerr;
};

static int record_kernel_error(struct sockaddr_nl *who, struct nlmsgerr *e, void *arg)
{
	(void)who;
	*(int *)arg = -e->error;
	return NL_STOP; /* libnl's default handling from here on */
}

static void nl_closep(struct nl *nl)
{
	if (nl->sk)
		nl_socket_free(nl->sk);
	nl->sk = NULL;
}
#define cleanup_nl __attribute__((cleanup(nl_closep)))

static void nl_link_putp(struct rtnl_link **l)
{
	if (*l)
		rtnl_link_put(*l);
}
#define cleanup_link __attribute__((cleanup(nl_link_putp)))

static void nl_addr_putp(struct nl_addr **a)
{
	if (*a)
		nl_addr_put(*a);
}
#define cleanup_nladdr __attribute__((cleanup(nl_addr_putp)))

static int nle_to_errno(int nle)
{
	switch (nle < 0 ? -nle : nle) {
	case NLE_EXIST:
		return EEXIST;
	case NLE_NOADDR:
		return EADDRNOTAVAIL;
	case NLE_OBJ_NOTFOUND:
		return ENOENT;
	case NLE_NODEV:
		return ENODEV;
	case NLE_INTR:
		return EINTR;
	case NLE_AGAIN:
		return EAGAIN;
	case NLE_BAD_SOCK:
		return EBADF;
	case NLE_NOACCESS:
		return EACCES;
	case NLE_PERM:
		return EPERM;
	case NLE_INVAL:
		return EINVAL;
	case NLE_NOMEM:
		return ENOMEM;
	case NLE_MSGSIZE:
		return EMSGSIZE;
	case NLE_AF_NOSUPPORT:
		return EAFNOSUPPORT;
	case NLE_PROTO_MISMATCH:
		return EPROTONOSUPPORT;
	case NLE_OPNOTSUPP:
		return EOPNOTSUPP;
	case NLE_BUSY:
		return EBUSY;
	case NLE_RANGE:
		return ERANGE;
	default:
		return EIO;
	}
}

/* The errno behind a libnl failure: the kernel's own if it replied with
 * one, else the closest match to libnl's code. */
static int nl_errno(struct nl *nl, int nle)
{
	return nl->kerr > 0 ? nl->kerr : nle_to_errno(nle);
}

static int nl_fail(struct nl *nl, int nle, hsp_error_t *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int nl_fail(struct nl *nl, int nle, hsp_error_t *err, const char *fmt, ...)
{
	char head[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(head, sizeof(head), fmt, ap);
	va_end(ap);
	if (nl->kerr > 0)
		return hsp_make_errno(err, nl->kerr, "%s", head);
	return hsp_make_error(err, nle_to_errno(nle), "%s: %s", head, nl_geterror(nle));
}

static int nl_open(struct nl *nl, hsp_error_t *err)
{
	nl->kerr = 0;
	nl->sk = nl_socket_alloc();
	if (nl->sk == NULL)
		return hsp_make_error(err, ENOMEM, "allocate netlink socket");
	int r = nl_socket_modify_err_cb(nl->sk, NL_CB_CUSTOM, record_kernel_error, &nl->kerr);
	if (r < 0)
		return nl_fail(nl, r, err, "set up netlink socket");
	r = nl_connect(nl->sk, NETLINK_ROUTE);
	if (r < 0)
		return nl_fail(nl, r, err, "connect to rtnetlink");
	return 0;
}

/* Looks a link up by name: -ENODEV (without touching *err) if missing. */
static int get_link(struct nl *nl, const char *name, struct rtnl_link **out, hsp_error_t *err)
{
	nl->kerr = 0;
	int r = rtnl_link_get_kernel(nl->sk, 0, name, out);
	if (r == 0)
		return 0;
	if (nl_errno(nl, r) == ENODEV || nl_errno(nl, r) == ENOENT)
		return -ENODEV;
	return nl_fail(nl, r, err, "look up interface `%s`", name);
}

/* Validates ifname, opens the socket and looks ifname up: -ENODEV
 * (without touching *err) if it is missing. */
static int nl_open_find(struct nl *nl, const char *ifname, struct rtnl_link **link,
			hsp_error_t *err)
{
	int r = hsp_net_validate_ifname(ifname, err);
	if (r == 0)
		r = nl_open(nl, err);
	if (r == 0)
		r = get_link(nl, ifname, link, err);
	return r;
}

static bool link_is(struct rtnl_link *l, const char *kind)
{
	const char *type = rtnl_link_get_type(l);
	return type != NULL && strcmp(type, kind) == 0;
}

/* Sets IFF_UP and, if new_name is not NULL, renames (the kernel renames
 * first, while the link is still down). */
static int link_up(struct nl *nl, struct rtnl_link *orig, const char *new_name, hsp_error_t *err)
{
	cleanup_link struct rtnl_link *change = rtnl_link_alloc();
	if (change == NULL)
		return hsp_make_error(err, ENOMEM, "allocate link");
	if (new_name)
		rtnl_link_set_name(change, new_name);
	rtnl_link_set_flags(change, IFF_UP);
	nl->kerr = 0;
	int r = rtnl_link_change(nl->sk, orig, change, 0);
	if (r < 0) {
		const char *name = rtnl_link_get_name(orig);
		if (new_name)
			return nl_fail(nl, r, err, "rename `%s` to `%s` and bring it up",
				       name ? name : "?", new_name);
		return nl_fail(nl, r, err, "bring up `%s`", name ? name : "?");
	}
	return 0;
}

int hsp_net_bridge_ensure(const char *bridge, hsp_error_t *err)
{
	cleanup_nl struct nl nl = {0};
	cleanup_link struct rtnl_link *link = NULL;
	int r = nl_open_find(&nl, bridge, &link, err);
	if (r == -ENODEV) {
		cleanup_link struct rtnl_link *br = rtnl_link_bridge_alloc();
		if (br == NULL)
			return hsp_make_error(err, ENOMEM, "allocate bridge");
		rtnl_link_set_name(br, bridge);
		rtnl_link_set_flags(br, IFF_UP);
		nl.kerr = 0;
		r = rtnl_link_add(nl.sk, br, NLM_F_CREATE | NLM_F_EXCL);
		if (r == 0)
			return 0;
		if (nl_errno(&nl, r) != EEXIST)
			return nl_fail(&nl, r, err, "create bridge `%s`", bridge);
		/* Someone else made it meanwhile: check it as if found. */
		r = get_link(&nl, bridge, &link, err);
		if (r == -ENODEV)
			return hsp_make_error(err, EAGAIN, "bridge `%s` vanished while created",
					      bridge);
	}
	if (r < 0)
		return r;
	if (!link_is(link, "bridge"))
		return hsp_make_error(err, EEXIST, "interface `%s` exists and is not a bridge",
				      bridge);
	if (rtnl_link_get_flags(link) & IFF_UP)
		return 0;
	return link_up(&nl, link, NULL, err);
}

int hsp_net_veth_create(const char *host_if, const char *peer_if, pid_t target_pid,
			const char *bridge, const unsigned char *peer_mac, hsp_error_t *err)
{
	int r = hsp_net_validate_ifname(host_if, err);
	if (r == 0)
		r = hsp_net_validate_ifname(peer_if, err);
	if (r < 0)
		return r;
	if (target_pid <= 0)
		return hsp_make_error(err, EINVAL, "create veth `%s`: invalid pid %d", host_if,
				      (int)target_pid);
	cleanup_nl struct nl nl = {0};
	cleanup_link struct rtnl_link *br = NULL;
	r = nl_open_find(&nl, bridge, &br, err);
	if (r == -ENODEV)
		return hsp_make_error(err, ENODEV, "create veth `%s`: no bridge `%s`", host_if,
				      bridge);
	if (r < 0)
		return r;
	if (!link_is(br, "bridge"))
		return hsp_make_error(err, EINVAL, "create veth `%s`: `%s` is not a bridge",
				      host_if, bridge);

	cleanup_link struct rtnl_link *veth = rtnl_link_veth_alloc();
	if (veth == NULL)
		return hsp_make_error(err, ENOMEM, "allocate veth");
	rtnl_link_set_name(veth, host_if);
	/* Fixed indexes for both ends (the VE's one above the host's), far above
	 * the small ones a node hands out: criu recreates a restored VE's
	 * eth0 with its old index through a request sent in the node's
	 * namespace, where the kernel looks the index up first, and refuses
	 * if a device of another kind has it (the bridge is often index 2). */
	int ifindex = hsp_net_ifindex(host_if);
	rtnl_link_set_ifindex(veth, ifindex);
	rtnl_link_set_master(veth, rtnl_link_get_ifindex(br));
	rtnl_link_set_flags(veth, IFF_UP);
	/* Owned by veth. */
	struct rtnl_link *peer = rtnl_link_veth_get_peer(veth);
	rtnl_link_set_name(peer, peer_if);
	rtnl_link_set_ifindex(peer, ifindex + 1);
	rtnl_link_set_ns_pid(peer, target_pid);
	if (peer_mac) {
		cleanup_nladdr struct nl_addr *mac = nl_addr_build(AF_LLC, peer_mac, ETH_ALEN);
		if (mac == NULL) {
			rtnl_link_put(peer);
			return hsp_make_error(err, ENOMEM, "allocate MAC address");
		}
		rtnl_link_set_addr(peer, mac);
	}
	rtnl_link_put(peer);
	/* One RTM_NEWLINK: the kernel creates both ends, brings the host end
	 * up and enslaves it, or unregisters everything it made. */
	nl.kerr = 0;
	r = rtnl_link_add(nl.sk, veth, NLM_F_CREATE | NLM_F_EXCL);
	if (r < 0)
		return nl_fail(&nl, r, err, "create veth `%s` (peer `%s` in pid %d's netns)",
			       host_if, peer_if, (int)target_pid);
	return 0;
}

int hsp_net_veth_delete(const char *host_if, hsp_error_t *err)
{
	cleanup_nl struct nl nl = {0};
	cleanup_link struct rtnl_link *link = NULL;
	int r = nl_open_find(&nl, host_if, &link, err);
	if (r == -ENODEV)
		return 0;
	if (r < 0)
		return r;
	if (!link_is(link, "veth"))
		return hsp_make_error(err, EINVAL, "delete `%s`: not a veth", host_if);
	nl.kerr = 0;
	r = rtnl_link_delete(nl.sk, link);
	/* Gone meanwhile, e.g. with its VE's namespace. */
	if (r < 0 && nl_errno(&nl, r) != ENODEV && nl_errno(&nl, r) != ENOENT)
		return nl_fail(&nl, r, err, "delete veth `%s`", host_if);
	return 0;
}

static struct nl_addr *to_nl_addr(const struct hsp_net_addr *a)
{
	size_t len = a->family == AF_INET ? 4 : 16;
	struct nl_addr *n = nl_addr_build(a->family, a->addr, len);
	if (n)
		nl_addr_set_prefixlen(n, (int)a->prefix);
	return n;
}

static int add_address(struct nl *nl, int ifindex, const struct hsp_net_addr *a, const char *cidr,
		       const char *ifname, hsp_error_t *err)
{
	cleanup_nladdr struct nl_addr *local = to_nl_addr(a);
	struct rtnl_addr *addr = rtnl_addr_alloc();
	if (local == NULL || addr == NULL) {
		if (addr)
			rtnl_addr_put(addr);
		return hsp_make_error(err, ENOMEM, "allocate address");
	}
	rtnl_addr_set_ifindex(addr, ifindex);
	int r = rtnl_addr_set_local(addr, local);
	if (r == 0 && a->family == AF_INET6)
		rtnl_addr_set_flags(addr, IFA_F_NODAD);
	nl->kerr = 0;
	if (r == 0)
		r = rtnl_addr_add(nl->sk, addr, NLM_F_EXCL);
	rtnl_addr_put(addr);
	if (r < 0)
		return nl_fail(nl, r, err, "add address %s to `%s`", cidr, ifname);
	return 0;
}

/* The node side of a VE network: the bridge exists, is up and carries the
 * gateway address (cidr, e.g. 10.1.0.1/24), so the node reaches its VEs and
 * they reach their gateway.  Idempotent: an address already there is fine. */
int hsp_net_bridge_gateway(const char *bridge, const char *cidr, hsp_error_t *err)
{
	struct hsp_net_addr a;
	int r = hsp_net_parse_cidr(cidr, &a, err);
	if (r == 0)
		r = hsp_net_bridge_ensure(bridge, err);
	if (r < 0)
		return r;
	cleanup_nl struct nl nl = {0};
	cleanup_link struct rtnl_link *link = NULL;
	r = nl_open_find(&nl, bridge, &link, err);
	if (r < 0)
		return r;
	hsp_error_t e = NULL;
	r = add_address(&nl, rtnl_link_get_ifindex(link), &a, cidr, bridge, &e);
	if (r == -EEXIST) {
		hsp_error_release(&e);
		return 0;
	}
	if (r < 0) {
		hsp_make_error(err, e->status, "%s", e->msg);
		hsp_error_release(&e);
	}
	return r;
}

/* A node on a shared VE segment: its uplink (a NIC, VLAN or veth onto the
 * segment) becomes a port of the bridge, up.  Idempotent. */
int hsp_net_bridge_uplink(const char *bridge, const char *uplink, hsp_error_t *err)
{
	int r = hsp_net_validate_ifname(uplink, err);
	if (r == 0)
		r = hsp_net_bridge_ensure(bridge, err);
	if (r < 0)
		return r;
	cleanup_nl struct nl nl = {0};
	cleanup_link struct rtnl_link *br = NULL;
	cleanup_link struct rtnl_link *up = NULL;
	r = nl_open_find(&nl, bridge, &br, err);
	if (r == 0)
		r = get_link(&nl, uplink, &up, err);
	if (r < 0)
		return r;
	if (rtnl_link_get_master(up) == rtnl_link_get_ifindex(br) &&
	    (rtnl_link_get_flags(up) & IFF_UP))
		return 0;
	cleanup_link struct rtnl_link *change = rtnl_link_alloc();
	if (change == NULL)
		return hsp_make_error(err, ENOMEM, "allocate link");
	rtnl_link_set_master(change, rtnl_link_get_ifindex(br));
	rtnl_link_set_flags(change, IFF_UP);
	nl.kerr = 0;
	r = rtnl_link_change(nl.sk, up, change, 0);
	return r < 0 ? nl_fail(&nl, r, err, "attach `%s` to bridge `%s`", uplink, bridge) : 0;
}

static int add_default_route(struct nl *nl, int ifindex, const struct hsp_net_addr *gw,
			     const char *gateway, hsp_error_t *err)
{
	struct hsp_net_addr any = {.family = gw->family, .prefix = 0};
	cleanup_nladdr struct nl_addr *dst = to_nl_addr(&any);
	cleanup_nladdr struct nl_addr *via = to_nl_addr(gw);
	struct rtnl_route *route = rtnl_route_alloc();
	struct rtnl_nexthop *nh = rtnl_route_nh_alloc();
	if (dst == NULL || via == NULL || route == NULL || nh == NULL) {
		if (route)
			rtnl_route_put(route);
		if (nh)
			rtnl_route_nh_free(nh);
		return hsp_make_error(err, ENOMEM, "allocate route");
	}
	rtnl_route_set_family(route, (uint8_t)gw->family);
	rtnl_route_set_table(route, RT_TABLE_MAIN);
	rtnl_route_set_protocol(route, RTPROT_BOOT);
	rtnl_route_set_scope(route, RT_SCOPE_UNIVERSE);
	rtnl_route_set_type(route, RTN_UNICAST);
	int r = rtnl_route_set_dst(route, dst);
	rtnl_route_nh_set_ifindex(nh, ifindex);
	rtnl_route_nh_set_gateway(nh, via);
	rtnl_route_add_nexthop(route, nh); /* owned by route now */
	nl->kerr = 0;
	if (r == 0)
		r = rtnl_route_add(nl->sk, route, NLM_F_EXCL);
	rtnl_route_put(route);
	if (r < 0)
		return nl_fail(nl, r, err, "add default route via %s", gateway);
	return 0;
}

int hsp_net_configure_inside(const char *ifname, const char *new_name, const char *cidr,
			     const char *gateway, hsp_error_t *err)
{
	struct hsp_net_addr a, gw;
	int r = new_name ? hsp_net_validate_ifname(new_name, err) : 0;
	if (r == 0)
		r = hsp_net_parse_cidr(cidr, &a, err);
	if (r == 0 && gateway)
		r = hsp_net_parse_ip(gateway, &gw, err);
	if (r < 0)
		return r;
	if (gateway && gw.family != a.family)
		return hsp_make_error(err, EINVAL, "gateway %s and address %s: different families",
				      gateway, cidr);
	if (new_name && ifname && strcmp(new_name, ifname) == 0)
		new_name = NULL;

	cleanup_nl struct nl nl = {0};
	cleanup_link struct rtnl_link *link = NULL;
	r = nl_open_find(&nl, ifname, &link, err);
	if (r == -ENODEV)
		return hsp_make_error(err, ENODEV, "no interface `%s`", ifname);
	if (r < 0)
		return r;
	int ifindex = rtnl_link_get_ifindex(link);
	const char *name = new_name ? new_name : ifname;

	r = link_up(&nl, link, new_name, err);
	if (r == 0)
		r = add_address(&nl, ifindex, &a, cidr, name, err);
	if (r < 0)
		return r;

	/* lo: ifindex 1 in every namespace. */
	cleanup_link struct rtnl_link *lo = rtnl_link_alloc();
	if (lo == NULL)
		return hsp_make_error(err, ENOMEM, "allocate link");
	rtnl_link_set_ifindex(lo, 1);
	rtnl_link_set_name(lo, "lo");
	r = link_up(&nl, lo, NULL, err);
	if (r == 0 && gateway)
		r = add_default_route(&nl, ifindex, &gw, gateway, err);
	return r;
}

/* ---- Gratuitous ARP ---- */

/* One frame of an announcement, broadcast: who-has and is-at both name the
 * sender's own address, so every neighbour that knows it updates its entry
 * and those that accept gratuitous ARP learn it. */
static int send_arp(int sk, int ifindex, const unsigned char mac[ETH_ALEN],
		    const unsigned char ip[4], unsigned short op)
{
	struct ether_arp a = {0};
	a.arp_hrd = htons(ARPHRD_ETHER);
	a.arp_pro = htons(ETHERTYPE_IP);
	a.arp_hln = ETH_ALEN;
	a.arp_pln = 4;
	a.arp_op = htons(op);
	memcpy(a.arp_sha, mac, ETH_ALEN);
	memcpy(a.arp_spa, ip, 4);
	memcpy(a.arp_tpa, ip, 4);
	/* Linux takes a reply as gratuitous only if its target hardware
	 * address is the sender's; a request leaves it zero (RFC 5227). */
	if (op == ARPOP_REPLY)
		memcpy(a.arp_tha, mac, ETH_ALEN);
	struct sockaddr_ll to = {
	    .sll_family = AF_PACKET,
	    .sll_protocol = htons(ETH_P_ARP),
	    .sll_ifindex = ifindex,
	    .sll_halen = ETH_ALEN,
	};
	memset(to.sll_addr, 0xff, ETH_ALEN);
	if (sendto(sk, &a, sizeof(a), 0, (struct sockaddr *)&to, sizeof(to)) < 0)
		return -errno;
	return 0;
}

int hsp_net_announce(const char *ifname, const char *cidr, hsp_error_t *err)
{
	struct hsp_net_addr a;
	int r = hsp_net_validate_ifname(ifname, err);
	if (r == 0)
		r = hsp_net_parse_cidr(cidr, &a, err);
	if (r < 0 || a.family != AF_INET)
		return r;
	cleanup_close int sk = socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, htons(ETH_P_ARP));
	if (sk < 0)
		return hsp_make_errno(err, errno, "announce %s: packet socket", cidr);
	struct ifreq ifr = {0};
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	if (ioctl(sk, SIOCGIFINDEX, &ifr) < 0)
		return hsp_make_errno(err, errno, "announce %s: interface `%s`", cidr, ifname);
	int ifindex = ifr.ifr_ifindex;
	if (ioctl(sk, SIOCGIFHWADDR, &ifr) < 0)
		return hsp_make_errno(err, errno, "announce %s: address of `%s`", cidr, ifname);
	unsigned char mac[ETH_ALEN];
	memcpy(mac, ifr.ifr_hwaddr.sa_data, ETH_ALEN);
	r = send_arp(sk, ifindex, mac, a.addr, ARPOP_REQUEST);
	if (r == 0)
		r = send_arp(sk, ifindex, mac, a.addr, ARPOP_REPLY);
	if (r < 0)
		return hsp_make_errno(err, -r, "announce %s on `%s`", cidr, ifname);
	return 0;
}

pid_t hsp_net_announce_async(pid_t target_pid, const char *ifname, const char *cidr, unsigned count,
			     unsigned interval_ms, hsp_error_t *err)
{
	struct hsp_net_addr a;
	int r = hsp_net_validate_ifname(ifname, err);
	if (r == 0)
		r = hsp_net_parse_cidr(cidr, &a, err);
	if (r < 0 || a.family != AF_INET || count == 0)
		return r;
	cleanup_close int pidfd = (int)syscall(SYS_pidfd_open, target_pid, 0);
	if (pidfd < 0)
		return hsp_make_errno(err, errno, "announce %s: pid %d", cidr, (int)target_pid);
	pid_t pid = fork();
	if (pid < 0)
		return hsp_make_errno(err, errno, "announce %s: fork", cidr);
	if (pid > 0)
		return pid;
	/* Outside the VE (its processes cannot see or signal this one), in
	 * its network namespace only.  The caller's files, such as a
	 * monitor's locks, must not outlive the caller here. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (setns(pidfd, CLONE_NEWNET) < 0)
		_exit(1);
	syscall(SYS_close_range, 3, ~0U, 0);
	struct timespec gap = {.tv_sec = interval_ms / 1000,
			       .tv_nsec = (long)(interval_ms % 1000) * 1000000L};
	int failed = 0;
	for (unsigned i = 0; i < count; i++) {
		if (i > 0)
			nanosleep(&gap, NULL);
		failed |= hsp_net_announce(ifname, cidr, NULL) < 0;
	}
	_exit(failed);
}
