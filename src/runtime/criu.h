/* Running CRIU (checkpoint/restore in user space) for live migration.
 *
 * CRIU ≥ 4.2 is needed on kernels ≥ 6.16 (older releases fail `criu check`
 * from 6.13 on and cannot dump TCP sockets from 6.16 on), which Debian 12
 * does not ship.  scripts/install-criu.sh debootstraps a minimal Debian sid
 * tree with criu into /var/lib/hsp-criu/root (HSP_CRIU_ROOT); criu runs from
 * it in a mount namespace of its own whose root is a tmpfs holding the
 * tree's /usr and /etc, the host's /proc, /sys and /dev, and the host paths
 * the caller names, at the same absolute paths.  A chroot is not enough:
 * CRIU parses its own mountinfo and must find its root there.  A criu on
 * PATH is used as it is when there is no tree (a host that ships 4.2). */
#ifndef HSP_CRIU_H
#define HSP_CRIU_H

#include <stdbool.h>
#include <sys/types.h>

#include "cgroup.h"
#include "error.h"

#define HSP_CRIU_DEFAULT_ROOT "/var/lib/hsp-criu/root"
#define HSP_CRIU_MIN_MAJOR 4
#define HSP_CRIU_MIN_MINOR 2
#define HSP_CRIU_MIN_KERNEL_MAJOR 6
#define HSP_CRIU_MIN_KERNEL_MINOR 16

struct hsp_criu {
	char *tree; /* the sid tree, or NULL: `bin` runs on the host */
	char *bin;  /* criu's path inside the tree, or on the host */
};

/* Finds criu: $HSP_CRIU_ROOT (default HSP_CRIU_DEFAULT_ROOT) if it holds
 * usr/sbin/criu, else criu on PATH.  -ENOENT with a message otherwise. */
int hsp_criu_find(struct hsp_criu *c, hsp_error_t *err);
void hsp_criu_clear(struct hsp_criu *c);

struct hsp_criu_run {
	char *const *argv; /* arguments after the program name */
	/* Host directories the run needs (images, VE root, run dir), bound at
	 * the same paths in criu's mount namespace; NULL-terminated. */
	const char *const *paths;
	/* criu and everything it forks join this group first (restore:
	 * the restored tasks must end up in the VE's groups); may be NULL. */
	struct hsp_cgroup *cg;
	int out_fd; /* criu's stdout and stderr; -1: /dev/null */
};

/* Forks criu as the caller's child; *pid to wait for.  What fails in the
 * child before exec comes back here. */
int hsp_criu_spawn(const struct hsp_criu *c, const struct hsp_criu_run *run, pid_t *pid,
		   hsp_error_t *err);
/* Spawns and waits; 0 if criu exited 0, else -EIO with the last error
 * line of `log` (a criu -o file, may be NULL) in the message. */
int hsp_criu_run(const struct hsp_criu *c, const struct hsp_criu_run *run, const char *log,
		 const char *what, hsp_error_t *err);
/* The last "Error (...)" line of a criu log without its prefix
 * (malloc'd), or NULL. */
char *hsp_criu_log_error(const char *log);

/* "Version: 4.2.1" → 4, 2, 1; -EINVAL if not a version line. */
int hsp_criu_parse_version(const char *out, int v[3]);
/* "6.18.4-foo" → 6, 18; -EINVAL if unparsable. */
int hsp_kernel_parse_version(const char *release, int v[2]);

#endif
