/* The cluster's certificates and tokens (see pki.h). */
#define _GNU_SOURCE
#include "pki.h"
#include "utils.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define CURVE "P-256"
#define CA_DAYS 3650
/* Bounds `days` so that notAfter stays representable everywhere. */
#define MAX_DAYS 36500
/* Certificates start an hour in the past: a fresh certificate must not be
 * "not yet valid" on a node whose clock lags the controller's. */
#define BACKDATE_SECS 3600
/* RFC 5280 ub-common-name. */
#define MAX_CN 64
#define MAX_DNS 253

/* ---- cleanup helpers ------------------------------------------------------ */

static void bio_freep(BIO **p)
{
	BIO_free(*p);
}
static void x509_freep(X509 **p)
{
	X509_free(*p);
}
static void req_freep(X509_REQ **p)
{
	X509_REQ_free(*p);
}
static void pkey_freep(EVP_PKEY **p)
{
	EVP_PKEY_free(*p);
}
static void names_freep(GENERAL_NAMES **p)
{
	GENERAL_NAMES_free(*p);
}
static void ssl_ctx_freep(SSL_CTX **p)
{
	SSL_CTX_free(*p);
}
static void ssl_freep(SSL **p)
{
	SSL_free(*p);
}
static void addrinfo_freep(struct addrinfo **p)
{
	if (*p)
		freeaddrinfo(*p);
}
static void opensslp(unsigned char **p)
{
	OPENSSL_free(*p);
}

#define cleanup_bio __attribute__((cleanup(bio_freep)))
#define cleanup_x509 __attribute__((cleanup(x509_freep)))
#define cleanup_req __attribute__((cleanup(req_freep)))
#define cleanup_pkey __attribute__((cleanup(pkey_freep)))
#define cleanup_names __attribute__((cleanup(names_freep)))
#define cleanup_ssl_ctx __attribute__((cleanup(ssl_ctx_freep)))
#define cleanup_ssl __attribute__((cleanup(ssl_freep)))
#define cleanup_addrinfo __attribute__((cleanup(addrinfo_freep)))
#define cleanup_openssl __attribute__((cleanup(opensslp)))

/* ---- small helpers -------------------------------------------------------- */

/* Appends OpenSSL's reason, if it queued one, and empties the queue so the
 * reason cannot be blamed on a later, unrelated failure. */
static int ssl_error(hsp_error_t *err, int status, const char *what)
{
	const char *reason = ERR_reason_error_string(ERR_peek_last_error());
	int r = reason ? hsp_make_error(err, status, "%s: %s", what, reason)
		       : hsp_make_error(err, status, "%s", what);
	ERR_clear_error();
	return r;
}

static void to_hex(const unsigned char *b, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[b[i] >> 4];
		out[2 * i + 1] = digits[b[i] & 0xf];
	}
	out[2 * n] = '\0';
}

static bool is_hex64(const char *s)
{
	size_t n = strspn(s, "0123456789abcdefABCDEF");
	return n == 64 && s[n] == '\0';
}

/* Library code must never prompt on a terminal for a PEM passphrase. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

static X509 *x509_from_pem(const char *pem)
{
	cleanup_bio BIO *b = BIO_new_mem_buf(pem, -1);
	return b ? PEM_read_bio_X509(b, NULL, no_passphrase, NULL) : NULL;
}

static EVP_PKEY *key_from_pem(const char *pem)
{
	cleanup_bio BIO *b = BIO_new_mem_buf(pem, -1);
	return b ? PEM_read_bio_PrivateKey(b, NULL, no_passphrase, NULL) : NULL;
}

static X509_REQ *req_from_pem(const char *pem)
{
	cleanup_bio BIO *b = BIO_new_mem_buf(pem, -1);
	return b ? PEM_read_bio_X509_REQ(b, NULL, no_passphrase, NULL) : NULL;
}

static char *bio_strdup(BIO *b)
{
	char *data = NULL;
	long n = BIO_get_mem_data(b, &data);
	return n >= 0 && data ? strndup(data, n) : NULL;
}

static char *x509_to_pem(X509 *cert)
{
	cleanup_bio BIO *b = BIO_new(BIO_s_mem());
	return b && PEM_write_bio_X509(b, cert) ? bio_strdup(b) : NULL;
}

static char *req_to_pem(X509_REQ *req)
{
	cleanup_bio BIO *b = BIO_new(BIO_s_mem());
	return b && PEM_write_bio_X509_REQ(b, req) ? bio_strdup(b) : NULL;
}

/* Unencrypted PKCS#8; the secure-heap BIO keeps the copy inside OpenSSL
 * out of swap and wipes it on free. */
