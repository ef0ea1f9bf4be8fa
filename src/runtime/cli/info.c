#define _GNU_SOURCE
#include "cli.h"

#include <getopt.h>
#include <stdio.h>

/* What this node can do; for now whether it can live-migrate VEs. */
int cmd_info(struct cli *g, int argc, char **argv)
{
	(void)g;
	static const struct option opts[] = {{"json", no_argument, NULL, 'j'}, {NULL, 0, NULL, 0}};
	bool json = false;
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c != 'j')
			return cli_bad_option("info", argv);
		json = true;
	}
	if (optind != argc)
		return cli_usage("info: takes no arguments");
	hsp_error_t err = NULL;
	struct hsp_checkpoint_support s;
	if (hsp_checkpoint_probe(&s, &err) < 0)
		return cli_fail(&err);
	if (json) {
		json_object *o = json_object_new_object();
		json_object *ck = json_object_new_object();
		json_object_object_add(o, "kernel", json_object_new_string(s.kernel));
		json_object_object_add(ck, "supported", json_object_new_boolean(s.supported));
		if (s.reason)
			json_object_object_add(ck, "reason", json_object_new_string(s.reason));
		if (s.criu)
			json_object_object_add(ck, "criu", json_object_new_string(s.criu));
		if (s.criu_version)
			json_object_object_add(ck, "criu_version",
					       json_object_new_string(s.criu_version));
		json_object_object_add(o, "checkpoint", ck);
		cli_print_json(o);
		json_object_put(o);
	} else if (s.supported) {
		printf("checkpoint: supported (criu %s, kernel %s)\n", s.criu_version, s.kernel);
	} else {
		printf("checkpoint: unsupported: %s\n", s.reason);
	}
	hsp_checkpoint_support_clear(&s);
	return 0;
}
