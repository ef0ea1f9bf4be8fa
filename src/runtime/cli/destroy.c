#define _GNU_SOURCE
#include "cli.h"

#include <getopt.h>

int cmd_destroy(struct cli *g, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"force", no_argument, NULL, 'f'},
	    {NULL, 0, NULL, 0},
	};
	bool force = false;
	int c;
	while ((c = getopt_long(argc, argv, "f", opts, NULL)) != -1) {
		if (c != 'f')
			return cli_bad_option("destroy", argv);
		force = true;
	}
	if (optind + 1 != argc)
		return cli_usage("destroy: expected exactly one VE name");
	hsp_runtime_t *rt;
	if (cli_open(g, &rt))
		return 1;
	hsp_error_t err = NULL;
	int r = hsp_ve_destroy(rt, argv[optind], force, &err);
	hsp_runtime_close(rt);
	return r < 0 ? cli_fail(&err) : 0;
}
