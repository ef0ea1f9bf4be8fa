/* Nodes, Templates, Tokens, Events, Operations and Cluster services. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "pki.h"
#include "utils.h"

#define JOIN_TTL_DEFAULT 3600
#define TOKEN_TTL_MAX (366U * 24 * 3600)

static bool admin_only(hsp_rpc_call_t *call, const struct ctl_caller *who)
{
	if (caller_is_admin(who))
		return true;
	api_fail(call, GRPC_STATUS_PERMISSION_DENIED, "this needs an admin token");
	return false;
}

/* ------------------------------------------------------------ nodes */

/* The node message as answered: the stored one plus live figures. */
static Hsp__V1__Node *node_view(struct ctl_node *n, Hsp__V1__NodeCapacity *alloc)
{
	uint64_t mem;
	uint32_t cpu, count;
	node_allocated(n, &mem, &cpu, &count);
	hsp__v1__node_capacity__init(alloc);
	alloc->memory_bytes = mem;
	alloc->cpus = (cpu + 999) / 1000;
	n->pb->allocated = alloc;
	n->pb->ve_count = count;
	n->pb->connected = n->session != NULL;
	return n->pb;
}

static void node_list(hsp_rpc_call_t *call, const ProtobufCMessage *req, void *ud)
{
	(void)req;
	(void)ud;
	struct ctl_caller who;
	if (!api_begin(call, &who) || !admin_only(call, &who))
		return;
	cleanup_free Hsp__V1__Node **out = calloc(ctl->n_nodes + 1, sizeof(*out));
	cleanup_free Hsp__V1__NodeCapacity *alloc = calloc(ctl->n_nodes + 1, sizeof(*alloc));
	if (out == NULL || alloc == NULL)
		abort();
	for (size_t i = 0; i < ctl->n_nodes; i++)
		out[i] = node_view(ctl->nodes[i], &alloc[i]);
	Hsp__V1__ListNodesResponse resp = HSP__V1__LIST_NODES_RESPONSE__INIT;
	resp.nodes = out;
	resp.n_nodes = ctl->n_nodes;
	api_reply(call, &resp.base);
	for (size_t i = 0; i < ctl->n_nodes; i++)
		ctl->nodes[i]->pb->allocated = NULL;
}

static struct ctl_node *node_lookup(hsp_rpc_call_t *call, const char *name)
{
	if (!valid_name(name)) {
		api_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "invalid node name `%.64s`", name);
		return NULL;
	}
	struct ctl_node *n = node_find(name);
	if (n == NULL)
		api_fail(call, GRPC_STATUS_NOT_FOUND, "node `%s` not found", name);
	return n;
}

/* The prelude of every verb on one node: an admin caller, a valid name,
 * an existing node; each failure is answered here. */
static struct ctl_node *admin_node(hsp_rpc_call_t *call, const ProtobufCMessage *req,
				   struct ctl_caller *who)
{
	const Hsp__V1__NodeRef *r = (const void *)req;
	if (!api_begin(call, who) || !admin_only(call, who))
		return NULL;
	return node_lookup(call, r->name);
}

static void reply_node(hsp_rpc_call_t *call, struct ctl_node *n)
{
	Hsp__V1__NodeCapacity alloc;
	api_reply(call, &node_view(n, &alloc)->base);
	n->pb->allocated = NULL;
}

static void node_get(hsp_rpc_call_t *call, const ProtobufCMessage *req, void *ud)
{
	(void)ud;
	struct ctl_caller who;
	struct ctl_node *n = admin_node(call, req, &who);
	if (n == NULL)
		return;
	reply_node(call, n);
}

/* A drain moves every VE off the node (moves.c), a bounded number at a
 * time; the node takes no new VEs meanwhile and is in maintenance once
 * empty.  A VE that cannot move is named in the operation's failure. */
