/* CephFS pools against a real throw-away cluster (test/ceph/cluster.sh),
 * brought up once for the whole run: check, ceph-fuse mounts seen from two
 * clients, dead mounts, snapshots, a path-restricted client, and clusters
 * that do not answer.  Needs root and the Ceph packages. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <check.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ceph.h"
#include "utils.h"

#define TIMEOUT_S 5
/* What a call that gives up after its timeout may take beyond it. */
#define SLACK_S 2.0

static char *tmp, *cluster_sh, *cluster, *conf, *keyring;

static char *tpath(const char *rel)
{
	return hsp_strdup_printf("%s/%s", tmp, rel);
}

static char *shell_out(const char *cmd)
{
	FILE *f = popen(cmd, "r");
	ck_assert_ptr_nonnull(f);
	char buf[PATH_MAX] = "";
	char *line = fgets(buf, sizeof(buf), f);
	ck_assert_msg(pclose(f) == 0 && line, "`%s` failed", cmd);
	buf[strcspn(buf, "\n")] = '\0';
	return strdup(buf);
}

/* The helper is found through HSP_CEPH (set by ctest), else in the build
 * tree beside hsp-runtime: build/test/unit -> build/src/runtime. */
static void find_helper(void)
{
	if (getenv("HSP_CEPH"))
		return;
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	ck_assert_int_gt(n, 0);
	self[n] = '\0';
	*strrchr(self, '/') = '\0';
	cleanup_free char *h = hsp_strdup_printf("%s/../../src/runtime/hsp-ceph", self);
	setenv("HSP_CEPH", h, 1);
}

static void cluster_up(void)
{
	find_helper();
	tmp = strdup("/tmp/hsp-test-ceph-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmp));
	cleanup_free char *src = strdup(__FILE__);
	*strrchr(src, '/') = '\0';
	cluster_sh = hsp_strdup_printf("%s/../ceph/cluster.sh", src);
	cluster = tpath("cluster");
	conf = hsp_strdup_printf("%s/ceph.conf", cluster);
	keyring = hsp_strdup_printf("%s/keyring", cluster);
	cleanup_free char *cmd = hsp_strdup_printf("bash %s up %s", cluster_sh, cluster);
	ck_assert_int_eq(system(cmd), 0);
}

/* Mounts a failed test left behind would keep down from removing the
 * directory. */
static void detach_leftovers(void)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[4096], mp[4096];
	size_t n = strlen(tmp);
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "%*s %*s %*s %*s %4095s", mp) == 1 && strncmp(mp, tmp, n) == 0)
			hsp_ceph_umount(mp, NULL);
	if (f)
		fclose(f);
}

static void cluster_down(void)
{
	detach_leftovers();
	cleanup_free char *cmd = hsp_strdup_printf("bash %s down %s", cluster_sh, cluster);
	if (system(cmd) != 0)
		fprintf(stderr, "test_ceph: `%s` failed\n", cmd);
	hsp_rm_rf(tmp, NULL);
	free(tmp);
	free(cluster_sh);
	free(cluster);
	free(conf);
	free(keyring);
}

static struct hsp_ceph_pool pool(const char *fs_path)
{
	return (struct hsp_ceph_pool){
	    .conf = conf, .id = "admin", .keyring = keyring, .fs_path = fs_path};
}

static char *mkmnt(const char *name)
{
	char *p = tpath(name);
	ck_assert_int_eq(mkdir(p, 0755), 0);
	return p;
}

static void ok(int r, hsp_error_t *err, const char *what)
{
	ck_assert_msg(r >= 0, "%s: %d %s", what, r, *err ? (*err)->msg : "");
}

static void mount_ok(const struct hsp_ceph_pool *p, const char *mnt)
{
	hsp_error_t err = NULL;
	ok(hsp_ceph_mount(p, mnt, TIMEOUT_S, &err), &err, "mount");
	ck_assert_int_eq(hsp_ceph_mount_state(mnt, 2000), 1);
}

static void umount_ok(const char *mnt)
{
	hsp_error_t err = NULL;
	ok(hsp_ceph_umount(mnt, &err), &err, "umount");
}