static char *key_to_pem(EVP_PKEY *key)
{
	cleanup_bio BIO *b = BIO_new(BIO_s_secmem());
	return b && PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL) ? bio_strdup(b)
										: NULL;
}

static int x509_fingerprint(X509 *cert, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	if (!X509_digest(cert, EVP_sha256(), md, &len) || len != 32)
		return -EIO;
	to_hex(md, len, out);
	return 0;
}

/* Two PEM outputs appear together or not at all. */
static int export_two(char *a, char *b, char **out_a, char **out_b, hsp_error_t *err)
{
	if (a == NULL || b == NULL) {
		free(a);
		free(b);
		return ssl_error(err, ENOMEM, "encode PEM");
	}
	*out_a = a;
	*out_b = b;
	return 0;
}

/* ---- validation ----------------------------------------------------------- */

static int check_cn(const char *cn, hsp_error_t *err)
{
	size_t n = cn ? strlen(cn) : 0;
	if (n == 0 || n > MAX_CN)
		return hsp_make_error(err, EINVAL, "common name must be 1 to %d bytes", MAX_CN);
	for (size_t i = 0; i < n; i++)
		if (cn[i] < 0x20 || cn[i] > 0x7e)
			return hsp_make_error(err, EINVAL, "common name must be printable ASCII");
	return 0;
}

static int check_days(unsigned days, hsp_error_t *err)
{
	if (days == 0 || days > MAX_DAYS)
		return hsp_make_error(err, EINVAL, "validity must be 1 to %d days", MAX_DAYS);
	return 0;
}

/* A DNS SAN goes into an IA5String: printable ASCII without spaces. */
static bool dns_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > MAX_DNS)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] <= 0x20 || s[i] > 0x7e || s[i] == ',')
			return false;
	return true;
}

/* ---- certificate building ------------------------------------------------- */

struct ext {
	int nid;
	const char *value;
};

/* pathlen:0: the cluster CA signs only leaf certificates. */
static const struct ext ca_exts[] = {
    {NID_basic_constraints, "critical,CA:TRUE,pathlen:0"},
    {NID_key_usage, "critical,keyCertSign,cRLSign"},
    {NID_subject_key_identifier, "hash"},
    {NID_authority_key_identifier, "keyid:always"},
    {0, NULL},
};

static const struct ext peer_exts[] = {
    {NID_basic_constraints, "critical,CA:FALSE"},   {NID_key_usage, "critical,digitalSignature"},
    {NID_ext_key_usage, "serverAuth,clientAuth"},   {NID_subject_key_identifier, "hash"},
    {NID_authority_key_identifier, "keyid:always"}, {0, NULL},
};

static const struct ext client_exts[] = {
    {NID_basic_constraints, "critical,CA:FALSE"},
    {NID_key_usage, "critical,digitalSignature"},
    {NID_ext_key_usage, "clientAuth"},
    {NID_subject_key_identifier, "hash"},
    {NID_authority_key_identifier, "keyid:always"},
    {0, NULL},
};

static bool add_exts(X509 *cert, X509 *issuer, const struct ext *exts)
{
	for (; exts->nid; exts++) {
		X509V3_CTX ctx;
		X509V3_set_ctx_nodb(&ctx);
		X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
		X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, exts->nid, exts->value);
		bool ok = e && X509_add_ext(cert, e, -1);
		X509_EXTENSION_free(e);
		if (!ok)
			return false;
	}
	return true;
}

/* A random positive 127-bit serial: unique without keeping a counter. */
static bool set_serial(X509 *cert)
{
	BIGNUM *bn = BN_new();
	bool ok = bn && BN_rand(bn, 127, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ANY) &&
		  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)) != NULL;
	BN_free(bn);
	return ok;
}