static void node_drain(hsp_rpc_call_t *call, const ProtobufCMessage *req, void *ud)
{
	(void)ud;
	struct ctl_caller who;
	struct ctl_node *n = admin_node(call, req, &who);
	if (n == NULL)
		return;
	Hsp__V1__NodeState s = n->pb->state;
	if (s == HSP__V1__NODE_STATE__NODE_STATE_DEAD ||
	    s == HSP__V1__NODE_STATE__NODE_STATE_FENCED ||
	    s == HSP__V1__NODE_STATE__NODE_STATE_MAINTENANCE) {
		api_fail(call, GRPC_STATUS_FAILED_PRECONDITION, "node `%s` is %s", n->pb->name,
			 node_state_str(s));
		return;
	}
	if (drain_running(n->pb->name)) {
		api_fail(call, GRPC_STATUS_FAILED_PRECONDITION,
			 "node `%s` is being drained already", n->pb->name);
		return;
	}
	hsp_error_t err = NULL;
	struct ctl_op *op = op_begin("node.drain", NULL, n->pb->name, &err);
	if (op == NULL) {
		api_fail(call, GRPC_STATUS_INTERNAL, "%s", err->msg);
		hsp_error_release(&err);
		return;
	}
	node_set_state(n, HSP__V1__NODE_STATE__NODE_STATE_DRAINING, "drain requested");
	api_reply(call, &op->pb->base);
	drain_begin(n, op);
}

static void node_undrain(hsp_rpc_call_t *call, const ProtobufCMessage *req, void *ud)
{
	(void)ud;
	struct ctl_caller who;
	struct ctl_node *n = admin_node(call, req, &who);
	if (n == NULL)
		return;
	Hsp__V1__NodeState s = n->pb->state;
	if (s != HSP__V1__NODE_STATE__NODE_STATE_DRAINING &&
	    s != HSP__V1__NODE_STATE__NODE_STATE_MAINTENANCE) {
		api_fail(call, GRPC_STATUS_FAILED_PRECONDITION,
			 "node `%s` is %s, not draining or in maintenance", n->pb->name,
			 node_state_str(s));
		return;
	}
	bool was_maintenance = s == HSP__V1__NODE_STATE__NODE_STATE_MAINTENANCE;
	node_set_state(n,
		       n->session ? HSP__V1__NODE_STATE__NODE_STATE_READY
				  : HSP__V1__NODE_STATE__NODE_STATE_SUSPECT,
		       "undrained");
	/* It released the shared pool in maintenance: the configuration
	 * again makes it mount it. */
	if (was_maintenance && n->session)
		node_welcome(n);
	reply_node(call, n);
}

static bool node_holds_ves(hsp_rpc_call_t *call, const struct ctl_node *n)
{
	uint64_t mem;
	uint32_t cpu, count;
	node_allocated(n, &mem, &cpu, &count);
	if (count)
		api_fail(call, GRPC_STATUS_FAILED_PRECONDITION,
			 "node `%s` still holds %u VEs: destroy or move them first", n->pb->name,
			 count);
	return count != 0;
}

static void node_remove_now(hsp_rpc_call_t *call, struct ctl_node *n, const char *by)
{
	hsp_error_t err = NULL;
	int rc = hsp_store_del(ctl->store, "node", n->pb->name, &err);
	if (rc < 0 && rc != -ENOENT) {
		n->removing = false;
		api_fail(call, GRPC_STATUS_INTERNAL, "%s", err->msg);
		hsp_error_release(&err);
		return;
	}
	node_forget_keys(n->pb->name);
	node_disconnect(n, "this node was removed from the cluster");
	event_emit("node.state", NULL, n->pb->name, NULL, "removed", "removed by %s", by);
	for (size_t i = 0; i < ctl->n_nodes; i++)
		if (ctl->nodes[i] == n)
			ctl->nodes[i] = ctl->nodes[--ctl->n_nodes];
	node_destroy(n);
	Hsp__V1__Empty e = HSP__V1__EMPTY__INIT;
	api_reply(call, &e.base);
}

struct removal {
	hsp_rpc_call_t *call;
	char node[CTL_NAME_MAX + 1];
	char by[64];
};

static void revoked(void *ud, int err_no, const char *out, const char *msg)
{
	(void)out;
	struct removal *rm = ud;
	struct ctl_node *n = node_find(rm->node);
	if (n)
		n->removing = false;
	if (n == NULL)
		api_fail(rm->call, GRPC_STATUS_NOT_FOUND, "node `%s` not found", rm->node);
	else if (err_no)
		api_fail(rm->call, GRPC_STATUS_UNAVAILABLE,
			 "node `%s` not removed: its Ceph user could not be revoked: %s", rm->node,
			 msg);
	else
		node_remove_now(rm->call, n, rm->by);
	hsp_rpc_call_unref(rm->call);
	free(rm);
}

/* With shared storage the node's own Ceph user goes first (its sessions
 * fenced, the user removed): a machine that leaves must not keep the
 * pool.  Placement skips the node meanwhile. */
