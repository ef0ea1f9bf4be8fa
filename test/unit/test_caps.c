/* The system-container capability set, checked in a forked child that
 * dropped it (needs root to start with the full set). */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "caps.h"
#include "utils.h"

#define BIT(c) (UINT64_C(1) << (c))

static const cap_value_t must_drop[] = {CAP_SYS_MODULE, CAP_SYS_TIME, CAP_SYS_RAWIO,
					CAP_BPF,	CAP_PERFMON,  CAP_MAC_ADMIN};
static const cap_value_t must_keep[] = {CAP_SYS_ADMIN, CAP_NET_ADMIN, CAP_SETUID,
					CAP_CHOWN,     CAP_MKNOD,     CAP_SETPCAP};

/* "CapBnd:\t000001ffffffffff" in /proc/self/status -> bits. */
static bool own_caps(const char *name, uint64_t *out)
{
	cleanup_free char *status = NULL;
	cleanup_free char *key = hsp_strdup_printf("\n%s:\t", name);
	hsp_error_t err = NULL;
	if (hsp_read_file("/proc/self/status", &status, NULL, &err) < 0) {
		hsp_error_release(&err);
		return false;
	}
	const char *p = strstr(status, key);
	return p && sscanf(p + strlen(key), "%" SCNx64, out) == 1;
}

static uint64_t dropped_mask(void)
{
	uint64_t m = 0;
	for (const char *const *n = hsp_caps_dropped(); *n; n++) {
		cap_value_t c;
		ck_assert_msg(cap_from_name(*n, &c) == 0, "unknown capability `%s`", *n);
		m |= BIT(c);
	}
	return m;
}

static uint64_t kernel_mask(void)
{
	cleanup_free char *s = NULL;
	hsp_error_t err = NULL;
	ck_assert_int_eq(hsp_read_file("/proc/sys/kernel/cap_last_cap", &s, NULL, &err), 0);
	int last = atoi(s);
	ck_assert(last > 0 && last < 64);
	return (BIT(last) << 1) - 1;
}

START_TEST(test_dropped_list)
{
	uint64_t m = dropped_mask();
	for (size_t i = 0; i < sizeof(must_drop) / sizeof(must_drop[0]); i++)
		ck_assert(m & BIT(must_drop[i]));
	for (size_t i = 0; i < sizeof(must_keep) / sizeof(must_keep[0]); i++)
		ck_assert(!(m & BIT(must_keep[i])));
}
END_TEST

/* Child: exit 0, or the number of the failed step. */
static int child(uint64_t expect_bnd)
{
	/* An ambient capability that must not survive. */
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_ADMIN, 0, 0) < 0) {
		cap_t c = cap_get_proc();
		cap_value_t v = CAP_NET_ADMIN;
		if (!c || cap_set_flag(c, CAP_INHERITABLE, 1, &v, CAP_SET) < 0 ||
		    cap_set_proc(c) < 0 || prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, v, 0, 0) < 0)
			return 1;
		cap_free(c);
	}
	if (hsp_caps_drop() < 0)
		return 2;

	uint64_t bnd, eff, prm, amb;
	if (!own_caps("CapBnd", &bnd) || !own_caps("CapEff", &eff) || !own_caps("CapPrm", &prm) ||
	    !own_caps("CapAmb", &amb))
		return 3;
	for (size_t i = 0; i < sizeof(must_drop) / sizeof(must_drop[0]); i++)
		if ((bnd | eff | prm) & BIT(must_drop[i]))
			return 4;
	for (size_t i = 0; i < sizeof(must_keep) / sizeof(must_keep[0]); i++)
		if (!(bnd & eff & prm & BIT(must_keep[i])))
			return 5;
	if (bnd != expect_bnd || eff != expect_bnd || amb != 0)
		return 6;
	if (prctl(PR_CAPBSET_READ, CAP_SYS_MODULE, 0, 0, 0) != 0 ||
	    prctl(PR_CAPBSET_READ, CAP_SYS_ADMIN, 0, 0, 0) != 1)
		return 7;
	/* settimeofday(NULL, NULL) (raw: glibc dereferences tv) is a no-op that still checks
	 * CAP_SYS_TIME. */
	if (syscall(SYS_settimeofday, NULL, NULL) != -1 || errno != EPERM)
		return 8;
	/* Idempotent: a second drop (exec into a VE) must not fail. */
	if (hsp_caps_drop() < 0)
		return 9;
	return 0;
}

static const char *const steps[] = {
    "ok",
    "raise an ambient capability",
    "hsp_caps_drop",
    "read /proc/self/status",
    "a dropped capability is still in CapBnd/CapEff/CapPrm",
    "a kept capability is missing from CapBnd/CapEff/CapPrm",
    "CapBnd/CapEff differ from the kept set, or CapAmb is not empty",
    "PR_CAPBSET_READ disagrees",
    "settimeofday without CAP_SYS_TIME did not fail with EPERM",
    "second hsp_caps_drop",
};

START_TEST(test_drop)
{
	ck_assert_msg(geteuid() == 0, "needs root");
	ck_assert_int_eq(syscall(SYS_settimeofday, NULL, NULL), 0); /* the parent may */
	/* What we start with may lack some kept capabilities already. */
	uint64_t start;
	ck_assert(own_caps("CapBnd", &start));
	uint64_t expect = start & kernel_mask() & ~dropped_mask();
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		_exit(child(expect));
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status), "child killed by signal %d", WTERMSIG(status));
	int code = WEXITSTATUS(status);
	ck_assert_msg(code == 0, "failed: %s",
		      code < (int)(sizeof(steps) / sizeof(steps[0])) ? steps[code] : "?");
}
END_TEST

/* Without CAP_SETPCAP the bounding set cannot shrink: an error, not a
 * silent partial drop. */
START_TEST(test_drop_needs_setpcap)
{
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		cap_t c = cap_get_proc();
		cap_value_t v = CAP_SETPCAP;
		if (!c || cap_set_flag(c, CAP_EFFECTIVE, 1, &v, CAP_CLEAR) < 0 ||
		    cap_set_proc(c) < 0)
			_exit(2);
		_exit(hsp_caps_drop() == -EPERM ? 0 : 1);
	}
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}
END_TEST

static Suite *caps_suite(void)
{
	Suite *s = suite_create("caps");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_dropped_list);
	tcase_add_test(tc, test_drop);
	tcase_add_test(tc, test_drop_needs_setpcap);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(caps_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