static bool set_cn(X509_NAME *name, const char *cn)
{
	return X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
					  (const unsigned char *)cn, -1, -1, 0);
}

/* Everything but extensions and the signature; issuer NULL: self-signed. */
static X509 *cert_new(EVP_PKEY *key, const char *cn, X509 *issuer, unsigned days)
{
	X509 *c = X509_new();
	if (c == NULL)
		return NULL;
	X509_NAME *subject = X509_get_subject_name(c);
	bool ok = X509_set_version(c, X509_VERSION_3) && set_serial(c) && set_cn(subject, cn) &&
		  X509_set_issuer_name(c, issuer ? X509_get_subject_name(issuer) : subject) &&
		  X509_gmtime_adj(X509_getm_notBefore(c), -BACKDATE_SECS) &&
		  X509_time_adj_ex(X509_getm_notAfter(c), (int)days, 0, NULL) &&
		  X509_set_pubkey(c, key);
	if (!ok) {
		X509_free(c);
		return NULL;
	}
	return c;
}

static GENERAL_NAME *san_parse(const char *s)
{
	if (strncmp(s, "DNS:", 4) == 0 && dns_ok(s + 4))
		return a2i_GENERAL_NAME(NULL, NULL, NULL, GEN_DNS, s + 4, 0);
	if (strncmp(s, "IP:", 3) == 0)
		return a2i_GENERAL_NAME(NULL, NULL, NULL, GEN_IPADD, s + 3, 0);
	return NULL;
}

/* Built as GENERAL_NAMES rather than a config string, so a name cannot
 * smuggle in ",email:..." or other entries. */
static int add_san(X509 *cert, const char *const *sans, size_t n, hsp_error_t *err)
{
	if (n == 0)
		return 0;
	cleanup_names GENERAL_NAMES *names = sk_GENERAL_NAME_new_null();
	if (names == NULL)
		return hsp_make_error(err, ENOMEM, "subjectAltName: out of memory");
	for (size_t i = 0; i < n; i++) {
		GENERAL_NAME *gn = sans[i] ? san_parse(sans[i]) : NULL;
		if (gn == NULL) {
			ERR_clear_error();
			return hsp_make_error(err, EINVAL,
					      "subjectAltName `%s`: want DNS:name or IP:address",
					      sans[i] ? sans[i] : "(null)");
		}
		if (!sk_GENERAL_NAME_push(names, gn)) {
			GENERAL_NAME_free(gn);
			return hsp_make_error(err, ENOMEM, "subjectAltName: out of memory");
		}
	}
	if (X509_add1_ext_i2d(cert, NID_subject_alt_name, names, 0, X509V3_ADD_APPEND) != 1)
		return ssl_error(err, EIO, "add subjectAltName");
	return 0;
}

static int load_ca(const char *cert_pem, const char *key_pem, X509 **ca, EVP_PKEY **key,
		   hsp_error_t *err)
{
	cleanup_x509 X509 *c = cert_pem ? x509_from_pem(cert_pem) : NULL;
	if (c == NULL)
		return ssl_error(err, EINVAL, "CA certificate: not a PEM certificate");
	cleanup_pkey EVP_PKEY *k = key_pem ? key_from_pem(key_pem) : NULL;
	if (k == NULL)
		return ssl_error(err, EINVAL, "CA key: not a PEM private key");
	if (X509_check_ca(c) < 1)
		return hsp_make_error(err, EINVAL, "CA certificate: not a CA");
	if (X509_check_private_key(c, k) != 1)
		return ssl_error(err, EINVAL, "CA key does not match the CA certificate");
	*ca = steal_pointer(&c);
	*key = steal_pointer(&k);
	return 0;
}

static EVP_PKEY *new_key(void)
{
	return EVP_EC_gen(CURVE);
}

/* ---- CA and certificates -------------------------------------------------- */

