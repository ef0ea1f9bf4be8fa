/* The controller's model: VEs, nodes, tokens and operations as protobuf-c
 * messages, loaded from the store at start and written through on every
 * change; events recorded and fanned out to watchers. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl.h"
#include "utils.h"

struct ctl *ctl;

/* Operations finished longer ago than this are forgotten. */
#define OP_KEEP_S (24 * 3600)
#define EVENTS_KEEP 100000

void pb_set_str(char **field, const char *value)
{
	if (*field && *field != protobuf_c_empty_string)
		free(*field);
	*field = pb_strdup(value);
}

char *pb_strdup(const char *s)
{
	if (s == NULL || *s == '\0')
		return (char *)protobuf_c_empty_string;
	char *d = strdup(s);
	if (d == NULL)
		abort(); /* the daemon cannot run on without memory */
	return d;
}

ProtobufCMessage *pb_clone(const ProtobufCMessage *m)
{
	size_t n = protobuf_c_message_get_packed_size(m);
	cleanup_free uint8_t *buf = malloc(n ? n : 1);
	if (buf == NULL)
		abort();
	protobuf_c_message_pack(m, buf);
	ProtobufCMessage *c = protobuf_c_message_unpack(m->descriptor, NULL, n, buf);
	if (c == NULL)
		abort();
	return c;
}

int64_t now_unix(void)
{
	return (int64_t)time(NULL);
}

int64_t now_unix_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

Hsp__V1__Ve *ve_find(const char *name)
{
	for (size_t i = 0; i < ctl->n_ves; i++)
		if (strcmp(ctl->ves[i]->name, name) == 0)
			return ctl->ves[i];
	return NULL;
}

struct ctl_node *node_find(const char *name)
{
	for (size_t i = 0; i < ctl->n_nodes; i++)
		if (strcmp(ctl->nodes[i]->pb->name, name) == 0)
			return ctl->nodes[i];
	return NULL;
}

struct ctl_op *op_find(const char *id)
{
	for (size_t i = 0; i < ctl->n_ops; i++)
		if (strcmp(ctl->ops[i]->pb->id, id) == 0)
			return ctl->ops[i];
	return NULL;
}

static int put_msg(const char *kind, const char *key, const ProtobufCMessage *m, hsp_error_t *err)
{
	size_t n = protobuf_c_message_get_packed_size(m);
	cleanup_free uint8_t *buf = malloc(n ? n : 1);
	if (buf == NULL)
		return hsp_make_errno(err, ENOMEM, "store");
	protobuf_c_message_pack(m, buf);
	return hsp_store_put(ctl->store, kind, key, buf, n, err);
}

void ve_set_usage(Hsp__V1__Ve *ve, const Hsp__V1__VeUsage *u)
{
	if (u == NULL)
		return;
	if (ve->usage == NULL) {
		ve->usage = calloc(1, sizeof(*ve->usage));
		if (ve->usage == NULL)
			abort();
		hsp__v1__ve_usage__init(ve->usage);
	}
	ve->usage->cpu_ns = u->cpu_ns;
	ve->usage->memory_bytes = u->memory_bytes;
	ve->usage->pids = u->pids;
	ve->usage->disk_used_bytes = u->disk_used_bytes;
}

int ve_save(Hsp__V1__Ve *ve, hsp_error_t *err)
{
	/* Usage changes every heartbeat and is not state worth a write. */
	Hsp__V1__VeUsage *usage = ve->usage;
	ve->usage = NULL;
	int r = put_msg("ve", ve->name, &ve->base, err);
	ve->usage = usage;
	return r;
}

int ve_forget(const char *name, hsp_error_t *err)
{
	for (size_t i = 0; i < ctl->n_ves; i++) {
		if (strcmp(ctl->ves[i]->name, name) != 0)
			continue;
		int r = hsp_store_del(ctl->store, "ve", name, err);
		if (r < 0 && r != -ENOENT)
			return r;
		protobuf_c_message_free_unpacked(&ctl->ves[i]->base, NULL);
		ctl->ves[i] = ctl->ves[--ctl->n_ves];
		return 0;
	}
	return -ENOENT;
}

int node_save(struct ctl_node *n, hsp_error_t *err)
{
	return put_msg("node", n->pb->name, &n->pb->base, err);
}

int token_save(Hsp__V1__StoredToken *t, hsp_error_t *err)
{
	return put_msg("token", t->token->id, &t->base, err);
}

int op_save(struct ctl_op *op, hsp_error_t *err)
{
	return put_msg("op", op->pb->id, &op->pb->base, err);
}

