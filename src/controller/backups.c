/* The Backups service.  A backup is an archive a node's runtime made of a
 * VE (its files and configuration), kept in the cluster's shared pool when
 * there is one, else in its node's own storage.  The controller holds the
 * record (owner, where, what the VE was), so a backup outlives its VE and a
 * tenant sees only its own.  A restore makes a new VE (ves.c). */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl.h"
#include "utils.h"

/* The context of a command in flight on a backup; ids copied, since the
 * backup or VE may be gone when the result comes. */
struct bstep {
	char id[CTL_NAME_MAX + 1];
	char ve[CTL_NAME_MAX + 1];
	char op[64];
};

static struct bstep *bstep_new(const Hsp__V1__Backup *b, const struct ctl_op *op)
{
	struct bstep *s = calloc(1, sizeof(*s));
	if (s == NULL)
		abort();
	snprintf(s->id, sizeof(s->id), "%s", b->id);
	snprintf(s->ve, sizeof(s->ve), "%s", b->ve);
	snprintf(s->op, sizeof(s->op), "%s", op->pb->id);
	return s;
}

static bool caller_sees_backup(const struct ctl_caller *who, const Hsp__V1__Backup *b)
{
	if (caller_is_admin(who))
		return true;
	return who->role == ROLE_TENANT && strcmp(b->tenant, who->tenant) == 0;
}

/* Answers NOT_FOUND for another tenant's backup, in the same words as for
 * one that does not exist. */
static Hsp__V1__Backup *backup_lookup(hsp_rpc_call_t *call, const struct ctl_caller *who,
				      const char *id)
{
	if (!valid_name(id)) {
		api_fail(call, GRPC_STATUS_INVALID_ARGUMENT,
			 "invalid backup id `%.64s`: use 1-63 lower-case letters, digits and '-' "
			 "(not first)",
			 id);
		return NULL;
	}
	Hsp__V1__Backup *b = backup_find(id);
	if (b == NULL || !caller_sees_backup(who, b)) {
		api_fail(call, GRPC_STATUS_NOT_FOUND, "backup `%s` not found", id);
		return NULL;
	}
	return b;
}

/* The opening of a call that acts on a backup: the caller, a backup it
 * may see, no operation on it.  NULL once answered. */
static Hsp__V1__Backup *backup_for_op(hsp_rpc_call_t *call, const char *id, struct ctl_caller *who)
{
	if (!api_begin(call, who))
		return NULL;
	Hsp__V1__Backup *b = backup_lookup(call, who, id);
	if (b == NULL || *b->operation == '\0')
		return b;
	api_fail(call, GRPC_STATUS_FAILED_PRECONDITION,
		 "backup `%s` is busy: operation %s is running", b->id, b->operation);
	return NULL;
}

/* The node that can reach the backup's archive: its own node for local
 * storage, else that one or any other that is up. */
static struct ctl_node *backup_node(hsp_rpc_call_t *call, const Hsp__V1__Backup *b)
{
	struct ctl_node *n = node_find(b->node);
	if (n && n->session)
		return n;
	if (pool_is_shared(b->pool))
		for (size_t i = 0; i < ctl->n_nodes; i++)
			if (node_usable(ctl->nodes[i]))
				return ctl->nodes[i];
	api_fail(call, GRPC_STATUS_UNAVAILABLE, "backup `%s`: %s", b->id,
		 pool_is_shared(b->pool) ? "no node is up to reach the shared pool"
					 : "it is kept on a node that is not connected");
	return NULL;
}

static struct ctl_op *begin_op(hsp_rpc_call_t *call, const char *kind, Hsp__V1__Backup *b,
			       const char *node)
{
	hsp_error_t err = NULL;
	struct ctl_op *op = op_begin_for(kind, b->ve, node, b->tenant, &err);
	if (op == NULL) {
		api_fail(call, GRPC_STATUS_INTERNAL, "%s", err->msg);
		hsp_error_release(&err);
		return NULL;
	}
	pb_set_str(&b->operation, op->pb->id);
	return op;
}

