/* Servers: the method table, request contexts, shutdown.
 *
 * Each registered method keeps one request outstanding, and one more
 * request (grpc_server_request_call) catches every unregistered path so
 * it is answered UNIMPLEMENTED at once instead of waiting for its
 * deadline.  A request context is re-armed before its call is handed on,
 * so a handler may even free the server. */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct req_ctx {
	struct hsp_rpc_tag tag;
	hsp_rpc_server_t *srv;
	const struct hsp_rpc_method *m; /* NULL: unregistered paths */
	void *handle;
	grpc_call *call;
	gpr_timespec deadline;
	grpc_metadata_array md;
	grpc_byte_buffer *payload;
	grpc_call_details details;
};

struct hsp_rpc_server {
	hsp_rpc_loop_t *loop;
	struct hsp_rpc_link link; /* in the loop's list */
	grpc_server *server;
	const struct hsp_rpc_method *methods;
	size_t n;
	void *ud;
	struct req_ctx *reqs; /* n registered, then the catch-all */
	size_t pending_reqs;
	size_t live_calls;
	bool started, shutting_down, shutdown_done;
	struct hsp_rpc_tag shutdown_tag;
};

hsp_rpc_loop_t *hsp_rpc_server_loop(hsp_rpc_server_t *srv)
{
	return srv->loop;
}

void *hsp_rpc_server_ud(hsp_rpc_server_t *srv)
{
	return srv->ud;
}

void hsp_rpc_server_call_begins(hsp_rpc_server_t *srv)
{
	srv->live_calls++;
}

void hsp_rpc_server_call_ends(hsp_rpc_server_t *srv)
{
	srv->live_calls--;
}

/* ------------------------------------------------------------ requests */

static grpc_call_error request(struct req_ctx *r)
{
	hsp_rpc_server_t *srv = r->srv;
	grpc_completion_queue *cq = hsp_rpc_loop_cq(srv->loop);
	grpc_call_error e;

	grpc_metadata_array_init(&r->md);
	if (r->m) {
		/* The payload pointer must be NULL exactly for PAYLOAD_NONE. */
		grpc_byte_buffer **payload = r->m->kind == HSP_RPC_BIDI_STREAM ? NULL : &r->payload;
		e = grpc_server_request_registered_call(srv->server, r->handle, &r->call,
							&r->deadline, &r->md, payload, cq, cq,
							&r->tag);
	} else {
		grpc_call_details_init(&r->details);
		e = grpc_server_request_call(srv->server, &r->call, &r->details, &r->md, cq, cq,
					     &r->tag);
	}
	if (e == GRPC_CALL_OK)
		srv->pending_reqs++;
	else
		grpc_metadata_array_destroy(&r->md);
	return e;
}

static void request_done(struct hsp_rpc_tag *tag, bool ok)
{
	struct req_ctx *r = container_of(tag, struct req_ctx, tag);
	hsp_rpc_server_t *srv = r->srv;
	grpc_metadata_array md = r->md;
	struct hsp_rpc_arrival a = {
	    .call = r->call, .m = r->m, .md = &md, .payload = r->payload, .path = NULL};
	char *path = NULL;

	srv->pending_reqs--;
	r->call = NULL;
	r->payload = NULL;
	if (r->m == NULL) {
		if (ok && a.call)
			a.path = path = hsp_rpc_slice_strdup(r->details.method);
		grpc_call_details_destroy(&r->details);
	}
	a.reject = srv->shutting_down;
	if (ok && !srv->shutting_down)
		request(r);
	/* From here on srv may be freed by a handler. */
	if (ok && a.call)
		hsp_rpc_call_arrived(srv, &a);
	else if (a.call)
		grpc_call_unref(a.call);
	if (a.payload)
		grpc_byte_buffer_destroy(a.payload);
	grpc_metadata_array_destroy(&md);
	free(path);
}

/* ------------------------------------------------------------ lifecycle */

static int check_method(const struct hsp_rpc_method *m, hsp_error_t *err)
{
	if (m->path == NULL || m->path[0] != '/' || m->handler == NULL || m->request == NULL)
		return hsp_make_error(err, EINVAL,
				      "rpc: method %s: path, handler and request needed",
				      m->path ? m->path : "(null)");
	if (m->kind == HSP_RPC_BIDI_STREAM && m->on_message == NULL)
		return hsp_make_error(err, EINVAL, "rpc: method %s: a stream needs on_message",
				      m->path);
	return 0;
}

