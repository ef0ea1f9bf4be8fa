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
 * so the string must be reopened from the same cgroup namespace.
 *
 * Limits, the device allow-list and the VE's cgroupfs mount are in
 * cgroup-limits.c, cgroup-devices.c and cgroup-mount.c (cgroup-internal.h). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "cgroup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include <libcgroup.h>

#include "cgroup-internal.h"
#include "utils.h"

#define CG_UNIFIED CG_ROOT "/unified"
#define CG_PARENT_ENV "HSP_CGROUP_PARENT"
#define DESTROY_TIMEOUT_NS (2ULL * 1000000000ULL)
#define FREEZE_TIMEOUT_NS (10ULL * 1000000000ULL)

/* Controllers a VE group is created in.  Required ones carry isolation or
 * the basic limits; the rest are used when the host has them. */
const struct cg_ctrl_spec hsp_cg_v1_ctrls[CG_MAX_CTRL] = {
    {"memory", true}, {"pids", true},	  {"devices", true}, {"freezer", true},
    {"cpu", false},   {"cpuacct", false}, {"cpuset", false}, {"blkio", false},
};

static const struct cg_ctrl_spec v2_ctrls[] = {
    {"memory", true},
    {"pids", true},
    {"cpu", false},
    {"io", false},
};

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

/* Every path into libcgroup enters here first (see hsp_cg_lib_entries). */
static unsigned long lib_entries;

unsigned long hsp_cg_lib_entries(void)
{
	return __atomic_load_n(&lib_entries, __ATOMIC_RELAXED);
}

