/* Network module: address parsing and interface names (pure), and a live
 * veth/bridge round trip inside network namespaces the test creates itself
 * (never the host's). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netlink/netlink.h>
#include <netlink/route/link.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <netinet/if_ether.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "net.h"
#include "utils.h"

/* ---- pure ---- */

static void cidr_ok(const char *s, int family, unsigned prefix, const char *addr)
{
	hsp_error_t err = NULL;
	struct hsp_net_addr a;
	ck_assert_msg(hsp_net_parse_cidr(s, &a, &err) == 0, "`%s`: %s", s, err ? err->msg : "");
	ck_assert_int_eq(a.family, family);
	ck_assert_uint_eq(a.prefix, prefix);
	unsigned char want[16] = {0};
	ck_assert_int_eq(inet_pton(family, addr, want), 1);
	ck_assert_mem_eq(a.addr, want, family == AF_INET ? 4 : 16);
}

static void cidr_bad(const char *s)
{
	hsp_error_t err = NULL;
	struct hsp_net_addr a = {.family = 12345};
	ck_assert_msg(hsp_net_parse_cidr(s, &a, &err) == -EINVAL, "`%s` accepted", s ? s : "NULL");
	ck_assert_ptr_nonnull(err);
	ck_assert_msg(strstr(err->msg, "invalid CIDR `") != NULL, "%s", err->msg);
	ck_assert_int_eq(a.family, 12345); /* untouched on error */
	hsp_error_release(&err);
}

START_TEST(parse_cidr)
{
	cidr_ok("10.0.0.5/24", AF_INET, 24, "10.0.0.5");
	cidr_ok("10.0.0.1/32", AF_INET, 32, "10.0.0.1");
	cidr_ok("0.0.0.0/0", AF_INET, 0, "0.0.0.0");
	cidr_ok("192.168.1.1/8", AF_INET, 8, "192.168.1.1");
	cidr_ok("fd00::5/64", AF_INET6, 64, "fd00::5");
	cidr_ok("::1/128", AF_INET6, 128, "::1");
	cidr_ok("2001:db8::1:2/48", AF_INET6, 48, "2001:db8::1:2");
	cidr_ok("::ffff:10.0.0.1/96", AF_INET6, 96, "::ffff:10.0.0.1");

	cidr_bad("10.0.0.1/33");
	cidr_bad("300.1.1.1/24");
	cidr_bad("abc");
	cidr_bad("");
	cidr_bad(NULL);
	cidr_bad("10.0.0.1"); /* the prefix is required */
	cidr_bad("10.0.0.1/");
	cidr_bad("10.0.0.1/-1");
	cidr_bad("10.0.0.1/+8");
	cidr_bad("10.0.0.1/024");
	cidr_bad("10.0.0.1/24/8");
	cidr_bad("10.0.0.1/24 ");
	cidr_bad(" 10.0.0.1/24");
	cidr_bad("10.0.0.1/4294967320");
	cidr_bad("/24");
	cidr_bad("10.0.0/24");
	cidr_bad("10.0.0.01/24");
	cidr_bad("fd00::5/129");
	cidr_bad("fd00::5%eth0/64");
	cidr_bad("fd00:::5/64");
	cidr_bad("1111:2222:3333:4444:5555:6666:7777:8888:9999/64");

	hsp_error_t err = NULL;
	struct hsp_net_addr a;
	hsp_net_parse_cidr("10.0.0.1/33", &a, &err);
	ck_assert_str_eq(err->msg, "invalid CIDR `10.0.0.1/33`: prefix must be 0-32");
	hsp_error_release(&err);
	hsp_net_parse_cidr("10.0.0.1", &a, &err);
	ck_assert_str_eq(err->msg, "invalid CIDR `10.0.0.1`: expected ADDRESS/PREFIX");
	hsp_error_release(&err);
}
END_TEST

