/* The VE seccomp profile: building, the on-disk cache, and real enforcement
 * in a forked child (needs root: loading without no_new_privs requires
 * CAP_SYS_ADMIN). */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timex.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "seccomp.h"
#include "utils.h"

static struct hsp_seccomp_prog *build(void)
{
	struct hsp_seccomp_prog *p = NULL;
	hsp_error_t err = NULL;
	int r = hsp_seccomp_build(&p, &err);
	ck_assert_msg(r == 0, "build: %s", err ? err->msg : "?");
	return p;
}

static struct hsp_seccomp_prog *load(const char *dir)
{
	struct hsp_seccomp_prog *p = NULL;
	hsp_error_t err = NULL;
	int r = hsp_seccomp_load_cached(dir, &p, &err);
	ck_assert_msg(r == 0, "load_cached: %s", err ? err->msg : "?");
	ck_assert_ptr_nonnull(p);
	return p;
}

static bool same_prog(const struct hsp_seccomp_prog *a, const struct hsp_seccomp_prog *b)
{
	return hsp_seccomp_size(a) == hsp_seccomp_size(b) &&
	       memcmp(hsp_seccomp_insns(a), hsp_seccomp_insns(b),
		      hsp_seccomp_size(a) * sizeof(struct sock_filter)) == 0;
}

static bool has_arch_check(const struct hsp_seccomp_prog *p, uint32_t arch)
{
	const struct sock_filter *f = hsp_seccomp_insns(p);
	for (size_t i = 0; i < hsp_seccomp_size(p); i++)
		if (f[i].code == (BPF_JMP | BPF_JEQ | BPF_K) && f[i].k == arch)
			return true;
	return false;
}

START_TEST(test_build)
{
	struct hsp_seccomp_prog *p = build();
	ck_assert_uint_gt(hsp_seccomp_size(p), 0);
	ck_assert_uint_le(hsp_seccomp_size(p), BPF_MAXINSNS);
#ifdef __x86_64__
	/* The 32-bit ABI has its own numbering: it must be checked too. */
	ck_assert(has_arch_check(p, AUDIT_ARCH_X86_64));
	ck_assert(has_arch_check(p, AUDIT_ARCH_I386));
#endif
	struct hsp_seccomp_prog *q = build();
	ck_assert(same_prog(p, q)); /* deterministic: the cache may be shared */
	hsp_seccomp_free(q);
	hsp_seccomp_free(p);
	ck_assert_int_eq(hsp_seccomp_install(NULL), -EINVAL);
}
END_TEST

START_TEST(test_denied_list)
{
	/* Names libseccomp does not know make the build fail (fail closed), so
	 * test_build covers their validity. */
	const char *const *d = hsp_seccomp_denied();
	size_t n = 0;
	bool kexec = false;
	for (; d[n]; n++) {
		ck_assert_str_ne(d[n], "mount");
		ck_assert_str_ne(d[n], "pivot_root");
		ck_assert_str_ne(d[n], "unshare");
		ck_assert_str_ne(d[n], "adjtimex");
		kexec |= strcmp(d[n], "kexec_load") == 0;
	}
	ck_assert(kexec);
	ck_assert_uint_gt(n, 20);
}
END_TEST

static char *cache_file(const char *dir)
{
	cleanup_free char *pattern = hsp_strdup_printf("%s/seccomp-*.bpf", dir);
	glob_t g;
	ck_assert_int_eq(glob(pattern, 0, NULL, &g), 0);
	ck_assert_uint_eq(g.gl_pathc, 1);
	char *path = strdup(g.gl_pathv[0]);
	globfree(&g);
	return path;
}

static struct stat stat_ok(const char *path)
{
	struct stat st;
	ck_assert_int_eq(stat(path, &st), 0);
	return st;
}

