#define _GNU_SOURCE
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <unistd.h>

int cmd_backup(struct cli *g, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"snapshot", required_argument, NULL, 's'},
	    {NULL, 0, NULL, 0},
	};
	const char *snap = NULL;
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c != 's')
			return cli_bad_option("backup", argv);
		snap = optarg;
	}
	if (optind + 1 != argc)
		return cli_usage("backup: expected exactly one VE name");
	/* Compressed binary is no use on a terminal, and would wreck it. */
	if (isatty(1))
		return cli_usage("backup: writes to stdout: redirect it to a file or pipe");
	hsp_runtime_t *rt;
	if (cli_open(g, &rt))
		return 1;
	hsp_error_t err = NULL;
	int r = hsp_ve_backup(rt, argv[optind], snap, 1, &err);
	hsp_runtime_close(rt);
	return r < 0 ? cli_fail(&err) : 0;
}