START_TEST(parse_ip)
{
	hsp_error_t err = NULL;
	struct hsp_net_addr a;
	ck_assert_int_eq(hsp_net_parse_ip("10.77.0.1", &a, &err), 0);
	ck_assert_int_eq(a.family, AF_INET);
	ck_assert_uint_eq(a.prefix, 32);
	ck_assert_int_eq(a.addr[0], 10);
	ck_assert_int_eq(a.addr[3], 1);
	ck_assert_int_eq(hsp_net_parse_ip("fe80::1", &a, &err), 0);
	ck_assert_int_eq(a.family, AF_INET6);
	ck_assert_uint_eq(a.prefix, 128);

	static const char *const bad[] = {"",	    "abc",	  "300.1.1.1", "10.0.0.1/24",
					  "10.0.0", "10.0.0.1.2", "1.2.3.4 ",  "fe80::1%lo",
					  "::g",    "0x0a.0.0.1"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(hsp_net_parse_ip(bad[i], &a, &err) == -EINVAL, "`%s` accepted",
			      bad[i]);
		char want[64];
		snprintf(want, sizeof(want), "invalid IP address `%s`", bad[i]);
		ck_assert_str_eq(err->msg, want);
		hsp_error_release(&err);
	}
	ck_assert_int_eq(hsp_net_parse_ip(NULL, &a, &err), -EINVAL);
	hsp_error_release(&err);
}
END_TEST

START_TEST(contains)
{
	hsp_error_t err = NULL;
	struct hsp_net_addr net, ip;
	ck_assert_int_eq(hsp_net_parse_cidr("10.77.0.2/24", &net, &err), 0);
	ck_assert_int_eq(hsp_net_parse_ip("10.77.0.1", &ip, &err), 0);
	ck_assert(hsp_net_contains(&net, &ip));
	ck_assert_int_eq(hsp_net_parse_ip("10.77.1.1", &ip, &err), 0);
	ck_assert(!hsp_net_contains(&net, &ip));
	ck_assert_int_eq(hsp_net_parse_cidr("10.77.0.2/23", &net, &err), 0);
	ck_assert(hsp_net_contains(&net, &ip));
	ck_assert_int_eq(hsp_net_parse_cidr("0.0.0.0/0", &net, &err), 0);
	ck_assert(hsp_net_contains(&net, &ip));
	ck_assert_int_eq(hsp_net_parse_ip("fd77::1", &ip, &err), 0);
	ck_assert(!hsp_net_contains(&net, &ip)); /* other family */
	ck_assert_int_eq(hsp_net_parse_cidr("fd77::2/64", &net, &err), 0);
	ck_assert(hsp_net_contains(&net, &ip));
	ck_assert_int_eq(hsp_net_parse_cidr("fd77::2/127", &net, &err), 0);
	ck_assert(!hsp_net_contains(&net, &ip));
	ck_assert_int_eq(hsp_net_parse_cidr("fd77::2/126", &net, &err), 0);
	ck_assert(hsp_net_contains(&net, &ip));
}
END_TEST

START_TEST(host_ifname)
{
	char a[HSP_NET_IFNAME_MAX + 1], b[HSP_NET_IFNAME_MAX + 1];
	hsp_net_host_ifname("0123abcd", "web1", a);
	hsp_net_host_ifname("0123abcd", "web1", b);
	ck_assert_str_eq(a, b); /* stable */
	ck_assert_uint_eq(strlen(a), 13);
	ck_assert_int_eq(strncmp(a, "hsp", 3), 0);
	ck_assert_uint_eq(strspn(a + 3, "0123456789abcdef"), 10);
	ck_assert_int_eq(hsp_net_validate_ifname(a, NULL), 0);
	hsp_net_host_ifname("0123abcd", "web2", b);
	ck_assert_str_ne(a, b);
	hsp_net_host_ifname("0123abce", "web1", b); /* another instance */
	ck_assert_str_ne(a, b);
	char longname[64];
	memset(longname, 'x', 63);
	longname[63] = '\0';
	hsp_net_host_ifname("0123abcd", longname, b);
	ck_assert_uint_eq(strlen(b), 13);
}
END_TEST

