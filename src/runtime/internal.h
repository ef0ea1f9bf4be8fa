/* Internal structures shared by the runtime's verbs. */
#ifndef HSP_INTERNAL_H
#define HSP_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "cgroup.h"
#include "hsp-runtime.h"

struct hsp_runtime {
	char *root;
	char *run_dir;
	char *instance; /* short hash of root: names per-instance cgroups */
	enum hsp_cgroup_mode cg_mode;
	bool no_cgroups; /* hsp_runtime_disable_cgroups() */
	/* Storage pools (pool.c), loaded on first use. */
	struct hsp_pool **pools;
	size_t npools;
	bool pools_loaded;
	/* VEs looked up or placed, and their pools. */
	char **ve_names;
	const struct hsp_pool **ve_pools;
	size_t nve;
};

/* What a VE is: persisted as <root>/ves/<name>/config.json.  Its presence
 * marks a complete VE; a directory without it is the debris of a failed
 * create. */
struct hsp_ve_config {
	char *name;
	char *hostname;
	char *template;
	/* The template tree under the VE's overlay; NULL: a flat root. */
	char *tree;
	char **init; /* NULL-terminated */
	int stop_signal;
	uid_t id_base;
	struct hsp_limits limits;
	int64_t created;
	/* Network: all NULL for a loopback-only VE. */
	char *ip;      /* CIDR of eth0 */
	char *gateway; /* may be NULL */
	char *bridge;
	/* The public keys create authorized for root (NULL: none), kept for a
	 * rescue boot, which cannot rely on the VE's own copy. */
	char *ssh_keys;
};

/* What a running (or last run) VE is: <run_dir>/<name>/state.json, written
 * by its monitor. */
struct hsp_run_state {
	pid_t monitor_pid;
	pid_t init_pid;
	uint64_t init_start; /* /proc/<pid>/stat starttime, guards pid reuse */
	int64_t started;
	unsigned restarts;
	int last_exit;
	char *cgroup; /* hsp_cgroup_path() */
	/* The monitor's fd of the VE's loop device (-1: none), for growing the
	 * disk while the VE runs: /proc/<monitor_pid>/fd/<n>. */
	int disk_loop_fd;
	/* The VE was stopped because its pool's mount died under it. */
	bool storage_lost;
	/* Set when this run began by restoring a checkpoint. */
	struct hsp_migration_times restored;
	/* Booted in rescue mode (hsp_start_opts). */
	bool rescue;
};

/* Paths (malloc'd). */
char *hsp_ve_dir(hsp_runtime_t *rt, const char *name);
char *hsp_ve_rootfs(hsp_runtime_t *rt, const char *name);
char *hsp_ve_run_dir(hsp_runtime_t *rt, const char *name);
char *hsp_cache_dir(hsp_runtime_t *rt);

/* flock()-based locks; return an fd to close, or -errno with *err. */
int hsp_lock_root(hsp_runtime_t *rt, hsp_error_t *err);
int hsp_lock_ve(hsp_runtime_t *rt, const char *name, hsp_error_t *err);
/* 1 if the VE's monitor holds its lock, 0 if not. */
int hsp_ve_is_running(hsp_runtime_t *rt, const char *name);
/* Waits up to timeout_ms for the monitor to exit; 0 or -ETIMEDOUT. */
int hsp_wait_monitor_gone(hsp_runtime_t *rt, const char *name, unsigned timeout_ms);

/* JSON files (json-c): an object read whole; written atomically, 0600. */
struct json_object;
int hsp_json_load(const char *path, struct json_object **out, hsp_error_t *err);
int hsp_json_save(const char *path, struct json_object *o, hsp_error_t *err);

int hsp_config_load(hsp_runtime_t *rt, const char *name, struct hsp_ve_config *c, hsp_error_t *err);
int hsp_config_save(hsp_runtime_t *rt, const struct hsp_ve_config *c, hsp_error_t *err);
void hsp_config_clear(struct hsp_ve_config *c);
/* Every complete VE's name (NULL-terminated, sorted); returns the count. */
int hsp_config_names(hsp_runtime_t *rt, char ***names, hsp_error_t *err);

int hsp_state_load(hsp_runtime_t *rt, const char *name, struct hsp_run_state *st, hsp_error_t *err);
int hsp_state_save(hsp_runtime_t *rt, const char *name, const struct hsp_run_state *st,
		   hsp_error_t *err);
void hsp_state_clear(struct hsp_run_state *st);

/* Id ranges: first base and the pure picker (unit-tested). */
#define HSP_IDMAP_FIRST 0x100000U
#define HSP_IDMAP_COUNT 4000U
int hsp_idmap_pick(const uid_t *used, size_t n, uid_t *base);
/* Picks a range free in this root and machine-wide, recording it for
 * <root>/ves/<name>, whose directory must exist first. */
int hsp_idmap_allocate(hsp_runtime_t *rt, const char *name, uid_t *base, hsp_error_t *err);
void hsp_idmap_release(hsp_runtime_t *rt, const char *name, uid_t base);
/* At start: keeps *base if this machine's registry has it for this VE or
 * for nobody (recording it), else allocates a new range into *base and
 * returns 1 (a VE made on another node). */
int hsp_idmap_claim(hsp_runtime_t *rt, const char *name, uid_t *base, hsp_error_t *err);

/* /proc/<pid>/stat starttime, or 0 if the process is gone. */
uint64_t hsp_pid_starttime(pid_t pid);
/* A pidfd for the state's init if it is still that process, else -ESRCH. */
int hsp_state_init_pidfd(const struct hsp_run_state *st);

/* 0 if no pool holds a VE `name`, the unreachable ones included. */
int hsp_ve_name_free(hsp_runtime_t *rt, const char *name, hsp_error_t *err);

/* Range checks plus what this host's cgroups can enforce. */
int hsp_limits_validate(const struct hsp_limits *l, hsp_error_t *err);
/* ip a CIDR (NULL: no network; then gateway and bridge must be NULL). */
int hsp_validate_network(const char *ip, const char *gateway, const char *bridge, hsp_error_t *err);
/* Refuses c's address when another VE of this root has it. */
int hsp_check_address_free(hsp_runtime_t *rt, const struct hsp_ve_config *c, hsp_error_t *err);

/* The path of a helper program (hsp-monitor, hsp-unpack): the environment
 * variable `env` if set, else next to the running program. */
char *hsp_helper_path(const char *env, const char *name);
/* Reaps hsp-unpack `pid`, turning its "<errno>\t<message>" record on
 * `errfd` (closed here) into *err. */
int hsp_helper_wait(pid_t pid, int errfd, const char *what, hsp_error_t *err);

/* The body of hsp-monitor: never returns.  Expects the report pipe on
 * fd 3 and the VE's cgroup made by the caller. */
void hsp_monitor_main(hsp_runtime_t *rt, const char *name, const char *cgroup,
		      char *const *init_override, const struct hsp_start_opts *opts,
		      const char *restore_dir) __attribute__((noreturn));

/* Starts the VE's init under a monitor.  With `foreground`, the calling
 * process is the monitor and returns the VE's last exit status in *status
 * when it stops; otherwise a detached monitor is forked and this returns
 * once init has been exec'd. */
int hsp_ve_boot(hsp_runtime_t *rt, const char *name, char *const *init_override,
		const struct hsp_start_opts *opts, bool foreground, int *status, hsp_error_t *err);
/* Like a detached start, but the monitor restores the checkpoint in `dir`
 * (checkpoint.c) instead of booting init. */
int hsp_ve_boot_restore(hsp_runtime_t *rt, const char *name, const char *dir, hsp_error_t *err);

#endif
