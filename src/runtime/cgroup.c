/* Control groups for VEs: see cgroup.h.
 *
 * Serialized form (hsp_cgroup_path, hsp_cgroup_open), one line of fields
 * separated by ';':
 *
 *     <mode>;<name>=<path>[;<name>=<path>...]
 *
 * <mode> is hsp_cgroup_mode_name(): "v1", "hybrid" or "v2".  On v1 and
 * hybrid hosts each <name> is a v1 controller (memory, pids, devices,
 * freezer, cpu, cpuacct, cpuset, blkio: those present on the host); on v2
 * there is a single entry named "unified".  <path> is the VE group relative
 * to the root of that hierarchy, as /proc/self/cgroup prints it:
 *
 *     hybrid;memory=/process_api/ab12/hsp-1f2e/web;pids=/hsp-1f2e/web;...
 *     v2;unified=/hsp.slice/hsp-1f2e/web
 *
 * Paths never contain ';' or a newline (creation refuses such parents).
 * The paths are relative to the cgroup namespace of the creating process,
 * so the string must be reopened from the same cgroup namespace. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "cgroup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/bpf.h>
#include <linux/magic.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include <libcgroup.h>

#include "utils.h"

#define CG_ROOT "/sys/fs/cgroup"
#define CG_UNIFIED CG_ROOT "/unified"
#define CG_PARENT_ENV "HSP_CGROUP_PARENT"
#define CPU_PERIOD_US 100000ULL
#define UNLIMITED UINT64_MAX
/* v1 reports "no limit" as PAGE_COUNTER_MAX pages (~2^63): anything this
 * large cannot be a real limit. */
#define V1_UNLIMITED_MIN (1ULL << 62)
#define DESTROY_TIMEOUT_NS (2ULL * 1000000000ULL)
#define FREEZE_TIMEOUT_NS (10ULL * 1000000000ULL)
#define CG_MAX_CTRL 8

struct cg_ctrl {
	const char *name; /* static: a v1 controller, or "unified" on v2 */
	char *rel;	  /* the VE group, relative to the hierarchy root */
	char *dir;	  /* absolute directory of the VE group */
};

struct hsp_cgroup {
	enum hsp_cgroup_mode mode;
	size_t n;
	struct cg_ctrl c[CG_MAX_CTRL];
	char *serialized;
};

/* Controllers a VE group is created in.  Required ones carry isolation or
 * the basic limits; the rest are used when the host has them. */
static const struct {
	const char *name;
	bool required;
} v1_ctrls[CG_MAX_CTRL] = {
    {"memory", true}, {"pids", true},	  {"devices", true}, {"freezer", true},
    {"cpu", false},   {"cpuacct", false}, {"cpuset", false}, {"blkio", false},
};

static const struct {
	const char *name;
	bool required;
} v2_ctrls[] = {
    {"memory", true},
    {"pids", true},
    {"cpu", false},
    {"io", false},
};

/* The VE's device allow-list: the pseudo devices a full OS needs, its
 * terminals and tun.  Everything else (block devices, /dev/kvm, /dev/mem...)
 * is denied for open and mknod.  minor -1 is a wildcard. */
static const struct {
	int major, minor;
} ve_devices[] = {
    {1, 3},    /* null */
    {1, 5},    /* zero */
    {1, 7},    /* full */
    {1, 8},    /* random */
    {1, 9},    /* urandom */
    {5, 0},    /* tty */
    {5, 1},    /* console */
    {5, 2},    /* ptmx */
    {136, -1}, /* pts */
    {10, 200}, /* net/tun */
};
#define N_VE_DEVICES (sizeof(ve_devices) / sizeof(ve_devices[0]))

/* ---- mode ---- */

int hsp_cgroup_mode_from_magic(long root_magic, long unified_magic, enum hsp_cgroup_mode *mode)
{
	if (root_magic == (long)CGROUP2_SUPER_MAGIC)
		*mode = HSP_CGROUP_V2;
	else if (root_magic == (long)TMPFS_MAGIC && unified_magic == (long)CGROUP2_SUPER_MAGIC)
		*mode = HSP_CGROUP_HYBRID;
	else if (root_magic == (long)TMPFS_MAGIC)
		*mode = HSP_CGROUP_V1;
	else
		return -EINVAL;
	return 0;
}

int hsp_cgroup_detect_mode(enum hsp_cgroup_mode *mode, hsp_error_t *err)
{
	struct statfs root, unified;
	if (statfs(CG_ROOT, &root) < 0)
		return hsp_make_errno(err, errno, "cgroup: statfs `%s`", CG_ROOT);
	long umagic = statfs(CG_UNIFIED, &unified) == 0 ? (long)unified.f_type : 0;
	if (hsp_cgroup_mode_from_magic((long)root.f_type, umagic, mode) < 0)
		return hsp_make_error(
		    err, EOPNOTSUPP,
		    "cgroup: `%s` is neither cgroup2 nor a tmpfs of v1 hierarchies "
		    "(filesystem magic %#lx)",
		    CG_ROOT, (long)root.f_type);
	return 0;
}

const char *hsp_cgroup_mode_name(enum hsp_cgroup_mode mode)
{
	switch (mode) {
	case HSP_CGROUP_V1:
		return "v1";
	case HSP_CGROUP_HYBRID:
		return "hybrid";
	case HSP_CGROUP_V2:
		return "v2";
	}
	return "unknown";
}

static int mode_from_name(const char *s, size_t len, enum hsp_cgroup_mode *mode)
{
	static const enum hsp_cgroup_mode all[] = {HSP_CGROUP_V1, HSP_CGROUP_HYBRID, HSP_CGROUP_V2};
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		const char *n = hsp_cgroup_mode_name(all[i]);
		if (strlen(n) == len && memcmp(n, s, len) == 0) {
			*mode = all[i];
			return 0;
		}
	}
	return -EINVAL;
}

/* ---- libcgroup glue ---- */

static void quiet_logger(void *userdata, int level, const char *fmt, va_list ap)
{
	(void)userdata;
	(void)level;
	(void)fmt;
	(void)ap;
}

static int lib_status;
static pthread_once_t lib_once = PTHREAD_ONCE_INIT;

static void lib_init_once(void)
{
	/* Without a logger libcgroup prints its warnings to stdout; library
	 * code must stay silent (errors come back through hsp_error_t). */
	cgroup_set_logger(quiet_logger, 0, NULL);
	lib_status = cgroup_init();
}

static int lib_errno(int ecg)
{
	switch (ecg) {
	case ECGOTHER: {
		int e = cgroup_get_last_errno();
		return e > 0 ? e : EIO;
	}
	case ECGROUPVALUENOTEXIST:
	case ECGROUPNOTEXIST:
		return ENOENT;
	case ECGROUPNOTOWNER:
		return EPERM;
	case ECGROUPNOTALLOWED:
		return EACCES;
	case ECGROUPNOTMOUNTED:
	case ECGROUPSUBSYSNOTMOUNTED:
		return ENODEV;
	case ECGNONEMPTY:
		return EBUSY;
	default:
		return EIO;
	}
}

/* Must run right after the failing libcgroup call (last_errno). */
static int lib_fail(hsp_error_t *err, int ecg, const char *what, const char *where)
{
	int e = lib_errno(ecg);
	const char *why = ecg == ECGOTHER ? strerror(e) : cgroup_strerror(ecg);
	return hsp_make_error(err, e, "cgroup: %s `%s`: %s", what, where, why);
}

static int lib_init(hsp_error_t *err)
{
	pthread_once(&lib_once, lib_init_once);
	if (lib_status != 0)
		return hsp_make_error(err, lib_errno(lib_status),
				      "cgroup: libcgroup initialisation failed: %s",
				      cgroup_strerror(lib_status));
	return 0;
}

/* Writes one control file through libcgroup.  One struct cgroup per value
 * keeps the order of writes explicit (memsw before or after the memory
 * limit) and makes the error name the file. */
static int lib_set(const char *rel, const char *ctrl, const char *dir, const char *file,
		   const char *value, hsp_error_t *err)
{
	struct cgroup *g = cgroup_new_cgroup(rel);
	if (g == NULL)
		return hsp_make_errno(err, ENOMEM, "cgroup: set `%s` in `%s`", file, dir);
	struct cgroup_controller *c = cgroup_add_controller(g, ctrl);
	int r = c ? cgroup_add_value_string(c, file, value) : ECGFAIL;
	if (r == 0)
		r = cgroup_modify_cgroup(g);
	int e = r ? lib_errno(r) : 0;
	cgroup_free(&g);
	if (r == 0)
		return 0;
	if (r == ECGROUPVALUENOTEXIST && access(dir, F_OK) == 0)
		return hsp_make_error(
		    err, EOPNOTSUPP,
		    "cgroup: cannot set `%s` in `%s`: no such file (not supported "
		    "by this kernel or controller not enabled)",
		    file, dir);
	return hsp_make_error(err, e, "cgroup: set `%s` to `%s` in `%s`: %s", file, value, dir,
			      r == ECGOTHER ? strerror(e) : cgroup_strerror(r));
}

