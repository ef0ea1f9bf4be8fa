/* Unit tests for cgroup.c.  The round trips need root and a real cgroup
 * tree; they check the cgroupfs files directly, for whatever mode the host
 * is in (hybrid on the development machine, pure v2 in the test VM). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cgroup-internal.h"
#include "cgroup.h"
#include "utils.h"

#define MiB (1024ULL * 1024ULL)

/* Names of groups, files and dirs carry the runner's pid, so a failed test
 * run's leftovers can be found and removed by the tcase teardown. */
static pid_t runner;

/* ---- helpers ---- */

static char *slurp(const char *path)
{
	char *s = NULL;
	hsp_error_t err = NULL;
	if (hsp_read_file(path, &s, NULL, &err) < 0) {
		hsp_error_release(&err);
		return NULL;
	}
	size_t n = strlen(s);
	while (n > 0 && s[n - 1] == '\n')
		s[--n] = '\0';
	return s;
}

/* The mode as /proc/mounts tells it, independent of the statfs logic. */
static enum hsp_cgroup_mode mounts_mode(void)
{
	cleanup_free char *m = slurp("/proc/mounts");
	ck_assert_ptr_nonnull(m);
	if (strstr(m, " /sys/fs/cgroup cgroup2 "))
		return HSP_CGROUP_V2;
	if (strstr(m, " /sys/fs/cgroup/unified cgroup2 "))
		return HSP_CGROUP_HYBRID;
	return HSP_CGROUP_V1;
}

/* Directory of the VE group for `ctrl` ("unified" on v2), from the
 * serialized path; assumes the usual one-controller-per-mount layout. */
static char *ve_dir(struct hsp_cgroup *cg, const char *ctrl)
{
	const char *s = hsp_cgroup_path(cg);
	cleanup_free char *key = hsp_strdup_printf(";%s=", ctrl);
	const char *p = strstr(s, key);
	if (p == NULL)
		return NULL;
	p += strlen(key);
	size_t n = strcspn(p, ";");
	if (strcmp(ctrl, "unified") == 0)
		return hsp_strdup_printf("/sys/fs/cgroup%.*s", (int)n, p);
	return hsp_strdup_printf("/sys/fs/cgroup/%s%.*s", ctrl, (int)n, p);
}

static const char *ctrl_for(enum hsp_cgroup_mode mode, const char *v1)
{
	return mode == HSP_CGROUP_V2 ? "unified" : v1;
}

static char *cg_file(struct hsp_cgroup *cg, enum hsp_cgroup_mode mode, const char *ctrl,
		     const char *file)
{
	cleanup_free char *dir = ve_dir(cg, ctrl_for(mode, ctrl));
	ck_assert_ptr_nonnull(dir);
	cleanup_free char *p = hsp_strdup_printf("%s/%s", dir, file);
	char *s = slurp(p);
	ck_assert_msg(s != NULL, "cannot read %s", p);
	return s;
}

static void assert_file(struct hsp_cgroup *cg, enum hsp_cgroup_mode mode, const char *ctrl,
			const char *file, const char *want)
{
	cleanup_free char *s = cg_file(cg, mode, ctrl, file);
	ck_assert_msg(strcmp(s, want) == 0, "%s: `%s`, want `%s`", file, s, want);
}

static void assert_u64_file(struct hsp_cgroup *cg, enum hsp_cgroup_mode mode, const char *ctrl,
			    const char *file, unsigned long long want)
{
	char buf[32];
	snprintf(buf, sizeof(buf), "%llu", want);
	assert_file(cg, mode, ctrl, file, buf);
}

static bool gone(const char *path)
{
	struct stat st;
	return stat(path, &st) < 0 && errno == ENOENT;
}

/* Every hierarchy's VE directory and its hsp-<instance> parent are gone. */
static void assert_removed(char **dirs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		ck_assert_msg(gone(dirs[i]), "%s still exists", dirs[i]);
		char *slash = strrchr(dirs[i], '/');
		*slash = '\0';
		ck_assert_msg(gone(dirs[i]), "%s still exists", dirs[i]);
	}
}

static const char *const v1_names[] = {"memory", "pids",    "devices", "freezer",
				       "cpu",	 "cpuacct", "cpuset",  "blkio"};

/* VE dirs of every hierarchy, collected before destroy to check after. */
static size_t collect_dirs(struct hsp_cgroup *cg, enum hsp_cgroup_mode mode, char **dirs)
{
	size_t n = 0;
	if (mode == HSP_CGROUP_V2) {
		dirs[n++] = ve_dir(cg, "unified");
		return n;
	}
	for (size_t i = 0; i < 8; i++)
		if ((dirs[n] = ve_dir(cg, v1_names[i])) != NULL)
			n++;
	return n;
}

static void free_dirs(char **dirs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(dirs[i]);
}

#define ASSERT_OK(call, err)                                                                       \
	do {                                                                                       \
		int r_ = (call);                                                                   \
		ck_assert_msg(r_ >= 0, "%s: %d %s", #call, r_,                                     \
			      (err) && (err)->msg ? (err)->msg : "");                              \
	} while (0)

static void require_root(void)
{
	if (geteuid() != 0) {
		fprintf(stderr, "test_cgroup: skipping, needs root\n");
		exit(0); /* Check counts a clean exit of a forked test as a pass */
	}
}

/* A child that waits on `fd` until it has been attached, then runs fn. */
static pid_t fork_waiting(int *wfd, int (*fn)(void *), void *arg)
{
	int p[2];
	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		char c;
		close(p[1]);
		if (read(p[0], &c, 1) != 1)
			_exit(100);
		_exit(fn ? fn(arg) : 0);
	}
	close(p[0]);
	*wfd = p[1];
	return pid;
}

static void release(int wfd)
{
	ck_assert_int_eq(write(wfd, "x", 1), 1);
	close(wfd);
}