static void node_remove(hsp_rpc_call_t *call, const ProtobufCMessage *req, void *ud)
{
	(void)ud;
	struct ctl_caller who;
	struct ctl_node *n = admin_node(call, req, &who);
	if (n == NULL || node_holds_ves(call, n))
		return;
	if (n->removing) {
		api_fail(call, GRPC_STATUS_FAILED_PRECONDITION, "node `%s` is being removed",
			 n->pb->name);
		return;
	}
	const char *by = who.role == ROLE_LOCAL ? "local root" : who.token_id;
	if (!ceph_enabled()) {
		node_remove_now(call, n, by);
		return;
	}
	struct removal *rm = calloc(1, sizeof(*rm));
	if (rm == NULL)
		abort();
	rm->call = hsp_rpc_call_ref(call);
	snprintf(rm->node, sizeof(rm->node), "%s", n->pb->name);
	snprintf(rm->by, sizeof(rm->by), "%s", by);
	n->removing = true;
	hsp_error_t err = NULL;
	if (ceph_run("revoke", n->pb->name, revoked, rm, &err) < 0) {
		revoked(rm, err->status, "", err->msg);
		hsp_error_release(&err);
	}
}

/* ------------------------------------------------------------ templates */

static void template_list(hsp_rpc_call_t *call, const ProtobufCMessage *req, void *ud)
{
	(void)req;
	(void)ud;
	struct ctl_caller who;
	if (!api_begin(call, &who))
		return;
	size_t cap = 0;
	for (size_t i = 0; i < ctl->n_nodes; i++)
		cap += ctl->nodes[i]->n_templates;
	cleanup_free Hsp__V1__Template *tpl = calloc(cap + 1, sizeof(*tpl));
	cleanup_free Hsp__V1__Template **out = calloc(cap + 1, sizeof(*out));
	cleanup_free char **names = calloc(cap * (ctl->n_nodes + 1) + 1, sizeof(*names));
	if (tpl == NULL || out == NULL || names == NULL)
		abort();
	size_t n = 0, k = 0;
	for (size_t i = 0; i < ctl->n_nodes; i++) {
		struct ctl_node *nd = ctl->nodes[i];
		if (nd->session == NULL)
			continue;
		for (size_t j = 0; j < nd->n_templates; j++) {
			Hsp__V1__Template *t = nd->templates[j];
			size_t x = 0;
			while (x < n && strcmp(tpl[x].name, t->name) != 0)
				x++;
			if (x == n) {
				hsp__v1__template__init(&tpl[n]);
				tpl[n].name = t->name;
				tpl[n].os = t->os;
				tpl[n].version = t->version;
				tpl[n].nodes = &names[k];
				k += ctl->n_nodes;
				out[n] = &tpl[n];
				n++;
			}
			tpl[x].nodes[tpl[x].n_nodes++] = nd->pb->name;
		}
	}
	Hsp__V1__ListTemplatesResponse resp = HSP__V1__LIST_TEMPLATES_RESPONSE__INIT;
	resp.templates = out;
	resp.n_templates = n;
	api_reply(call, &resp.base);
}

/* ------------------------------------------------------------ tokens */

int token_create(Hsp__V1__TokenKind kind, const char *tenant, uint32_t ttl, const char *desc,
		 char **secret_out, hsp_error_t *err)
{
	cleanup_free char *id = NULL, *secret = NULL;
	int r = hsp_random_hex(8, &id, err);
	if (r == 0)
		r = hsp_random_hex(16, &secret, err);
	if (r < 0)
		return r;
	Hsp__V1__StoredToken *t = calloc(1, sizeof(*t));
	Hsp__V1__Token *tok = calloc(1, sizeof(*tok));
	if (t == NULL || tok == NULL)
		abort();
	hsp__v1__stored_token__init(t);
	hsp__v1__token__init(tok);
	t->token = tok;
	char hash[65];
	hsp_sha256_hex(secret, hash);
	pb_set_str(&t->hash, hash);
	pb_set_str(&tok->id, id);
	tok->kind = kind;
	pb_set_str(&tok->tenant, tenant);
	pb_set_str(&tok->description, desc);
	tok->created_at = now_unix();
	tok->expires_at = ttl ? tok->created_at + ttl : 0;
	if (token_save(t, err) < 0) {
		hsp__v1__stored_token__free_unpacked(t, NULL);
		return -EIO;
	}
	ctl->tokens = reallocarray(ctl->tokens, ctl->n_tokens + 1, sizeof(*ctl->tokens));
	if (ctl->tokens == NULL)
		abort();
	ctl->tokens[ctl->n_tokens++] = t;
	int n = kind == HSP__V1__TOKEN_KIND__TOKEN_KIND_JOIN
		    ? asprintf(secret_out, "hspj.%s.%s.%s", id, secret, ctl->ca_fp)
		    : asprintf(secret_out, "hspt.%s.%s", id, secret);
	return n < 0 ? hsp_make_errno(err, ENOMEM, "token") : 0;
}