/* ---- small file helpers ---- */

static char *path_join(const char *dir, const char *file)
{
	return hsp_strdup_printf("%s/%s", dir, file);
}

static bool file_exists(const char *dir, const char *file)
{
	cleanup_free char *p = path_join(dir, file);
	return access(p, F_OK) == 0;
}

static int read_str(const char *dir, const char *file, char **out, hsp_error_t *err)
{
	cleanup_free char *p = path_join(dir, file);
	int r = hsp_read_file(p, out, NULL, err);
	if (r < 0)
		return hsp_error_wrap(err, "cgroup");
	return 0;
}

static void trim(char *s)
{
	size_t n = strlen(s);
	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' '))
		s[--n] = '\0';
}

/* "max" (v2 "no limit") reads as UNLIMITED. */
static int parse_u64(const char *s, uint64_t *v)
{
	if (strncmp(s, "max", 3) == 0) {
		*v = UNLIMITED;
		return 0;
	}
	char *end;
	errno = 0;
	unsigned long long x = strtoull(s, &end, 10);
	if (errno != 0 || end == s || (*end != '\0' && *end != '\n' && *end != ' '))
		return -EINVAL;
	*v = x;
	return 0;
}

static int read_u64(const char *dir, const char *file, uint64_t *v, hsp_error_t *err)
{
	cleanup_free char *s = NULL;
	int r = read_str(dir, file, &s, err);
	if (r < 0)
		return r;
	if (parse_u64(s, v) < 0)
		return hsp_make_error(err, EINVAL, "cgroup: `%s/%s`: not a number: %.40s", dir,
				      file, s);
	return 0;
}

/* Value of `key` in a flat-keyed file such as cpu.stat or cgroup.events. */
static int read_key(const char *dir, const char *file, const char *key, uint64_t *v,
		    hsp_error_t *err)
{
	cleanup_free char *s = NULL;
	int r = read_str(dir, file, &s, err);
	if (r < 0)
		return r;
	size_t klen = strlen(key);
	for (char *line = s; *line;) {
		if (strncmp(line, key, klen) == 0 && line[klen] == ' ' &&
		    parse_u64(line + klen + 1, v) == 0)
			return 0;
		line = strchrnul(line, '\n');
		line += *line == '\n';
	}
	return hsp_make_error(err, ENOENT, "cgroup: `%s/%s`: no `%s` entry", dir, file, key);
}

