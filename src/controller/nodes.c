/* The node API: agents join with a single-use token and then keep one
 * Session open, over which they report and take commands.  A node is who
 * its certificate says (CN); nothing an agent writes about itself names
 * it. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "pki.h"
#include "utils.h"

#define CERT_DAYS 3650
#define JOIN_USED "join token was already used"
#define CMD_DEFAULT_MS (15 * 60 * 1000)

struct ctl_cmd {
	uint64_t id;
	ctl_cmd_done_fn done;
	ctl_cmd_exec_fn exec;
	void *ud;
	int64_t deadline_ms;
	struct ctl_cmd *next;
};

const char *node_state_str(Hsp__V1__NodeState s)
{
	switch (s) {
	case HSP__V1__NODE_STATE__NODE_STATE_JOINING:
		return "joining";
	case HSP__V1__NODE_STATE__NODE_STATE_READY:
		return "ready";
	case HSP__V1__NODE_STATE__NODE_STATE_DRAINING:
		return "draining";
	case HSP__V1__NODE_STATE__NODE_STATE_MAINTENANCE:
		return "maintenance";
	case HSP__V1__NODE_STATE__NODE_STATE_DEAD:
		return "dead";
	case HSP__V1__NODE_STATE__NODE_STATE_SUSPECT:
		return "suspect";
	case HSP__V1__NODE_STATE__NODE_STATE_FENCED:
		return "fenced";
	default:
		return "unknown";
	}
}

void node_set_state(struct ctl_node *n, Hsp__V1__NodeState s, const char *why)
{
	if (n->pb->state == s)
		return;
	n->pb->state = s;
	node_save(n, NULL);
	event_emit("node.state", NULL, n->pb->name, NULL, node_state_str(s), "%s", why);
}

bool node_usable(const struct ctl_node *n)
{
	return n->session && n->pb->state == HSP__V1__NODE_STATE__NODE_STATE_READY && !n->removing;
}

void node_allocated(const struct ctl_node *n, uint64_t *mem, uint32_t *cpu_millis, uint32_t *count)
{
	*mem = 0;
	*cpu_millis = 0;
	*count = 0;
	for (size_t i = 0; i < ctl->n_ves; i++) {
		const Hsp__V1__Ve *ve = ctl->ves[i];
		if (strcmp(ve->node, n->pb->name) != 0)
			continue;
		const Hsp__V1__Limits *l = ve->limits;
		*mem += l && l->memory_bytes ? l->memory_bytes : 512ULL << 20;
		*cpu_millis += l ? l->cpu_millis : 0;
		(*count)++;
	}
}

/* ------------------------------------------------------------ commands */

static void send_ctl_msg(struct ctl_node *n, Hsp__V1__ControllerMessage *m)
{
	if (n->session)
		hsp_rpc_call_send(n->session, &m->base);
}

int cmd_send(struct ctl_node *n, Hsp__V1__Command *cmd, ctl_cmd_done_fn done,
	     ctl_cmd_exec_fn exec_out, void *ud, hsp_error_t *err)
{
	if (n->session == NULL || hsp_rpc_call_is_over(n->session))
		return hsp_make_error(err, ENOTCONN, "node `%s` is not connected", n->pb->name);
	struct ctl_cmd *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return hsp_make_errno(err, ENOMEM, "command");
	c->id = cmd->id = ++ctl->next_cmd_id;
	c->done = done;
	c->exec = exec_out;
	c->ud = ud;
	unsigned ms = CMD_DEFAULT_MS;
	if (cmd->kind == HSP__V1__COMMAND_KIND__COMMAND_KIND_EXEC)
		ms = cmd->timeout_seconds ? (cmd->timeout_seconds + 30) * 1000U : 24 * 3600 * 1000U;
	/* The agent bounds a backup's runtime call at 6 h: a big VE over a
	 * slow pool takes its time. */
	else if (cmd->kind == HSP__V1__COMMAND_KIND__COMMAND_KIND_BACKUP_CREATE ||
		 cmd->kind == HSP__V1__COMMAND_KIND__COMMAND_KIND_BACKUP_RESTORE)
		ms = (6 * 3600 + 60) * 1000U;
	c->deadline_ms = hsp_rpc_now_ms() + ms;
	Hsp__V1__ControllerMessage m = HSP__V1__CONTROLLER_MESSAGE__INIT;
	m.msg_case = HSP__V1__CONTROLLER_MESSAGE__MSG_COMMAND;
	m.command = cmd;
	if (hsp_rpc_call_send(n->session, &m.base) < 0) {
		free(c);
		return hsp_make_error(err, ENOTCONN, "node `%s`: its session is closing",
				      n->pb->name);
	}
	c->next = n->cmds;
	n->cmds = c;
	return 0;
}

static struct ctl_cmd *cmd_take(struct ctl_node *n, uint64_t id, bool remove)
{
	for (struct ctl_cmd **p = &n->cmds; *p; p = &(*p)->next) {
		struct ctl_cmd *c = *p;
		if (c->id != id)
			continue;
		if (remove)
			*p = c->next;
		return c;
	}
	return NULL;
}

static void cmd_fail(struct ctl_cmd *c, grpc_status_code code, const char *msg)
{
	Hsp__V1__CommandResult res = HSP__V1__COMMAND_RESULT__INIT;
	res.id = c->id;
	res.code = (int32_t)code;
	res.message = (char *)msg;
	c->done(c->ud, &res);
	free(c);
}

