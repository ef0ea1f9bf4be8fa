/* Reading and changing what a VE is: state, list, live limits. */
#define _GNU_SOURCE
#include "disk.h"
#include "internal.h"
#include "rootfs.h"
#include "utils.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void hsp_ve_info_clear(struct hsp_ve_info *info)
{
	free(info->name);
	free(info->hostname);
	free(info->template);
	free(info->cgroup);
	free(info->ip);
	free(info->gateway);
	free(info->bridge);
	memset(info, 0, sizeof(*info));
}

int hsp_ve_info(hsp_runtime_t *rt, const char *name, struct hsp_ve_info *info, hsp_error_t *err)
{
	memset(info, 0, sizeof(*info));
	info->last_exit = -1;
	int r = hsp_validate_name(name, "VE", err);
	if (r < 0)
		return r;
	struct hsp_ve_config c;
	r = hsp_config_load(rt, name, &c, err);
	if (r < 0)
		return r;
	info->name = steal_pointer(&c.name);
	info->hostname = steal_pointer(&c.hostname);
	info->template = steal_pointer(&c.template);
	info->id_base = c.id_base;
	info->limits = c.limits;
	info->ip = steal_pointer(&c.ip);
	info->gateway = steal_pointer(&c.gateway);
	info->bridge = steal_pointer(&c.bridge);
	hsp_config_clear(&c);

	struct hsp_run_state st;
	hsp_error_t ignored = NULL;
	if (hsp_state_load(rt, name, &st, &ignored) < 0) {
		hsp_error_release(&ignored);
		return 0;
	}
	info->last_exit = st.last_exit;
	info->storage_lost = st.storage_lost;
	info->restarts = st.restarts;
	if (hsp_ve_is_running(rt, name) && st.init_pid > 0) {
		cleanup_free char *marker = hsp_strdup_printf("%s/%s/stop", rt->run_dir, name);
		info->status = access(marker, F_OK) == 0 ? HSP_VE_STOPPING : HSP_VE_RUNNING;
		info->init_pid = st.init_pid;
		info->monitor_pid = st.monitor_pid;
		info->started = st.started;
		info->rescue = st.rescue;
		info->cgroup = st.cgroup ? strdup(st.cgroup) : NULL;
		info->restored = st.restored;
		struct hsp_cgroup *cg = NULL;
		if (st.cgroup && hsp_cgroup_open(st.cgroup, &cg, &ignored) == 0)
			hsp_cgroup_usage(cg, &info->usage, &ignored);
		hsp_error_release(&ignored);
		hsp_cgroup_free(cg);
	}
	hsp_state_clear(&st);
	return 0;
}

int hsp_ve_list(hsp_runtime_t *rt, char ***names, hsp_error_t *err)
{
	return hsp_config_names(rt, names, err);
}

static void merge_limits(struct hsp_limits *dst, const struct hsp_limits *src)
{
	if (src->set & HSP_LIMIT_MEMORY)
		dst->memory = src->memory;
	if (src->set & HSP_LIMIT_SWAP)
		dst->swap = src->swap;
	if (src->set & HSP_LIMIT_CPUS)
		dst->cpus_milli = src->cpus_milli;
	if (src->set & HSP_LIMIT_CPU_WEIGHT)
		dst->cpu_weight = src->cpu_weight;
	if (src->set & HSP_LIMIT_PIDS)
		dst->pids = src->pids;
	if (src->set & HSP_LIMIT_IO_WEIGHT)
		dst->io_weight = src->io_weight;
	if (src->set & HSP_LIMIT_DISK)
		dst->disk = src->disk;
	dst->set |= src->set;
}

/* Grows the disk: live through the monitor's loop device and the mounted
 * file system when the VE runs, else the image alone (the file system
 * follows at the next start). */
static int set_disk(hsp_runtime_t *rt, const char *name, uint64_t size, hsp_error_t *err)
{
	cleanup_free char *img = hsp_disk_path(rt, name);
	struct hsp_run_state st;
	hsp_error_t ignored = NULL;
	if (!hsp_ve_is_running(rt, name) || hsp_state_load(rt, name, &st, &ignored) < 0) {
		hsp_error_release(&ignored);
		return hsp_disk_grow_offline(img, size, err);
	}
	cleanup_free char *loop =
	    hsp_strdup_printf("/proc/%d/fd/%d", st.monitor_pid, st.disk_loop_fd);
	cleanup_free char *fs = hsp_strdup_printf("%s/%s/private", rt->run_dir, name);
	hsp_state_clear(&st);
	cleanup_close int lfd = open(loop, O_RDWR | O_CLOEXEC);
	cleanup_close int ffd = open(fs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (lfd < 0 || ffd < 0)
		return hsp_make_errno(err, errno, "VE `%s`: reach its mounted disk", name);
	return hsp_disk_grow(img, lfd, ffd, size, err);
}

int hsp_ve_set(hsp_runtime_t *rt, const char *name, const struct hsp_limits *limits,
	       hsp_error_t *err)
{
	int r = hsp_validate_name(name, "VE", err);
	if (r < 0)
		return r;
	if (limits->set == 0)
		return hsp_make_error(err, EINVAL, "set: no limit given");
	cleanup_close int lock = hsp_lock_ve(rt, name, err);
	if (lock < 0)
		return lock;
	struct hsp_ve_config c;
	r = hsp_config_load(rt, name, &c, err);
	if (r < 0)
		return r;
	struct hsp_limits merged = c.limits;
	struct hsp_run_state st = {0};
	hsp_error_t ignored = NULL;
	merge_limits(&merged, limits);
	r = hsp_limits_validate(&merged, err);
	if (r < 0)
		goto out;

	/* Live first: if the kernel refuses (e.g. memory below current use),
	 * the stored configuration must not claim otherwise. */
	if (hsp_ve_is_running(rt, name) && hsp_state_load(rt, name, &st, &ignored) == 0 &&
	    st.cgroup) {
		struct hsp_cgroup *cg = NULL;
		r = hsp_cgroup_open(st.cgroup, &cg, err);
		if (r == 0)
			r = hsp_cgroup_set_limits(cg, &merged, err);
		hsp_cgroup_free(cg);
	}
	if (r == 0 && (limits->set & HSP_LIMIT_DISK) && limits->disk != c.limits.disk)
		r = set_disk(rt, name, limits->disk, err);
	if (r == 0) {
		c.limits = merged;
		r = hsp_config_save(rt, &c, err);
	}
out:
	hsp_error_release(&ignored);
	hsp_state_clear(&st);
	hsp_config_clear(&c);
	return r;
}
