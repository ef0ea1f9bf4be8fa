/* The cluster's certificates and tokens (OpenSSL 3).
 *
 * Keys are EC P-256; everything travels as PEM text (malloc'd strings the
 * caller frees).  0 or -errno with a one-line message in *err. */
#ifndef HSP_PKI_H
#define HSP_PKI_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

/* A self-signed CA (CA:TRUE, keyCertSign), valid ten years. */
int hsp_pki_ca_create(const char *cn, char **cert_pem, char **key_pem, hsp_error_t *err);

/* A new key and a certificate for it signed by the CA: CN cn,
 * subjectAltName from sans ("DNS:name" or "IP:1.2.3.4"), serverAuth and
 * clientAuth, valid `days`. */
int hsp_pki_issue(const char *ca_cert_pem, const char *ca_key_pem, const char *cn,
		  const char *const *sans, size_t n_sans, unsigned days, char **cert_pem,
		  char **key_pem, hsp_error_t *err);

/* A new key and a CSR with subject CN cn (what an agent sends at join). */
int hsp_pki_csr_create(const char *cn, char **key_pem, char **csr_pem, hsp_error_t *err);

/* A CSR with subject CN cn for an existing key (PEM): an agent asking
 * again with the key it already has. */
int hsp_pki_csr_for_key(const char *cn, const char *key_pem, char **csr_pem, hsp_error_t *err);

/* A public key's identity: lower-case hex SHA-256 of its
 * SubjectPublicKeyInfo DER (64 chars + NUL), the same whether taken from
 * a CSR, a certificate or the private key.  The CSR one checks the CSR as
 * hsp_pki_csr_sign does (self-signature, subject exactly CN=expected_cn)
 * and fails the same way. */
int hsp_pki_csr_key_id(const char *csr_pem, const char *expected_cn, char out[65],
		       hsp_error_t *err);
int hsp_pki_cert_key_id(const char *cert_pem, char out[65], hsp_error_t *err);
int hsp_pki_key_id(const char *key_pem, char out[65], hsp_error_t *err);

/* Signs a CSR after checking its self-signature and that its subject is
 * exactly CN=expected_cn (-EINVAL otherwise, -EPERM on a CN mismatch).
 * The certificate gets CN expected_cn, SAN DNS:expected_cn, clientAuth
 * only, a random serial, valid `days`. */
int hsp_pki_csr_sign(const char *ca_cert_pem, const char *ca_key_pem, const char *csr_pem,
		     const char *expected_cn, unsigned days, char **cert_pem, hsp_error_t *err);

/* Lower-case hex SHA-256 of the certificate's DER (64 chars + NUL). */
int hsp_pki_fingerprint(const char *cert_pem, char out[65], hsp_error_t *err);
/* The subject CN of a certificate. */
int hsp_pki_cert_cn(const char *cert_pem, char **cn, hsp_error_t *err);

/* Trust on first use, pinned: connects to host:port with TLS without
 * verifying, and returns (PEM) the certificate in the chain the server
 * presents whose fingerprint is `fingerprint` — the CA a join token names.
 * -EPERM when no certificate in the chain matches, -ETIMEDOUT after
 * timeout_ms, -ECONNREFUSED etc. from the connection. */
int hsp_pki_fetch_pinned(const char *host, unsigned port, const char *fingerprint,
			 unsigned timeout_ms, char **ca_pem, hsp_error_t *err);

/* Random lower-case hex of nbytes random bytes (RAND_bytes). */
int hsp_random_hex(size_t nbytes, char **out, hsp_error_t *err);
/* Lower-case hex SHA-256 of a string (token storage: tokens are 128-bit
 * random, so a plain hash is enough; no password hashing needed). */
void hsp_sha256_hex(const char *s, char out[65]);
/* Constant-time string equality (token checks). */
bool hsp_const_eq(const char *a, const char *b);

#endif
