/* The Ves service: VEs as tenants and operators see them.  Reads answer
 * from the model; changes become an operation whose steps are commands to
 * the VE's node (nodes.c), answered at once with the operation. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "utils.h"

#define DEFAULT_MEMORY (512ULL << 20) /* what placement assumes when unset */
#define MAX_TTL_S (366U * 24 * 3600)
#define MAX_SSH_KEYS 32
#define MAX_EXEC_ARGS 4096
#define EXEC_BACKLOG_MAX (64u << 20) /* output queued to one exec caller */

/* ------------------------------------------------------------ helpers */

void ve_set_state(Hsp__V1__Ve *ve, Hsp__V1__VeState s, const char *msg)
{
	bool changed = ve->state != s;
	ve->state = s;
	if (msg)
		pb_set_str(&ve->message, msg);
	ve_save(ve, NULL);
	if (changed)
		event_emit("ve.state", ve->name, ve->node, ve->operation, ve_state_str(s), "%s",
			   msg ? msg : "");
}

/* Finds a VE the caller may see; answers NOT_FOUND otherwise, with the
 * same words whether it does not exist or belongs to someone else. */
Hsp__V1__Ve *ve_lookup(hsp_rpc_call_t *call, const struct ctl_caller *who, const char *name)
{
	if (!valid_name(name)) {
		api_fail(
		    call, GRPC_STATUS_INVALID_ARGUMENT,
		    "invalid VE name `%.64s`: use 1-63 lower-case letters, digits and '-' (not "
		    "first)",
		    name);
		return NULL;
	}
	Hsp__V1__Ve *ve = ve_find(name);
	if (ve == NULL || !caller_sees_ve(who, ve)) {
		api_fail(call, GRPC_STATUS_NOT_FOUND, "VE `%s` not found", name);
		return NULL;
	}
	return ve;
}

bool ve_not_busy(hsp_rpc_call_t *call, Hsp__V1__Ve *ve)
{
	if (*ve->operation == '\0')
		return true;
	struct ctl_op *op = op_find(ve->operation);
	api_fail(call, GRPC_STATUS_FAILED_PRECONDITION,
		 "VE `%s` is busy: operation %s (%s) is running", ve->name, ve->operation,
		 op ? op->pb->kind : "?");
	return false;
}

/* The node a VE lives on, connected and ready to take commands. */
static struct ctl_node *ve_node(hsp_rpc_call_t *call, Hsp__V1__Ve *ve)
{
	struct ctl_node *n = node_find(ve->node);
	if (n == NULL || n->session == NULL) {
		api_fail(call, GRPC_STATUS_UNAVAILABLE, "VE `%s`: its node `%s` is not connected",
			 ve->name, ve->node);
		return NULL;
	}
	return n;
}

/* One step of an operation on a VE: the context of a command in flight.
 * Names are copied: the VE may be gone when the result comes. */
struct step {
	char ve[CTL_NAME_MAX + 1];
	char op[64];
	Hsp__V1__CommandKind kind;
	bool start_after;	       /* create: start next */
	Hsp__V1__Limits want;	       /* set limits: what was asked */
	char backup[CTL_NAME_MAX + 1]; /* restore: from this backup */
	hsp_rpc_call_t *call;	       /* unary calls answered with the result */
};

static struct step *step_new(const Hsp__V1__Ve *ve, const struct ctl_op *op,
			     Hsp__V1__CommandKind kind)
{
	struct step *s = calloc(1, sizeof(*s));
	if (s == NULL)
		abort();
	snprintf(s->ve, sizeof(s->ve), "%s", ve->name);
	if (op)
		snprintf(s->op, sizeof(s->op), "%s", op->pb->id);
	s->kind = kind;
	return s;
}

static void step_free(struct step *s)
{
	if (s->call)
		hsp_rpc_call_unref(s->call);
	free(s);
}

static void ve_take_status(Hsp__V1__Ve *ve, const Hsp__V1__VeStatus *st)
{
	if (st)
		ve_set_usage(ve, st->usage);
}

static void step_finish_op(struct step *s, Hsp__V1__Ve *ve)
{
	if (ve && strcmp(ve->operation, s->op) == 0)
		pb_set_str(&ve->operation, "");
	if (ve)
		ve_save(ve, NULL);
}

/* ------------------------------------------------------------ commands */

static Hsp__V1__Limits *limits_copy(const Hsp__V1__Limits *l)
{
	Hsp__V1__Limits *c = calloc(1, sizeof(*c));
	if (c == NULL)
		abort();
	hsp__v1__limits__init(c);
	if (l) {
		c->memory_bytes = l->memory_bytes;
		c->swap_bytes = l->swap_bytes;
		c->cpu_millis = l->cpu_millis;
		c->cpu_weight = l->cpu_weight;
		c->pids = l->pids;
		c->io_weight = l->io_weight;
		c->disk_bytes = l->disk_bytes;
	}
	return c;
}

static void on_result(void *ud, const Hsp__V1__CommandResult *res);

static int send_step(struct ctl_node *n, Hsp__V1__Ve *ve, struct step *s, hsp_error_t *err)
{
	Hsp__V1__Command cmd = HSP__V1__COMMAND__INIT;
	Hsp__V1__VeSpec spec = HSP__V1__VE_SPEC__INIT;
	cmd.kind = s->kind;
	cmd.ve = ve->name;
	cmd.timeout_seconds = 0;
	if (s->kind == HSP__V1__COMMAND_KIND__COMMAND_KIND_CREATE ||
	    s->kind == HSP__V1__COMMAND_KIND__COMMAND_KIND_BACKUP_RESTORE) {
		spec.name = ve->name;
		spec.template_ = ve->template_;
		spec.limits = ve->limits;
		spec.hostname = ve->hostname;
		spec.n_ssh_keys = ve->n_ssh_keys;
		spec.ssh_keys = ve->ssh_keys;
		spec.ip = ve->ip;
		spec.gateway = *ve->ip ? ctl->gateway_str : (char *)"";
		spec.bridge = *ve->ip ? (char *)ctl->o.bridge : (char *)"";
		cmd.spec = &spec;
		cmd.backup = s->backup;
	}
	return cmd_send(n, &cmd, on_result, NULL, s, err);
}