/* ------------------------------------------------------------ create */

static Hsp__V1__Backup *backup_build(const Hsp__V1__Ve *ve, const char *id)
{
	Hsp__V1__Backup *b = calloc(1, sizeof(*b));
	if (b == NULL)
		abort();
	hsp__v1__backup__init(b);
	pb_set_str(&b->id, id);
	pb_set_str(&b->ve, ve->name);
	pb_set_str(&b->tenant, ve->tenant);
	pb_set_str(&b->node, ve->node);
	pb_set_str(&b->pool, ve->pool);
	pb_set_str(&b->template_, ve->template_);
	pb_set_str(&b->hostname, ve->hostname);
	b->state = HSP__V1__BACKUP_STATE__BACKUP_STATE_CREATING;
	b->created_at = now_unix();
	b->network = *ve->ip != '\0';
	if (ve->limits)
		b->limits = (Hsp__V1__Limits *)pb_clone(&ve->limits->base);
	if (ve->n_ssh_keys) {
		b->ssh_keys = calloc(ve->n_ssh_keys, sizeof(char *));
		if (b->ssh_keys == NULL)
			abort();
		for (size_t i = 0; i < ve->n_ssh_keys; i++)
			b->ssh_keys[i] = pb_strdup(ve->ssh_keys[i]);
		b->n_ssh_keys = ve->n_ssh_keys;
	}
	return b;
}

static void created(void *ud, const Hsp__V1__CommandResult *res)
{
	struct bstep *s = ud;
	Hsp__V1__Ve *ve = ve_find(s->ve);
	if (ve && strcmp(ve->operation, s->op) == 0) {
		pb_set_str(&ve->operation, "");
		ve_save(ve, NULL);
	}
	Hsp__V1__Backup *b = backup_find(s->id);
	struct ctl_op *op = op_find(s->op);
	if (b && res->code == 0) {
		b->state = HSP__V1__BACKUP_STATE__BACKUP_STATE_READY;
		b->size_bytes = res->size_bytes;
		pb_set_str(&b->operation, "");
		backup_save(b, NULL);
		if (op)
			op_done(op, "backup %s: %llu bytes", s->id,
				(unsigned long long)res->size_bytes);
	} else {
		/* Nothing of a failed backup stays: the node removed its part. */
		if (b)
			backup_forget(s->id);
		if (op)
			op_fail(op, res->code ? (grpc_status_code)res->code : GRPC_STATUS_ABORTED,
				"backup %s: %s", s->id, res->code ? res->message : "record lost");
	}
	free(s);
}

/* "<VE>-<UTC yyyymmdd-hhmmss>", the VE's name cut to fit 63. */
static void default_id(const char *ve, char *buf, size_t n)
{
	char stamp[32];
	time_t t = time(NULL);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", &tm);
	int keep = CTL_NAME_MAX - 1 - (int)strlen(stamp);
	snprintf(buf, n, "%.*s-%s", keep, ve, stamp);
}

/* Sends cmd about backup b as operation op; answers the call with op.  A
 * command that cannot be sent ends as if its node had said UNAVAILABLE. */
static void send_backup_cmd(hsp_rpc_call_t *call, struct ctl_node *n, Hsp__V1__Command *cmd,
			    Hsp__V1__Backup *b, struct ctl_op *op, ctl_cmd_done_fn done)
{
	struct bstep *s = bstep_new(b, op);
	hsp_error_t err = NULL;
	api_reply(call, &op->pb->base);
	if (cmd_send(n, cmd, done, NULL, s, &err) < 0) {
		Hsp__V1__CommandResult res = HSP__V1__COMMAND_RESULT__INIT;
		res.code = GRPC_STATUS_UNAVAILABLE;
		res.message = err->msg;
		done(s, &res);
		hsp_error_release(&err);
	}
}

