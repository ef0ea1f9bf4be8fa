/* Joining the cluster, once, with a join token
 * "hspj.<id>.<secret>.<ca_sha256_hex>":
 *   1. fetch the controller's CA over TLS without verification, and keep
 *      it only if its fingerprint is the token's (trust on first use,
 *      pinned by the token);
 *   2. make a key and a CSR (CN = node name) here; the key stays here,
 *      saved before the next step (or, left by a join that did not
 *      finish, used again);
 *   3. call Join over TLS verified against that CA;
 *   4. save CA, certificate and config in the state directory.
 * The controller answers a spent token again for the same name and key,
 * so steps 3-4 may be repeated, by this run or the next, when the answer
 * was lost.
 * Runs on the main thread before the loop, so it may block. */
#define _GNU_SOURCE
#include "agent.h"
#include "pki.h"
#include "utils.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define JOIN_RETRY_MS 30000
#define JOIN_DEADLINE_MS 10000
#define FETCH_TIMEOUT_MS 5000

int parse_host_port(const char *s, char **host, unsigned *port, hsp_error_t *err)
{
	const char *colon = strrchr(s, ':');
	const char *h = s, *hend = colon;
	if (*s == '[') {
		const char *close = strchr(s, ']');
		if (close == NULL || close[1] != ':')
			return hsp_make_error(err, EINVAL, "invalid address `%s`", s);
		h = s + 1;
		hend = close;
	} else if (colon && memchr(s, ':', (size_t)(colon - s))) {
		return hsp_make_error(err, EINVAL,
				      "invalid address `%s`: write IPv6 as [ADDR]:PORT", s);
	}
	uint64_t p;
	hsp_error_t perr = NULL;
	if (colon == NULL || hend == h ||
	    hsp_parse_u64(colon + 1, 1, 65535, &p, "port", &perr) < 0) {
		hsp_error_release(&perr);
		return hsp_make_error(err, EINVAL, "invalid address `%s`: expected HOST:PORT", s);
	}
	*host = strndup(h, (size_t)(hend - h));
	*port = (unsigned)p;
	return 0;
}

/* connect(2) on a UDP socket sends nothing; it only makes the kernel
 * pick the route and so the source address. */