static char *make_tmpdir(void)
{
	char *dir = strdup("/tmp/hsp-test-seccomp.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	return dir;
}

static void rm_tmpdir(const char *dir)
{
	hsp_error_t err = NULL;
	ck_assert_int_eq(hsp_rm_rf(dir, &err), 0);
}

START_TEST(test_cache)
{
	cleanup_free char *tmp = make_tmpdir();
	cleanup_free char *dir = hsp_strdup_printf("%s/a/b", tmp); /* created on demand */
	struct hsp_seccomp_prog *built = build();

	struct hsp_seccomp_prog *p1 = load(dir);
	ck_assert_uint_eq(stat_ok(dir).st_mode & 07777, 0700);
	cleanup_free char *path = cache_file(dir);
	struct stat st1 = stat_ok(path);
	ck_assert_uint_eq(st1.st_size, hsp_seccomp_size(built) * sizeof(struct sock_filter));
	ck_assert(same_prog(p1, built));

	/* A hit neither rewrites (same inode, same mtime) nor changes bytes. */
	struct hsp_seccomp_prog *p2 = load(dir);
	struct stat st2 = stat_ok(path);
	ck_assert_uint_eq(st2.st_ino, st1.st_ino);
	ck_assert_int_eq(st2.st_mtim.tv_sec, st1.st_mtim.tv_sec);
	ck_assert_int_eq(st2.st_mtim.tv_nsec, st1.st_mtim.tv_nsec);
	ck_assert(same_prog(p2, p1));

	/* A corrupt file (not a whole number of instructions) is replaced. */
	hsp_error_t err = NULL;
	ck_assert_int_eq(hsp_write_file(path, "abc", 3, &err), 0);
	struct hsp_seccomp_prog *p3 = load(dir);
	ck_assert(same_prog(p3, built));
	ck_assert_int_eq(stat_ok(path).st_size, st1.st_size);

	/* So is a file others could have written. */
	ck_assert_int_eq(chmod(path, 0666), 0);
	struct hsp_seccomp_prog *p4 = load(dir);
	ck_assert(same_prog(p4, built));
	ck_assert_uint_eq(stat_ok(path).st_mode & 022, 0);

	hsp_seccomp_free(p1);
	hsp_seccomp_free(p2);
	hsp_seccomp_free(p3);
	hsp_seccomp_free(p4);
	hsp_seccomp_free(built);
	rm_tmpdir(tmp);
}
END_TEST

/* ---- enforcement, checked in a child that installed the filter ---- */

static bool eperm(long r)
{
	return r == -1 && errno == EPERM;
}

/* Denied calls get arguments that would be harmless if the filter let them
 * through (NULL pointers, bad fds). */
static bool denied_modules(void)
{
	return eperm(syscall(SYS_init_module, NULL, 0, "")) &&
	       eperm(syscall(SYS_finit_module, -1, "", 0)) &&
	       eperm(syscall(SYS_delete_module, "hsp-none", 0));
}

static bool denied_kexec(void)
{
	return eperm(syscall(SYS_kexec_load, 0, 0, NULL, 0)) &&
	       eperm(syscall(SYS_kexec_file_load, -1, -1, 0, NULL, 0));
}

static bool denied_handles_bpf_perf(void)
{
	return eperm(syscall(SYS_open_by_handle_at, -1, NULL, 0)) &&
	       eperm(syscall(SYS_bpf, 0, NULL, 0)) &&
	       eperm(syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0)) &&
	       eperm(syscall(SYS_io_uring_setup, 0, NULL));
}

static bool denied_keyring(void)
{
	return eperm(syscall(SYS_keyctl, 0, 0, 0, 0, 0)) &&
	       eperm(syscall(SYS_add_key, NULL, NULL, NULL, 0, 0)) &&
	       eperm(syscall(SYS_request_key, NULL, NULL, NULL, 0));
}

static bool denied_clock(void)
{
	return eperm(syscall(SYS_clock_settime, CLOCK_REALTIME, NULL)) &&
	       eperm(syscall(SYS_settimeofday, NULL, NULL));
}

static bool denied_host_state(void)
{
	return eperm(syscall(SYS_swapon, NULL, 0)) && eperm(syscall(SYS_swapoff, NULL)) &&
	       eperm(syscall(SYS_acct, NULL)) && eperm(syscall(SYS_iopl, 0)) &&
	       eperm(syscall(SYS_ioperm, 0, 0, 0));
}

static bool allowed_basics(void)
{
	struct utsname u;
	struct timespec ts;
	struct timex tx = {.modes = 0}; /* reading: glibc uses clock_adjtime */
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	bool ok = syscall(SYS_getpid) == getpid() && uname(&u) == 0 && fd >= 0 &&
		  clock_gettime(CLOCK_REALTIME, &ts) == 0 && adjtimex(&tx) >= 0;
	if (fd >= 0)
		close(fd);
	return ok;
}