static const char *check_token_req(const Hsp__V1__CreateTokenRequest *r)
{
	switch (r->kind) {
	case HSP__V1__TOKEN_KIND__TOKEN_KIND_ADMIN:
	case HSP__V1__TOKEN_KIND__TOKEN_KIND_JOIN:
		if (*r->tenant)
			return "only tenant tokens name a tenant";
		break;
	case HSP__V1__TOKEN_KIND__TOKEN_KIND_TENANT:
		if (!valid_name(r->tenant))
			return "a tenant token needs a valid tenant name (lower-case letters, "
			       "digits, "
			       "'-')";
		break;
	default:
		return "kind must be TOKEN_KIND_ADMIN, TOKEN_KIND_TENANT or TOKEN_KIND_JOIN";
	}
	if (r->ttl_seconds > TOKEN_TTL_MAX)
		return "ttl_seconds must be at most a year (31622400)";
	if (strlen(r->description) > 256)
		return "description must be at most 256 bytes";
	return NULL;
}

static void token_create_rpc(hsp_rpc_call_t *call, const ProtobufCMessage *req, void *ud)
{
	(void)ud;
	const Hsp__V1__CreateTokenRequest *r = (const void *)req;
	struct ctl_caller who;
	if (!api_begin(call, &who) || !admin_only(call, &who))
		return;
	const char *bad = check_token_req(r);
	if (bad) {
		api_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "%s", bad);
		return;
	}
	uint32_t ttl = r->ttl_seconds;
	if (ttl == 0 && r->kind == HSP__V1__TOKEN_KIND__TOKEN_KIND_JOIN)
		ttl = JOIN_TTL_DEFAULT;
	cleanup_free char *secret = NULL;
	hsp_error_t err = NULL;
	if (token_create(r->kind, r->tenant, ttl, r->description, &secret, &err) < 0) {
		api_fail(call, GRPC_STATUS_INTERNAL, "%s", err->msg);
		hsp_error_release(&err);
		return;
	}
	Hsp__V1__StoredToken *t = ctl->tokens[ctl->n_tokens - 1];
	event_emit("token", NULL, NULL, NULL, "created", "token %s created", t->token->id);
	Hsp__V1__CreatedToken resp = HSP__V1__CREATED_TOKEN__INIT;
	resp.token = t->token;
	resp.secret = secret;
	api_reply(call, &resp.base);
}

static void token_revoke(hsp_rpc_call_t *call, const ProtobufCMessage *req, void *ud)
{
	(void)ud;
	const Hsp__V1__TokenRef *r = (const void *)req;
	struct ctl_caller who;
	if (!api_begin(call, &who) || !admin_only(call, &who))
		return;
	for (size_t i = 0; i < ctl->n_tokens; i++) {
		Hsp__V1__StoredToken *t = ctl->tokens[i];
		if (strcmp(t->token->id, r->id) != 0)
			continue;
		hsp_error_t err = NULL;
		if (hsp_store_del(ctl->store, "token", r->id, &err) < 0 && err) {
			api_fail(call, GRPC_STATUS_INTERNAL, "%s", err->msg);
			hsp_error_release(&err);
			return;
		}
		event_emit("token", NULL, NULL, NULL, "revoked", "token %s revoked", r->id);
		hsp__v1__stored_token__free_unpacked(t, NULL);
		ctl->tokens[i] = ctl->tokens[--ctl->n_tokens];
		Hsp__V1__Empty e = HSP__V1__EMPTY__INIT;
		api_reply(call, &e.base);
		return;
	}
	api_fail(call, GRPC_STATUS_NOT_FOUND, "token `%.64s` not found", r->id);
}

