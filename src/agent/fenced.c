/* Killing every VE of this node: when the lease runs out (self-fencing:
 * the controller may start them elsewhere), and when the controller says
 * the node was fenced while away.  A fenced node's Ceph client is
 * blocklisted, so its mount is dead: the runtime replaces it with a fresh
 * client when it next uses it.  Then the node says hello again
 * with fence_cleared, and the controller makes it ready. */
#define _GNU_SOURCE
#include "agent.h"
#include "utils.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

void agent_kill_all(const struct agent_conf *c, const char *why)
{
	Hsp__V1__VeStatus **ves = NULL;
	size_t n = 0;
	hsp_error_t err = NULL;
	if (report_ves(c, &ves, &n, &err) < 0) {
		agent_log("%s: cannot list VEs: %s", why, err->msg);
		hsp_error_release(&err);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		Hsp__V1__VeState st = ves[i]->state;
		if (st != HSP__V1__VE_STATE__VE_STATE_RUNNING &&
		    st != HSP__V1__VE_STATE__VE_STATE_RESCUE)
			continue;
		char *args[] = {"kill", ves[i]->name, NULL};
		struct run_out r;
		cleanup_free char *msg = NULL;
		if (run_runtime(c, args, 60000, &r, &err) < 0) {
			agent_log("%s: kill %s: %s", why, ves[i]->name, err->msg);
			hsp_error_release(&err);
			continue;
		}
		int code = run_code(&r, &msg);
		agent_log("%s: kill %s: %s%s%s", why, ves[i]->name, pb_code_name(code),
			  *msg ? ": " : "", msg);
		run_out_clear(&r);
	}
	report_ves_free(ves, n);
}

static atomic_bool clearing;

struct clear_job {
	struct agent *a;
	Hsp__V1__StorageConfig *storage; /* NULL: local storage */
};

static void *clear_thread(void *arg)
{
	struct clear_job *j = arg;
	const struct agent_conf *c = &j->a->c;
	agent_kill_all(c, "fenced");
	hsp_error_t err = NULL;
	/* The runtime replaces a mount whose client was fenced when it next
	 * uses it (pool mount below): unmounting here would also drop a mount
	 * already made afresh, and a ceph-fuse ended that way keeps its MDS
	 * session and caps, which then block every other node. */
	if (j->storage) {
		storage_forget();
		if (storage_ensure(c, j->storage, &err) < 0) {
			agent_log("fenced: storage: %s", err->msg);
			hsp_error_release(&err);
		}
	}
	Hsp__V1__Hello *hello = NULL;
	if (report_hello(c, j->storage ? j->storage->pool : NULL, &hello, &err) < 0) {
		/* The controller sends the fenced welcome again on the next
		 * session; this one stays as it is. */
		agent_log("fenced: no hello: %s", err->msg);
		hsp_error_release(&err);
	} else {
		hello->fence_cleared = true;
		Hsp__V1__AgentMessage *m = calloc(1, sizeof(*m));
		if (m == NULL)
			abort();
		hsp__v1__agent_message__init(m);
		m->msg_case = HSP__V1__AGENT_MESSAGE__MSG_HELLO;
		m->hello = hello;
		agent_log("fenced: VEs killed, storage remounted; saying hello again");
		agent_post_message(j->a, m);
	}
	pb_free(j->storage);
	free(j);
	atomic_store(&clearing, false);
	return NULL;
}

void fenced_clear_async(struct agent *a)
{
	if (atomic_exchange(&clearing, true))
		return;
	struct clear_job *j = calloc(1, sizeof(*j));
	if (j == NULL)
		abort();
	j->a = a;
	if (storage_is_cephfs(a->config))
		j->storage = pb_clone(&a->config->storage->base);
	agent_log("fenced: the controller fenced this node while it was away; clearing");
	if (agent_thread(clear_thread, j) < 0) {
		pb_free(j->storage);
		free(j);
		atomic_store(&clearing, false);
	}
}