Hsp__V1__Backup *backup_find(const char *id)
{
	for (size_t i = 0; i < ctl->n_backups; i++)
		if (strcmp(ctl->backups[i]->id, id) == 0)
			return ctl->backups[i];
	return NULL;
}

int backup_save(Hsp__V1__Backup *b, hsp_error_t *err)
{
	return put_msg("backup", b->id, &b->base, err);
}

void backup_forget(const char *id)
{
	for (size_t i = 0; i < ctl->n_backups; i++) {
		if (strcmp(ctl->backups[i]->id, id) != 0)
			continue;
		hsp_error_t err = NULL;
		if (hsp_store_del(ctl->store, "backup", id, &err) < 0 && err->status != ENOENT)
			fprintf(stderr,
				"hsp-controller: backup %s not removed from the store: %s\n", id,
				err->msg);
		hsp_error_release(&err);
		protobuf_c_message_free_unpacked(&ctl->backups[i]->base, NULL);
		ctl->backups[i] = ctl->backups[--ctl->n_backups];
		return;
	}
}

static void *grow(void *arr, size_t n, size_t size)
{
	void *p = reallocarray(arr, n + 1, size);
	if (p == NULL)
		abort();
	return p;
}

static int load_ve(const char *key, const void *data, size_t len, void *ud)
{
	(void)key;
	(void)ud;
	Hsp__V1__Ve *ve = hsp__v1__ve__unpack(NULL, len, data);
	if (ve == NULL)
		return -EBADMSG;
	ctl->ves = grow(ctl->ves, ctl->n_ves, sizeof(*ctl->ves));
	ctl->ves[ctl->n_ves++] = ve;
	return 0;
}

static int load_node(const char *key, const void *data, size_t len, void *ud)
{
	(void)key;
	(void)ud;
	Hsp__V1__Node *pb = hsp__v1__node__unpack(NULL, len, data);
	if (pb == NULL)
		return -EBADMSG;
	struct ctl_node *n = calloc(1, sizeof(*n));
	if (n == NULL)
		abort();
	n->pb = pb;
	pb->connected = false;
	ctl->nodes = grow(ctl->nodes, ctl->n_nodes, sizeof(*ctl->nodes));
	ctl->nodes[ctl->n_nodes++] = n;
	return 0;
}

static int load_token(const char *key, const void *data, size_t len, void *ud)
{
	(void)key;
	(void)ud;
	Hsp__V1__StoredToken *t = hsp__v1__stored_token__unpack(NULL, len, data);
	if (t == NULL || t->token == NULL) {
		if (t)
			hsp__v1__stored_token__free_unpacked(t, NULL);
		return -EBADMSG;
	}
	ctl->tokens = grow(ctl->tokens, ctl->n_tokens, sizeof(*ctl->tokens));
	ctl->tokens[ctl->n_tokens++] = t;
	return 0;
}

static int load_op(const char *key, const void *data, size_t len, void *ud)
{
	(void)key;
	(void)ud;
	Hsp__V1__Operation *pb = hsp__v1__operation__unpack(NULL, len, data);
	if (pb == NULL)
		return -EBADMSG;
	struct ctl_op *op = calloc(1, sizeof(*op));
	if (op == NULL)
		abort();
	op->pb = pb;
	ctl->ops = grow(ctl->ops, ctl->n_ops, sizeof(*ctl->ops));
	ctl->ops[ctl->n_ops++] = op;
	return 0;
}

/* A backup whose making the controller did not see end is of no use:
 * the node may or may not have finished it. */
static int load_backup(const char *key, const void *data, size_t len, void *ud)
{
	(void)key;
	(void)ud;
	Hsp__V1__Backup *b = hsp__v1__backup__unpack(NULL, len, data);
	if (b == NULL)
		return -EBADMSG;
	if (b->state == HSP__V1__BACKUP_STATE__BACKUP_STATE_CREATING) {
		b->state = HSP__V1__BACKUP_STATE__BACKUP_STATE_FAILED;
		pb_set_str(&b->message, "interrupted by a controller restart");
	}
	pb_set_str(&b->operation, "");
	ctl->backups = grow(ctl->backups, ctl->n_backups, sizeof(*ctl->backups));
	ctl->backups[ctl->n_backups++] = b;
	return 0;
}