static void create_failed(struct step *s, Hsp__V1__Ve *ve, struct ctl_op *op,
			  const Hsp__V1__CommandResult *res)
{
	/* Nothing half-made stays: the node removed what it made, and the
	 * VE leaves the model with the operation's end. */
	if (op)
		op_fail(op, (grpc_status_code)res->code, "create on node `%s` failed: %s",
			ve ? ve->node : "?", res->message);
	if (ve) {
		event_emit("ve.state", ve->name, ve->node, s->op, "destroyed", "create failed");
		ve_forget(ve->name, NULL);
	}
}

static void start_next(struct step *s, Hsp__V1__Ve *ve, struct ctl_op *op)
{
	struct ctl_node *n = node_find(ve->node);
	hsp_error_t err = NULL;
	struct step *next = step_new(ve, op, HSP__V1__COMMAND_KIND__COMMAND_KIND_START);
	ve_set_state(ve, HSP__V1__VE_STATE__VE_STATE_STARTING, "");
	if (op)
		op_progress(op, "starting on node %s", ve->node);
	if (n == NULL || send_step(n, ve, next, &err) < 0) {
		step_finish_op(s, ve);
		ve_set_state(ve, HSP__V1__VE_STATE__VE_STATE_STOPPED, err ? err->msg : "");
		if (op)
			op_fail(op, GRPC_STATUS_UNAVAILABLE, "start: %s",
				err ? err->msg : "node gone");
		step_free(next);
	}
	hsp_error_release(&err);
}

static void finish_ok(struct step *s, Hsp__V1__Ve *ve, struct ctl_op *op,
		      const Hsp__V1__CommandResult *res)
{
	switch (s->kind) {
	case HSP__V1__COMMAND_KIND__COMMAND_KIND_CREATE:
	case HSP__V1__COMMAND_KIND__COMMAND_KIND_BACKUP_RESTORE:
		ve_take_status(ve, res->ve);
		if (s->start_after) {
			start_next(s, ve, op);
			return;
		}
		step_finish_op(s, ve);
		ve_set_state(ve, HSP__V1__VE_STATE__VE_STATE_STOPPED, "");
		break;
	case HSP__V1__COMMAND_KIND__COMMAND_KIND_START:
	case HSP__V1__COMMAND_KIND__COMMAND_KIND_RESTART:
		step_finish_op(s, ve);
		ve_take_status(ve, res->ve);
		ve_set_state(ve, HSP__V1__VE_STATE__VE_STATE_RUNNING, "");
		break;
	case HSP__V1__COMMAND_KIND__COMMAND_KIND_STOP:
	case HSP__V1__COMMAND_KIND__COMMAND_KIND_KILL:
		step_finish_op(s, ve);
		ve_set_state(ve, HSP__V1__VE_STATE__VE_STATE_STOPPED, "");
		break;
	case HSP__V1__COMMAND_KIND__COMMAND_KIND_DESTROY:
		if (op)
			op_done(op, "destroyed");
		event_emit("ve.state", ve->name, ve->node, s->op, "destroyed", "%s", "");
		ve_forget(ve->name, NULL);
		return;
	default:
		step_finish_op(s, ve);
		break;
	}
	if (op)
		op_done(op, "%s", res->message);
}

static void finish_failed(struct step *s, Hsp__V1__Ve *ve, struct ctl_op *op,
			  const Hsp__V1__CommandResult *res)
{
	if (s->kind == HSP__V1__COMMAND_KIND__COMMAND_KIND_DESTROY &&
	    res->code == GRPC_STATUS_NOT_FOUND) {
		/* The node no longer has it: destroyed is what was asked. */
		finish_ok(s, ve, op, res);
		return;
	}
	step_finish_op(s, ve);
	Hsp__V1__VeState st = HSP__V1__VE_STATE__VE_STATE_FAILED;
	if (res->ve && res->ve->state != HSP__V1__VE_STATE__VE_STATE_UNSPECIFIED)
		st = res->ve->state;
	ve_set_state(ve, st, res->message);
	if (op)
		op_fail(op, (grpc_status_code)res->code, "%s", res->message);
}

/* A restore holds its backup (no delete meanwhile) until it ends. */
static void release_backup(const struct step *s)
{
	Hsp__V1__Backup *b = *s->backup ? backup_find(s->backup) : NULL;
	if (b && strcmp(b->operation, s->op) == 0) {
		pb_set_str(&b->operation, "");
		backup_save(b, NULL);
	}
}

static void on_result(void *ud, const Hsp__V1__CommandResult *res)
{
	struct step *s = ud;
	Hsp__V1__Ve *ve = ve_find(s->ve);
	struct ctl_op *op = *s->op ? op_find(s->op) : NULL;
	release_backup(s);
	if ((s->kind == HSP__V1__COMMAND_KIND__COMMAND_KIND_CREATE ||
	     s->kind == HSP__V1__COMMAND_KIND__COMMAND_KIND_BACKUP_RESTORE) &&
	    res->code != 0)
		create_failed(s, ve, op, res);
	else if (ve == NULL && op)
		op_fail(op, GRPC_STATUS_ABORTED, "VE `%s` vanished during the operation", s->ve);
	else if (ve && res->code == 0)
		finish_ok(s, ve, op, res);
	else if (ve)
		finish_failed(s, ve, op, res);
	step_free(s);
}

/* A step whose command never reached its node ends as if the node had
 * answered UNAVAILABLE: one path for every way a step ends. */
static void step_unavailable(struct step *s, hsp_error_t *err)
{
	Hsp__V1__CommandResult res = HSP__V1__COMMAND_RESULT__INIT;
	res.code = GRPC_STATUS_UNAVAILABLE;
	res.message = (*err)->msg;
	on_result(s, &res);
	hsp_error_release(err);
}

/* Starts an operation of `kind` on ve: marks it, answers the call with the
 * operation, sends the command. */
