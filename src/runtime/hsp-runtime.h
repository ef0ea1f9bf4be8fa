/* libhsp-runtime: full-OS virtual environments (VEs) on one node.
 *
 * Every call returns 0 (or a count) on success, or a negative errno with *err
 * set to a one-line message.  The handle is opaque; one handle is one
 * runtime instance (a root dir for persistent data and a run dir for the
 * state of running VEs), so several instances can share a machine. */
#ifndef HSP_RUNTIME_H
#define HSP_RUNTIME_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "error.h"

#define HSP_DEFAULT_ROOT "/var/lib/hsp"
#define HSP_DEFAULT_RUN_DIR "/run/hsp"
#define HSP_IDMAP_SIZE 65536U
#define HSP_DEFAULT_BRIDGE "hspbr0"

typedef struct hsp_runtime hsp_runtime_t;

/* Resource limits.  A field is meaningful only when its bit is in `set`;
 * 0 in a set field of memory/pids/cpus means "unlimited", while a swap of 0
 * means "no swap".  Unset swap leaves swap use unbounded. */
enum {
	HSP_LIMIT_MEMORY = 1 << 0,     /* bytes of RAM */
	HSP_LIMIT_SWAP = 1 << 1,       /* bytes of swap on top of memory, 0 = none */
	HSP_LIMIT_CPUS = 1 << 2,       /* quota, in thousandths of a CPU */
	HSP_LIMIT_CPU_WEIGHT = 1 << 3, /* 1..10000, cgroup v2 scale */
	HSP_LIMIT_PIDS = 1 << 4,       /* max tasks */
	HSP_LIMIT_IO_WEIGHT = 1 << 5,  /* 1..10000, cgroup v2 scale */
	HSP_LIMIT_DISK = 1 << 6,       /* bytes: the size of the VE's disk (its quota) */
};

struct hsp_limits {
	unsigned set;
	uint64_t memory;
	uint64_t swap;
	uint64_t cpus_milli;
	uint64_t cpu_weight;
	uint64_t pids;
	uint64_t io_weight;
	uint64_t disk;
};

struct hsp_usage {
	uint64_t memory; /* bytes in use */
	uint64_t swap;	 /* bytes of swap in use */
	uint64_t cpu_ns; /* cumulative CPU time */
	uint64_t pids;	 /* tasks */
};

struct hsp_create_opts {
	const char *template;	 /* store name, rootfs directory, or .tar.zst */
	const char *hostname;	 /* default: the VE name */
	char *const *init;	 /* overrides the template's init command */
	const char *stop_signal; /* overrides the template's stop signal */
	const char *ip;		 /* CIDR: gives the VE eth0 on a bridge; NULL: loopback only */
	const char *gateway;	 /* default route, inside the CIDR; optional */
	const char *bridge;	 /* default HSP_DEFAULT_BRIDGE */
	const char *ssh_key;	 /* public key file authorized for root; optional */
	const char *pool;	 /* storage pool; default "local" */
	struct hsp_limits limits;
};

struct hsp_migration_times {
	uint64_t dump_us;    /* criu dump: the VE is frozen from its start */
	uint64_t restore_us; /* criu restore, until the VE runs again */
	uint64_t frozen_us;  /* wall clock, from the freeze to running again */
};

enum hsp_ve_status {
	HSP_VE_STOPPED,
	HSP_VE_RUNNING,
	HSP_VE_STOPPING,
};

struct hsp_ve_info {
	char *name;
	char *hostname;
	char *template;
	enum hsp_ve_status status;
	pid_t init_pid;		     /* host pid, 0 when stopped */
	pid_t monitor_pid;	     /* host pid, 0 when stopped */
	int64_t started;	     /* unix time of the last start, 0 when stopped */
	unsigned restarts;	     /* restarts caused by reboot inside the VE */
	int last_exit;		     /* wait status of the last init, -1 if none */
	bool storage_lost;	     /* stopped because its pool's mount died */
	bool rescue;		     /* running in rescue mode (hsp_start_opts) */
	uid_t id_base;		     /* first host id of the VE's 65536-id range */
	char *cgroup;		     /* "<mode>;<controller>=<path>;..." while running */
	char *ip, *gateway, *bridge; /* NULL without networking */
	struct hsp_limits limits;
	struct hsp_usage usage; /* valid when running */
	/* Set (frozen_us > 0) while a run that began with a restore goes on. */
	struct hsp_migration_times restored;
};

struct hsp_exec_opts {
	char *const *argv;
	char *const *env; /* NULL: a minimal default environment */
	const char *cwd;  /* default "/" */
	bool tty;	  /* allocate a pty inside the VE and proxy it */
	uid_t uid;	  /* inside the VE */
	gid_t gid;
};