int model_load(hsp_error_t *err)
{
	static const struct {
		const char *kind;
		hsp_store_fn fn;
	} kinds[] = {{"ve", load_ve},
		     {"node", load_node},
		     {"token", load_token},
		     {"op", load_op},
		     {"backup", load_backup}};
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		int r = hsp_store_scan(ctl->store, kinds[i].kind, kinds[i].fn, NULL, err);
		if (r == -EBADMSG)
			return hsp_make_error(err, EBADMSG, "store: a `%s` record does not decode",
					      kinds[i].kind);
		if (r < 0)
			return r;
	}
	return hsp_store_event_last(ctl->store, &ctl->event_seq, err);
}

void waiter_release(struct ctl_waiter *w)
{
	if (w->timer)
		hsp_rpc_timer_cancel(ctl->loop, w->timer);
	free(w->timer_arg);
	hsp_rpc_call_unref(w->call);
	w->timer = 0;
	w->timer_arg = NULL;
	w->call = NULL;
}

void ops_release_waiters(void)
{
	for (size_t i = 0; i < ctl->n_ops; i++) {
		struct ctl_op *op = ctl->ops[i];
		for (size_t j = 0; j < op->n_waiters; j++)
			waiter_release(&op->waiters[j]);
		op->n_waiters = 0;
	}
}

static void op_free(struct ctl_op *op)
{
	for (size_t i = 0; i < op->n_waiters; i++)
		waiter_release(&op->waiters[i]);
	free(op->waiters);
	protobuf_c_message_free_unpacked(&op->pb->base, NULL);
	free(op);
}

void model_free(void)
{
	for (size_t i = 0; i < ctl->n_ves; i++)
		protobuf_c_message_free_unpacked(&ctl->ves[i]->base, NULL);
	for (size_t i = 0; i < ctl->n_nodes; i++)
		node_destroy(ctl->nodes[i]);
	for (size_t i = 0; i < ctl->n_tokens; i++)
		protobuf_c_message_free_unpacked(&ctl->tokens[i]->base, NULL);
	for (size_t i = 0; i < ctl->n_ops; i++)
		op_free(ctl->ops[i]);
	for (size_t i = 0; i < ctl->n_backups; i++)
		protobuf_c_message_free_unpacked(&ctl->backups[i]->base, NULL);
	free(ctl->backups);
	free(ctl->ves);
	free(ctl->nodes);
	free(ctl->tokens);
	free(ctl->ops);
	while (ctl->watchers) {
		struct ctl_watcher *w = ctl->watchers;
		ctl->watchers = w->next;
		hsp_rpc_call_unref(w->call);
		free(w->tenant);
		free(w->ve);
		free(w->node);
		free(w->operation);
		free(w);
	}
}

const char *ve_state_str(Hsp__V1__VeState s)
{
	const ProtobufCEnumValue *v =
	    protobuf_c_enum_descriptor_get_value(&hsp__v1__ve_state__descriptor, (int)s);
	/* "VE_STATE_RUNNING" -> "running" in events */
	static char buf[32];
	if (v == NULL)
		return "unknown";
	const char *n = v->name + strlen("VE_STATE_");
	size_t i = 0;
	for (; n[i] && i < sizeof(buf) - 1; i++)
		buf[i] = (char)(n[i] >= 'A' && n[i] <= 'Z' ? n[i] - 'A' + 'a' : n[i]);
	buf[i] = '\0';
	return buf;
}

/* ------------------------------------------------------------ events */

static bool watcher_wants(const struct ctl_watcher *w, const Hsp__V1__Event *e)
{
	if (w->ve && strcmp(w->ve, e->ve) != 0)
		return false;
	if (w->node && strcmp(w->node, e->node) != 0)
		return false;
	if (w->operation && strcmp(w->operation, e->operation) != 0)
		return false;
	if (w->who.role != ROLE_TENANT)
		return true;
	/* A tenant sees the events of its own VEs only. */
	return *e->tenant && strcmp(e->tenant, w->tenant) == 0;
}

static void send_event(const Hsp__V1__Event *e)
{
	for (struct ctl_watcher *w = ctl->watchers; w; w = w->next)
		if (!hsp_rpc_call_is_over(w->call) && watcher_wants(w, e))
			hsp_rpc_call_send(w->call, &e->base);
}

