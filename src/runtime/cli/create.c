#define _GNU_SOURCE
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

int cmd_create(struct cli *g, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"template", required_argument, NULL, 't'},
	    {"hostname", required_argument, NULL, 'H'},
	    {"init", required_argument, NULL, 'i'},
	    {"stop-signal", required_argument, NULL, 's'},
	    {"ip", required_argument, NULL, 'I'},
	    {"gateway", required_argument, NULL, 'G'},
	    {"bridge", required_argument, NULL, 'B'},
	    {"ssh-key", required_argument, NULL, 'K'},
	    {"pool", required_argument, NULL, 'P'},
	    CLI_LIMIT_OPTIONS,
	    {NULL, 0, NULL, 0},
	};
	struct hsp_create_opts o = {0};
	char *init[2] = {NULL, NULL};
	hsp_error_t err = NULL;
	int c;
	while ((c = getopt_long(argc, argv, "t:", opts, NULL)) != -1) {
		switch (c) {
		case 't':
			o.template = optarg;
			break;
		case 'H':
			o.hostname = optarg;
			break;
		case 'i':
			init[0] = optarg;
			o.init = init;
			break;
		case 's':
			o.stop_signal = optarg;
			break;
		case 'I':
			o.ip = optarg;
			break;
		case 'G':
			o.gateway = optarg;
			break;
		case 'B':
			o.bridge = optarg;
			break;
		case 'K':
			o.ssh_key = optarg;
			break;
		case 'P':
			o.pool = optarg;
			break;
		default:
			if (c == '?')
				return cli_bad_option("create", argv);
			if (cli_parse_limit(c, optarg, &o.limits, &err) < 0)
				return cli_fail(&err);
		}
	}
	if (optind + 1 != argc)
		return cli_usage("create: expected exactly one VE name");
	hsp_runtime_t *rt;
	if (cli_open(g, &rt))
		return 1;
	int r = hsp_ve_create(rt, argv[optind], &o, &err);
	hsp_runtime_close(rt);
	return r < 0 ? cli_fail(&err) : 0;
}
