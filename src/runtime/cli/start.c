#define _GNU_SOURCE
#include "cli.h"

#include <getopt.h>

int cmd_start(struct cli *g, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"rescue", no_argument, NULL, 'r'},
	    {NULL, 0, NULL, 0},
	};
	struct hsp_start_opts o = {0};
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c != 'r')
			return cli_bad_option("start", argv);
		o.rescue = true;
	}
	if (optind + 1 != argc)
		return cli_usage("start: expected exactly one VE name");
	hsp_runtime_t *rt;
	if (cli_open(g, &rt))
		return 1;
	hsp_error_t err = NULL;
	int r = hsp_ve_start_opts(rt, argv[optind], &o, &err);
	hsp_runtime_close(rt);
	return r < 0 ? cli_fail(&err) : 0;
}