/* Nested containers and systemd need mount namespaces. */
static bool allowed_mounts(void)
{
	return unshare(CLONE_NEWNS) == 0 &&
	       mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0 &&
	       mount("tmpfs", "/tmp", "tmpfs", 0, NULL) == 0 && umount("/tmp") == 0;
}

static bool persona_ok(unsigned long v)
{
	return syscall(SYS_personality, v) != -1 && personality(PER_LINUX) != -1;
}

static bool allowed_personalities(void)
{
	static const unsigned long ok[] = {PER_LINUX, PER_LINUX32, UNAME26, PER_LINUX32 | UNAME26,
					   ADDR_NO_RANDOMIZE,
					   PER_LINUX32 | UNAME26 | ADDR_NO_RANDOMIZE, 0xffffffffUL,
					   /* the kernel reads an unsigned int */
					   0xffffffff00000000UL | PER_LINUX32};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (!persona_ok(ok[i]))
			return false;
	return personality(0xffffffff) == PER_LINUX;
}

static bool allowed_flag(uint32_t bit)
{
	return bit & (PER_LINUX32 | UNAME26 | ADDR_NO_RANDOMIZE);
}

static bool denied_personalities(void)
{
	if (!eperm(personality(READ_IMPLIES_EXEC)) || !eperm(personality(MMAP_PAGE_ZERO)) ||
	    !eperm(personality(PER_SVR4)) || !eperm(personality(PER_LINUX32_3GB)))
		return false;
	/* Each other bit alone, and every value with exactly one bit clear. */
	for (int b = 0; b < 32; b++) {
		uint32_t bit = UINT32_C(1) << b;
		if (!allowed_flag(bit) && !eperm(syscall(SYS_personality, (unsigned long)bit)))
			return false;
		if (!eperm(syscall(SYS_personality, (unsigned long)(~bit))))
			return false;
	}
	return personality(0xffffffff) == PER_LINUX;
}

static bool no_new_privs_unset(void)
{
	return prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 0;
}

static bool seccomp_mode_filter(void)
{
	cleanup_free char *status = NULL;
	hsp_error_t err = NULL;
	return hsp_read_file("/proc/self/status", &status, NULL, &err) == 0 &&
	       strstr(status, "\nSeccomp:\t2\n") != NULL;
}

#ifdef __x86_64__
/* A 32-bit syscall from 64-bit code: i386 numbers, audit arch I386. */
static long int80(long nr, long a, long b, long c)
{
	long ret;
	__asm__ volatile("int $0x80"
			 : "=a"(ret)
			 : "a"(nr), "b"(a), "c"(b), "d"(c)
			 : "memory", "cc", "r8", "r9", "r10", "r11");
	return ret;
}

#define I386_getpid 20
#define I386_init_module 128
#define I386_kexec_load 283
#define X32_BIT 0x40000000L

static bool ia32_available(void)
{
	pid_t pid = fork();
	if (pid == 0)
		_exit(int80(I386_getpid, 0, 0, 0) == getpid() ? 0 : 1);
	int status;
	return pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
	       WEXITSTATUS(status) == 0;
}

static bool compat_abis_filtered(void)
{
	if (int80(I386_getpid, 0, 0, 0) != getpid())
		return false;
	if (int80(I386_init_module, 0, 0, 0) != -EPERM || int80(I386_kexec_load, 0, 0, 0) != -EPERM)
		return false;
	/* x32: denied calls are EPERM; the rest are not killed (ENOSYS when
	 * the kernel lacks the x32 ABI). */
	long pid = syscall(X32_BIT | SYS_getpid);
	if (pid != getpid() && !(pid == -1 && errno == ENOSYS))
		return false;
	return eperm(syscall(X32_BIT | SYS_init_module, NULL, 0, ""));
}
#endif

struct check {
	const char *what;
	bool (*fn)(void);
};