int hsp_runtime_open(hsp_runtime_t **rt, const char *root, const char *run_dir, hsp_error_t *err);
void hsp_runtime_close(hsp_runtime_t *rt);
/* VEs started through this handle get no cgroups: no limits, no usage,
 * nothing to clean up.  For benchmarks against runtimes run the same way
 * and for debugging; starting a VE that has limits is refused. */
void hsp_runtime_disable_cgroups(hsp_runtime_t *rt);
/* The absolute root dir (templates live under it). */
const char *hsp_runtime_root(const hsp_runtime_t *rt);

int hsp_ve_create(hsp_runtime_t *rt, const char *name, const struct hsp_create_opts *opts,
		  hsp_error_t *err);
int hsp_ve_start(hsp_runtime_t *rt, const char *name, hsp_error_t *err);
struct hsp_start_opts {
	/* Rescue mode, for a VE made from a stored template: the VE boots a
	 * fresh root of its template tree whose changes live in memory and
	 * are gone at stop, with root's ssh keys (those given at create and
	 * those in its own /root/.ssh/authorized_keys) and its ssh host keys,
	 * and its own root, as a normal start would show it, mounted read-write
	 * at /repair.  Hostname, network, limits, cgroups and the disk lock are
	 * those of a normal start; stop ends it, the next start is normal. */
	bool rescue;
};
/* hsp_ve_start with options; opts NULL is a normal start. */
int hsp_ve_start_opts(hsp_runtime_t *rt, const char *name, const struct hsp_start_opts *opts,
		      hsp_error_t *err);
/* Starts the VE with the caller as its monitor (optionally with another
 * init command) and returns when it stops, with init's exit status (0-255,
 * or 128+signal) in *status. */
int hsp_ve_run(hsp_runtime_t *rt, const char *name, char *const *init, int *status,
	       hsp_error_t *err);
int hsp_ve_stop(hsp_runtime_t *rt, const char *name, unsigned timeout_s, hsp_error_t *err);
int hsp_ve_kill(hsp_runtime_t *rt, const char *name, hsp_error_t *err);
int hsp_ve_restart(hsp_runtime_t *rt, const char *name, unsigned timeout_s, hsp_error_t *err);
/* Runs a command in a running VE and returns its exit status (0-255, or
 * 128+signal) in *status. */
int hsp_ve_exec(hsp_runtime_t *rt, const char *name, const struct hsp_exec_opts *opts, int *status,
		hsp_error_t *err);
int hsp_ve_info(hsp_runtime_t *rt, const char *name, struct hsp_ve_info *info, hsp_error_t *err);
void hsp_ve_info_clear(struct hsp_ve_info *info);
/* Fills *names with a NULL-terminated sorted list; returns the count. */
int hsp_ve_list(hsp_runtime_t *rt, char ***names, hsp_error_t *err);
/* Merges `limits` into the VE's configuration, applying them live if it runs. */
int hsp_ve_set(hsp_runtime_t *rt, const char *name, const struct hsp_limits *limits,
	       hsp_error_t *err);
int hsp_ve_destroy(hsp_runtime_t *rt, const char *name, bool force, hsp_error_t *err);
/* Shows a stopped VE's files on the host at <root>/ves/<name>/rootfs (as
 * stored: the VE's root is uid 0; nosuid, nodev), for inspection and
 * repair; a mounted VE cannot start until unmounted. */
int hsp_ve_mount(hsp_runtime_t *rt, const char *name, bool read_only, char **path,
		 hsp_error_t *err);
int hsp_ve_umount(hsp_runtime_t *rt, const char *name, hsp_error_t *err);

const char *hsp_ve_status_name(enum hsp_ve_status s);

/* Storage pools (per runtime root; "local", the root itself, always
 * exists).  type "local" takes path; "cephfs" takes conf, id, keyring and
 * fs_path, and is checked and mounted before it is recorded. */
struct hsp_pool_spec {
	const char *name, *type;
	const char *path;
	const char *conf, *id, *keyring, *fs_path;
};
struct hsp_pool_info {
	char *name, *type, *location;
	bool online; /* reachable (mounted) from this node */
	int ves;     /* when online */
	char *error; /* why not online */
};
int hsp_pool_add(hsp_runtime_t *rt, const struct hsp_pool_spec *spec, hsp_error_t *err);
int hsp_pool_remove(hsp_runtime_t *rt, const char *name, hsp_error_t *err);
/* Ends this node's mount of a CephFS pool (maintenance, or a client that
 * was fenced) and keeps it released: nothing mounts it again until
 * hsp_pool_mount, which mounts it with a fresh client.  Unmount is refused
 * while a VE of the pool runs here. */
