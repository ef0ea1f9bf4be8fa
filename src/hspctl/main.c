/* hspctl: global options, the configuration file and verb dispatch. */
#define _GNU_SOURCE
#include "hspctl.h"
#include "utils.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <unistd.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_CONTROLLER "unix:/run/hsp/controller.sock"

static const struct {
	const char *name;
	ctl_verb_fn fn;
	const char *help;
} verbs[] = {
    {"ve", cmd_ve,
     "  ve create NAME --template T [LIMITS] [--hostname H] [--ssh-key FILE]... [--node N]\n"
     "            [--tenant T] [--ttl DURATION] [--network] [--no-start] [--wait]\n"
     "  ve list [--node N] [--tenant T]\n"
     "  ve show NAME\n"
     "  ve start NAME [--wait]\n"
     "  ve stop NAME [--timeout S] [--wait]\n"
     "  ve restart NAME [--timeout S] [--wait]\n"
     "  ve destroy NAME [--wait]\n"
     "  ve set NAME LIMITS\n"
     "  ve exec NAME [--timeout S] [--no-stdin] -- CMD [ARG...]\n"
     "  ve snapshot create NAME [SNAP] [--wait]\n"
     "  ve snapshot list NAME\n"
     "  ve snapshot restore NAME SNAP [--wait]\n"
     "  ve snapshot delete NAME SNAP [--wait]\n"
     "  ve migrate NAME [--to NODE] [--live [--fallback]] [--wait]\n"
     "  ve rescue NAME [--finish] [--wait]\n"},
    {"node", cmd_node,
     "  node list\n"
     "  node show NODE\n"
     "  node drain NODE [--wait]\n"
     "  node undrain NODE\n"
     "  node remove NODE\n"},
    {"backup", cmd_backup,
     "  backup create VE [--id ID] [--wait]\n"
     "  backup list [--ve NAME] [--tenant T]\n"
     "  backup show ID\n"
     "  backup restore ID [--name NEW] [--node N] [--start] [--wait]   (as a new VE)\n"
     "  backup delete ID [--wait]\n"},
    {"template", cmd_template, "  template list\n"},
    {"token", cmd_token,
     "  token create --kind admin|tenant|join [--tenant T] [--ttl DURATION] [--description S]\n"
     "  token list\n"
     "  token revoke ID\n"},
    {"events", cmd_events,
     "  events [--since SEQ] [--ve NAME] [--node NODE] [--operation ID]   (until interrupted)\n"},
    {"operation", cmd_operation,
     "  operation show ID\n"
     "  operation wait ID [--timeout S]\n"},
    {"cluster", cmd_cluster, "  cluster info\n"},
};

static const char help_head[] =
    "usage: hspctl [--controller ADDR] [--token T] [--ca FILE] [-o table|json|yaml] VERB ...\n"
    "(the global options are also accepted after the verb)\n\n";

static const char help_values[] =
    "\nLIMITS: --memory B --swap B --cpus N --cpu-weight W --pids N --io-weight W --disk B\n"
    "  sizes take K, M, G, T suffixes (powers of 1024); --cpus 1.5 is one and a half CPUs\n"
    "DURATION: 30s, 30m, 2h, 1d, or combined (1h30m); a bare number is seconds\n"
    "--wait: show the operation's progress on stderr and return when it has ended\n";

