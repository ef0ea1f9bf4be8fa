/* Long operations: what a call returning an Operation prints, `--wait`
 * (progress from Events.Watch, then Operations.Get), and the operation
 * verbs. */
#define _GNU_SOURCE
#include "hspctl.h"
#include "utils.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define OPS_GET "/hsp.v1.Operations/Get"
#define OPS_WAIT "/hsp.v1.Operations/Wait"
/* Operations.Wait without --timeout: as long as the server keeps it open. */
#define WAIT_FOREVER_MS (24u * 3600 * 1000)

static bool op_over(const Hsp__V1__Operation *op)
{
	return op->state == HSP__V1__OPERATION_STATE__OPERATION_STATE_DONE ||
	       op->state == HSP__V1__OPERATION_STATE__OPERATION_STATE_FAILED;
}

void ctl_show_operation(const Hsp__V1__Operation *op)
{
	char buf[64];
	ctl_kv(stdout, "id", op->id);
	ctl_kv(stdout, "kind", op->kind);
	ctl_kv(stdout, "ve", op->ve);
	ctl_kv(stdout, "node", op->node);
	ctl_fmt_enum(&hsp__v1__operation_state__descriptor, op->state, buf, sizeof(buf));
	ctl_kv(stdout, "state", buf);
	ctl_kv(stdout, "code", ctl_status_name(op->code));
	ctl_kv(stdout, "message", op->message);
	ctl_kv(stdout, "progress", op->progress);
	ctl_fmt_time(op->created_at, buf, sizeof(buf));
	ctl_kv(stdout, "created", buf);
	ctl_fmt_time(op->finished_at, buf, sizeof(buf));
	ctl_kv(stdout, "finished", buf);
}

/* "operation 1f2e started (ve.create web1)" */
static void op_line(const Hsp__V1__Operation *op, const char *how)
{
	const char *subject = *op->ve ? op->ve : op->node;
	cleanup_free char *id = ctl_sanitize_dup(op->id);
	cleanup_free char *kind = ctl_sanitize_dup(op->kind);
	cleanup_free char *subj = ctl_sanitize_dup(subject);
	printf("operation %s %s (%s%s%s)\n", id, how, kind, *subject ? " " : "",
	       *subject ? subj : "");
}

/* Prints an operation as it stands; a FAILED one is an error line and
 * exit 10 + its code. */
static int op_report(struct ctl *g, const char *what, const Hsp__V1__Operation *op)
{
	int rc = CTL_EXIT_OK;
	if (g->fmt != CTL_TABLE)
		rc = ctl_output(ctl_print_message(stdout, g->fmt, &op->base));
	else if (op->state == HSP__V1__OPERATION_STATE__OPERATION_STATE_DONE)
		op_line(op, "done");
	else if (op->state != HSP__V1__OPERATION_STATE__OPERATION_STATE_FAILED)
		op_line(op, "started");
	if (op->state == HSP__V1__OPERATION_STATE__OPERATION_STATE_FAILED)
		rc = ctl_status_fail(what, op->code, op->message);
	return rc;
}

/* Operations.Get without printing errors; NULL when it failed. */
static Hsp__V1__Operation *op_get_quiet(struct ctl *g, const char *id)
{
	Hsp__V1__OperationRef ref = HSP__V1__OPERATION_REF__INIT;
	ProtobufCMessage *resp = NULL;
	struct hsp_rpc_status st;
	ref.id = (char *)id;
	if (ctl_call_status(g, "operation", OPS_GET, &ref.base, &hsp__v1__operation__descriptor, 0,
			    &resp, &st) != CTL_EXIT_OK)
		return NULL;
	hsp_rpc_status_clear(&st);
	return (Hsp__V1__Operation *)resp;
}

/* ------------------------------------------------------------ --wait */

/* "… <state>: <message>" on stderr for each event of the operation;
 * over when the operation event says done or failed. */
static bool progress_event(struct ctl_watch *w, const Hsp__V1__Event *ev)
{
	const char *id = w->ud;
	if (*ev->operation && strcmp(ev->operation, id) != 0)
		return false;
	cleanup_free char *state = ctl_sanitize_dup(ev->state);
	cleanup_free char *msg = ctl_sanitize_dup(ev->message);
	fprintf(stderr, "\u2026 %s%s%s\n", state, *ev->message ? ": " : "",
		*ev->message ? msg : "");
	return strcmp(ev->kind, "operation") == 0 &&
	       (strcmp(ev->state, "done") == 0 || strcmp(ev->state, "failed") == 0);
}

/* Before the watch is reopened: it may have ended meanwhile. */
static bool op_ended(struct ctl_watch *w)
{
	Hsp__V1__Operation *op = op_get_quiet(w->g, w->ud);
	bool over = op && op_over(op);
	if (op)
		protobuf_c_message_free_unpacked(&op->base, NULL);
	return over;
}

static int op_final(struct ctl *g, const char *what, const char *id)
{
	cleanup_free char *get_what = hsp_strdup_printf("%s: operation %s", what, id);
	Hsp__V1__OperationRef ref = HSP__V1__OPERATION_REF__INIT;
	ProtobufCMessage *resp = NULL;
	ref.id = (char *)id;
	int rc =
	    ctl_call(g, get_what, OPS_GET, &ref.base, &hsp__v1__operation__descriptor, 0, &resp);
	if (rc)
		return rc;
	/* The end event came first: give the record a moment to agree. */
	if (!op_over((Hsp__V1__Operation *)resp)) {
		protobuf_c_message_free_unpacked(resp, NULL);
		ref.timeout_seconds = 30;
		rc = ctl_call(g, get_what, OPS_WAIT, &ref.base, &hsp__v1__operation__descriptor,
			      40000, &resp);
		if (rc)
			return rc;
	}
	rc = op_report(g, what, (Hsp__V1__Operation *)resp);
	protobuf_c_message_free_unpacked(resp, NULL);
	return rc;
}

