/* The connection to the controller: credentials, the bearer token, unary
 * calls, gRPC status to exit code, and interrupts during streams.
 *
 * Exit codes of hspctl (stable: scripts rely on them; also in --help):
 *    0     success
 *    1     hspctl itself failed: its output could not be written, or the
 *          RPC layer could not make a call at all
 *    2     usage error or bad local input (bad flag value, unreadable CA or
 *          ssh key file, malformed config); nothing was sent
 *   10+N   the controller answered gRPC status N, or the operation waited
 *          for ended FAILED with code N (a FAILED one without a valid code
 *          counts as UNKNOWN, 12):
 *            11 CANCELLED           12 UNKNOWN              13 INVALID_ARGUMENT
 *            14 DEADLINE_EXCEEDED   15 NOT_FOUND            16 ALREADY_EXISTS
 *            17 PERMISSION_DENIED   18 RESOURCE_EXHAUSTED   19 FAILED_PRECONDITION
 *            20 ABORTED             21 OUT_OF_RANGE         22 UNIMPLEMENTED
 *            23 INTERNAL            24 UNAVAILABLE          25 DATA_LOSS
 *            26 UNAUTHENTICATED
 *  128+N   interrupted by signal N: 130 SIGINT, 143 SIGTERM, 129 SIGHUP
 *  ve exec the command's own exit status (128+N when signal N killed it)
 */
#define _GNU_SOURCE
#include "hspctl.h"
#include "utils.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* DATA_LOSS..UNAUTHENTICATED: the codes a server sends */
#define N_STATUS (GRPC_STATUS_UNAUTHENTICATED + 1)

const char *ctl_status_name(int code)
{
	return hsp_rpc_code_name(code);
}

int ctl_status_fail(const char *what, int code, const char *message)
{
	if (code <= GRPC_STATUS_OK || code >= N_STATUS)
		code = GRPC_STATUS_UNKNOWN;
	if (message && *message) {
		cleanup_free char *m = ctl_sanitize_dup(message);
		fprintf(stderr, "hspctl: %s: %s: %s\n", what, hsp_rpc_code_name(code), m);
	} else {
		fprintf(stderr, "hspctl: %s: %s\n", what, hsp_rpc_code_name(code));
	}
	return CTL_EXIT_API + code;
}

int ctl_fail(hsp_error_t *err, int code)
{
	fprintf(stderr, "hspctl: %s\n", *err && (*err)->msg ? (*err)->msg : "unknown error");
	hsp_error_release(err);
	return code;
}

int ctl_output(int r)
{
	if (r >= 0)
		return CTL_EXIT_OK;
	fprintf(stderr, "hspctl: write output: %s\n", strerror(-r));
	return CTL_EXIT_FAIL;
}

/* ------------------------------------------------------------ connecting */

static bool is_local(const char *addr)
{
	return strncmp(addr, "unix:", 5) == 0 || strncmp(addr, "unix-abstract:", 14) == 0;
}

static int load_ca(struct ctl *g)
{
	hsp_error_t err = NULL;
	if (g->ca_file == NULL) {
		fprintf(stderr, "hspctl: no CA certificate: set --ca, HSP_CA or ca = in "
				"~/.config/hsp/config\n");
		return CTL_EXIT_USAGE;
	}
	if (hsp_read_file(g->ca_file, &g->ca_pem, NULL, &err) < 0) {
		hsp_error_wrap(&err, "CA certificate");
		return ctl_fail(&err, CTL_EXIT_USAGE);
	}
	if (strstr(g->ca_pem, "-----BEGIN CERTIFICATE-----") == NULL) {
		fprintf(stderr, "hspctl: CA certificate `%s`: no PEM certificate in it\n",
			g->ca_file);
		return CTL_EXIT_USAGE;
	}
	return CTL_EXIT_OK;
}

int ctl_connect(struct ctl *g)
{
	if (g->ch)
		return CTL_EXIT_OK;
	int r = ctl_config_resolve(g);
	if (r)
		return r;
	struct hsp_rpc_creds creds = {.kind = HSP_RPC_LOCAL};
	if (!is_local(g->controller)) {
		r = load_ca(g);
		if (r)
			return r;
		creds.kind = HSP_RPC_TLS;
		creds.ca_pem = g->ca_pem;
	}
	/* Sent over the local socket too when known: the controller may use it. */
	if (g->token) {
		g->auth = hsp_strdup_printf("Bearer %s", g->token);
		g->md[0] = (struct hsp_rpc_md){.key = "authorization", .value = g->auth};
		g->n_md = 1;
	}
	hsp_error_t err = NULL;
	r = hsp_rpc_channel_new(g->controller, &creds, NULL, &g->ch, &err);
	if (r < 0) {
		hsp_error_wrap(&err, "controller `%s`", g->controller);
		return ctl_fail(&err, r == -EINVAL ? CTL_EXIT_USAGE : CTL_EXIT_FAIL);
	}
	return CTL_EXIT_OK;
}