static const char help_tail[] =
    "\nconnection: --controller, --token, --ca; else $HSP_CONTROLLER, $HSP_TOKEN, $HSP_CA;\n"
    "  $HSP_NETNS names a network namespace to reach the controller from (sim-cluster);\n"
    "  else the config file ($HSP_CONFIG, else $XDG_CONFIG_HOME/hsp/config or\n"
    "  ~/.config/hsp/config) with lines `controller = ADDR`, `token = T`, `ca = FILE`;\n"
    "  else " DEFAULT_CONTROLLER ".  unix:PATH is the controller's local socket\n"
    "  (root on its machine; no token needed); any other address is TLS, the server\n"
    "  verified against the CA certificate.  A token is sent as `authorization: Bearer`.\n"
    "\noutput: -o table (default) for people; -o json or -o yaml give the API's messages\n"
    "  with every field (proto3 JSON names; 64-bit numbers as strings); streams (events)\n"
    "  give one JSON object a line, or one YAML document per event.\n"
    "\nexit status:\n"
    "  0    success\n"
    "  1    hspctl itself failed (could not write its output, or make a call at all)\n"
    "  2    usage error or bad local input; nothing was sent\n"
    "  10+N the controller answered gRPC status N, or the operation failed with it:\n"
    "       11 CANCELLED  12 UNKNOWN  13 INVALID_ARGUMENT  14 DEADLINE_EXCEEDED\n"
    "       15 NOT_FOUND  16 ALREADY_EXISTS  17 PERMISSION_DENIED  18 RESOURCE_EXHAUSTED\n"
    "       19 FAILED_PRECONDITION  20 ABORTED  21 OUT_OF_RANGE  22 UNIMPLEMENTED\n"
    "       23 INTERNAL  24 UNAVAILABLE  25 DATA_LOSS  26 UNAUTHENTICATED\n"
    "  130  interrupted (SIGINT; 143 SIGTERM, 129 SIGHUP)\n"
    "  ve exec: the command's own exit status (128+N when a signal N killed it)\n";

void ctl_help(FILE *f, const char *group)
{
	fputs(help_head, f);
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (group == NULL || strcmp(group, verbs[i].name) == 0)
			fputs(verbs[i].help, f);
	if (group == NULL || strcmp(group, "ve") == 0 || strcmp(group, "node") == 0 ||
	    strcmp(group, "token") == 0)
		fputs(help_values, f);
	if (group == NULL)
		fputs(help_tail, f);
	else
		fputs("\n(`hspctl --help` for connection settings, output and exit codes)\n", f);
}

int ctl_usage(const char *group, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "hspctl: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, " (see `hspctl%s%s --help`)\n", group ? " " : "", group ? group : "");
	va_end(ap);
	return CTL_EXIT_USAGE;
}

static int bad_option(const char *group, char **argv)
{
	const char *arg = optind > 0 ? argv[optind - 1] : NULL;
	const char *g = group ? group : "";
	const char *sep = group ? ": " : "";
	if (arg && strncmp(arg, "--", 2) == 0)
		return ctl_usage(group, "%s%sinvalid option or missing value `%.*s`", g, sep,
				 (int)strcspn(arg, "="), arg);
	if (optopt > ' ' && optopt < 127)
		return ctl_usage(group, "%s%sinvalid option or missing value `-%c`", g, sep,
				 optopt);
	return ctl_usage(group, "%s%sinvalid option `%s`", g, sep, arg ? arg : "?");
}

static int set_format(struct ctl *g, const char *s, const char *group)
{
	if (strcmp(s, "table") == 0)
		g->fmt = CTL_TABLE;
	else if (strcmp(s, "json") == 0)
		g->fmt = CTL_JSON;
	else if (strcmp(s, "yaml") == 0)
		g->fmt = CTL_YAML;
	else
		return ctl_usage(group, "invalid output format `%s`: table, json or yaml", s);
	return CTL_EXIT_OK;
}

/* -1: a common option, handled; -3: not one; else the verb's exit code. */
static int common_opt(struct ctl *g, int c, const char *group, char **argv)
{
	switch (c) {
	case OPT_CONTROLLER:
		g->opt_controller = optarg;
		return -1;
	case OPT_TOKEN:
		g->opt_token = optarg;
		return -1;
	case OPT_CA:
		g->opt_ca = optarg;
		return -1;
	case 'o': {
		int r = set_format(g, optarg, group);
		return r ? r : -1;
	}
	case 'h':
		ctl_help(stdout, group);
		return CTL_EXIT_OK;
	case '?':
	case ':':
		return bad_option(group, argv);
	}
	return -3;
}

int ctl_getopt(struct ctl *g, int argc, char **argv, const char *shortopts,
	       const struct option *longopts, const char *group, int *rc)
{
	for (;;) {
		int c = getopt_long(argc, argv, shortopts, longopts, NULL);
		if (c == -1)
			return -1;
		int r = common_opt(g, c, group, argv);
		if (r == -3)
			return c;
		if (r != -1) {
			*rc = r;
			return -2;
		}
	}
}

