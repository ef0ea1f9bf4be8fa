/* template: the Templates service. */
#define _GNU_SOURCE
#include "hspctl.h"
#include "utils.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "a,b,c" of a repeated string field. */
static char *join(char *const *v, size_t n)
{
	size_t len = 1;
	for (size_t i = 0; i < n; i++)
		len += strlen(v[i]) + 1;
	char *s = calloc(1, len);
	if (s == NULL)
		abort(); /* out of memory: nothing sensible to do */
	for (size_t i = 0; i < n; i++) {
		if (i)
			strcat(s, ",");
		strcat(s, v[i]);
	}
	return s;
}

static void template_table(const ProtobufCMessage *m)
{
	static const char *const head[] = {"NAME", "OS", "VERSION", "NODES"};
	const Hsp__V1__ListTemplatesResponse *r = (const Hsp__V1__ListTemplatesResponse *)m;
	struct ctl_table *t = ctl_table_new(4, head);
	for (size_t i = 0; i < r->n_templates; i++) {
		const Hsp__V1__Template *tp = r->templates[i];
		cleanup_free char *nodes = join(tp->nodes, tp->n_nodes);
		const char *row[] = {tp->name, tp->os, tp->version, nodes};
		ctl_table_add(t, row);
	}
	ctl_table_print(t, stdout);
	ctl_table_free(t);
}

static int template_list(struct ctl *g, int argc, char **argv)
{
	static const struct option opts[] = {CTL_COMMON_OPTIONS, {NULL, 0, NULL, 0}};
	Hsp__V1__Empty req = HSP__V1__EMPTY__INIT;
	int c, rc = 0;
	while ((c = ctl_getopt(g, argc, argv, CTL_COMMON_SHORT, opts, "template", &rc)) != -1)
		if (c == -2)
			return rc;
	rc = ctl_args(argc, 0, 0, "template", "list", "takes no arguments");
	if (rc)
		return rc;
	return ctl_query(g, "template list", "/hsp.v1.Templates/List", &req.base,
			 &hsp__v1__list_templates_response__descriptor, template_table);
}

int cmd_template(struct ctl *g, int argc, char **argv)
{
	static const struct ctl_subverb v[] = {{"list", template_list}};
	return ctl_dispatch(g, "template", v, sizeof(v) / sizeof(v[0]), argc, argv);
}