static int op_wait_events(struct ctl *g, const char *what, const char *id)
{
	struct ctl_watch w = {
	    .g = g,
	    .what = what,
	    .on_event = progress_event,
	    .on_reopen = op_ended,
	    .ud = (void *)id,
	};
	hsp__v1__watch_request__init(&w.req);
	w.req.operation = (char *)id;
	int rc = ctl_watch_run(&w);
	return rc ? rc : op_final(g, what, id);
}

int ctl_operation_result(struct ctl *g, const char *what, const Hsp__V1__Operation *op, bool wait)
{
	if (!wait || op_over(op))
		return op_report(g, what, op);
	return op_wait_events(g, what, op->id);
}

int ctl_operation_call(struct ctl *g, const char *what, const char *path,
		       const ProtobufCMessage *req, bool wait)
{
	ProtobufCMessage *resp = NULL;
	int rc = ctl_call(g, what, path, req, &hsp__v1__operation__descriptor, 0, &resp);
	if (rc)
		return rc;
	rc = ctl_operation_result(g, what, (Hsp__V1__Operation *)resp, wait);
	protobuf_c_message_free_unpacked(resp, NULL);
	return rc;
}

/* ------------------------------------------------------------ verbs */

static int op_show(struct ctl *g, int argc, char **argv)
{
	static const struct option opts[] = {CTL_COMMON_OPTIONS, {NULL, 0, NULL, 0}};
	int c, rc = 0;
	while ((c = ctl_getopt(g, argc, argv, CTL_COMMON_SHORT, opts, "operation", &rc)) != -1)
		if (c == -2)
			return rc;
	rc = ctl_args(argc, 1, 1, "operation", "show", "expected an operation id");
	if (rc)
		return rc;
	cleanup_free char *what = hsp_strdup_printf("operation show %s", argv[optind]);
	Hsp__V1__OperationRef ref = HSP__V1__OPERATION_REF__INIT;
	ProtobufCMessage *resp = NULL;
	ref.id = argv[optind];
	rc = ctl_call(g, what, OPS_GET, &ref.base, &hsp__v1__operation__descriptor, 0, &resp);
	if (rc)
		return rc;
	if (g->fmt == CTL_TABLE)
		ctl_show_operation((Hsp__V1__Operation *)resp);
	else
		rc = ctl_output(ctl_print_message(stdout, g->fmt, resp));
	protobuf_c_message_free_unpacked(resp, NULL);
	return rc;
}

/* Operations.Wait, again while time is left when the server ends the call
 * before the operation (its own limit on a call's lifetime). */
static int op_wait_api(struct ctl *g, const char *what, const char *id, uint32_t timeout)
{
	int64_t end = timeout ? hsp_rpc_now_ms() + (int64_t)timeout * 1000 : 0;
	Hsp__V1__OperationRef ref = HSP__V1__OPERATION_REF__INIT;
	ref.id = (char *)id;
	for (;;) {
		int64_t start = hsp_rpc_now_ms(), left = end ? end - start : 0;
		if (end && left <= 0) {
			cleanup_free char *m = hsp_strdup_printf("not ended after %us", timeout);
			return ctl_status_fail(what, GRPC_STATUS_DEADLINE_EXCEEDED, m);
		}
		ref.timeout_seconds = end ? (uint32_t)((left + 999) / 1000) : 0;
		ProtobufCMessage *resp = NULL;
		struct hsp_rpc_status st;
		int rc =
		    ctl_call_status(g, what, OPS_WAIT, &ref.base, &hsp__v1__operation__descriptor,
				    end ? (unsigned)left + 10000 : WAIT_FOREVER_MS, &resp, &st);
		if (rc)
			return rc;
		bool again = st.code == GRPC_STATUS_DEADLINE_EXCEEDED ||
			     (st.code == GRPC_STATUS_OK && !op_over((Hsp__V1__Operation *)resp));
		if (!again)
			rc = st.code == GRPC_STATUS_OK
				 ? op_report(g, what, (Hsp__V1__Operation *)resp)
				 : ctl_status_fail(what, st.code, st.message);
		hsp_rpc_status_clear(&st);
		if (resp)
			protobuf_c_message_free_unpacked(resp, NULL);
		if (!again)
			return rc;
		if (hsp_rpc_now_ms() - start < 1000)
			sleep(1);
	}
}

static int op_wait(struct ctl *g, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"timeout", required_argument, NULL, 'T'}, CTL_COMMON_OPTIONS, {NULL, 0, NULL, 0}};
	uint32_t timeout = 0;
	int c, rc = 0;
	while ((c = ctl_getopt(g, argc, argv, CTL_COMMON_SHORT, opts, "operation", &rc)) != -1) {
		if (c == -2)
			return rc;
		if (c == 'T' && (rc = ctl_parse_duration(optarg, "--timeout", &timeout)))
			return rc;
	}
	rc = ctl_args(argc, 1, 1, "operation", "wait", "expected an operation id");
	if (rc)
		return rc;
	cleanup_free char *what = hsp_strdup_printf("operation wait %s", argv[optind]);
	return op_wait_api(g, what, argv[optind], timeout);
}

int cmd_operation(struct ctl *g, int argc, char **argv)
{
	static const struct ctl_subverb v[] = {{"show", op_show}, {"wait", op_wait}};
	return ctl_dispatch(g, "operation", v, sizeof(v) / sizeof(v[0]), argc, argv);
}
