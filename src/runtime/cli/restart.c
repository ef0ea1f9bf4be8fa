#define _GNU_SOURCE
#include "cli.h"

int cli_stop_args(int argc, char **argv, const char **name, unsigned *timeout);

int cmd_restart(struct cli *g, int argc, char **argv)
{
	const char *name;
	unsigned timeout;
	int r = cli_stop_args(argc, argv, &name, &timeout);
	if (r)
		return r;
	hsp_runtime_t *rt;
	if (cli_open(g, &rt))
		return 1;
	hsp_error_t err = NULL;
	r = hsp_ve_restart(rt, name, timeout, &err);
	hsp_runtime_close(rt);
	return r < 0 ? cli_fail(&err) : 0;
}