void ctl_disconnect(struct ctl *g)
{
	hsp_rpc_channel_free(g->ch);
	g->ch = NULL;
}

int ctl_call_status(struct ctl *g, const char *what, const char *path, const ProtobufCMessage *req,
		    const ProtobufCMessageDescriptor *resp_desc, unsigned deadline_ms,
		    ProtobufCMessage **resp, struct hsp_rpc_status *st)
{
	*resp = NULL;
	*st = (struct hsp_rpc_status){0};
	int r = ctl_connect(g);
	if (r)
		return r;
	hsp_error_t err = NULL;
	r = hsp_rpc_unary(g->ch, path, req, resp_desc, g->md, g->n_md, deadline_ms, resp, st, &err);
	if (r < 0) {
		hsp_error_wrap(&err, "%s", what);
		return ctl_fail(&err, CTL_EXIT_FAIL);
	}
	if (st->code == GRPC_STATUS_OK && *resp == NULL)
		st->code = GRPC_STATUS_INTERNAL; /* not expected of the layer */
	if (st->code != GRPC_STATUS_OK && *resp) {
		protobuf_c_message_free_unpacked(*resp, NULL);
		*resp = NULL;
	}
	return CTL_EXIT_OK;
}

int ctl_call(struct ctl *g, const char *what, const char *path, const ProtobufCMessage *req,
	     const ProtobufCMessageDescriptor *resp_desc, unsigned deadline_ms,
	     ProtobufCMessage **resp)
{
	struct hsp_rpc_status st;
	int r = ctl_call_status(g, what, path, req, resp_desc, deadline_ms, resp, &st);
	if (r == CTL_EXIT_OK && st.code != GRPC_STATUS_OK)
		r = ctl_status_fail(what, st.code, st.message);
	hsp_rpc_status_clear(&st);
	return r;
}

int ctl_query(struct ctl *g, const char *what, const char *path, const ProtobufCMessage *req,
	      const ProtobufCMessageDescriptor *resp_desc, ctl_table_fn table)
{
	ProtobufCMessage *resp = NULL;
	int rc = ctl_call(g, what, path, req, resp_desc, 0, &resp);
	if (rc)
		return rc;
	if (g->fmt != CTL_TABLE) {
		rc = ctl_output(ctl_print_message(stdout, g->fmt, resp));
	} else if (table) {
		table(resp);
		rc = ctl_output(ferror(stdout) ? -EIO : 0);
	}
	protobuf_c_message_free_unpacked(resp, NULL);
	return rc;
}

/* ------------------------------------------------------------ interrupts */

/* The handler may only set a flag (the loop polls it: hsp_rpc_loop_stop
 * is not async-signal-safe) or end the process. */
static volatile sig_atomic_t sig_pending, in_loop;

static void on_signal(int sig)
{
	/* Outside a stream nothing needs cancelling; a second signal means
	 * the first did not get through. */
	if (!in_loop || sig_pending)
		_exit(128 + sig);
	sig_pending = sig;
}

void ctl_signals_init(void)
{
	static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
	struct sigaction sa = {.sa_handler = on_signal, .sa_flags = SA_RESTART}, old;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		/* An ignored signal (nohup, a background job) stays ignored. */
		if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler == SIG_IGN)
			continue;
		sigaction(sigs[i], &sa, NULL);
	}
}

bool ctl_interrupted(void)
{
	return sig_pending != 0;
}

int ctl_interrupt_exit(void)
{
	return sig_pending ? 128 + sig_pending : CTL_EXIT_INTERRUPTED;
}

#define POLL_MS 100

static uint64_t poll_timer;

static void poll_signals(void *arg)
{
	struct ctl_loop *l = arg;
	poll_timer = 0;
	if (sig_pending && !l->interrupted) {
		l->interrupted = true;
		if (l->on_interrupt)
			l->on_interrupt(l->arg);
		else
			hsp_rpc_loop_stop(l->loop);
	}
	poll_timer = hsp_rpc_timer_add(l->loop, POLL_MS, poll_signals, l);
}

int ctl_loop_new(struct ctl_loop *l)
{
	hsp_error_t err = NULL;
	if (hsp_rpc_loop_new(&l->loop, &err) < 0)
		return ctl_fail(&err, CTL_EXIT_FAIL);
	return CTL_EXIT_OK;
}

void ctl_loop_run(struct ctl_loop *l)
{
	in_loop = 1;
	poll_timer = hsp_rpc_timer_add(l->loop, POLL_MS, poll_signals, l);
	hsp_rpc_loop_run(l->loop);
	if (poll_timer)
		hsp_rpc_timer_cancel(l->loop, poll_timer);
	poll_timer = 0;
	in_loop = 0;
	/* A signal between the loop's end and here still counts. */
	if (sig_pending)
		l->interrupted = true;
}

void ctl_loop_free(struct ctl_loop *l)
{
	hsp_rpc_loop_free(l->loop);
	l->loop = NULL;
}