static void backup_create(hsp_rpc_call_t *call, const ProtobufCMessage *req, void *ud)
{
	(void)ud;
	const Hsp__V1__CreateBackupRequest *r = (const void *)req;
	struct ctl_caller who;
	Hsp__V1__Ve *ve = ve_for_op(call, r->name, &who);
	if (ve == NULL)
		return;
	if (*r->backup && !valid_name(r->backup)) {
		api_fail(call, GRPC_STATUS_INVALID_ARGUMENT,
			 "invalid backup id `%.64s`: use 1-63 lower-case letters, digits and '-' "
			 "(not first)",
			 r->backup);
		return;
	}
	char id[CTL_NAME_MAX + 1];
	if (*r->backup)
		snprintf(id, sizeof(id), "%s", r->backup);
	else
		default_id(ve->name, id, sizeof(id));
	if (backup_find(id)) {
		api_fail(call, GRPC_STATUS_ALREADY_EXISTS, "backup id `%s` is taken", id);
		return;
	}
	struct ctl_node *n = node_find(ve->node);
	if (n == NULL || n->session == NULL) {
		api_fail(call, GRPC_STATUS_UNAVAILABLE, "VE `%s`: its node `%s` is not connected",
			 ve->name, ve->node);
		return;
	}
	Hsp__V1__Backup *b = backup_build(ve, id);
	ctl->backups = reallocarray(ctl->backups, ctl->n_backups + 1, sizeof(*ctl->backups));
	if (ctl->backups == NULL)
		abort();
	ctl->backups[ctl->n_backups++] = b;
	struct ctl_op *op = begin_op(call, "ve.backup", b, ve->node);
	if (op == NULL) {
		backup_forget(id);
		return;
	}
	backup_save(b, NULL);
	pb_set_str(&ve->operation, op->pb->id);
	ve_save(ve, NULL);
	Hsp__V1__Command cmd = HSP__V1__COMMAND__INIT;
	cmd.kind = HSP__V1__COMMAND_KIND__COMMAND_KIND_BACKUP_CREATE;
	cmd.ve = ve->name;
	cmd.backup = id;
	op_progress(op, "backing up on node %s", n->pb->name);
	send_backup_cmd(call, n, &cmd, b, op, created);
}

/* ------------------------------------------------------------ reads */

static void backup_get(hsp_rpc_call_t *call, const ProtobufCMessage *req, void *ud)
{
	(void)ud;
	const Hsp__V1__BackupRef *r = (const void *)req;
	struct ctl_caller who;
	if (!api_begin(call, &who))
		return;
	Hsp__V1__Backup *b = backup_lookup(call, &who, r->id);
	if (b)
		api_reply(call, &b->base);
}

static int by_created(const void *a, const void *b)
{
	const Hsp__V1__Backup *x = *(Hsp__V1__Backup *const *)a, *y = *(Hsp__V1__Backup *const *)b;
	if (x->created_at != y->created_at)
		return x->created_at < y->created_at ? -1 : 1;
	return strcmp(x->id, y->id);
}

static void backup_list(hsp_rpc_call_t *call, const ProtobufCMessage *req, void *ud)
{
	(void)ud;
	const Hsp__V1__ListBackupsRequest *r = (const void *)req;
	struct ctl_caller who;
	if (!api_begin(call, &who))
		return;
	if ((*r->ve && !valid_name(r->ve)) || (*r->tenant && !valid_name(r->tenant))) {
		api_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "invalid VE or tenant name filter");
		return;
	}
	if (*r->tenant && !caller_is_admin(&who) && strcmp(r->tenant, who.tenant) != 0) {
		api_fail(call, GRPC_STATUS_PERMISSION_DENIED,
			 "a tenant token lists its own tenant's backups only");
		return;
	}
	cleanup_free Hsp__V1__Backup **out = calloc(ctl->n_backups + 1, sizeof(*out));
	if (out == NULL)
		abort();
	size_t n = 0;
	for (size_t i = 0; i < ctl->n_backups; i++) {
		Hsp__V1__Backup *b = ctl->backups[i];
		if (caller_sees_backup(&who, b) && (!*r->ve || strcmp(b->ve, r->ve) == 0) &&
		    (!*r->tenant || strcmp(b->tenant, r->tenant) == 0))
			out[n++] = b;
	}
	qsort(out, n, sizeof(*out), by_created);
	Hsp__V1__ListBackupsResponse resp = HSP__V1__LIST_BACKUPS_RESPONSE__INIT;
	resp.backups = out;
	resp.n_backups = n;
	api_reply(call, &resp.base);
}

