#define _GNU_SOURCE
#include "cli.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>

int cmd_checkpoint(struct cli *g, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"dir", required_argument, NULL, 'd'},
	    {"json", no_argument, NULL, 'j'},
	    {NULL, 0, NULL, 0},
	};
	const char *dir = NULL;
	bool json = false;
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'd')
			dir = optarg;
		else if (c == 'j')
			json = true;
		else
			return cli_bad_option("checkpoint", argv);
	}
	if (optind + 1 != argc)
		return cli_usage("checkpoint: expected exactly one VE name");
	if (dir == NULL)
		return cli_usage("checkpoint: --dir DIR is required");
	hsp_runtime_t *rt;
	if (cli_open(g, &rt))
		return 1;
	hsp_error_t err = NULL;
	struct hsp_migration_times t = {0};
	int r = hsp_ve_checkpoint(rt, argv[optind], dir, &t, &err);
	hsp_runtime_close(rt);
	if (r < 0)
		return cli_fail(&err);
	if (json)
		printf("{ \"name\": \"%s\", \"dump_us\": %" PRIu64 " }\n", argv[optind], t.dump_us);
	else
		printf("checkpointed %s to %s in %.3f s; it is stopped here\n", argv[optind], dir,
		       t.dump_us / 1e6);
	return 0;
}
