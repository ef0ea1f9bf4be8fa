/* Credentials and channel arguments for both ends. */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <limits.h>

#define DEFAULT_MAX_MESSAGE (4 << 20)
#define SERVER_KEEPALIVE_MS 10000
#define KEEPALIVE_TIMEOUT_MS 5000
/* How often a client may ping an idle connection: well below any client's
 * keepalive interval (>= 1 s), or grpc answers "too many pings" with a
 * GOAWAY after two early pings. */
#define MIN_CLIENT_PING_MS 500

grpc_server_credentials *hsp_rpc_server_creds(const struct hsp_rpc_creds *c, hsp_error_t *err)
{
	grpc_server_credentials *sc = NULL;
	switch (c ? c->kind : HSP_RPC_INSECURE) {
	case HSP_RPC_INSECURE:
		sc = grpc_insecure_server_credentials_create();
		break;
	case HSP_RPC_LOCAL:
		sc = grpc_local_server_credentials_create(UDS);
		break;
	case HSP_RPC_TLS: {
		if (c->cert_pem == NULL || c->key_pem == NULL) {
			hsp_make_error(err, EINVAL,
				       "rpc: a TLS server needs a certificate and key");
			return NULL;
		}
		grpc_ssl_pem_key_cert_pair pair = {.private_key = c->key_pem,
						   .cert_chain = c->cert_pem};
		/* Clients without a certificate are let in (the daemon decides what
		 * they may do); a certificate that is presented must verify. */
		grpc_ssl_client_certificate_request_type req =
		    c->ca_pem ? GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY
			      : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE;
		sc = grpc_ssl_server_credentials_create_ex(c->ca_pem, &pair, 1, req, NULL);
		break;
	}
	}
	if (sc == NULL)
		hsp_make_error(err, EINVAL, "rpc: invalid server credentials");
	return sc;
}

grpc_channel_credentials *hsp_rpc_channel_creds(const struct hsp_rpc_creds *c, hsp_error_t *err)
{
	grpc_channel_credentials *cc = NULL;
	switch (c ? c->kind : HSP_RPC_INSECURE) {
	case HSP_RPC_INSECURE:
		cc = grpc_insecure_credentials_create();
		break;
	case HSP_RPC_LOCAL:
		cc = grpc_local_credentials_create(UDS);
		break;
	case HSP_RPC_TLS: {
		if ((c->cert_pem == NULL) != (c->key_pem == NULL)) {
			hsp_make_error(err, EINVAL, "rpc: a client certificate needs its key");
			return NULL;
		}
		grpc_ssl_pem_key_cert_pair pair = {.private_key = c->key_pem,
						   .cert_chain = c->cert_pem};
		cc = grpc_ssl_credentials_create_ex(c->ca_pem, c->cert_pem ? &pair : NULL, NULL,
						    NULL);
		break;
	}
	}
	if (cc == NULL)
		hsp_make_error(err, EINVAL, "rpc: invalid channel credentials");
	return cc;
}

/* ------------------------------------------------------------ arguments */

static grpc_arg *args_next(struct hsp_rpc_args *args, const char *key)
{
	grpc_arg *a = &args->v[args->a.num_args++];
	args->a.args = args->v;
	a->key = (char *)key;
	return a;
}

void hsp_rpc_args_int(struct hsp_rpc_args *args, const char *key, int value)
{
	grpc_arg *a = args_next(args, key);
	a->type = GRPC_ARG_INTEGER;
	a->value.integer = value;
}

void hsp_rpc_args_str(struct hsp_rpc_args *args, const char *key, const char *value)
{
	grpc_arg *a = args_next(args, key);
	a->type = GRPC_ARG_STRING;
	a->value.string = (char *)value;
}

static int clamp_int(size_t v)
{
	return v > INT_MAX ? INT_MAX : (int)v;
}

void hsp_rpc_server_args(struct hsp_rpc_args *args, const struct hsp_rpc_server_opts *o)
{
	unsigned ka = o && o->keepalive_ms ? o->keepalive_ms : SERVER_KEEPALIVE_MS;
	unsigned kt = o && o->keepalive_timeout_ms ? o->keepalive_timeout_ms : KEEPALIVE_TIMEOUT_MS;
	size_t max = o && o->max_message ? o->max_message : DEFAULT_MAX_MESSAGE;

	args->a.num_args = 0;
	args->a.args = args->v;
	hsp_rpc_args_int(args, GRPC_ARG_KEEPALIVE_TIME_MS, clamp_int(ka));
	hsp_rpc_args_int(args, GRPC_ARG_KEEPALIVE_TIMEOUT_MS, clamp_int(kt));
	/* Pings also on idle connections and streams that carry no data:
	 * that is where a vanished agent hides. */
	hsp_rpc_args_int(args, GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
	hsp_rpc_args_int(args, GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
	hsp_rpc_args_int(args, GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
			 MIN_CLIENT_PING_MS);
	hsp_rpc_args_int(args, GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, clamp_int(max));
}

void hsp_rpc_channel_args(struct hsp_rpc_args *args, const struct hsp_rpc_channel_opts *o,
			  const struct hsp_rpc_creds *c)
{
	struct hsp_rpc_channel_opts none = {0};
	if (o == NULL)
		o = &none;
	args->a.num_args = 0;
	args->a.args = args->v;
	hsp_rpc_args_int(args, GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
			 clamp_int(o->max_message ? o->max_message : DEFAULT_MAX_MESSAGE));
	/* No retry policy is configured; the filter would only buffer. */
	hsp_rpc_args_int(args, GRPC_ARG_ENABLE_RETRIES, 0);
	if (o->keepalive_ms) {
		unsigned kt =
		    o->keepalive_timeout_ms ? o->keepalive_timeout_ms : KEEPALIVE_TIMEOUT_MS;
		hsp_rpc_args_int(args, GRPC_ARG_KEEPALIVE_TIME_MS, clamp_int(o->keepalive_ms));
		hsp_rpc_args_int(args, GRPC_ARG_KEEPALIVE_TIMEOUT_MS, clamp_int(kt));
		hsp_rpc_args_int(args, GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
		hsp_rpc_args_int(args, GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
	}
	if (o->own_connection)
		hsp_rpc_args_int(args, GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
	/* Not GRPC_ARG_MIN_RECONNECT_BACKOFF_MS: despite its name it is the
	 * minimum connect timeout, which would cut slow TLS handshakes. */
	if (o->min_reconnect_ms)
		hsp_rpc_args_int(args, GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS,
				 clamp_int(o->min_reconnect_ms));
	if (o->max_reconnect_ms)
		hsp_rpc_args_int(args, GRPC_ARG_MAX_RECONNECT_BACKOFF_MS,
				 clamp_int(o->max_reconnect_ms));
	if (c && c->kind == HSP_RPC_TLS && c->server_name)
		hsp_rpc_args_str(args, GRPC_SSL_TARGET_NAME_OVERRIDE_ARG, c->server_name);
}