START_TEST(ve_mac)
{
	unsigned char a[6], b[6];
	hsp_net_ve_mac("web1", "10.0.0.2/24", a);
	hsp_net_ve_mac("web1", "10.0.0.2/24", b);
	ck_assert_mem_eq(a, b, 6);	      /* stable */
	ck_assert_uint_eq(a[0] & 0x03, 0x02); /* unicast, locally administered */
	hsp_net_ve_mac("web2", "10.0.0.2/24", b);
	ck_assert_int_ne(memcmp(a, b, 6), 0);
	hsp_net_ve_mac("web1", "10.0.0.3/24", b);
	ck_assert_int_ne(memcmp(a, b, 6), 0);
	/* Every first byte comes out unicast and local. */
	for (int i = 0; i < 256; i++) {
		char name[16];
		snprintf(name, sizeof(name), "ve%d", i);
		hsp_net_ve_mac(name, "10.0.0.2/24", b);
		ck_assert_uint_eq(b[0] & 0x03, 0x02);
	}
}
END_TEST

START_TEST(validate_ifname)
{
	hsp_error_t err = NULL;
	ck_assert_int_eq(hsp_net_validate_ifname("eth0", &err), 0);
	ck_assert_int_eq(hsp_net_validate_ifname("a23456789012345", &err), 0);
	static const char *const bad[] = {"",	 ".",	"..",  "a234567890123456",
					  "a/b", "a:1", "a b", "a\tb"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(hsp_net_validate_ifname(bad[i], &err) == -EINVAL, "`%s` accepted",
			      bad[i]);
		ck_assert_ptr_nonnull(strstr(err->msg, "invalid interface name"));
		hsp_error_release(&err);
	}
	ck_assert_int_eq(hsp_net_validate_ifname(NULL, &err), -EINVAL);
	hsp_error_release(&err);
}
END_TEST

/* ---- live, in private network namespaces ---- */

/* The "host" and "VE" run in forked processes (Check's assertions belong
 * to the test process): they report failures on stderr and exit 1. */
static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "test_net: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	_exit(1);
}

#define NET_OK(call)                                                                               \
	do {                                                                                       \
		hsp_error_t e_ = NULL;                                                             \
		if ((call) < 0)                                                                    \
			die("%s: %s", #call, e_ ? e_->msg : "");                                   \
	} while (0)
#define ERR (&e_)

static void require_root(void)
{
	if (geteuid() != 0) {
		fprintf(stderr, "test_net: skipping, needs root\n");
		exit(0); /* Check counts a clean exit of a forked test as a pass */
	}
}

static int wait_status(pid_t pid)
{
	int st;
	if (waitpid(pid, &st, 0) != pid)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Runs fn in a child with a network namespace of its own; returns its
 * exit status. */
static int in_private_netns(void (*fn)(void))
{
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		if (unshare(CLONE_NEWNET) < 0)
			die("unshare(CLONE_NEWNET): %s", strerror(errno));
		fn();
		_exit(0);
	}
	return wait_status(pid);
}

static void write_proc(const char *path, const char *value)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, value, strlen(value)) < 0)
		die("write %s: %s", path, strerror(errno));
	close(fd);
}

