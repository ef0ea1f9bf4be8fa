/* Allocation of per-VE user-namespace id ranges.  The VE configurations are
 * the only record: a range is in use while a VE's config names it, so there
 * is no second table to drift out of sync.  Callers hold the root lock. */
#define _GNU_SOURCE
#include "internal.h"
#include "utils.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

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

/* Ranges must not overlap across runtime instances either (tests and
 * simulated nodes share a machine), so every allocation is also recorded
 * in a machine-wide registry: one file per base, naming the VE directory
 * that owns it.  An entry whose directory is gone is free again, so a
 * crash never leaks a range; the VE directory exists from before the
 * allocation until its destroy. */
static const char *registry_dir(void)
{
	const char *d = getenv("HSP_ID_REGISTRY");
	return d && *d ? d : "/var/lib/hsp-ids";
}

static bool entry_live(const char *reg, const char *entry)
{
	cleanup_free char *path = hsp_strdup_printf("%s/%s", reg, entry);
	cleanup_free char *owner = NULL;
	hsp_error_t ignored = NULL;
	if (hsp_read_file(path, &owner, NULL, &ignored) < 0) {
		hsp_error_release(&ignored);
		return false;
	}
	owner[strcspn(owner, "\n")] = '\0';
	struct stat st;
	return owner[0] == '/' && stat(owner, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Adds the live bases of the registry to used[], growing it. */
static int registry_used(const char *reg, uid_t **used, size_t *n, hsp_error_t *err)
{
	DIR *d = opendir(reg);
	if (d == NULL)
		return hsp_make_errno(err, errno, "open id registry `%s`", reg);
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		char *end;
		unsigned long b = strtoul(de->d_name, &end, 10);
		if (de->d_name[0] == '.' || *end != '\0' || !entry_live(reg, de->d_name))
			continue;
		uid_t *nu = realloc(*used, (*n + 1) * sizeof(uid_t));
		if (nu == NULL) {
			closedir(d);
			return hsp_make_errno(err, ENOMEM, "allocate id range");
		}
		*used = nu;
		(*used)[(*n)++] = (uid_t)b;
	}
	closedir(d);
	return 0;
}

static int root_used(hsp_runtime_t *rt, uid_t **used, size_t *n, hsp_error_t *err)
{
	cleanup_strv char **names = NULL;
	int count = hsp_config_names(rt, &names, err);
	if (count < 0)
		return count;
	for (int i = 0; i < count; i++) {
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
		uid_t *nu = realloc(*used, (*n + 1) * sizeof(uid_t));
		if (nu == NULL) {
			hsp_config_clear(&c);
			return hsp_make_errno(err, ENOMEM, "allocate id range");
		}
		*used = nu;
		(*used)[(*n)++] = c.id_base;
		hsp_config_clear(&c);
	}
	return 0;
}

static int lock_registry(const char *reg, hsp_error_t *err)
{
	int r = hsp_mkdir_p(reg, 0700, err);
	if (r < 0)
		return r;
	cleanup_free char *lockpath = hsp_strdup_printf("%s/.lock", reg);
	int lock = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lock < 0 || flock(lock, LOCK_EX) < 0) {
		int e = errno;
		if (lock >= 0)
			close(lock);
		return hsp_make_errno(err, e, "lock id registry `%s`", lockpath);
	}
	return lock;
}

static int record(hsp_runtime_t *rt, const char *reg, const char *name, uid_t base,
		  hsp_error_t *err)
{
	cleanup_free char *entry = hsp_strdup_printf("%s/%u", reg, base);
	cleanup_free char *dir = hsp_ve_dir(rt, name);
	cleanup_free char *owner = hsp_strdup_printf("%s\n", dir);
	return hsp_write_file_atomic(entry, owner, strlen(owner), 0600, err);
}

static int allocate_locked(hsp_runtime_t *rt, const char *reg, const char *name, uid_t *base,
			   hsp_error_t *err);

int hsp_idmap_allocate(hsp_runtime_t *rt, const char *name, uid_t *base, hsp_error_t *err)
{
	const char *reg = registry_dir();
	cleanup_close int lock = lock_registry(reg, err);
	return lock < 0 ? lock : allocate_locked(rt, reg, name, base, err);
}

int hsp_idmap_claim(hsp_runtime_t *rt, const char *name, uid_t *base, hsp_error_t *err)
{
	const char *reg = registry_dir();
	cleanup_close int lock = lock_registry(reg, err);
	if (lock < 0)
		return lock;
	char key[16];
	snprintf(key, sizeof(key), "%u", *base);
	cleanup_free char *entry = hsp_strdup_printf("%s/%s", reg, key);
	cleanup_free char *owner = NULL;
	cleanup_free char *dir = hsp_ve_dir(rt, name);
	cleanup_free char *mine = hsp_strdup_printf("%s\n", dir);
	hsp_error_t ignored = NULL;
	int have = hsp_read_file(entry, &owner, NULL, &ignored);
	hsp_error_release(&ignored);
	if (have == 0 && strcmp(owner, mine) == 0)
		return 0;
	if (!entry_live(reg, key))
		return record(rt, reg, name, *base, err);
	/* Another VE on this machine has that range (the VE was made on
	 * another node): its files are stored unshifted, so any range works. */
	int r = allocate_locked(rt, reg, name, base, err);
	return r < 0 ? r : 1;
}

static int allocate_locked(hsp_runtime_t *rt, const char *reg, const char *name, uid_t *base,
			   hsp_error_t *err)
{
	cleanup_free uid_t *used = NULL;
	size_t n = 0;
	int r = root_used(rt, &used, &n, err);
	if (r == 0)
		r = registry_used(reg, &used, &n, err);
	if (r < 0)
		return r;
	r = hsp_idmap_pick(used, n, base);
	if (r == -ENOSPC)
		return hsp_make_error(err, ENOSPC, "no free user-namespace id range (%u in use)",
				      HSP_IDMAP_COUNT);
	if (r < 0)
		return hsp_make_errno(err, -r, "allocate id range");
	return record(rt, reg, name, *base, err);
}

void hsp_idmap_release(hsp_runtime_t *rt, const char *name, uid_t base)
{
	const char *reg = registry_dir();
	cleanup_free char *entry = hsp_strdup_printf("%s/%u", reg, base);
	cleanup_free char *owner = NULL;
	hsp_error_t ignored = NULL;
	if (hsp_read_file(entry, &owner, NULL, &ignored) < 0) {
		hsp_error_release(&ignored);
		return;
	}
	cleanup_free char *dir = hsp_ve_dir(rt, name);
	cleanup_free char *mine = hsp_strdup_printf("%s\n", dir);
	if (strcmp(owner, mine) == 0)
		unlink(entry);
}
