/* The cluster's storage on this node.  "local" (or nothing): VEs live in
 * the runtime root, nothing to do.  "cephfs": every node has the same
 * runtime pool on one CephFS, so any node can start any VE; the agent
 * writes the Ceph client files from the config and adds the pool to the
 * runtime once. */
#define _GNU_SOURCE
#include "agent.h"
#include "utils.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static pthread_mutex_t storage_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_bool storage_ok;

bool storage_is_cephfs(const Hsp__V1__ClusterConfig *cfg)
{
	return cfg && cfg->storage && strcmp(cfg->storage->type, "cephfs") == 0;
}

bool storage_ready(void)
{
	return atomic_load(&storage_ok);
}

void storage_forget(void)
{
	atomic_store(&storage_ok, false);
}

static int pool_exists(const struct agent_conf *c, const char *pool, bool *found, hsp_error_t *err)
{
	char *args[] = {"pool", "list", "--json", NULL};
	struct run_out r;
	int ret = run_runtime(c, args, 60000, &r, err);
	if (ret < 0)
		return ret;
	cleanup_free char *msg = NULL;
	json_object *a = NULL;
	if (run_code(&r, &msg) != GRPC_STATUS_OK)
		ret = hsp_make_error(err, r.err_no > 0 ? r.err_no : EIO, "pool list: %s", msg);
	else
		ret = report_parse_json(&r, &a, err);
	run_out_clear(&r);
	*found = false;
	for (size_t i = 0; ret == 0 && i < json_object_array_length(a); i++) {
		json_object *name, *o = json_object_array_get_idx(a, i);
		if (json_object_object_get_ex(o, "name", &name) &&
		    strcmp(json_object_get_string(name), pool) == 0)
			*found = true;
	}
	json_object_put(a);
	return ret;
}

/* A runtime pool verb; its failure as one error naming `what`. */
static int pool_verb(const struct agent_conf *c, char **args, const char *what, hsp_error_t *err)
{
	struct run_out r;
	int ret = run_runtime(c, args, 120000, &r, err);
	if (ret < 0)
		return ret;
	cleanup_free char *msg = NULL;
	if (run_code(&r, &msg) != GRPC_STATUS_OK)
		ret = hsp_make_error(err, r.err_no > 0 ? r.err_no : EIO, "%s: %s", what, msg);
	run_out_clear(&r);
	return ret;
}

static int pool_add(const struct agent_conf *c, const Hsp__V1__StorageConfig *s, const char *conf,
		    const char *keyring, hsp_error_t *err)
{
	char *args[] = {
	    "pool",	     "add",  s->pool,		"--type",    "cephfs",	      "--conf",
	    (char *)conf,    "--id", s->ceph_client_id, "--keyring", (char *)keyring, "--fs-path",
	    s->ceph_fs_path, NULL};
	cleanup_free char *what = hsp_strdup_printf("pool add %s", s->pool);
	return pool_verb(c, args, what, err);
}

static int pool_mount(const struct agent_conf *c, const char *pool, hsp_error_t *err)
{
	char *args[] = {"pool", "mount", (char *)pool, NULL};
	cleanup_free char *what = hsp_strdup_printf("pool mount %s", pool);
	return pool_verb(c, args, what, err);
}

static int ensure_locked(const struct agent_conf *c, const Hsp__V1__StorageConfig *s,
			 hsp_error_t *err)
{
	if (*s->pool == '\0')
		return hsp_make_error(err, EINVAL, "cephfs storage without a pool name");
	/* Always rewritten: the controller may have rotated the key. */
	cleanup_free char *conf = NULL;
	cleanup_free char *keyring = NULL;
	int r = state_write_ceph(c->state_dir, s, &conf, &keyring, err);
	bool found = false;
	if (r == 0)
		r = pool_exists(c, s->pool, &found, err);
	if (r == 0 && !found) {
		agent_log("storage: adding cephfs pool %s (%s as client.%s)", s->pool,
			  s->ceph_fs_path, s->ceph_client_id);
		r = pool_add(c, s, conf, keyring, err);
	} else if (r == 0) {
		/* Released in maintenance or after a fence: mounted afresh. */
		r = pool_mount(c, s->pool, err);
	}
	return r;
}

int storage_ensure(const struct agent_conf *c, const Hsp__V1__StorageConfig *s, hsp_error_t *err)
{
	/* Serialized: two `pool add` at once would race in the runtime. */
	pthread_mutex_lock(&storage_lock);
	int r = 0;
	if (!atomic_load(&storage_ok)) {
		r = ensure_locked(c, s, err);
		atomic_store(&storage_ok, r == 0);
	}
	pthread_mutex_unlock(&storage_lock);
	return r;
}

struct ensure_job {
	const struct agent_conf *c;
	Hsp__V1__StorageConfig *s;
};

static void *ensure_thread(void *arg)
{
	struct ensure_job *j = arg;
	hsp_error_t err = NULL;
	if (storage_ensure(j->c, j->s, &err) < 0) {
		agent_log("storage: %s", err->msg);
		hsp_error_release(&err);
	} else {
		agent_log("storage: cephfs pool %s ready", j->s->pool);
	}
	pb_free(j->s);
	free(j);
	return NULL;
}

void storage_ensure_async(struct agent *a)
{
	if (!storage_is_cephfs(a->config))
		return;
	struct ensure_job *j = malloc(sizeof(*j));
	if (j == NULL)
		return;
	j->c = &a->c;
	j->s = pb_clone(&a->config->storage->base);
	if (agent_thread(ensure_thread, j) < 0) {
		pb_free(j->s);
		free(j);
	}
}