int hsp_pki_ca_create(const char *cn, char **cert_pem, char **key_pem, hsp_error_t *err)
{
	int r = check_cn(cn, err);
	if (r < 0)
		return r;
	cleanup_pkey EVP_PKEY *key = new_key();
	if (key == NULL)
		return ssl_error(err, EIO, "generate CA key");
	cleanup_x509 X509 *cert = cert_new(key, cn, NULL, CA_DAYS);
	if (cert == NULL || !add_exts(cert, cert, ca_exts) || !X509_sign(cert, key, EVP_sha256()))
		return ssl_error(err, EIO, "build CA certificate");
	return export_two(x509_to_pem(cert), key_to_pem(key), cert_pem, key_pem, err);
}

int hsp_pki_issue(const char *ca_cert_pem, const char *ca_key_pem, const char *cn,
		  const char *const *sans, size_t n_sans, unsigned days, char **cert_pem,
		  char **key_pem, hsp_error_t *err)
{
	cleanup_x509 X509 *ca = NULL;
	cleanup_pkey EVP_PKEY *ca_key = NULL;
	int r = check_cn(cn, err);
	if (r == 0)
		r = check_days(days, err);
	if (r == 0)
		r = load_ca(ca_cert_pem, ca_key_pem, &ca, &ca_key, err);
	if (r < 0)
		return r;
	cleanup_pkey EVP_PKEY *key = new_key();
	if (key == NULL)
		return ssl_error(err, EIO, "generate key");
	cleanup_x509 X509 *cert = cert_new(key, cn, ca, days);
	if (cert == NULL || !add_exts(cert, ca, peer_exts))
		return ssl_error(err, EIO, "build certificate");
	r = add_san(cert, sans, n_sans, err);
	if (r < 0)
		return r;
	if (!X509_sign(cert, ca_key, EVP_sha256()))
		return ssl_error(err, EIO, "sign certificate");
	return export_two(x509_to_pem(cert), key_to_pem(key), cert_pem, key_pem, err);
}

static char *csr_build(EVP_PKEY *key, const char *cn)
{
	cleanup_req X509_REQ *req = X509_REQ_new();
	if (req == NULL || !X509_REQ_set_version(req, X509_REQ_VERSION_1) ||
	    !set_cn(X509_REQ_get_subject_name(req), cn) || !X509_REQ_set_pubkey(req, key) ||
	    !X509_REQ_sign(req, key, EVP_sha256()))
		return NULL;
	return req_to_pem(req);
}

int hsp_pki_csr_create(const char *cn, char **key_pem, char **csr_pem, hsp_error_t *err)
{
	int r = check_cn(cn, err);
	if (r < 0)
		return r;
	cleanup_pkey EVP_PKEY *key = new_key();
	if (key == NULL)
		return ssl_error(err, EIO, "generate key");
	char *csr = csr_build(key, cn);
	if (csr == NULL)
		return ssl_error(err, EIO, "build CSR");
	return export_two(key_to_pem(key), csr, key_pem, csr_pem, err);
}

int hsp_pki_csr_for_key(const char *cn, const char *key_pem, char **csr_pem, hsp_error_t *err)
{
	int r = check_cn(cn, err);
	if (r < 0)
		return r;
	cleanup_pkey EVP_PKEY *key = key_pem ? key_from_pem(key_pem) : NULL;
	if (key == NULL)
		return ssl_error(err, EINVAL, "not a PEM private key");
	char *csr = csr_build(key, cn);
	if (csr == NULL)
		return ssl_error(err, EIO, "build CSR");
	*csr_pem = csr;
	return 0;
}

/* Exactly one RDN, CN, byte-equal to `expected` (no embedded NUL tricks). */
static int check_subject(X509_NAME *name, const char *expected, hsp_error_t *err)
{
	if (X509_NAME_entry_count(name) != 1)
		return hsp_make_error(err, EINVAL, "CSR subject must be just CN=%s", expected);
	X509_NAME_ENTRY *e = X509_NAME_get_entry(name, 0);
	if (OBJ_obj2nid(X509_NAME_ENTRY_get_object(e)) != NID_commonName)
		return hsp_make_error(err, EINVAL, "CSR subject must be just CN=%s", expected);
	cleanup_openssl unsigned char *cn = NULL;
	int n = ASN1_STRING_to_UTF8(&cn, X509_NAME_ENTRY_get_data(e));
	if (n < 0)
		return ssl_error(err, EINVAL, "CSR subject: bad common name");
	if ((size_t)n != strlen(expected) || memcmp(cn, expected, n) != 0)
		return hsp_make_error(err, EPERM, "CSR is not for CN=%s", expected);
	return 0;
}

