/* Shared between template.c (the store: manifests, names, resolving) and
 * archive/template-archive.c (unpacking and packing, in hsp-unpack). */
#ifndef HSP_TEMPLATE_INTERNAL_H
#define HSP_TEMPLATE_INTERNAL_H

#include <stdbool.h>
#include <sys/types.h>

#include "error.h"
#include "template.h"

#define HSP_TPL_MANIFEST "manifest.json"
#define HSP_TPL_TAR "rootfs.tar.zst"
#define HSP_TPL_DEFAULT_STOP_SIGNAL "SIGTERM"
#define HSP_TPL_READ_BLOCK (128 * 1024)
extern const char *const hsp_tpl_default_init[];

char *hsp_tpl_strdup(const char *s);
bool hsp_tpl_has_suffix(const char *s, const char *suffix);
int hsp_tpl_check_init(char *const *init, const char *where, hsp_error_t *err);
int hsp_tpl_canonical_signal(const char *s, char **out, hsp_error_t *err);
int hsp_tpl_write_manifest(const char *dir, const char *name, const char *os, const char *version,
			   char *const *init, const char *stop_signal, hsp_error_t *err);
bool hsp_tpl_looks_like_rootfs(const char *dir);
int hsp_tpl_not_rootfs(const char *what, const char *path, hsp_error_t *err);
int hsp_tpl_not_template(const char *what, const char *path, hsp_error_t *err);
int hsp_tpl_check_zstd_file(const char *path, const char *what, hsp_error_t *err);

/* The implementations behind hsp_rootfs_populate and hsp_template_import,
 * run inside hsp-unpack. */
int hsp_archive_populate(const struct hsp_template *t, const char *dest, uid_t id_shift,
			 hsp_error_t *err);
int hsp_archive_import(const char *root, const char *name, const char *source, const char *os,
		       const char *version, char *const *init, const char *stop_signal,
		       hsp_error_t *err);

/* Backups (backup.c): a zstd tar of meta.json, config.json, then rootfs/
 * holding the tree `src` (ids as stored), written to outfd; and its
 * reverse, reading from infd: the tree into `dest` (made here), the two
 * files into meta_dir. */
int hsp_archive_pack_backup(const char *src, const char *meta, const char *config, int outfd,
			    hsp_error_t *err);
int hsp_archive_unbackup(int infd, const char *meta_dir, const char *dest, hsp_error_t *err);

#endif