/* ------------------------------------------------------------ restore */

static void backup_restore(hsp_rpc_call_t *call, const ProtobufCMessage *req, void *ud)
{
	(void)ud;
	const Hsp__V1__RestoreBackupRequest *r = (const void *)req;
	struct ctl_caller who;
	Hsp__V1__Backup *b = backup_for_op(call, r->backup, &who);
	if (b == NULL)
		return;
	if (b->state != HSP__V1__BACKUP_STATE__BACKUP_STATE_READY) {
		api_fail(call, GRPC_STATUS_FAILED_PRECONDITION, "backup `%s` is not complete: %s",
			 b->id, *b->message ? b->message : "it is still being made");
		return;
	}
	if (*r->node && !pool_is_shared(b->pool) && strcmp(r->node, b->node) != 0 &&
	    caller_is_admin(&who)) {
		api_fail(call, GRPC_STATUS_FAILED_PRECONDITION,
			 "backup `%s` is kept in node %s's local storage: it restores there only",
			 b->id, b->node);
		return;
	}
	ve_create_from_backup(call, &who, b, *r->name ? r->name : b->ve, r->node, r->start);
}

/* ------------------------------------------------------------ delete */

static void deleted(void *ud, const Hsp__V1__CommandResult *res)
{
	struct bstep *s = ud;
	struct ctl_op *op = op_find(s->op);
	Hsp__V1__Backup *b = backup_find(s->id);
	/* NOT_FOUND: the archive is gone already, which is what was asked. */
	if (res->code == 0 || res->code == GRPC_STATUS_NOT_FOUND) {
		if (b)
			backup_forget(s->id);
		if (op)
			op_done(op, "backup %s deleted", s->id);
	} else {
		if (b && strcmp(b->operation, s->op) == 0) {
			pb_set_str(&b->operation, "");
			backup_save(b, NULL);
		}
		if (op)
			op_fail(op, (grpc_status_code)res->code, "backup %s: %s", s->id,
				res->message);
	}
	free(s);
}

static void backup_delete(hsp_rpc_call_t *call, const ProtobufCMessage *req, void *ud)
{
	(void)ud;
	const Hsp__V1__BackupRef *r = (const void *)req;
	struct ctl_caller who;
	Hsp__V1__Backup *b = backup_for_op(call, r->id, &who);
	if (b == NULL)
		return;
	struct ctl_node *n = backup_node(call, b);
	if (n == NULL)
		return;
	struct ctl_op *op = begin_op(call, "backup.delete", b, n->pb->name);
	if (op == NULL)
		return;
	backup_save(b, NULL);
	Hsp__V1__Command cmd = HSP__V1__COMMAND__INIT;
	cmd.kind = HSP__V1__COMMAND_KIND__COMMAND_KIND_BACKUP_DELETE;
	cmd.ve = b->ve;
	cmd.backup = b->id;
	send_backup_cmd(call, n, &cmd, b, op, deleted);
}

/* ------------------------------------------------------------ table */

#define M(name, req, resp, fn)                                                                     \
	{                                                                                          \
		"/hsp.v1.Backups/" name, HSP_RPC_UNARY, &hsp__v1__##req##__descriptor,             \
		    &hsp__v1__##resp##__descriptor, fn, NULL, NULL, 0                              \
	}

const struct hsp_rpc_method ctl_backup_methods[] = {
    M("Create", create_backup_request, operation, backup_create),
    M("Get", backup_ref, backup, backup_get),
    M("List", list_backups_request, list_backups_response, backup_list),
    M("Restore", restore_backup_request, operation, backup_restore),
    M("Delete", backup_ref, operation, backup_delete),
};
const size_t ctl_n_backup_methods = sizeof(ctl_backup_methods) / sizeof(ctl_backup_methods[0]);
