/* Certificates, CSRs, tokens and the pinned CA fetch. */
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "pki.h"
#include "utils.h"

static const char *const server_sans[] = {"DNS:ctl.example", "DNS:localhost", "IP:10.0.0.1",
					  "IP:::1"};

struct ca {
	char *cert, *key, fp[65];
};

static void ca_new(struct ca *ca)
{
	hsp_error_t err = NULL;
	ck_assert_msg(hsp_pki_ca_create("hsp test CA", &ca->cert, &ca->key, &err) == 0, "%s",
		      err ? err->msg : "");
	ck_assert_int_eq(hsp_pki_fingerprint(ca->cert, ca->fp, &err), 0);
}

static void ca_free(struct ca *ca)
{
	free(ca->cert);
	free(ca->key);
}

static void issue_server(struct ca *ca, char **cert, char **key)
{
	hsp_error_t err = NULL;
	int r = hsp_pki_issue(ca->cert, ca->key, "ctl", server_sans, 4, 30, cert, key, &err);
	ck_assert_msg(r == 0, "%s", err ? err->msg : "");
}

static X509 *pem_x509(const char *pem)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	X509 *c = PEM_read_bio_X509(b, NULL, NULL, NULL);
	BIO_free(b);
	ck_assert_ptr_nonnull(c);
	return c;
}

/* X509_verify_cert of leaf against a store holding only ca, for purpose. */
static int verify_chain(const char *ca_pem, const char *leaf_pem, int purpose)
{
	X509 *ca = pem_x509(ca_pem), *leaf = pem_x509(leaf_pem);
	X509_STORE *store = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	ck_assert_int_eq(X509_STORE_add_cert(store, ca), 1);
	ck_assert_int_eq(X509_STORE_CTX_init(ctx, store, leaf, NULL), 1);
	X509_STORE_CTX_set_purpose(ctx, purpose);
	int ok = X509_verify_cert(ctx);
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	X509_free(ca);
	X509_free(leaf);
	return ok;
}

static bool is_lower_hex(const char *s, size_t n)
{
	return strlen(s) == n && strspn(s, "0123456789abcdef") == n;
}

START_TEST(ca_fingerprint)
{
	struct ca ca;
	ca_new(&ca);
	hsp_error_t err = NULL;
	char fp[65];
	ck_assert(is_lower_hex(ca.fp, 64));
	ck_assert_int_eq(hsp_pki_fingerprint(ca.cert, fp, &err), 0);
	ck_assert_str_eq(fp, ca.fp);

	X509 *c = pem_x509(ca.cert);
	ck_assert_int_eq(X509_check_ca(c), 1);
	ck_assert_int_eq(X509_check_issued(c, c), X509_V_OK);
	X509_free(c);
	ck_assert_int_eq(verify_chain(ca.cert, ca.cert, X509_PURPOSE_ANY), 1);

	char *cn = NULL;
	ck_assert_int_eq(hsp_pki_cert_cn(ca.cert, &cn, &err), 0);
	ck_assert_str_eq(cn, "hsp test CA");
	free(cn);

	ck_assert_int_eq(hsp_pki_fingerprint("junk", fp, &err), -EINVAL);
	ck_assert_ptr_nonnull(err);
	hsp_error_release(&err);
	char *x = NULL, *y = NULL;
	ck_assert_int_eq(hsp_pki_ca_create("", &x, &y, &err), -EINVAL);
	hsp_error_release(&err);
	ck_assert_ptr_null(x);
	ca_free(&ca);
}
END_TEST

