/* Allocation of per-VE id ranges: distinct, lowest-free, never overlapping. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>

#include "internal.h"

START_TEST(first_is_base)
{
	uid_t b = 0;
	ck_assert_int_eq(hsp_idmap_pick(NULL, 0, &b), 0);
	ck_assert_uint_eq(b, HSP_IDMAP_FIRST);
}
END_TEST

START_TEST(lowest_free_slot)
{
	uid_t used[] = {HSP_IDMAP_FIRST + 2 * HSP_IDMAP_SIZE, HSP_IDMAP_FIRST};
	uid_t b = 0;
	ck_assert_int_eq(hsp_idmap_pick(used, 2, &b), 0);
	ck_assert_uint_eq(b, HSP_IDMAP_FIRST + HSP_IDMAP_SIZE);
}
END_TEST

START_TEST(misaligned_record_blocks_overlap)
{
	/* A range recorded half-way into slots 0 and 1 blocks both. */
	uid_t used[] = {HSP_IDMAP_FIRST + HSP_IDMAP_SIZE / 2};
	uid_t b = 0;
	ck_assert_int_eq(hsp_idmap_pick(used, 1, &b), 0);
	ck_assert_uint_eq(b, HSP_IDMAP_FIRST + 2 * HSP_IDMAP_SIZE);
}
END_TEST

START_TEST(allocations_never_overlap)
{
	uid_t *used = calloc(HSP_IDMAP_COUNT, sizeof(uid_t));
	/* Sequential allocation, each checked against all before it... */
	const unsigned checked = 300;
	for (unsigned i = 0; i < checked; i++) {
		uid_t b;
		ck_assert_int_eq(hsp_idmap_pick(used, i, &b), 0);
		for (unsigned j = 0; j < i; j++)
			ck_assert_msg(b + HSP_IDMAP_SIZE <= used[j] ||
					  used[j] + HSP_IDMAP_SIZE <= b,
				      "range %u overlaps %u", b, used[j]);
		used[i] = b;
	}
	/* ...and the rest of the space filled slot by slot up to exhaustion. */
	for (unsigned i = checked; i < HSP_IDMAP_COUNT; i++)
		used[i] = HSP_IDMAP_FIRST + i * HSP_IDMAP_SIZE;
	uid_t b;
	ck_assert_int_eq(hsp_idmap_pick(used, HSP_IDMAP_COUNT, &b), -ENOSPC);
	/* Freeing one in the middle makes exactly that one available again. */
	uid_t freed = used[1234];
	used[1234] = used[HSP_IDMAP_COUNT - 1];
	ck_assert_int_eq(hsp_idmap_pick(used, HSP_IDMAP_COUNT - 1, &b), 0);
	ck_assert_uint_eq(b, freed);
	free(used);
}
END_TEST

START_TEST(ranges_fit_in_32_bits)
{
	uint64_t last = HSP_IDMAP_FIRST + (uint64_t)HSP_IDMAP_COUNT * HSP_IDMAP_SIZE;
	ck_assert(last < 0xFFFFFFFFULL);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("idmap");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, first_is_base);
	tcase_add_test(tc, lowest_free_slot);
	tcase_add_test(tc, misaligned_record_blocks_overlap);
	tcase_add_test(tc, allocations_never_overlap);
	tcase_add_test(tc, ranges_fit_in_32_bits);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
