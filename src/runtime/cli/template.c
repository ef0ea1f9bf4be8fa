#define _GNU_SOURCE
#include "cli.h"
#include "template.h"
#include "utils.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

static json_object *template_json(const struct hsp_template *t)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "name", json_object_new_string(t->name));
	json_object_object_add(o, "os", json_object_new_string(t->os ? t->os : ""));
	json_object_object_add(o, "version", json_object_new_string(t->version ? t->version : ""));
	json_object *init = json_object_new_array();
	for (char **p = t->init; p && *p; p++)
		json_object_array_add(init, json_object_new_string(*p));
	json_object_object_add(o, "init", init);
	json_object_object_add(o, "stop_signal",
			       json_object_new_string(t->stop_signal ? t->stop_signal : ""));
	return o;
}

static int template_list(struct cli *g, int argc, char **argv)
{
	static const struct option opts[] = {{"json", no_argument, NULL, 'j'},
					     {"pool", required_argument, NULL, 'P'},
					     {NULL, 0, NULL, 0}};
	bool json = false;
	const char *pool = NULL;
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'P')
			pool = optarg;
		else if (c == 'j')
			json = true;
		else
			return cli_bad_option("template list", argv);
	}
	hsp_runtime_t *rt;
	if (cli_open(g, &rt))
		return 1;
	hsp_error_t err = NULL;
	char **names = NULL;
	const char *root = NULL;
	int n = hsp_pool_dir(rt, pool, &root, &err);
	if (n == 0)
		n = hsp_template_list(root, &names, &err);
	if (n < 0) {
		hsp_runtime_close(rt);
		return cli_fail(&err);
	}
	json_object *arr = json_object_new_array();
	if (!json)
		printf("%-20s %-12s %-16s %s\n", "NAME", "OS", "VERSION", "INIT");
	for (int i = 0; i < n; i++) {
		struct hsp_template t = {0};
		if (hsp_template_resolve(root, names[i], &t, &err) < 0) {
			hsp_error_release(&err);
			continue;
		}
		if (json)
			json_object_array_add(arr, template_json(&t));
		else
			printf("%-20s %-12s %-16s %s\n", t.name, t.os ? t.os : "-",
			       t.version ? t.version : "-", t.init && t.init[0] ? t.init[0] : "-");
		hsp_template_clear(&t);
	}
	if (json)
		cli_print_json(arr);
	json_object_put(arr);
	hsp_strv_free(names);
	hsp_runtime_close(rt);
	return 0;
}

static int template_import(struct cli *g, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"os", required_argument, NULL, 'o'},   {"version", required_argument, NULL, 'v'},
	    {"init", required_argument, NULL, 'i'}, {"stop-signal", required_argument, NULL, 's'},
	    {"pool", required_argument, NULL, 'P'}, {NULL, 0, NULL, 0},
	};
	const char *os = NULL, *version = NULL, *sig = "SIGTERM", *pool = NULL;
	char *init[2] = {"/sbin/init", NULL};
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'o':
			os = optarg;
			break;
		case 'v':
			version = optarg;
			break;
		case 'i':
			init[0] = optarg;
			break;
		case 's':
			sig = optarg;
			break;
		case 'P':
			pool = optarg;
			break;
		default:
			return cli_bad_option("template import", argv);
		}
	}
	if (optind + 2 != argc)
		return cli_usage("template import: expected NAME SOURCE");
	hsp_error_t err = NULL;
	int signo;
	if (hsp_parse_signal(sig, &signo, &err) < 0)
		return cli_fail(&err);
	hsp_runtime_t *rt;
	if (cli_open(g, &rt))
		return 1;
	const char *dir = NULL;
	int r = hsp_pool_dir(rt, pool, &dir, &err);
	if (r == 0)
		r = hsp_template_import(dir, argv[optind], argv[optind + 1], os, version, init, sig,
					&err);
	hsp_runtime_close(rt);
	return r < 0 ? cli_fail(&err) : 0;
}

int cmd_template(struct cli *g, int argc, char **argv)
{
	if (argc < 2)
		return cli_usage("template: expected `list` or `import`");
	optind = 0;
	if (strcmp(argv[1], "list") == 0)
		return template_list(g, argc - 1, argv + 1);
	if (strcmp(argv[1], "import") == 0)
		return template_import(g, argc - 1, argv + 1);
	return cli_usage("template: unknown subcommand `%s`", argv[1]);
}