static void cmds_fail_all(struct ctl_node *n, grpc_status_code code, const char *msg)
{
	while (n->cmds) {
		struct ctl_cmd *c = n->cmds;
		n->cmds = c->next;
		cmd_fail(c, code, msg);
	}
}

static void cmds_expire(struct ctl_node *n, int64_t now)
{
	for (struct ctl_cmd **p = &n->cmds; *p;) {
		struct ctl_cmd *c = *p;
		if (c->deadline_ms > now) {
			p = &c->next;
			continue;
		}
		*p = c->next;
		cmd_fail(c, GRPC_STATUS_DEADLINE_EXCEEDED, "the node did not answer in time");
	}
}

/* ------------------------------------------------------------ join */

static int join_token_check(const char *tok, Hsp__V1__StoredToken **out, const char **why)
{
	char id[64];
	const char *rest;
	*why = "join token is not valid";
	if (token_parse(tok, "hspj", id, sizeof(id), &rest) < 0)
		return -1;
	const char *dot = strchr(rest, '.');
	cleanup_free char *secret = dot ? strndup(rest, (size_t)(dot - rest)) : strdup(rest);
	if (secret == NULL)
		return -1;
	Hsp__V1__StoredToken *t = token_find(id);
	char hash[65];
	hsp_sha256_hex(secret, hash);
	if (t == NULL || !hsp_const_eq(hash, t->hash) ||
	    t->token->kind != HSP__V1__TOKEN_KIND__TOKEN_KIND_JOIN)
		return -1;
	if (t->token->expires_at && t->token->expires_at <= now_unix()) {
		*why = t->token->used ? JOIN_USED : "join token has expired";
		return -1;
	}
	*out = t;
	return 0;
}

/* A spent token is let through again only for the join it was spent on
 * (same name; join_finish checks the key), and only while that node is a
 * member: the answer to that join may have been lost, but a removed node
 * stays removed. */
static bool join_is_retry(const Hsp__V1__StoredToken *t, const char *name)
{
	return *t->node && strcmp(t->node, name) == 0 && node_find(name) != NULL;
}

/* The node's own cephx key, kept in the store since its join. */
static char *node_keyring(const char *node)
{
	void *data = NULL;
	size_t len = 0;
	hsp_error_t err = NULL;
	if (hsp_store_get(ctl->store, "cephkey", node, &data, &len, &err) < 0) {
		hsp_error_release(&err);
		return NULL;
	}
	char *k = strndup(data, len);
	free(data);
	return k;
}

/* What a node is told at join and in every welcome.  *keyring (freed by
 * the caller) backs the Ceph key in it. */
static Hsp__V1__ClusterConfig *cluster_config(const struct ctl_node *n, char **keyring)
{
	static Hsp__V1__ClusterConfig cfg = HSP__V1__CLUSTER_CONFIG__INIT;
	static Hsp__V1__StorageConfig sto = HSP__V1__STORAGE_CONFIG__INIT;
	static Hsp__V1__NetworkConfig net = HSP__V1__NETWORK_CONFIG__INIT;
	/* read once, kept for the daemon's life */
	static char *conf;
	static char entity[160];
	cfg.cluster_name = (char *)ctl->o.cluster_name;
	cfg.heartbeat_ms = ctl->o.heartbeat_ms;
	cfg.lease_ms = ctl->o.lease_ms;
	const char *node = n->pb->name, *ve_address = n->pb->ve_address;
	/* A node in maintenance holds no shared storage: told it has none,
	 * it lets go of the pool and mounts it again when undrained. */
	bool ceph = ceph_enabled() && n->pb->state != HSP__V1__NODE_STATE__NODE_STATE_MAINTENANCE;
	sto.type = ceph ? "cephfs" : "local";
	sto.pool = ceph ? (char *)ctl->o.ceph_pool : "local";
	if (ceph && conf == NULL)
		hsp_read_file(ctl->o.ceph_conf, &conf, NULL, NULL);
	*keyring = ceph && *keyring == NULL ? node_keyring(node) : *keyring;
	ceph_entity(node, entity, sizeof(entity));
	sto.ceph_conf = ceph && conf ? conf : "";
	sto.ceph_keyring = *keyring ? *keyring : "";
	sto.ceph_client_id = ceph ? entity : "";
	sto.ceph_fs_path = ceph ? (char *)ctl->o.ceph_fs_path : "";
	cfg.storage = &sto;
	net.subnet = ctl->o.subnet ? (char *)ctl->o.subnet : "";
	net.gateway = ctl->o.subnet ? ctl->gateway_str : "";
	net.bridge = ctl->o.subnet ? (char *)ctl->o.bridge : "";
	net.node_address = ctl->o.gateway_external && ve_address ? (char *)ve_address : "";
	cfg.network = &net;
	return &cfg;
}

static const char *check_join(const Hsp__V1__JoinRequest *r, grpc_status_code *code)
{
	*code = GRPC_STATUS_INVALID_ARGUMENT;
	if (!valid_name(r->node_name))
		return "invalid node name: use 1-63 lower-case letters, digits and '-' (not first)";
	if (r->csr_pem.len == 0 || r->csr_pem.len > 16384)
		return "csr_pem must be a PEM certificate request";
	if (r->capacity == NULL || r->capacity->cpus == 0 || r->capacity->memory_bytes == 0)
		return "capacity must give cpus and memory_bytes";
	if (strlen(r->address) > 255 || strlen(r->agent_version) > 255)
		return "address and agent_version must be shorter than 256 bytes";
	*code = GRPC_STATUS_OK;
	return NULL;
}