START_TEST(issue_server_cert)
{
	struct ca ca;
	ca_new(&ca);
	char *cert = NULL, *key = NULL;
	issue_server(&ca, &cert, &key);
	ck_assert_ptr_nonnull(strstr(key, "PRIVATE KEY"));

	ck_assert_int_eq(verify_chain(ca.cert, cert, X509_PURPOSE_SSL_SERVER), 1);
	ck_assert_int_eq(verify_chain(ca.cert, cert, X509_PURPOSE_SSL_CLIENT), 1);
	X509 *c = pem_x509(cert);
	ck_assert_int_eq(X509_check_host(c, "ctl.example", 0, 0, NULL), 1);
	ck_assert_int_eq(X509_check_host(c, "other.example", 0, 0, NULL), 0);
	ck_assert_int_eq(X509_check_ip_asc(c, "10.0.0.1", 0), 1);
	ck_assert_int_eq(X509_check_ip_asc(c, "::1", 0), 1);
	ck_assert_int_eq(X509_check_ip_asc(c, "10.0.0.2", 0), 0);
	ck_assert_int_eq(X509_check_ca(c), 0);
	X509_free(c);

	/* The key matches the certificate. */
	BIO *b = BIO_new_mem_buf(key, -1);
	EVP_PKEY *k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
	c = pem_x509(cert);
	ck_assert_int_eq(X509_check_private_key(c, k), 1);
	X509_free(c);
	EVP_PKEY_free(k);
	BIO_free(b);

	char *cn = NULL;
	hsp_error_t err = NULL;
	ck_assert_int_eq(hsp_pki_cert_cn(cert, &cn, &err), 0);
	ck_assert_str_eq(cn, "ctl");
	free(cn);
	free(cert);
	free(key);
	ca_free(&ca);
}
END_TEST

START_TEST(issue_rejects)
{
	struct ca ca, other;
	ca_new(&ca);
	ca_new(&other);
	hsp_error_t err = NULL;
	char *cert = NULL, *key = NULL;
	const char *bad_sans[][1] = {
	    {"ctl.example"}, {"DNS:"}, {"IP:300.1.1.1"}, {"DNS:a,email:x@y"}, {"DNS:a b"}};
	for (size_t i = 0; i < sizeof(bad_sans) / sizeof(bad_sans[0]); i++) {
		int r = hsp_pki_issue(ca.cert, ca.key, "x", bad_sans[i], 1, 1, &cert, &key, &err);
		ck_assert_msg(r == -EINVAL, "`%s` accepted", bad_sans[i][0]);
		ck_assert_ptr_nonnull(err);
		hsp_error_release(&err);
	}
	/* Mismatched CA key, a leaf as CA, zero days. */
	ck_assert_int_eq(hsp_pki_issue(ca.cert, other.key, "x", NULL, 0, 1, &cert, &key, &err),
			 -EINVAL);
	hsp_error_release(&err);
	char *leaf = NULL, *leaf_key = NULL;
	issue_server(&ca, &leaf, &leaf_key);
	ck_assert_int_eq(hsp_pki_issue(leaf, leaf_key, "x", NULL, 0, 1, &cert, &key, &err),
			 -EINVAL);
	hsp_error_release(&err);
	ck_assert_int_eq(hsp_pki_issue(ca.cert, ca.key, "x", NULL, 0, 0, &cert, &key, &err),
			 -EINVAL);
	hsp_error_release(&err);
	ck_assert_ptr_null(cert);
	ck_assert_ptr_null(key);
	free(leaf);
	free(leaf_key);
	ca_free(&ca);
	ca_free(&other);
}
END_TEST

START_TEST(csr_sign_ok)
{
	struct ca ca;
	ca_new(&ca);
	hsp_error_t err = NULL;
	char *key = NULL, *csr = NULL, *cert = NULL, *cert2 = NULL;
	ck_assert_int_eq(hsp_pki_csr_create("node-1", &key, &csr, &err), 0);
	ck_assert_ptr_nonnull(strstr(csr, "CERTIFICATE REQUEST"));
	int r = hsp_pki_csr_sign(ca.cert, ca.key, csr, "node-1", 365, &cert, &err);
	ck_assert_msg(r == 0, "%s", err ? err->msg : "");
	ck_assert_int_eq(hsp_pki_csr_sign(ca.cert, ca.key, csr, "node-1", 365, &cert2, &err), 0);

	ck_assert_int_eq(verify_chain(ca.cert, cert, X509_PURPOSE_SSL_CLIENT), 1);
	ck_assert_int_eq(verify_chain(ca.cert, cert, X509_PURPOSE_SSL_SERVER), 0);
	X509 *c = pem_x509(cert), *c2 = pem_x509(cert2);
	ck_assert_int_eq(X509_check_host(c, "node-1", 0, 0, NULL), 1);
	ck_assert_int_ne(ASN1_INTEGER_cmp(X509_get0_serialNumber(c), X509_get0_serialNumber(c2)),
			 0);
	BIO *b = BIO_new_mem_buf(key, -1);
	EVP_PKEY *k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
	ck_assert_int_eq(X509_check_private_key(c, k), 1);
	EVP_PKEY_free(k);
	BIO_free(b);
	X509_free(c);
	X509_free(c2);

	char *cn = NULL;
	ck_assert_int_eq(hsp_pki_cert_cn(cert, &cn, &err), 0);
	ck_assert_str_eq(cn, "node-1");
	free(cn);
	free(cert);
	free(cert2);
	free(key);
	free(csr);
	ca_free(&ca);
}
END_TEST

