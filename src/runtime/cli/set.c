#define _GNU_SOURCE
#include "cli.h"

#include <getopt.h>

int cmd_set(struct cli *g, int argc, char **argv)
{
	static const struct option opts[] = {CLI_LIMIT_OPTIONS, {NULL, 0, NULL, 0}};
	struct hsp_limits l = {0};
	hsp_error_t err = NULL;
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == '?')
			return cli_bad_option("set", argv);
		if (cli_parse_limit(c, optarg, &l, &err) < 0)
			return cli_fail(&err);
	}
	if (optind + 1 != argc)
		return cli_usage("set: expected exactly one VE name");
	if (l.set == 0)
		return cli_usage("set: give at least one limit");
	hsp_runtime_t *rt;
	if (cli_open(g, &rt))
		return 1;
	int r = hsp_ve_set(rt, argv[optind], &l, &err);
	hsp_runtime_close(rt);
	return r < 0 ? cli_fail(&err) : 0;
}