int ctl_dispatch(struct ctl *g, const char *group, const struct ctl_subverb *v, size_t n, int argc,
		 char **argv)
{
	if (argc < 2) {
		ctl_help(stderr, group);
		return CTL_EXIT_USAGE;
	}
	const char *sub = argv[1];
	if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0 || strcmp(sub, "help") == 0) {
		ctl_help(stdout, group);
		return CTL_EXIT_OK;
	}
	for (size_t i = 0; i < n; i++) {
		if (strcmp(v[i].name, sub) == 0) {
			optind = 0; /* reset getopt for the sub-verb */
			return v[i].fn(g, argc - 1, argv + 1);
		}
	}
	int rc = ctl_usage(group, "%s: unknown verb `%s`", group, sub);
	ctl_help(stderr, group);
	return rc;
}

/* ------------------------------------------------------------ configuration */

struct config {
	char *controller, *token, *ca;
};

static void config_clear(struct config *c)
{
	free(c->controller);
	free(c->token);
	free(c->ca);
}

static const char *home_dir(void)
{
	const char *h = getenv("HOME");
	if (h && *h)
		return h;
	struct passwd *pw = getpwuid(getuid());
	return pw ? pw->pw_dir : "/";
}

/* explicit: $HSP_CONFIG named it, so it must exist. */
static char *config_path(bool *explicit)
{
	const char *p = getenv("HSP_CONFIG");
	*explicit = p && *p;
	if (*explicit)
		return strdup(p);
	const char *x = getenv("XDG_CONFIG_HOME");
	if (x && *x == '/')
		return hsp_strdup_printf("%s/hsp/config", x);
	return hsp_strdup_printf("%s/.config/hsp/config", home_dir());
}

static char *trim(char *s)
{
	while (*s == ' ' || *s == '\t' || *s == '\r')
		s++;
	size_t n = strlen(s);
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
		s[--n] = '\0';
	return s;
}

/* '#' starts a comment at the start of a line or after blank space, so
 * values may still contain it. */
static void strip_comment(char *line)
{
	for (char *p = line; *p; p++) {
		if (*p == '#' && (p == line || p[-1] == ' ' || p[-1] == '\t')) {
			*p = '\0';
			return;
		}
	}
}

/* "~/x" is under $HOME; a relative path is relative to the file's directory. */
static char *config_file_path(const char *value, const char *config)
{
	if (strncmp(value, "~/", 2) == 0)
		return hsp_strdup_printf("%s/%s", home_dir(), value + 2);
	if (value[0] == '/')
		return strdup(value);
	const char *slash = strrchr(config, '/');
	if (slash == NULL)
		return strdup(value);
	return hsp_strdup_printf("%.*s/%s", (int)(slash - config), config, value);
}

static int config_line(struct config *c, char *line, const char *path, int lineno)
{
	strip_comment(line);
	char *s = trim(line);
	if (*s == '\0')
		return 0;
	char *eq = strchr(s, '=');
	if (eq == NULL) {
		fprintf(stderr, "hspctl: %s:%d: expected `key = value`\n", path, lineno);
		return CTL_EXIT_USAGE;
	}
	*eq = '\0';
	char *key = trim(s), *value = trim(eq + 1);
	size_t n = strlen(value);
	if (n >= 2 && value[0] == '"' && value[n - 1] == '"') {
		value[n - 1] = '\0';
		value++;
	}
	char **slot = strcmp(key, "controller") == 0 ? &c->controller
		      : strcmp(key, "token") == 0    ? &c->token
		      : strcmp(key, "ca") == 0	     ? &c->ca
						     : NULL;
	if (slot == NULL) {
		fprintf(stderr, "hspctl: %s:%d: unknown key `%s` (ignored)\n", path, lineno, key);
		return 0;
	}
	free(*slot);
	*slot = slot == &c->ca ? config_file_path(value, path) : strdup(value);
	return 0;
}

static int config_read(struct config *c)
{
	bool explicit;
	cleanup_free char *path = config_path(&explicit);
	cleanup_fclose FILE *f = fopen(path, "re");
	if (f == NULL && errno == ENOENT && !explicit)
		return 0;
	if (f == NULL) {
		fprintf(stderr, "hspctl: config `%s`: %s\n", path, strerror(errno));
		return CTL_EXIT_USAGE;
	}
	cleanup_free char *line = NULL;
	size_t cap = 0;
	int lineno = 0;
	while (getline(&line, &cap, f) >= 0) {
		line[strcspn(line, "\n")] = '\0';
		int r = config_line(c, line, path, ++lineno);
		if (r)
			return r;
	}
	return 0;
}