static void run_op_from(hsp_rpc_call_t *call, Hsp__V1__Ve *ve, struct ctl_node *n, const char *kind,
			Hsp__V1__CommandKind ck, Hsp__V1__VeState during, bool start_after,
			Hsp__V1__Backup *from)
{
	hsp_error_t err = NULL;
	struct ctl_op *op = op_begin(kind, ve->name, ve->node, &err);
	if (op == NULL) {
		api_fail(call, GRPC_STATUS_INTERNAL, "%s", err->msg);
		hsp_error_release(&err);
		return;
	}
	pb_set_str(&ve->operation, op->pb->id);
	ve_set_state(ve, during, "");
	struct step *s = step_new(ve, op, ck);
	s->start_after = start_after;
	if (from) {
		snprintf(s->backup, sizeof(s->backup), "%s", from->id);
		pb_set_str(&from->operation, op->pb->id);
		backup_save(from, NULL);
	}
	if (send_step(n, ve, s, &err) < 0) {
		step_unavailable(s, &err);
	}
	api_reply(call, &op->pb->base);
}

static void run_op(hsp_rpc_call_t *call, Hsp__V1__Ve *ve, struct ctl_node *n, const char *kind,
		   Hsp__V1__CommandKind ck, Hsp__V1__VeState during, bool start_after)
{
	run_op_from(call, ve, n, kind, ck, during, start_after, NULL);
}

/* ------------------------------------------------------------ create */

static const char *check_create(const struct ctl_caller *who, const Hsp__V1__CreateVeRequest *r,
				grpc_status_code *code)
{
	static char msg[160];
	*code = GRPC_STATUS_INVALID_ARGUMENT;
	if (!valid_name(r->name))
		return "invalid VE name: use 1-63 lower-case letters, digits and '-' (not first)";
	if (!valid_name(r->template_))
		return "invalid template name: use 1-63 lower-case letters, digits and '-'";
	const char *bad = limits_invalid(r->limits);
	if (bad)
		return bad;
	if (r->limits && r->limits->swap_bytes && !r->limits->memory_bytes)
		return "a swap limit needs a memory limit";
	hsp_error_t err = NULL;
	if (*r->hostname && hsp_validate_hostname(r->hostname, &err) < 0) {
		snprintf(msg, sizeof(msg), "%s", err->msg);
		hsp_error_release(&err);
		return msg;
	}
	if (r->n_ssh_keys > MAX_SSH_KEYS)
		return "at most 32 ssh keys";
	for (size_t i = 0; i < r->n_ssh_keys; i++)
		if ((bad = ssh_key_invalid(r->ssh_keys[i])) != NULL)
			return bad;
	if (r->ttl_seconds > MAX_TTL_S)
		return "ttl_seconds must be at most a year (31622400)";
	if (*r->tenant && !valid_name(r->tenant))
		return "invalid tenant name";
	if (*r->node && !valid_name(r->node))
		return "invalid node name";
	*code = GRPC_STATUS_PERMISSION_DENIED;
	if (who->role == ROLE_TENANT && *r->tenant && strcmp(r->tenant, who->tenant) != 0)
		return "a tenant token creates VEs for its own tenant only";
	if (who->role == ROLE_TENANT && *r->node)
		return "only an admin chooses the node";
	*code = GRPC_STATUS_FAILED_PRECONDITION;
	if (r->network && ctl->o.subnet == NULL)
		return "the cluster has no VE subnet (hsp-controller --subnet)";
	*code = GRPC_STATUS_OK;
	return NULL;
}

static bool reports_template(const struct ctl_node *n, const char *t)
{
	for (size_t i = 0; i < n->n_templates; i++)
		if (strcmp(n->templates[i]->name, t) == 0)
			return true;
	return false;
}

/* With a shared pool the templates live in the pool: what one node sees
 * there, every node has (a node reports its list when it connects, so
 * another may not have seen a template imported since). */
static bool node_has_template(const struct ctl_node *n, const char *t)
{
	if (!ceph_enabled())
		return reports_template(n, t);
	for (size_t i = 0; i < ctl->n_nodes; i++)
		if (reports_template(ctl->nodes[i], t))
			return true;
	return false;
}

/* The usable node with the most free memory that fits the VE and has its
 * template.  Free = capacity - the limits of the VEs placed there. */
struct ctl_node *place_ve(const struct ctl_place *w, grpc_status_code *code, char *why, size_t whyn)
{
	uint64_t mem =
	    w->limits && w->limits->memory_bytes ? w->limits->memory_bytes : DEFAULT_MEMORY;
	uint32_t cpu = w->limits ? w->limits->cpu_millis : 0;
	const char *only = w->node ? w->node : "";
	struct ctl_node *best = NULL;
	uint64_t best_free = 0;
	bool any_template = false, any_usable = false;
	for (size_t i = 0; i < ctl->n_nodes; i++) {
		struct ctl_node *n = ctl->nodes[i];
		if ((*only && strcmp(n->pb->name, only) != 0) ||
		    (w->not_node && strcmp(n->pb->name, w->not_node) == 0))
			continue;
		if (!node_usable(n))
			continue;
		any_usable = true;
		if (w->template_ && !node_has_template(n, w->template_))
			continue;
		any_template = true;
		uint64_t used_mem;
		uint32_t used_cpu, count;
		node_allocated(n, &used_mem, &used_cpu, &count);
		uint64_t cap_mem = n->pb->capacity ? n->pb->capacity->memory_bytes : 0;
		uint64_t cap_cpu = n->pb->capacity ? n->pb->capacity->cpus * 1000ULL : 0;
		/* CPU limits may be overcommitted 4x (VEs rarely use all
		 * of theirs); a VE without one shares what is there.
		 * Memory may not be overcommitted. */
		if (used_mem + mem > cap_mem || used_cpu + cpu > 4 * cap_cpu)
			continue;
		if (best == NULL || cap_mem - used_mem > best_free) {
			best = n;
			best_free = cap_mem - used_mem;
		}
	}
	if (best)
		return best;
	if (*only && node_find(only) == NULL) {
		*code = GRPC_STATUS_NOT_FOUND;
		snprintf(why, whyn, "node `%s` not found", only);
	} else if (!any_usable) {
		*code = GRPC_STATUS_UNAVAILABLE;
		snprintf(why, whyn, "no ready node%s%s%s", *only ? ": " : "", only,
			 *only ? " is not ready" : "");
	} else if (!any_template) {
		*code = GRPC_STATUS_NOT_FOUND;
		snprintf(why, whyn, "template `%s` is not on any ready node", w->template_);
	} else {
		*code = GRPC_STATUS_RESOURCE_EXHAUSTED;
		snprintf(why, whyn, "no ready node has %llu MiB of memory and %.2f CPUs free",
			 (unsigned long long)(mem >> 20), cpu / 1000.0);
	}
	return NULL;
}