/* The CSR's self-signature proves possession of its key; 112 bits is the
 * NIST floor, which keeps out toy RSA keys. */
static int check_csr(X509_REQ *req, const char *expected_cn, hsp_error_t *err)
{
	EVP_PKEY *pub = X509_REQ_get0_pubkey(req);
	if (pub == NULL || X509_REQ_verify(req, pub) != 1)
		return ssl_error(err, EINVAL, "CSR signature does not verify");
	if (EVP_PKEY_get_security_bits(pub) < 112)
		return hsp_make_error(err, EINVAL, "CSR key is too weak");
	return check_subject(X509_REQ_get_subject_name(req), expected_cn, err);
}

/* The DER of the SubjectPublicKeyInfo, re-encoded from the parsed key, so
 * the same key hashes the same from a CSR or a certificate. */
static int pubkey_id(EVP_PKEY *pub, char out[65])
{
	cleanup_openssl unsigned char *der = NULL;
	int n = pub ? i2d_PUBKEY(pub, &der) : -1;
	unsigned char md[32];
	if (n <= 0 || !EVP_Digest(der, (size_t)n, md, NULL, EVP_sha256(), NULL))
		return -EIO;
	to_hex(md, sizeof(md), out);
	return 0;
}

static int load_csr(const char *csr_pem, const char *expected_cn, X509_REQ **out, hsp_error_t *err)
{
	X509_REQ *req = csr_pem ? req_from_pem(csr_pem) : NULL;
	if (req == NULL)
		return ssl_error(err, EINVAL, "CSR: not a PEM certificate request");
	int r = check_csr(req, expected_cn, err);
	if (r < 0) {
		X509_REQ_free(req);
		return r;
	}
	*out = req;
	return 0;
}

int hsp_pki_csr_key_id(const char *csr_pem, const char *expected_cn, char out[65], hsp_error_t *err)
{
	cleanup_req X509_REQ *req = NULL;
	int r = load_csr(csr_pem, expected_cn, &req, err);
	if (r == 0 && pubkey_id(X509_REQ_get0_pubkey(req), out) < 0)
		r = ssl_error(err, EIO, "CSR public key digest");
	return r;
}

int hsp_pki_cert_key_id(const char *cert_pem, char out[65], hsp_error_t *err)
{
	cleanup_x509 X509 *cert = cert_pem ? x509_from_pem(cert_pem) : NULL;
	if (cert == NULL)
		return ssl_error(err, EINVAL, "not a PEM certificate");
	if (pubkey_id(X509_get0_pubkey(cert), out) < 0)
		return ssl_error(err, EIO, "certificate public key digest");
	return 0;
}

int hsp_pki_key_id(const char *key_pem, char out[65], hsp_error_t *err)
{
	cleanup_pkey EVP_PKEY *key = key_pem ? key_from_pem(key_pem) : NULL;
	if (key == NULL)
		return ssl_error(err, EINVAL, "not a PEM private key");
	if (pubkey_id(key, out) < 0)
		return ssl_error(err, EIO, "public key digest");
	return 0;
}

