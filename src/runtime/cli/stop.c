#define _GNU_SOURCE
#include "cli.h"
#include "utils.h"

#include <getopt.h>

typedef int (*stop_fn)(hsp_runtime_t *rt, const char *name, unsigned timeout_s, hsp_error_t *err);

/* stop and restart: NAME [--timeout S]. */
int cli_stop_verb(struct cli *g, int argc, char **argv, stop_fn fn)
{
	static const struct option opts[] = {
	    {"timeout", required_argument, NULL, 't'},
	    {NULL, 0, NULL, 0},
	};
	unsigned timeout = 10;
	hsp_error_t err = NULL;
	int c;
	while ((c = getopt_long(argc, argv, "t:", opts, NULL)) != -1) {
		if (c != 't')
			return cli_bad_option(argv[0], argv);
		uint64_t v;
		if (hsp_parse_u64(optarg, 0, 3600, &v, "timeout", &err) < 0)
			return cli_fail(&err);
		timeout = (unsigned)v;
	}
	if (optind + 1 != argc)
		return cli_usage("%s: expected exactly one VE name", argv[0]);
	hsp_runtime_t *rt;
	if (cli_open(g, &rt))
		return 1;
	int r = fn(rt, argv[optind], timeout, &err);
	hsp_runtime_close(rt);
	return r < 0 ? cli_fail(&err) : 0;
}

int cmd_stop(struct cli *g, int argc, char **argv)
{
	return cli_stop_verb(g, argc, argv, hsp_ve_stop);
}