static Hsp__V1__Ve *ve_build(const struct ctl_caller *who, const Hsp__V1__CreateVeRequest *r,
			     struct ctl_node *n, char *ip)
{
	Hsp__V1__Ve *ve = calloc(1, sizeof(*ve));
	if (ve == NULL)
		abort();
	hsp__v1__ve__init(ve);
	pb_set_str(&ve->name, r->name);
	pb_set_str(&ve->tenant, who->role == ROLE_TENANT ? who->tenant : r->tenant);
	pb_set_str(&ve->template_, r->template_);
	pb_set_str(&ve->node, n->pb->name);
	pb_set_str(&ve->hostname, *r->hostname ? r->hostname : r->name);
	pb_set_str(&ve->ip, ip);
	pb_set_str(&ve->pool,
		   ctl->o.ceph_pool && ctl->o.storage && strcmp(ctl->o.storage, "cephfs") == 0
		       ? ctl->o.ceph_pool
		       : "local");
	ve->limits = limits_copy(r->limits);
	if (r->n_ssh_keys) {
		ve->ssh_keys = calloc(r->n_ssh_keys, sizeof(char *));
		if (ve->ssh_keys == NULL)
			abort();
		for (size_t i = 0; i < r->n_ssh_keys; i++)
			ve->ssh_keys[i] = pb_strdup(r->ssh_keys[i]);
		ve->n_ssh_keys = r->n_ssh_keys;
	}
	ve->state = HSP__V1__VE_STATE__VE_STATE_CREATING;
	ve->created_at = now_unix();
	ve->expires_at = r->ttl_seconds ? ve->created_at + r->ttl_seconds : 0;
	return ve;
}

/* A new VE: made from its template, or restored from a backup (which
 * needs no template on its node). */
static void create_common(hsp_rpc_call_t *call, const struct ctl_caller *who_,
			  const Hsp__V1__CreateVeRequest *r, Hsp__V1__Backup *from,
			  const char *must_node)
{
	struct ctl_caller who = *who_;
	grpc_status_code code;
	const char *bad = check_create(&who, r, &code);
	if (bad) {
		api_fail(call, code, "%s", bad);
		return;
	}
	if (ve_find(r->name)) {
		api_fail(call, GRPC_STATUS_ALREADY_EXISTS, "VE name `%s` is taken", r->name);
		return;
	}
	char why[200];
	struct ctl_place w = {.template_ = from ? NULL : r->template_,
			      .limits = r->limits,
			      .node = must_node ? must_node : r->node};
	struct ctl_node *n = place_ve(&w, &code, why, sizeof(why));
	if (n == NULL) {
		api_fail(call, code, "cannot place VE `%s`: %s", r->name, why);
		return;
	}
	hsp_error_t err = NULL;
	cleanup_free char *ip = NULL;
	if (r->network && ipam_alloc(&ip, &err) < 0) {
		api_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "%s", err->msg);
		hsp_error_release(&err);
		return;
	}
	Hsp__V1__Ve *ve = ve_build(&who, r, n, ip);
	ve->desired_running = r->start;
	if (hsp_store_begin(ctl->store, &err) < 0 || ve_save(ve, &err) < 0) {
		hsp_store_rollback(ctl->store);
		protobuf_c_message_free_unpacked(&ve->base, NULL);
		api_fail(call, GRPC_STATUS_INTERNAL, "%s", err->msg);
		hsp_error_release(&err);
		return;
	}
	ctl->ves = reallocarray(ctl->ves, ctl->n_ves + 1, sizeof(*ctl->ves));
	if (ctl->ves == NULL)
		abort();
	ctl->ves[ctl->n_ves++] = ve;
	ves_schedule_ttl(ve);
	if (from)
		run_op_from(call, ve, n, "ve.restore",
			    HSP__V1__COMMAND_KIND__COMMAND_KIND_BACKUP_RESTORE,
			    HSP__V1__VE_STATE__VE_STATE_CREATING, r->start, from);
	else
		run_op(call, ve, n, "ve.create", HSP__V1__COMMAND_KIND__COMMAND_KIND_CREATE,
		       HSP__V1__VE_STATE__VE_STATE_CREATING, r->start);
	if (hsp_store_commit(ctl->store, &err) < 0)
		hsp_error_release(&err);
}

static void ve_create(hsp_rpc_call_t *call, const ProtobufCMessage *req, void *ud)
{
	(void)ud;
	struct ctl_caller who;
	if (api_begin(call, &who))
		create_common(call, &who, (const void *)req, NULL, NULL);
}

void ve_create_from_backup(hsp_rpc_call_t *call, const struct ctl_caller *who, Hsp__V1__Backup *b,
			   const char *name, const char *node, bool start)
{
	Hsp__V1__CreateVeRequest r = HSP__V1__CREATE_VE_REQUEST__INIT;
	r.name = (char *)name;
	r.template_ = b->template_;
	r.limits = b->limits;
	r.hostname = b->hostname;
	r.n_ssh_keys = b->n_ssh_keys;
	r.ssh_keys = b->ssh_keys;
	r.node = (char *)node;
	r.tenant = b->tenant;
	/* An address of this cluster's, when it has a range to give. */
	r.network = b->network && ctl->o.subnet;
	r.start = start;
	/* Kept in a node's own storage: only that node has it. */
	create_common(call, who, &r, b, pool_is_shared(b->pool) ? NULL : b->node);
}

/* ------------------------------------------------------------ lifecycle */

