/* Limits of a VE group (see cgroup.h): checking that the host can enforce
 * them, writing them on v1 and v2, and reading usage back.  v2 weights are
 * the interface; v1 gets them converted as systemd does. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "cgroup.h"

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cgroup-internal.h"
#include "utils.h"

#define CPU_PERIOD_US 100000ULL
/* v1 reports "no limit" as PAGE_COUNTER_MAX pages (~2^63): anything this
 * large cannot be a real limit. */
#define V1_UNLIMITED_MIN (1ULL << 62)

/* ---- limits ---- */

int hsp_cg_validate_limits(const struct hsp_limits *lim, hsp_error_t *err)
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
	bool on =
	    hsp_cg_read_str(CG_ROOT, "io.cost.qos", &s, &ignored) == 0 && strstr(s, "enable=1");
	hsp_error_release(&ignored);
	return on;
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
		cleanup_free char *dir = hsp_cg_path_join(CG_ROOT, de->d_name);
		if (hsp_cg_file_exists(dir, "memory.max"))
			verdict = hsp_cg_file_exists(dir, "memory.swap.max");
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
	const char *mp = hsp_cg_v1_mount(ctrl);
	return mp && hsp_cg_file_exists(mp, file);
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
	if ((set & (HSP_LIMIT_MEMORY | HSP_LIMIT_SWAP)) && !hsp_cg_v2_has_controller("memory"))
		return unsupported(err, "memory limit",
				   "no memory controller in cgroup.controllers");
	if ((set & HSP_LIMIT_SWAP) && !v2_swap_supported())
		return unsupported(err, "swap limit",
				   "swap accounting is off (no memory.swap.max)");
	if ((set & (HSP_LIMIT_CPUS | HSP_LIMIT_CPU_WEIGHT)) && !hsp_cg_v2_has_controller("cpu"))
		return unsupported(err, "cpu limit", "no cpu controller in cgroup.controllers");
	if ((set & HSP_LIMIT_PIDS) && !hsp_cg_v2_has_controller("pids"))
		return unsupported(err, "pids limit", "no pids controller in cgroup.controllers");
	if ((set & HSP_LIMIT_IO_WEIGHT) &&
	    !(hsp_cg_v2_has_controller("io") && (any_bfq_device() || iocost_enabled())))
		return unsupported(err, "io weight",
				   "no block device uses the bfq scheduler and iocost is not "
				   "enabled (io.cost.qos)");
	return 0;
}

static int check_support(enum hsp_cgroup_mode mode, unsigned set, hsp_error_t *err)
{
	if (set == 0)
		return 0;
	return mode == HSP_CGROUP_V2 ? check_v2(set, err) : check_v1(set, err);
}

int hsp_cgroup_check_limits(const struct hsp_limits *lim, hsp_error_t *err)
{
	enum hsp_cgroup_mode mode;
	int r = hsp_cg_validate_limits(lim, err);
	if (r == 0)
		r = hsp_cgroup_detect_mode(&mode, err);
	if (r == 0)
		r = check_support(mode, lim->set, err);
	return r;
}

static const char *v1_limit_str(uint64_t v, char buf[32])
{
	if (v == CG_UNLIMITED)
		return "-1";
	snprintf(buf, 32, "%llu", (unsigned long long)v);
	return buf;
}

static uint64_t add_sat(uint64_t a, uint64_t b)
{
	return a > CG_UNLIMITED - b ? CG_UNLIMITED : a + b;
}

static int v1_read_limit(struct hsp_cgroup *cg, const char *file, uint64_t *v, hsp_error_t *err)
{
	int r = hsp_cg_read_u64(hsp_cg_ctrl_of(cg, "memory")->dir, file, v, err);
	if (r == 0 && *v >= V1_UNLIMITED_MIN)
		*v = CG_UNLIMITED;
	return r;
}

