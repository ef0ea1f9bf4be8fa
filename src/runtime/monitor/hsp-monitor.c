/* hsp-monitor: the per-VE monitor, exec'd detached by `start`.
 *
 * A separate, statically linked program rather than a fork of the caller,
 * so each of the hundreds of monitors on a node holds only what it uses
 * (the CLI maps 20 libraries it no longer needs once the VE runs).
 *
 *   hsp-monitor --root DIR --run-dir DIR [--cgroup SPEC] [--restore DIR] [--rescue] NAME
 *               [-- INIT...]
 *
 * Without --cgroup the VE runs without cgroups (hsp-runtime --no-cgroups).
 * With --restore the VE's first boot restores that checkpoint (CRIU);
 * --rescue boots it in rescue mode (hsp_start_opts).
 *
 * fd 3 is the report pipe back to the starter. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "errpipe.h"
#include "internal.h"

static void fail(const char *msg)
{
	hsp_errpipe_write(3, EINVAL, "hsp-monitor: %s", msg);
	_exit(2);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"root", required_argument, NULL, 'r'},   {"run-dir", required_argument, NULL, 'R'},
	    {"cgroup", required_argument, NULL, 'c'}, {"restore", required_argument, NULL, 'x'},
	    {"rescue", no_argument, NULL, 's'},	      {NULL, 0, NULL, 0},
	};
	const char *root = NULL, *run_dir = NULL, *cgroup = NULL, *restore = NULL;
	struct hsp_start_opts start = {0};
	int c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		switch (c) {
		case 'r':
			root = optarg;
			break;
		case 'R':
			run_dir = optarg;
			break;
		case 'c':
			cgroup = optarg;
			break;
		case 'x':
			restore = optarg;
			break;
		case 's':
			start.rescue = true;
			break;
		default:
			fail("invalid option");
		}
	}
	if (root == NULL || run_dir == NULL || optind >= argc)
		fail("usage: hsp-monitor --root DIR --run-dir DIR [--cgroup SPEC] [--rescue] NAME "
		     "[-- INIT...]");
	const char *name = argv[optind++];
	char *const *init = NULL;
	if (optind < argc && strcmp(argv[optind], "--") == 0 && optind + 1 < argc)
		init = argv + optind + 1;

	hsp_runtime_t *rt = NULL;
	hsp_error_t err = NULL;
	if (hsp_runtime_open(&rt, root, run_dir, &err) < 0)
		fail(err->msg);
	hsp_monitor_main(rt, name, cgroup, init, &start, restore);
}