static int wait_exit(pid_t pid)
{
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int sleeper(void *arg)
{
	(void)arg;
	for (;;)
		pause();
	return 0;
}

/* ---- pure ---- */

START_TEST(test_mode_from_magic)
{
	static const struct {
		long root, unified;
		int ret;
		enum hsp_cgroup_mode mode;
	} cases[] = {
	    {CGROUP2_SUPER_MAGIC, 0, 0, HSP_CGROUP_V2},
	    {CGROUP2_SUPER_MAGIC, CGROUP2_SUPER_MAGIC, 0, HSP_CGROUP_V2},
	    {TMPFS_MAGIC, CGROUP2_SUPER_MAGIC, 0, HSP_CGROUP_HYBRID},
	    {TMPFS_MAGIC, 0, 0, HSP_CGROUP_V1},
	    {TMPFS_MAGIC, TMPFS_MAGIC, 0, HSP_CGROUP_V1},
	    {0, 0, -EINVAL, 0},
	    {SYSFS_MAGIC, 0, -EINVAL, 0},
	    {CGROUP_SUPER_MAGIC, 0, -EINVAL, 0},
	    {EXT4_SUPER_MAGIC, CGROUP2_SUPER_MAGIC, -EINVAL, 0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum hsp_cgroup_mode mode = 42;
		int r = hsp_cgroup_mode_from_magic(cases[i].root, cases[i].unified, &mode);
		ck_assert_msg(r == cases[i].ret, "case %zu: %d", i, r);
		if (r == 0)
			ck_assert_msg(mode == cases[i].mode, "case %zu: mode %d", i, mode);
	}
	ck_assert_str_eq(hsp_cgroup_mode_name(HSP_CGROUP_V1), "v1");
	ck_assert_str_eq(hsp_cgroup_mode_name(HSP_CGROUP_HYBRID), "hybrid");
	ck_assert_str_eq(hsp_cgroup_mode_name(HSP_CGROUP_V2), "v2");
}
END_TEST

START_TEST(test_detect_mode)
{
	hsp_error_t err = NULL;
	enum hsp_cgroup_mode mode;
	ASSERT_OK(hsp_cgroup_detect_mode(&mode, &err), err);
	ck_assert_str_eq(hsp_cgroup_mode_name(mode), hsp_cgroup_mode_name(mounts_mode()));
}
END_TEST

/* The v1 mount points come from /proc/self/mountinfo: each is the cgroup
 * hierarchy /sys/fs/cgroup/<controller> leads to (a symlink for co-mounted
 * ones); a pure v2 host has none. */
START_TEST(test_v1_mounts)
{
	enum hsp_cgroup_mode mode = mounts_mode();
	size_t found = 0;
	for (size_t i = 0; i < 8; i++) {
		const char *mp = hsp_cg_v1_mount(v1_names[i]);
		cleanup_free char *usual = hsp_strdup_printf("/sys/fs/cgroup/%s", v1_names[i]);
		struct stat a, b;
		struct statfs fs;
		if (mp == NULL) {
			ck_assert_msg(mode == HSP_CGROUP_V2 || stat(usual, &b) < 0,
				      "%s: mounted but not found", v1_names[i]);
			continue;
		}
		found++;
		ck_assert_msg(mode != HSP_CGROUP_V2, "%s: v1 mount `%s` on a v2 host", v1_names[i],
			      mp);
		ck_assert_int_eq(statfs(mp, &fs), 0);
		ck_assert_msg(fs.f_type == CGROUP_SUPER_MAGIC, "%s: `%s` is no cgroup mount",
			      v1_names[i], mp);
		ck_assert_int_eq(stat(mp, &a), 0);
		ck_assert_int_eq(stat(usual, &b), 0);
		ck_assert_msg(a.st_dev == b.st_dev && a.st_ino == b.st_ino, "%s: `%s` is not `%s`",
			      v1_names[i], mp, usual);
	}
	ck_assert(mode == HSP_CGROUP_V2 || found >= 4); /* the required ones */
	ck_assert_ptr_null(hsp_cg_v1_mount("name=systemd"));
	ck_assert_ptr_null(hsp_cg_v1_mount("bogus"));
}
END_TEST

START_TEST(test_check_limits)
{
	hsp_error_t err = NULL;
	struct hsp_limits ok = {.set = HSP_LIMIT_MEMORY | HSP_LIMIT_PIDS | HSP_LIMIT_CPUS |
				       HSP_LIMIT_CPU_WEIGHT,
				.memory = 64 * MiB,
				.pids = 32,
				.cpus_milli = 500,
				.cpu_weight = 100};
	ASSERT_OK(hsp_cgroup_check_limits(&ok, &err), err);

	/* no block device of this host runs bfq and there is no iocost */
	struct hsp_limits io = {.set = HSP_LIMIT_IO_WEIGHT, .io_weight = 500};
	ck_assert_int_eq(hsp_cgroup_check_limits(&io, &err), -EOPNOTSUPP);
	ck_assert_ptr_nonnull(err);
	ck_assert_ptr_nonnull(strstr(err->msg, "io weight cannot be enforced"));
	hsp_error_release(&err);

	struct hsp_limits bad = {.set = HSP_LIMIT_CPU_WEIGHT, .cpu_weight = 0};
	ck_assert_int_eq(hsp_cgroup_check_limits(&bad, &err), -ERANGE);
	hsp_error_release(&err);
	bad = (struct hsp_limits){.set = HSP_LIMIT_IO_WEIGHT, .io_weight = 10001};
	ck_assert_int_eq(hsp_cgroup_check_limits(&bad, &err), -ERANGE);
	hsp_error_release(&err);
	bad = (struct hsp_limits){.set = HSP_LIMIT_CPUS, .cpus_milli = 5};
	ck_assert_int_eq(hsp_cgroup_check_limits(&bad, &err), -ERANGE);
	hsp_error_release(&err);
}
END_TEST

START_TEST(test_open_invalid)
{
	static const char *const bad[] = {
	    "",
	    "v9;memory=/a",
	    "hybrid",
	    "hybrid;",
	    "hybrid;memory",
	    "hybrid;memory=a/b",
	    "hybrid;memory=/a/../b;pids=/a;devices=/a;freezer=/a",
	    "hybrid;bogus=/a;pids=/a;devices=/a;freezer=/a",
	    "hybrid;pids=/a;devices=/a;freezer=/a", /* memory is required */
	    "hybrid;memory=/a;memory=/b;pids=/a;devices=/a;freezer=/a",
	    "v2;unified=/a;unified=/b",
	    "v2;memory=/a",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		hsp_error_t err = NULL;
		struct hsp_cgroup *cg = NULL;
		int r = hsp_cgroup_open(bad[i], &cg, &err);
		ck_assert_msg(r < 0, "`%s` accepted", bad[i]);
		ck_assert_ptr_null(cg);
		ck_assert_ptr_nonnull(err);
		hsp_error_release(&err);
	}
	/* well-formed, but for another kind of host */
	hsp_error_t err = NULL;
	struct hsp_cgroup *cg = NULL;
	const char *other = mounts_mode() == HSP_CGROUP_V2
				? "v1;memory=/a;pids=/a;devices=/a;freezer=/a"
				: "v2;unified=/a";
	ck_assert_int_eq(hsp_cgroup_open(other, &cg, &err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err->msg, "host"));
	hsp_error_release(&err);
}
END_TEST

START_TEST(test_bad_parent_env)
{
	require_root();
	hsp_error_t err = NULL;
	struct hsp_cgroup *cg = NULL;
	setenv("HSP_CGROUP_PARENT", "/a/../b", 1);
	ck_assert_int_eq(hsp_cgroup_create("x1", "bad", NULL, &cg, &err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err->msg, "HSP_CGROUP_PARENT"));
	hsp_error_release(&err);
	setenv("HSP_CGROUP_PARENT", "/a;b", 1);
	ck_assert_int_eq(hsp_cgroup_create("x1", "bad", NULL, &cg, &err), -EINVAL);
	hsp_error_release(&err);
	unsetenv("HSP_CGROUP_PARENT");
	ck_assert_int_eq(hsp_cgroup_create("X", "bad", NULL, &cg, &err), -EINVAL);
	hsp_error_release(&err);
}
END_TEST

/* A limit the host cannot enforce fails creation and leaves nothing. */
START_TEST(test_create_unsupported)
{
	require_root();
	unsetenv("HSP_CGROUP_PARENT");
	hsp_error_t err = NULL;
	struct hsp_limits io = {
	    .set = HSP_LIMIT_MEMORY | HSP_LIMIT_IO_WEIGHT, .memory = 64 * MiB, .io_weight = 500};
	if (hsp_cgroup_check_limits(&io, &err) == 0)
		return; /* this host has bfq or iocost */
	hsp_error_release(&err);
	char inst[32];
	snprintf(inst, sizeof(inst), "u%d", (int)runner);
	struct hsp_cgroup *cg = NULL;
	ck_assert_int_eq(hsp_cgroup_create(inst, "io", &io, &cg, &err), -EOPNOTSUPP);
	ck_assert_ptr_null(cg);
	hsp_error_release(&err);
	cleanup_free char *self = slurp("/proc/self/cgroup");
	const char *key = mounts_mode() == HSP_CGROUP_V2 ? "0::" : ":memory:";
	const char *own = strstr(self, key) + strlen(key);
	int olen = (int)strcspn(own, "\n");
	cleanup_free char *dir = hsp_strdup_printf("/sys/fs/cgroup%s%.*s/hsp-%s",
						   mounts_mode() == HSP_CGROUP_V2 ? "" : "/memory",
						   olen == 1 ? 0 : olen, own, inst);
	ck_assert_msg(gone(dir), "%s left behind", dir);
}
END_TEST

/* ---- round trips on the real tree ---- */

static void check_placement(struct hsp_cgroup *cg, enum hsp_cgroup_mode mode, const char *inst)
{
	cleanup_free char *self = slurp("/proc/self/cgroup");
	const char *key = mode == HSP_CGROUP_V2 ? "\n0::" : ":memory:";
	cleanup_free char *nl = hsp_strdup_printf("\n%s", self);
	const char *p = strstr(nl, key);
	ck_assert_ptr_nonnull(p);
	p += strlen(key);
	size_t n = strcspn(p, "\n");
	/* own group "/" gives "//hsp-..." in the concatenation: normalise */
	cleanup_free char *want =
	    hsp_strdup_printf("%.*s/hsp-%s/unit", (int)(n == 1 ? 0 : n), p, inst);
	cleanup_free char *entry =
	    hsp_strdup_printf(";%s=%s", mode == HSP_CGROUP_V2 ? "unified" : "memory", want);
	ck_assert_msg(strstr(hsp_cgroup_path(cg), entry) != NULL, "`%s` lacks `%s`",
		      hsp_cgroup_path(cg), entry);
}

static void check_created_limits(struct hsp_cgroup *cg, enum hsp_cgroup_mode mode)
{
	if (mode == HSP_CGROUP_V2) {
		assert_u64_file(cg, mode, "memory", "memory.max", 64 * MiB);
		assert_file(cg, mode, "pids", "pids.max", "32");
		assert_file(cg, mode, "cpu", "cpu.max", "50000 100000");
		assert_file(cg, mode, "cpu", "cpu.weight", "100");
		return;
	}
	assert_u64_file(cg, mode, "memory", "memory.limit_in_bytes", 64 * MiB);
	assert_file(cg, mode, "pids", "pids.max", "32");
	assert_file(cg, mode, "cpu", "cpu.cfs_quota_us", "50000");
	assert_file(cg, mode, "cpu", "cpu.cfs_period_us", "100000");
	assert_file(cg, mode, "cpu", "cpu.shares", "1024");
	assert_file(cg, mode, "devices", "devices.list",
		    "c 1:3 rwm\nc 1:5 rwm\nc 1:7 rwm\nc 1:8 rwm\nc 1:9 rwm\nc 5:0 rwm\n"
		    "c 5:1 rwm\nc 5:2 rwm\nc 136:* rwm\nc 10:200 rwm");
	cleanup_free char *cpus = cg_file(cg, mode, "cpuset", "cpuset.cpus");
	cleanup_free char *mems = cg_file(cg, mode, "cpuset", "cpuset.mems");
	ck_assert_str_ne(cpus, "");
	ck_assert_str_ne(mems, "");
}

static void set_mem(struct hsp_cgroup *cg, unsigned set, uint64_t mem, uint64_t swap)
{
	hsp_error_t err = NULL;
	struct hsp_limits l = {.set = set, .memory = mem, .swap = swap};
	ASSERT_OK(hsp_cgroup_set_limits(cg, &l, &err), err);
}

/* memsw must stay >= the memory limit across raises and cuts; the swap
 * allowance survives a memory-only change. */
static void check_swap(struct hsp_cgroup *cg, enum hsp_cgroup_mode mode)
{
	hsp_error_t err = NULL;
	struct hsp_limits probe = {.set = HSP_LIMIT_SWAP, .swap = 1};
	if (hsp_cgroup_check_limits(&probe, &err) < 0) {
		hsp_error_release(&err);
		return;
	}
	bool v2 = mode == HSP_CGROUP_V2;
	const char *mem = v2 ? "memory.max" : "memory.limit_in_bytes";
	const char *sw = v2 ? "memory.swap.max" : "memory.memsw.limit_in_bytes";
	set_mem(cg, HSP_LIMIT_MEMORY | HSP_LIMIT_SWAP, 128 * MiB, 64 * MiB);
	assert_u64_file(cg, mode, "memory", mem, 128 * MiB);
	assert_u64_file(cg, mode, "memory", sw, v2 ? 64 * MiB : 192 * MiB);
	set_mem(cg, HSP_LIMIT_MEMORY, 512 * MiB, 0); /* above the old memsw */
	assert_u64_file(cg, mode, "memory", mem, 512 * MiB);
	assert_u64_file(cg, mode, "memory", sw, v2 ? 64 * MiB : 576 * MiB);
	set_mem(cg, HSP_LIMIT_MEMORY, 32 * MiB, 0); /* below the old limit */
	assert_u64_file(cg, mode, "memory", mem, 32 * MiB);
	assert_u64_file(cg, mode, "memory", sw, v2 ? 64 * MiB : 96 * MiB);
	set_mem(cg, HSP_LIMIT_SWAP, 0, 0); /* no swap at all */
	assert_u64_file(cg, mode, "memory", sw, v2 ? 0 : 32 * MiB);
	set_mem(cg, HSP_LIMIT_MEMORY, 0, 0); /* unlimited memory lifts memsw on v1 */
	cleanup_free char *s = cg_file(cg, mode, "memory", mem);
	ck_assert(v2 ? strcmp(s, "max") == 0 : strtoull(s, NULL, 10) >= (1ULL << 62));
	set_mem(cg, HSP_LIMIT_MEMORY, 128 * MiB, 0);
}

static void check_freeze(struct hsp_cgroup *cg, enum hsp_cgroup_mode mode)
{
	hsp_error_t err = NULL;
	ASSERT_OK(hsp_cgroup_freeze(cg, 1, &err), err);
	if (mode == HSP_CGROUP_V2) {
		cleanup_free char *ev = cg_file(cg, mode, "", "cgroup.events");
		ck_assert_ptr_nonnull(strstr(ev, "frozen 1"));
	} else {
		assert_file(cg, mode, "freezer", "freezer.state", "FROZEN");
	}
	ASSERT_OK(hsp_cgroup_freeze(cg, 0, &err), err);
	if (mode == HSP_CGROUP_V2) {
		cleanup_free char *ev = cg_file(cg, mode, "", "cgroup.events");
		ck_assert_ptr_nonnull(strstr(ev, "frozen 0"));
	} else {
		assert_file(cg, mode, "freezer", "freezer.state", "THAWED");
	}
}

static void check_tasks(struct hsp_cgroup *cg, enum hsp_cgroup_mode mode)
{
	hsp_error_t err = NULL;
	int wfd;
	pid_t child = fork_waiting(&wfd, sleeper, NULL);
	ASSERT_OK(hsp_cgroup_attach(cg, child, &err), err);
	release(wfd);

	pid_t *pids = NULL;
	int n = hsp_cgroup_pids(cg, &pids, &err);
	ASSERT_OK(n, err);
	ck_assert_int_eq(n, 1);
	ck_assert_int_eq(pids[0], child);
	free(pids);

	struct hsp_usage u;
	ASSERT_OK(hsp_cgroup_usage(cg, &u, &err), err);
	ck_assert_uint_eq(u.pids, 1);

	check_freeze(cg, mode);
	set_mem(cg, HSP_LIMIT_MEMORY, 128 * MiB, 0);
	assert_u64_file(cg, mode, "memory",
			mode == HSP_CGROUP_V2 ? "memory.max" : "memory.limit_in_bytes", 128 * MiB);
	check_swap(cg, mode);

	ck_assert_int_eq(kill(child, SIGKILL), 0);
	ck_assert_int_eq(wait_exit(child), 128 + SIGKILL);
}

START_TEST(test_round_trip)
{
	require_root();
	unsetenv("HSP_CGROUP_PARENT");
	hsp_error_t err = NULL;
	enum hsp_cgroup_mode mode = mounts_mode();
	char inst[32];
	snprintf(inst, sizeof(inst), "t%d", (int)runner);
	struct hsp_limits lim = {.set = HSP_LIMIT_MEMORY | HSP_LIMIT_PIDS | HSP_LIMIT_CPUS |
					HSP_LIMIT_CPU_WEIGHT,
				 .memory = 64 * MiB,
				 .pids = 32,
				 .cpus_milli = 500,
				 .cpu_weight = 100};
	struct hsp_cgroup *cg = NULL;
	ASSERT_OK(hsp_cgroup_create(inst, "unit", &lim, &cg, &err), err);
	ck_assert_ptr_nonnull(strstr(hsp_cgroup_path(cg), hsp_cgroup_mode_name(mode)));
	check_placement(cg, mode, inst);
	check_created_limits(cg, mode);

	/* a left-over group is reused as it is, allow-list not doubled */
	struct hsp_cgroup *reused = NULL;
	ASSERT_OK(hsp_cgroup_create(inst, "unit", &lim, &reused, &err), err);
	ck_assert_str_eq(hsp_cgroup_path(reused), hsp_cgroup_path(cg));
	check_created_limits(reused, mode);
	hsp_cgroup_free(reused);

	/* a second process reopens the group from its state file */
	struct hsp_cgroup *again = NULL;
	ASSERT_OK(hsp_cgroup_open(hsp_cgroup_path(cg), &again, &err), err);
	ck_assert_str_eq(hsp_cgroup_path(again), hsp_cgroup_path(cg));
	check_tasks(again, mode);

	char *dirs[8];
	size_t n = collect_dirs(cg, mode, dirs);
	ck_assert_uint_ge(n, mode == HSP_CGROUP_V2 ? 1 : 4);
	ASSERT_OK(hsp_cgroup_destroy(cg, &err), err);
	assert_removed(dirs, n);
	free_dirs(dirs, n);
	ASSERT_OK(hsp_cgroup_destroy(again, &err), err); /* idempotent */
	hsp_cgroup_free(again);
	hsp_cgroup_free(cg);
}
END_TEST

/* A sub-group the VE made, and a sibling VE that keeps hsp-<instance>. */
START_TEST(test_destroy_nested)
{
	require_root();
	unsetenv("HSP_CGROUP_PARENT");
	hsp_error_t err = NULL;
	enum hsp_cgroup_mode mode = mounts_mode();
	char inst[32];
	snprintf(inst, sizeof(inst), "n%d", (int)runner);
	struct hsp_cgroup *a = NULL, *b = NULL;
	ASSERT_OK(hsp_cgroup_create(inst, "a", NULL, &a, &err), err);
	ASSERT_OK(hsp_cgroup_create(inst, "b", NULL, &b, &err), err);
	cleanup_free char *adir = ve_dir(a, ctrl_for(mode, "pids"));
	cleanup_free char *sub = hsp_strdup_printf("%s/child/grandchild", adir);
	ASSERT_OK(hsp_mkdir_p(sub, 0755, &err), err);

	int wfd;
	pid_t child = fork_waiting(&wfd, sleeper, NULL);
	cleanup_free char *procs = hsp_strdup_printf("%s/cgroup.procs", sub);
	char pid[16];
	snprintf(pid, sizeof(pid), "%d", (int)child);
	ASSERT_OK(hsp_cgroup_attach(a, child, &err), err);
	ASSERT_OK(hsp_write_file(procs, pid, strlen(pid), &err), err);
	release(wfd);
	pid_t *pids = NULL;
	ck_assert_int_eq(hsp_cgroup_pids(a, &pids, &err), 1); /* found in the sub-group */
	ck_assert_int_eq(pids[0], child);
	free(pids);

	/* still busy: EBUSY after the grace period, nothing lost */
	uint64_t t0 = hsp_now_ns();
	ck_assert_int_eq(hsp_cgroup_destroy(a, &err), -EBUSY);
	ck_assert_uint_ge(hsp_now_ns() - t0, 1500000000ULL);
	hsp_error_release(&err);
	ck_assert(!gone(sub));

	kill(child, SIGKILL);
	wait_exit(child);
	ASSERT_OK(hsp_cgroup_destroy(a, &err), err);
	ck_assert(gone(adir));
	char *slash = strrchr(adir, '/');
	*slash = '\0';
	ck_assert_msg(!gone(adir), "hsp-%s removed while b still uses it", inst);
	ASSERT_OK(hsp_cgroup_destroy(b, &err), err);
	ck_assert(gone(adir));
	hsp_cgroup_free(a);
	hsp_cgroup_free(b);

	/* killed while frozen: destroy still gets the group empty */
	ASSERT_OK(hsp_cgroup_create(inst, "c", NULL, &a, &err), err);
	child = fork_waiting(&wfd, sleeper, NULL);
	ASSERT_OK(hsp_cgroup_attach(a, child, &err), err);
	release(wfd);
	ASSERT_OK(hsp_cgroup_freeze(a, 1, &err), err);
	ck_assert_int_eq(hsp_cgroup_destroy(a, &err), -EBUSY); /* a task in the group itself */
	hsp_error_release(&err);
	ASSERT_OK(hsp_cgroup_freeze(a, 1, &err), err); /* destroy thawed it on v1 */
	kill(child, SIGKILL);
	ASSERT_OK(hsp_cgroup_destroy(a, &err), err);
	ck_assert_int_eq(wait_exit(child), 128 + SIGKILL);
	hsp_cgroup_free(a);
}
END_TEST

static int attach_procs(pid_t pid, void *ctx);

/* v2's "no internal processes" rule: a parent group with member
 * processes cannot get controllers, and the error says what to do. */
START_TEST(test_v2_busy_parent)
{
	require_root();
	unsetenv("HSP_CGROUP_PARENT");
	if (mounts_mode() != HSP_CGROUP_V2)
		return; /* v1 hierarchies have no such rule */
	char busy[64], inst[32];
	snprintf(busy, sizeof(busy), "/sys/fs/cgroup/hsp-busy-%d", (int)runner);
	snprintf(inst, sizeof(inst), "b%d", (int)runner);
	ck_assert_int_eq(mkdir(busy, 0755), 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		hsp_error_t err = NULL;
		struct hsp_cgroup *cg = NULL;
		if (attach_procs(getpid(), busy) < 0)
			_exit(1);
		int r = hsp_cgroup_create(inst, "x", NULL, &cg, &err);
		_exit(r == -EBUSY && strstr(err->msg, "HSP_CGROUP_PARENT") ? 0 : 2);
	}
	ck_assert_int_eq(wait_exit(pid), 0);
	ck_assert_int_eq(rmdir(busy), 0);
}
END_TEST

static int try_devices(void *arg)
{
	const char *base = arg;
	char blk[256], null[256], kvm[256];
	snprintf(blk, sizeof(blk), "%s-blk", base);
	snprintf(null, sizeof(null), "%s-null", base);
	snprintf(kvm, sizeof(kvm), "%s-kvm", base);
	if (mknod(blk, S_IFBLK | 0600, makedev(7, 0)) == 0 || errno != EPERM)
		return 1;
	if (mknod(kvm, S_IFCHR | 0600, makedev(10, 232)) == 0 || errno != EPERM)
		return 2;
	if (mknod(null, S_IFCHR | 0666, makedev(1, 3)) < 0)
		return 3;
	int fd = open(null, O_RDWR);
	if (fd < 0 || write(fd, "x", 1) != 1)
		return 4;
	close(fd);
	unlink(null);
	/* an existing node outside the list: the host's /dev/kvm */
	fd = open("/dev/kvm", O_RDWR);
	if (access("/dev/kvm", F_OK) == 0 && (fd >= 0 || errno != EPERM))
		return 5;
	return 0;
}

static void run_device_child(const char *base, int (*attach)(pid_t, void *), void *ctx)
{
	int wfd;
	pid_t child = fork_waiting(&wfd, try_devices, (void *)base);
	ck_assert_int_eq(attach(child, ctx), 0);
	release(wfd);
	int st = wait_exit(child);
	char p[256];
	static const char *const sfx[] = {"-blk", "-null", "-kvm"};
	for (size_t i = 0; i < 3; i++) {
		snprintf(p, sizeof(p), "%s%s", base, sfx[i]);
		unlink(p);
	}
	ck_assert_msg(st == 0, "device check failed at step %d", st);
}

static int attach_cg(pid_t pid, void *ctx)
{
	hsp_error_t err = NULL;
	int r = hsp_cgroup_attach(ctx, pid, &err);
	hsp_error_release(&err);
	return r;
}

START_TEST(test_device_allow_list)
{
	require_root();
	unsetenv("HSP_CGROUP_PARENT");
	hsp_error_t err = NULL;
	char inst[32], base[64];
	snprintf(inst, sizeof(inst), "d%d", (int)runner);
	snprintf(base, sizeof(base), "/tmp/hsp-cgtest-%d", (int)runner);
	struct hsp_cgroup *cg = NULL;
	ASSERT_OK(hsp_cgroup_create(inst, "dev", NULL, &cg, &err), err);
	run_device_child(base, attach_cg, cg);
	ASSERT_OK(hsp_cgroup_destroy(cg, &err), err);
	hsp_cgroup_free(cg);
}
END_TEST

static int attach_procs(pid_t pid, void *ctx)
{
	char buf[16];
	snprintf(buf, sizeof(buf), "%d", (int)pid);
	cleanup_free char *p = hsp_strdup_printf("%s/cgroup.procs", (const char *)ctx);
	hsp_error_t err = NULL;
	int r = hsp_write_file(p, buf, strlen(buf), &err);
	hsp_error_release(&err);
	return r;
}

/* The v2 eBPF allow-list, tried on the hybrid host's unified hierarchy
 * (device programs run there even though its controllers are v1). */
START_TEST(test_device_bpf_on_unified)
{
	require_root();
	if (mounts_mode() != HSP_CGROUP_HYBRID)
		return; /* v2 hosts cover it in test_device_allow_list */
	hsp_error_t err = NULL;
	cleanup_free char *self = slurp("/proc/self/cgroup");
	const char *v2 = strstr(self, "0::");
	ck_assert_ptr_nonnull(v2);
	v2 += 3;
	char dir[256], base[64];
	snprintf(dir, sizeof(dir), "/sys/fs/cgroup/unified%.*s/hsp-bpf-%d",
		 (int)(strcspn(v2, "\n") == 1 ? 0 : strcspn(v2, "\n")), v2, (int)runner);
	snprintf(base, sizeof(base), "/tmp/hsp-cgbpf-%d", (int)runner);
	ck_assert_int_eq(mkdir(dir, 0755), 0);
	ASSERT_OK(hsp_cgroup_attach_device_filter(dir, &err), err);
	/* attaching again replaces the program instead of stacking a second */
	ASSERT_OK(hsp_cgroup_attach_device_filter(dir, &err), err);
	run_device_child(base, attach_procs, dir);
	ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

struct mount_ctx {
	const char *root;
	enum hsp_cgroup_mode mode;
	bool userns; /* as the VE child: user+mount+cgroup namespaces */
};

/* Maps root of the new user namespace to host root (our own uid). */
static int map_self(void)
{
	hsp_error_t err = NULL;
	int r = hsp_write_file("/proc/self/uid_map", "0 0 1", 5, &err);
	if (r == 0)
		r = hsp_write_file("/proc/self/setgroups", "deny", 4, &err);
	if (r == 0)
		r = hsp_write_file("/proc/self/gid_map", "0 0 1", 5, &err);
	hsp_error_release(&err);
	return r;
}

static int expect_erofs_write(const char *path)
{
	int fd = open(path, O_WRONLY);
	bool ok = fd < 0 && errno == EROFS;
	if (fd >= 0)
		close(fd);
	return ok ? 0 : 1;
}

static int check_file(const char *path, const char *want)
{
	cleanup_free char *s = slurp(path);
	return s && strcmp(s, want) == 0 ? 0 : 1;
}

static int mount_child(void *arg)
{
	struct mount_ctx *m = arg;
	char p[512];
	int ns = CLONE_NEWNS | CLONE_NEWCGROUP | (m->userns ? CLONE_NEWUSER : 0);
	if (unshare(ns) < 0 || (m->userns && map_self() < 0) ||
	    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return 10;
	if (mount("tmpfs", m->root, "tmpfs", 0, "mode=755") < 0)
		return 11;
	snprintf(p, sizeof(p), "%s/sys/fs/cgroup", m->root);
	hsp_error_t err = NULL;
	if (hsp_mkdir_p(p, 0755, &err) < 0 || hsp_cgroup_mount_in_ve(m->mode, m->root, &err) < 0) {
		fprintf(stderr, "mount_in_ve: %s\n", err ? err->msg : "?");
		return 12;
	}
	bool v2 = m->mode == HSP_CGROUP_V2;
	/* the namespace root is the VE group: its limits show at the top */
	snprintf(p, sizeof(p), "%s/sys/fs/cgroup/%s", m->root,
		 v2 ? "memory.max" : "memory/memory.limit_in_bytes");
	if (check_file(p, "67108864"))
		return 13;
	snprintf(p, sizeof(p), "%s/sys/fs/cgroup/%s", m->root, v2 ? "pids.max" : "pids/pids.max");
	if (check_file(p, "32"))
		return 14;
	if (expect_erofs_write(p))
		return 15;
	snprintf(p, sizeof(p), "%s/sys/fs/cgroup/%s", m->root, v2 ? "sub" : "memory/sub");
	if (mkdir(p, 0755) == 0 || errno != EROFS)
		return 16;
	if (!v2) {
		snprintf(p, sizeof(p), "%s/sys/fs/cgroup/other", m->root);
		if (mkdir(p, 0755) == 0 || errno != EROFS) /* the tmpfs too */
			return 17;
		snprintf(p, sizeof(p), "%s/sys/fs/cgroup/devices/devices.list", m->root);
		if (access(p, R_OK) < 0)
			return 18;
	}
	return 0;
}

START_TEST(test_mount_in_ve)
{
	require_root();
	unsetenv("HSP_CGROUP_PARENT");
	hsp_error_t err = NULL;
	char inst[32], root[64];
	snprintf(inst, sizeof(inst), "m%d", (int)runner);
	snprintf(root, sizeof(root), "/tmp/hsp-cgroot-%d", (int)runner);
	ck_assert_int_eq(mkdir(root, 0755), 0);
	struct hsp_limits lim = {
	    .set = HSP_LIMIT_MEMORY | HSP_LIMIT_PIDS, .memory = 64 * MiB, .pids = 32};
	struct hsp_cgroup *cg = NULL;
	ASSERT_OK(hsp_cgroup_create(inst, "mnt", &lim, &cg, &err), err);
	int st[2];
	for (int userns = 0; userns < 2; userns++) {
		struct mount_ctx m = {.root = root, .mode = mounts_mode(), .userns = userns};
		int wfd;
		pid_t child = fork_waiting(&wfd, mount_child, &m);
		ASSERT_OK(hsp_cgroup_attach(cg, child, &err), err);
		release(wfd);
		st[userns] = wait_exit(child);
	}
	rmdir(root);
	ASSERT_OK(hsp_cgroup_destroy(cg, &err), err);
	hsp_cgroup_free(cg);
	ck_assert_msg(st[0] == 0, "mount check failed at step %d", st[0]);
	ck_assert_msg(st[1] == 0, "mount check in a user namespace failed at step %d", st[1]);
}
END_TEST

/* ---- the monitor's calls stay clear of libcgroup ---- */

/* libcgroup 2.0.2's mount table (exported, not in its headers): the first
 * entry's name, its first member, is set by cgroup_init() on any host with
 * a cgroup mount.  Empty means libcgroup was never initialised here. */
extern char cg_mount_table[];

static bool lib_table_empty(void)
{
	return cg_mount_table[0] == '\0';
}

/* Did this process use libcgroup since `entries` (hsp_cg_lib_entries) was
 * taken?  With `fresh` (libcgroup untouched then) its own state counts
 * too, so a path into libcgroup that bypasses hsp_cg_lib_init fails. */
static bool lib_used(unsigned long entries, bool fresh)
{
	return hsp_cg_lib_entries() != entries || (fresh && !lib_table_empty());
}

/* Moves us back to the groups `before` (/proc/self/cgroup text) names, in
 * every hierarchy where we have left it; usual layout assumed
 * (/sys/fs/cgroup/<controllers>, unified under it on hybrid hosts). */
static int move_back(const char *before, enum hsp_cgroup_mode mode)
{
	cleanup_free char *now = slurp("/proc/self/cgroup");
	char pid[16];
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	const char *b = before, *a = now;
	while (a && *b && *a) {
		size_t bn = strcspn(b, "\n"), an = strcspn(a, "\n");
		cleanup_free char *l = strndup(b, bn);
		bool moved = bn != an || memcmp(a, b, bn) != 0;
		b += bn + (b[bn] == '\n');
		a += an + (a[an] == '\n');
		if (!moved)
			continue;
		char *c1 = strchr(l, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		if (c2 == NULL)
			return -1;
		*c2 = '\0';
		cleanup_free char *procs =
		    c1[1] != '\0'
			? hsp_strdup_printf("/sys/fs/cgroup/%s%s/cgroup.procs", c1 + 1, c2 + 1)
		    : mode == HSP_CGROUP_V2
			? hsp_strdup_printf("/sys/fs/cgroup%s/cgroup.procs", c2 + 1)
			: hsp_strdup_printf("/sys/fs/cgroup/unified%s/cgroup.procs", c2 + 1);
		hsp_error_t err = NULL;
		int r = hsp_write_file(procs, pid, strlen(pid), &err);
		if (r < 0)
			fprintf(stderr, "move back: %s\n", err->msg);
		hsp_error_release(&err);
		if (r < 0)
			return r;
	}
	return a && *b == '\0' && *a == '\0' ? 0 : -1;
}

struct mon_ctx {
	const char *serialized;
	struct mount_ctx mount;
};

/* The VE's cgroupfs, as the VE child makes it, from a member of the group. */
static int mon_mount(void *arg)
{
	struct mon_ctx *m = arg;
	unsigned long entries = hsp_cg_lib_entries();
	bool fresh = lib_table_empty();
	int r = mount_child(&m->mount);
	return r ? r : lib_used(entries, fresh) ? 30 : 0;
}

/* What the monitor does with the group, in a process that never used
 * libcgroup (the test runs in a fork of main; the group was made in
 * another child).  The exit code names the failed step. */
static int mon_child(void *arg)
{
	struct mon_ctx *m = arg;
	unsigned long entries = hsp_cg_lib_entries();
	bool fresh = lib_table_empty();
	if (!fresh)
		fprintf(stderr, "test_cgroup: libcgroup initialised before the monitor "
				"check; only counting hsp_cg_lib_init\n");
	hsp_error_t err = NULL;
	struct hsp_cgroup *cg = NULL;
	cleanup_free char *before = slurp("/proc/self/cgroup");
	cleanup_free pid_t *pids = NULL;
	int step = 0, n = 0;
	if (before == NULL)
		step = 1;
	else if (hsp_cgroup_open(m->serialized, &cg, &err) < 0)
		step = 2;
	else if (hsp_cgroup_attach(cg, getpid(), &err) < 0)
		step = 3;
	else if ((n = hsp_cgroup_pids(cg, &pids, &err)) != 1 || pids[0] != getpid())
		step = 4;
	if (step) {
		fprintf(stderr, "monitor step %d: %s\n", step, err ? err->msg : "?");
		hsp_error_release(&err);
		return step;
	}
	int wfd;
	pid_t ve = fork_waiting(&wfd, mon_mount, m);
	release(wfd);
	int st = wait_exit(ve);
	if (st != 0) {
		fprintf(stderr, "monitor: VE mount check failed at step %d\n", st);
		step = 5;
	} else if (move_back(before, m->mount.mode) < 0) {
		step = 6;
	} else if (hsp_cgroup_destroy(cg, &err) < 0) {
		step = 7;
	} else if (lib_used(entries, fresh)) {
		step = 8;
	}
	if (step)
		fprintf(stderr, "monitor step %d: %s\n", step, err ? err->msg : "libcgroup used");
	hsp_error_release(&err);
	hsp_cgroup_free(cg);
	return step;
}

/* Creates the group (libcgroup allowed) and sends its serialized path down
 * `fd`.  It also shows that lib_used sees libcgroup. */
static int mon_creator(int fd, const char *inst)
{
	unsigned long entries = hsp_cg_lib_entries();
	bool fresh = lib_table_empty();
	hsp_error_t err = NULL;
	struct hsp_cgroup *cg = NULL;
	struct hsp_limits lim = {
	    .set = HSP_LIMIT_MEMORY | HSP_LIMIT_PIDS, .memory = 64 * MiB, .pids = 32};
	if (hsp_cgroup_create(inst, "mon", &lim, &cg, &err) < 0) {
		fprintf(stderr, "create: %s\n", err->msg);
		return 1;
	}
	const char *s = hsp_cgroup_path(cg);
	if (hsp_cg_lib_entries() == entries || (fresh && lib_table_empty()))
		return 2; /* lib_used would not notice libcgroup */
	return write(fd, s, strlen(s)) == (ssize_t)strlen(s) ? 0 : 3;
}

/* The monitor opens the group from its serialized path, joins it, lists
 * its tasks, mounts the VE's cgroupfs and destroys it, all without
 * libcgroup: cgroup_init() alone would leave ~800 KiB resident in it. */
START_TEST(test_monitor_without_libcgroup)
{
	require_root();
	unsetenv("HSP_CGROUP_PARENT");
	char inst[32], root[64], buf[4096];
	snprintf(inst, sizeof(inst), "mon-%d", (int)runner);
	snprintf(root, sizeof(root), "/tmp/hsp-cgroot-%d", (int)runner);
	int p[2];
	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	pid_t creator = fork();
	ck_assert_int_ge(creator, 0);
	if (creator == 0) {
		close(p[0]);
		_exit(mon_creator(p[1], inst));
	}
	close(p[1]);
	ssize_t len = read(p[0], buf, sizeof(buf) - 1);
	close(p[0]);
	ck_assert_int_eq(wait_exit(creator), 0);
	ck_assert_int_gt(len, 0);
	buf[len] = '\0';

	ck_assert_int_eq(mkdir(root, 0755), 0);
	struct mon_ctx m = {.serialized = buf,
			    .mount = {.root = root, .mode = mounts_mode(), .userns = false}};
	int wfd;
	pid_t mon = fork_waiting(&wfd, mon_child, &m);
	release(wfd);
	int st = wait_exit(mon);
	rmdir(root);
	ck_assert_msg(st == 0, "monitor check failed at step %d", st);

	/* destroyed: the VE group and hsp-<instance> are gone everywhere */
	for (const char *e = strchr(buf, ';'); e; e = strchr(e + 1, ';')) {
		const char *eq = strchr(e, '=');
		ck_assert_ptr_nonnull(eq);
		size_t n = strcspn(eq, ";");
		char *dir = m.mount.mode == HSP_CGROUP_V2
				? hsp_strdup_printf("/sys/fs/cgroup%.*s", (int)n - 1, eq + 1)
				: hsp_strdup_printf("/sys/fs/cgroup/%.*s%.*s", (int)(eq - e - 1),
						    e + 1, (int)n - 1, eq + 1);
		assert_removed(&dir, 1);
		free(dir);
	}
}
END_TEST

/* HSP_CGROUP_PARENT naming a group that does not exist yet: it is made
 * (v1 cpuset levels filled so tasks can join) and left in place. */
START_TEST(test_parent_env)
{
	require_root();
	hsp_error_t err = NULL;
	enum hsp_cgroup_mode mode = mounts_mode();
	cleanup_free char *self = slurp("/proc/self/cgroup");
	const char *key = mode == HSP_CGROUP_V2 ? "0::" : ":memory:";
	const char *own = strstr(self, key);
	ck_assert_ptr_nonnull(own);
	own += strlen(key);
	int olen = (int)strcspn(own, "\n");
	cleanup_free char *parent =
	    hsp_strdup_printf("%.*s/hsp-ptest-%d", olen == 1 ? 0 : olen, own, (int)runner);
	setenv("HSP_CGROUP_PARENT", parent, 1);
	char inst[32];
	snprintf(inst, sizeof(inst), "p%d", (int)runner);
	struct hsp_cgroup *cg = NULL;
	ASSERT_OK(hsp_cgroup_create(inst, "unit", NULL, &cg, &err), err);
	unsetenv("HSP_CGROUP_PARENT");
	cleanup_free char *entry = hsp_strdup_printf("=%s/hsp-%s/unit", parent, inst);
	ck_assert_ptr_nonnull(strstr(hsp_cgroup_path(cg), entry));

	int wfd;
	pid_t child = fork_waiting(&wfd, NULL, NULL);
	ASSERT_OK(hsp_cgroup_attach(cg, child, &err), err);
	release(wfd);
	wait_exit(child);
	ASSERT_OK(hsp_cgroup_destroy(cg, &err), err);
	hsp_cgroup_free(cg);

	/* remove the parent chain this test made in every hierarchy */
	static const char *const mounts[] = {"memory", "pids",	  "devices", "freezer",
					     "cpu",    "cpuacct", "cpuset",  "blkio"};
	for (size_t i = 0; i < (mode == HSP_CGROUP_V2 ? 1 : 8); i++) {
		cleanup_free char *d =
		    mode == HSP_CGROUP_V2
			? hsp_strdup_printf("/sys/fs/cgroup%s", parent)
			: hsp_strdup_printf("/sys/fs/cgroup/%s%s", mounts[i], parent);
		/* own path levels exist only in the memory hierarchy here */
		while (strlen(d) > strlen("/sys/fs/cgroup/") + strlen(mounts[i]) && rmdir(d) == 0) {
			*strrchr(d, '/') = '\0';
		}
		ck_assert_msg(strcmp(mounts[i], "memory") != 0 || !gone(d), "own memcg removed");
	}
}
END_TEST

/* ---- leftovers of failed runs ---- */

static void write_quiet(const char *dir, const char *file, const char *val)
{
	cleanup_free char *p = hsp_strdup_printf("%s/%s", dir, file);
	int fd = open(p, O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (write(fd, val, strlen(val)) < 0) {
			/* not frozen or already gone: nothing to undo */
		}
		close(fd);
	}
}

/* Thaws and kills every task of a group tree (first pass), or removes
 * the tree deepest first (second pass, once no hierarchy holds a frozen
 * task any more). */
static void reap_tree(const char *dir, bool remove)
{
	DIR *d = opendir(dir);
	if (d == NULL)
		return;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue;
		cleanup_free char *sub = hsp_strdup_printf("%s/%s", dir, de->d_name);
		reap_tree(sub, remove);
	}
	closedir(d);
	if (remove) {
		for (int i = 0; i < 100 && rmdir(dir) < 0 && errno == EBUSY; i++)
			usleep(10000);
		return;
	}
	write_quiet(dir, "freezer.state", "THAWED");
	write_quiet(dir, "cgroup.freeze", "0");
	cleanup_free char *procs = hsp_strdup_printf("%s/cgroup.procs", dir);
	cleanup_free char *list = slurp(procs);
	for (char *p = list; p && *p;) {
		char *end;
		long pid = strtol(p, &end, 10);
		if (end == p)
			break;
		kill((pid_t)pid, SIGKILL);
		p = end + (*end == '\n');
	}
}

static char *own_in(const char *self, const char *ctrl)
{
	cleanup_free char *key = ctrl ? hsp_strdup_printf(":%s:", ctrl) : strdup("0::");
	const char *p = strstr(self, key);
	if (p == NULL)
		return NULL;
	p += strlen(key);
	size_t n = strcspn(p, "\n");
	return strndup(p, n == 1 ? 0 : n);
}

/* Every group name the tests use, in every hierarchy. */
static void reap_pass(const char *self, const char *memown, const char *v2own, bool remove)
{
	static const char *const prefixes[] = {"t", "n",    "d",      "m",     "p",
					       "u", "bpf-", "ptest-", "busy-", "mon-"};
	for (size_t h = 0; h < 10; h++) {
		const char *ctrl = h < 8 ? v1_names[h] : NULL;
		cleanup_free char *root =
		    ctrl ? hsp_strdup_printf("/sys/fs/cgroup/%s", ctrl)
			 : strdup(h == 8 ? "/sys/fs/cgroup/unified" : "/sys/fs/cgroup");
		cleanup_free char *own = own_in(self, ctrl);
		for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
			/* HSP_CGROUP_PARENT puts every hierarchy under the memcg path */
			const char *base =
			    strcmp(prefixes[i], "ptest-") == 0 ? (ctrl ? memown : v2own) : own;
			cleanup_free char *dir = hsp_strdup_printf(
			    "%s%s/hsp-%s%d", root, base ? base : "", prefixes[i], (int)runner);
			reap_tree(dir, remove);
		}
	}
}

static void reap_leftovers(void)
{
	cleanup_free char *self = slurp("/proc/self/cgroup");
	cleanup_free char *memown = own_in(self ? self : "", "memory");
	cleanup_free char *v2own = own_in(self ? self : "", NULL);
	for (int pass = 0; self && pass < 2; pass++)
		reap_pass(self, memown, v2own, pass == 1);
	/* orphans of failed tests were reparented to us (subreaper) */
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
	static const char *const files[] = {"/tmp/hsp-cgtest-%d-blk", "/tmp/hsp-cgtest-%d-null",
					    "/tmp/hsp-cgtest-%d-kvm", "/tmp/hsp-cgbpf-%d-blk",
					    "/tmp/hsp-cgbpf-%d-null", "/tmp/hsp-cgbpf-%d-kvm"};
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		char p[64];
		snprintf(p, sizeof(p), files[i], (int)runner);
		unlink(p);
	}
	char p[64];
	snprintf(p, sizeof(p), "/tmp/hsp-cgroot-%d", (int)runner);
	rmdir(p);
}

static Suite *cgroup_suite(void)
{
	Suite *s = suite_create("cgroup");
	TCase *pure = tcase_create("pure");
	tcase_add_test(pure, test_mode_from_magic);
	tcase_add_test(pure, test_detect_mode);
	tcase_add_test(pure, test_v1_mounts);
	tcase_add_test(pure, test_check_limits);
	tcase_add_test(pure, test_open_invalid);
	suite_add_tcase(s, pure);

	TCase *live = tcase_create("live");
	tcase_set_timeout(live, 60);
	tcase_add_unchecked_fixture(live, NULL, reap_leftovers);
	tcase_add_test(live, test_bad_parent_env);
	tcase_add_test(live, test_round_trip);
	tcase_add_test(live, test_create_unsupported);
	tcase_add_test(live, test_destroy_nested);
	tcase_add_test(live, test_device_allow_list);
	tcase_add_test(live, test_device_bpf_on_unified);
	tcase_add_test(live, test_mount_in_ve);
	tcase_add_test(live, test_monitor_without_libcgroup);
	tcase_add_test(live, test_parent_env);
	tcase_add_test(live, test_v2_busy_parent);
	suite_add_tcase(s, live);
	return s;
}

int main(void)
{
	runner = getpid();
	/* tasks of failed tests outlive their test process: reap them here */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	SRunner *sr = srunner_create(cgroup_suite());
	srunner_run_all(sr, CK_ENV);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