Hsp__V1__Ve *ve_for_op(hsp_rpc_call_t *call, const char *name, struct ctl_caller *who)
{
	if (!api_begin(call, who))
		return NULL;
	Hsp__V1__Ve *ve = ve_lookup(call, who, name);
	return ve && ve_not_busy(call, ve) ? ve : NULL;
}

static bool prepare_op(hsp_rpc_call_t *call, const char *name, struct ctl_caller *who,
		       Hsp__V1__Ve **ve, struct ctl_node **n)
{
	if ((*ve = ve_for_op(call, name, who)) == NULL)
		return false;
	*n = ve_node(call, *ve);
	return *n != NULL;
}

static void ve_start(hsp_rpc_call_t *call, const ProtobufCMessage *req, void *ud)
{
	(void)ud;
	const Hsp__V1__VeRef *r = (const void *)req;
	struct ctl_caller who;
	Hsp__V1__Ve *ve;
	struct ctl_node *n;
	if (!prepare_op(call, r->name, &who, &ve, &n))
		return;
	if (ve->state == HSP__V1__VE_STATE__VE_STATE_RUNNING) {
		api_fail(call, GRPC_STATUS_FAILED_PRECONDITION, "VE `%s` is already running",
			 ve->name);
		return;
	}
	if (ve->state == HSP__V1__VE_STATE__VE_STATE_RESCUE) {
		api_fail(call, GRPC_STATUS_FAILED_PRECONDITION,
			 "VE `%s` is in rescue: finish the rescue to start it", ve->name);
		return;
	}
	ve->desired_running = true;
	run_op(call, ve, n, "ve.start", HSP__V1__COMMAND_KIND__COMMAND_KIND_START,
	       HSP__V1__VE_STATE__VE_STATE_STARTING, false);
}

static void stop_like(hsp_rpc_call_t *call, const ProtobufCMessage *req, bool restart)
{
	const Hsp__V1__StopVeRequest *r = (const void *)req;
	struct ctl_caller who;
	Hsp__V1__Ve *ve;
	struct ctl_node *n;
	if (!prepare_op(call, r->name, &who, &ve, &n))
		return;
	if (r->timeout_seconds > 3600) {
		api_fail(call, GRPC_STATUS_INVALID_ARGUMENT,
			 "timeout_seconds must be at most 3600");
		return;
	}
	if (!restart && ve->state == HSP__V1__VE_STATE__VE_STATE_STOPPED) {
		api_fail(call, GRPC_STATUS_FAILED_PRECONDITION, "VE `%s` is not running", ve->name);
		return;
	}
	ve->desired_running = restart;
	run_op(call, ve, n, restart ? "ve.restart" : "ve.stop",
	       restart ? HSP__V1__COMMAND_KIND__COMMAND_KIND_RESTART
		       : HSP__V1__COMMAND_KIND__COMMAND_KIND_STOP,
	       restart ? HSP__V1__VE_STATE__VE_STATE_STARTING
		       : HSP__V1__VE_STATE__VE_STATE_STOPPING,
	       false);
}

static void ve_stop(hsp_rpc_call_t *call, const ProtobufCMessage *req, void *ud)
{
	(void)ud;
	stop_like(call, req, false);
}

static void ve_restart(hsp_rpc_call_t *call, const ProtobufCMessage *req, void *ud)
{
	(void)ud;
	stop_like(call, req, true);
}

static void ve_destroy(hsp_rpc_call_t *call, const ProtobufCMessage *req, void *ud)
{
	(void)ud;
	const Hsp__V1__VeRef *r = (const void *)req;
	struct ctl_caller who;
	Hsp__V1__Ve *ve;
	struct ctl_node *n;
	if (!prepare_op(call, r->name, &who, &ve, &n))
		return;
	run_op(call, ve, n, "ve.destroy", HSP__V1__COMMAND_KIND__COMMAND_KIND_DESTROY,
	       HSP__V1__VE_STATE__VE_STATE_DESTROYING, false);
}

/* ------------------------------------------------------------ TTL */

struct ttl {
	char name[CTL_NAME_MAX + 1];
	int64_t created_at;
	uint64_t timer;
	struct ttl *next;
};

/* Pending TTL timers, so a shutdown frees them (the loop drops timers
 * without running them). */
static struct ttl *ttls;

static void ttl_unlink(struct ttl *t)
{
	for (struct ttl **p = &ttls; *p; p = &(*p)->next)
		if (*p == t) {
			*p = t->next;
			return;
		}
}

static void ttl_rearm(struct ttl *t, unsigned ms);

void ves_free_timers(void)
{
	while (ttls) {
		struct ttl *t = ttls;
		ttls = t->next;
		hsp_rpc_timer_cancel(ctl->loop, t->timer);
		free(t);
	}
}

static void ttl_fire(void *arg)
{
	struct ttl *t = arg;
	Hsp__V1__Ve *ve = ve_find(t->name);
	t->timer = 0;
	/* created_at tells a VE of the same name made later from ours */
	if (ve == NULL || ve->created_at != t->created_at) {
		ttl_unlink(t);
		free(t);
		return;
	}
	struct ctl_node *n = node_find(ve->node);
	if (*ve->operation || n == NULL || n->session == NULL) {
		ttl_rearm(t, 5000);
		return;
	}
	hsp_error_t err = NULL;
	struct ctl_op *op = op_begin("ve.expire", ve->name, ve->node, &err);
	hsp_error_release(&err);
	if (op == NULL) {
		ttl_rearm(t, 5000);
		return;
	}
	ttl_unlink(t);
	free(t);
	pb_set_str(&ve->operation, op->pb->id);
	ve_set_state(ve, HSP__V1__VE_STATE__VE_STATE_DESTROYING, "TTL passed");
	struct step *s = step_new(ve, op, HSP__V1__COMMAND_KIND__COMMAND_KIND_DESTROY);
	if (send_step(n, ve, s, &err) < 0) {
		step_unavailable(s, &err);
	}
}