/* The CSR's DER with the last byte (inside the signature) flipped. */
static char *break_signature(const char *csr)
{
	BIO *in = BIO_new_mem_buf(csr, -1);
	X509_REQ *req = PEM_read_bio_X509_REQ(in, NULL, NULL, NULL);
	ck_assert_ptr_nonnull(req);
	unsigned char *der = NULL;
	int n = i2d_X509_REQ(req, &der);
	ck_assert_int_gt(n, 0);
	der[n - 1] ^= 0x01;
	BIO *out = BIO_new(BIO_s_mem());
	ck_assert_int_gt(PEM_write_bio(out, "CERTIFICATE REQUEST", "", der, n), 0);
	char *data = NULL;
	long len = BIO_get_mem_data(out, &data);
	char *s = strndup(data, len);
	BIO_free(out);
	BIO_free(in);
	OPENSSL_free(der);
	X509_REQ_free(req);
	return s;
}

START_TEST(csr_sign_rejects)
{
	struct ca ca;
	ca_new(&ca);
	hsp_error_t err = NULL;
	char *key = NULL, *csr = NULL, *cert = NULL;
	ck_assert_int_eq(hsp_pki_csr_create("node-1", &key, &csr, &err), 0);

	ck_assert_int_eq(hsp_pki_csr_sign(ca.cert, ca.key, csr, "node-2", 365, &cert, &err),
			 -EPERM);
	ck_assert_ptr_nonnull(err);
	hsp_error_release(&err);
	ck_assert_int_eq(hsp_pki_csr_sign(ca.cert, ca.key, csr, "node", 365, &cert, &err), -EPERM);
	hsp_error_release(&err);

	ck_assert_int_eq(hsp_pki_csr_sign(ca.cert, ca.key, "garbage", "node-1", 365, &cert, &err),
			 -EINVAL);
	hsp_error_release(&err);
	ck_assert_int_eq(hsp_pki_csr_sign(ca.cert, ca.key, ca.cert, "node-1", 365, &cert, &err),
			 -EINVAL);
	hsp_error_release(&err);

	char *broken = break_signature(csr);
	ck_assert_int_eq(hsp_pki_csr_sign(ca.cert, ca.key, broken, "node-1", 365, &cert, &err),
			 -EINVAL);
	ck_assert_ptr_nonnull(strstr(err->msg, "signature"));
	hsp_error_release(&err);
	ck_assert_ptr_null(cert);

	free(broken);
	free(key);
	free(csr);
	ca_free(&ca);
}
END_TEST

/* A retried join: the same key makes a new CSR, and the key's id is the
 * same from the key, every CSR for it and the certificate signed from one;
 * another key's differs. */
