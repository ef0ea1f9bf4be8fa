/* events: Events.Watch, printed as it arrives until interrupted; and the
 * watch machinery `--wait` shares. */
#define _GNU_SOURCE
#include "hspctl.h"
#include "utils.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WATCH_PATH "/hsp.v1.Events/Watch"
/* Consecutive UNAVAILABLE closes (a second apart) before giving up. */
#define MAX_UNAVAILABLE 30

static void watch_open(struct ctl_watch *w);

static void watch_finish(struct ctl_watch *w, int rc)
{
	w->done = true;
	w->rc = rc;
	hsp_rpc_loop_stop(w->l.loop);
}

static void on_event(hsp_rpc_stream_t *s, const ProtobufCMessage *msg, void *ud)
{
	struct ctl_watch *w = ud;
	const Hsp__V1__Event *ev = (const Hsp__V1__Event *)msg;
	if (w->done || w->l.interrupted)
		return;
	w->got_event = true;
	if (ev->seq > w->req.after_seq)
		w->req.after_seq = ev->seq;
	if (w->on_event(w, ev)) {
		w->done = true;
		hsp_rpc_stream_cancel(s); /* on_close stops the loop */
	}
}

static void reopen(void *arg)
{
	struct ctl_watch *w = arg;
	w->timer = 0;
	if (w->opened && w->on_reopen && w->on_reopen(w))
		watch_finish(w, w->rc);
	else
		watch_open(w);
}

/* The server may end a watch (its call lifetime, a restart): open it
 * again after the last event seen, at once when events came, else after a
 * second; a refusal ends it. */
static void on_close(hsp_rpc_stream_t *s, const struct hsp_rpc_status *st, void *ud)
{
	struct ctl_watch *w = ud;
	(void)s;
	w->s = NULL;
	if (w->done || w->l.interrupted) {
		hsp_rpc_loop_stop(w->l.loop);
		return;
	}
	bool unavailable = st->code == GRPC_STATUS_UNAVAILABLE;
	bool retry =
	    st->code == GRPC_STATUS_OK || st->code == GRPC_STATUS_DEADLINE_EXCEEDED || unavailable;
	w->failures = w->got_event ? 0 : w->failures + 1;
	if (!retry || (unavailable && w->failures > MAX_UNAVAILABLE)) {
		watch_finish(w, ctl_status_fail(w->what, st->code, st->message));
		return;
	}
	if (unavailable && w->failures == 1)
		fprintf(stderr, "hspctl: %s: the controller is unavailable, retrying\n", w->what);
	w->timer = hsp_rpc_timer_add(w->l.loop, w->failures ? 1000 : 1, reopen, w);
}

static void watch_open(struct ctl_watch *w)
{
	static const struct hsp_rpc_stream_cbs cbs = {.on_message = on_event, .on_close = on_close};
	hsp_error_t err = NULL;
	w->got_event = false;
	w->opened = true;
	int r = hsp_rpc_stream_open(w->l.loop, w->g->ch, WATCH_PATH, HSP_RPC_SERVER_STREAM,
				    &w->req.base, &hsp__v1__event__descriptor, w->g->md, w->g->n_md,
				    0, &cbs, w, &w->s, &err);
	if (r < 0) {
		w->s = NULL;
		hsp_error_wrap(&err, "%s", w->what);
		watch_finish(w, ctl_fail(&err, CTL_EXIT_FAIL));
	}
}

static void watch_interrupt(void *arg)
{
	struct ctl_watch *w = arg;
	if (w->s) {
		hsp_rpc_stream_cancel(w->s); /* on_close stops the loop */
		return;
	}
	if (w->timer)
		hsp_rpc_timer_cancel(w->l.loop, w->timer);
	w->timer = 0;
	hsp_rpc_loop_stop(w->l.loop);
}

int ctl_watch_run(struct ctl_watch *w)
{
	int r = ctl_connect(w->g);
	if (r)
		return r;
	r = ctl_loop_new(&w->l);
	if (r)
		return r;
	w->l.on_interrupt = watch_interrupt;
	w->l.arg = w;
	/* The first open runs on the loop like every later one. */
	w->timer = hsp_rpc_timer_add(w->l.loop, 0, reopen, w);
	ctl_loop_run(&w->l);
	if (w->timer)
		hsp_rpc_timer_cancel(w->l.loop, w->timer);
	ctl_loop_free(&w->l);
	if (w->done)
		return w->rc;
	return w->l.interrupted ? ctl_interrupt_exit() : CTL_EXIT_FAIL;
}

/* ------------------------------------------------------------ events */

static bool print_event(struct ctl_watch *w, const Hsp__V1__Event *ev)
{
	struct ctl *g = w->g;
	int r;
	if (g->fmt != CTL_TABLE) {
		r = ctl_print_stream_item(stdout, g->fmt, &ev->base);
	} else {
		char when[48];
		ctl_fmt_time_ms(ev->time_ms, when, sizeof(when));
		cleanup_free char *kind = ctl_sanitize_dup(ev->kind);
		cleanup_free char *who = ctl_sanitize_dup(*ev->ve ? ev->ve : ev->node);
		cleanup_free char *state = ctl_sanitize_dup(ev->state);
		cleanup_free char *msg = ctl_sanitize_dup(ev->message);
		printf("%s %6" PRIu64 " %-10s %-20s %-10s %s\n", when, ev->seq, kind, who, state,
		       *ev->message ? msg : "");
		r = ferror(stdout) ? -EIO : 0;
	}
	if (r == 0 && fflush(stdout) != 0)
		r = -EIO;
	if (r < 0)
		w->rc = ctl_output(r);
	return r < 0;
}

int cmd_events(struct ctl *g, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"since", required_argument, NULL, 's'},
	    {"ve", required_argument, NULL, 'v'},
	    {"node", required_argument, NULL, 'n'},
	    {"operation", required_argument, NULL, 'O'},
	    CTL_COMMON_OPTIONS,
	    {NULL, 0, NULL, 0},
	};
	struct ctl_watch w = {.g = g, .what = "events", .on_event = print_event};
	hsp__v1__watch_request__init(&w.req);
	hsp_error_t err = NULL;
	int c, rc = 0;
	while ((c = ctl_getopt(g, argc, argv, CTL_COMMON_SHORT, opts, "events", &rc)) != -1) {
		if (c == -2)
			return rc;
		if (c == 's' &&
		    hsp_parse_u64(optarg, 0, UINT64_MAX, &w.req.after_seq, "--since", &err) < 0)
			return ctl_fail(&err, CTL_EXIT_USAGE);
		if (c == 'v')
			w.req.ve = optarg;
		if (c == 'n')
			w.req.node = optarg;
		if (c == 'O')
			w.req.operation = optarg;
	}
	rc = ctl_args(argc, 0, 0, "events", "events", "takes no arguments");
	return rc ? rc : ctl_watch_run(&w);
}