static struct ctl_node *node_new(const Hsp__V1__JoinRequest *r)
{
	struct ctl_node *n = calloc(1, sizeof(*n));
	Hsp__V1__Node *pb = calloc(1, sizeof(*pb));
	Hsp__V1__NodeCapacity *cap = calloc(1, sizeof(*cap));
	if (n == NULL || pb == NULL || cap == NULL)
		abort();
	hsp__v1__node__init(pb);
	hsp__v1__node_capacity__init(cap);
	*cap = *r->capacity;
	cap->base.unknown_fields = NULL;
	cap->base.n_unknown_fields = 0;
	pb->capacity = cap;
	pb_set_str(&pb->name, r->node_name);
	pb_set_str(&pb->address, r->address);
	pb_set_str(&pb->agent_version, r->agent_version);
	pb->state = HSP__V1__NODE_STATE__NODE_STATE_JOINING;
	pb->joined_at = now_unix();
	n->pb = pb;
	return n;
}

/* The checks a join passes, before and again after the Ceph key: the
 * token may have been used meanwhile. */
static bool join_allowed(hsp_rpc_call_t *call, const Hsp__V1__JoinRequest *r,
			 Hsp__V1__StoredToken **t)
{
	grpc_status_code code;
	const char *bad = check_join(r, &code);
	const char *why = NULL;
	if (bad == NULL && join_token_check(r->token, t, &why) < 0) {
		bad = why;
		code = GRPC_STATUS_UNAUTHENTICATED;
	}
	if (bad == NULL && (*t)->token->used && !join_is_retry(*t, r->node_name)) {
		bad = JOIN_USED;
		code = GRPC_STATUS_UNAUTHENTICATED;
	}
	if (bad) {
		hsp_rpc_call_finish(call, code, "%s", bad);
		return false;
	}
	if (!(*t)->token->used && node_find(r->node_name)) {
		hsp_rpc_call_finish(call, GRPC_STATUS_ALREADY_EXISTS,
				    "node `%s` is already a member; remove it first", r->node_name);
		return false;
	}
	return true;
}

static void join_answer(hsp_rpc_call_t *call, const struct ctl_node *n, const char *cert,
			const char *keyring)
{
	Hsp__V1__JoinResponse resp = HSP__V1__JOIN_RESPONSE__INIT;
	resp.cert_pem.data = (uint8_t *)cert;
	resp.cert_pem.len = strlen(cert);
	resp.ca_pem.data = (uint8_t *)ctl->ca_cert;
	resp.ca_pem.len = strlen(ctl->ca_cert);
	char *kr = keyring ? strdup(keyring) : NULL;
	resp.config = cluster_config(n, &kr);
	int sr = hsp_rpc_call_send(call, &resp.base);
	free(kr);
	if (sr < 0)
		fprintf(stderr, "hsp-controller: join of %s: answer not sent: %s\n", n->pb->name,
			strerror(-sr));
}

/* The token is spent only together with the node record (one
 * transaction), and records what it was spent on for join_is_retry. */
static int join_commit(Hsp__V1__StoredToken *t, struct ctl_node *n, const char *key_id,
		       const char *keyring, hsp_error_t *err)
{
	const char *name = n->pb->name;
	t->token->used = true;
	pb_set_str(&t->node, name);
	pb_set_str(&t->key_sha256, key_id);
	if (hsp_store_begin(ctl->store, err) < 0 || token_save(t, err) < 0 ||
	    node_save(n, err) < 0 ||
	    hsp_store_put(ctl->store, "nodekey", name, key_id, strlen(key_id), err) < 0 ||
	    (keyring &&
	     hsp_store_put(ctl->store, "cephkey", name, keyring, strlen(keyring), err) < 0) ||
	    hsp_store_commit(ctl->store, err) < 0) {
		hsp_store_rollback(ctl->store);
		t->token->used = false;
		pb_set_str(&t->node, "");
		pb_set_str(&t->key_sha256, "");
		return -EIO;
	}
	return 0;
}

