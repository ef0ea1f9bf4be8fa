#define _GNU_SOURCE
#include "cli.h"

#include <string.h>

/* Runs the VE in the foreground: the CLI is its monitor, and exits with the
 * status of its init (used for benchmarks and debugging). */
int cmd_run(struct cli *g, int argc, char **argv)
{
	if (argc < 2 || argv[1][0] == '-')
		return cli_usage("run: expected a VE name");
	char *const *init = NULL;
	if (argc > 2) {
		if (strcmp(argv[2], "--") != 0 || argc < 4)
			return cli_usage("run: expected `-- CMD...` after the VE name");
		init = argv + 3;
	}
	hsp_runtime_t *rt;
	if (cli_open(g, &rt))
		return 125;
	hsp_error_t err = NULL;
	int status = 0;
	int r = hsp_ve_run(rt, argv[1], init, &status, &err);
	hsp_runtime_close(rt);
	if (r < 0) {
		cli_fail(&err);
		return 125;
	}
	return status;
}