void ves_schedule_ttl(Hsp__V1__Ve *ve)
{
	if (ve->expires_at == 0)
		return;
	struct ttl *t = calloc(1, sizeof(*t));
	if (t == NULL)
		abort();
	snprintf(t->name, sizeof(t->name), "%s", ve->name);
	t->created_at = ve->created_at;
	t->next = ttls;
	ttls = t;
	int64_t ms = (ve->expires_at - now_unix()) * 1000;
	ttl_rearm(t, ms > 0 ? (unsigned)ms : 0);
}

static void ttl_rearm(struct ttl *t, unsigned ms)
{
	t->timer = hsp_rpc_timer_add(ctl->loop, ms, ttl_fire, t);
}

/* After a controller restart: operations that were running were cut
 * short; their VEs wait for their node's next report. */
void ves_resume(void)
{
	for (size_t i = 0; i < ctl->n_ops; i++) {
		struct ctl_op *op = ctl->ops[i];
		if (op->pb->state == HSP__V1__OPERATION_STATE__OPERATION_STATE_RUNNING)
			op_fail(op, GRPC_STATUS_ABORTED, "the controller restarted during it");
	}
	for (size_t i = 0; i < ctl->n_ves;) {
		Hsp__V1__Ve *ve = ctl->ves[i];
		if (ve->state == HSP__V1__VE_STATE__VE_STATE_CREATING) {
			/* Its create may or may not have reached the node:
			 * the node's report decides (nodes.c adopts it). */
			ve->state = HSP__V1__VE_STATE__VE_STATE_UNKNOWN;
		}
		pb_set_str(&ve->operation, "");
		if (ve->state != HSP__V1__VE_STATE__VE_STATE_UNKNOWN)
			ve->state = HSP__V1__VE_STATE__VE_STATE_UNKNOWN;
		ve_save(ve, NULL);
		ves_schedule_ttl(ve);
		i++;
	}
}

/* ------------------------------------------------------------ reads */

static void ve_get(hsp_rpc_call_t *call, const ProtobufCMessage *req, void *ud)
{
	(void)ud;
	const Hsp__V1__VeRef *r = (const void *)req;
	struct ctl_caller who;
	if (!api_begin(call, &who))
		return;
	Hsp__V1__Ve *ve = ve_lookup(call, &who, r->name);
	if (ve)
		api_reply(call, &ve->base);
}

static void ve_list(hsp_rpc_call_t *call, const ProtobufCMessage *req, void *ud)
{
	(void)ud;
	const Hsp__V1__ListVesRequest *r = (const void *)req;
	struct ctl_caller who;
	if (!api_begin(call, &who))
		return;
	if (*r->tenant && !caller_is_admin(&who) && strcmp(r->tenant, who.tenant) != 0) {
		api_fail(call, GRPC_STATUS_PERMISSION_DENIED,
			 "a tenant token lists its own tenant's VEs only");
		return;
	}
	cleanup_free Hsp__V1__Ve **out = calloc(ctl->n_ves + 1, sizeof(*out));
	size_t n = 0;
	for (size_t i = 0; i < ctl->n_ves; i++) {
		Hsp__V1__Ve *ve = ctl->ves[i];
		if (!caller_sees_ve(&who, ve))
			continue;
		if (*r->node && strcmp(ve->node, r->node) != 0)
			continue;
		if (*r->tenant && strcmp(ve->tenant, r->tenant) != 0)
			continue;
		out[n++] = ve;
	}
	Hsp__V1__ListVesResponse resp = HSP__V1__LIST_VES_RESPONSE__INIT;
	resp.ves = out;
	resp.n_ves = n;
	api_reply(call, &resp.base);
}

/* ------------------------------------------------------------ set limits */

static void set_done(void *ud, const Hsp__V1__CommandResult *res)
{
	struct step *s = ud;
	Hsp__V1__Ve *ve = ve_find(s->ve);
	if (ve && strcmp(ve->operation, "set-limits") == 0)
		pb_set_str(&ve->operation, "");
	if (res->code != 0 || ve == NULL) {
		api_fail(s->call, res->code ? (grpc_status_code)res->code : GRPC_STATUS_ABORTED,
			 "%s", res->code ? res->message : "VE vanished");
		step_free(s);
		return;
	}
	/* Applied to the model only once the node took them. */
	if (ve->limits == NULL)
		ve->limits = limits_copy(NULL);
	Hsp__V1__Limits *cur = ve->limits, *l = &s->want;
#define MERGE(f)                                                                                   \
	if (l->f)                                                                                  \
		cur->f = l->f;
	MERGE(memory_bytes)
	MERGE(swap_bytes)
	MERGE(cpu_millis)
	MERGE(cpu_weight)
	MERGE(pids)
	MERGE(io_weight)
	MERGE(disk_bytes)
#undef MERGE
	ve_save(ve, NULL);
	event_emit("ve.limits", ve->name, ve->node, "", "", "limits changed");
	api_reply(s->call, &ve->base);
	step_free(s);
}

static void ve_set(hsp_rpc_call_t *call, const ProtobufCMessage *req, void *ud)
{
	(void)ud;
	const Hsp__V1__SetLimitsRequest *r = (const void *)req;
	struct ctl_caller who;
	Hsp__V1__Ve *ve;
	struct ctl_node *n;
	if (!prepare_op(call, r->name, &who, &ve, &n))
		return;
	const Hsp__V1__Limits *l = r->limits;
	const char *bad = l ? limits_invalid(l) : "no limits given";
	if (bad == NULL && !l->memory_bytes && !l->swap_bytes && !l->cpu_millis && !l->cpu_weight &&
	    !l->pids && !l->io_weight && !l->disk_bytes)
		bad = "no limits given";
	if (bad) {
		api_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "%s", bad);
		return;
	}
	if (l->disk_bytes && ve->limits && ve->limits->disk_bytes &&
	    l->disk_bytes < ve->limits->disk_bytes) {
		api_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "a disk cannot shrink (%llu < %llu)",
			 (unsigned long long)l->disk_bytes,
			 (unsigned long long)ve->limits->disk_bytes);
		return;
	}
	Hsp__V1__Command cmd = HSP__V1__COMMAND__INIT;
	cmd.kind = HSP__V1__COMMAND_KIND__COMMAND_KIND_SET_LIMITS;
	cmd.ve = ve->name;
	cmd.limits = (Hsp__V1__Limits *)l;
	struct step *s = step_new(ve, NULL, cmd.kind);
	s->call = hsp_rpc_call_ref(call);
	s->want = *l;
	hsp_error_t err = NULL;
	if (cmd_send(n, &cmd, set_done, NULL, s, &err) < 0) {
		api_fail(call, GRPC_STATUS_UNAVAILABLE, "%s", err->msg);
		hsp_error_release(&err);
		step_free(s);
		return;
	}
	pb_set_str(&ve->operation, "set-limits");
}

