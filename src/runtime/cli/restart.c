#define _GNU_SOURCE
#include "cli.h"

int cli_stop_verb(struct cli *g, int argc, char **argv,
		  int (*fn)(hsp_runtime_t *, const char *, unsigned, hsp_error_t *));

int cmd_restart(struct cli *g, int argc, char **argv)
{
	return cli_stop_verb(g, argc, argv, hsp_ve_restart);
}
