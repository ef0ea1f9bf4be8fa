#define _GNU_SOURCE
#include "cli.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static json_object *snap_json(const struct hsp_snapshot_info *s)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "name", json_object_new_string(s->name));
	json_object_object_add(o, "created", json_object_new_int64(s->created));
	json_object_object_add(o, "size", json_object_new_uint64(s->size));
	return o;
}

static void print_table(const struct hsp_snapshot_info *v, int n)
{
	printf("%-24s %-20s %s\n", "NAME", "CREATED", "SIZE");
	for (int i = 0; i < n; i++) {
		char when[32], size[32];
		time_t t = (time_t)v[i].created;
		struct tm tm;
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", localtime_r(&t, &tm));
		cli_format_size(v[i].size, size, sizeof(size));
		printf("%-24s %-20s %s\n", v[i].name, when, size);
	}
}

static int snap_list(hsp_runtime_t *rt, const char *name, bool json)
{
	hsp_error_t err = NULL;
	struct hsp_snapshot_info *v = NULL;
	int n = hsp_ve_snapshot_list(rt, name, &v, &err);
	if (n < 0)
		return cli_fail(&err);
	if (json) {
		json_object *a = json_object_new_array();
		for (int i = 0; i < n; i++)
			json_object_array_add(a, snap_json(&v[i]));
		cli_print_json(a);
		json_object_put(a);
	} else {
		print_table(v, n);
	}
	hsp_snapshot_info_free(v, n);
	return 0;
}

/* create prints how long a running VE was frozen with --json. */
static int snap_run(hsp_runtime_t *rt, const char *verb, char **args, bool json)
{
	hsp_error_t err = NULL;
	uint64_t frozen_us = 0;
	int r;
	if (strcmp(verb, "create") == 0)
		r = hsp_ve_snapshot_create(rt, args[0], args[1], &frozen_us, &err);
	else if (strcmp(verb, "restore") == 0)
		r = hsp_ve_snapshot_restore(rt, args[0], args[1], &err);
	else
		r = hsp_ve_snapshot_delete(rt, args[0], args[1], &err);
	if (r < 0)
		return cli_fail(&err);
	if (json && strcmp(verb, "create") == 0)
		printf("{ \"name\": \"%s\", \"frozen_us\": %" PRIu64 " }\n", args[1], frozen_us);
	return 0;
}

int cmd_snapshot(struct cli *g, int argc, char **argv)
{
	static const struct option opts[] = {{"json", no_argument, NULL, 'j'}, {NULL, 0, NULL, 0}};
	bool json = false;
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c != 'j')
			return cli_bad_option("snapshot", argv);
		json = true;
	}
	int n = argc - optind;
	const char *verb = n > 0 ? argv[optind] : "";
	bool list = strcmp(verb, "list") == 0;
	bool known = list || strcmp(verb, "create") == 0 || strcmp(verb, "restore") == 0 ||
		     strcmp(verb, "delete") == 0;
	if (!known)
		return cli_usage("snapshot: expected create, list, restore or delete");
	if (list && n != 2)
		return cli_usage("snapshot list: expected a VE name");
	if (!list && n != 3)
		return cli_usage("snapshot %s: expected a VE name and a snapshot name", verb);
	hsp_runtime_t *rt;
	if (cli_open(g, &rt))
		return 1;
	int r = list ? snap_list(rt, argv[optind + 1], json)
		     : snap_run(rt, verb, argv + optind + 1, json);
	hsp_runtime_close(rt);
	return r;
}