int hsp_cg_lib_init(hsp_error_t *err)
{
	__atomic_fetch_add(&lib_entries, 1, __ATOMIC_RELAXED);
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
	int r = hsp_cg_lib_init(err);
	if (r < 0)
		return r;
	struct cgroup *g = cgroup_new_cgroup(rel);
	if (g == NULL)
		return hsp_make_errno(err, ENOMEM, "cgroup: set `%s` in `%s`", file, dir);
	struct cgroup_controller *c = cgroup_add_controller(g, ctrl);
	r = c ? cgroup_add_value_string(c, file, value) : ECGFAIL;
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

char *hsp_cg_path_join(const char *dir, const char *file)
{
	return hsp_strdup_printf("%s/%s", dir, file);
}

bool hsp_cg_file_exists(const char *dir, const char *file)
{
	cleanup_free char *p = hsp_cg_path_join(dir, file);
	return access(p, F_OK) == 0;
}

int hsp_cg_read_str(const char *dir, const char *file, char **out, hsp_error_t *err)
{
	cleanup_free char *p = hsp_cg_path_join(dir, file);
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

/* "max" (v2 "no limit") reads as CG_UNLIMITED. */
static int parse_u64(const char *s, uint64_t *v)
{
	if (strncmp(s, "max", 3) == 0) {
		*v = CG_UNLIMITED;
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

int hsp_cg_read_u64(const char *dir, const char *file, uint64_t *v, hsp_error_t *err)
{
	cleanup_free char *s = NULL;
	int r = hsp_cg_read_str(dir, file, &s, err);
	if (r < 0)
		return r;
	if (parse_u64(s, v) < 0)
		return hsp_make_error(err, EINVAL, "cgroup: `%s/%s`: not a number: %.40s", dir,
				      file, s);
	return 0;
}

/* Value of `key` in a flat-keyed file such as cpu.stat or cgroup.events. */
int hsp_cg_read_key(const char *dir, const char *file, const char *key, uint64_t *v,
		    hsp_error_t *err)
{
	cleanup_free char *s = NULL;
	int r = hsp_cg_read_str(dir, file, &s, err);
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

/* Plain write, for what libcgroup gets wrong and for the monitor's calls,
 * which stay clear of libcgroup (see callers). */
static int write_cg_file(const char *dir, const char *file, const char *val, hsp_error_t *err)
{
	cleanup_free char *p = hsp_cg_path_join(dir, file);
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
bool hsp_cg_list_has(const char *list, size_t len, const char *ctrl)
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
		if (c2 && hsp_cg_list_has(c1 + 1, (size_t)(c2 - c1 - 1), ctrl))
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

struct cg_ctrl *hsp_cg_ctrl_of(struct hsp_cgroup *cg, const char *name)
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

int hsp_cg_set(struct hsp_cgroup *cg, const char *file, const char *value, hsp_error_t *err)
{
	char ctrl[32];
	file_ctrl(file, ctrl);
	const struct cg_ctrl *c = hsp_cg_ctrl_of(cg, ctrl);
	if (c == NULL)
		return hsp_make_error(
		    err, EOPNOTSUPP,
		    "cgroup: cannot set `%s`: controller `%s` is not available on "
		    "this host",
		    file, ctrl);
	return lib_set(c->rel, ctrl, c->dir, file, value, err);
}

int hsp_cg_set_u64(struct hsp_cgroup *cg, const char *file, uint64_t v, hsp_error_t *err)
{
	char buf[32];
	snprintf(buf, sizeof(buf), "%llu", (unsigned long long)v);
	return hsp_cg_set(cg, file, buf, err);
}

/* ---- v1 mount points, from /proc/self/mountinfo ----
 *
 * Parsed here rather than asked of libcgroup: its cgroup_init() fills
 * ~800 KiB of static tables, which would stay resident in every monitor.
 * Like libcgroup, the first mount of a controller wins. */

static char *v1_mounts[CG_MAX_CTRL];
static pthread_once_t v1_mounts_once = PTHREAD_ONCE_INIT;

/* The next space-separated field of a mountinfo line, or NULL. */
static char *next_field(char **p)
{
	char *s = *p;
	while (*s == ' ')
		s++;
	if (*s == '\0' || *s == '\n')
		return NULL;
	char *e = s + strcspn(s, " \n");
	*p = e + (*e == ' ');
	*e = '\0';
	return s;
}

/* Undoes the octal escapes (\040 for space...) of a mountinfo path. */
static void unescape_octal(char *s)
{
	char *w = s;
	for (const char *r = s; *r;) {
		if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' &&
		    r[3] >= '0' && r[3] <= '7') {
			*w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
			r += 4;
		} else {
			*w++ = *r++;
		}
	}
	*w = '\0';
}

/* One line: "id parent maj:min root mountpoint opts [optional...] - fstype
 * source superopts".  A v1 hierarchy lists its controllers in superopts
 * ("rw,cpu,cpuacct"); named ones such as name=systemd match none of ours. */
static void v1_mounts_line(char *line)
{
	char *p = line, *f, *mp = NULL;
	for (int i = 0; i < 5 && (f = next_field(&p)) != NULL; i++)
		mp = f;
	while ((f = next_field(&p)) != NULL && strcmp(f, "-") != 0)
		;
	char *fstype = f ? next_field(&p) : NULL;
	char *source = fstype ? next_field(&p) : NULL;
	char *opts = source ? next_field(&p) : NULL;
	if (opts == NULL || strcmp(fstype, "cgroup") != 0)
		return;
	unescape_octal(mp);
	for (size_t i = 0; i < CG_MAX_CTRL; i++)
		if (v1_mounts[i] == NULL &&
		    hsp_cg_list_has(opts, strlen(opts), hsp_cg_v1_ctrls[i].name))
			v1_mounts[i] = strdup(mp);
}

static void v1_mounts_parse(void)
{
	cleanup_free char *info = NULL;
	hsp_error_t ignored = NULL;
	int r = hsp_read_file("/proc/self/mountinfo", &info, NULL, &ignored);
	hsp_error_release(&ignored);
	for (char *line = info; r == 0 && *line;) {
		char *nl = strchrnul(line, '\n');
		bool more = *nl == '\n';
		*nl = '\0';
		v1_mounts_line(line);
		line = more ? nl + 1 : nl;
	}
}

const char *hsp_cg_v1_mount(const char *ctrl)
{
	pthread_once(&v1_mounts_once, v1_mounts_parse);
	for (size_t i = 0; i < CG_MAX_CTRL; i++)
		if (strcmp(hsp_cg_v1_ctrls[i].name, ctrl) == 0)
			return v1_mounts[i];
	return NULL;
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
		const char *name = hsp_cg_v1_ctrls[i].name;
		const char *mp = hsp_cg_v1_mount(name);
		cleanup_free char *parent = NULL;
		int r = mp ? parent_path(self, name, &parent, err) : -ENODEV;
		if (r < 0 && r != -ENOENT && r != -ENODEV)
			return r;
		if (r < 0 && hsp_cg_v1_ctrls[i].required)
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
	int r = hsp_cg_lib_init(err);
	if (r < 0)
		return r;
	for (size_t i = 0; i < cg->n; i++) {
		if (done[i])
			continue;
		struct cgroup *g = lib_group(cg, i, done);
		if (g == NULL)
			return hsp_make_errno(err, ENOMEM, "cgroup: create `%s`", cg->c[i].dir);
		r = cgroup_create_cgroup(g, 1);
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
		int r = hsp_cg_read_str(dir, files[i], &cur, err);
		if (r == 0)
			trim(cur);
		if (r == 0 && cur[0] == '\0')
			r = hsp_cg_read_str(parent, files[i], &val, err);
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
	const struct cg_ctrl *c = hsp_cg_ctrl_of(cg, "cpuset");
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
		r = hsp_cg_v1_devices(cg, err);
	return r;
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

bool hsp_cg_v2_has_controller(const char *name)
{
	cleanup_free char *s = NULL;
	hsp_error_t ignored = NULL;
	int r = hsp_cg_read_str(CG_ROOT, "cgroup.controllers", &s, &ignored);
	hsp_error_release(&ignored);
	return r == 0 && word_in(s, name);
}

/* Enables the wanted controllers ("memory pids ...") in one group's
 * cgroup.subtree_control, written directly: libcgroup 2.0.2 never enables
 * them in the root group and reports EBUSY without saying where. */
static int v2_enable(const char *dir, const char *wanted, hsp_error_t *err)
{
	cleanup_free char *cur = NULL;
	int r = hsp_cg_read_str(dir, "cgroup.subtree_control", &cur, err);
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
	cleanup_free char *p = hsp_cg_path_join(dir, "cgroup.subtree_control");
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
		if (!hsp_cg_v2_has_controller(v2_ctrls[i].name)) {
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
		r = hsp_cg_validate_limits(lim, err);
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
		if (strlen(hsp_cg_v1_ctrls[i].name) == len &&
		    memcmp(hsp_cg_v1_ctrls[i].name, s, len) == 0) {
			*name = hsp_cg_v1_ctrls[i].name;
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
	       : (v1_name(s, nlen, &name) < 0 || hsp_cg_ctrl_of(cg, name) != NULL))
		return -EINVAL;
	cleanup_free char *rel = strndup(eq + 1, len - nlen - 1);
	if (rel == NULL || !valid_group_path(rel))
		return -EINVAL;
	const char *mp = v2 ? CG_ROOT : hsp_cg_v1_mount(name);
	if (mp == NULL)
		return hsp_make_error(err, ENODEV, "cgroup: the v1 `%s` controller is not mounted",
				      name);
	return add_ctrl(cg, v2 ? "unified" : name, mp, steal_pointer(&rel));
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
		if (hsp_cg_v1_ctrls[i].required &&
		    hsp_cg_ctrl_of(cg, hsp_cg_v1_ctrls[i].name) == NULL)
			r = -EINVAL;
	return r == 0 && cg->n == 0 ? -EINVAL : r;
}

/* Also the monitor's: no libcgroup here, nor in attach, pids and destroy. */
int hsp_cgroup_open(const char *serialized, struct hsp_cgroup **out, hsp_error_t *err)
{
	enum hsp_cgroup_mode host;
	int r = hsp_cgroup_detect_mode(&host, err);
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
	/* Written directly, not through libcgroup: on v1 libcgroup 2.0.2
	 * writes the pid to `tasks`, which moves that one thread only
	 * (cgroup.procs moves the process), and the monitor stays clear of
	 * libcgroup anyway (hsp_cgroup_open). */
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
	int r = hsp_cg_read_str(dir, "cgroup.procs", &procs, &e);
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
		cleanup_free char *sub = hsp_cg_path_join(dir, de->d_name);
		r = collect_pids(sub, false, pv, err);
	}
	if (d)
		closedir(d);
	return r;
}

int hsp_cgroup_pids(struct hsp_cgroup *cg, pid_t **pids, hsp_error_t *err)
{
	const struct cg_ctrl *c = hsp_cg_ctrl_of(cg, "pids");
	if (c == NULL)
		c = hsp_cg_ctrl_of(cg, "memory");
	struct pidvec pv = {0};
	int r = collect_pids(c->dir, true, &pv, err);
	if (r < 0) {
		free(pv.v);
		return r;
	}
	*pids = pv.v;
	return (int)pv.n;
}

/* ---- freezing ---- */

static int freeze_state(struct hsp_cgroup *cg, bool *reached, int frozen, hsp_error_t *err)
{
	if (cg->mode == HSP_CGROUP_V2) {
		uint64_t v;
		int r = hsp_cg_read_key(cg->c[0].dir, "cgroup.events", "frozen", &v, err);
		*reached = r == 0 && v == (uint64_t)(frozen != 0);
		return r;
	}
	cleanup_free char *s = NULL;
	int r = hsp_cg_read_str(hsp_cg_ctrl_of(cg, "freezer")->dir, "freezer.state", &s, err);
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
	int r = hsp_cg_set(cg, file, val, err);
	while (r == 0 && !(r = freeze_state(cg, &reached, frozen, err)) && !reached) {
		if (hsp_now_ns() > deadline)
			break;
		sleep_ms(delay);
		delay = delay < 16 ? delay * 2 : delay;
		/* v1 retries tasks that could not freeze yet only on a new write */
		if (!v2 && frozen)
			r = hsp_cg_set(cg, file, val, err);
	}
	if (r < 0 || reached)
		return r;
	if (frozen) {
		hsp_error_t ignored = NULL;
		hsp_cg_set(cg, file, v2 ? "0" : "THAWED", &ignored);
		hsp_error_release(&ignored);
	}
	return hsp_make_error(err, ETIMEDOUT, "cgroup: `%s` did not %s within %llu s",
			      hsp_cg_ctrl_of(cg, "freezer")->dir, frozen ? "freeze" : "thaw",
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
		cleanup_free char *sub = hsp_cg_path_join(dir, de->d_name);
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
	int r = 0;
	if (cg->mode != HSP_CGROUP_V2) {
		/* v1 freezer holds killed tasks until thawed (v2 lets SIGKILL
		 * through); the group may already be gone, so errors are moot.
		 * Written directly: no libcgroup in the monitor. */
		hsp_error_t ignored = NULL;
		write_cg_file(hsp_cg_ctrl_of(cg, "freezer")->dir, "freezer.state", "THAWED",
			      &ignored);
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
