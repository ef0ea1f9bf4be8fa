/* OS templates and VE root file systems.
 *
 * Store layout, per runtime root:
 *   <root>/templates/<name>/rootfs.tar.zst   the root file system
 *   <root>/templates/<name>/manifest.json    {"name","os","version","init":[...],
 *                                             "stop_signal","created"}
 * A template argument is a store name, or a path to a rootfs directory, or to
 * a .tar.zst of one (then the init is /sbin/init and the stop signal SIGTERM
 * unless the caller overrides them). */
#ifndef HSP_TEMPLATE_H
#define HSP_TEMPLATE_H

#include <stdbool.h>
#include <sys/types.h>

#include "error.h"

struct hsp_template {
	char *name;   /* store name, or the path as given */
	char *source; /* absolute path of the rootfs dir or .tar.zst */
	char *os;     /* may be NULL */
	char *version;
	char **init; /* NULL-terminated */
	char *stop_signal;
	bool stored; /* from the store, not a path */
};

int hsp_template_resolve(const char *root, const char *arg, struct hsp_template *t,
			 hsp_error_t *err);
void hsp_template_clear(struct hsp_template *t);
/* Returns the count of templates in the store; *names NULL-terminated, sorted. */
int hsp_template_list(const char *root, char ***names, hsp_error_t *err);
/* Adds a template to the store from a rootfs dir or .tar.zst (packing a
 * directory into rootfs.tar.zst), with the given manifest fields. */
int hsp_template_import(const char *root, const char *name, const char *source, const char *os,
			const char *version, char *const *init, const char *stop_signal,
			hsp_error_t *err);

/* Populates `dest` (which must not exist) with the template's files, every
 * owner shifted by `id_shift` (uid and gid), keeping modes incl. setuid,
 * hard links, symlinks, xattrs and times.  On failure removes what it made.
 *
 * Ids in the template must be below HSP_IDMAP_SIZE (else -EINVAL).  Named
 * users and groups in ACLs are shifted too; file capabilities become v3 with
 * rootid = id_shift, i.e. effective in the VE's user namespace only.  Device
 * nodes and sockets are skipped (/dev is a tmpfs in VEs).  Paths that would
 * leave `dest` (absolute, "..", through a symlink) fail with -EINVAL.  Runs
 * the extraction in a short-lived thread with its own cwd and umask, so the
 * caller's are untouched.  Needs root (CAP_CHOWN, CAP_FOWNER, CAP_SETFCAP). */
int hsp_rootfs_populate(const struct hsp_template *t, const char *dest, uid_t id_shift,
			hsp_error_t *err);

#endif