static bool has_address(const char *ifname, int family, const char *addr)
{
	struct ifaddrs *ifa_list;
	if (getifaddrs(&ifa_list) < 0)
		return false;
	bool found = false;
	for (struct ifaddrs *i = ifa_list; i && !found; i = i->ifa_next) {
		if (i->ifa_addr == NULL || i->ifa_addr->sa_family != family ||
		    strcmp(i->ifa_name, ifname) != 0)
			continue;
		char buf[INET6_ADDRSTRLEN];
		const void *p =
		    family == AF_INET
			? (const void *)&((struct sockaddr_in *)i->ifa_addr)->sin_addr
			: (const void *)&((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr;
		found = inet_ntop(family, p, buf, sizeof(buf)) && strcmp(buf, addr) == 0;
	}
	freeifaddrs(ifa_list);
	return found;
}

/* Whether /proc/net/route (this namespace's) has 0.0.0.0/0 via gw on ifname. */
static bool has_default_route4(const char *ifname, const char *gw)
{
	FILE *f = fopen("/proc/net/route", "re");
	if (f == NULL)
		return false;
	struct in_addr want;
	inet_pton(AF_INET, gw, &want);
	char line[256], ifn[32];
	unsigned dst, via, mask;
	bool found = false;
	while (!found && fgets(line, sizeof(line), f))
		found =
		    sscanf(line, "%31s %x %x %*x %*d %*d %*d %x", ifn, &dst, &via, &mask) == 4 &&
		    strcmp(ifn, ifname) == 0 && dst == 0 && mask == 0 && via == want.s_addr;
	fclose(f);
	return found;
}

/* /proc/net/ipv6_route: dst, dst_len, src, src_len, next hop, ..., device. */
static bool has_default_route6(const char *ifname, const char *gw)
{
	FILE *f = fopen("/proc/net/ipv6_route", "re");
	if (f == NULL)
		return false;
	unsigned char want[16];
	inet_pton(AF_INET6, gw, want);
	char hex[33];
	for (int i = 0; i < 16; i++)
		snprintf(hex + 2 * i, 3, "%02x", want[i]);
	char dst[33], nh[33], ifn[32];
	unsigned dst_len;
	bool found = false;
	while (!found &&
	       fscanf(f, "%32s %x %*s %*s %32s %*s %*s %*s %*s %31s", dst, &dst_len, nh, ifn) == 4)
		found = strcmp(dst, "00000000000000000000000000000000") == 0 && dst_len == 0 &&
			strcmp(nh, hex) == 0 && strcmp(ifn, ifname) == 0;
	fclose(f);
	return found;
}

static socklen_t make_sockaddr(struct sockaddr_storage *ss, int family, const char *addr,
			       uint16_t port)
{
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		struct sockaddr_in *s = (struct sockaddr_in *)ss;
		s->sin_family = AF_INET;
		s->sin_port = htons(port);
		inet_pton(AF_INET, addr, &s->sin_addr);
		return sizeof(*s);
	}
	struct sockaddr_in6 *s = (struct sockaddr_in6 *)ss;
	s->sin6_family = AF_INET6;
	s->sin6_port = htons(port);
	inet_pton(AF_INET6, addr, &s->sin6_addr);
	return sizeof(*s);
}

static int listen_on(int family, const char *addr, uint16_t port)
{
	struct sockaddr_storage ss;
	socklen_t len = make_sockaddr(&ss, family, addr, port);
	int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 4) < 0)
		die("listen on %s: %s", addr, strerror(errno));
	return fd;
}

/* Connects (timing out after 5 s) and exchanges one byte each way. */
static void talk_to(int family, const char *addr, uint16_t port)
{
	struct sockaddr_storage ss;
	socklen_t len = make_sockaddr(&ss, family, addr, port);
	int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct timeval tv = {.tv_sec = 5};
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0)
		die("socket: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&ss, len) < 0)
		die("connect to %s port %u: %s", addr, port, strerror(errno));
	char c = 'v';
	if (write(fd, &c, 1) != 1 || read(fd, &c, 1) != 1 || c != 'h')
		die("exchange with %s: %s", addr, strerror(errno));
	close(fd);
}

static void serve_one(int lfd)
{
	int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	char c;
	if (fd < 0 || read(fd, &c, 1) != 1 || c != 'v' || write(fd, "h", 1) != 1)
		die("serve: %s", strerror(errno));
	close(fd);
	close(lfd);
}

/* The VE: a namespace of its own, configured from inside once the host
 * has made the veth.  `go` closes when it has. */