/* ------------------------------------------------------------ exec */

struct exec_fwd {
	hsp_rpc_call_t *call;
	bool exited;
	uint64_t cmd_id;
	char node[CTL_NAME_MAX + 1];
	struct exec_fwd *next;
};

/* EXECs in flight, so a caller who leaves (Ctrl-C, deadline, vanished)
 * has its command killed on the node instead of running on unseen. */
static struct exec_fwd *execs;

static void exec_unlink(struct exec_fwd *x)
{
	for (struct exec_fwd **p = &execs; *p; p = &(*p)->next)
		if (*p == x) {
			*p = x->next;
			return;
		}
}

static void cancel_done(void *ud, const Hsp__V1__CommandResult *res)
{
	(void)ud;
	(void)res;
}

static void exec_call_done(hsp_rpc_call_t *call, bool cancelled, void *ud)
{
	(void)ud;
	if (!cancelled)
		return;
	for (struct exec_fwd *x = execs; x; x = x->next) {
		if (x->call != call)
			continue;
		struct ctl_node *n = node_find(x->node);
		Hsp__V1__Command cmd = HSP__V1__COMMAND__INIT;
		cmd.kind = HSP__V1__COMMAND_KIND__COMMAND_KIND_CANCEL;
		cmd.cancel_id = x->cmd_id;
		hsp_error_t err = NULL;
		if (n && cmd_send(n, &cmd, cancel_done, NULL, NULL, &err) < 0)
			hsp_error_release(&err);
		return;
	}
}

/* A caller that reads slower than its command writes would pile the output
 * up here without end: past the limit the call ends, and its end cancels
 * the command on its node (exec_call_done). */
static void exec_out(void *ud, const Hsp__V1__ExecOutput *out)
{
	struct exec_fwd *x = ud;
	if (out->exited)
		x->exited = true;
	if (hsp_rpc_call_is_over(x->call))
		return;
	if (hsp_rpc_call_queued(x->call) > EXEC_BACKLOG_MAX) {
		hsp_rpc_call_abort(x->call, GRPC_STATUS_RESOURCE_EXHAUSTED,
				   "exec: the caller reads the output too slowly (64 MiB waiting); "
				   "the command was stopped");
		return;
	}
	hsp_rpc_call_send(x->call, &out->base);
}

static void exec_done(void *ud, const Hsp__V1__CommandResult *res)
{
	struct exec_fwd *x = ud;
	if (res->code == 0 && x->exited)
		hsp_rpc_call_finish(x->call, GRPC_STATUS_OK, NULL);
	else
		api_fail(x->call, res->code ? (grpc_status_code)res->code : GRPC_STATUS_INTERNAL,
			 "exec: %s",
			 *res->message ? res->message : "the command's end was not reported");
	exec_unlink(x);
	hsp_rpc_call_unref(x->call);
	free(x);
}

static void ve_exec(hsp_rpc_call_t *call, const ProtobufCMessage *req, void *ud)
{
	(void)ud;
	const Hsp__V1__ExecRequest *r = (const void *)req;
	struct ctl_caller who;
	if (!api_begin(call, &who))
		return;
	Hsp__V1__Ve *ve = ve_lookup(call, &who, r->name);
	if (ve == NULL)
		return;
	if (r->n_argv == 0 || *r->argv[0] == '\0') {
		api_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "exec: no command given");
		return;
	}
	if (r->n_argv > MAX_EXEC_ARGS) {
		api_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "exec: more than %d arguments",
			 MAX_EXEC_ARGS);
		return;
	}
	if (r->timeout_seconds > 24 * 3600) {
		api_fail(call, GRPC_STATUS_INVALID_ARGUMENT,
			 "exec: timeout_seconds must be at most a day");
		return;
	}
	if (ve->state != HSP__V1__VE_STATE__VE_STATE_RUNNING) {
		api_fail(call, GRPC_STATUS_FAILED_PRECONDITION, "VE `%s` is not running (%s)",
			 ve->name, ve_state_str(ve->state));
		return;
	}
	struct ctl_node *n = ve_node(call, ve);
	if (n == NULL)
		return;
	struct exec_fwd *x = calloc(1, sizeof(*x));
	if (x == NULL)
		abort();
	x->call = hsp_rpc_call_ref(call);
	Hsp__V1__Command cmd = HSP__V1__COMMAND__INIT;
	cmd.kind = HSP__V1__COMMAND_KIND__COMMAND_KIND_EXEC;
	cmd.ve = ve->name;
	cmd.argv = r->argv;
	cmd.n_argv = r->n_argv;
	cmd.stdin = r->stdin;
	cmd.timeout_seconds = r->timeout_seconds;
	hsp_error_t err = NULL;
	if (cmd_send(n, &cmd, exec_done, exec_out, x, &err) < 0) {
		api_fail(call, GRPC_STATUS_UNAVAILABLE, "%s", err->msg);
		hsp_error_release(&err);
		hsp_rpc_call_unref(x->call);
		free(x);
		return;
	}
	x->cmd_id = cmd.id;
	snprintf(x->node, sizeof(x->node), "%s", n->pb->name);
	x->next = execs;
	execs = x;
}

/* ------------------------------------------------------------ snapshots */

static bool valid_snap(hsp_rpc_call_t *call, const char *s)
{
	if (valid_name(s))
		return true;
	api_fail(call, GRPC_STATUS_INVALID_ARGUMENT,
		 "invalid snapshot name `%.64s`: use 1-63 lower-case letters, digits and '-'", s);
	return false;
}