START_TEST(key_ids)
{
	struct ca ca;
	ca_new(&ca);
	hsp_error_t err = NULL;
	char *key = NULL, *csr = NULL, *csr2 = NULL, *cert = NULL, *key3 = NULL, *csr3 = NULL;
	ck_assert_int_eq(hsp_pki_csr_create("node-1", &key, &csr, &err), 0);
	ck_assert_int_eq(hsp_pki_csr_for_key("node-1", key, &csr2, &err), 0);
	ck_assert_str_ne(csr, csr2);
	ck_assert_int_eq(hsp_pki_csr_sign(ca.cert, ca.key, csr2, "node-1", 365, &cert, &err), 0);
	char k[65], c1[65], c2[65], crt[65], other[65];
	ck_assert_int_eq(hsp_pki_key_id(key, k, &err), 0);
	ck_assert_int_eq(hsp_pki_csr_key_id(csr, "node-1", c1, &err), 0);
	ck_assert_int_eq(hsp_pki_csr_key_id(csr2, "node-1", c2, &err), 0);
	ck_assert_int_eq(hsp_pki_cert_key_id(cert, crt, &err), 0);
	ck_assert_int_eq(strlen(k), 64);
	ck_assert_str_eq(k, c1);
	ck_assert_str_eq(k, c2);
	ck_assert_str_eq(k, crt);
	ck_assert_int_eq(hsp_pki_csr_create("node-1", &key3, &csr3, &err), 0);
	ck_assert_int_eq(hsp_pki_csr_key_id(csr3, "node-1", other, &err), 0);
	ck_assert_str_ne(k, other);

	/* checked as hsp_pki_csr_sign checks */
	ck_assert_int_eq(hsp_pki_csr_key_id(csr, "node-2", c1, &err), -EPERM);
	hsp_error_release(&err);
	char *broken = break_signature(csr);
	ck_assert_int_eq(hsp_pki_csr_key_id(broken, "node-1", c1, &err), -EINVAL);
	hsp_error_release(&err);
	ck_assert_int_eq(hsp_pki_csr_for_key("node-1", "garbage", &csr3, &err), -EINVAL);
	hsp_error_release(&err);
	ck_assert_int_eq(hsp_pki_key_id(cert, k, &err), -EINVAL);
	hsp_error_release(&err);

	free(broken);
	free(key);
	free(csr);
	free(csr2);
	free(cert);
	free(key3);
	free(csr3);
	ca_free(&ca);
}
END_TEST