static void join_finish(hsp_rpc_call_t *call, const Hsp__V1__JoinRequest *r, const char *keyring)
{
	Hsp__V1__StoredToken *t = NULL;
	if (!join_allowed(call, r, &t))
		return;
	bool again = t->token->used;
	cleanup_free char *csr = strndup((const char *)r->csr_pem.data, r->csr_pem.len);
	cleanup_free char *cert = NULL;
	cleanup_free char *vaddr = NULL;
	char key_id[65];
	hsp_error_t err = NULL;
	/* The key is the one the CSR's self-signature proves, never anything
	 * the agent says about it. */
	int rc = csr ? hsp_pki_csr_key_id(csr, r->node_name, key_id, &err) : -ENOMEM;
	if (rc == 0 && again && !hsp_const_eq(key_id, t->key_sha256)) {
		hsp_rpc_call_finish(call, GRPC_STATUS_UNAUTHENTICATED, "%s", JOIN_USED);
		return;
	}
	if (rc == 0)
		rc = hsp_pki_csr_sign(ctl->ca_cert, ctl->ca_key, csr, r->node_name, CERT_DAYS,
				      &cert, &err);
	if (rc < 0) {
		hsp_rpc_call_finish(call,
				    rc == -EPERM ? GRPC_STATUS_PERMISSION_DENIED
						 : GRPC_STATUS_INVALID_ARGUMENT,
				    "%s", err ? err->msg : "bad CSR");
		hsp_error_release(&err);
		return;
	}
	if (again) {
		/* A second certificate for the same name and key gives its
		 * holder nothing it lacked; the node record, its address and
		 * its session (if it has one already) stay as they are. */
		struct ctl_node *n = node_find(r->node_name);
		event_emit("token", NULL, n->pb->name, NULL, "reused",
			   "join token %s answered again for node %s (same key)", t->token->id,
			   n->pb->name);
		join_answer(call, n, cert, NULL);
		return;
	}
	if (ctl->o.gateway_external && ctl->o.subnet && ipam_alloc_node(&vaddr, &err) < 0) {
		hsp_rpc_call_finish(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "%s", err->msg);
		hsp_error_release(&err);
		return;
	}
	struct ctl_node *n = node_new(r);
	pb_set_str(&n->pb->ve_address, vaddr ? vaddr : "");
	if (join_commit(t, n, key_id, keyring, &err) < 0) {
		hsp_rpc_call_finish(call, GRPC_STATUS_INTERNAL, "%s", err->msg);
		hsp_error_release(&err);
		protobuf_c_message_free_unpacked(&n->pb->base, NULL);
		free(n);
		return;
	}
	ctl->nodes = reallocarray(ctl->nodes, ctl->n_nodes + 1, sizeof(*ctl->nodes));
	if (ctl->nodes == NULL)
		abort();
	ctl->nodes[ctl->n_nodes++] = n;
	event_emit("node.state", NULL, n->pb->name, NULL, "joining", "joined with token %s",
		   t->token->id);
	join_answer(call, n, cert, keyring);
}

struct join_wait {
	hsp_rpc_call_t *call;
	Hsp__V1__JoinRequest *req;
};

static void join_keyed(void *ud, int err_no, const char *out, const char *msg)
{
	struct join_wait *j = ud;
	if (err_no)
		hsp_rpc_call_finish(j->call, GRPC_STATUS_UNAVAILABLE,
				    "cannot make node `%s` a Ceph key: %s", j->req->node_name, msg);
	else if (!hsp_rpc_call_is_over(j->call))
		join_finish(j->call, j->req, out);
	hsp_rpc_call_unref(j->call);
	protobuf_c_message_free_unpacked(&j->req->base, NULL);
	free(j);
}

/* With Ceph storage the node first gets its own cephx user (a helper run,
 * off the loop); the join is answered when it is there. */
static void node_join(hsp_rpc_call_t *call, const ProtobufCMessage *req, void *ud)
{
	(void)ud;
	const Hsp__V1__JoinRequest *r = (const void *)req;
	Hsp__V1__StoredToken *t = NULL;
	if (!join_allowed(call, r, &t))
		return;
	/* A join asked again already has its Ceph key, in the store. */
	if (!ceph_enabled() || t->token->used) {
		join_finish(call, r, NULL);
		return;
	}
	struct join_wait *j = calloc(1, sizeof(*j));
	if (j == NULL)
		abort();
	j->call = hsp_rpc_call_ref(call);
	j->req = (Hsp__V1__JoinRequest *)pb_clone(req);
	hsp_error_t err = NULL;
	if (ceph_run("authorize", r->node_name, join_keyed, j, &err) < 0) {
		hsp_rpc_call_finish(call, GRPC_STATUS_INTERNAL, "%s", err->msg);
		hsp_error_release(&err);
		hsp_rpc_call_unref(j->call);
		protobuf_c_message_free_unpacked(&j->req->base, NULL);
		free(j);
	}
}

/* ------------------------------------------------------------ session */

/* A node is the key it joined with, not only its name: after a remove
 * and a new join under the same name, the old machine's certificate (same
 * CA, same CN, ten years valid) must not open the new node's session.
 * Nodes that joined before keys were recorded have none: accepted. */
static bool session_key_ok(hsp_rpc_call_t *call, const char *node)
{
	void *data = NULL;
	size_t len = 0;
	hsp_error_t err = NULL;
	if (hsp_store_get(ctl->store, "nodekey", node, &data, &len, &err) < 0) {
		bool absent = err->status == ENOENT;
		hsp_error_release(&err);
		return absent;
	}
	cleanup_free char *want = strndup(data, len);
	free(data);
	const char *pem = hsp_rpc_call_peer_cert(call);
	char have[65];
	if (want == NULL || pem == NULL || hsp_pki_cert_key_id(pem, have, &err) < 0) {
		hsp_error_release(&err);
		return false;
	}
	return hsp_const_eq(want, have);
}

/* Removed from the cluster: what it joined with goes too. */
void node_forget_keys(const char *node)
{
	hsp_store_del(ctl->store, "nodekey", node, NULL);
	hsp_store_del(ctl->store, "cephkey", node, NULL);
}

static struct ctl_node *session_node(hsp_rpc_call_t *call)
{
	const char *name = hsp_rpc_call_get_data(call);
	struct ctl_node *n = name ? node_find(name) : NULL;
	return n && n->session == call ? n : NULL;
}