static void ve_main(int ready, int go)
{
	/* As a VE's init: a user namespace too, so only the capabilities held
	 * there (CAP_NET_ADMIN over its own netns) count.  Unmapped ids are
	 * fine, capabilities last until exec. */
	if (unshare(CLONE_NEWUSER | CLONE_NEWNET) < 0)
		die("VE: unshare: %s", strerror(errno));
	if (write(ready, "r", 1) != 1)
		die("VE: report ready");
	close(ready);
	char c;
	if (read(go, &c, 1) != 1)
		die("VE: host gave up");
	close(go);

	NET_OK(hsp_net_configure_inside("ve0", "eth0", "10.77.0.2/24", "10.77.0.1", ERR));
	NET_OK(hsp_net_configure_inside("eth0", NULL, "fd77::2/64", "fd77::1", ERR));
	if (if_nametoindex("ve0") != 0 || if_nametoindex("eth0") == 0)
		die("VE: ve0 not renamed to eth0");
	unsigned flags_ok = 0;
	struct ifaddrs *ifa_list, *i;
	if (getifaddrs(&ifa_list) == 0) {
		for (i = ifa_list; i; i = i->ifa_next)
			if ((strcmp(i->ifa_name, "eth0") == 0 || strcmp(i->ifa_name, "lo") == 0) &&
			    (i->ifa_flags & IFF_UP))
				flags_ok |= i->ifa_name[0] == 'e' ? 1 : 2;
		freeifaddrs(ifa_list);
	}
	if (flags_ok != 3)
		die("VE: eth0 and lo not both up (%u)", flags_ok);
	if (!has_address("eth0", AF_INET, "10.77.0.2") || !has_address("eth0", AF_INET6, "fd77::2"))
		die("VE: eth0 lacks its addresses");
	if (!has_default_route4("eth0", "10.77.0.1"))
		die("VE: no default route via 10.77.0.1");
	if (!has_default_route6("eth0", "fd77::1"))
		die("VE: no IPv6 default route via fd77::1");

	/* Configuring again fails cleanly: the route and address exist. */
	hsp_error_t e = NULL;
	if (hsp_net_configure_inside("eth0", NULL, "10.77.0.2/24", NULL, &e) != -EEXIST)
		die("VE: second address add: %s", e ? e->msg : "succeeded");
	hsp_error_release(&e);
	if (hsp_net_configure_inside("nope0", "eth1", "10.77.0.3/24", NULL, &e) != -ENODEV ||
	    strcmp(e->msg, "no interface `nope0`") != 0)
		die("VE: missing interface: %s", e ? e->msg : "succeeded");
	hsp_error_release(&e);
	if (hsp_net_configure_inside("eth0", NULL, "10.77.0.2/24", "fd77::1", &e) != -EINVAL)
		die("VE: mixed families accepted");
	hsp_error_release(&e);

	/* Real packets over the bridge, both families. */
	talk_to(AF_INET, "10.77.0.1", 7777);
	talk_to(AF_INET6, "fd77::1", 7777);
	/* And the host's loopback is not ours. */
	if (has_address("lo", AF_INET, "10.77.0.1"))
		die("VE: sees the host side's address");
}

/* The ifindex of ifname's master, from rtnetlink: this namespace's sysfs
 * is not mounted anywhere. */
static int master_of(const char *ifname)
{
	struct nl_sock *sk = nl_socket_alloc();
	struct rtnl_link *link = NULL;
	int master = -1;
	if (sk && nl_connect(sk, NETLINK_ROUTE) == 0 &&
	    rtnl_link_get_kernel(sk, 0, ifname, &link) == 0) {
		master = rtnl_link_get_master(link);
		rtnl_link_put(link);
	}
	if (sk)
		nl_socket_free(sk);
	return master;
}

static pid_t gone_pid(void)
{
	pid_t pid = fork();
	if (pid == 0)
		_exit(0);
	waitpid(pid, NULL, 0);
	return pid;
}

