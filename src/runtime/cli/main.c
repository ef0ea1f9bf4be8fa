#define _GNU_SOURCE
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
	const char *name;
	cli_verb_fn fn;
	const char *help;
} verbs[] = {
    {"create", cmd_create,
     "create NAME --template T [--pool P] [--hostname H] [--ip CIDR [--gateway IP] [--bridge BR]] "
     "[--ssh-key FILE] [limits]"},
    {"start", cmd_start,
     "start NAME [--rescue]   (rescue: a fresh template root, the VE's own at /repair)"},
    {"stop", cmd_stop, "stop NAME [--timeout S]"},
    {"kill", cmd_kill, "kill NAME"},
    {"restart", cmd_restart, "restart NAME [--timeout S]"},
    {"exec", cmd_exec, "exec [-t] [--user UID[:GID]] [--cwd DIR] NAME -- CMD..."},
    {"enter", cmd_enter, "enter NAME"},
    {"run", cmd_run, "run NAME [-- CMD...]   (foreground; exits with the VE's status)"},
    {"state", cmd_state, "state NAME [--json]"},
    {"list", cmd_list, "list [--json]"},
    {"set", cmd_set, "set NAME [limits]"},
    {"destroy", cmd_destroy, "destroy NAME [--force]"},
    {"mount", cmd_mount,
     "mount NAME [--read-only]   (a stopped VE's files, at ROOT/ves/NAME/rootfs)"},
    {"umount", cmd_umount, "umount NAME"},
    {"pool", cmd_pool,
     "pool add NAME --type local --path DIR | pool add NAME --type cephfs --conf F --id ID "
     "--keyring F --fs-path /P | pool list [--json] | pool remove NAME"},
    {"snapshot", cmd_snapshot,
     "snapshot create NAME SNAP [--json] | snapshot list NAME [--json] | snapshot restore NAME "
     "SNAP | snapshot delete NAME SNAP"},
    {"backup", cmd_backup, "backup NAME [--snapshot SNAP] > FILE   (a zstd-compressed tar)"},
    {"restore", cmd_restore,
     "restore NAME [--pool P] [--ip CIDR [--gateway IP] [--bridge BR] | --no-network] < FILE   "
     "(a new VE from a backup) | restore NAME --dir D [--json]   "
     "(resume a checkpoint)"},
    {"checkpoint", cmd_checkpoint,
     "checkpoint NAME --dir D [--json]   (freeze and dump a running VE to D, for a restore on "
     "another node; it stops here)"},
    {"info", cmd_info, "info [--json]   (whether this node can checkpoint VEs, and if not why)"},
    {"template", cmd_template,
     "template list [--pool P] [--json] | template import NAME SOURCE [--pool P] ..."},
};

static void usage(FILE *f)
{
	fprintf(f, "usage: hsp-runtime [--root DIR] [--run-dir DIR] [--no-cgroups] VERB ...\n\n"
		   "--no-cgroups starts VEs without cgroups (benchmarks, debugging; VEs with\n"
		   "limits are refused)\n\nverbs:\n");
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		fprintf(f, "  %s\n", verbs[i].help);
	fprintf(f, "\nlimits: --memory BYTES --swap BYTES --cpus N --cpu-weight W --pids N "
		   "--io-weight W --disk BYTES\n(sizes accept K, M, G, T suffixes; --disk defaults "
		   "to 10G)\n");
}

int cli_usage(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "hsp-runtime: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, " (see hsp-runtime --help)\n");
	va_end(ap);
	return EXIT_USAGE;
}

int cli_bad_option(const char *verb, char **argv)
{
	const char *arg = optind > 0 ? argv[optind - 1] : "?";
	const char *sep = verb ? ": " : "";
	verb = verb ? verb : "";
	if (optopt && (arg == NULL || arg[0] != '-' || strchr(arg, optopt) == NULL))
		return cli_usage("%s%sinvalid option `-%c`", verb, sep, optopt);
	return cli_usage("%s%sinvalid option `%s`", verb, sep, arg);
}

/* A program driving this CLI (the node agent) learns why a verb failed
 * from the errno written to fd $HSP_ERRNO_FD, not by parsing messages. */
static void report_errno(int status)
{
	const char *s = getenv("HSP_ERRNO_FD");
	char *end;
	long fd = s ? strtol(s, &end, 10) : -1;
	if (s == NULL || *end || fd < 3 || fd > 1023)
		return;
	dprintf((int)fd, "%d\n", status > 0 ? status : EIO);
}

int cli_fail(hsp_error_t *err)
{
	report_errno(*err ? (*err)->status : EIO);
	fprintf(stderr, "hsp-runtime: %s\n", *err && (*err)->msg ? (*err)->msg : "unknown error");
	hsp_error_release(err);
	return 1;
}

int cli_open(struct cli *g, hsp_runtime_t **rt)
{
	hsp_error_t err = NULL;
	if (hsp_runtime_open(rt, g->root, g->run_dir, &err) < 0)
		return cli_fail(&err);
	if (g->no_cgroups)
		hsp_runtime_disable_cgroups(*rt);
	return 0;
}

int main(int argc, char **argv)
{
	struct cli g = {.root = getenv("HSP_ROOT"), .run_dir = getenv("HSP_RUN_DIR")};
	static const struct option opts[] = {
	    {"root", required_argument, NULL, 'r'},
	    {"run-dir", required_argument, NULL, 'R'},
	    {"no-cgroups", no_argument, NULL, 'n'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int c;
	/* Our own one-line messages replace getopt's. */
	opterr = 0;
	/* '+' stops at the verb: its options are its own. */
	while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		switch (c) {
		case 'r':
			g.root = optarg;
			break;
		case 'R':
			g.run_dir = optarg;
			break;
		case 'n':
			g.no_cgroups = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			return cli_bad_option(NULL, argv);
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	g.verb = argv[optind];
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
		if (strcmp(verbs[i].name, g.verb) == 0) {
			int vargc = argc - optind;
			char **vargv = argv + optind;
			optind = 0; /* reset getopt for the verb */
			return verbs[i].fn(&g, vargc, vargv);
		}
	}
	return cli_usage("unknown verb `%s`", g.verb);
}
