#define _GNU_SOURCE
#include "cli.h"
#include "utils.h"

#include <getopt.h>

/* Shared by stop and restart: NAME [--timeout S]. */
int cli_stop_args(int argc, char **argv, const char **name, unsigned *timeout)
{
	static const struct option opts[] = {
	    {"timeout", required_argument, NULL, 't'},
	    {NULL, 0, NULL, 0},
	};
	*timeout = 10;
	int c;
	while ((c = getopt_long(argc, argv, "t:", opts, NULL)) != -1) {
		if (c != 't')
			return cli_bad_option(argv[0], argv);
		uint64_t v;
		hsp_error_t err = NULL;
		if (hsp_parse_u64(optarg, 0, 3600, &v, "timeout", &err) < 0)
			return cli_fail(&err);
		*timeout = (unsigned)v;
	}
	if (optind + 1 != argc)
		return cli_usage("%s: expected exactly one VE name", argv[0]);
	*name = argv[optind];
	return 0;
}

int cmd_stop(struct cli *g, int argc, char **argv)
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
	r = hsp_ve_stop(rt, name, timeout, &err);
	hsp_runtime_close(rt);
	return r < 0 ? cli_fail(&err) : 0;
}
