#define _GNU_SOURCE
#include "cli.h"

int cli_exec_run(struct cli *g, const char *name, struct hsp_exec_opts *o);

int cmd_enter(struct cli *g, int argc, char **argv)
{
	if (argc != 2 || argv[1][0] == '-')
		return cli_usage("enter: expected exactly one VE name");
	/* A login shell, so the VE's profile sets up the session. */
	static char *const shell[] = {"/bin/sh", "-l", NULL};
	struct hsp_exec_opts o = {.argv = shell, .tty = true};
	return cli_exec_run(g, argv[1], &o);
}
