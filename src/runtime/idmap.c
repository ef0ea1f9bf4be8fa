/* Allocation of per-VE user-namespace id ranges.  The VE configurations are
 * the only record: a range is in use while a VE's config names it, so there
 * is no second table to drift out of sync.  Callers hold the root lock. */
#define _GNU_SOURCE
#include "internal.h"
#include "utils.h"

#include <errno.h>
#include <stdlib.h>

static int cmp_uid(const void *a, const void *b)
{
	uid_t x = *(const uid_t *)a, y = *(const uid_t *)b;
	return x < y ? -1 : x > y;
}

int hsp_idmap_pick(const uid_t *used, size_t n, uid_t *base)
{
	/* Lowest free slot; ranges are slot-aligned so "free" is an exact
	 * match test, and a misaligned record still blocks the slots it
	 * overlaps. */
	uid_t *sorted = NULL;
	if (n > 0) {
		sorted = malloc(n * sizeof(uid_t));
		if (sorted == NULL)
			return -ENOMEM;
		for (size_t i = 0; i < n; i++)
			sorted[i] = used[i];
		qsort(sorted, n, sizeof(uid_t), cmp_uid);
	}
	size_t j = 0;
	for (uint32_t k = 0; k < HSP_IDMAP_COUNT; k++) {
		uint64_t lo = HSP_IDMAP_FIRST + (uint64_t)k * HSP_IDMAP_SIZE;
		uint64_t hi = lo + HSP_IDMAP_SIZE;
		while (j < n && (uint64_t)sorted[j] + HSP_IDMAP_SIZE <= lo)
			j++;
		if (j < n && sorted[j] < hi)
			continue;
		*base = (uid_t)lo;
		free(sorted);
		return 0;
	}
	free(sorted);
	return -ENOSPC;
}

int hsp_idmap_allocate(hsp_runtime_t *rt, uid_t *base, hsp_error_t *err)
{
	cleanup_strv char **names = NULL;
	int n = hsp_config_names(rt, &names, err);
	if (n < 0)
		return n;
	cleanup_free uid_t *used = calloc(n + 1, sizeof(uid_t));
	if (used == NULL)
		return hsp_make_errno(err, ENOMEM, "allocate id range");
	size_t m = 0;
	for (int i = 0; i < n; i++) {
		struct hsp_ve_config c;
		hsp_error_t ignored = NULL;
		/* An unreadable config still owns its range: be conservative. */
		if (hsp_config_load(rt, names[i], &c, &ignored) < 0) {
			hsp_error_release(&ignored);
			return hsp_make_error(err, EIO,
					      "cannot allocate an id range: configuration of VE "
					      "`%s` is unreadable",
					      names[i]);
		}
		used[m++] = c.id_base;
		hsp_config_clear(&c);
	}
	int r = hsp_idmap_pick(used, m, base);
	if (r == -ENOSPC)
		return hsp_make_error(err, ENOSPC, "no free user-namespace id range (%u in use)",
				      HSP_IDMAP_COUNT);
	if (r < 0)
		return hsp_make_errno(err, -r, "allocate id range");
	return 0;
}
