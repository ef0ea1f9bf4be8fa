/* Who is calling: the machine's root over the local socket, or the holder
 * of a bearer token over TLS.  Tokens are "hspt.<id>.<secret>"; only the
 * SHA-256 of the secret is stored, compared in constant time. */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "ctl.h"
#include "pki.h"

Hsp__V1__StoredToken *token_find(const char *id)
{
	for (size_t i = 0; i < ctl->n_tokens; i++)
		if (strcmp(ctl->tokens[i]->token->id, id) == 0)
			return ctl->tokens[i];
	return NULL;
}

/* Splits "<prefix>.<id>.<secret>[.<more>]": id copied, secret points into s
 * (up to the next '.' or the end; callers compare the whole rest). */
int token_parse(const char *s, const char *prefix, char *id, size_t idn, const char **secret)
{
	size_t pl = strlen(prefix);
	if (strncmp(s, prefix, pl) != 0 || s[pl] != '.')
		return -1;
	const char *p = s + pl + 1, *dot = strchr(p, '.');
	if (dot == NULL || dot == p || (size_t)(dot - p) >= idn)
		return -1;
	memcpy(id, p, (size_t)(dot - p));
	id[dot - p] = '\0';
	*secret = dot + 1;
	return **secret ? 0 : -1;
}

static bool token_live(const Hsp__V1__StoredToken *t)
{
	return t->token->expires_at == 0 || t->token->expires_at > now_unix();
}

int caller_identify(hsp_rpc_call_t *call, struct ctl_caller *who)
{
	memset(who, 0, sizeof(*who));
	if (strcmp(hsp_rpc_call_transport(call), "local") == 0) {
		who->role = ROLE_LOCAL;
		return 0;
	}
	const char *auth = hsp_rpc_call_metadata(call, "authorization");
	if (auth == NULL)
		return -1;
	if (strncasecmp(auth, "Bearer ", 7) != 0)
		return -1;
	char id[64];
	const char *secret;
	if (token_parse(auth + 7, "hspt", id, sizeof(id), &secret) < 0)
		return -1;
	Hsp__V1__StoredToken *t = token_find(id);
	char hash[65];
	hsp_sha256_hex(secret, hash);
	/* Hash compared even for an unknown id, so timing tells nothing. */
	bool ok = hsp_const_eq(
	    hash, t ? t->hash : "0000000000000000000000000000000000000000000000000000000000000000");
	if (!t || !ok || !token_live(t))
		return -1;
	switch (t->token->kind) {
	case HSP__V1__TOKEN_KIND__TOKEN_KIND_ADMIN:
		who->role = ROLE_ADMIN;
		break;
	case HSP__V1__TOKEN_KIND__TOKEN_KIND_TENANT:
		who->role = ROLE_TENANT;
		who->tenant = t->token->tenant;
		break;
	default:
		return -1; /* join tokens are for Join only */
	}
	who->token_id = t->token->id;
	return 0;
}

bool caller_is_admin(const struct ctl_caller *who)
{
	return who->role == ROLE_LOCAL || who->role == ROLE_ADMIN;
}

bool caller_sees_ve(const struct ctl_caller *who, const Hsp__V1__Ve *ve)
{
	if (caller_is_admin(who))
		return true;
	return who->role == ROLE_TENANT && strcmp(ve->tenant, who->tenant) == 0;
}

const char *caller_describe(const struct ctl_caller *who, char *buf, size_t n)
{
	switch (who->role) {
	case ROLE_LOCAL:
		return "local-root";
	case ROLE_ADMIN:
		snprintf(buf, n, "admin:%s", who->token_id);
		return buf;
	case ROLE_TENANT:
		snprintf(buf, n, "tenant:%s", who->tenant);
		return buf;
	default:
		return "nobody";
	}
}
