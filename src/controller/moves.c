/* Moving VEs between nodes: migration (Ves.Migrate), a drain's moves,
 * failover after a node is fenced, and rescue boots (Ves.Rescue).  A VE
 * can move only when its disk is on shared storage: the target starts it
 * from the pool, with the same address, which its start announces.
 *
 * A move is a chain of commands, each answered on the loop: stop (or
 * checkpoint) on the source, reassign, start (or restore) on the target.
 * If the target cannot start it, the VE goes back to its source, so a
 * failed move leaves it where it was. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "utils.h"

enum move_kind { MOVE_MIGRATE, MOVE_FAILOVER, MOVE_RESCUE, MOVE_RESCUE_FINISH };

struct move {
	char ve[CTL_NAME_MAX + 1];
	char op[64];
	char from[CTL_NAME_MAX + 1], to[CTL_NAME_MAX + 1];
	enum move_kind kind;
	bool live;
	bool running;	   /* it ran before the move: start it after */
	bool rolling_back; /* the target failed: starting on the source again */
	char *target_error;
	int64_t down_at_ms; /* when it stopped answering */
	struct drain *drain;
};

struct drain {
	char op[64];
	char node[CTL_NAME_MAX + 1];
	char **queue;
	size_t n_queue, next;
	unsigned active, moved;
	bool pumping; /* a move may end inside drain_pump: no re-entry */
	int64_t longest_down_ms;
	char *failures; /* "a: why; b: why" */
};

static void move_free(struct move *m)
{
	free(m->target_error);
	free(m);
}

bool pool_is_shared(const char *pool)
{
	return ceph_enabled() && strcmp(pool, ctl->o.ceph_pool) == 0;
}

bool ve_on_shared_storage(const Hsp__V1__Ve *ve)
{
	return pool_is_shared(ve->pool);
}

/* Sends a command about ve to `node`.  One that cannot be sent (the node
 * gone or its session closing) ends at once as if the node had answered
 * UNAVAILABLE: done runs exactly once either way. */
static void ve_command(const char *node, Hsp__V1__CommandKind kind, const Hsp__V1__Ve *ve,
		       bool rescue, ctl_cmd_done_fn done, void *ud)
{
	struct ctl_node *n = node_find(node);
	Hsp__V1__Command cmd = HSP__V1__COMMAND__INIT;
	cmd.kind = kind;
	cmd.ve = ve->name;
	cmd.rescue = rescue;
	if (kind == HSP__V1__COMMAND_KIND__COMMAND_KIND_CHECKPOINT ||
	    kind == HSP__V1__COMMAND_KIND__COMMAND_KIND_RESTORE)
		cmd.checkpoint_dir = "checkpoint";
	hsp_error_t err = NULL;
	if (n == NULL)
		hsp_make_error(&err, ENOTCONN, "node `%s` is gone", node);
	else if (cmd_send(n, &cmd, done, NULL, ud, &err) == 0)
		return;
	Hsp__V1__CommandResult res = HSP__V1__COMMAND_RESULT__INIT;
	res.code = GRPC_STATUS_UNAVAILABLE;
	res.message = err->msg;
	done(ud, &res);
	hsp_error_release(&err);
}

static void drain_step_done(struct drain *d, const char *ve, bool ok, int64_t down_ms,
			    const char *why);