void event_emit(const char *kind, const char *ve, const char *node, const char *op,
		const char *state, const char *fmt, ...)
{
	cleanup_free char *msg = NULL;
	va_list ap;
	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);

	Hsp__V1__Event e = HSP__V1__EVENT__INIT;
	e.seq = ++ctl->event_seq;
	e.time_ms = now_unix_ms();
	e.kind = (char *)kind;
	e.ve = (char *)(ve ? ve : "");
	e.node = (char *)(node ? node : "");
	e.operation = (char *)(op ? op : "");
	e.state = (char *)(state ? state : "");
	e.message = msg ? msg : (char *)"";
	/* An operation for a tenant (on a backup whose VE may be gone, or
	 * whose name another tenant has taken since) speaks for that tenant. */
	struct ctl_op *o = op ? op_find(op) : NULL;
	Hsp__V1__Ve *owner = ve ? ve_find(ve) : NULL;
	e.tenant = o && *o->pb->tenant ? o->pb->tenant : owner ? owner->tenant : (char *)"";

	size_t n = hsp__v1__event__get_packed_size(&e);
	cleanup_free uint8_t *buf = malloc(n ? n : 1);
	if (buf) {
		hsp__v1__event__pack(&e, buf);
		hsp_error_t err = NULL;
		if (hsp_store_event_append(ctl->store, e.seq, buf, n, &err) < 0)
			fprintf(stderr, "hsp-controller: event %lu not stored: %s\n",
				(unsigned long)e.seq, err->msg);
		hsp_error_release(&err);
		if (e.seq % 1000 == 0)
			hsp_store_event_trim(ctl->store, EVENTS_KEEP, NULL);
	}
	fprintf(stderr, "hsp-controller: event %lu %s%s%s%s%s%s%s %s: %s\n", (unsigned long)e.seq,
		kind, *e.ve ? " ve=" : "", e.ve, *e.node ? " node=" : "", e.node,
		*e.operation ? " op=" : "", e.operation, e.state, e.message);
	send_event(&e);
}

struct replay {
	struct ctl_watcher *w;
};

static int replay_one(uint64_t seq, const void *data, size_t len, void *ud)
{
	(void)seq;
	struct replay *rp = ud;
	Hsp__V1__Event *e = hsp__v1__event__unpack(NULL, len, data);
	if (e == NULL)
		return 0;
	if (watcher_wants(rp->w, e))
		hsp_rpc_call_send(rp->w->call, &e->base);
	hsp__v1__event__free_unpacked(e, NULL);
	return 0;
}

static char *opt_dup(const char *s)
{
	return s && *s ? strdup(s) : NULL;
}

int events_watch(hsp_rpc_call_t *call, const struct ctl_caller *who,
		 const Hsp__V1__WatchRequest *req)
{
	struct ctl_watcher *w = calloc(1, sizeof(*w));
	if (w == NULL)
		return -ENOMEM;
	w->call = hsp_rpc_call_ref(call);
	w->who = *who;
	w->tenant = opt_dup(who->tenant);
	w->who.tenant = w->tenant;
	w->ve = opt_dup(req->ve);
	w->node = opt_dup(req->node);
	w->operation = opt_dup(req->operation);
	/* An operation's watcher gets its whole history first, so a CLI that
	 * starts watching after the operation ended still sees the end. */
	uint64_t after = req->after_seq;
	struct ctl_op *op = w->operation ? op_find(w->operation) : NULL;
	if (w->operation && after == 0)
		after = op && op->first_seq ? op->first_seq - 1 : 0;
	else if (after == 0)
		after = ctl->event_seq;
	struct replay rp = {w};
	hsp_store_event_scan(ctl->store, after, replay_one, &rp, NULL);
	w->next = ctl->watchers;
	ctl->watchers = w;
	return 0;
}

void events_unwatch(hsp_rpc_call_t *call)
{
	for (struct ctl_watcher **p = &ctl->watchers; *p; p = &(*p)->next) {
		struct ctl_watcher *w = *p;
		if (w->call != call)
			continue;
		*p = w->next;
		hsp_rpc_call_unref(w->call);
		free(w->tenant);
		free(w->ve);
		free(w->node);
		free(w->operation);
		free(w);
		return;
	}
}

/* ------------------------------------------------------------ operations */

static const char *op_state_name(Hsp__V1__OperationState s)
{
	switch (s) {
	case HSP__V1__OPERATION_STATE__OPERATION_STATE_RUNNING:
		return "running";
	case HSP__V1__OPERATION_STATE__OPERATION_STATE_DONE:
		return "done";
	case HSP__V1__OPERATION_STATE__OPERATION_STATE_FAILED:
		return "failed";
	default:
		return "unknown";
	}
}

struct ctl_op *op_begin(const char *kind, const char *ve, const char *node, hsp_error_t *err)
{
	return op_begin_for(kind, ve, node, NULL, err);
}