static int register_methods(hsp_rpc_server_t *srv, hsp_error_t *err)
{
	for (size_t i = 0; i < srv->n; i++) {
		const struct hsp_rpc_method *m = &srv->methods[i];
		int r = check_method(m, err);
		if (r < 0)
			return r;
		grpc_server_register_method_payload_handling ph =
		    m->kind == HSP_RPC_BIDI_STREAM ? GRPC_SRM_PAYLOAD_NONE
						   : GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER;
		void *h = grpc_server_register_method(srv->server, m->path, NULL, ph, 0);
		if (h == NULL)
			return hsp_make_error(err, EEXIST, "rpc: cannot register method %s",
					      m->path);
		srv->reqs[i] = (struct req_ctx){.srv = srv, .m = m, .handle = h};
		srv->reqs[i].tag.done = request_done;
	}
	srv->reqs[srv->n] = (struct req_ctx){.srv = srv};
	srv->reqs[srv->n].tag.done = request_done;
	return 0;
}

static void shutdown_done(struct hsp_rpc_tag *tag, bool ok)
{
	(void)ok;
	hsp_rpc_server_t *srv = container_of(tag, hsp_rpc_server_t, shutdown_tag);
	srv->shutdown_done = true;
}

int hsp_rpc_server_new(hsp_rpc_loop_t *loop, const struct hsp_rpc_method *methods, size_t n,
		       const struct hsp_rpc_server_opts *opts, void *ud, hsp_rpc_server_t **out,
		       hsp_error_t *err)
{
	hsp_rpc_server_t *srv = calloc(1, sizeof(*srv));
	if (srv == NULL || (srv->reqs = calloc(n + 1, sizeof(*srv->reqs))) == NULL) {
		free(srv);
		return hsp_make_errno(err, ENOMEM, "rpc: server");
	}
	struct hsp_rpc_args args;
	hsp_rpc_server_args(&args, opts);
	srv->loop = loop;
	srv->methods = methods;
	srv->n = n;
	srv->ud = ud;
	srv->shutdown_tag.done = shutdown_done;
	hsp_rpc_link_init(&srv->link);
	srv->server = grpc_server_create(&args.a, NULL);
	grpc_server_register_completion_queue(srv->server, hsp_rpc_loop_cq(loop), NULL);
	int r = register_methods(srv, err);
	if (r < 0) {
		grpc_server_destroy(srv->server);
		free(srv->reqs);
		free(srv);
		return r;
	}
	hsp_rpc_link_add(hsp_rpc_loop_servers(loop), &srv->link);
	*out = srv;
	return 0;
}

int hsp_rpc_server_listen(hsp_rpc_server_t *srv, const char *addr,
			  const struct hsp_rpc_creds *creds, hsp_error_t *err)
{
	if (srv->started)
		return hsp_make_error(err, EINVAL, "rpc: listen on %s after start", addr);
	grpc_server_credentials *sc = hsp_rpc_server_creds(creds, err);
	if (sc == NULL)
		return -EINVAL;
	int port = grpc_server_add_http2_port(srv->server, addr, sc);
	grpc_server_credentials_release(sc);
	if (port <= 0)
		return hsp_make_error(err, EADDRNOTAVAIL, "rpc: cannot listen on %s", addr);
	return strncmp(addr, "unix", 4) == 0 ? 1 : port;
}

int hsp_rpc_server_start(hsp_rpc_server_t *srv, hsp_error_t *err)
{
	if (srv->started)
		return hsp_make_error(err, EINVAL, "rpc: server already started");
	grpc_server_start(srv->server);
	srv->started = true;
	for (size_t i = 0; i <= srv->n; i++) {
		if (request(&srv->reqs[i]) != GRPC_CALL_OK)
			return hsp_make_error(err, EIO, "rpc: cannot request calls");
	}
	return 0;
}

static bool drained(void *arg)
{
	hsp_rpc_server_t *srv = arg;
	return srv->shutdown_done && srv->pending_reqs == 0 && srv->live_calls == 0;
}

void hsp_rpc_server_free(hsp_rpc_server_t *srv)
{
	if (srv == NULL)
		return;
	srv->shutting_down = true;
	grpc_server_shutdown_and_notify(srv->server, hsp_rpc_loop_cq(srv->loop),
					&srv->shutdown_tag);
	/* Without this, long streams keep the shutdown waiting forever. */
	grpc_server_cancel_all_calls(srv->server);
	hsp_rpc_loop_pump(srv->loop, drained, srv);
	grpc_server_destroy(srv->server);
	hsp_rpc_link_del(&srv->link);
	free(srv->reqs);
	free(srv);
}

void hsp_rpc_server_free_all(hsp_rpc_loop_t *loop)
{
	struct hsp_rpc_link *head = hsp_rpc_loop_servers(loop);
	while (!hsp_rpc_link_empty(head))
		hsp_rpc_server_free(container_of(head->next, hsp_rpc_server_t, link));
}