static char *pick(const char *flag, const char *env, char **config, const char *def)
{
	const char *e = getenv(env);
	if (flag)
		return strdup(flag);
	if (e && *e)
		return strdup(e);
	if (*config && **config)
		return steal_pointer(config);
	return def ? strdup(def) : NULL;
}

/* A header value: printable ASCII without spaces. */
static bool token_ok(const char *t)
{
	for (; *t; t++)
		if (*t <= ' ' || *t > '~')
			return false;
	return true;
}

int ctl_config_resolve(struct ctl *g)
{
	struct config c = {0};
	bool need_file = !g->opt_controller || !g->opt_token || !g->opt_ca;
	int r = need_file ? config_read(&c) : 0;
	if (r == 0) {
		g->controller =
		    pick(g->opt_controller, "HSP_CONTROLLER", &c.controller, DEFAULT_CONTROLLER);
		g->token = pick(g->opt_token, "HSP_TOKEN", &c.token, NULL);
		g->ca_file = pick(g->opt_ca, "HSP_CA", &c.ca, NULL);
	}
	config_clear(&c);
	if (r == 0 && g->token && (*g->token == '\0' || !token_ok(g->token))) {
		fprintf(stderr, "hspctl: the token is empty or has characters a token cannot "
				"have (spaces, control or non-ASCII characters)\n");
		r = CTL_EXIT_USAGE;
	}
	return r;
}

/* ------------------------------------------------------------ main */

static int run_verb(struct ctl *g, int argc, char **argv)
{
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
		if (strcmp(verbs[i].name, argv[0]) == 0) {
			optind = 0; /* reset getopt for the verb */
			return verbs[i].fn(g, argc, argv);
		}
	}
	int rc = ctl_usage(NULL, "unknown verb `%s`", argv[0]);
	ctl_help(stderr, NULL);
	return rc;
}

static void ctl_clear(struct ctl *g)
{
	ctl_disconnect(g);
	free(g->controller);
	free(g->token);
	free(g->ca_file);
	free(g->ca_pem);
	free(g->auth);
}

/* $HSP_NETNS: the controller is reached from inside that network namespace
 * (/run/netns/NAME, as `ip netns` makes them): how an operator on the host
 * talks to test/sim-cluster, whose addresses exist only in namespaces.
 * Entered before grpc starts any thread, so every thread is inside. */
static int enter_netns(void)
{
	const char *ns = getenv("HSP_NETNS");
	if (ns == NULL || *ns == '\0')
		return 0;
	if (strchr(ns, '/') || strcmp(ns, ".") == 0 || strcmp(ns, "..") == 0) {
		fprintf(stderr, "hspctl: HSP_NETNS `%s`: a name from `ip netns list`\n", ns);
		return -1;
	}
	char path[300];
	snprintf(path, sizeof(path), "/run/netns/%s", ns);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || setns(fd, CLONE_NEWNET) < 0) {
		fprintf(stderr, "hspctl: enter network namespace `%s`: %s\n", ns, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {CTL_COMMON_OPTIONS, {NULL, 0, NULL, 0}};
	struct ctl g = {.fmt = CTL_TABLE};
	int rc = CTL_EXIT_OK, c;
	if (enter_netns() < 0)
		return CTL_EXIT_USAGE;
	ctl_signals_init();
	opterr = 0; /* our own one-line messages replace getopt's */
	/* '+' stops at the verb: its options are its own. */
	while ((c = ctl_getopt(&g, argc, argv, "+" CTL_COMMON_SHORT, opts, NULL, &rc)) != -1) {
		if (c == -2)
			return rc;
	}
	if (optind >= argc) {
		ctl_help(stderr, NULL);
		return CTL_EXIT_USAGE;
	}
	rc = run_verb(&g, argc - optind, argv + optind);
	ctl_clear(&g);
	if (fflush(stdout) != 0 && rc == CTL_EXIT_OK) {
		fprintf(stderr, "hspctl: write output: %s\n", strerror(errno));
		rc = CTL_EXIT_FAIL;
	}
	return rc;
}