static void host_main(void)
{
	NET_OK(hsp_net_bridge_ensure("hspt0", ERR));
	NET_OK(hsp_net_bridge_ensure("hspt0", ERR)); /* idempotent */
	/* ARP retransmits are 1 s by default: keep a lost first probe cheap. */
	write_proc("/proc/sys/net/ipv4/neigh/hspt0/retrans_time_ms", "50");
	NET_OK(hsp_net_configure_inside("hspt0", NULL, "10.77.0.1/24", NULL, ERR));
	NET_OK(hsp_net_configure_inside("hspt0", NULL, "fd77::1/64", NULL, ERR));

	hsp_error_t e = NULL;
	if (hsp_net_bridge_ensure("lo", &e) != -EEXIST ||
	    strcmp(e->msg, "interface `lo` exists and is not a bridge") != 0)
		die("bridge_ensure(lo): %s", e ? e->msg : "succeeded");
	hsp_error_release(&e);

	int ready[2], go[2];
	if (pipe2(ready, O_CLOEXEC) < 0 || pipe2(go, O_CLOEXEC) < 0)
		die("pipe: %s", strerror(errno));
	pid_t ve = fork();
	if (ve < 0)
		die("fork: %s", strerror(errno));
	if (ve == 0) {
		close(ready[0]);
		close(go[1]);
		ve_main(ready[1], go[0]);
		_exit(0);
	}
	close(ready[1]);
	close(go[0]);
	char c;
	if (read(ready[0], &c, 1) != 1)
		die("VE died before unsharing");

	NET_OK(hsp_net_veth_create("hspt0v", "ve0", ve, "hspt0", NULL, ERR));
	if (if_nametoindex("hspt0v") == 0 || if_nametoindex("ve0") != 0)
		die("veth ends not where they belong");
	if (master_of("hspt0v") != (int)if_nametoindex("hspt0"))
		die("hspt0v not attached to hspt0");
	if (!(if_nametoindex("hspt0v") && has_address("hspt0", AF_INET, "10.77.0.1")))
		die("host side misconfigured");
	/* The same name again: EEXIST, and the existing pair survives. */
	if (hsp_net_veth_create("hspt0v", "ve1", ve, "hspt0", NULL, &e) != -EEXIST)
		die("duplicate veth: %s", e ? e->msg : "succeeded");
	hsp_error_release(&e);
	if (if_nametoindex("hspt0v") == 0)
		die("failed duplicate create removed the existing veth");

	int l4 = listen_on(AF_INET, "10.77.0.1", 7777);
	int l6 = listen_on(AF_INET6, "fd77::1", 7777);
	if (write(go[1], "g", 1) != 1)
		die("release VE");
	close(go[1]);
	serve_one(l4);
	serve_one(l6);
	int st = wait_status(ve);
	if (st != 0)
		die("VE exited with %d", st);

	/* The VE's namespace is gone, and with it (asynchronously) the pair;
	 * delete is idempotent either way. */
	NET_OK(hsp_net_veth_delete("hspt0v", ERR));
	if (if_nametoindex("hspt0v") != 0)
		die("hspt0v still there after delete");
	NET_OK(hsp_net_veth_delete("hspt0v", ERR));
	if (hsp_net_veth_delete("hspt0", &e) != -EINVAL)
		die("deleted a bridge as a veth");
	hsp_error_release(&e);
	if (if_nametoindex("hspt0") == 0)
		die("bridge gone");
}

START_TEST(live_round_trip)
{
	require_root();
	ck_assert_int_eq(in_private_netns(host_main), 0);
}
END_TEST