static void snap_op(hsp_rpc_call_t *call, const ProtobufCMessage *req, const char *kind,
		    Hsp__V1__CommandKind ck)
{
	const Hsp__V1__SnapshotRequest *r = (const void *)req;
	struct ctl_caller who;
	Hsp__V1__Ve *ve;
	struct ctl_node *n;
	if (!prepare_op(call, r->name, &who, &ve, &n) || !valid_snap(call, r->snapshot))
		return;
	if (ck == HSP__V1__COMMAND_KIND__COMMAND_KIND_SNAPSHOT_RESTORE &&
	    ve->state == HSP__V1__VE_STATE__VE_STATE_RUNNING) {
		api_fail(call, GRPC_STATUS_FAILED_PRECONDITION,
			 "VE `%s` is running: stop it before restoring a snapshot", ve->name);
		return;
	}
	hsp_error_t err = NULL;
	struct ctl_op *op = op_begin(kind, ve->name, ve->node, &err);
	if (op == NULL) {
		api_fail(call, GRPC_STATUS_INTERNAL, "%s", err->msg);
		hsp_error_release(&err);
		return;
	}
	pb_set_str(&ve->operation, op->pb->id);
	ve_save(ve, NULL);
	Hsp__V1__Command cmd = HSP__V1__COMMAND__INIT;
	cmd.kind = ck;
	cmd.ve = ve->name;
	cmd.snapshot = r->snapshot;
	struct step *s = step_new(ve, op, ck);
	if (cmd_send(n, &cmd, on_result, NULL, s, &err) < 0) {
		step_unavailable(s, &err);
	}
	api_reply(call, &op->pb->base);
}

static void snap_create(hsp_rpc_call_t *call, const ProtobufCMessage *req, void *ud)
{
	(void)ud;
	snap_op(call, req, "ve.snapshot.create",
		HSP__V1__COMMAND_KIND__COMMAND_KIND_SNAPSHOT_CREATE);
}

static void snap_restore(hsp_rpc_call_t *call, const ProtobufCMessage *req, void *ud)
{
	(void)ud;
	snap_op(call, req, "ve.snapshot.restore",
		HSP__V1__COMMAND_KIND__COMMAND_KIND_SNAPSHOT_RESTORE);
}

static void snap_delete(hsp_rpc_call_t *call, const ProtobufCMessage *req, void *ud)
{
	(void)ud;
	snap_op(call, req, "ve.snapshot.delete",
		HSP__V1__COMMAND_KIND__COMMAND_KIND_SNAPSHOT_DELETE);
}

static void snap_list_done(void *ud, const Hsp__V1__CommandResult *res)
{
	struct step *s = ud;
	if (res->code != 0) {
		api_fail(s->call, (grpc_status_code)res->code, "%s", res->message);
	} else {
		Hsp__V1__ListSnapshotsResponse resp = HSP__V1__LIST_SNAPSHOTS_RESPONSE__INIT;
		resp.snapshots = res->snapshots;
		resp.n_snapshots = res->n_snapshots;
		api_reply(s->call, &resp.base);
	}
	step_free(s);
}

static void snap_list(hsp_rpc_call_t *call, const ProtobufCMessage *req, void *ud)
{
	(void)ud;
	const Hsp__V1__VeRef *r = (const void *)req;
	struct ctl_caller who;
	if (!api_begin(call, &who))
		return;
	Hsp__V1__Ve *ve = ve_lookup(call, &who, r->name);
	struct ctl_node *n = ve ? ve_node(call, ve) : NULL;
	if (n == NULL)
		return;
	Hsp__V1__Command cmd = HSP__V1__COMMAND__INIT;
	cmd.kind = HSP__V1__COMMAND_KIND__COMMAND_KIND_SNAPSHOT_LIST;
	cmd.ve = ve->name;
	struct step *s = step_new(ve, NULL, cmd.kind);
	s->call = hsp_rpc_call_ref(call);
	hsp_error_t err = NULL;
	if (cmd_send(n, &cmd, snap_list_done, NULL, s, &err) < 0) {
		api_fail(call, GRPC_STATUS_UNAVAILABLE, "%s", err->msg);
		hsp_error_release(&err);
		step_free(s);
	}
}

/* ------------------------------------------------------------ table */

#define M(name, kind, req, resp, fn, ms)                                                           \
	{                                                                                          \
		"/hsp.v1.Ves/" name, kind, &hsp__v1__##req##__descriptor,                          \
		    &hsp__v1__##resp##__descriptor, fn, NULL, NULL, ms                             \
	}

const struct hsp_rpc_method ctl_ve_methods[] = {
    M("Create", HSP_RPC_UNARY, create_ve_request, operation, ve_create, 0),
    M("Get", HSP_RPC_UNARY, ve_ref, ve, ve_get, 0),
    M("List", HSP_RPC_UNARY, list_ves_request, list_ves_response, ve_list, 0),
    M("Start", HSP_RPC_UNARY, ve_ref, operation, ve_start, 0),
    M("Stop", HSP_RPC_UNARY, stop_ve_request, operation, ve_stop, 0),
    M("Restart", HSP_RPC_UNARY, stop_ve_request, operation, ve_restart, 0),
    M("Destroy", HSP_RPC_UNARY, ve_ref, operation, ve_destroy, 0),
    M("SetLimits", HSP_RPC_UNARY, set_limits_request, ve, ve_set, 120000),
    {"/hsp.v1.Ves/Exec", HSP_RPC_SERVER_STREAM, &hsp__v1__exec_request__descriptor,
     &hsp__v1__exec_output__descriptor, ve_exec, NULL, exec_call_done, 24 * 3600 * 1000},
    M("CreateSnapshot", HSP_RPC_UNARY, snapshot_request, operation, snap_create, 0),
    M("ListSnapshots", HSP_RPC_UNARY, ve_ref, list_snapshots_response, snap_list, 0),
    M("RestoreSnapshot", HSP_RPC_UNARY, snapshot_request, operation, snap_restore, 0),
    M("DeleteSnapshot", HSP_RPC_UNARY, snapshot_request, operation, snap_delete, 0),
};
const size_t ctl_n_ve_methods = sizeof(ctl_ve_methods) / sizeof(ctl_ve_methods[0]);