static void session_open(hsp_rpc_call_t *call, const ProtobufCMessage *req, void *ud)
{
	(void)req;
	(void)ud;
	const char *cn = hsp_rpc_call_peer_cn(call);
	if (cn == NULL) {
		hsp_rpc_call_finish(call, GRPC_STATUS_UNAUTHENTICATED,
				    "no client certificate: a session needs the node certificate "
				    "issued at join");
		return;
	}
	struct ctl_node *n = node_find(cn);
	if (n == NULL) {
		hsp_rpc_call_finish(call, GRPC_STATUS_PERMISSION_DENIED,
				    "node `%s` is not a member of this cluster (removed?)", cn);
		return;
	}
	if (!session_key_ok(call, cn)) {
		hsp_rpc_call_finish(call, GRPC_STATUS_UNAUTHENTICATED,
				    "this certificate's key is not the one node `%s` joined with "
				    "(a removed machine's old certificate?)",
				    cn);
		return;
	}
	char *name = strdup(cn);
	if (name == NULL)
		abort();
	hsp_rpc_call_set_data(call, name, free);
	if (n->session) {
		/* The agent restarted before we noticed its old connection
		 * die: the new session wins. */
		hsp_rpc_call_t *old = n->session;
		n->session = NULL;
		hsp_rpc_call_finish(old, GRPC_STATUS_ABORTED, "replaced by a newer session");
		hsp_rpc_call_unref(old);
		cmds_fail_all(n, GRPC_STATUS_UNAVAILABLE, "the node's agent reconnected");
	}
	n->session = hsp_rpc_call_ref(call);
	n->last_seen_ms = hsp_rpc_now_ms();
}

static void take_templates(struct ctl_node *n, const Hsp__V1__Hello *h)
{
	for (size_t i = 0; i < n->n_templates; i++)
		protobuf_c_message_free_unpacked(&n->templates[i]->base, NULL);
	free(n->templates);
	n->templates = calloc(h->n_templates + 1, sizeof(*n->templates));
	if (n->templates == NULL)
		abort();
	for (size_t i = 0; i < h->n_templates; i++)
		n->templates[i] = (Hsp__V1__Template *)pb_clone(&h->templates[i]->base);
	n->n_templates = h->n_templates;
}

static void take_capacity(struct ctl_node *n, const Hsp__V1__NodeCapacity *c)
{
	if (c == NULL)
		return;
	if (n->pb->capacity == NULL) {
		n->pb->capacity = calloc(1, sizeof(*n->pb->capacity));
		if (n->pb->capacity == NULL)
			abort();
		hsp__v1__node_capacity__init(n->pb->capacity);
	}
	n->pb->capacity->cpus = c->cpus;
	n->pb->capacity->memory_bytes = c->memory_bytes;
	n->pb->capacity->disk_bytes = c->disk_bytes;
}

/* A node's report of one VE: the truth about its state, unless an
 * operation on it is changing that state right now. */
static void take_ve_status(struct ctl_node *n, const Hsp__V1__VeStatus *st)
{
	Hsp__V1__Ve *ve = ve_find(st->name);
	if (ve == NULL || strcmp(ve->node, n->pb->name) != 0)
		return;
	ve_set_usage(ve, st->usage);
	if (*ve->operation || st->state == ve->state ||
	    st->state == HSP__V1__VE_STATE__VE_STATE_UNSPECIFIED)
		return;
	/* Stopped from inside (poweroff) or started on the node by hand:
	 * that is what its owner wants now. */
	if (st->state == HSP__V1__VE_STATE__VE_STATE_STOPPED ||
	    st->state == HSP__V1__VE_STATE__VE_STATE_RUNNING)
		ve->desired_running = st->state == HSP__V1__VE_STATE__VE_STATE_RUNNING;
	ve->state = st->state;
	pb_set_str(&ve->message, "");
	ve_save(ve, NULL);
	event_emit("ve.state", ve->name, n->pb->name, NULL, ve_state_str(st->state),
		   "reported by its node");
}

/* A VE on the node that the controller never heard of (made before the
 * node joined, or by hand with hsp-runtime): taken into the model as the
 * admin's, so it is seen and managed, never silently ignored. */
static void adopt(struct ctl_node *n, const Hsp__V1__VeStatus *st)
{
	if (!valid_name(st->name) || ve_find(st->name))
		return;
	Hsp__V1__Ve *ve = calloc(1, sizeof(*ve));
	Hsp__V1__Limits *l = calloc(1, sizeof(*l));
	if (ve == NULL || l == NULL)
		abort();
	hsp__v1__ve__init(ve);
	hsp__v1__limits__init(l);
	pb_set_str(&ve->name, st->name);
	pb_set_str(&ve->node, n->pb->name);
	pb_set_str(&ve->template_, st->template_);
	pb_set_str(&ve->hostname, st->hostname);
	pb_set_str(&ve->pool, "local");
	ve->limits = l;
	ve->state = st->state;
	ve->created_at = now_unix();
	ve_set_usage(ve, st->usage);
	ve_save(ve, NULL);
	ctl->ves = reallocarray(ctl->ves, ctl->n_ves + 1, sizeof(*ctl->ves));
	if (ctl->ves == NULL)
		abort();
	ctl->ves[ctl->n_ves++] = ve;
	event_emit("ve.state", ve->name, n->pb->name, NULL, ve_state_str(ve->state),
		   "adopted: found on its node");
}

static bool reported(const Hsp__V1__Hello *h, const char *name)
{
	for (size_t i = 0; i < h->n_ves; i++)
		if (strcmp(h->ves[i]->name, name) == 0)
			return true;
	return false;
}

/* VEs the model places on this node that the node does not have: their
 * create never reached it (a restart cut it short).  They are marked,
 * not dropped, so an operator sees them and destroys them. */