int hsp_pool_unmount(hsp_runtime_t *rt, const char *name, hsp_error_t *err);
int hsp_pool_mount(hsp_runtime_t *rt, const char *name, hsp_error_t *err);
/* Returns the count; free with hsp_pool_info_free. */
int hsp_pool_list(hsp_runtime_t *rt, struct hsp_pool_info **pools, hsp_error_t *err);
void hsp_pool_info_free(struct hsp_pool_info *pools, int n);
/* The directory holding the pool's templates/ and ves/ on this node (NULL:
 * "local"), mounted if needed; owned by the handle. */
int hsp_pool_dir(hsp_runtime_t *rt, const char *name, const char **dir, hsp_error_t *err);

/* Snapshots (names as for VEs): the VE's disk and configuration at one
 * instant; a running VE's file system is frozen for it (crash-consistent).
 * *frozen_us (optional) is how long.  Restore needs the VE stopped. */
struct hsp_snapshot_info {
	char *name;
	int64_t created; /* unix time */
	uint64_t size;	 /* bytes its disk image takes on storage */
};
int hsp_ve_snapshot_create(hsp_runtime_t *rt, const char *name, const char *snap,
			   uint64_t *frozen_us, hsp_error_t *err);
/* Returns the count; free with hsp_snapshot_info_free. */
int hsp_ve_snapshot_list(hsp_runtime_t *rt, const char *name, struct hsp_snapshot_info **snaps,
			 hsp_error_t *err);
void hsp_snapshot_info_free(struct hsp_snapshot_info *snaps, int n);
int hsp_ve_snapshot_restore(hsp_runtime_t *rt, const char *name, const char *snap,
			    hsp_error_t *err);
int hsp_ve_snapshot_delete(hsp_runtime_t *rt, const char *name, const char *snap, hsp_error_t *err);
/* Writes a backup of the VE (its files as it sees them, its configuration)
 * to fd as a zstd-compressed tar: from snapshot `snap` if given, else from
 * a temporary snapshot of a running VE or the disk of a stopped one. */
int hsp_ve_backup(hsp_runtime_t *rt, const char *name, const char *snap, int fd, hsp_error_t *err);
/* What a restore changes from the backup's own configuration. */
struct hsp_restore_opts {
	const char *pool; /* NULL: "local" */
	/* An address belongs to the network the VE lands on, not to the
	 * backup: with set_network the backup's is replaced (ip NULL: none). */
	bool set_network;
	const char *ip, *gateway, *bridge;
};
/* Makes the new VE `name` from a backup read from fd; on failure nothing
 * of it is left. */
int hsp_ve_restore_backup(hsp_runtime_t *rt, const char *name, const struct hsp_restore_opts *o,
			  int fd, hsp_error_t *err);

/* Live migration with CRIU (checkpoint.c, docs/runtime.md).  A checkpoint
 * freezes a running VE, writes its processes and memory to `dir` (on
 * storage the target node sees too) and stops it here, releasing its disk;
 * a restore on the node that should run it reattaches the disk and resumes
 * the processes with their TCP connections, on the same bridge name with
 * the same address.  Needs criu >= 4.2 and a kernel >= 6.16 on both. */
struct hsp_checkpoint_support {
	bool supported;
	char *reason;	    /* why not, one line; NULL when supported */
	char *criu;	    /* the criu run, e.g. "/var/lib/hsp-criu/root:/usr/sbin/criu" */
	char *criu_version; /* "4.2.1"; NULL if none was found */
	char *kernel;	    /* uname -r */
};
/* Fills *s (always, also when unsupported; returns 0) after running
 * `criu --version` and `criu check`.  Clear with the function below. */
int hsp_checkpoint_probe(struct hsp_checkpoint_support *s, hsp_error_t *err);
void hsp_checkpoint_support_clear(struct hsp_checkpoint_support *s);

/* On success the VE is stopped here and `dir` holds checkpoint.json and
 * the images; on failure the VE runs on as before. *t (optional) gets
 * dump_us. */
int hsp_ve_checkpoint(hsp_runtime_t *rt, const char *name, const char *dir,
		      struct hsp_migration_times *t, hsp_error_t *err);
/* Restores the checkpoint in `dir` of the stopped VE `name`; on failure the
 * VE is left stopped and startable.  A restored checkpoint is spent (its
 * checkpoint.json renamed): a second restore of it is refused. */
int hsp_ve_restore(hsp_runtime_t *rt, const char *name, const char *dir,
		   struct hsp_migration_times *t, hsp_error_t *err);

#endif
