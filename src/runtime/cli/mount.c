#define _GNU_SOURCE
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

int cmd_mount(struct cli *g, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"read-only", no_argument, NULL, 'r'},
	    {NULL, 0, NULL, 0},
	};
	bool ro = false;
	int c;
	while ((c = getopt_long(argc, argv, "r", opts, NULL)) != -1) {
		if (c != 'r')
			return cli_bad_option("mount", argv);
		ro = true;
	}
	if (optind + 1 != argc)
		return cli_usage("mount: expected exactly one VE name");
	hsp_runtime_t *rt;
	if (cli_open(g, &rt))
		return 1;
	hsp_error_t err = NULL;
	char *path = NULL;
	int r = hsp_ve_mount(rt, argv[optind], ro, &path, &err);
	if (r == 0)
		printf("%s\n", path);
	free(path);
	hsp_runtime_close(rt);
	return r < 0 ? cli_fail(&err) : 0;
}

int cmd_umount(struct cli *g, int argc, char **argv)
{
	if (argc != 2 || argv[1][0] == '-')
		return cli_usage("umount: expected exactly one VE name");
	hsp_runtime_t *rt;
	if (cli_open(g, &rt))
		return 1;
	hsp_error_t err = NULL;
	int r = hsp_ve_umount(rt, argv[1], &err);
	hsp_runtime_close(rt);
	return r < 0 ? cli_fail(&err) : 0;
}