static void token_list(hsp_rpc_call_t *call, const ProtobufCMessage *req, void *ud)
{
	(void)req;
	(void)ud;
	struct ctl_caller who;
	if (!api_begin(call, &who) || !admin_only(call, &who))
		return;
	cleanup_free Hsp__V1__Token **out = calloc(ctl->n_tokens + 1, sizeof(*out));
	if (out == NULL)
		abort();
	for (size_t i = 0; i < ctl->n_tokens; i++)
		out[i] = ctl->tokens[i]->token;
	Hsp__V1__ListTokensResponse resp = HSP__V1__LIST_TOKENS_RESPONSE__INIT;
	resp.tokens = out;
	resp.n_tokens = ctl->n_tokens;
	api_reply(call, &resp.base);
}

/* ------------------------------------------------------------ events */

/* An operation a tenant may see: one for it, or on a VE it owns. */
static struct ctl_op *op_visible(const struct ctl_caller *who, const char *id)
{
	struct ctl_op *op = op_find(id);
	if (op == NULL || caller_is_admin(who))
		return op;
	if (*op->pb->tenant)
		return who->role == ROLE_TENANT && strcmp(op->pb->tenant, who->tenant) == 0 ? op
											    : NULL;
	Hsp__V1__Ve *ve = *op->pb->ve ? ve_find(op->pb->ve) : NULL;
	return ve && caller_sees_ve(who, ve) ? op : NULL;
}

static void events_watch_rpc(hsp_rpc_call_t *call, const ProtobufCMessage *req, void *ud)
{
	(void)ud;
	const Hsp__V1__WatchRequest *r = (const void *)req;
	struct ctl_caller who;
	if (!api_begin(call, &who))
		return;
	if (*r->ve && !valid_name(r->ve)) {
		api_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "invalid VE name `%.64s`", r->ve);
		return;
	}
	if (*r->node && !caller_is_admin(&who)) {
		api_fail(call, GRPC_STATUS_PERMISSION_DENIED, "node events need an admin token");
		return;
	}
	if (*r->operation && op_visible(&who, r->operation) == NULL) {
		api_fail(call, GRPC_STATUS_NOT_FOUND, "operation `%.64s` not found", r->operation);
		return;
	}
	if (r->after_seq > ctl->event_seq) {
		api_fail(call, GRPC_STATUS_OUT_OF_RANGE,
			 "after_seq %llu is beyond the last event %llu",
			 (unsigned long long)r->after_seq, (unsigned long long)ctl->event_seq);
		return;
	}
	if (events_watch(call, &who, r) < 0)
		api_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
}

static void events_done(hsp_rpc_call_t *call, bool cancelled, void *ud)
{
	(void)cancelled;
	(void)ud;
	events_unwatch(call);
}

/* ------------------------------------------------------------ operations */

static void op_get(hsp_rpc_call_t *call, const ProtobufCMessage *req, void *ud)
{
	(void)ud;
	const Hsp__V1__OperationRef *r = (const void *)req;
	struct ctl_caller who;
	if (!api_begin(call, &who))
		return;
	struct ctl_op *op = op_visible(&who, r->id);
	if (op == NULL)
		api_fail(call, GRPC_STATUS_NOT_FOUND, "operation `%.64s` not found", r->id);
	else
		api_reply(call, &op->pb->base);
}

struct wait_timer {
	char id[64];
	hsp_rpc_call_t *call; /* the waiter's, not a reference of its own */
};

static void wait_expired(void *arg)
{
	struct wait_timer *t = arg;
	struct ctl_op *op = op_find(t->id);
	for (size_t i = 0; op && i < op->n_waiters; i++) {
		struct ctl_waiter *w = &op->waiters[i];
		if (w->timer_arg != t)
			continue;
		api_fail(w->call, GRPC_STATUS_DEADLINE_EXCEEDED,
			 "operation `%s` still running after the timeout", t->id);
		w->timer = 0;	   /* it fired: nothing to cancel */
		waiter_release(w); /* frees t */
		op->waiters[i] = op->waiters[--op->n_waiters];
		return;
	}
}