int hsp_pki_csr_sign(const char *ca_cert_pem, const char *ca_key_pem, const char *csr_pem,
		     const char *expected_cn, unsigned days, char **cert_pem, hsp_error_t *err)
{
	cleanup_x509 X509 *ca = NULL;
	cleanup_pkey EVP_PKEY *ca_key = NULL;
	int r = check_cn(expected_cn, err);
	if (r == 0 && !dns_ok(expected_cn))
		r = hsp_make_error(err, EINVAL, "common name `%s` is not a DNS name", expected_cn);
	if (r == 0)
		r = check_days(days, err);
	if (r == 0)
		r = load_ca(ca_cert_pem, ca_key_pem, &ca, &ca_key, err);
	if (r < 0)
		return r;
	cleanup_req X509_REQ *req = NULL;
	r = load_csr(csr_pem, expected_cn, &req, err);
	if (r < 0)
		return r;

	cleanup_x509 X509 *cert = cert_new(X509_REQ_get0_pubkey(req), expected_cn, ca, days);
	if (cert == NULL || !add_exts(cert, ca, client_exts))
		return ssl_error(err, EIO, "build certificate");
	cleanup_free char *san = hsp_strdup_printf("DNS:%s", expected_cn);
	const char *sans[] = {san};
	r = san ? add_san(cert, sans, 1, err) : hsp_make_error(err, ENOMEM, "out of memory");
	if (r < 0)
		return r;
	if (!X509_sign(cert, ca_key, EVP_sha256()))
		return ssl_error(err, EIO, "sign certificate");
	char *pem = x509_to_pem(cert);
	if (pem == NULL)
		return ssl_error(err, ENOMEM, "encode PEM");
	*cert_pem = pem;
	return 0;
}

int hsp_pki_fingerprint(const char *cert_pem, char out[65], hsp_error_t *err)
{
	cleanup_x509 X509 *cert = cert_pem ? x509_from_pem(cert_pem) : NULL;
	if (cert == NULL)
		return ssl_error(err, EINVAL, "not a PEM certificate");
	if (x509_fingerprint(cert, out) < 0)
		return ssl_error(err, EIO, "certificate digest");
	return 0;
}

int hsp_pki_cert_cn(const char *cert_pem, char **cn, hsp_error_t *err)
{
	cleanup_x509 X509 *cert = cert_pem ? x509_from_pem(cert_pem) : NULL;
	if (cert == NULL)
		return ssl_error(err, EINVAL, "not a PEM certificate");
	X509_NAME *name = X509_get_subject_name(cert);
	int i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
	if (i < 0)
		return hsp_make_error(err, ENOENT, "certificate has no common name");
	cleanup_openssl unsigned char *utf8 = NULL;
	int n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i)));
	if (n < 0)
		return ssl_error(err, EINVAL, "certificate: bad common name");
	if (memchr(utf8, '\0', n) != NULL)
		return hsp_make_error(err, EINVAL, "certificate: NUL in common name");
	char *s = strndup((const char *)utf8, n);
	if (s == NULL)
		return hsp_make_errno(err, ENOMEM, "certificate common name");
	*cn = s;
	return 0;
}

/* ---- pinned fetch --------------------------------------------------------- */

/* Waits for `events` until the monotonic deadline. */
static int wait_fd(int fd, short events, uint64_t deadline)
{
	for (;;) {
		uint64_t now = hsp_now_ns();
		if (now >= deadline)
			return -ETIMEDOUT;
		int ms = (int)((deadline - now + 999999) / 1000000);
		struct pollfd p = {.fd = fd, .events = events};
		int n = poll(&p, 1, ms);
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return -errno;
	}
}

static int connect_one(const struct addrinfo *a, uint64_t deadline)
{
	cleanup_close int fd =
	    socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
	if (fd < 0)
		return -errno;
	if (connect(fd, a->ai_addr, a->ai_addrlen) < 0) {
		if (errno != EINPROGRESS)
			return -errno;
		int r = wait_fd(fd, POLLOUT, deadline);
		if (r < 0)
			return r;
		int soerr = 0;
		socklen_t len = sizeof(soerr);
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
			return -errno;
		if (soerr != 0)
			return -soerr;
	}
	return steal_fd(&fd);
}

/* Name resolution is not bounded by the deadline: getaddrinfo cannot be
 * interrupted. */
static int resolve(const char *host, unsigned port, struct addrinfo **res, hsp_error_t *err)
{
	char service[8];
	snprintf(service, sizeof(service), "%u", port);
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
	int r = getaddrinfo(host, service, &hints, res);
	if (r == 0)
		return 0;
	if (r == EAI_SYSTEM)
		return hsp_make_errno(err, errno, "resolve");
	return hsp_make_error(err, r == EAI_AGAIN ? EAGAIN : EHOSTUNREACH, "resolve: %s",
			      gai_strerror(r));
}

