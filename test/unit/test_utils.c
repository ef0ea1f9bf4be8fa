/* Parsing and validation of user input. */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>

#include "utils.h"

static uint64_t size_ok(const char *s)
{
	hsp_error_t err = NULL;
	uint64_t v = 0;
	ck_assert_msg(hsp_parse_size(s, &v, &err) == 0, "parse `%s`: %s", s, err ? err->msg : "");
	return v;
}

static int size_bad(const char *s)
{
	hsp_error_t err = NULL;
	uint64_t v = 12345;
	int r = hsp_parse_size(s, &v, &err);
	ck_assert_msg(r < 0, "`%s` accepted", s);
	ck_assert_ptr_nonnull(err);
	ck_assert_ptr_nonnull(strstr(err->msg, "size"));
	ck_assert_uint_eq(v, 12345); /* untouched on error */
	hsp_error_release(&err);
	return r;
}

START_TEST(parse_sizes)
{
	ck_assert_uint_eq(size_ok("0"), 0);
	ck_assert_uint_eq(size_ok("512"), 512);
	ck_assert_uint_eq(size_ok("64K"), 65536);
	ck_assert_uint_eq(size_ok("64k"), 65536);
	ck_assert_uint_eq(size_ok("256M"), 256ULL << 20);
	ck_assert_uint_eq(size_ok("1.5G"), 3ULL << 29);
	ck_assert_uint_eq(size_ok("2T"), 2ULL << 40);
	size_bad("");
	size_bad("M");
	size_bad("-1");
	size_bad("12X");
	size_bad("1.G");
	size_bad("1 G");
	size_bad("0x10");
	size_bad("1MB");
	ck_assert_int_eq(size_bad("99999999999999999999"), -ERANGE);
	ck_assert_int_eq(size_bad("20000000000T"), -ERANGE);
}
END_TEST

START_TEST(parse_cpus)
{
	hsp_error_t err = NULL;
	uint64_t m;
	ck_assert_int_eq(hsp_parse_cpus("2", &m, &err), 0);
	ck_assert_uint_eq(m, 2000);
	ck_assert_int_eq(hsp_parse_cpus("0.5", &m, &err), 0);
	ck_assert_uint_eq(m, 500);
	ck_assert_int_eq(hsp_parse_cpus("0.25", &m, &err), 0);
	ck_assert_uint_eq(m, 250);
	const char *bad[] = {"0", "0.001", "abc", "", "1.", "-1", "2000", "1,5"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(hsp_parse_cpus(bad[i], &m, &err) < 0, "`%s` accepted", bad[i]);
		ck_assert_ptr_nonnull(err);
		hsp_error_release(&err);
	}
}
END_TEST

START_TEST(parse_u64_ranges)
{
	hsp_error_t err = NULL;
	uint64_t v;
	ck_assert_int_eq(hsp_parse_u64("100", 1, 10000, &v, "w", &err), 0);
	ck_assert_uint_eq(v, 100);
	ck_assert_int_eq(hsp_parse_u64("0", 1, 10000, &v, "w", &err), -ERANGE);
	hsp_error_release(&err);
	ck_assert_int_eq(hsp_parse_u64("10001", 1, 10000, &v, "w", &err), -ERANGE);
	hsp_error_release(&err);
	ck_assert_int_eq(hsp_parse_u64("12a", 1, 10000, &v, "w", &err), -EINVAL);
	hsp_error_release(&err);
	ck_assert_int_eq(hsp_parse_u64("-5", 0, 10, &v, "w", &err), -EINVAL);
	hsp_error_release(&err);
}
END_TEST

START_TEST(parse_signals)
{
	hsp_error_t err = NULL;
	int s;
	ck_assert_int_eq(hsp_parse_signal("SIGTERM", &s, &err), 0);
	ck_assert_int_eq(s, SIGTERM);
	ck_assert_int_eq(hsp_parse_signal("usr2", &s, &err), 0);
	ck_assert_int_eq(s, SIGUSR2);
	ck_assert_int_eq(hsp_parse_signal("9", &s, &err), 0);
	ck_assert_int_eq(s, SIGKILL);
	ck_assert_int_eq(hsp_parse_signal("SIGRTMIN+3", &s, &err), 0);
	ck_assert_int_eq(s, SIGRTMIN + 3);
	char buf[16];
	ck_assert_str_eq(hsp_signal_name(SIGRTMIN + 3, buf), "SIGRTMIN+3");
	ck_assert_str_eq(hsp_signal_name(SIGUSR2, buf), "SIGUSR2");
	ck_assert_int_lt(hsp_parse_signal("SIGNOPE", &s, &err), 0);
	hsp_error_release(&err);
	ck_assert_int_lt(hsp_parse_signal("0", &s, &err), 0);
	hsp_error_release(&err);
	ck_assert_int_lt(hsp_parse_signal("999", &s, &err), 0);
	hsp_error_release(&err);
}
END_TEST

START_TEST(names)
{
	hsp_error_t err = NULL;
	const char *good[] = {"a", "web-1", "0abc",
			      "x123456789012345678901234567890123456789012345678901234567890ab"};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		ck_assert_msg(hsp_validate_name(good[i], "VE", &err) == 0, "`%s` refused", good[i]);
	const char *bad[] = {
	    "",	   "-a",
	    "A",   "a_b",
	    "a/b", "..",
	    "a.b", "a b",
	    "é",   "x1234567890123456789012345678901234567890123456789012345678901ab"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(hsp_validate_name(bad[i], "VE", &err) == -EINVAL, "`%s` accepted",
			      bad[i]);
		ck_assert_ptr_nonnull(strstr(err->msg, "invalid VE name"));
		hsp_error_release(&err);
	}
	ck_assert_int_eq(hsp_validate_name(NULL, "VE", &err), -EINVAL);
	hsp_error_release(&err);
}
END_TEST

START_TEST(hostnames)
{
	hsp_error_t err = NULL;
	ck_assert_int_eq(hsp_validate_hostname("web1.example.com", &err), 0);
	ck_assert_int_eq(hsp_validate_hostname("A-b", &err), 0);
	const char *bad[] = {"", "-a", "a-", "a..b", ".a", "a.", "a b", "a_b"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(hsp_validate_hostname(bad[i], &err) < 0, "`%s` accepted", bad[i]);
		hsp_error_release(&err);
	}
}
END_TEST

START_TEST(errors)
{
	hsp_error_t err = NULL;
	ck_assert_int_eq(hsp_make_error(&err, ENOENT, "first %d", 1), -ENOENT);
	/* The first error wins: later ones are context, not the cause. */
	ck_assert_int_eq(hsp_make_error(&err, EIO, "second"), -EIO);
	ck_assert_str_eq(err->msg, "first 1");
	ck_assert_int_eq(hsp_error_wrap(&err, "ctx"), -ENOENT);
	ck_assert_str_eq(err->msg, "ctx: first 1");
	hsp_error_release(&err);
	ck_assert_ptr_null(err);
	ck_assert_int_eq(hsp_make_errno(&err, EACCES, "open `x`"), -EACCES);
	ck_assert_str_eq(err->msg, "open `x`: Permission denied");
	hsp_error_release(&err);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("utils");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, parse_sizes);
	tcase_add_test(tc, parse_cpus);
	tcase_add_test(tc, parse_u64_ranges);
	tcase_add_test(tc, parse_signals);
	tcase_add_test(tc, names);
	tcase_add_test(tc, hostnames);
	tcase_add_test(tc, errors);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