static void mark_missing(struct ctl_node *n, const Hsp__V1__Hello *h)
{
	for (size_t i = 0; i < ctl->n_ves; i++) {
		Hsp__V1__Ve *ve = ctl->ves[i];
		if (strcmp(ve->node, n->pb->name) != 0 || *ve->operation || reported(h, ve->name))
			continue;
		ve->state = HSP__V1__VE_STATE__VE_STATE_FAILED;
		pb_set_str(&ve->message, "its node does not have it");
		ve_save(ve, NULL);
		event_emit("ve.state", ve->name, n->pb->name, NULL, "failed",
			   "its node does not have it");
	}
}

static void send_welcome_now(struct ctl_node *n, char *keyring)
{
	cleanup_free char **names = calloc(ctl->n_ves + 1, sizeof(*names));
	size_t k = 0;
	for (size_t i = 0; names && i < ctl->n_ves; i++)
		if (strcmp(ctl->ves[i]->node, n->pb->name) == 0)
			names[k++] = ctl->ves[i]->name;
	Hsp__V1__Welcome w = HSP__V1__WELCOME__INIT;
	w.config = cluster_config(n, &keyring);
	w.ves = names;
	w.n_ves = k;
	w.fenced = n->pb->state == HSP__V1__NODE_STATE__NODE_STATE_FENCED;
	Hsp__V1__ControllerMessage m = HSP__V1__CONTROLLER_MESSAGE__INIT;
	m.msg_case = HSP__V1__CONTROLLER_MESSAGE__MSG_WELCOME;
	m.welcome = &w;
	send_ctl_msg(n, &m);
	free(keyring);
}

static void welcome_keyed(void *ud, int err_no, const char *out, const char *msg)
{
	char *name = ud;
	struct ctl_node *n = node_find(name);
	free(name);
	if (n == NULL)
		return;
	n->authorizing = false;
	hsp_error_t err = NULL;
	if (err_no == 0 &&
	    hsp_store_put(ctl->store, "cephkey", n->pb->name, out, strlen(out), &err) < 0) {
		msg = err->msg;
		err_no = EIO;
	}
	if (err_no)
		event_emit("node.storage", NULL, n->pb->name, NULL, "failed",
			   "cannot make the node a Ceph key: %s", msg);
	if (n->session)
		send_welcome_now(n, err_no ? NULL : strdup(out));
	hsp_error_release(&err);
}

/* A node from before per-node keys (or whose key was lost) gets one
 * first: never the controller's own. */
void node_welcome(struct ctl_node *n)
{
	char *keyring = ceph_enabled() ? node_keyring(n->pb->name) : NULL;
	if (!ceph_enabled() || keyring) {
		send_welcome_now(n, keyring);
		return;
	}
	if (n->authorizing)
		return;
	hsp_error_t err = NULL;
	char *name = strdup(n->pb->name);
	if (name && ceph_run("authorize", n->pb->name, welcome_keyed, name, &err) == 0) {
		n->authorizing = true;
		return;
	}
	free(name);
	event_emit("node.storage", NULL, n->pb->name, NULL, "failed", "%s",
		   err ? err->msg : "out of memory");
	hsp_error_release(&err);
	send_welcome_now(n, NULL);
}

static void take_identity(struct ctl_node *n, const Hsp__V1__Hello *h)
{
	take_capacity(n, h->capacity);
	take_templates(n, h);
	pb_set_str(&n->pb->agent_version, h->agent_version);
	if (*h->address)
		pb_set_str(&n->pb->address, h->address);
	for (size_t i = 0; i < n->pb->n_capabilities; i++)
		free(n->pb->capabilities[i]);
	free(n->pb->capabilities);
	n->pb->capabilities = calloc(h->n_capabilities + 1, sizeof(char *));
	if (n->pb->capabilities == NULL)
		abort();
	for (size_t i = 0; i < h->n_capabilities; i++)
		n->pb->capabilities[i] = pb_strdup(h->capabilities[i]);
	n->pb->n_capabilities = h->n_capabilities;
	free(n->boot_id);
	n->boot_id = strdup(h->boot_id);
	n->pb->connected = true;
	n->pb->last_seen = now_unix();
}

static void on_hello(struct ctl_node *n, const Hsp__V1__Hello *h)
{
	take_identity(n, h);
	Hsp__V1__NodeState s = n->pb->state;
	bool fenced = s == HSP__V1__NODE_STATE__NODE_STATE_FENCED;
	/* A fenced node's reports are stale until it has cleared itself; a
	 * node being fenced right now is told so when the fence is done. */
	if ((fenced && !h->fence_cleared) || n->fencing) {
		node_save(n, NULL);
		if (!n->fencing)
			node_welcome(n);
		event_emit("node.connected", NULL, n->pb->name, NULL, node_state_str(s),
			   "session open; the node is fenced and must clear itself first");
		return;
	}
	for (size_t i = 0; i < h->n_ves; i++) {
		take_ve_status(n, h->ves[i]);
		adopt(n, h->ves[i]);
	}
	mark_missing(n, h);
	node_save(n, NULL);
	node_welcome(n);
	event_emit("node.connected", NULL, n->pb->name, NULL, node_state_str(n->pb->state),
		   "session open, %zu VEs reported", h->n_ves);
	if (s == HSP__V1__NODE_STATE__NODE_STATE_JOINING ||
	    s == HSP__V1__NODE_STATE__NODE_STATE_SUSPECT ||
	    s == HSP__V1__NODE_STATE__NODE_STATE_DEAD || fenced)
		node_set_state(n, HSP__V1__NODE_STATE__NODE_STATE_READY,
			       fenced ? "rejoined after fencing, with fresh storage"
				      : "session open");
}

