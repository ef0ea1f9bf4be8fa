/* token: the Tokens service. */
#define _GNU_SOURCE
#include "hspctl.h"
#include "utils.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOKENS "/hsp.v1.Tokens/"

static void token_list_table(const ProtobufCMessage *m)
{
	static const char *const head[] = {"ID",      "KIND", "TENANT",	    "CREATED",
					   "EXPIRES", "USED", "DESCRIPTION"};
	const Hsp__V1__ListTokensResponse *r = (const Hsp__V1__ListTokensResponse *)m;
	struct ctl_table *t = ctl_table_new(7, head);
	for (size_t i = 0; i < r->n_tokens; i++) {
		const Hsp__V1__Token *tk = r->tokens[i];
		char kind[32], created[32], expires[32];
		ctl_fmt_enum(&hsp__v1__token_kind__descriptor, tk->kind, kind, sizeof(kind));
		ctl_fmt_time(tk->created_at, created, sizeof(created));
		ctl_fmt_time(tk->expires_at, expires, sizeof(expires));
		const char *row[] = {tk->id,	     kind,    tk->tenant,
				     created,	     expires, tk->used ? "yes" : "no",
				     tk->description};
		ctl_table_add(t, row);
	}
	ctl_table_print(t, stdout);
	ctl_table_free(t);
}

/* The secret alone, for TOKEN=$(hspctl token create ...). */
static void created_table(const ProtobufCMessage *m)
{
	const Hsp__V1__CreatedToken *c = (const Hsp__V1__CreatedToken *)m;
	cleanup_free char *secret = ctl_sanitize_dup(c->secret);
	printf("%s\n", secret);
}

static int parse_kind(const char *s, Hsp__V1__TokenKind *kind)
{
	if (strcmp(s, "admin") == 0)
		*kind = HSP__V1__TOKEN_KIND__TOKEN_KIND_ADMIN;
	else if (strcmp(s, "tenant") == 0)
		*kind = HSP__V1__TOKEN_KIND__TOKEN_KIND_TENANT;
	else if (strcmp(s, "join") == 0)
		*kind = HSP__V1__TOKEN_KIND__TOKEN_KIND_JOIN;
	else
		return ctl_usage("token",
				 "token create: invalid --kind `%s`: admin, tenant or join", s);
	return CTL_EXIT_OK;
}

static int token_create(struct ctl *g, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"kind", required_argument, NULL, 'k'},
	    {"tenant", required_argument, NULL, 'U'},
	    {"ttl", required_argument, NULL, 'L'},
	    {"description", required_argument, NULL, 'D'},
	    CTL_COMMON_OPTIONS,
	    {NULL, 0, NULL, 0},
	};
	Hsp__V1__CreateTokenRequest req = HSP__V1__CREATE_TOKEN_REQUEST__INIT;
	int c, rc = 0;
	while ((c = ctl_getopt(g, argc, argv, CTL_COMMON_SHORT, opts, "token", &rc)) != -1) {
		if (c == -2)
			return rc;
		if (c == 'k')
			rc = parse_kind(optarg, &req.kind);
		else if (c == 'L')
			rc = ctl_parse_duration(optarg, "--ttl", &req.ttl_seconds);
		else if (c == 'U')
			req.tenant = optarg;
		else
			req.description = optarg;
		if (rc)
			return rc;
	}
	rc = ctl_args(argc, 0, 0, "token", "create", "takes no arguments");
	if (rc)
		return rc;
	bool tenant = req.kind == HSP__V1__TOKEN_KIND__TOKEN_KIND_TENANT;
	if (req.kind == HSP__V1__TOKEN_KIND__TOKEN_KIND_UNSPECIFIED)
		return ctl_usage("token", "token create: --kind is required");
	if (tenant != (*req.tenant != '\0'))
		return ctl_usage("token",
				 "create: --tenant goes with --kind tenant, and only there");
	return ctl_query(g, "token create", TOKENS "Create", &req.base,
			 &hsp__v1__created_token__descriptor, created_table);
}

static int token_list(struct ctl *g, int argc, char **argv)
{
	static const struct option opts[] = {CTL_COMMON_OPTIONS, {NULL, 0, NULL, 0}};
	Hsp__V1__Empty req = HSP__V1__EMPTY__INIT;
	int c, rc = 0;
	while ((c = ctl_getopt(g, argc, argv, CTL_COMMON_SHORT, opts, "token", &rc)) != -1)
		if (c == -2)
			return rc;
	rc = ctl_args(argc, 0, 0, "token", "list", "takes no arguments");
	if (rc)
		return rc;
	return ctl_query(g, "token list", TOKENS "List", &req.base,
			 &hsp__v1__list_tokens_response__descriptor, token_list_table);
}

static int token_revoke(struct ctl *g, int argc, char **argv)
{
	static const struct option opts[] = {CTL_COMMON_OPTIONS, {NULL, 0, NULL, 0}};
	Hsp__V1__TokenRef ref = HSP__V1__TOKEN_REF__INIT;
	int c, rc = 0;
	while ((c = ctl_getopt(g, argc, argv, CTL_COMMON_SHORT, opts, "token", &rc)) != -1)
		if (c == -2)
			return rc;
	rc = ctl_args(argc, 1, 1, "token", "revoke", "expected exactly one token id");
	if (rc)
		return rc;
	ref.id = argv[optind];
	cleanup_free char *what = hsp_strdup_printf("token revoke %s", ref.id);
	return ctl_query(g, what, TOKENS "Revoke", &ref.base, &hsp__v1__empty__descriptor, NULL);
}

int cmd_token(struct ctl *g, int argc, char **argv)
{
	static const struct ctl_subverb v[] = {
	    {"create", token_create}, {"list", token_list}, {"revoke", token_revoke}};
	return ctl_dispatch(g, "token", v, sizeof(v) / sizeof(v[0]), argc, argv);
}
