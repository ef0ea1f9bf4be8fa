#define _GNU_SOURCE
#include "cli.h"
#include "utils.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>

static void print_row(const struct hsp_ve_info *i)
{
	char mem[32] = "-", pids[32] = "-", init[16] = "-";
	if (i->status != HSP_VE_STOPPED) {
		cli_format_size(i->usage.memory, mem, sizeof(mem));
		snprintf(pids, sizeof(pids), "%" PRIu64, i->usage.pids);
		snprintf(init, sizeof(init), "%d", i->init_pid);
	}
	/* A rescue VE runs, but not as itself: worth a glance in the table. */
	const char *status =
	    i->rescue && i->status == HSP_VE_RUNNING ? "rescue" : hsp_ve_status_name(i->status);
	printf("%-24s %-9s %-8s %-9s %-6s %s\n", i->name, status, init, mem, pids,
	       i->template ? i->template : "");
}

int cmd_list(struct cli *g, int argc, char **argv)
{
	static const struct option opts[] = {{"json", no_argument, NULL, 'j'}, {NULL, 0, NULL, 0}};
	bool json = false;
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c != 'j')
			return cli_bad_option("list", argv);
		json = true;
	}
	if (optind != argc)
		return cli_usage("list: takes no arguments");
	hsp_runtime_t *rt;
	if (cli_open(g, &rt))
		return 1;
	hsp_error_t err = NULL;
	char **names = NULL;
	int n = hsp_ve_list(rt, &names, &err);
	if (n < 0) {
		hsp_runtime_close(rt);
		return cli_fail(&err);
	}
	json_object *arr = json ? json_object_new_array() : NULL;
	if (!json)
		printf("%-24s %-9s %-8s %-9s %-6s %s\n", "NAME", "STATUS", "INIT", "MEMORY", "PIDS",
		       "TEMPLATE");
	int rc = 0;
	for (int k = 0; k < n; k++) {
		struct hsp_ve_info info;
		/* A VE destroyed meanwhile is simply not listed. */
		if (hsp_ve_info(rt, names[k], &info, &err) < 0) {
			hsp_error_release(&err);
			continue;
		}
		if (json)
			json_object_array_add(arr, cli_info_json(&info));
		else
			print_row(&info);
		hsp_ve_info_clear(&info);
	}
	if (json) {
		cli_print_json(arr);
		json_object_put(arr);
	}
	hsp_strv_free(names);
	hsp_runtime_close(rt);
	return rc;
}