static void write_text(const char *dir, const char *rel, const char *text)
{
	cleanup_free char *p = hsp_strdup_printf("%s/%s", dir, rel);
	cleanup_close int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ck_assert_msg(fd >= 0, "open %s: %s", p, strerror(errno));
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	ck_assert_int_eq(fsync(fd), 0);
}

static void assert_text(const char *dir, const char *rel, const char *want)
{
	cleanup_free char *p = hsp_strdup_printf("%s/%s", dir, rel);
	cleanup_free char *got = NULL;
	hsp_error_t err = NULL;
	ok(hsp_read_file(p, &got, NULL, &err), &err, p);
	ck_assert_str_eq(got, want);
}

/* Live ceph-fuse processes serving mnt (their last argument); *first
 * gets one of them. */
static int fuse_find(const char *mnt, pid_t *first)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	int n = 0;
	while (d && (de = readdir(d)) != NULL) {
		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		char path[300], buf[4096];
		snprintf(path, sizeof(path), "/proc/%s/cmdline", de->d_name);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		ssize_t len = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
		if (fd >= 0)
			close(fd);
		if (len <= 1 || buf[len - 1] != '\0' || strstr(buf, "ceph-fuse") == NULL)
			continue;
		const char *last = buf + len - 1;
		while (last > buf && last[-1] != '\0')
			last--;
		if (strcmp(last, mnt) == 0 && n++ == 0 && first)
			*first = (pid_t)atoi(de->d_name);
	}
	if (d)
		closedir(d);
	return n;
}

static int fuse_count(const char *mnt)
{
	return fuse_find(mnt, NULL);
}

/* Kills the ceph-fuse serving mnt, waits until it is gone and evicts its
 * MDS session: until the session times out (60 s), its caps on shared
 * ancestors such as / block other clients' changes there. */
static void kill_fuse(const char *mnt)
{
	pid_t pid = 0;
	ck_assert_int_eq(fuse_find(mnt, &pid), 1);
	ck_assert_int_eq(kill(pid, SIGKILL), 0);
	for (int i = 0; i < 500 && fuse_count(mnt) > 0; i++)
		usleep(10000);
	ck_assert_int_eq(fuse_count(mnt), 0);
	cleanup_free char *cmd = hsp_strdup_printf(
	    "ceph --admin-daemon %s/run/mds.a.asok session evict client_metadata.mount_point=%s "
	    ">/dev/null",
	    cluster, mnt);
	ck_assert_int_eq(system(cmd), 0);
}

static double since(uint64_t t0)
{
	return (double)(hsp_now_ns() - t0) / 1e9;
}

static void assert_one_line(hsp_error_t err, const char *want)
{
	ck_assert_ptr_nonnull(err);
	ck_assert_msg(strchr(err->msg, '\n') == NULL, "multi-line: %s", err->msg);
	ck_assert_msg(strstr(err->msg, want), "`%s` lacks `%s`", err->msg, want);
}