START_TEST(tokens)
{
	hsp_error_t err = NULL;
	char *a = NULL, *b = NULL;
	ck_assert_int_eq(hsp_random_hex(16, &a, &err), 0);
	ck_assert_int_eq(hsp_random_hex(16, &b, &err), 0);
	ck_assert(is_lower_hex(a, 32));
	ck_assert(is_lower_hex(b, 32));
	ck_assert_str_ne(a, b);
	free(b);
	ck_assert_int_eq(hsp_random_hex(1, &b, &err), 0);
	ck_assert(is_lower_hex(b, 2));
	free(b);

	char h[65];
	hsp_sha256_hex("abc", h);
	ck_assert_str_eq(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	hsp_sha256_hex("", h);
	ck_assert_str_eq(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");

	ck_assert(hsp_const_eq(a, a));
	char *copy = strdup(a);
	ck_assert(hsp_const_eq(a, copy));
	copy[31] = copy[31] == '0' ? '1' : '0';
	ck_assert(!hsp_const_eq(a, copy));
	copy[31] = '\0';
	ck_assert(!hsp_const_eq(a, copy));
	ck_assert(!hsp_const_eq(copy, a));
	ck_assert(hsp_const_eq("", ""));
	ck_assert(!hsp_const_eq(a, NULL));
	free(copy);
	free(a);
}
END_TEST

/* ---- a local TLS server like the controller's gRPC one ------------------- */

struct tls_server {
	int lfd;
	unsigned port;
	SSL_CTX *ctx; /* NULL: close every connection at once */
	pthread_t thread;
	int handshakes, h2;
};

/* Like a gRPC server: refuses clients that do not offer ALPN h2. */
static int alpn_h2(SSL *ssl, const unsigned char **out, unsigned char *outlen,
		   const unsigned char *in, unsigned int inlen, void *arg)
{
	static const unsigned char h2[] = "\x02h2";
	(void)ssl;
	(void)arg;
	if (SSL_select_next_proto((unsigned char **)out, outlen, h2, 3, in, inlen) !=
	    OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_ALERT_FATAL;
	return SSL_TLSEXT_ERR_OK;
}

/* The certificate PEM is the server certificate followed by the CA's. */
static SSL_CTX *server_ctx(const char *chain_pem, const char *key_pem)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	BIO *b = BIO_new_mem_buf(chain_pem, -1);
	X509 *c = PEM_read_bio_X509(b, NULL, NULL, NULL);
	ck_assert_int_eq(SSL_CTX_use_certificate(ctx, c), 1);
	X509_free(c);
	while ((c = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL)
		ck_assert_int_eq(SSL_CTX_add0_chain_cert(ctx, c), 1);
	ERR_clear_error();
	BIO_free(b);
	b = BIO_new_mem_buf(key_pem, -1);
	EVP_PKEY *k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
	ck_assert_int_eq(SSL_CTX_use_PrivateKey(ctx, k), 1);
	EVP_PKEY_free(k);
	BIO_free(b);
	SSL_CTX_set_alpn_select_cb(ctx, alpn_h2, NULL);
	return ctx;
}

static void serve_one(struct tls_server *s, int fd)
{
	SSL *ssl = SSL_new(s->ctx);
	SSL_set_fd(ssl, fd);
	if (SSL_accept(ssl) == 1) {
		const unsigned char *proto = NULL;
		unsigned int len = 0;
		SSL_get0_alpn_selected(ssl, &proto, &len);
		__atomic_add_fetch(&s->handshakes, 1, __ATOMIC_SEQ_CST);
		if (len == 2 && memcmp(proto, "h2", 2) == 0)
			__atomic_add_fetch(&s->h2, 1, __ATOMIC_SEQ_CST);
		SSL_shutdown(ssl);
	}
	SSL_free(ssl);
}

/* Until server_stop shuts the listening socket down. */
static void *serve(void *arg)
{
	struct tls_server *s = arg;
	int fd;
	while ((fd = accept(s->lfd, NULL, NULL)) >= 0) {
		if (s->ctx)
			serve_one(s, fd);
		close(fd);
	}
	return NULL;
}

/* Binds a loopback port; listens unless `backlog` < 0. */
static int loopback_socket(int family, int backlog, unsigned *port)
{
	struct sockaddr_storage ss = {0};
	socklen_t len;
	if (family == AF_INET6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
		a->sin6_family = AF_INET6;
		a->sin6_addr = in6addr_loopback;
		len = sizeof(*a);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;
		a->sin_family = AF_INET;
		a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		len = sizeof(*a);
	}
	int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&ss, len) < 0 ||
	    (backlog >= 0 && listen(fd, backlog) < 0) ||
	    getsockname(fd, (struct sockaddr *)&ss, &len) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	*port = ntohs(family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
					 : ((struct sockaddr_in *)&ss)->sin_port);
	return fd;
}

static bool server_start(struct tls_server *s, int family, SSL_CTX *ctx)
{
	memset(s, 0, sizeof(*s));
	s->lfd = loopback_socket(family, 16, &s->port);
	if (s->lfd < 0)
		return false;
	s->ctx = ctx;
	ck_assert_int_eq(pthread_create(&s->thread, NULL, serve, s), 0);
	return true;
}

static void server_stop(struct tls_server *s)
{
	/* Wakes the blocked accept() on Linux. */
	shutdown(s->lfd, SHUT_RDWR);
	pthread_join(s->thread, NULL);
	close(s->lfd);
}

struct fixture {
	struct ca ca;
	char *cert, *key, *chain, leaf_fp[65];
	SSL_CTX *ctx;
};

static void fixture_init(struct fixture *f)
{
	hsp_error_t err = NULL;
	ca_new(&f->ca);
	issue_server(&f->ca, &f->cert, &f->key);
	f->chain = hsp_strdup_printf("%s%s", f->cert, f->ca.cert);
	ck_assert_int_eq(hsp_pki_fingerprint(f->cert, f->leaf_fp, &err), 0);
	f->ctx = server_ctx(f->chain, f->key);
}

static void fixture_free(struct fixture *f)
{
	SSL_CTX_free(f->ctx);
	free(f->chain);
	free(f->cert);
	free(f->key);
	ca_free(&f->ca);
}

static int fetch(const char *host, unsigned port, const char *fp, unsigned ms, char **pem)
{
	hsp_error_t err = NULL;
	*pem = NULL;
	int r = hsp_pki_fetch_pinned(host, port, fp, ms, pem, &err);
	ck_assert_msg((r == 0) == (err == NULL), "r=%d err=%s", r, err ? err->msg : "");
	ck_assert_msg((r == 0) == (*pem != NULL), "r=%d", r);
	hsp_error_release(&err);
	return r;
}

START_TEST(fetch_pinned)
{
	struct fixture f;
	fixture_init(&f);
	struct tls_server s;
	ck_assert(server_start(&s, AF_INET, f.ctx));
	char *pem = NULL, fp[65];
	hsp_error_t err = NULL;

	ck_assert_int_eq(fetch("127.0.0.1", s.port, f.ca.fp, 5000, &pem), 0);
	ck_assert_str_eq(pem, f.ca.cert);
	ck_assert_int_eq(hsp_pki_fingerprint(pem, fp, &err), 0);
	ck_assert_str_eq(fp, f.ca.fp);
	free(pem);

	/* Any certificate of the chain may be pinned; case does not matter. */
	for (char *p = f.leaf_fp; *p; p++)
		*p = *p >= 'a' ? *p - 'a' + 'A' : *p;
	ck_assert_int_eq(fetch("localhost", s.port, f.leaf_fp, 5000, &pem), 0);
	ck_assert_str_eq(pem, f.cert);
	free(pem);

	char wrong[65];
	hsp_sha256_hex("not the CA", wrong);
	ck_assert_int_eq(fetch("127.0.0.1", s.port, wrong, 5000, &pem), -EPERM);
	ck_assert_int_eq(fetch("127.0.0.1", s.port, "abc", 5000, &pem), -EINVAL);

	/* The SIGPIPE guard leaves the caller's mask as it found it. */
	sigset_t mask;
	pthread_sigmask(SIG_SETMASK, NULL, &mask);
	ck_assert(!sigismember(&mask, SIGPIPE));

	server_stop(&s);
	ck_assert_int_eq(s.handshakes, 3);
	ck_assert_int_eq(s.h2, 3);
	fixture_free(&f);
}
END_TEST

START_TEST(fetch_ipv6)
{
	struct fixture f;
	fixture_init(&f);
	struct tls_server s;
	if (!server_start(&s, AF_INET6, f.ctx)) {
		fixture_free(&f);
		return; /* no IPv6 loopback here */
	}
	char *pem = NULL;
	ck_assert_int_eq(fetch("::1", s.port, f.ca.fp, 5000, &pem), 0);
	ck_assert_str_eq(pem, f.ca.cert);
	free(pem);
	ck_assert_int_eq(fetch("[::1]", s.port, f.ca.fp, 5000, &pem), 0);
	free(pem);
	server_stop(&s);
	fixture_free(&f);
}
END_TEST

START_TEST(fetch_failures)
{
	char fp[65], *pem = NULL;
	hsp_sha256_hex("x", fp);

	/* Bound, not listening: the port is reserved and refuses. */
	unsigned port;
	int closed = loopback_socket(AF_INET, -1, &port);
	ck_assert_int_ge(closed, 0);
	ck_assert_int_eq(fetch("127.0.0.1", port, fp, 2000, &pem), -ECONNREFUSED);
	close(closed);

	/* Listening, never answering: the kernel completes the TCP handshake,
	 * the TLS one never ends. */
	int mute = loopback_socket(AF_INET, 4, &port);
	ck_assert_int_ge(mute, 0);
	uint64_t t0 = hsp_now_ns();
	ck_assert_int_eq(fetch("127.0.0.1", port, fp, 500, &pem), -ETIMEDOUT);
	uint64_t ms = (hsp_now_ns() - t0) / 1000000;
	ck_assert_uint_ge(ms, 450);
	ck_assert_uint_lt(ms, 2000);
	close(mute);

	/* Accepts and hangs up at once. */
	struct tls_server s;
	ck_assert(server_start(&s, AF_INET, NULL));
	int r = fetch("127.0.0.1", s.port, fp, 2000, &pem);
	ck_assert_msg(r == -ECONNRESET, "r=%d", r);
	server_stop(&s);

	ck_assert_int_eq(fetch("127.0.0.1", 0, fp, 500, &pem), -EINVAL);
}
END_TEST

int main(void)
{
	/* The test server writes to clients that may have gone. */
	signal(SIGPIPE, SIG_IGN);
	Suite *s = suite_create("pki");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, ca_fingerprint);
	tcase_add_test(tc, issue_server_cert);
	tcase_add_test(tc, issue_rejects);
	tcase_add_test(tc, csr_sign_ok);
	tcase_add_test(tc, csr_sign_rejects);
	tcase_add_test(tc, key_ids);
	tcase_add_test(tc, tokens);
	tcase_add_test(tc, fetch_pinned);
	tcase_add_test(tc, fetch_ipv6);
	tcase_add_test(tc, fetch_failures);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
