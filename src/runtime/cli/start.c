#define _GNU_SOURCE
#include "cli.h"

int cmd_start(struct cli *g, int argc, char **argv)
{
	if (argc != 2 || argv[1][0] == '-')
		return cli_usage("start: expected exactly one VE name");
	hsp_runtime_t *rt;
	if (cli_open(g, &rt))
		return 1;
	hsp_error_t err = NULL;
	int r = hsp_ve_start(rt, argv[1], &err);
	hsp_runtime_close(rt);
	return r < 0 ? cli_fail(&err) : 0;
}