/* v1 has no separate swap limit: memory.memsw.limit_in_bytes caps
 * memory+swap and must stay >= memory.limit_in_bytes after every write.
 * When only the memory limit changes, the swap allowance on top of it is
 * kept, as v2's independent memory.swap.max would.  Unlimited memory
 * forces unlimited memsw (v1 cannot cap swap alone). */
static int v1_set_memory(struct hsp_cgroup *cg, const struct hsp_limits *lim, hsp_error_t *err)
{
	const struct cg_ctrl *c = hsp_cg_ctrl_of(cg, "memory");
	bool memsw = hsp_cg_file_exists(c->dir, "memory.memsw.limit_in_bytes");
	char b1[32], b2[32];
	if ((lim->set & HSP_LIMIT_SWAP) && !memsw)
		return unsupported(err, "swap limit",
				   "no memory.memsw.limit_in_bytes (boot with swapaccount=1)");
	uint64_t cur_mem, cur_sw = CG_UNLIMITED;
	int r = v1_read_limit(cg, "memory.limit_in_bytes", &cur_mem, err);
	if (r == 0 && memsw)
		r = v1_read_limit(cg, "memory.memsw.limit_in_bytes", &cur_sw, err);
	if (r < 0)
		return r;
	uint64_t mem =
	    (lim->set & HSP_LIMIT_MEMORY) ? (lim->memory ? lim->memory : CG_UNLIMITED) : cur_mem;
	if (!memsw)
		return hsp_cg_set(cg, "memory.limit_in_bytes", v1_limit_str(mem, b1), err);
	uint64_t sw;
	if (lim->set & HSP_LIMIT_SWAP)
		sw = add_sat(mem, lim->swap);
	else
		sw = cur_sw == CG_UNLIMITED ? CG_UNLIMITED
					    : add_sat(mem, cur_sw > cur_mem ? cur_sw - cur_mem : 0);
	if (mem == CG_UNLIMITED)
		sw = CG_UNLIMITED;
	const char *ms = v1_limit_str(mem, b1), *ss = v1_limit_str(sw, b2);
	if (sw >= cur_mem) {
		r = hsp_cg_set(cg, "memory.memsw.limit_in_bytes", ss, err);
		return r < 0 ? r : hsp_cg_set(cg, "memory.limit_in_bytes", ms, err);
	}
	r = hsp_cg_set(cg, "memory.limit_in_bytes", ms, err);
	return r < 0 ? r : hsp_cg_set(cg, "memory.memsw.limit_in_bytes", ss, err);
}

static int v2_set_memory(struct hsp_cgroup *cg, const struct hsp_limits *lim, hsp_error_t *err)
{
	int r = 0;
	if (lim->set & HSP_LIMIT_MEMORY)
		r = lim->memory ? hsp_cg_set_u64(cg, "memory.max", lim->memory, err)
				: hsp_cg_set(cg, "memory.max", "max", err);
	if (r == 0 && (lim->set & HSP_LIMIT_SWAP))
		r = hsp_cg_set_u64(cg, "memory.swap.max", lim->swap, err);
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
		return hsp_cg_set(cg, "cpu.max", buf, err);
	}
	int r = hsp_cg_set_u64(cg, "cpu.cfs_period_us", CPU_PERIOD_US, err);
	if (r < 0)
		return r;
	return milli ? hsp_cg_set_u64(cg, "cpu.cfs_quota_us", quota, err)
		     : hsp_cg_set(cg, "cpu.cfs_quota_us", "-1", err);
}

