#define _GNU_SOURCE
#include "cli.h"
#include "spawn.h"
#include "utils.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Like docker and podman: 125 the runtime failed, 126 the command could
 * not be run, 127 it was not found; otherwise the command's own status. */
#define EXIT_RUNTIME 125

int cli_exec_status(hsp_error_t *err, int r)
{
	int code = r == -ENOENT && strstr((*err)->msg, "exec `")   ? 127
		   : r == -EACCES && strstr((*err)->msg, "exec `") ? 126
								   : EXIT_RUNTIME;
	cli_fail(err);
	return code;
}

/* Environment for interactive use: TERM from the caller's terminal. */
static char **tty_env(char **buf, size_t n, char *term, size_t termlen)
{
	size_t i = 0;
	const char *t = getenv("TERM");
	for (; hsp_default_env[i] && i + 1 < n; i++) {
		buf[i] = hsp_default_env[i];
		if (t && strncmp(buf[i], "TERM=", 5) == 0 &&
		    snprintf(term, termlen, "TERM=%s", t) < (int)termlen)
			buf[i] = term;
	}
	buf[i] = NULL;
	return buf;
}

int cli_exec_run(struct cli *g, const char *name, struct hsp_exec_opts *o)
{
	char *envbuf[16], term[128];
	if (o->tty)
		o->env = tty_env(envbuf, 16, term, sizeof(term));
	hsp_runtime_t *rt;
	if (cli_open(g, &rt))
		return EXIT_RUNTIME;
	hsp_error_t err = NULL;
	int status = 0;
	int r = hsp_ve_exec(rt, name, o, &status, &err);
	hsp_runtime_close(rt);
	if (r < 0)
		return cli_exec_status(&err, r);
	return status;
}

static int parse_user(const char *s, struct hsp_exec_opts *o)
{
	char *end;
	unsigned long u = strtoul(s, &end, 10);
	unsigned long gid = u;
	if (end == s)
		return -1;
	if (*end == ':') {
		char *g = end + 1;
		gid = strtoul(g, &end, 10);
		if (end == g)
			return -1;
	}
	if (*end != '\0' || u >= HSP_IDMAP_SIZE || gid >= HSP_IDMAP_SIZE)
		return -1;
	o->uid = (uid_t)u;
	o->gid = (gid_t)gid;
	return 0;
}

int cmd_exec(struct cli *g, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"tty", no_argument, NULL, 't'},
	    {"user", required_argument, NULL, 'u'},
	    {"cwd", required_argument, NULL, 'w'},
	    {NULL, 0, NULL, 0},
	};
	struct hsp_exec_opts o = {0};
	int c;
	while ((c = getopt_long(argc, argv, "+tu:w:", opts, NULL)) != -1) {
		switch (c) {
		case 't':
			o.tty = true;
			break;
		case 'u':
			if (parse_user(optarg, &o) < 0)
				return cli_usage(
				    "exec: invalid --user `%s` (UID[:GID], below 65536)", optarg);
			break;
		case 'w':
			o.cwd = optarg;
			break;
		default:
			return cli_bad_option("exec", argv);
		}
	}
	if (optind >= argc)
		return cli_usage("exec: expected a VE name and a command");
	const char *name = argv[optind++];
	if (optind < argc && strcmp(argv[optind], "--") == 0)
		optind++;
	if (optind >= argc)
		return cli_usage("exec: expected a command after the VE name");
	o.argv = argv + optind;
	return cli_exec_run(g, name, &o);
}
