#define _GNU_SOURCE
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

static int pool_add(struct cli *g, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"type", required_argument, NULL, 't'},
	    {"path", required_argument, NULL, 'p'},
	    {"conf", required_argument, NULL, 'c'},
	    {"id", required_argument, NULL, 'i'},
	    {"keyring", required_argument, NULL, 'k'},
	    {"fs-path", required_argument, NULL, 'f'},
	    {NULL, 0, NULL, 0},
	};
	struct hsp_pool_spec s = {0};
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 't':
			s.type = optarg;
			break;
		case 'p':
			s.path = optarg;
			break;
		case 'c':
			s.conf = optarg;
			break;
		case 'i':
			s.id = optarg;
			break;
		case 'k':
			s.keyring = optarg;
			break;
		case 'f':
			s.fs_path = optarg;
			break;
		default:
			return cli_bad_option("pool add", argv);
		}
	}
	if (optind + 1 != argc)
		return cli_usage("pool add: expected exactly one pool name");
	if (s.type == NULL)
		return cli_usage("pool add: --type local|cephfs is required");
	s.name = argv[optind];
	hsp_runtime_t *rt;
	if (cli_open(g, &rt))
		return 1;
	hsp_error_t err = NULL;
	int r = hsp_pool_add(rt, &s, &err);
	hsp_runtime_close(rt);
	return r < 0 ? cli_fail(&err) : 0;
}

static json_object *pool_json(const struct hsp_pool_info *p)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "name", json_object_new_string(p->name));
	json_object_object_add(o, "type", json_object_new_string(p->type));
	json_object_object_add(o, "location", json_object_new_string(p->location));
	json_object_object_add(o, "online", json_object_new_boolean(p->online));
	if (p->online)
		json_object_object_add(o, "ves", json_object_new_int(p->ves));
	else
		json_object_object_add(o, "error", json_object_new_string(p->error));
	return o;
}

static int pool_list(struct cli *g, int argc, char **argv)
{
	static const struct option opts[] = {{"json", no_argument, NULL, 'j'}, {NULL, 0, NULL, 0}};
	bool json = false;
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c != 'j')
			return cli_bad_option("pool list", argv);
		json = true;
	}
	if (optind != argc)
		return cli_usage("pool list: no arguments expected");
	hsp_runtime_t *rt;
	if (cli_open(g, &rt))
		return 1;
	hsp_error_t err = NULL;
	struct hsp_pool_info *v = NULL;
	int n = hsp_pool_list(rt, &v, &err);
	hsp_runtime_close(rt);
	if (n < 0)
		return cli_fail(&err);
	json_object *arr = json_object_new_array();
	if (!json)
		printf("%-16s %-7s %-5s %s\n", "NAME", "TYPE", "VES", "LOCATION");
	for (int i = 0; i < n; i++) {
		if (json) {
			json_object_array_add(arr, pool_json(&v[i]));
			continue;
		}
		char ves[16];
		snprintf(ves, sizeof(ves), "%d", v[i].ves);
		printf("%-16s %-7s %-5s %s%s%s\n", v[i].name, v[i].type, v[i].online ? ves : "-",
		       v[i].location,
		       v[i].online ? "" : "  UNREACHABLE: ", v[i].online ? "" : v[i].error);
	}
	if (json)
		cli_print_json(arr);
	json_object_put(arr);
	hsp_pool_info_free(v, n);
	return 0;
}

static int pool_by_name(struct cli *g, int argc, char **argv,
			int (*fn)(hsp_runtime_t *, const char *, hsp_error_t *))
{
	if (argc != 2 || argv[1][0] == '-')
		return cli_usage("pool %s: expected exactly one pool name", argv[0]);
	hsp_runtime_t *rt;
	if (cli_open(g, &rt))
		return 1;
	hsp_error_t err = NULL;
	int r = fn(rt, argv[1], &err);
	hsp_runtime_close(rt);
	return r < 0 ? cli_fail(&err) : 0;
}

int cmd_pool(struct cli *g, int argc, char **argv)
{
	if (argc < 2)
		return cli_usage("pool: expected `add`, `list`, `remove`, `mount` or `unmount`");
	if (strcmp(argv[1], "add") == 0)
		return pool_add(g, argc - 1, argv + 1);
	if (strcmp(argv[1], "list") == 0)
		return pool_list(g, argc - 1, argv + 1);
	if (strcmp(argv[1], "remove") == 0)
		return pool_by_name(g, argc - 1, argv + 1, hsp_pool_remove);
	if (strcmp(argv[1], "unmount") == 0)
		return pool_by_name(g, argc - 1, argv + 1, hsp_pool_unmount);
	if (strcmp(argv[1], "mount") == 0)
		return pool_by_name(g, argc - 1, argv + 1, hsp_pool_mount);
	return cli_usage(
	    "pool: unknown verb `%s`: expected `add`, `list`, `remove`, `mount` or `unmount`",
	    argv[1]);
}