/* Tries each address in turn; a timeout ends the attempt, since the
 * deadline is shared. */
static int dial(const char *host, unsigned port, uint64_t deadline, hsp_error_t *err)
{
	cleanup_addrinfo struct addrinfo *res = NULL;
	int r = resolve(host, port, &res, err);
	if (r < 0)
		return r;
	r = -EHOSTUNREACH;
	for (struct addrinfo *a = res; a && r != -ETIMEDOUT; a = a->ai_next) {
		r = connect_one(a, deadline);
		if (r >= 0)
			return r;
	}
	return hsp_make_errno(err, -r, "connect");
}

/* The server is a gRPC server, which may refuse a client without ALPN h2. */
static SSL *tls_client(const char *host, int fd)
{
	static const unsigned char alpn[] = "\x02h2";
	cleanup_ssl_ctx SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	if (ctx == NULL || !SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) ||
	    SSL_CTX_set_alpn_protos(ctx, alpn, sizeof(alpn) - 1) != 0)
		return NULL;
	/* Trust comes from the fingerprint, not from a chain to a root. */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	cleanup_ssl SSL *ssl = SSL_new(ctx);
	if (ssl == NULL || !SSL_set_fd(ssl, fd))
		return NULL;
	unsigned char addr[sizeof(struct in6_addr)];
	bool literal = inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1;
	if (!literal && !SSL_set_tlsext_host_name(ssl, host))
		return NULL;
	SSL_set_connect_state(ssl);
	return steal_pointer(&ssl);
}

static int handshake_error(SSL *ssl, int ret, int saved_errno, hsp_error_t *err)
{
	int e = SSL_get_error(ssl, ret);
	if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)
		return saved_errno ? hsp_make_errno(err, saved_errno, "TLS handshake")
				   : hsp_make_error(err, ECONNRESET, "TLS handshake: peer closed");
	/* OpenSSL 3 reports a bare EOF as a protocol error. */
	unsigned long last = ERR_peek_last_error();
	if (e == SSL_ERROR_ZERO_RETURN ||
	    (ERR_GET_LIB(last) == ERR_LIB_SSL &&
	     ERR_GET_REASON(last) == SSL_R_UNEXPECTED_EOF_WHILE_READING)) {
		ERR_clear_error();
		return hsp_make_error(err, ECONNRESET, "TLS handshake: peer closed");
	}
	return ssl_error(err, EPROTO, "TLS handshake");
}

static int handshake(SSL *ssl, int fd, uint64_t deadline, hsp_error_t *err)
{
	for (;;) {
		ERR_clear_error();
		errno = 0;
		int ret = SSL_connect(ssl);
		if (ret == 1)
			return 0;
		int saved_errno = errno;
		int e = SSL_get_error(ssl, ret);
		if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
			return handshake_error(ssl, ret, saved_errno, err);
		int r = wait_fd(fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline);
		if (r == -ETIMEDOUT)
			return hsp_make_error(err, ETIMEDOUT, "TLS handshake: timed out");
		if (r < 0)
			return hsp_make_errno(err, -r, "TLS handshake");
	}
}

static int pick_pinned(SSL *ssl, const char *fingerprint, char **out, hsp_error_t *err)
{
	STACK_OF(X509) *chain = SSL_get_peer_cert_chain(ssl);
	for (int i = 0; chain && i < sk_X509_num(chain); i++) {
		X509 *c = sk_X509_value(chain, i);
		char fp[65];
		if (x509_fingerprint(c, fp) < 0 || strcasecmp(fp, fingerprint) != 0)
			continue;
		char *pem = x509_to_pem(c);
		if (pem == NULL)
			return ssl_error(err, ENOMEM, "encode PEM");
		*out = pem;
		return 0;
	}
	return hsp_make_error(err, EPERM, "no certificate in the server's chain has fingerprint %s",
			      fingerprint);
}

/* A peer that resets the connection must not kill the caller with
 * SIGPIPE, and a library may not change signal dispositions: SIGPIPE is
 * blocked in this thread and any instance we raised is consumed. */