/* Plain write for files libcgroup cannot reach (see callers). */
static int write_cg_file(const char *dir, const char *file, const char *val, hsp_error_t *err)
{
	cleanup_free char *p = path_join(dir, file);
	cleanup_close int fd = open(p, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return hsp_make_errno(err, errno, "cgroup: open `%s`", p);
	if (write(fd, val, strlen(val)) < 0)
		return hsp_make_errno(err, errno, "cgroup: write `%s` to `%s`", val, p);
	return 0;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* ---- paths ---- */

/* Is `ctrl` a member of the comma-separated `list` (len bytes)?  NULL ctrl
 * matches the empty list of the v2 line.  No allocation: also used in the
 * VE child after clone. */
static bool list_has(const char *list, size_t len, const char *ctrl)
{
	if (ctrl == NULL)
		return len == 0;
	size_t clen = strlen(ctrl);
	const char *end = list + len;
	for (const char *p = list; p < end;) {
		const char *comma = memchr(p, ',', (size_t)(end - p));
		const char *stop = comma ? comma : end;
		if ((size_t)(stop - p) == clen && memcmp(p, ctrl, clen) == 0)
			return true;
		p = stop + 1;
	}
	return false;
}

/* The caller's own group in one hierarchy, from /proc/self/cgroup text:
 * `ctrl` names a v1 controller, NULL selects the v2 line "0::/path". */
static char *own_path(const char *self, const char *ctrl)
{
	for (const char *line = self; *line;) {
		const char *nl = strchrnul(line, '\n');
		const char *c1 = memchr(line, ':', (size_t)(nl - line));
		const char *c2 = c1 ? memchr(c1 + 1, ':', (size_t)(nl - c1 - 1)) : NULL;
		if (c2 && list_has(c1 + 1, (size_t)(c2 - c1 - 1), ctrl))
			return strndup(c2 + 1, (size_t)(nl - c2 - 1));
		line = *nl ? nl + 1 : nl;
	}
	return NULL;
}

/* A group path must be absolute, without "." or ".." components, and free
 * of the separators of the serialized form. */
static bool valid_group_path(const char *p)
{
	if (p == NULL || p[0] != '/' || strpbrk(p, ";\n") != NULL)
		return false;
	for (const char *s = p; *s;) {
		while (*s == '/')
			s++;
		size_t n = strcspn(s, "/");
		if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
			return false;
		s += n;
	}
	return true;
}

static int parent_path(const char *self, const char *ctrl, char **out, hsp_error_t *err)
{
	const char *env = getenv(CG_PARENT_ENV);
	char *p = env && *env ? strdup(env) : own_path(self, ctrl);
	if (p == NULL)
		return -ENOENT;
	if (!valid_group_path(p)) {
		int r = hsp_make_error(err, EINVAL,
				       "cgroup: invalid parent group `%s`%s: must be an absolute "
				       "path without `.`, `..`, `;` or newlines",
				       p, env && *env ? " (from " CG_PARENT_ENV ")" : "");
		free(p);
		return r;
	}
	*out = p;
	return 0;
}

static char *ve_rel(const char *parent, const char *instance, const char *ve)
{
	size_t n = strlen(parent);
	while (n > 0 && parent[n - 1] == '/')
		n--;
	return hsp_strdup_printf("%.*s/hsp-%s/%s", (int)n, parent, instance, ve);
}

/* hsp-<instance> is the parent of the VE group. */
static char *dir_parent(const char *p)
{
	const char *slash = strrchr(p, '/');
	return strndup(p, slash && slash != p ? (size_t)(slash - p) : 1);
}

static struct cg_ctrl *ctrl_of(struct hsp_cgroup *cg, const char *name)
{
	if (cg->mode == HSP_CGROUP_V2)
		return &cg->c[0];
	for (size_t i = 0; i < cg->n; i++)
		if (strcmp(cg->c[i].name, name) == 0)
			return &cg->c[i];
	return NULL;
}

/* The controller libcgroup files a control file under: its prefix
 * ("memory.max" -> "memory", "cgroup.freeze" -> "cgroup", which libcgroup
 * maps to the v2 mount). */
static void file_ctrl(const char *file, char out[32])
{
	size_t n = strcspn(file, ".");
	if (n > 31)
		n = 31;
	memcpy(out, file, n);
	out[n] = '\0';
}

static int cg_set(struct hsp_cgroup *cg, const char *file, const char *value, hsp_error_t *err)
{
	char ctrl[32];
	file_ctrl(file, ctrl);
	const struct cg_ctrl *c = ctrl_of(cg, ctrl);
	if (c == NULL)
		return hsp_make_error(
		    err, EOPNOTSUPP,
		    "cgroup: cannot set `%s`: controller `%s` is not available on "
		    "this host",
		    file, ctrl);
	return lib_set(c->rel, ctrl, c->dir, file, value, err);
}

static int cg_set_u64(struct hsp_cgroup *cg, const char *file, uint64_t v, hsp_error_t *err)
{
	char buf[32];
	snprintf(buf, sizeof(buf), "%llu", (unsigned long long)v);
	return cg_set(cg, file, buf, err);
}

static const char *v1_mount_of(const char *ctrl, char **mp)
{
	*mp = NULL;
	if (cgroup_get_subsys_mount_point(ctrl, mp) != 0)
		*mp = NULL;
	return *mp;
}

/* ---- object ---- */

void hsp_cgroup_free(struct hsp_cgroup *cg)
{
	if (cg == NULL)
		return;
	for (size_t i = 0; i < cg->n; i++) {
		free(cg->c[i].rel);
		free(cg->c[i].dir);
	}
	free(cg->serialized);
	free(cg);
}

static void cgroup_freep(struct hsp_cgroup **cg)
{
	hsp_cgroup_free(*cg);
}
#define cleanup_cgroup __attribute__((cleanup(cgroup_freep)))

const char *hsp_cgroup_path(const struct hsp_cgroup *cg)
{
	return cg->serialized;
}

static void serialize(struct hsp_cgroup *cg)
{
	size_t len = strlen(hsp_cgroup_mode_name(cg->mode)) + 1;
	for (size_t i = 0; i < cg->n; i++)
		len += strlen(cg->c[i].name) + strlen(cg->c[i].rel) + 2;
	char *s = malloc(len);
	if (s == NULL)
		abort(); /* out of memory, as hsp_strdup_printf */
	char *p = stpcpy(s, hsp_cgroup_mode_name(cg->mode));
	for (size_t i = 0; i < cg->n; i++)
		p += sprintf(p, ";%s=%s", cg->c[i].name, cg->c[i].rel);
	free(cg->serialized);
	cg->serialized = s;
}

static int add_ctrl(struct hsp_cgroup *cg, const char *name, const char *mount, char *rel)
{
	struct cg_ctrl *c = &cg->c[cg->n++];
	c->name = name;
	c->rel = rel;
	c->dir = hsp_strdup_printf("%s%s", mount, rel);
	return 0;
}

static int v1_paths(struct hsp_cgroup *cg, const char *self, const char *instance, const char *ve,
		    hsp_error_t *err)
{
	for (size_t i = 0; i < CG_MAX_CTRL; i++) {
		const char *name = v1_ctrls[i].name;
		cleanup_free char *mp = NULL;
		cleanup_free char *parent = NULL;
		int r = v1_mount_of(name, &mp) ? parent_path(self, name, &parent, err) : -ENODEV;
		if (r < 0 && r != -ENOENT && r != -ENODEV)
			return r;
		if (r < 0 && v1_ctrls[i].required)
			return hsp_make_error(
			    err, EOPNOTSUPP, "cgroup: the v1 `%s` controller is not mounted", name);
		if (r < 0)
			continue;
		add_ctrl(cg, name, mp, ve_rel(parent, instance, ve));
	}
	return 0;
}

static int v2_paths(struct hsp_cgroup *cg, const char *self, const char *instance, const char *ve,
		    hsp_error_t *err)
{
	cleanup_free char *parent = NULL;
	int r = parent_path(self, NULL, &parent, err);
	if (r == -ENOENT)
		return hsp_make_error(err, ENOENT, "cgroup: no v2 entry in /proc/self/cgroup");
	if (r < 0)
		return r;
	return add_ctrl(cg, "unified", CG_ROOT, ve_rel(parent, instance, ve));
}

static int build(enum hsp_cgroup_mode mode, const char *instance, const char *ve,
		 struct hsp_cgroup **out, hsp_error_t *err)
{
	cleanup_free char *self = NULL;
	int r = hsp_read_file("/proc/self/cgroup", &self, NULL, err);
	if (r < 0)
		return hsp_error_wrap(err, "cgroup");
	cleanup_cgroup struct hsp_cgroup *cg = calloc(1, sizeof(*cg));
	if (cg == NULL)
		return hsp_make_errno(err, ENOMEM, "cgroup: allocate");
	cg->mode = mode;
	r = mode == HSP_CGROUP_V2 ? v2_paths(cg, self, instance, ve, err)
				  : v1_paths(cg, self, instance, ve, err);
	if (r < 0)
		return r;
	serialize(cg);
	*out = steal_pointer(&cg);
	return 0;
}

/* ---- limits ---- */

static int validate_limits(const struct hsp_limits *lim, hsp_error_t *err)
{
	if ((lim->set & HSP_LIMIT_CPUS) && lim->cpus_milli != 0 &&
	    (lim->cpus_milli < 10 || lim->cpus_milli > (1ULL << 30)))
		return hsp_make_error(err, ERANGE,
				      "cgroup: cpu limit %llu millicpus out of range (10 to 2^30)",
				      (unsigned long long)lim->cpus_milli);
	if ((lim->set & HSP_LIMIT_CPU_WEIGHT) && (lim->cpu_weight < 1 || lim->cpu_weight > 10000))
		return hsp_make_error(err, ERANGE,
				      "cgroup: cpu weight %llu out of range (1 to 10000)",
				      (unsigned long long)lim->cpu_weight);
	if ((lim->set & HSP_LIMIT_IO_WEIGHT) && (lim->io_weight < 1 || lim->io_weight > 10000))
		return hsp_make_error(err, ERANGE,
				      "cgroup: io weight %llu out of range (1 to 10000)",
				      (unsigned long long)lim->io_weight);
	return 0;
}

/* cpu.shares for a v2 weight, as systemd converts: proportional around the
 * defaults (weight 100 = 1024 shares), so a VE keeps its intended ratio
 * against sibling groups left at the default. */
static uint64_t weight_to_shares(uint64_t w)
{
	uint64_t s = w * 1024 / 100;
	return s < 2 ? 2 : s > 262144 ? 262144 : s;
}

/* BFQ weight (1..1000, default 100) for a v2 weight (1..10000, default
 * 100), systemd's piecewise-linear map that keeps the default fixed. */
static uint64_t weight_to_bfq(uint64_t w)
{
	if (w <= 100)
		return w;
	return 100 + (w - 100) * 900 / 9900;
}

/* CFQ's blkio.weight (10..1000, default 500), as systemd converts. */
static uint64_t weight_to_cfq(uint64_t w)
{
	uint64_t v = w * 500 / 100;
	return v < 10 ? 10 : v > 1000 ? 1000 : v;
}

/* Weights are enforced only on devices whose scheduler is bfq (or by
 * iocost on v2); having the cgroup files is not enough. */
static bool any_bfq_device(void)
{
	DIR *d = opendir("/sys/block");
	if (d == NULL)
		return false;
	bool found = false;
	struct dirent *de;
	while (!found && (de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		cleanup_free char *p =
		    hsp_strdup_printf("/sys/block/%s/queue/scheduler", de->d_name);
		cleanup_free char *s = NULL;
		hsp_error_t ignored = NULL;
		if (hsp_read_file(p, &s, NULL, &ignored) == 0 && strstr(s, "[bfq]") != NULL)
			found = true;
		hsp_error_release(&ignored);
	}
	closedir(d);
	return found;
}

static bool iocost_enabled(void)
{
	cleanup_free char *s = NULL;
	hsp_error_t ignored = NULL;
	bool on = read_str(CG_ROOT, "io.cost.qos", &s, &ignored) == 0 && strstr(s, "enable=1");
	hsp_error_release(&ignored);
	return on;
}

/* Is w one of the space-separated words? */
static bool word_in(const char *words, const char *w)
{
	size_t n = strlen(w);
	for (const char *p = words; (p = strstr(p, w)) != NULL; p += n)
		if ((p == words || p[-1] == ' ') && (p[n] == '\0' || p[n] == ' ' || p[n] == '\n'))
			return true;
	return false;
}

static bool v2_has_controller(const char *name)
{
	cleanup_free char *s = NULL;
	hsp_error_t ignored = NULL;
	int r = read_str(CG_ROOT, "cgroup.controllers", &s, &ignored);
	hsp_error_release(&ignored);
	return r == 0 && word_in(s, name);
}

/* Swap accounting on v2: a group with memory.max but no memory.swap.max
 * means it is off; without such a group, trust the kernel command line. */
static bool v2_swap_supported(void)
{
	DIR *d = opendir(CG_ROOT);
	int verdict = -1;
	struct dirent *de;
	while (d && verdict < 0 && (de = readdir(d)) != NULL) {
		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue;
		cleanup_free char *dir = path_join(CG_ROOT, de->d_name);
		if (file_exists(dir, "memory.max"))
			verdict = file_exists(dir, "memory.swap.max");
	}
	if (d)
		closedir(d);
	if (verdict >= 0)
		return verdict;
	cleanup_free char *cmdline = NULL;
	hsp_error_t ignored = NULL;
	int r = hsp_read_file("/proc/cmdline", &cmdline, NULL, &ignored);
	hsp_error_release(&ignored);
	return r < 0 ||
	       (strstr(cmdline, "swapaccount=0") == NULL && strstr(cmdline, "noswap") == NULL);
}

static bool v1_root_has(const char *ctrl, const char *file)
{
	cleanup_free char *mp = NULL;
	return v1_mount_of(ctrl, &mp) && file_exists(mp, file);
}

static int unsupported(hsp_error_t *err, const char *what, const char *why)
{
	return hsp_make_error(err, EOPNOTSUPP, "cgroup: %s cannot be enforced on this host: %s",
			      what, why);
}

static int check_v1(unsigned set, hsp_error_t *err)
{
	if ((set & HSP_LIMIT_MEMORY) && !v1_root_has("memory", "memory.limit_in_bytes"))
		return unsupported(err, "memory limit", "no v1 memory controller");
	if ((set & HSP_LIMIT_SWAP) && !v1_root_has("memory", "memory.memsw.limit_in_bytes"))
		return unsupported(err, "swap limit",
				   "no memory.memsw.limit_in_bytes (boot with swapaccount=1)");
	if ((set & HSP_LIMIT_CPUS) && !v1_root_has("cpu", "cpu.cfs_quota_us"))
		return unsupported(err, "cpu limit", "no cpu.cfs_quota_us (CFS bandwidth control)");
	if ((set & HSP_LIMIT_CPU_WEIGHT) && !v1_root_has("cpu", "cpu.shares"))
		return unsupported(err, "cpu weight", "no v1 cpu controller");
	if ((set & HSP_LIMIT_PIDS) && !v1_root_has("pids", "cgroup.procs"))
		return unsupported(err, "pids limit", "no v1 pids controller");
	if ((set & HSP_LIMIT_IO_WEIGHT) &&
	    !(v1_root_has("blkio", "cgroup.procs") &&
	      (any_bfq_device() || v1_root_has("blkio", "blkio.weight"))))
		return unsupported(err, "io weight",
				   "no block device uses the bfq scheduler (blkio.bfq.weight) "
				   "and there is no blkio.weight");
	return 0;
}

static int check_v2(unsigned set, hsp_error_t *err)
{
	if ((set & (HSP_LIMIT_MEMORY | HSP_LIMIT_SWAP)) && !v2_has_controller("memory"))
		return unsupported(err, "memory limit",
				   "no memory controller in cgroup.controllers");
	if ((set & HSP_LIMIT_SWAP) && !v2_swap_supported())
		return unsupported(err, "swap limit",
				   "swap accounting is off (no memory.swap.max)");
	if ((set & (HSP_LIMIT_CPUS | HSP_LIMIT_CPU_WEIGHT)) && !v2_has_controller("cpu"))
		return unsupported(err, "cpu limit", "no cpu controller in cgroup.controllers");
	if ((set & HSP_LIMIT_PIDS) && !v2_has_controller("pids"))
		return unsupported(err, "pids limit", "no pids controller in cgroup.controllers");
	if ((set & HSP_LIMIT_IO_WEIGHT) &&
	    !(v2_has_controller("io") && (any_bfq_device() || iocost_enabled())))
		return unsupported(err, "io weight",
				   "no block device uses the bfq scheduler and iocost is not "
				   "enabled (io.cost.qos)");
	return 0;
}

static int check_support(enum hsp_cgroup_mode mode, unsigned set, hsp_error_t *err)
{
	if (set == 0)
		return 0;
	int r = lib_init(err);
	if (r < 0)
		return r;
	return mode == HSP_CGROUP_V2 ? check_v2(set, err) : check_v1(set, err);
}

int hsp_cgroup_check_limits(const struct hsp_limits *lim, hsp_error_t *err)
{
	enum hsp_cgroup_mode mode;
	int r = validate_limits(lim, err);
	if (r == 0)
		r = hsp_cgroup_detect_mode(&mode, err);
	if (r == 0)
		r = check_support(mode, lim->set, err);
	return r;
}

static const char *v1_limit_str(uint64_t v, char buf[32])
{
	if (v == UNLIMITED)
		return "-1";
	snprintf(buf, 32, "%llu", (unsigned long long)v);
	return buf;
}

static uint64_t add_sat(uint64_t a, uint64_t b)
{
	return a > UNLIMITED - b ? UNLIMITED : a + b;
}

static int v1_read_limit(struct hsp_cgroup *cg, const char *file, uint64_t *v, hsp_error_t *err)
{
	int r = read_u64(ctrl_of(cg, "memory")->dir, file, v, err);
	if (r == 0 && *v >= V1_UNLIMITED_MIN)
		*v = UNLIMITED;
	return r;
}

/* v1 has no separate swap limit: memory.memsw.limit_in_bytes caps
 * memory+swap and must stay >= memory.limit_in_bytes after every write.
 * When only the memory limit changes, the swap allowance on top of it is
 * kept, as v2's independent memory.swap.max would.  Unlimited memory
 * forces unlimited memsw (v1 cannot cap swap alone). */
static int v1_set_memory(struct hsp_cgroup *cg, const struct hsp_limits *lim, hsp_error_t *err)
{
	const struct cg_ctrl *c = ctrl_of(cg, "memory");
	bool memsw = file_exists(c->dir, "memory.memsw.limit_in_bytes");
	char b1[32], b2[32];
	if ((lim->set & HSP_LIMIT_SWAP) && !memsw)
		return unsupported(err, "swap limit",
				   "no memory.memsw.limit_in_bytes (boot with swapaccount=1)");
	uint64_t cur_mem, cur_sw = UNLIMITED;
	int r = v1_read_limit(cg, "memory.limit_in_bytes", &cur_mem, err);
	if (r == 0 && memsw)
		r = v1_read_limit(cg, "memory.memsw.limit_in_bytes", &cur_sw, err);
	if (r < 0)
		return r;
	uint64_t mem =
	    (lim->set & HSP_LIMIT_MEMORY) ? (lim->memory ? lim->memory : UNLIMITED) : cur_mem;
	if (!memsw)
		return cg_set(cg, "memory.limit_in_bytes", v1_limit_str(mem, b1), err);
	uint64_t sw;
	if (lim->set & HSP_LIMIT_SWAP)
		sw = add_sat(mem, lim->swap);
	else
		sw = cur_sw == UNLIMITED ? UNLIMITED
					 : add_sat(mem, cur_sw > cur_mem ? cur_sw - cur_mem : 0);
	if (mem == UNLIMITED)
		sw = UNLIMITED;
	const char *ms = v1_limit_str(mem, b1), *ss = v1_limit_str(sw, b2);
	if (sw >= cur_mem) {
		r = cg_set(cg, "memory.memsw.limit_in_bytes", ss, err);
		return r < 0 ? r : cg_set(cg, "memory.limit_in_bytes", ms, err);
	}
	r = cg_set(cg, "memory.limit_in_bytes", ms, err);
	return r < 0 ? r : cg_set(cg, "memory.memsw.limit_in_bytes", ss, err);
}

static int v2_set_memory(struct hsp_cgroup *cg, const struct hsp_limits *lim, hsp_error_t *err)
{
	int r = 0;
	if (lim->set & HSP_LIMIT_MEMORY)
		r = lim->memory ? cg_set_u64(cg, "memory.max", lim->memory, err)
				: cg_set(cg, "memory.max", "max", err);
	if (r == 0 && (lim->set & HSP_LIMIT_SWAP))
		r = cg_set_u64(cg, "memory.swap.max", lim->swap, err);
	return r;
}

static int set_cpus(struct hsp_cgroup *cg, uint64_t milli, hsp_error_t *err)
{
	uint64_t quota = milli * CPU_PERIOD_US / 1000;
	char buf[64];
	if (cg->mode == HSP_CGROUP_V2) {
		if (milli == 0)
			snprintf(buf, sizeof(buf), "max %llu", CPU_PERIOD_US);
		else
			snprintf(buf, sizeof(buf), "%llu %llu", (unsigned long long)quota,
				 CPU_PERIOD_US);
		return cg_set(cg, "cpu.max", buf, err);
	}
	int r = cg_set_u64(cg, "cpu.cfs_period_us", CPU_PERIOD_US, err);
	if (r < 0)
		return r;
	return milli ? cg_set_u64(cg, "cpu.cfs_quota_us", quota, err)
		     : cg_set(cg, "cpu.cfs_quota_us", "-1", err);
}

static int set_io_weight(struct hsp_cgroup *cg, uint64_t w, hsp_error_t *err)
{
	const struct cg_ctrl *c = ctrl_of(cg, cg->mode == HSP_CGROUP_V2 ? "io" : "blkio");
	if (c == NULL)
		return unsupported(err, "io weight", "no blkio controller");
	bool v2 = cg->mode == HSP_CGROUP_V2;
	const char *iocost = v2 ? "io.weight" : "blkio.weight";
	const char *bfq = v2 ? "io.bfq.weight" : "blkio.bfq.weight";
	bool has_iocost = file_exists(c->dir, iocost), has_bfq = file_exists(c->dir, bfq);
	if (!has_iocost && !has_bfq)
		return unsupported(err, "io weight", "the group has no io weight file");
	char buf[32];
	int r = 0;
	if (has_iocost) {
		if (v2)
			snprintf(buf, sizeof(buf), "default %llu", (unsigned long long)w);
		else
			snprintf(buf, sizeof(buf), "%llu", (unsigned long long)weight_to_cfq(w));
		r = cg_set(cg, iocost, buf, err);
	}
	if (r == 0 && has_bfq)
		r = cg_set_u64(cg, bfq, weight_to_bfq(w), err);
	return r;
}

int hsp_cgroup_set_limits(struct hsp_cgroup *cg, const struct hsp_limits *lim, hsp_error_t *err)
{
	int r = validate_limits(lim, err);
	if (r == 0)
		r = check_support(cg->mode, lim->set, err);
	bool v2 = cg->mode == HSP_CGROUP_V2;
	if (r == 0 && (lim->set & (HSP_LIMIT_MEMORY | HSP_LIMIT_SWAP)))
		r = v2 ? v2_set_memory(cg, lim, err) : v1_set_memory(cg, lim, err);
	if (r == 0 && (lim->set & HSP_LIMIT_CPUS))
		r = set_cpus(cg, lim->cpus_milli, err);
	if (r == 0 && (lim->set & HSP_LIMIT_CPU_WEIGHT))
		r = v2 ? cg_set_u64(cg, "cpu.weight", lim->cpu_weight, err)
		       : cg_set_u64(cg, "cpu.shares", weight_to_shares(lim->cpu_weight), err);
	if (r == 0 && (lim->set & HSP_LIMIT_PIDS))
		r = lim->pids ? cg_set_u64(cg, "pids.max", lim->pids, err)
			      : cg_set(cg, "pids.max", "max", err);
	if (r == 0 && (lim->set & HSP_LIMIT_IO_WEIGHT))
		r = set_io_weight(cg, lim->io_weight, err);
	return r;
}

/* ---- devices: v1 allow-list ---- */

static int v1_devices(struct hsp_cgroup *cg, hsp_error_t *err)
{
	int r = cg_set(cg, "devices.deny", "a", err);
	for (size_t i = 0; r == 0 && i < N_VE_DEVICES; i++) {
		char rule[32], minor[16];
		if (ve_devices[i].minor < 0)
			snprintf(minor, sizeof(minor), "*");
		else
			snprintf(minor, sizeof(minor), "%d", ve_devices[i].minor);
		snprintf(rule, sizeof(rule), "c %d:%s rwm", ve_devices[i].major, minor);
		/* devices.allow takes one rule per write: one modify each */
		r = cg_set(cg, "devices.allow", rule, err);
	}
	return r;
}

/* ---- devices: v2 eBPF program ---- */

#define INSN(c, d, s, o, i)                                                                        \
	((struct bpf_insn){.code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i)})
#define LDX_W(d, s, o) INSN(BPF_LDX | BPF_W | BPF_MEM, d, s, o, 0)
#define ALU32_IMM(op, d, i) INSN(BPF_ALU | BPF_OP(op) | BPF_K, d, 0, 0, i)
#define JNE_IMM(d, i, o) INSN(BPF_JMP | BPF_JNE | BPF_K, d, 0, o, i)
#define MOV64_IMM(d, i) INSN(BPF_ALU64 | BPF_MOV | BPF_K, d, 0, 0, i)
#define EXIT_INSN() INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)

/* Returns the instruction count.  r2 = device type, r4 = major,
 * r5 = minor; each allowed device is a block "if all match, return 1";
 * the program ends in "return 0" (deny).  Every access type (read, write,
 * mknod) is allowed on listed devices, so the access bits are not read. */
static size_t build_device_prog(struct bpf_insn *p)
{
	size_t n = 0;
	p[n++] = LDX_W(BPF_REG_2, BPF_REG_1, offsetof(struct bpf_cgroup_dev_ctx, access_type));
	p[n++] = ALU32_IMM(BPF_AND, BPF_REG_2, 0xFFFF);
	p[n++] = LDX_W(BPF_REG_4, BPF_REG_1, offsetof(struct bpf_cgroup_dev_ctx, major));
	p[n++] = LDX_W(BPF_REG_5, BPF_REG_1, offsetof(struct bpf_cgroup_dev_ctx, minor));
	for (size_t i = 0; i < N_VE_DEVICES; i++) {
		bool minor = ve_devices[i].minor >= 0;
		short skip = minor ? 4 : 3; /* jumps land after this block's exit */
		p[n++] = JNE_IMM(BPF_REG_2, BPF_DEVCG_DEV_CHAR, skip--);
		p[n++] = JNE_IMM(BPF_REG_4, ve_devices[i].major, skip--);
		if (minor)
			p[n++] = JNE_IMM(BPF_REG_5, ve_devices[i].minor, skip--);
		p[n++] = MOV64_IMM(BPF_REG_0, 1);
		p[n++] = EXIT_INSN();
	}
	p[n++] = MOV64_IMM(BPF_REG_0, 0);
	p[n++] = EXIT_INSN();
	return n;
}

static int sys_bpf(int cmd, union bpf_attr *attr)
{
	return (int)syscall(__NR_bpf, cmd, attr, sizeof(*attr));
}

static int load_device_prog(hsp_error_t *err)
{
	struct bpf_insn prog[8 + 5 * N_VE_DEVICES];
	union bpf_attr attr;
	memset(&attr, 0, sizeof(attr));
	attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
	attr.insns = (uint64_t)(uintptr_t)prog;
	attr.insn_cnt = (uint32_t)build_device_prog(prog);
	attr.license = (uint64_t)(uintptr_t) "GPL";
	int fd = sys_bpf(BPF_PROG_LOAD, &attr);
	if (fd < 0 && errno == EPERM) {
		/* Before Linux 5.11 programs were charged to RLIMIT_MEMLOCK. */
		struct rlimit rl = {RLIM_INFINITY, RLIM_INFINITY};
		if (setrlimit(RLIMIT_MEMLOCK, &rl) == 0)
			fd = sys_bpf(BPF_PROG_LOAD, &attr);
	}
	if (fd < 0)
		return hsp_make_errno(err, errno, "cgroup: load the device-filter eBPF program");
	return fd;
}

/* Detaches the device programs that were on the group before ours (a
 * left-over group being reused): ours must be the only one. */
static int detach_old_progs(int dirfd, const uint32_t *ids, uint32_t n, const char *dir,
			    hsp_error_t *err)
{
	for (uint32_t i = 0; i < n; i++) {
		union bpf_attr attr;
		memset(&attr, 0, sizeof(attr));
		attr.prog_id = ids[i];
		cleanup_close int fd = sys_bpf(BPF_PROG_GET_FD_BY_ID, &attr);
		if (fd < 0 && errno == ENOENT)
			continue;
		if (fd < 0)
			return hsp_make_errno(err, errno, "cgroup: open old eBPF program of `%s`",
					      dir);
		memset(&attr, 0, sizeof(attr));
		attr.target_fd = (uint32_t)dirfd;
		attr.attach_bpf_fd = (uint32_t)fd;
		attr.attach_type = BPF_CGROUP_DEVICE;
		if (sys_bpf(BPF_PROG_DETACH, &attr) < 0 && errno != ENOENT)
			return hsp_make_errno(err, errno, "cgroup: detach old eBPF program of `%s`",
					      dir);
	}
	return 0;
}

int hsp_cgroup_attach_device_filter(const char *dir, hsp_error_t *err)
{
	cleanup_close int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return hsp_make_errno(err, errno, "cgroup: open `%s`", dir);
	uint32_t ids[64];
	union bpf_attr attr;
	memset(&attr, 0, sizeof(attr));
	attr.query.target_fd = (uint32_t)dirfd;
	attr.query.attach_type = BPF_CGROUP_DEVICE;
	attr.query.prog_ids = (uint64_t)(uintptr_t)ids;
	attr.query.prog_cnt = 64;
	if (sys_bpf(BPF_PROG_QUERY, &attr) < 0)
		return hsp_make_errno(err, errno, "cgroup: query eBPF programs of `%s`", dir);
	uint32_t old = attr.query.prog_cnt;

	cleanup_close int prog = load_device_prog(err);
	if (prog < 0)
		return prog;
	memset(&attr, 0, sizeof(attr));
	attr.target_fd = (uint32_t)dirfd;
	attr.attach_bpf_fd = (uint32_t)prog;
	attr.attach_type = BPF_CGROUP_DEVICE;
	attr.attach_flags = BPF_F_ALLOW_MULTI;
	if (sys_bpf(BPF_PROG_ATTACH, &attr) < 0)
		return hsp_make_errno(err, errno,
				      "cgroup: attach device-filter eBPF program to `%s`", dir);
	/* The cgroup holds the program now; our fd can go. */
	return detach_old_progs(dirfd, ids, old, dir, err);
}

/* ---- creation ---- */

static const char *lib_ctrl(const struct hsp_cgroup *cg, const struct cg_ctrl *c)
{
	/* any enabled controller locates the single v2 directory */
	return cg->mode == HSP_CGROUP_V2 ? "memory" : c->name;
}

/* libcgroup keeps one path per struct cgroup, and the hierarchies' paths
 * differ (memory nests under the caller's memcg): one struct per distinct
 * path, holding every controller that shares it. */
static struct cgroup *lib_group(const struct hsp_cgroup *cg, size_t i, bool done[CG_MAX_CTRL])
{
	const char *rel = cg->c[i].rel;
	struct cgroup *g = cgroup_new_cgroup(rel);
	for (size_t j = i; g && j < cg->n; j++) {
		if (done[j] || strcmp(cg->c[j].rel, rel) != 0)
			continue;
		done[j] = true;
		if (cgroup_add_controller(g, lib_ctrl(cg, &cg->c[j])) == NULL)
			cgroup_free(&g);
	}
	return g;
}

static int lib_create(struct hsp_cgroup *cg, hsp_error_t *err)
{
	bool done[CG_MAX_CTRL] = {false};
	for (size_t i = 0; i < cg->n; i++) {
		if (done[i])
			continue;
		struct cgroup *g = lib_group(cg, i, done);
		if (g == NULL)
			return hsp_make_errno(err, ENOMEM, "cgroup: create `%s`", cg->c[i].dir);
		int r = cgroup_create_cgroup(g, 1);
		if (r != 0)
			r = lib_fail(err, r, "create", cg->c[i].dir);
		cgroup_free(&g);
		if (r < 0)
			return r;
	}
	return 0;
}

/* A new v1 cpuset group starts with empty cpus and mems, and no task can
 * join it until both are set.  mkdir -p leaves every new level empty
 * (HSP_CGROUP_PARENT may name a new group): fill them top-down from their
 * parents. */
static int cpuset_fill_level(const char *mount, const char *rel, hsp_error_t *err)
{
	static const char *const files[] = {"cpuset.cpus", "cpuset.mems"};
	cleanup_free char *dir = hsp_strdup_printf("%s%s", mount, rel);
	cleanup_free char *parent = dir_parent(dir);
	if (parent == NULL)
		return hsp_make_errno(err, ENOMEM, "cgroup: cpuset of `%s`", dir);
	for (size_t i = 0; i < 2; i++) {
		cleanup_free char *cur = NULL, *val = NULL;
		int r = read_str(dir, files[i], &cur, err);
		if (r == 0)
			trim(cur);
		if (r == 0 && cur[0] == '\0')
			r = read_str(parent, files[i], &val, err);
		if (r == 0 && val != NULL) {
			trim(val);
			r = lib_set(rel, "cpuset", dir, files[i], val, err);
		}
		if (r < 0)
			return r;
	}
	return 0;
}

static int cpuset_fill(struct hsp_cgroup *cg, hsp_error_t *err)
{
	const struct cg_ctrl *c = ctrl_of(cg, "cpuset");
	size_t mlen = c ? strlen(c->dir) - strlen(c->rel) : 0;
	cleanup_free char *mount = c ? strndup(c->dir, mlen) : NULL;
	cleanup_free char *rel = c ? strdup(c->rel) : NULL;
	if (c == NULL)
		return 0;
	if (mount == NULL || rel == NULL)
		return hsp_make_errno(err, ENOMEM, "cgroup: cpuset of `%s`", c->dir);
	int r = 0;
	for (char *p = rel + 1; r == 0 && p;) {
		p = strchr(p, '/');
		if (p)
			*p = '\0';
		r = cpuset_fill_level(mount, rel, err);
		if (p)
			*p++ = '/';
	}
	return r;
}

static int v1_create(struct hsp_cgroup *cg, hsp_error_t *err)
{
	/* libcgroup creates the missing parents (hsp-<instance>) too */
	int r = lib_create(cg, err);
	if (r == 0)
		r = cpuset_fill(cg, err);
	if (r == 0)
		r = v1_devices(cg, err);
	return r;
}

/* Enables the wanted controllers ("memory pids ...") in one group's
 * cgroup.subtree_control, written directly: libcgroup 2.0.2 never enables
 * them in the root group and reports EBUSY without saying where. */
static int v2_enable(const char *dir, const char *wanted, hsp_error_t *err)
{
	cleanup_free char *cur = NULL;
	int r = read_str(dir, "cgroup.subtree_control", &cur, err);
	if (r < 0)
		return r;
	char buf[128] = "";
	size_t off = 0;
	for (const char *w = wanted; *w;) {
		size_t n = strcspn(w, " ");
		char one[16];
		snprintf(one, sizeof(one), "%.*s", (int)n, w);
		if (!word_in(cur, one))
			off += (size_t)snprintf(buf + off, sizeof(buf) - off, "+%s ", one);
		w += n + (w[n] == ' ');
	}
	if (off == 0)
		return 0;
	cleanup_free char *p = path_join(dir, "cgroup.subtree_control");
	cleanup_close int fd = open(p, O_WRONLY | O_CLOEXEC);
	if (fd >= 0 && write(fd, buf, off) >= 0)
		return 0;
	if (errno == EBUSY)
		return hsp_make_error(
		    err, EBUSY,
		    "cgroup: cannot enable controllers in `%s`: the group has "
		    "member processes and cgroup v2 puts controllers only on groups "
		    "without them; set " CG_PARENT_ENV " to an empty group such as "
		    "/hsp.slice",
		    dir);
	return hsp_make_errno(err, errno, "cgroup: enable controllers `%s` in `%s`", buf, p);
}

/* The controllers to enable on v2: required ones must be offered by the
 * root, optional ones are used when they are. */
static int v2_wanted(char *out, size_t size, hsp_error_t *err)
{
	size_t off = 0;
	out[0] = '\0';
	for (size_t i = 0; i < sizeof(v2_ctrls) / sizeof(v2_ctrls[0]); i++) {
		if (!v2_has_controller(v2_ctrls[i].name)) {
			if (v2_ctrls[i].required)
				return hsp_make_error(err, EOPNOTSUPP,
						      "cgroup: the v2 `%s` controller is not "
						      "available in `" CG_ROOT
						      "/cgroup.controllers`",
						      v2_ctrls[i].name);
			continue;
		}
		off += (size_t)snprintf(out + off, size - off, "%s%s", off ? " " : "",
					v2_ctrls[i].name);
	}
	return 0;
}

/* Enables the controllers from the root down to hsp-<instance>, creating
 * missing groups on the way (HSP_CGROUP_PARENT may name a new one). */
static int v2_prepare_parents(struct hsp_cgroup *cg, hsp_error_t *err)
{
	char wanted[128];
	int r = v2_wanted(wanted, sizeof(wanted), err);
	if (r == 0)
		r = v2_enable(CG_ROOT, wanted, err);
	const char *rel = cg->c[0].rel, *last = strrchr(rel, '/');
	for (const char *p = rel + 1; r == 0 && p < last;) {
		const char *q = strchr(p, '/');
		cleanup_free char *dir = hsp_strdup_printf(CG_ROOT "%.*s", (int)(q - rel), rel);
		if (mkdir(dir, 0755) < 0 && errno != EEXIST)
			return hsp_make_errno(err, errno, "cgroup: mkdir `%s`", dir);
		r = v2_enable(dir, wanted, err);
		p = q + 1;
	}
	return r;
}

static int v2_create(struct hsp_cgroup *cg, hsp_error_t *err)
{
	int r = v2_prepare_parents(cg, err);
	if (r == 0)
		r = lib_create(cg, err);
	if (r == 0)
		r = hsp_cgroup_attach_device_filter(cg->c[0].dir, err);
	return r;
}

static int remove_groups(struct hsp_cgroup *cg, bool *busy, hsp_error_t *err);
static int remove_instance(struct hsp_cgroup *cg, hsp_error_t *err);

int hsp_cgroup_create(const char *instance, const char *ve, const struct hsp_limits *lim,
		      struct hsp_cgroup **out, hsp_error_t *err)
{
	cleanup_cgroup struct hsp_cgroup *cg = NULL;
	enum hsp_cgroup_mode mode;
	int r = hsp_validate_name(instance, "cgroup instance", err);
	if (r == 0)
		r = hsp_validate_name(ve, "VE", err);
	if (r == 0 && lim)
		r = validate_limits(lim, err);
	if (r == 0)
		r = lib_init(err);
	if (r == 0)
		r = hsp_cgroup_detect_mode(&mode, err);
	if (r == 0)
		r = build(mode, instance, ve, &cg, err);
	if (r < 0)
		return r;
	r = mode == HSP_CGROUP_V2 ? v2_create(cg, err) : v1_create(cg, err);
	if (r == 0 && lim)
		r = hsp_cgroup_set_limits(cg, lim, err);
	if (r < 0) {
		/* best effort: a fresh group is empty and goes at once */
		hsp_error_t ignored = NULL;
		bool busy;
		if (remove_groups(cg, &busy, &ignored) == 0 && !busy)
			remove_instance(cg, &ignored);
		hsp_error_release(&ignored);
		return r;
	}
	*out = steal_pointer(&cg);
	return 0;
}

/* ---- reopening ---- */

static int v1_name(const char *s, size_t len, const char **name)
{
	for (size_t i = 0; i < CG_MAX_CTRL; i++)
		if (strlen(v1_ctrls[i].name) == len && memcmp(v1_ctrls[i].name, s, len) == 0) {
			*name = v1_ctrls[i].name;
			return 0;
		}
	return -EINVAL;
}

static int parse_entry(struct hsp_cgroup *cg, const char *s, size_t len, hsp_error_t *err)
{
	const char *eq = memchr(s, '=', len);
	const char *name = NULL;
	bool v2 = cg->mode == HSP_CGROUP_V2;
	if (eq == NULL || cg->n == CG_MAX_CTRL || (v2 && cg->n == 1))
		return -EINVAL;
	size_t nlen = (size_t)(eq - s);
	if (v2 ? (nlen != 7 || memcmp(s, "unified", 7) != 0)
	       : (v1_name(s, nlen, &name) < 0 || ctrl_of(cg, name) != NULL))
		return -EINVAL;
	cleanup_free char *rel = strndup(eq + 1, len - nlen - 1);
	if (rel == NULL || !valid_group_path(rel))
		return -EINVAL;
	cleanup_free char *mp = NULL;
	if (!v2 && v1_mount_of(name, &mp) == NULL)
		return hsp_make_error(err, ENODEV, "cgroup: the v1 `%s` controller is not mounted",
				      name);
	return add_ctrl(cg, v2 ? "unified" : name, v2 ? CG_ROOT : mp, steal_pointer(&rel));
}

/* The entries after the mode; -EINVAL without a message on bad syntax. */
static int parse_entries(struct hsp_cgroup *cg, const char *s, hsp_error_t *err)
{
	int r = 0;
	for (const char *p = s; r == 0 && *p == ';';) {
		size_t n = strcspn(p + 1, ";");
		r = parse_entry(cg, p + 1, n, err);
		p += n + 1;
	}
	for (size_t i = 0; r == 0 && cg->mode != HSP_CGROUP_V2 && i < CG_MAX_CTRL; i++)
		if (v1_ctrls[i].required && ctrl_of(cg, v1_ctrls[i].name) == NULL)
			r = -EINVAL;
	return r == 0 && cg->n == 0 ? -EINVAL : r;
}

int hsp_cgroup_open(const char *serialized, struct hsp_cgroup **out, hsp_error_t *err)
{
	enum hsp_cgroup_mode host;
	int r = lib_init(err);
	if (r == 0)
		r = hsp_cgroup_detect_mode(&host, err);
	if (r < 0)
		return r;
	cleanup_cgroup struct hsp_cgroup *cg = calloc(1, sizeof(*cg));
	if (cg == NULL)
		return hsp_make_errno(err, ENOMEM, "cgroup: allocate");
	size_t mlen = strcspn(serialized, ";");
	r = mode_from_name(serialized, mlen, &cg->mode);
	if (r == 0 && cg->mode != host)
		return hsp_make_error(err, EINVAL,
				      "cgroup: group `%.200s` was made on a %s host but this host "
				      "is %s",
				      serialized, hsp_cgroup_mode_name(cg->mode),
				      hsp_cgroup_mode_name(host));
	if (r == 0)
		r = parse_entries(cg, serialized + mlen, err);
	if (r == -EINVAL)
		return hsp_make_error(err, EINVAL, "cgroup: invalid serialized group `%.200s`",
				      serialized);
	if (r < 0)
		return r;
	cg->serialized = strdup(serialized);
	if (cg->serialized == NULL)
		return hsp_make_errno(err, ENOMEM, "cgroup: allocate");
	*out = steal_pointer(&cg);
	return 0;
}

/* ---- tasks ---- */

int hsp_cgroup_attach(struct hsp_cgroup *cg, pid_t pid, hsp_error_t *err)
{
	char buf[32];
	snprintf(buf, sizeof(buf), "%d", (int)pid);
	if (cg->mode == HSP_CGROUP_V2) {
		bool done[CG_MAX_CTRL] = {false};
		int r = lib_init(err);
		if (r < 0)
			return r;
		struct cgroup *g = lib_group(cg, 0, done);
		r = g ? cgroup_attach_task_pid(g, pid) : ECGFAIL;
		if (r != 0)
			r = g ? lib_fail(err, r, "attach to", cg->c[0].dir)
			      : hsp_make_errno(err, ENOMEM, "cgroup: attach");
		cgroup_free(&g);
		return r;
	}
	/* Written directly: on v1 libcgroup 2.0.2 writes the pid to `tasks`,
	 * which moves that one thread only; cgroup.procs moves the process. */
	for (size_t i = 0; i < cg->n; i++) {
		bool dup = false;
		for (size_t j = 0; j < i; j++)
			dup = dup || strcmp(cg->c[j].dir, cg->c[i].dir) == 0;
		int r = dup ? 0 : write_cg_file(cg->c[i].dir, "cgroup.procs", buf, err);
		if (r < 0)
			return r;
	}
	return 0;
}

struct pidvec {
	pid_t *v;
	size_t n, cap;
};

static int pidvec_push(struct pidvec *pv, pid_t pid)
{
	if (pv->n == pv->cap) {
		size_t cap = pv->cap ? pv->cap * 2 : 16;
		pid_t *nv = realloc(pv->v, cap * sizeof(*nv));
		if (nv == NULL)
			return -ENOMEM;
		pv->v = nv;
		pv->cap = cap;
	}
	pv->v[pv->n++] = pid;
	return 0;
}

/* cgroup.procs of dir and of every group below it. */
static int collect_pids(const char *dir, bool top, struct pidvec *pv, hsp_error_t *err)
{
	cleanup_free char *procs = NULL;
	hsp_error_t e = NULL;
	int r = read_str(dir, "cgroup.procs", &procs, &e);
	if (r < 0 && !top && e && e->status == ENOENT) {
		hsp_error_release(&e); /* a sub-group went away meanwhile */
		return 0;
	}
	if (r < 0 && err && *err == NULL)
		*err = steal_pointer(&e);
	hsp_error_release(&e);
	if (r < 0)
		return r;
	for (char *p = procs; *p;) {
		char *end;
		long pid = strtol(p, &end, 10);
		if (end == p)
			break;
		if (pidvec_push(pv, (pid_t)pid) < 0)
			return hsp_make_errno(err, ENOMEM, "cgroup: list tasks");
		p = end + (*end == '\n');
	}
	DIR *d = opendir(dir);
	struct dirent *de;
	r = 0;
	while (d && r == 0 && (de = readdir(d)) != NULL) {
		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue;
		cleanup_free char *sub = path_join(dir, de->d_name);
		r = collect_pids(sub, false, pv, err);
	}
	if (d)
		closedir(d);
	return r;
}

int hsp_cgroup_pids(struct hsp_cgroup *cg, pid_t **pids, hsp_error_t *err)
{
	const struct cg_ctrl *c = ctrl_of(cg, "pids");
	if (c == NULL)
		c = ctrl_of(cg, "memory");
	struct pidvec pv = {0};
	int r = collect_pids(c->dir, true, &pv, err);
	if (r < 0) {
		free(pv.v);
		return r;
	}
	*pids = pv.v;
	return (int)pv.n;
}

int hsp_cgroup_usage(struct hsp_cgroup *cg, struct hsp_usage *u, hsp_error_t *err)
{
	memset(u, 0, sizeof(*u));
	const char *mem = ctrl_of(cg, "memory")->dir;
	int r;
	if (cg->mode == HSP_CGROUP_V2) {
		r = read_u64(mem, "memory.current", &u->memory, err);
		if (r == 0 && file_exists(mem, "memory.swap.current"))
			r = read_u64(mem, "memory.swap.current", &u->swap, err);
		if (r == 0 && (r = read_key(mem, "cpu.stat", "usage_usec", &u->cpu_ns, err)) == 0)
			u->cpu_ns *= 1000;
		return r < 0 ? r : read_u64(mem, "pids.current", &u->pids, err);
	}
	uint64_t memsw = 0;
	r = read_u64(mem, "memory.usage_in_bytes", &u->memory, err);
	if (r == 0 && file_exists(mem, "memory.memsw.usage_in_bytes"))
		r = read_u64(mem, "memory.memsw.usage_in_bytes", &memsw, err);
	u->swap = memsw > u->memory ? memsw - u->memory : 0;
	const struct cg_ctrl *acct = ctrl_of(cg, "cpuacct");
	if (r == 0 && acct)
		r = read_u64(acct->dir, "cpuacct.usage", &u->cpu_ns, err);
	return r < 0 ? r : read_u64(ctrl_of(cg, "pids")->dir, "pids.current", &u->pids, err);
}

/* ---- freezing ---- */

static int freeze_state(struct hsp_cgroup *cg, bool *reached, int frozen, hsp_error_t *err)
{
	if (cg->mode == HSP_CGROUP_V2) {
		uint64_t v;
		int r = read_key(cg->c[0].dir, "cgroup.events", "frozen", &v, err);
		*reached = r == 0 && v == (uint64_t)(frozen != 0);
		return r;
	}
	cleanup_free char *s = NULL;
	int r = read_str(ctrl_of(cg, "freezer")->dir, "freezer.state", &s, err);
	if (r == 0)
		trim(s);
	*reached = r == 0 && strcmp(s, frozen ? "FROZEN" : "THAWED") == 0;
	return r;
}

int hsp_cgroup_freeze(struct hsp_cgroup *cg, int frozen, hsp_error_t *err)
{
	bool v2 = cg->mode == HSP_CGROUP_V2;
	const char *file = v2 ? "cgroup.freeze" : "freezer.state";
	const char *val = v2 ? (frozen ? "1" : "0") : (frozen ? "FROZEN" : "THAWED");
	uint64_t deadline = hsp_now_ns() + FREEZE_TIMEOUT_NS;
	unsigned delay = 1;
	bool reached = false;
	int r = lib_init(err);
	if (r == 0)
		r = cg_set(cg, file, val, err);
	while (r == 0 && !(r = freeze_state(cg, &reached, frozen, err)) && !reached) {
		if (hsp_now_ns() > deadline)
			break;
		sleep_ms(delay);
		delay = delay < 16 ? delay * 2 : delay;
		/* v1 retries tasks that could not freeze yet only on a new write */
		if (!v2 && frozen)
			r = cg_set(cg, file, val, err);
	}
	if (r < 0 || reached)
		return r;
	if (frozen) {
		hsp_error_t ignored = NULL;
		cg_set(cg, file, v2 ? "0" : "THAWED", &ignored);
		hsp_error_release(&ignored);
	}
	return hsp_make_error(err, ETIMEDOUT, "cgroup: `%s` did not %s within %llu s",
			      ctrl_of(cg, "freezer")->dir, frozen ? "freeze" : "thaw",
			      FREEZE_TIMEOUT_NS / 1000000000ULL);
}

/* ---- destruction ---- */

/* Groups are removed with rmdir, not cgroup_delete_cgroup_ext: libcgroup
 * 2.0.2 drops its own ECGNONEMPTY there and reports a group that still has
 * tasks as removed (and without CGFLAG_DELETE_EMPTY_ONLY it would move the
 * tasks to the parent, out of the VE's limits).  EBUSY (tasks still
 * leaving, or sub-groups) goes to *busy, not to the error. */
static int rm_group(const char *dir, bool *busy, hsp_error_t *err)
{
	if (rmdir(dir) == 0 || errno == ENOENT)
		return 0;
	if (errno != EBUSY)
		return hsp_make_errno(err, errno, "cgroup: remove `%s`", dir);
	*busy = true;
	return 0;
}

/* Removes the groups a VE made below dir, deepest first. */
static int rm_children(const char *dir, bool *busy, hsp_error_t *err)
{
	DIR *d = opendir(dir);
	if (d == NULL)
		return errno == ENOENT ? 0 : hsp_make_errno(err, errno, "cgroup: open `%s`", dir);
	int r = 0;
	struct dirent *de;
	while (r == 0 && (de = readdir(d)) != NULL) {
		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue;
		cleanup_free char *sub = path_join(dir, de->d_name);
		r = rm_children(sub, busy, err);
		if (r == 0)
			r = rm_group(sub, busy, err);
	}
	closedir(d);
	return r;
}

/* The VE group, or hsp-<instance>, in every hierarchy. */
static int rm_level(struct hsp_cgroup *cg, bool instance, bool *busy, hsp_error_t *err)
{
	for (size_t i = 0; i < cg->n; i++) {
		cleanup_free char *dir = instance ? dir_parent(cg->c[i].dir) : strdup(cg->c[i].dir);
		int r = dir ? rm_group(dir, busy, err)
			    : hsp_make_errno(err, ENOMEM, "cgroup: remove `%s`", cg->c[i].dir);
		if (r < 0)
			return r;
	}
	return 0;
}

/* One pass over every hierarchy: sub-groups, then the VE group. */
static int remove_groups(struct hsp_cgroup *cg, bool *busy, hsp_error_t *err)
{
	*busy = false;
	for (size_t i = 0; i < cg->n; i++) {
		int r = rm_children(cg->c[i].dir, busy, err);
		if (r < 0)
			return r;
	}
	return *busy ? 0 : rm_level(cg, false, busy, err);
}

/* hsp-<instance> goes with its last VE; other VEs keep it busy. */
static int remove_instance(struct hsp_cgroup *cg, hsp_error_t *err)
{
	bool busy = false;
	return rm_level(cg, true, &busy, err);
}

int hsp_cgroup_destroy(struct hsp_cgroup *cg, hsp_error_t *err)
{
	uint64_t deadline = hsp_now_ns() + DESTROY_TIMEOUT_NS;
	bool busy = false;
	int r = lib_init(err);
	if (r == 0 && cg->mode != HSP_CGROUP_V2) {
		/* v1 freezer holds killed tasks until thawed (v2 lets SIGKILL
		 * through); the group may already be gone, so errors are moot */
		hsp_error_t ignored = NULL;
		cg_set(cg, "freezer.state", "THAWED", &ignored);
		hsp_error_release(&ignored);
	}
	while (r == 0 && (r = remove_groups(cg, &busy, err)) == 0 && busy &&
	       hsp_now_ns() < deadline)
		sleep_ms(10);
	if (r == 0 && busy)
		return hsp_make_error(err, EBUSY,
				      "cgroup: cannot remove `%s`: tasks remain after %llu s",
				      cg->c[0].dir, DESTROY_TIMEOUT_NS / 1000000000ULL);
	return r < 0 ? r : remove_instance(cg, err);
}

/* ---- the VE's view ---- */

#define VE_MOUNT_FLAGS (MS_NOSUID | MS_NODEV | MS_NOEXEC)

static bool v1_list_is_ours(const char *list, size_t len)
{
	for (size_t i = 0; i < CG_MAX_CTRL; i++)
		if (list_has(list, len, v1_ctrls[i].name))
			return true;
	return false;
}

/* Links each member of a co-mounted hierarchy ("cpu,cpuacct") to it. */
static int link_members(const char *base, const char *list, hsp_error_t *err)
{
	for (const char *p = list; *p;) {
		size_t n = strcspn(p, ",");
		char link[PATH_MAX];
		if (snprintf(link, sizeof(link), "%s/%.*s", base, (int)n, p) >= (int)sizeof(link))
			return hsp_make_error(err, ENAMETOOLONG, "cgroup: path `%s` too long",
					      base);
		if (symlink(list, link) < 0 && errno != EEXIST)
			return hsp_make_errno(err, errno, "cgroup: symlink `%s`", link);
		p += n + (p[n] == ',');
	}
	return 0;
}

static int mount_v1_one(const char *base, const char *list, size_t len, hsp_error_t *err)
{
	char data[256], dir[PATH_MAX];
	if (len >= sizeof(data))
		return hsp_make_error(err, ENAMETOOLONG, "cgroup: hierarchy `%.*s`", (int)len,
				      list);
	memcpy(data, list, len);
	data[len] = '\0';
	if (snprintf(dir, sizeof(dir), "%s/%s", base, data) >= (int)sizeof(dir))
		return hsp_make_error(err, ENAMETOOLONG, "cgroup: path `%s` too long", base);
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return hsp_make_errno(err, errno, "cgroup: mkdir `%s`", dir);
	if (mount("cgroup", dir, "cgroup", MS_RDONLY | VE_MOUNT_FLAGS, data) < 0)
		return hsp_make_errno(err, errno, "cgroup: mount cgroup `%s` at `%s`", data, dir);
	return memchr(data, ',', len) ? link_members(base, data, err) : 0;
}

static int read_self_cgroup(char *buf, size_t size, hsp_error_t *err)
{
	size_t len = 0;
	ssize_t n = 0;
	int fd = open("/proc/self/cgroup", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return hsp_make_errno(err, errno, "cgroup: open /proc/self/cgroup");
	while (len < size - 1 && (n = read(fd, buf + len, size - 1 - len)) != 0) {
		if (n < 0 && errno != EINTR)
			break;
		len += n > 0 ? (size_t)n : 0;
	}
	close(fd);
	buf[len] = '\0';
	return n < 0 ? hsp_make_errno(err, errno, "cgroup: read /proc/self/cgroup") : 0;
}

/* One read-only mount per v1 hierarchy holding our controllers, named as
 * /proc/self/cgroup lists it.  Runs in the VE child after clone: stack
 * buffers and syscalls only on the success path. */
static int mount_v1(const char *base, hsp_error_t *err)
{
	char buf[8192];
	int r = read_self_cgroup(buf, sizeof(buf), err);
	for (const char *line = buf; r == 0 && *line;) {
		const char *nl = strchrnul(line, '\n');
		const char *c1 = memchr(line, ':', (size_t)(nl - line));
		const char *c2 = c1 ? memchr(c1 + 1, ':', (size_t)(nl - c1 - 1)) : NULL;
		size_t len = c2 ? (size_t)(c2 - c1 - 1) : 0;
		if (len > 0 && v1_list_is_ours(c1 + 1, len))
			r = mount_v1_one(base, c1 + 1, len, err);
		line = *nl ? nl + 1 : nl;
	}
	return r;
}

int hsp_cgroup_mount_in_ve(enum hsp_cgroup_mode mode, const char *rootfs, hsp_error_t *err)
{
	char target[PATH_MAX];
	if ((size_t)snprintf(target, sizeof(target), "%s/sys/fs/cgroup", rootfs) >= sizeof(target))
		return hsp_make_error(err, ENAMETOOLONG, "cgroup: rootfs path too long");
	if (mode == HSP_CGROUP_V2) {
		if (mount("cgroup2", target, "cgroup2", MS_RDONLY | VE_MOUNT_FLAGS, NULL) < 0)
			return hsp_make_errno(err, errno, "cgroup: mount cgroup2 at `%s`", target);
		return 0;
	}
	if (mount("tmpfs", target, "tmpfs", VE_MOUNT_FLAGS, "mode=755") < 0)
		return hsp_make_errno(err, errno, "cgroup: mount tmpfs at `%s`", target);
	int r = mount_v1(target, err);
	if (r < 0)
		return r;
	if (mount(NULL, target, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | VE_MOUNT_FLAGS, NULL) < 0)
		return hsp_make_errno(err, errno, "cgroup: remount `%s` read-only", target);
	return 0;
}