/* Failures leave nothing behind. */
static void host_failures(void)
{
	NET_OK(hsp_net_bridge_ensure("hspt0", ERR));
	hsp_error_t e = NULL;

	pid_t gone = gone_pid();
	if (hsp_net_veth_create("hspt0x", "ve0", gone, "hspt0", NULL, &e) != -ESRCH)
		die("veth into a dead pid: %s", e ? e->msg : "succeeded");
	char want[128];
	snprintf(want, sizeof(want), "create veth `hspt0x` (peer `ve0` in pid %d's netns): %s",
		 (int)gone, strerror(ESRCH));
	if (strcmp(e->msg, want) != 0)
		die("message: %s", e->msg);
	hsp_error_release(&e);
	if (if_nametoindex("hspt0x") != 0 || if_nametoindex("ve0") != 0)
		die("leftover interface after failed create");

	if (hsp_net_veth_create("hspt0x", "ve0", getpid(), "nobr0", NULL, &e) != -ENODEV ||
	    strcmp(e->msg, "create veth `hspt0x`: no bridge `nobr0`") != 0)
		die("missing bridge: %s", e ? e->msg : "succeeded");
	hsp_error_release(&e);
	if (hsp_net_veth_create("hspt0x", "ve0", getpid(), "lo", NULL, &e) != -EINVAL)
		die("lo accepted as a bridge");
	hsp_error_release(&e);
	if (hsp_net_veth_create("hspt0x-toolong-name", "ve0", getpid(), "hspt0", NULL, &e) !=
	    -EINVAL)
		die("long name accepted");
	hsp_error_release(&e);
	if (hsp_net_veth_create("hspt0x", "ve0", 0, "hspt0", NULL, &e) != -EINVAL)
		die("pid 0 accepted");
	hsp_error_release(&e);
	/* The peer's name taken in the target namespace (ours here). */
	if (hsp_net_veth_create("hspt0x", "hspt0", getpid(), "hspt0", NULL, &e) != -EEXIST)
		die("taken peer name: %s", e ? e->msg : "succeeded");
	hsp_error_release(&e);
	if (if_nametoindex("hspt0x") != 0)
		die("leftover interface after failed create");

	/* Both ends here: deleting the host end takes the peer along. */
	NET_OK(hsp_net_veth_create("hspt0x", "hspt0y", getpid(), "hspt0", NULL, ERR));
	if (if_nametoindex("hspt0y") == 0)
		die("peer not created");
	NET_OK(hsp_net_veth_delete("hspt0x", ERR));
	if (if_nametoindex("hspt0x") != 0 || if_nametoindex("hspt0y") != 0)
		die("delete left an end behind");
	if (hsp_net_veth_delete("bad/name", &e) != -EINVAL)
		die("bad name accepted by delete");
	hsp_error_release(&e);
}

START_TEST(live_failures)
{
	require_root();
	ck_assert_int_eq(in_private_netns(host_failures), 0);
}
END_TEST

/* Reads ARP frames arriving on `sk` until `n` came or 2 s passed; checks
 * each is a gratuitous request or reply for ip from mac.  Returns how many
 * of each, as requests * 100 + replies. */
static int read_announcements(int sk, int n, const unsigned char mac[6], const char *ip)
{
	unsigned char want_ip[4];
	inet_pton(AF_INET, ip, want_ip);
	int requests = 0, replies = 0;
	for (int got = 0; got < n;) {
		struct pollfd p = {.fd = sk, .events = POLLIN};
		if (poll(&p, 1, 2000) <= 0)
			break;
		struct ether_arp a;
		struct sockaddr_ll from;
		socklen_t fl = sizeof(from);
		ssize_t len = recvfrom(sk, &a, sizeof(a), 0, (struct sockaddr *)&from, &fl);
		if (len < (ssize_t)sizeof(a) || from.sll_pkttype == PACKET_OUTGOING ||
		    from.sll_protocol != htons(ETH_P_ARP))
			continue;
		got++;
		if (memcmp(a.arp_sha, mac, 6) != 0 || memcmp(a.arp_spa, want_ip, 4) != 0 ||
		    memcmp(a.arp_tpa, want_ip, 4) != 0 || from.sll_pkttype != PACKET_BROADCAST)
			die("an ARP frame that is not an announcement of %s", ip);
		if (ntohs(a.arp_op) == ARPOP_REQUEST)
			requests++;
		else if (ntohs(a.arp_op) == ARPOP_REPLY && memcmp(a.arp_tha, mac, 6) == 0)
			replies++;
		else
			die("ARP op %d, or a reply not naming its sender", ntohs(a.arp_op));
	}
	return requests * 100 + replies;
}

/* A VE end with a MAC of ours, announced once and then three times from a
 * child that joins the namespace, as a monitor does. */