struct sigpipe_guard {
	sigset_t old;
	bool was_pending;
};

static void sigpipe_block(struct sigpipe_guard *g)
{
	sigset_t set, pending;
	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, &g->old);
	g->was_pending = sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1;
}

static void sigpipe_restore(struct sigpipe_guard *g)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	const struct timespec zero = {0};
	int saved = errno;
	if (!g->was_pending)
		while (sigtimedwait(&set, NULL, &zero) < 0 && errno == EINTR)
			;
	pthread_sigmask(SIG_SETMASK, &g->old, NULL);
	errno = saved;
}

static int tls_fetch(const char *host, int fd, const char *fingerprint, uint64_t deadline,
		     char **ca_pem, hsp_error_t *err)
{
	cleanup_ssl SSL *ssl = tls_client(host, fd);
	if (ssl == NULL)
		return ssl_error(err, ENOMEM, "TLS setup");
	int r = handshake(ssl, fd, deadline, err);
	if (r < 0)
		return r;
	r = pick_pinned(ssl, fingerprint, ca_pem, err);
	/* Best effort close_notify; the socket is non-blocking. */
	SSL_shutdown(ssl);
	ERR_clear_error();
	return r;
}

/* Strips the brackets of "[::1]". */
static char *host_dup(const char *host)
{
	size_t n = strlen(host);
	if (n >= 2 && host[0] == '[' && host[n - 1] == ']')
		return strndup(host + 1, n - 2);
	return strdup(host);
}

int hsp_pki_fetch_pinned(const char *host, unsigned port, const char *fingerprint,
			 unsigned timeout_ms, char **ca_pem, hsp_error_t *err)
{
	if (host == NULL || *host == '\0' || port == 0 || port > 65535)
		return hsp_make_error(err, EINVAL, "fetch CA: bad address");
	if (fingerprint == NULL || !is_hex64(fingerprint))
		return hsp_make_error(err, EINVAL, "fetch CA: fingerprint must be 64 hex digits");
	if (timeout_ms == 0)
		return hsp_make_error(err, EINVAL, "fetch CA: timeout must be positive");
	cleanup_free char *name = host_dup(host);
	if (name == NULL)
		return hsp_make_errno(err, ENOMEM, "fetch CA");

	uint64_t deadline = hsp_now_ns() + (uint64_t)timeout_ms * 1000000;
	cleanup_close int fd = dial(name, port, deadline, err);
	int r = fd;
	if (fd >= 0) {
		struct sigpipe_guard g;
		sigpipe_block(&g);
		r = tls_fetch(name, fd, fingerprint, deadline, ca_pem, err);
		sigpipe_restore(&g);
	}
	if (r < 0)
		return hsp_error_wrap(err, "fetch CA from %s port %u", host, port);
	return 0;
}

/* ---- tokens --------------------------------------------------------------- */

int hsp_random_hex(size_t nbytes, char **out, hsp_error_t *err)
{
	if (nbytes == 0 || nbytes > 4096)
		return hsp_make_error(err, EINVAL, "random: want 1 to 4096 bytes");
	unsigned char buf[4096];
	cleanup_free char *s = malloc(2 * nbytes + 1);
	if (s == NULL)
		return hsp_make_errno(err, ENOMEM, "random");
	if (RAND_bytes(buf, (int)nbytes) != 1)
		return ssl_error(err, EIO, "random bytes");
	to_hex(buf, nbytes, s);
	OPENSSL_cleanse(buf, nbytes);
	*out = steal_pointer(&s);
	return 0;
}

void hsp_sha256_hex(const char *s, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	/* SHA-256 of memory cannot fail short of a broken libcrypto; an empty
	 * string then never equals a stored hash. */
	if (!EVP_Digest(s, strlen(s), md, &len, EVP_sha256(), NULL) || len != 32) {
		out[0] = '\0';
		return;
	}
	to_hex(md, len, out);
}

/* Only the length leaks, and token lengths are not secret. */
bool hsp_const_eq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return false;
	size_t n = strlen(a);
	return n == strlen(b) && CRYPTO_memcmp(a, b, n) == 0;
}