static int set_io_weight(struct hsp_cgroup *cg, uint64_t w, hsp_error_t *err)
{
	const struct cg_ctrl *c = hsp_cg_ctrl_of(cg, cg->mode == HSP_CGROUP_V2 ? "io" : "blkio");
	if (c == NULL)
		return unsupported(err, "io weight", "no blkio controller");
	bool v2 = cg->mode == HSP_CGROUP_V2;
	const char *iocost = v2 ? "io.weight" : "blkio.weight";
	const char *bfq = v2 ? "io.bfq.weight" : "blkio.bfq.weight";
	bool has_iocost = hsp_cg_file_exists(c->dir, iocost),
	     has_bfq = hsp_cg_file_exists(c->dir, bfq);
	if (!has_iocost && !has_bfq)
		return unsupported(err, "io weight", "the group has no io weight file");
	char buf[32];
	int r = 0;
	if (has_iocost) {
		if (v2)
			snprintf(buf, sizeof(buf), "default %llu", (unsigned long long)w);
		else
			snprintf(buf, sizeof(buf), "%llu", (unsigned long long)weight_to_cfq(w));
		r = hsp_cg_set(cg, iocost, buf, err);
	}
	if (r == 0 && has_bfq)
		r = hsp_cg_set_u64(cg, bfq, weight_to_bfq(w), err);
	return r;
}

int hsp_cgroup_set_limits(struct hsp_cgroup *cg, const struct hsp_limits *lim, hsp_error_t *err)
{
	int r = hsp_cg_validate_limits(lim, err);
	if (r == 0)
		r = check_support(cg->mode, lim->set, err);
	bool v2 = cg->mode == HSP_CGROUP_V2;
	if (r == 0 && (lim->set & (HSP_LIMIT_MEMORY | HSP_LIMIT_SWAP)))
		r = v2 ? v2_set_memory(cg, lim, err) : v1_set_memory(cg, lim, err);
	if (r == 0 && (lim->set & HSP_LIMIT_CPUS))
		r = set_cpus(cg, lim->cpus_milli, err);
	if (r == 0 && (lim->set & HSP_LIMIT_CPU_WEIGHT))
		r = v2 ? hsp_cg_set_u64(cg, "cpu.weight", lim->cpu_weight, err)
		       : hsp_cg_set_u64(cg, "cpu.shares", weight_to_shares(lim->cpu_weight), err);
	if (r == 0 && (lim->set & HSP_LIMIT_PIDS))
		r = lim->pids ? hsp_cg_set_u64(cg, "pids.max", lim->pids, err)
			      : hsp_cg_set(cg, "pids.max", "max", err);
	if (r == 0 && (lim->set & HSP_LIMIT_IO_WEIGHT))
		r = set_io_weight(cg, lim->io_weight, err);
	return r;
}

/* ---- usage ---- */

int hsp_cgroup_usage(struct hsp_cgroup *cg, struct hsp_usage *u, hsp_error_t *err)
{
	memset(u, 0, sizeof(*u));
	const char *mem = hsp_cg_ctrl_of(cg, "memory")->dir;
	int r;
	if (cg->mode == HSP_CGROUP_V2) {
		r = hsp_cg_read_u64(mem, "memory.current", &u->memory, err);
		if (r == 0 && hsp_cg_file_exists(mem, "memory.swap.current"))
			r = hsp_cg_read_u64(mem, "memory.swap.current", &u->swap, err);
		if (r == 0 &&
		    (r = hsp_cg_read_key(mem, "cpu.stat", "usage_usec", &u->cpu_ns, err)) == 0)
			u->cpu_ns *= 1000;
		return r < 0 ? r : hsp_cg_read_u64(mem, "pids.current", &u->pids, err);
	}
	uint64_t memsw = 0;
	r = hsp_cg_read_u64(mem, "memory.usage_in_bytes", &u->memory, err);
	if (r == 0 && hsp_cg_file_exists(mem, "memory.memsw.usage_in_bytes"))
		r = hsp_cg_read_u64(mem, "memory.memsw.usage_in_bytes", &memsw, err);
	u->swap = memsw > u->memory ? memsw - u->memory : 0;
	const struct cg_ctrl *acct = hsp_cg_ctrl_of(cg, "cpuacct");
	if (r == 0 && acct)
		r = hsp_cg_read_u64(acct->dir, "cpuacct.usage", &u->cpu_ns, err);
	return r < 0 ? r
		     : hsp_cg_read_u64(hsp_cg_ctrl_of(cg, "pids")->dir, "pids.current", &u->pids,
				       err);
}