struct ctl_op *op_begin_for(const char *kind, const char *ve, const char *node, const char *tenant,
			    hsp_error_t *err)
{
	cleanup_free char *id = NULL;
	if (asprintf(&id, "op-%lx-%04x", (unsigned long)now_unix_ms(),
		     (unsigned)random() & 0xffff) < 0)
		return hsp_make_errno(err, ENOMEM, "operation"), NULL;
	struct ctl_op *op = calloc(1, sizeof(*op));
	Hsp__V1__Operation *pb = calloc(1, sizeof(*pb));
	if (op == NULL || pb == NULL) {
		free(op);
		free(pb);
		hsp_make_errno(err, ENOMEM, "operation");
		return NULL;
	}
	hsp__v1__operation__init(pb);
	op->pb = pb;
	pb_set_str(&pb->id, id);
	pb_set_str(&pb->kind, kind);
	pb_set_str(&pb->ve, ve);
	pb_set_str(&pb->node, node);
	/* Recorded for the VE's owner too: once a destroyed VE is gone, its
	 * tenant must still see how the destroy ended. */
	Hsp__V1__Ve *owner = tenant == NULL && ve ? ve_find(ve) : NULL;
	pb_set_str(&pb->tenant, owner ? owner->tenant : tenant);
	pb->state = HSP__V1__OPERATION_STATE__OPERATION_STATE_RUNNING;
	pb->created_at = now_unix();
	if (op_save(op, err) < 0) {
		op_free(op);
		return NULL;
	}
	ctl->ops = grow(ctl->ops, ctl->n_ops, sizeof(*ctl->ops));
	ctl->ops[ctl->n_ops++] = op;
	op->first_seq = ctl->event_seq + 1;
	event_emit("operation", ve, node, pb->id, "running", "%s", kind);
	return op;
}

void op_progress(struct ctl_op *op, const char *fmt, ...)
{
	cleanup_free char *msg = NULL;
	va_list ap;
	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	pb_set_str(&op->pb->progress, msg);
	op_save(op, NULL);
	event_emit("operation.progress", op->pb->ve, op->pb->node, op->pb->id, "running", "%s",
		   msg ? msg : "");
}

static void op_end(struct ctl_op *op, Hsp__V1__OperationState state, grpc_status_code code,
		   const char *msg)
{
	if (op->pb->state != HSP__V1__OPERATION_STATE__OPERATION_STATE_RUNNING)
		return;
	op->pb->state = state;
	op->pb->code = (int32_t)code;
	op->pb->finished_at = now_unix();
	pb_set_str(&op->pb->message, msg);
	hsp_error_t err = NULL;
	if (op_save(op, &err) < 0)
		fprintf(stderr, "hsp-controller: operation %s not stored: %s\n", op->pb->id,
			err->msg);
	hsp_error_release(&err);
	event_emit("operation", op->pb->ve, op->pb->node, op->pb->id, op_state_name(state), "%s",
		   msg ? msg : "");
	for (size_t i = 0; i < op->n_waiters; i++) {
		api_reply(op->waiters[i].call, &op->pb->base);
		waiter_release(&op->waiters[i]);
	}
	free(op->waiters);
	op->waiters = NULL;
	op->n_waiters = 0;
}

void op_done(struct ctl_op *op, const char *fmt, ...)
{
	cleanup_free char *msg = NULL;
	va_list ap;
	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	op_end(op, HSP__V1__OPERATION_STATE__OPERATION_STATE_DONE, GRPC_STATUS_OK, msg);
}

void op_fail(struct ctl_op *op, grpc_status_code code, const char *fmt, ...)
{
	cleanup_free char *msg = NULL;
	va_list ap;
	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	op_end(op, HSP__V1__OPERATION_STATE__OPERATION_STATE_FAILED, code, msg);
}

/* Forgets finished operations after a day; operations a restarted
 * controller finds RUNNING were cut short by the restart. */
void op_expire(void)
{
	int64_t now = now_unix();
	for (size_t i = 0; i < ctl->n_ops;) {
		struct ctl_op *op = ctl->ops[i];
		bool over = op->pb->state != HSP__V1__OPERATION_STATE__OPERATION_STATE_RUNNING;
		if (over && op->pb->finished_at + OP_KEEP_S < now && op->n_waiters == 0) {
			hsp_store_del(ctl->store, "op", op->pb->id, NULL);
			op_free(op);
			ctl->ops[i] = ctl->ops[--ctl->n_ops];
			continue;
		}
		i++;
	}
}