static void on_heartbeat(struct ctl_node *n, const Hsp__V1__Heartbeat *hb)
{
	n->pb->load1 = hb->load1;
	n->pb->memory_used_bytes = hb->memory_used_bytes;
	n->pb->last_seen = now_unix();
	if (n->fencing || n->pb->state == HSP__V1__NODE_STATE__NODE_STATE_FENCED)
		return; /* stale until it clears itself */
	for (size_t i = 0; i < hb->n_ves; i++)
		take_ve_status(n, hb->ves[i]);
	if (n->pb->state == HSP__V1__NODE_STATE__NODE_STATE_SUSPECT)
		node_set_state(n, HSP__V1__NODE_STATE__NODE_STATE_READY, "heartbeats resumed");
}

/* The agent shuts down for maintenance: its VEs go elsewhere first. */
static void on_leaving(struct ctl_node *n, const Hsp__V1__Leaving *l)
{
	Hsp__V1__NodeState s = n->pb->state;
	if (!l->drain || drain_running(n->pb->name) ||
	    (s != HSP__V1__NODE_STATE__NODE_STATE_READY &&
	     s != HSP__V1__NODE_STATE__NODE_STATE_SUSPECT))
		return;
	hsp_error_t err = NULL;
	struct ctl_op *op = op_begin("node.drain", NULL, n->pb->name, &err);
	if (op == NULL) {
		event_emit("node.state", NULL, n->pb->name, NULL, node_state_str(s),
			   "its agent is leaving, but no drain: %s", err->msg);
		hsp_error_release(&err);
		return;
	}
	node_set_state(n, HSP__V1__NODE_STATE__NODE_STATE_DRAINING, "its agent is shutting down");
	drain_begin(n, op);
}

static void session_message(hsp_rpc_call_t *call, const ProtobufCMessage *msg, void *ud)
{
	(void)ud;
	struct ctl_node *n = session_node(call);
	if (n == NULL)
		return;
	const Hsp__V1__AgentMessage *m = (const void *)msg;
	n->last_seen_ms = hsp_rpc_now_ms();
	switch (m->msg_case) {
	case HSP__V1__AGENT_MESSAGE__MSG_HELLO:
		on_hello(n, m->hello);
		break;
	case HSP__V1__AGENT_MESSAGE__MSG_HEARTBEAT:
		on_heartbeat(n, m->heartbeat);
		break;
	case HSP__V1__AGENT_MESSAGE__MSG_LEAVING:
		on_leaving(n, m->leaving);
		break;
	case HSP__V1__AGENT_MESSAGE__MSG_RESULT: {
		struct ctl_cmd *c = cmd_take(n, m->result->id, true);
		if (c) {
			c->done(c->ud, m->result);
			free(c);
		}
		break;
	}
	case HSP__V1__AGENT_MESSAGE__MSG_EXEC: {
		struct ctl_cmd *c = cmd_take(n, m->exec->id, false);
		if (c && c->exec && m->exec->output)
			c->exec(c->ud, m->exec->output);
		break;
	}
	default:
		break;
	}
}

static void session_done(hsp_rpc_call_t *call, bool cancelled, void *ud)
{
	(void)cancelled;
	(void)ud;
	struct ctl_node *n = session_node(call);
	if (n == NULL)
		return;
	n->session = NULL;
	n->pb->connected = false;
	hsp_rpc_call_unref(call);
	cmds_fail_all(n, GRPC_STATUS_UNAVAILABLE, "the node's session ended");
	event_emit("node.disconnected", NULL, n->pb->name, NULL, node_state_str(n->pb->state),
		   "session closed");
}

/* ------------------------------------------------------------ liveness */

static void mark_ves_unknown(struct ctl_node *n)
{
	for (size_t i = 0; i < ctl->n_ves; i++) {
		Hsp__V1__Ve *ve = ctl->ves[i];
		if (strcmp(ve->node, n->pb->name) != 0 ||
		    ve->state == HSP__V1__VE_STATE__VE_STATE_UNKNOWN)
			continue;
		ve->state = HSP__V1__VE_STATE__VE_STATE_UNKNOWN;
		ve_save(ve, NULL);
		event_emit("ve.state", ve->name, n->pb->name, NULL, "unknown", "its node is dead");
	}
}

static void fence_start(struct ctl_node *n);

static void fence_done(void *ud, int err_no, const char *out, const char *msg)
{
	char *name = ud;
	struct ctl_node *n = node_find(name);
	free(name);
	if (n == NULL)
		return;
	n->fencing = false;
	if (err_no) {
		/* Its VEs stay where they are: never two instances. */
		n->fence_retry_ms = hsp_rpc_now_ms() + 1000;
		event_emit("node.fence", NULL, n->pb->name, NULL, "failed",
			   "fencing failed, retrying in 1 s: %s", msg);
		return;
	}
	unsigned sessions = 0;
	for (const char *p = out; (p = strchr(p, '\n')) != NULL; p++)
		sessions++;
	n->pb->connected = n->session != NULL;
	node_set_state(n, HSP__V1__NODE_STATE__NODE_STATE_FENCED, "fenced");
	event_emit("node.fence", NULL, n->pb->name, NULL, "fenced",
		   "%u Ceph sessions blocklisted and evicted %lld ms after its last heartbeat",
		   sessions, (long long)(hsp_rpc_now_ms() - n->down_since_ms));
	evacuate(n);
	if (n->session)
		node_welcome(n); /* back already: it must clear itself */
}

