/* hsp-ceph's verbs share their options and client set-up. */
#ifndef HSP_CEPH_TOOL_H
#define HSP_CEPH_TOOL_H

#include <cephfs/libcephfs.h>

#include "ceph.h"
#include "error.h"

struct opts {
	const char *verb;
	struct hsp_ceph_pool pool;
	const char *path, *snap;
	const char *entity; /* authorize, fence: a client id without "client." */
	const char *perms;  /* authorize */
	unsigned timeout_s;
};

/* Reads the conf and keyring into cm, bounded by the timeout, quiet. */
int hc_configure(struct ceph_mount_info *cm, const struct opts *o, hsp_error_t *err);

/* admin.c: cluster administration for the controller. */
int hc_authorize(const struct opts *o, hsp_error_t *err);
int hc_fence(const struct opts *o, hsp_error_t *err);
int hc_revoke(const struct opts *o, hsp_error_t *err);

#endif
