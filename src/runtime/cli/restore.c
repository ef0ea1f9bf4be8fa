#define _GNU_SOURCE
#include "cli.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <unistd.h>

/* With --dir: a checkpoint (live migration); without: a backup on stdin. */
int cmd_restore(struct cli *g, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"pool", required_argument, NULL, 'p'},    {"dir", required_argument, NULL, 'd'},
	    {"json", no_argument, NULL, 'j'},	       {"ip", required_argument, NULL, 'I'},
	    {"gateway", required_argument, NULL, 'G'}, {"bridge", required_argument, NULL, 'B'},
	    {"no-network", no_argument, NULL, 'N'},    {NULL, 0, NULL, 0},
	};
	struct hsp_restore_opts o = {0};
	const char *dir = NULL;
	bool json = false, no_net = false;
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			o.pool = optarg;
			break;
		case 'd':
			dir = optarg;
			break;
		case 'j':
			json = true;
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
		case 'N':
			no_net = true;
			break;
		default:
			return cli_bad_option("restore", argv);
		}
	}
	o.set_network = no_net || o.ip || o.gateway || o.bridge;
	if (no_net && (o.ip || o.gateway || o.bridge))
		return cli_usage(
		    "restore: --no-network and --ip/--gateway/--bridge exclude each other");
	if (optind + 1 != argc)
		return cli_usage("restore: expected exactly one VE name");
	if (dir && (o.pool || o.set_network))
		return cli_usage("restore: --pool and the network options are for backups; a "
				 "checkpoint's VE keeps its own");
	if (!dir && isatty(0))
		return cli_usage("restore: reads a backup from stdin: redirect it from a file");
	hsp_runtime_t *rt;
	if (cli_open(g, &rt))
		return 1;
	hsp_error_t err = NULL;
	struct hsp_migration_times t = {0};
	const char *name = argv[optind];
	int r = dir ? hsp_ve_restore(rt, name, dir, &t, &err)
		    : hsp_ve_restore_backup(rt, name, &o, 0, &err);
	hsp_runtime_close(rt);
	if (r < 0)
		return cli_fail(&err);
	if (dir && json)
		printf("{ \"name\": \"%s\", \"frozen_us\": %" PRIu64 ", \"dump_us\": %" PRIu64
		       ", \"restore_us\": %" PRIu64 " }\n",
		       name, t.frozen_us, t.dump_us, t.restore_us);
	else if (dir)
		printf("restored %s: frozen %.3f s (dump %.3f s, restore %.3f s)\n", name,
		       t.frozen_us / 1e6, t.dump_us / 1e6, t.restore_us / 1e6);
	return 0;
}