static void host_announce(void)
{
	NET_OK(hsp_net_bridge_ensure("hspt0", ERR));
	unsigned char mac[6];
	hsp_net_ve_mac("web1", "10.77.0.9/24", mac);
	NET_OK(hsp_net_veth_create("hspt0x", "hspt0y", getpid(), "hspt0", mac, ERR));
	NET_OK(hsp_net_configure_inside("hspt0y", NULL, "10.77.0.9/24", NULL, ERR));
	/* ETH_P_ALL: a bridge port hands frames to the bridge before any
	 * per-protocol socket of the port would see them; taps come first. */
	int sk = socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, htons(ETH_P_ALL));
	struct sockaddr_ll at = {.sll_family = AF_PACKET,
				 .sll_protocol = htons(ETH_P_ALL),
				 .sll_ifindex = (int)if_nametoindex("hspt0x")};
	if (sk < 0 || bind(sk, (struct sockaddr *)&at, sizeof(at)) < 0)
		die("capture socket: %s", strerror(errno));
	struct ifreq ifr = {0};
	strcpy(ifr.ifr_name, "hspt0y");
	if (ioctl(sk, SIOCGIFHWADDR, &ifr) < 0 || memcmp(ifr.ifr_hwaddr.sa_data, mac, 6) != 0)
		die("the peer does not have the MAC it was given");

	NET_OK(hsp_net_announce("hspt0y", "10.77.0.9/24", ERR));
	int got = read_announcements(sk, 2, mac, "10.77.0.9");
	if (got != 101)
		die("one announcement: %d requests, %d replies", got / 100, got % 100);

	uint64_t t0 = hsp_now_ns();
	hsp_error_t e = NULL;
	pid_t child = hsp_net_announce_async(getpid(), "hspt0y", "10.77.0.9/24", 3, 50, &e);
	if (child <= 0)
		die("announce_async: %s", e ? e->msg : "no child");
	if ((hsp_now_ns() - t0) / 1000000 > 20)
		die("announce_async kept its caller waiting");
	got = read_announcements(sk, 6, mac, "10.77.0.9");
	uint64_t ms = (hsp_now_ns() - t0) / 1000000;
	if (got != 303)
		die("three announcements: %d requests, %d replies", got / 100, got % 100);
	if (ms < 100)
		die("three announcements within %llu ms: not spaced", (unsigned long long)ms);
	if (wait_status(child) != 0)
		die("announcing child failed");
	/* IPv6 is left to neighbour discovery: nothing sent, no child. */
	NET_OK(hsp_net_announce("hspt0y", "fd77::9/64", ERR));
	if (hsp_net_announce_async(getpid(), "hspt0y", "fd77::9/64", 3, 50, &e) != 0)
		die("a child for IPv6");
	if (hsp_net_announce("nosuch0", "10.77.0.9/24", &e) != -ENODEV ||
	    strstr(e->msg, "interface `nosuch0`") == NULL)
		die("missing interface: %s", e ? e->msg : "succeeded");
	hsp_error_release(&e);
	close(sk);
	NET_OK(hsp_net_veth_delete("hspt0x", ERR));
}

START_TEST(live_announce)
{
	require_root();
	ck_assert_int_eq(in_private_netns(host_announce), 0);
}
END_TEST

static Suite *net_suite(void)
{
	Suite *s = suite_create("net");
	TCase *pure = tcase_create("pure");
	tcase_add_test(pure, parse_cidr);
	tcase_add_test(pure, parse_ip);
	tcase_add_test(pure, contains);
	tcase_add_test(pure, host_ifname);
	tcase_add_test(pure, validate_ifname);
	tcase_add_test(pure, ve_mac);
	suite_add_tcase(s, pure);
	TCase *live = tcase_create("live");
	tcase_set_timeout(live, 60);
	tcase_add_test(live, live_round_trip);
	tcase_add_test(live, live_failures);
	tcase_add_test(live, live_announce);
	suite_add_tcase(s, live);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(net_suite());
	srunner_run_all(sr, CK_ENV);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