/* Cuts a dead node off the shared storage, so that its VEs can start
 * elsewhere even if it is only frozen or cut off and wakes up later. */
static void fence_start(struct ctl_node *n)
{
	if (!ceph_enabled() || n->fencing)
		return;
	hsp_error_t err = NULL;
	char *name = strdup(n->pb->name);
	if (name && ceph_run("fence", n->pb->name, fence_done, name, &err) == 0) {
		n->fencing = true;
		event_emit("node.fence", NULL, n->pb->name, NULL, "fencing",
			   "blocklisting its Ceph clients");
		return;
	}
	free(name);
	n->fence_retry_ms = hsp_rpc_now_ms() + 1000;
	event_emit("node.fence", NULL, n->pb->name, NULL, "failed", "%s",
		   err ? err->msg : "out of memory");
	hsp_error_release(&err);
}

static void check_node(struct ctl_node *n, int64_t now)
{
	cmds_expire(n, now);
	Hsp__V1__NodeState s = n->pb->state;
	if (s == HSP__V1__NODE_STATE__NODE_STATE_DEAD && !n->fencing && now >= n->fence_retry_ms)
		fence_start(n);
	if (s == HSP__V1__NODE_STATE__NODE_STATE_FENCED)
		evacuate(n);
	if (s != HSP__V1__NODE_STATE__NODE_STATE_READY &&
	    s != HSP__V1__NODE_STATE__NODE_STATE_SUSPECT &&
	    s != HSP__V1__NODE_STATE__NODE_STATE_DRAINING)
		return;
	if (n->last_seen_ms == 0)
		n->last_seen_ms = now; /* controller start: a grace period */
	int64_t quiet = now - n->last_seen_ms;
	if (quiet > (int64_t)ctl->o.dead_ms) {
		n->down_since_ms = n->last_seen_ms;
		node_set_state(n, HSP__V1__NODE_STATE__NODE_STATE_DEAD, "no heartbeat");
		mark_ves_unknown(n);
		fence_start(n);
	} else if (quiet > (int64_t)ctl->o.suspect_ms &&
		   s == HSP__V1__NODE_STATE__NODE_STATE_READY) {
		node_set_state(n, HSP__V1__NODE_STATE__NODE_STATE_SUSPECT, "missed heartbeats");
	}
}

static void release_done(void *ud, const Hsp__V1__CommandResult *res)
{
	char *name = ud;
	event_emit("node.storage", NULL, name, NULL, res->code ? "failed" : "released", "%s",
		   res->code ? res->message : "the node unmounted the shared pool");
	free(name);
}

void node_release_storage(struct ctl_node *n)
{
	if (!ceph_enabled() || n->session == NULL)
		return;
	Hsp__V1__Command cmd = HSP__V1__COMMAND__INIT;
	cmd.kind = HSP__V1__COMMAND_KIND__COMMAND_KIND_RELEASE_STORAGE;
	cmd.ve = "";
	char *name = strdup(n->pb->name);
	hsp_error_t err = NULL;
	if (name == NULL || cmd_send(n, &cmd, release_done, NULL, name, &err) < 0) {
		free(name);
		hsp_error_release(&err);
	}
}

void nodes_tick(void *arg)
{
	(void)arg;
	int64_t now = hsp_rpc_now_ms();
	for (size_t i = 0; i < ctl->n_nodes; i++)
		check_node(ctl->nodes[i], now);
	static int64_t last_expire;
	if (now - last_expire > 60000) {
		op_expire();
		last_expire = now;
	}
	hsp_rpc_timer_add(ctl->loop, 250, nodes_tick, NULL);
}

/* Used by Nodes.Remove: a removed node's certificate stops working. */
void node_disconnect(struct ctl_node *n, const char *why)
{
	if (n->session == NULL)
		return;
	hsp_rpc_call_t *s = n->session;
	n->session = NULL;
	n->pb->connected = false;
	hsp_rpc_call_finish(s, GRPC_STATUS_PERMISSION_DENIED, "%s", why);
	hsp_rpc_call_unref(s);
	cmds_fail_all(n, GRPC_STATUS_UNAVAILABLE, why);
}

void node_destroy(struct ctl_node *n)
{
	for (size_t i = 0; i < n->n_templates; i++)
		protobuf_c_message_free_unpacked(&n->templates[i]->base, NULL);
	free(n->templates);
	free(n->boot_id);
	protobuf_c_message_free_unpacked(&n->pb->base, NULL);
	free(n);
}

const struct hsp_rpc_method ctl_node_methods[] = {
    {"/hsp.v1.NodeAgent/Join", HSP_RPC_UNARY, &hsp__v1__join_request__descriptor,
     &hsp__v1__join_response__descriptor, node_join, NULL, NULL, 30000},
    {"/hsp.v1.NodeAgent/Session", HSP_RPC_BIDI_STREAM, &hsp__v1__agent_message__descriptor,
     &hsp__v1__controller_message__descriptor, session_open, session_message, session_done, 0},
};
const size_t ctl_n_node_methods = sizeof(ctl_node_methods) / sizeof(ctl_node_methods[0]);
