/* hspctl ve migrate|rescue: VEs moving between nodes. */
#define _GNU_SOURCE
#include <getopt.h>
#include <string.h>

#include "hspctl.h"
#include "utils.h"

int ve_migrate(struct ctl *g, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"to", required_argument, NULL, 't'},
	    {"live", no_argument, NULL, 'l'},
	    {"fallback", no_argument, NULL, 'f'},
	    {"wait", no_argument, NULL, 'w'},
	    CTL_COMMON_OPTIONS,
	    {NULL, 0, NULL, 0},
	};
	Hsp__V1__MigrateVeRequest req = HSP__V1__MIGRATE_VE_REQUEST__INIT;
	bool wait = false;
	int c, rc = 0;
	while ((c = ctl_getopt(g, argc, argv, CTL_COMMON_SHORT, opts, "ve", &rc)) != -1) {
		if (c == -2)
			return rc;
		if (c == 't')
			req.to_node = optarg;
		else if (c == 'l')
			req.live = true;
		else if (c == 'f')
			req.allow_fallback = true;
		else
			wait = true;
	}
	rc = ctl_args(argc, 1, 1, "ve", "migrate", "expected exactly one VE name");
	if (rc)
		return rc;
	if (req.allow_fallback && !req.live)
		return ctl_usage("ve", "ve migrate: --fallback goes with --live");
	req.name = argv[optind];
	cleanup_free char *what = hsp_strdup_printf("ve migrate %s", req.name);
	return ctl_operation_call(g, what, "/hsp.v1.Ves/Migrate", &req.base, wait);
}

int ve_rescue(struct ctl *g, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"finish", no_argument, NULL, 'F'},
	    {"wait", no_argument, NULL, 'w'},
	    CTL_COMMON_OPTIONS,
	    {NULL, 0, NULL, 0},
	};
	Hsp__V1__RescueVeRequest req = HSP__V1__RESCUE_VE_REQUEST__INIT;
	bool wait = false;
	int c, rc = 0;
	while ((c = ctl_getopt(g, argc, argv, CTL_COMMON_SHORT, opts, "ve", &rc)) != -1) {
		if (c == -2)
			return rc;
		if (c == 'F')
			req.finish = true;
		else
			wait = true;
	}
	rc = ctl_args(argc, 1, 1, "ve", "rescue", "expected exactly one VE name");
	if (rc)
		return rc;
	req.name = argv[optind];
	cleanup_free char *what =
	    hsp_strdup_printf("ve rescue %s%s", req.name, req.finish ? " --finish" : "");
	return ctl_operation_call(g, what, "/hsp.v1.Ves/Rescue", &req.base, wait);
}