START_TEST(check_creates_dirs)
{
	struct hsp_ceph_pool p = pool("/t-check/pool");
	hsp_error_t err = NULL;
	ok(hsp_ceph_check(&p, TIMEOUT_S, &err), &err, "check");
	ok(hsp_ceph_check(&p, TIMEOUT_S, &err), &err, "second check");
	cleanup_free char *mnt = mkmnt("check");
	mount_ok(&p, mnt);
	struct stat st;
	cleanup_free char *ves = hsp_strdup_printf("%s/ves", mnt);
	cleanup_free char *templates = hsp_strdup_printf("%s/templates", mnt);
	ck_assert_int_eq(stat(ves, &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0700);
	ck_assert_int_eq(stat(templates, &st), 0);
	ck_assert(S_ISDIR(st.st_mode));
	umount_ok(mnt);
	ck_assert_int_eq(hsp_ceph_mount_state(mnt, 2000), 0);
	ck_assert_int_eq(fuse_count(mnt), 0);
}
END_TEST

START_TEST(mount_seen_by_second_client)
{
	struct hsp_ceph_pool p = pool("/t-mount");
	hsp_error_t err = NULL;
	ok(hsp_ceph_check(&p, TIMEOUT_S, &err), &err, "check");
	cleanup_free char *m1 = mkmnt("m1");
	cleanup_free char *m2 = mkmnt("m2");
	mount_ok(&p, m1);
	mount_ok(&p, m2);
	ok(hsp_ceph_mount(&p, m1, TIMEOUT_S, &err), &err, "mount again");
	ck_assert_int_eq(fuse_count(m1), 1);
	write_text(m1, "ves/hello", "from m1\n");
	assert_text(m2, "ves/hello", "from m1\n");
	/* suid and dev, which ceph-fuse leaves off by default */
	cleanup_free char *opts =
	    shell_out("awk '$5 ~ /\\/m1$/ { print $6 }' /proc/self/mountinfo");
	ck_assert_msg(strstr(opts, "nosuid") == NULL && strstr(opts, "nodev") == NULL, "%s", opts);
	umount_ok(m1);
	umount_ok(m2);
	ck_assert_int_eq(hsp_ceph_mount_state(m1, 2000), 0);
	ck_assert_int_eq(fuse_count(m1) + fuse_count(m2), 0);
	ok(hsp_ceph_umount(m1, &err), &err, "umount of nothing");
}
END_TEST

START_TEST(mount_state_and_dead_mount)
{
	struct hsp_ceph_pool p = pool("/t-dead");
	hsp_error_t err = NULL;
	ok(hsp_ceph_check(&p, TIMEOUT_S, &err), &err, "check");
	cleanup_free char *plain = mkmnt("plain");
	ck_assert_int_eq(hsp_ceph_mount_state(plain, 2000), 0);
	ck_assert_int_eq(hsp_ceph_mount_state("/proc", 2000), -EMEDIUMTYPE);
	cleanup_free char *mnt = mkmnt("dead");
	mount_ok(&p, mnt);
	kill_fuse(mnt);
	uint64_t t0 = hsp_now_ns();
	int st = hsp_ceph_mount_state(mnt, 2000);
	ck_assert_msg(st == -ENOTCONN, "state of a dead mount: %d", st);
	ck_assert(since(t0) < 2.5);
	/* a dead mount is replaced by a new one */
	mount_ok(&p, mnt);
	kill_fuse(mnt);
	ck_assert_int_lt(hsp_ceph_mount_state(mnt, 2000), 0);
	umount_ok(mnt);
	ck_assert_int_eq(hsp_ceph_mount_state(mnt, 2000), 0);
}
END_TEST

/* A file open in the mount: detached lazily, and ceph-fuse made to go. */
START_TEST(busy_umount)
{
	struct hsp_ceph_pool p = pool("/t-busy");
	hsp_error_t err = NULL;
	ok(hsp_ceph_check(&p, TIMEOUT_S, &err), &err, "check");
	cleanup_free char *mnt = mkmnt("busy");
	mount_ok(&p, mnt);
	cleanup_free char *file = hsp_strdup_printf("%s/ves/open", mnt);
	cleanup_close int fd = open(file, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	ck_assert_int_ge(fd, 0);
	uint64_t t0 = hsp_now_ns();
	umount_ok(mnt);
	ck_assert_msg(since(t0) < 8, "umount took %.2f s", since(t0));
	ck_assert_int_eq(fuse_count(mnt), 0);
	ck_assert_int_eq(hsp_ceph_mount_state(mnt, 2000), 0);
}
END_TEST

static void assert_client_addr(const char *mnt)
{
	hsp_error_t err = NULL;
	cleanup_free char *addr = NULL;
	ok(hsp_ceph_mount_client_addr(mnt, &addr, &err), &err, "client addr");
	unsigned a, b, c, d, port;
	unsigned long nonce;
	char end;
	ck_assert_msg(sscanf(addr, "%u.%u.%u.%u:%u/%lu%c", &a, &b, &c, &d, &port, &nonce, &end) ==
			  6,
		      "not IP:PORT/NONCE: %s", addr);
	ck_assert_msg(a < 256 && b < 256 && c < 256 && d < 256 && port < 65536 && nonce > 0, "%s",
		      addr);
}

START_TEST(client_addr)
{
	struct hsp_ceph_pool p = pool("/t-addr");
	hsp_error_t err = NULL;
	ok(hsp_ceph_check(&p, TIMEOUT_S, &err), &err, "check");
	cleanup_free char *mnt = mkmnt("addr");
	mount_ok(&p, mnt);
	assert_client_addr(mnt);
	umount_ok(mnt);
	cleanup_free char *addr = NULL;
	ck_assert_int_eq(hsp_ceph_mount_client_addr(mnt, &addr, &err), -ENOENT);
	assert_one_line(err, "no ceph-fuse");
	hsp_error_release(&err);
}
END_TEST

static void assert_snaps(const struct hsp_ceph_pool *p, const char *rel, const char *want)
{
	hsp_error_t err = NULL;
	cleanup_strv char **names = NULL;
	int n = hsp_ceph_snap_list(p, rel, &names, &err);
	ok(n, &err, "snap list");
	char got[512] = "";
	for (int i = 0; i < n; i++)
		snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%s", i ? " " : "",
			 names[i]);
	ck_assert_ptr_null(names[n]);
	ck_assert_str_eq(got, want);
}

/* Snapshots of p's "ves/a", checked through the mount at mnt. */
static void snapshot_round_trip(const struct hsp_ceph_pool *p, const char *mnt)
{
	hsp_error_t err = NULL;
	cleanup_free char *dir = hsp_strdup_printf("%s/ves/a", mnt);
	ck_assert_int_eq(mkdir(dir, 0755), 0);
	write_text(mnt, "ves/a/file", "one\n");
	assert_snaps(p, "ves/a", "");
	ok(hsp_ceph_snap_create(p, "ves/a", "s2", &err), &err, "snap create");
	ok(hsp_ceph_snap_create(p, "ves/a", "s1", &err), &err, "snap create");
	ck_assert_int_eq(hsp_ceph_snap_create(p, "ves/a", "s1", &err), -EEXIST);
	assert_one_line(err, "exists already");
	hsp_error_release(&err);
	write_text(mnt, "ves/a/file", "two\n");
	assert_text(mnt, "ves/a/.snap/s1/file", "one\n");
	assert_text(mnt, "ves/a/file", "two\n");
	/* a parent's snapshot shows in the child's .snap, but is not its own */
	ok(hsp_ceph_snap_create(p, "ves", "up", &err), &err, "snap create of parent");
	assert_snaps(p, "ves/a", "s1 s2");
	assert_snaps(p, "ves", "up");
	uint64_t t0 = hsp_now_ns();
	ck_assert_int_eq(hsp_ceph_snap_remove(p, "ves/a", "nope", &err), -ENOENT);
	ck_assert(since(t0) < 5);
	assert_one_line(err, "no snapshot `nope`");
	hsp_error_release(&err);
	ok(hsp_ceph_snap_remove(p, "ves/a", "s1", &err), &err, "snap remove");
	assert_snaps(p, "ves/a", "s2");
	ok(hsp_ceph_snap_remove(p, "ves/a", "s2", &err), &err, "snap remove");
	ok(hsp_ceph_snap_remove(p, "ves", "up", &err), &err, "snap remove");
	assert_snaps(p, "ves/a", "");
	ok(hsp_ceph_snap_create(p, ".", "top", &err), &err, "snap of the pool's root");
	assert_snaps(p, ".", "top");
	ok(hsp_ceph_snap_remove(p, ".", "top", &err), &err, "snap remove");
}

START_TEST(snapshots)
{
	struct hsp_ceph_pool p = pool("/t-snap");
	hsp_error_t err = NULL;
	ok(hsp_ceph_check(&p, TIMEOUT_S, &err), &err, "check");
	cleanup_free char *mnt = mkmnt("snap");
	mount_ok(&p, mnt);
	snapshot_round_trip(&p, mnt);
	umount_ok(mnt);
}
END_TEST

START_TEST(restricted_client)
{
	cleanup_free char *cmd =
	    hsp_strdup_printf("bash %s authorize %s node1 /t-node rwps", cluster_sh, cluster);
	cleanup_free char *kr = shell_out(cmd);
	struct hsp_ceph_pool p = {
	    .conf = conf, .id = "node1", .keyring = kr, .fs_path = "/t-node/pool"};
	hsp_error_t err = NULL;
	/* fs_path is made from /t-node: the client may not mount / */
	ok(hsp_ceph_check(&p, TIMEOUT_S, &err), &err, "check");
	cleanup_free char *mnt = mkmnt("node");
	mount_ok(&p, mnt);
	cleanup_free char *mnt2 = mkmnt("node2");
	mount_ok(&p, mnt2);
	write_text(mnt, "ves/x", "restricted\n");
	assert_text(mnt2, "ves/x", "restricted\n");
	assert_client_addr(mnt);
	snapshot_round_trip(&p, mnt);
	umount_ok(mnt);
	umount_ok(mnt2);

	struct hsp_ceph_pool outside = p;
	outside.fs_path = "/t-other";
	ck_assert_int_eq(hsp_ceph_check(&outside, TIMEOUT_S, &err), -EPERM);
	assert_one_line(err, "client.node1");
	hsp_error_release(&err);
	outside.fs_path = "/";
	ck_assert_int_eq(hsp_ceph_mount(&outside, mnt, TIMEOUT_S, &err), -EPERM);
	assert_one_line(err, "Operation not permitted");
	hsp_error_release(&err);
	ck_assert_int_eq(hsp_ceph_mount_state(mnt, 2000), 0);
	ck_assert_int_eq(fuse_count(mnt), 0);
}
END_TEST

/* check and mount of a cluster that does not answer fail within their
 * timeout, with one line, and leave nothing behind. */
static void assert_unreachable(const struct hsp_ceph_pool *p, const char *mnt, unsigned timeout_s)
{
	hsp_error_t err = NULL;
	uint64_t t0 = hsp_now_ns();
	int r = hsp_ceph_check(p, timeout_s, &err);
	double t = since(t0);
	ck_assert_msg(r == -ETIMEDOUT, "check: %d %s", r, err ? err->msg : "");
	ck_assert_msg(t < timeout_s + SLACK_S, "check took %.2f s", t);
	assert_one_line(err, "no answer");
	hsp_error_release(&err);
	t0 = hsp_now_ns();
	r = hsp_ceph_mount(p, mnt, timeout_s, &err);
	t = since(t0);
	ck_assert_msg(r == -ETIMEDOUT, "mount: %d %s", r, err ? err->msg : "");
	ck_assert_msg(t < timeout_s + SLACK_S, "mount took %.2f s", t);
	assert_one_line(err, "no answer");
	hsp_error_release(&err);
	ck_assert_int_eq(hsp_ceph_mount_state(mnt, 2000), 0);
	ck_assert_int_eq(fuse_count(mnt), 0);
}

/* A copy of the cluster's conf whose monitor is at port. */
static char *conf_with_port(const char *name, int port)
{
	cleanup_free char *text = NULL;
	hsp_error_t err = NULL;
	ok(hsp_read_file(conf, &text, NULL, &err), &err, "read conf");
	char *line = strstr(text, "mon host = ");
	ck_assert_ptr_nonnull(line);
	char *rest = line + strcspn(line, "\n");
	*line = '\0';
	cleanup_free char *out =
	    hsp_strdup_printf("%smon host = v2:127.0.0.1:%d%s", text, port, rest);
	char *path = tpath(name);
	ok(hsp_write_file(path, out, strlen(out), &err), &err, "write conf");
	return path;
}

/* A TCP socket on a free port of 127.0.0.1; listening (connections
 * complete, nothing answers) or closed again (connections refused). */
static int tcp_port(bool listening, int *fd)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sa);
	*fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(*fd, 0);
	ck_assert_int_eq(bind(*fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(getsockname(*fd, (struct sockaddr *)&sa, &len), 0);
	if (listening)
		ck_assert_int_eq(listen(*fd, 64), 0);
	else
		close(*fd);
	return ntohs(sa.sin_port);
}

START_TEST(no_monitor)
{
	int fd;
	cleanup_free char *dead = conf_with_port("dead.conf", tcp_port(false, &fd));
	struct hsp_ceph_pool p = pool("/t-dead");
	p.conf = dead;
	cleanup_free char *mnt = mkmnt("nomon");
	assert_unreachable(&p, mnt, 3);
}
END_TEST

START_TEST(silent_monitor)
{
	int fd;
	cleanup_free char *silent = conf_with_port("silent.conf", tcp_port(true, &fd));
	struct hsp_ceph_pool p = pool("/t-dead");
	p.conf = silent;
	cleanup_free char *mnt = mkmnt("silent");
	assert_unreachable(&p, mnt, 3);
	close(fd);
}
END_TEST

/* client_mount_timeout does not cover an MDS that never answers: the
 * helper's alarm and the library's deadline do. */
START_TEST(stopped_mds)
{
	cleanup_free char *pidfile = hsp_strdup_printf("%s/run/mds.a.pid", cluster);
	cleanup_free char *text = NULL;
	hsp_error_t err = NULL;
	ok(hsp_read_file(pidfile, &text, NULL, &err), &err, "mds pid");
	pid_t mds = (pid_t)atoi(text);
	struct hsp_ceph_pool p = pool("/t-stopped");
	cleanup_free char *mnt = mkmnt("stopped");
	ck_assert_int_eq(kill(mds, SIGSTOP), 0);
	assert_unreachable(&p, mnt, 2);
	ck_assert_int_eq(kill(mds, SIGCONT), 0);
}
END_TEST

static void bad(int r, hsp_error_t *err, const char *want)
{
	ck_assert_int_eq(r, -EINVAL);
	assert_one_line(*err, want);
	hsp_error_release(err);
}

START_TEST(bad_arguments)
{
	hsp_error_t err = NULL;
	struct hsp_ceph_pool p = pool("hsp");
	cleanup_free char *mnt = mkmnt("bad");
	cleanup_strv char **names = NULL;
	bad(hsp_ceph_check(&p, TIMEOUT_S, &err), &err, "must be absolute");
	bad(hsp_ceph_mount(&p, mnt, TIMEOUT_S, &err), &err, "must be absolute");
	p.fs_path = "/hsp/../etc";
	bad(hsp_ceph_check(&p, TIMEOUT_S, &err), &err, "\"..\"");
	p.fs_path = "/t-bad";
	bad(hsp_ceph_snap_create(&p, "ves", "Bad_Name", &err), &err, "invalid snapshot name");
	bad(hsp_ceph_snap_create(&p, "ves", "", &err), &err, "invalid snapshot name");
	bad(hsp_ceph_snap_remove(&p, "ves", "-x", &err), &err, "invalid snapshot name");
	bad(hsp_ceph_snap_create(&p, "../x", "s", &err), &err, "\"..\"");
	bad(hsp_ceph_snap_create(&p, "ves/../../x", "s", &err), &err, "\"..\"");
	bad(hsp_ceph_snap_create(&p, "/ves", "s", &err), &err, "must be relative");
	bad(hsp_ceph_snap_list(&p, "ves/.snap", &names, &err), &err, ".snap");
	bad(hsp_ceph_snap_list(&p, "", &names, &err), &err, "must be relative");
	bad(hsp_ceph_mount(&p, "relative/mnt", TIMEOUT_S, &err), &err, "must be absolute");
	bad(hsp_ceph_check(&p, 0, &err), &err, "timeout");
	p.id = "bad id";
	bad(hsp_ceph_check(&p, TIMEOUT_S, &err), &err, "invalid ceph id");
	p.id = "admin";
	p.keyring = "/nonexistent/keyring";
	ck_assert_int_eq(hsp_ceph_check(&p, TIMEOUT_S, &err), -ENOENT);
	assert_one_line(err, "/nonexistent/keyring");
	hsp_error_release(&err);
	ck_assert_int_eq(hsp_ceph_mount_state("relative", 100), -EINVAL);
	ck_assert_int_eq(hsp_ceph_umount("relative", &err), -EINVAL);
	hsp_error_release(&err);
}
END_TEST

static Suite *ceph_suite(void)
{
	Suite *s = suite_create("ceph");
	TCase *tc = tcase_create("cluster");
	tcase_add_unchecked_fixture(tc, cluster_up, cluster_down);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, bad_arguments);
	tcase_add_test(tc, check_creates_dirs);
	tcase_add_test(tc, mount_seen_by_second_client);
	tcase_add_test(tc, mount_state_and_dead_mount);
	tcase_add_test(tc, busy_umount);
	tcase_add_test(tc, client_addr);
	tcase_add_test(tc, snapshots);
	tcase_add_test(tc, restricted_client);
	tcase_add_test(tc, no_monitor);
	tcase_add_test(tc, silent_monitor);
	tcase_add_test(tc, stopped_mds);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	if (geteuid() != 0) {
		fprintf(stderr, "test_ceph: needs root, skipped\n");
		return 77;
	}
	SRunner *sr = srunner_create(ceph_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