char *detect_address(const char *host, unsigned port)
{
	struct addrinfo hints = {.ai_socktype = SOCK_DGRAM}, *res = NULL;
	char portstr[8], buf[INET6_ADDRSTRLEN] = "";
	snprintf(portstr, sizeof(portstr), "%u", port);
	if (getaddrinfo(host, portstr, &hints, &res) != 0)
		return NULL;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int fd = socket(res->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	bool ok = fd >= 0 && connect(fd, res->ai_addr, res->ai_addrlen) == 0 &&
		  getsockname(fd, (struct sockaddr *)&ss, &len) == 0;
	if (ok && ss.ss_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, buf, sizeof(buf));
	else if (ok && ss.ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, buf, sizeof(buf));
	if (fd >= 0)
		close(fd);
	freeaddrinfo(res);
	return *buf ? strdup(buf) : NULL;
}

/* The CA fingerprint, the token's last part. */
static int token_fingerprint(const char *token, char fp[65], hsp_error_t *err)
{
	const char *parts[4];
	int n = 0;
	const char *p = token;
	while (n < 4 && p) {
		parts[n++] = p;
		p = strchr(p, '.');
		p = p ? p + 1 : NULL;
	}
	if (strncmp(token, "hspj.", 5) != 0 || n != 4 || p != NULL || strlen(parts[3]) != 64)
		return hsp_make_error(
		    err, EINVAL, "invalid join token: expected hspj.<id>.<secret>.<ca sha256>");
	for (int i = 0; i < 64; i++) {
		if (!isxdigit((unsigned char)parts[3][i]))
			return hsp_make_error(err, EINVAL,
					      "invalid join token: bad CA fingerprint");
		fp[i] = (char)tolower((unsigned char)parts[3][i]);
	}
	fp[64] = '\0';
	return 0;
}

/* Sleeps ms unless a signal asks us to stop; false then. */
static bool backoff_sleep(unsigned ms)
{
	for (unsigned slept = 0; slept < ms; slept += 50) {
		if (agent_stop_requested())
			return false;
		struct timespec ts = {0, 50 * 1000000L};
		nanosleep(&ts, NULL);
	}
	return !agent_stop_requested();
}

static bool retryable_errno(int e)
{
	return e == ECONNREFUSED || e == ETIMEDOUT || e == EHOSTUNREACH || e == ENETUNREACH ||
	       e == ECONNRESET || e == EAGAIN || e == ENOTCONN || e == EPIPE;
}

static int fetch_ca(struct agent *a, const char *fp, int64_t until, char **ca, hsp_error_t *err)
{
	for (unsigned delay = 500;; delay = delay * 2 > 4000 ? 4000 : delay * 2) {
		int r = hsp_pki_fetch_pinned(a->c.host, a->c.port, fp, FETCH_TIMEOUT_MS, ca, err);
		if (r == -EPERM)
			return hsp_error_wrap(err, "the controller's CA is not the one the join "
						   "token names");
		if (r == 0 || !retryable_errno(-r) || hsp_rpc_now_ms() + delay > until)
			return r;
		agent_log("join: %s unreachable (%s); retrying", a->c.controller, (*err)->msg);
		hsp_error_release(err);
		if (!backoff_sleep(delay))
			return hsp_make_error(err, EINTR, "join interrupted");
	}
}

static int join_call(struct agent *a, hsp_rpc_channel_t *ch, const Hsp__V1__JoinRequest *req,
		     int64_t until, Hsp__V1__JoinResponse **resp, hsp_error_t *err)
{
	for (unsigned delay = 500;; delay = delay * 2 > 4000 ? 4000 : delay * 2) {
		struct hsp_rpc_status st = {0};
		ProtobufCMessage *m = NULL;
		int r = hsp_rpc_unary(ch, "/hsp.v1.NodeAgent/Join", &req->base,
				      &hsp__v1__join_response__descriptor, NULL, 0,
				      JOIN_DEADLINE_MS, &m, &st, err);
		if (r < 0)
			return r;
		if (st.code == GRPC_STATUS_OK) {
			*resp = (Hsp__V1__JoinResponse *)m;
			hsp_rpc_status_clear(&st);
			return 0;
		}
		/* Only "not reachable" is worth another try: any other answer
		 * is the controller's decision (and the token may be spent). */
		if (st.code != GRPC_STATUS_UNAVAILABLE || hsp_rpc_now_ms() + delay > until) {
			r = hsp_make_error(err, EACCES, "join refused by %s: %s: %s",
					   a->c.controller, pb_code_name(st.code),
					   st.message ? st.message : "");
			hsp_rpc_status_clear(&st);
			return r;
		}
		agent_log("join: %s: UNAVAILABLE: %s; retrying", a->c.controller,
			  st.message ? st.message : "");
		hsp_rpc_status_clear(&st);
		if (!backoff_sleep(delay))
			return hsp_make_error(err, EINTR, "join interrupted");
	}
}

static char *bytes_str(const ProtobufCBinaryData *b)
{
	return b->len ? strndup((const char *)b->data, b->len) : NULL;
}

/* What came back is for us: a certificate for our name and our key
 * (saved with another key it would leave the node joined but unable to
 * open a session). */
static int check_cert(const char *cert, const char *name, const char *key, hsp_error_t *err)
{
	cleanup_free char *cn = NULL;
	if (cert == NULL)
		return hsp_make_error(err, EPROTO, "join: the controller sent no certificate");
	int r = hsp_pki_cert_cn(cert, &cn, err);
	if (r < 0)
		return hsp_error_wrap(err, "join: certificate");
	if (strcmp(cn, name) != 0)
		return hsp_make_error(err, EPROTO, "join: certificate is for `%s`, not `%s`", cn,
				      name);
	char cert_id[65], key_id[65];
	r = hsp_pki_cert_key_id(cert, cert_id, err);
	if (r == 0)
		r = hsp_pki_key_id(key, key_id, err);
	if (r < 0)
		return hsp_error_wrap(err, "join: certificate");
	if (strcmp(cert_id, key_id) != 0)
		return hsp_make_error(err, EPROTO, "join: certificate is not for this node's key");
	return 0;
}

static int save_response(struct agent *a, Hsp__V1__JoinResponse *resp, const char *pinned_ca,
			 const char *key, hsp_error_t *err)
{
	cleanup_free char *cert = bytes_str(&resp->cert_pem);
	cleanup_free char *ca = bytes_str(&resp->ca_pem);
	int r = check_cert(cert, a->c.name, key, err);
	if (r < 0)
		return r;
	/* The response came over TLS verified by the pinned CA, so its CA
	 * (the same, or a chain) is as trustworthy. */
	return state_save_join(a->c.state_dir, ca ? ca : pinned_ca, cert, resp->config, err);
}

static int join_with(struct agent *a, const char *ca, const char *key, const char *csr,
		     int64_t until, hsp_error_t *err)
{
	struct hsp_rpc_creds creds = {.kind = HSP_RPC_TLS, .ca_pem = ca};
	struct hsp_rpc_channel_opts opts = {.min_reconnect_ms = 100, .max_reconnect_ms = 1000};
	hsp_rpc_channel_t *ch = NULL;
	int r = hsp_rpc_channel_new(a->c.controller, &creds, &opts, &ch, err);
	if (r < 0)
		return r;
	Hsp__V1__JoinRequest req = HSP__V1__JOIN_REQUEST__INIT;
	req.token = a->c.token;
	req.node_name = a->c.name;
	req.csr_pem = (ProtobufCBinaryData){.len = strlen(csr), .data = (uint8_t *)csr};
	req.address = a->c.address ? a->c.address : (char *)protobuf_c_empty_string;
	req.agent_version = AGENT_VERSION;
	report_capacity(&a->c, &req.capacity);
	Hsp__V1__JoinResponse *resp = NULL;
	r = join_call(a, ch, &req, until, &resp, err);
	if (r == 0)
		r = save_response(a, resp, ca, key, err);
	pb_free(resp);
	pb_free(req.capacity);
	hsp_rpc_channel_free(ch);
	return r;
}

/* The key of a join that did not finish (its answer lost, or this
 * process stopped before saving it) is used again: the controller answers
 * its spent token again for that key only.  A new key is saved before it
 * is sent for. */
static int node_key(struct agent *a, char **key, char **csr, hsp_error_t *err)
{
	const char *dir = a->c.state_dir;
	int r = state_load_key(dir, key, err);
	if (r == 0) {
		agent_log("join: using the key left in %s by a join that did not finish", dir);
		r = hsp_pki_csr_for_key(a->c.name, *key, csr, err);
		return r < 0 ? hsp_error_wrap(err, "%s/node.key", dir) : 0;
	}
	if (r != -ENOENT)
		return r;
	hsp_error_release(err);
	r = hsp_pki_csr_create(a->c.name, key, csr, err);
	return r < 0 ? r : state_save_key(dir, *key, err);
}

int join_cluster(struct agent *a, hsp_error_t *err)
{
	char fp[65];
	int r = token_fingerprint(a->c.token, fp, err);
	if (r < 0)
		return r;
	agent_log("join: joining %s as %s", a->c.controller, a->c.name);
	int64_t until = hsp_rpc_now_ms() + JOIN_RETRY_MS;
	cleanup_free char *ca = NULL;
	cleanup_free char *key = NULL;
	cleanup_free char *csr = NULL;
	r = fetch_ca(a, fp, until, &ca, err);
	if (r == 0)
		r = node_key(a, &key, &csr, err);
	if (r == 0)
		r = join_with(a, ca, key, csr, until, err);
	if (key)
		explicit_bzero(key, strlen(key));
	if (r == 0)
		agent_log("join: joined; certificate saved in %s", a->c.state_dir);
	return r;
}