static void op_wait(hsp_rpc_call_t *call, const ProtobufCMessage *req, void *ud)
{
	(void)ud;
	const Hsp__V1__OperationRef *r = (const void *)req;
	struct ctl_caller who;
	if (!api_begin(call, &who))
		return;
	struct ctl_op *op = op_visible(&who, r->id);
	if (op == NULL) {
		api_fail(call, GRPC_STATUS_NOT_FOUND, "operation `%.64s` not found", r->id);
		return;
	}
	if (op->pb->state != HSP__V1__OPERATION_STATE__OPERATION_STATE_RUNNING) {
		api_reply(call, &op->pb->base);
		return;
	}
	op->waiters = reallocarray(op->waiters, op->n_waiters + 1, sizeof(*op->waiters));
	if (op->waiters == NULL)
		abort();
	struct ctl_waiter *w = &op->waiters[op->n_waiters++];
	*w = (struct ctl_waiter){.call = hsp_rpc_call_ref(call)};
	if (r->timeout_seconds) {
		struct wait_timer *t = calloc(1, sizeof(*t));
		if (t == NULL)
			abort();
		snprintf(t->id, sizeof(t->id), "%s", r->id);
		t->call = call;
		w->timer_arg = t;
		w->timer =
		    hsp_rpc_timer_add(ctl->loop, r->timeout_seconds * 1000U, wait_expired, t);
	}
}

/* ------------------------------------------------------------ cluster */

static void cluster_info(hsp_rpc_call_t *call, const ProtobufCMessage *req, void *ud)
{
	(void)req;
	(void)ud;
	struct ctl_caller who;
	if (!api_begin(call, &who))
		return;
	Hsp__V1__ClusterInfo ci = HSP__V1__CLUSTER_INFO__INIT;
	ci.name = (char *)ctl->o.cluster_name;
	ci.version = HSP_VERSION;
	ci.ca_fingerprint = ctl->ca_fp;
	ci.started_at = ctl->started_at;
	char buf[128];
	ci.whoami = (char *)caller_describe(&who, buf, sizeof(buf));
	for (size_t i = 0; caller_is_admin(&who) && i < ctl->n_nodes; i++) {
		ci.nodes++;
		ci.nodes_ready += node_usable(ctl->nodes[i]);
	}
	for (size_t i = 0; i < ctl->n_ves; i++) {
		if (!caller_sees_ve(&who, ctl->ves[i]))
			continue;
		ci.ves++;
		ci.ves_running += ctl->ves[i]->state == HSP__V1__VE_STATE__VE_STATE_RUNNING;
	}
	api_reply(call, &ci.base);
}

/* ------------------------------------------------------------ table */

#define M(path, kind, req, resp, fn, done, ms)                                                     \
	{                                                                                          \
		path, kind, &hsp__v1__##req##__descriptor, &hsp__v1__##resp##__descriptor, fn,     \
		    NULL, done, ms                                                                 \
	}

const struct hsp_rpc_method ctl_admin_methods[] = {
    M("/hsp.v1.Nodes/List", HSP_RPC_UNARY, empty, list_nodes_response, node_list, NULL, 0),
    M("/hsp.v1.Nodes/Get", HSP_RPC_UNARY, node_ref, node, node_get, NULL, 0),
    M("/hsp.v1.Nodes/Drain", HSP_RPC_UNARY, node_ref, operation, node_drain, NULL, 0),
    M("/hsp.v1.Nodes/Undrain", HSP_RPC_UNARY, node_ref, node, node_undrain, NULL, 0),
    M("/hsp.v1.Nodes/Remove", HSP_RPC_UNARY, node_ref, empty, node_remove, NULL, 0),
    M("/hsp.v1.Templates/List", HSP_RPC_UNARY, empty, list_templates_response, template_list, NULL,
      0),
    M("/hsp.v1.Tokens/Create", HSP_RPC_UNARY, create_token_request, created_token, token_create_rpc,
      NULL, 0),
    M("/hsp.v1.Tokens/Revoke", HSP_RPC_UNARY, token_ref, empty, token_revoke, NULL, 0),
    M("/hsp.v1.Tokens/List", HSP_RPC_UNARY, empty, list_tokens_response, token_list, NULL, 0),
    M("/hsp.v1.Events/Watch", HSP_RPC_SERVER_STREAM, watch_request, event, events_watch_rpc,
      events_done, 7 * 24 * 3600 * 1000U),
    M("/hsp.v1.Operations/Get", HSP_RPC_UNARY, operation_ref, operation, op_get, NULL, 0),
    M("/hsp.v1.Operations/Wait", HSP_RPC_UNARY, operation_ref, operation, op_wait, NULL,
      3600 * 1000),
    M("/hsp.v1.Cluster/Info", HSP_RPC_UNARY, empty, cluster_info, cluster_info, NULL, 0),
};
const size_t ctl_n_admin_methods = sizeof(ctl_admin_methods) / sizeof(ctl_admin_methods[0]);