/* Ends a move: the operation, the VE's mark, the drain it belongs to. */
static void move_end(struct move *m, Hsp__V1__Ve *ve, grpc_status_code code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void move_end(struct move *m, Hsp__V1__Ve *ve, grpc_status_code code, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	struct ctl_op *op = op_find(m->op);
	if (ve && strcmp(ve->operation, m->op) == 0) {
		pb_set_str(&ve->operation, "");
		ve_save(ve, NULL);
	}
	int64_t down = m->down_at_ms ? hsp_rpc_now_ms() - m->down_at_ms : 0;
	if (op && code == GRPC_STATUS_OK)
		op_done(op, "%s", msg);
	else if (op)
		op_fail(op, code, "%s", msg);
	if (m->drain)
		drain_step_done(m->drain, m->ve, code == GRPC_STATUS_OK, down, msg);
	move_free(m);
}

static void on_started(void *ud, const Hsp__V1__CommandResult *res);

static void start_on(struct move *m, Hsp__V1__Ve *ve, const char *node)
{
	struct ctl_op *op = op_find(m->op);
	bool rescue = m->kind == MOVE_RESCUE;
	bool live = m->live && !m->rolling_back;
	if (op)
		op_progress(op, "%s on node %s",
			    live     ? "restoring"
			    : rescue ? "rescue boot"
				     : "starting",
			    node);
	ve_set_state(ve, HSP__V1__VE_STATE__VE_STATE_STARTING, "");
	Hsp__V1__CommandKind k = live ? HSP__V1__COMMAND_KIND__COMMAND_KIND_RESTORE
				      : HSP__V1__COMMAND_KIND__COMMAND_KIND_START;
	ve_command(node, k, ve, rescue, on_started, m);
}

static void reassign(Hsp__V1__Ve *ve, const char *node)
{
	pb_set_str(&ve->node, node);
	ve_save(ve, NULL);
}

static void on_started(void *ud, const Hsp__V1__CommandResult *res)
{
	struct move *m = ud;
	Hsp__V1__Ve *ve = ve_find(m->ve);
	if (ve == NULL) {
		move_end(m, NULL, GRPC_STATUS_ABORTED, "VE `%s` vanished during the move", m->ve);
		return;
	}
	if (res->code == 0) {
		if (res->ve)
			ve_set_usage(ve, res->ve->usage);
		bool rescue = m->kind == MOVE_RESCUE;
		ve_set_state(ve,
			     rescue ? HSP__V1__VE_STATE__VE_STATE_RESCUE
				    : HSP__V1__VE_STATE__VE_STATE_RUNNING,
			     "");
		int64_t down = m->down_at_ms ? hsp_rpc_now_ms() - m->down_at_ms : 0;
		if (m->rolling_back)
			move_end(m, ve, GRPC_STATUS_UNAVAILABLE,
				 "start on node %s failed (%s); running on node %s again", m->to,
				 m->target_error, m->from);
		else if (m->kind == MOVE_RESCUE)
			move_end(m, ve, GRPC_STATUS_OK,
				 "rescue boot on node %s: its root is at /repair", ve->node);
		else if (m->kind == MOVE_RESCUE_FINISH)
			move_end(m, ve, GRPC_STATUS_OK, "rescue finished, running on node %s",
				 ve->node);
		else
			move_end(m, ve, GRPC_STATUS_OK,
				 "%s node %s to node %s; down for %lld ms%s%s",
				 m->kind == MOVE_FAILOVER ? "failed over from"
				 : m->live		  ? "moved live from"
							  : "moved from",
				 m->from, m->to, (long long)down, *res->message ? "; " : "",
				 res->message);
		return;
	}
	/* The target could not: back to the source, which had it a moment ago
	 * (not after a failover: the source is fenced). */
	if (!m->rolling_back && m->kind == MOVE_MIGRATE && strcmp(m->from, m->to) != 0) {
		m->rolling_back = true;
		m->target_error = strdup(res->message);
		reassign(ve, m->from);
		start_on(m, ve, m->from);
		return;
	}
	ve_set_state(ve, HSP__V1__VE_STATE__VE_STATE_FAILED, res->message);
	if (m->rolling_back)
		move_end(m, ve, GRPC_STATUS_UNAVAILABLE,
			 "start on node %s failed (%s), and on node %s again too: %s", m->to,
			 m->target_error, m->from, res->message);
	else
		move_end(m, ve, (grpc_status_code)res->code, "start on node %s failed: %s",
			 ve->node, res->message);
}

/* The source let go of it (stopped, or checkpointed): its storage is free
 * for the target. */
static void on_released(void *ud, const Hsp__V1__CommandResult *res)
{
	struct move *m = ud;
	Hsp__V1__Ve *ve = ve_find(m->ve);
	if (ve == NULL) {
		move_end(m, NULL, GRPC_STATUS_ABORTED, "VE `%s` vanished during the move", m->ve);
		return;
	}
	if (res->code != 0) {
		/* Still where it was, in whatever state the node reports. */
		Hsp__V1__VeState st = res->ve && res->ve->state
					  ? res->ve->state
					  : HSP__V1__VE_STATE__VE_STATE_RUNNING;
		ve_set_state(ve, st, res->message);
		move_end(m, ve, (grpc_status_code)res->code, "%s on node %s failed: %s",
			 m->live ? "checkpoint" : "stop", m->from, res->message);
		return;
	}
	ve_set_state(ve, HSP__V1__VE_STATE__VE_STATE_STOPPED, "");
	reassign(ve, m->to);
	if (!m->running) {
		move_end(m, ve, GRPC_STATUS_OK, "moved from node %s to node %s (stopped)", m->from,
			 m->to);
		return;
	}
	start_on(m, ve, m->to);
}

static void release_on_source(struct move *m, Hsp__V1__Ve *ve)
{
	struct ctl_op *op = op_find(m->op);
	if (op)
		op_progress(op, "%s on node %s", m->live ? "checkpointing" : "stopping", m->from);
	m->down_at_ms = hsp_rpc_now_ms();
	ve_set_state(ve, HSP__V1__VE_STATE__VE_STATE_STOPPING, "");
	Hsp__V1__CommandKind k = m->live ? HSP__V1__COMMAND_KIND__COMMAND_KIND_CHECKPOINT
					 : HSP__V1__COMMAND_KIND__COMMAND_KIND_STOP;
	ve_command(m->from, k, ve, false, on_released, m);
}

/* Begins a move of ve to `to`; the operation is marked on the VE. */
static struct move *move_begin(Hsp__V1__Ve *ve, enum move_kind kind, const char *opkind,
			       const char *to, hsp_error_t *err)
{
	struct ctl_op *op = op_begin(opkind, ve->name, to, err);
	if (op == NULL)
		return NULL;
	struct move *m = calloc(1, sizeof(*m));
	if (m == NULL)
		abort();
	snprintf(m->ve, sizeof(m->ve), "%s", ve->name);
	snprintf(m->op, sizeof(m->op), "%s", op->pb->id);
	snprintf(m->from, sizeof(m->from), "%s", ve->node);
	snprintf(m->to, sizeof(m->to), "%s", to);
	m->kind = kind;
	pb_set_str(&ve->operation, op->pb->id);
	ve_save(ve, NULL);
	return m;
}

static bool is_up(Hsp__V1__VeState s)
{
	return s == HSP__V1__VE_STATE__VE_STATE_RUNNING ||
	       s == HSP__V1__VE_STATE__VE_STATE_STARTING || s == HSP__V1__VE_STATE__VE_STATE_RESCUE;
}

/* ------------------------------------------------------------ Migrate */

/* Why a node cannot take part in a live move, or NULL. */
static const char *no_live(const struct ctl_node *n)
{
	for (size_t i = 0; i < n->pb->n_capabilities; i++)
		if (strcmp(n->pb->capabilities[i], "criu") == 0)
			return NULL;
	return "it has no checkpoint/restore support (CRIU >= 4.2 on a kernel >= 6.16)";
}

/* Checks shared by Migrate and a drain's moves; fills target. */
static const char *check_move(Hsp__V1__Ve *ve, const char *to, struct ctl_node **target,
			      grpc_status_code *code, char *why, size_t whyn)
{
	*code = GRPC_STATUS_FAILED_PRECONDITION;
	if (!ve_on_shared_storage(ve)) {
		snprintf(why, whyn, "VE `%s` is on node %s's local storage: it cannot move",
			 ve->name, ve->node);
		return why;
	}
	if (to && *to && strcmp(to, ve->node) == 0) {
		*code = GRPC_STATUS_INVALID_ARGUMENT;
		snprintf(why, whyn, "VE `%s` is on node %s already", ve->name, to);
		return why;
	}
	/* A node that is away but not fenced may still run it. */
	struct ctl_node *src = node_find(ve->node);
	if (src && src->session == NULL &&
	    src->pb->state != HSP__V1__NODE_STATE__NODE_STATE_FENCED) {
		*code = GRPC_STATUS_UNAVAILABLE;
		snprintf(why, whyn,
			 "VE `%s`: its node %s is not connected and not fenced, so it may still "
			 "run there",
			 ve->name, ve->node);
		return why;
	}
	char pwhy[200];
	struct ctl_place w = {
	    .template_ = ve->template_, .limits = ve->limits, .node = to, .not_node = ve->node};
	*target = place_ve(&w, code, pwhy, sizeof(pwhy));
	if (*target == NULL) {
		snprintf(why, whyn, "no node can take VE `%s`: %s", ve->name, pwhy);
		return why;
	}
	*code = GRPC_STATUS_OK;
	return NULL;
}

static void ve_migrate(hsp_rpc_call_t *call, const ProtobufCMessage *req, void *ud)
{
	(void)ud;
	const Hsp__V1__MigrateVeRequest *r = (const void *)req;
	struct ctl_caller who;
	Hsp__V1__Ve *ve = ve_for_op(call, r->name, &who);
	if (ve == NULL)
		return;
	if (!caller_is_admin(&who)) {
		api_fail(call, GRPC_STATUS_PERMISSION_DENIED,
			 "moving VEs between nodes is for operators (an admin token)");
		return;
	}
	struct ctl_node *target = NULL;
	grpc_status_code code;
	char why[400];
	if (check_move(ve, r->to_node, &target, &code, why, sizeof(why))) {
		api_fail(call, code, "%s", why);
		return;
	}
	bool running = is_up(ve->state);
	bool live = r->live && running;
	const char *src_why = NULL, *dst_why = NULL;
	if (live) {
		struct ctl_node *src = node_find(ve->node);
		src_why = src ? no_live(src) : "it is gone";
		dst_why = no_live(target);
	}
	if (live && (src_why || dst_why) && !r->allow_fallback) {
		api_fail(call, GRPC_STATUS_FAILED_PRECONDITION,
			 "live migration impossible: node %s: %s (allow the fallback to "
			 "restart-migrate)",
			 src_why ? ve->node : target->pb->name, src_why ? src_why : dst_why);
		return;
	}
	hsp_error_t err = NULL;
	struct move *m = move_begin(ve, MOVE_MIGRATE, "ve.migrate", target->pb->name, &err);
	if (m == NULL) {
		api_fail(call, GRPC_STATUS_INTERNAL, "%s", err->msg);
		hsp_error_release(&err);
		return;
	}
	m->running = running;
	m->live = live && !src_why && !dst_why;
	struct ctl_op *op = op_find(m->op);
	if (live && !m->live)
		op_progress(op, "live migration impossible (node %s: %s): restart-migrating",
			    src_why ? ve->node : target->pb->name, src_why ? src_why : dst_why);
	api_reply(call, &op->pb->base);
	if (running)
		release_on_source(m, ve);
	else {
		Hsp__V1__CommandResult ok = HSP__V1__COMMAND_RESULT__INIT;
		on_released(m, &ok);
	}
}

/* ------------------------------------------------------------ Drain */

static struct drain **drains;
static size_t n_drains;

static void drain_pump(struct drain *d);

static void drain_free(struct drain *d)
{
	for (size_t i = 0; i < n_drains; i++)
		if (drains[i] == d) {
			drains[i] = drains[--n_drains];
			break;
		}
	for (size_t i = 0; i < d->n_queue; i++)
		free(d->queue[i]);
	free(d->queue);
	free(d->failures);
	free(d);
}

static void drain_failure(struct drain *d, const char *ve, const char *why)
{
	char *f = NULL;
	if (asprintf(&f, "%s%s%s: %s", d->failures ? d->failures : "", d->failures ? "; " : "", ve,
		     why) < 0)
		abort();
	free(d->failures);
	d->failures = f;
}

static void drain_finish(struct drain *d)
{
	struct ctl_node *n = node_find(d->node);
	struct ctl_op *op = op_find(d->op);
	if (n && d->failures == NULL && n->pb->state == HSP__V1__NODE_STATE__NODE_STATE_DRAINING) {
		node_set_state(n, HSP__V1__NODE_STATE__NODE_STATE_MAINTENANCE, "drained");
		/* The command goes first: the agent dispatches it with the
		 * storage it has now. */
		node_release_storage(n);
		if (n->session)
			node_welcome(n); /* its configuration without the shared pool */
		if (op)
			op_done(op,
				"moved %u VEs off node %s, longest downtime %lld ms; it is in "
				"maintenance",
				op ? d->moved : 0, d->node, (long long)d->longest_down_ms);
	} else if (op) {
		op_fail(op, GRPC_STATUS_FAILED_PRECONDITION,
			"moved %u VEs off node %s; could not move: %s; the node stays draining",
			d->moved, d->node, d->failures ? d->failures : "(node state changed)");
	}
	drain_free(d);
}

static void drain_step_done(struct drain *d, const char *ve, bool ok, int64_t down_ms,
			    const char *why)
{
	d->active--;
	if (ok) {
		d->moved++;
		if (down_ms > d->longest_down_ms)
			d->longest_down_ms = down_ms;
		struct ctl_op *op = op_find(d->op);
		if (op)
			op_progress(op, "%s: %s (%u of %zu moved)", ve, why, d->moved, d->n_queue);
	} else {
		drain_failure(d, ve, why);
	}
	drain_pump(d);
}

static void drain_start_one(struct drain *d, const char *name)
{
	Hsp__V1__Ve *ve = ve_find(name);
	if (ve == NULL || strcmp(ve->node, d->node) != 0)
		return; /* destroyed or moved meanwhile: nothing to do */
	struct ctl_node *target = NULL;
	grpc_status_code code;
	char why[400];
	if (*ve->operation) {
		drain_failure(d, name, "an operation was running on it");
		return;
	}
	if (check_move(ve, NULL, &target, &code, why, sizeof(why))) {
		drain_failure(d, name, why);
		return;
	}
	hsp_error_t err = NULL;
	struct move *m = move_begin(ve, MOVE_MIGRATE, "ve.migrate", target->pb->name, &err);
	if (m == NULL) {
		drain_failure(d, name, err->msg);
		hsp_error_release(&err);
		return;
	}
	m->running = is_up(ve->state);
	m->drain = d;
	d->active++;
	if (m->running) {
		struct ctl_node *src = node_find(ve->node);
		m->live = src && !no_live(src) && !no_live(target);
		release_on_source(m, ve);
	} else {
		Hsp__V1__CommandResult ok = HSP__V1__COMMAND_RESULT__INIT;
		on_released(m, &ok);
	}
}

static void drain_pump(struct drain *d)
{
	if (d->pumping)
		return;
	d->pumping = true;
	while (d->active < ctl->o.max_moves && d->next < d->n_queue) {
		const char *name = d->queue[d->next++];
		drain_start_one(d, name);
	}
	d->pumping = false;
	if (d->active == 0 && d->next == d->n_queue)
		drain_finish(d);
}

int drain_begin(struct ctl_node *n, struct ctl_op *op)
{
	struct drain *d = calloc(1, sizeof(*d));
	struct drain **v = reallocarray(drains, n_drains + 1, sizeof(*v));
	if (d == NULL || v == NULL)
		abort();
	drains = v;
	drains[n_drains++] = d;
	snprintf(d->op, sizeof(d->op), "%s", op->pb->id);
	snprintf(d->node, sizeof(d->node), "%s", n->pb->name);
	d->queue = calloc(ctl->n_ves + 1, sizeof(char *));
	if (d->queue == NULL)
		abort();
	for (size_t i = 0; i < ctl->n_ves; i++)
		if (strcmp(ctl->ves[i]->node, n->pb->name) == 0)
			d->queue[d->n_queue++] = strdup(ctl->ves[i]->name);
	op_progress(op, "moving %zu VEs, at most %u at once", d->n_queue, ctl->o.max_moves);
	/* Running ones first: they are what users notice. */
	drain_pump(d);
	return 0;
}

bool drain_running(const char *node)
{
	for (size_t i = 0; i < n_drains; i++)
		if (strcmp(drains[i]->node, node) == 0)
			return true;
	return false;
}

void drains_free(void)
{
	while (n_drains)
		drain_free(drains[0]);
	free(drains);
	drains = NULL;
}

/* ------------------------------------------------------------ failover */

/* After its node was fenced, a VE on shared storage goes to the node with
 * the most room, and starts there if its owner wants it running.  Those
 * that fit nowhere wait for the next tick. */
void evacuate(struct ctl_node *dead)
{
	for (size_t i = 0; i < ctl->n_ves; i++) {
		Hsp__V1__Ve *ve = ctl->ves[i];
		if (strcmp(ve->node, dead->pb->name) != 0 || *ve->operation ||
		    !ve_on_shared_storage(ve))
			continue;
		struct ctl_place w = {
		    .template_ = ve->template_, .limits = ve->limits, .not_node = dead->pb->name};
		grpc_status_code code;
		char why[200];
		struct ctl_node *target = place_ve(&w, &code, why, sizeof(why));
		if (target == NULL) {
			if (strcmp(ve->message, why) != 0)
				ve_set_state(ve, ve->state, why);
			continue;
		}
		hsp_error_t err = NULL;
		struct move *m =
		    move_begin(ve, MOVE_FAILOVER, "ve.failover", target->pb->name, &err);
		if (m == NULL) {
			hsp_error_release(&err);
			continue;
		}
		m->running = ve->desired_running;
		m->down_at_ms = dead->down_since_ms ? dead->down_since_ms : hsp_rpc_now_ms();
		ve_set_state(ve, HSP__V1__VE_STATE__VE_STATE_STOPPED, "its node was fenced");
		reassign(ve, target->pb->name);
		if (m->running)
			start_on(m, ve, target->pb->name);
		else
			move_end(m, ve, GRPC_STATUS_OK,
				 "node %s was fenced; now on node %s (stopped)", m->from, m->to);
	}
}

/* ------------------------------------------------------------ Rescue */

static void ve_rescue(hsp_rpc_call_t *call, const ProtobufCMessage *req, void *ud)
{
	(void)ud;
	const Hsp__V1__RescueVeRequest *r = (const void *)req;
	struct ctl_caller who;
	Hsp__V1__Ve *ve = ve_for_op(call, r->name, &who);
	if (ve == NULL)
		return;
	bool in_rescue = ve->state == HSP__V1__VE_STATE__VE_STATE_RESCUE;
	if (r->finish != in_rescue) {
		api_fail(call, GRPC_STATUS_FAILED_PRECONDITION,
			 r->finish ? "VE `%s` is not in rescue" : "VE `%s` is in rescue already",
			 ve->name);
		return;
	}
	struct ctl_node *n = node_find(ve->node);
	if (n == NULL || !n->session) {
		/* Its node is away: on shared storage, any node may rescue it
		 * once that node is fenced. */
		struct ctl_place w = {.template_ = ve->template_, .limits = ve->limits};
		grpc_status_code code = GRPC_STATUS_UNAVAILABLE;
		char why[200] = "";
		bool fenced = n && n->pb->state == HSP__V1__NODE_STATE__NODE_STATE_FENCED;
		n = fenced && ve_on_shared_storage(ve) ? place_ve(&w, &code, why, sizeof(why))
						       : NULL;
		if (n == NULL) {
			api_fail(call, code, "VE `%s`: its node `%s` is not connected%s%s",
				 ve->name, ve->node, *why ? ": " : "", why);
			return;
		}
	}
	hsp_error_t err = NULL;
	struct move *m =
	    move_begin(ve, r->finish ? MOVE_RESCUE_FINISH : MOVE_RESCUE,
		       r->finish ? "ve.rescue-finish" : "ve.rescue", n->pb->name, &err);
	if (m == NULL) {
		api_fail(call, GRPC_STATUS_INTERNAL, "%s", err->msg);
		hsp_error_release(&err);
		return;
	}
	m->running = true;
	ve->desired_running = true;
	api_reply(call, &op_find(m->op)->pb->base);
	if (strcmp(m->from, m->to) == 0 && is_up(ve->state)) {
		release_on_source(m, ve);
	} else {
		reassign(ve, m->to);
		start_on(m, ve, m->to);
	}
}

#define M(path, kind, req, resp, fn)                                                               \
	{                                                                                          \
		path, kind, &hsp__v1__##req##__descriptor, &hsp__v1__##resp##__descriptor, fn,     \
		    NULL, NULL, 0                                                                  \
	}
const struct hsp_rpc_method ctl_move_methods[] = {
    M("/hsp.v1.Ves/Migrate", HSP_RPC_UNARY, migrate_ve_request, operation, ve_migrate),
    M("/hsp.v1.Ves/Rescue", HSP_RPC_UNARY, rescue_ve_request, operation, ve_rescue),
};
const size_t ctl_n_move_methods = sizeof(ctl_move_methods) / sizeof(ctl_move_methods[0]);