static const struct check checks[] = {
    {"modules denied", denied_modules},
    {"kexec denied", denied_kexec},
    {"open_by_handle_at/bpf/perf/io_uring denied", denied_handles_bpf_perf},
    {"keyring denied", denied_keyring},
    {"clock setting denied", denied_clock},
    {"swap/acct/iopl denied", denied_host_state},
    {"basic calls allowed", allowed_basics},
    {"mount namespaces allowed", allowed_mounts},
    {"allowed personalities work", allowed_personalities},
    {"other personalities denied", denied_personalities},
    {"no_new_privs left unset", no_new_privs_unset},
    {"Seccomp: 2 in /proc/self/status", seccomp_mode_filter},
#ifdef __x86_64__
    {"i386 and x32 ABIs filtered", compat_abis_filtered},
#endif
};

#define NCHECKS (sizeof(checks) / sizeof(checks[0]))

/* Exit code: 0, or 1 + index of the first failed check; 100 + errno when
 * installing failed. */
static int run_checks(const struct hsp_seccomp_prog *p, bool skip_ia32)
{
	int r = hsp_seccomp_install(p);
	if (r < 0)
		return 100 + -r;
	for (size_t i = 0; i < NCHECKS; i++) {
		if (skip_ia32 && i == NCHECKS - 1)
			break;
		if (!checks[i].fn())
			return 1 + i;
	}
	return 0;
}

START_TEST(test_enforce)
{
	ck_assert_msg(geteuid() == 0, "needs root (CAP_SYS_ADMIN to install)");
	bool skip_ia32 = true;
#ifdef __x86_64__
	skip_ia32 = !ia32_available();
	if (skip_ia32)
		printf("test_seccomp: no ia32 emulation, 32-bit check skipped\n");
#endif
	struct hsp_seccomp_prog *p = build();
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		_exit(run_checks(p, skip_ia32));
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status), "child killed by signal %d", WTERMSIG(status));
	int code = WEXITSTATUS(status);
	ck_assert_msg(code < 100, "install: %s", strerror(code - 100));
	ck_assert_msg(code == 0, "failed: %s", checks[code - 1].what);
	hsp_seccomp_free(p);
}
END_TEST

/* Without CAP_SYS_ADMIN (and without no_new_privs) the kernel refuses. */
START_TEST(test_install_needs_sys_admin)
{
	struct hsp_seccomp_prog *p = build();
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		cap_t caps = cap_get_proc();
		cap_value_t admin = CAP_SYS_ADMIN;
		if (caps == NULL || cap_set_flag(caps, CAP_EFFECTIVE, 1, &admin, CAP_CLEAR) < 0 ||
		    cap_set_proc(caps) < 0)
			_exit(2);
		_exit(hsp_seccomp_install(p) == -EACCES ? 0 : 1);
	}
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	hsp_seccomp_free(p);
}
END_TEST

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static double median_us(uint64_t *ns, size_t n)
{
	qsort(ns, n, sizeof(*ns), cmp_u64);
	return ns[n / 2] / 1000.0;
}

#define RUNS 50

/* Not a pass/fail test: prints what the cache saves. */
START_TEST(test_timing)
{
	cleanup_free char *dir = make_tmpdir();
	uint64_t build_ns[RUNS], load_ns[RUNS];
	hsp_seccomp_free(load(dir)); /* fill the cache */
	for (int i = 0; i < RUNS; i++) {
		uint64_t t0 = hsp_now_ns();
		struct hsp_seccomp_prog *p = build();
		uint64_t t1 = hsp_now_ns();
		struct hsp_seccomp_prog *q = load(dir);
		uint64_t t2 = hsp_now_ns();
		build_ns[i] = t1 - t0;
		load_ns[i] = t2 - t1;
		hsp_seccomp_free(p);
		hsp_seccomp_free(q);
	}
	printf("test_seccomp: median of %d: build %.1f us, load cached %.1f us\n", RUNS,
	       median_us(build_ns, RUNS), median_us(load_ns, RUNS));
	rm_tmpdir(dir);
}
END_TEST

static Suite *seccomp_suite(void)
{
	Suite *s = suite_create("seccomp");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_build);
	tcase_add_test(tc, test_denied_list);
	tcase_add_test(tc, test_cache);
	tcase_add_test(tc, test_enforce);
	tcase_add_test(tc, test_install_needs_sys_admin);
	tcase_add_test(tc, test_timing);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(seccomp_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
