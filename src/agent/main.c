/* hsp-agent: options, start-up (join on first start), signals, the loop.
 *
 * Order matters: signals are blocked before grpc_init starts its threads
 * (they inherit the mask), so only our sigwait thread ever takes SIGTERM
 * and SIGINT; SIGPIPE is ignored so a dead child's stdin pipe is an
 * EPIPE, not our death. */
#define _GNU_SOURCE
#include "agent.h"
#include "pki.h"
#include "utils.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EXIT_USAGE 2

extern char **environ;

static pthread_mutex_t post_lock = PTHREAD_MUTEX_INITIALIZER;
static bool post_closed;
static atomic_bool stop_requested;

/* ------------------------------------------------------------ threads */

int agent_post(struct agent *a, void (*fn)(void *), void *arg)
{
	pthread_mutex_lock(&post_lock);
	int r = post_closed ? -ESHUTDOWN : hsp_rpc_loop_post(a->loop, fn, arg);
	pthread_mutex_unlock(&post_lock);
	return r;
}

/* Called before the loop is freed: late workers then post nothing. */
static void close_posts(void)
{
	pthread_mutex_lock(&post_lock);
	post_closed = true;
	pthread_mutex_unlock(&post_lock);
}

int agent_thread(void *(*fn)(void *), void *arg)
{
	pthread_attr_t at;
	pthread_t t;
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	int r = pthread_create(&t, &at, fn, arg);
	pthread_attr_destroy(&at);
	return -r;
}

bool agent_stop_requested(void)
{
	return atomic_load(&stop_requested);
}

/* ------------------------------------------------------------ signals */

static sigset_t handled_signals(void)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	return set;
}

static void on_signal(void *arg)
{
	session_shutdown(arg);
}

static void *signal_thread(void *arg)
{
	struct agent *a = arg;
	sigset_t set = handled_signals();
	for (;;) {
		int sig;
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			agent_log_reopen();
			agent_log("SIGHUP: log reopened");
			continue;
		}
		agent_log("%s: stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
		atomic_store(&stop_requested, true);
		agent_post(a, on_signal, a);
	}
	return NULL;
}

/* ------------------------------------------------------------ options */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: hsp-agent --controller HOST:PORT --name NODE --state-dir DIR [options]\n"
		"\n"
		"The hsp node agent: joins the cluster once (with a join token), then keeps a\n"
		"session to the controller and runs its commands with hsp-runtime.\n"
		"\n"
		"  --controller HOST:PORT  the controller's node endpoint ([V6]:PORT for IPv6)\n"
		"  --name NODE             this node's name ([a-z0-9][a-z0-9-]{0,62})\n"
		"  --state-dir DIR         certificates and config (made 0700)\n"
		"  --token TOKEN           join token, needed on the first start only\n"
		"                          (default: $HSP_JOIN_TOKEN)\n"
		"  --runtime PATH          hsp-runtime (default: next to hsp-agent, then $PATH)\n"
		"  --root DIR              runtime root (default %s)\n"
		"  --run-dir DIR           runtime state (default %s)\n"
		"  --address IP            where this node's VEs are reachable (default: the\n"
		"                          address that routes to the controller)\n"
		"  --log FILE              log there instead of stderr (SIGHUP reopens it)\n"
		"  --ve-uplink IF          put IF into the VE bridge: the node joins a VE segment\n"
		"                          shared by all nodes (its own address on the bridge\n"
		"                          comes from the controller)\n"
		"  --heartbeat-ms N        heartbeat interval until the controller sets one\n"
		"                          (default 1000)\n"
		"  --join-only             join (unless joined already), then exit\n"
		"  --drain-on-shutdown     on SIGTERM, have the controller move this node's VEs\n"
		"                          away first (a second signal stops at once)\n"
		"  -h, --help              this text\n"
		"  -V, --version           the version\n",
		AGENT_DEFAULT_ROOT, AGENT_DEFAULT_RUN_DIR);
}

static int bad_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int bad_usage(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "hsp-agent: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, " (see hsp-agent --help)\n");
	va_end(ap);
	return EXIT_USAGE;
}

static int check_options(struct agent_conf *c)
{
	hsp_error_t err = NULL;
	int r = 0;
	if (c->controller == NULL)
		return bad_usage("--controller HOST:PORT is required");
	if (c->name == NULL)
		return bad_usage("--name NODE is required");
	if (c->state_dir == NULL)
		return bad_usage("--state-dir DIR is required");
	if (parse_host_port(c->controller, &c->host, &c->port, &err) < 0 ||
	    hsp_validate_name(c->name, "node", &err) < 0)
		r = bad_usage("%s", err->msg);
	hsp_error_release(&err);
	unsigned char buf[16];
	if (r == 0 && c->address && inet_pton(AF_INET, c->address, buf) != 1 &&
	    inet_pton(AF_INET6, c->address, buf) != 1)
		r = bad_usage("--address `%s`: not an IP address", c->address);
	return r;
}

static int set_heartbeat(struct agent_conf *c, const char *arg)
{
	hsp_error_t err = NULL;
	uint64_t v;
	if (hsp_parse_u64(arg, 100, 600000, &v, "--heartbeat-ms", &err) < 0) {
		int r = bad_usage("%s", err->msg);
		hsp_error_release(&err);
		return r;
	}
	c->heartbeat_ms = (unsigned)v;
	c->heartbeat_set = true;
	return 0;
}

/* Returns -1 to go on, or the exit code. */
static int parse_options(struct agent_conf *c, int argc, char **argv)
{
	enum {
		O_CONTROLLER = 1000,
		O_NAME,
		O_STATE,
		O_TOKEN,
		O_RUNTIME,
		O_ROOT,
		O_RUNDIR,
		O_ADDRESS,
		O_LOG,
		O_UPLINK,
		O_HB,
		O_JOIN_ONLY,
		O_DRAIN,
	};
	static const struct option opts[] = {
	    {"controller", required_argument, NULL, O_CONTROLLER},
	    {"name", required_argument, NULL, O_NAME},
	    {"state-dir", required_argument, NULL, O_STATE},
	    {"token", required_argument, NULL, O_TOKEN},
	    {"runtime", required_argument, NULL, O_RUNTIME},
	    {"root", required_argument, NULL, O_ROOT},
	    {"run-dir", required_argument, NULL, O_RUNDIR},
	    {"address", required_argument, NULL, O_ADDRESS},
	    {"log", required_argument, NULL, O_LOG},
	    {"ve-uplink", required_argument, NULL, O_UPLINK},
	    {"heartbeat-ms", required_argument, NULL, O_HB},
	    {"join-only", no_argument, NULL, O_JOIN_ONLY},
	    {"drain-on-shutdown", no_argument, NULL, O_DRAIN},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {NULL, 0, NULL, 0},
	};
	char **const slots[] = {&c->controller, &c->name,     &c->state_dir, &c->token,
				&c->runtime,	&c->root,     &c->run_dir,   &c->address,
				&c->log_path,	&c->ve_uplink};
	int opt, r;
	*c = (struct agent_conf){.heartbeat_ms = 1000};
	/* Our own one-line messages replace getopt's. */
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":hV", opts, NULL)) != -1) {
		if (opt >= O_CONTROLLER && opt < O_HB) {
			*slots[opt - O_CONTROLLER] = optarg;
		} else if (opt == O_HB) {
			if ((r = set_heartbeat(c, optarg)) != 0)
				return r;
		} else if (opt == O_JOIN_ONLY) {
			c->join_only = true;
		} else if (opt == O_DRAIN) {
			c->drain_on_shutdown = true;
		} else if (opt == 'h') {
			usage(stdout);
			return 0;
		} else if (opt == 'V') {
			printf("hsp-agent %s\n", AGENT_VERSION);
			return 0;
		} else if (opt == ':') {
			return bad_usage("option `%s` needs a value", argv[optind - 1]);
		} else {
			return bad_usage("invalid option `%s`", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return bad_usage("unexpected argument `%s`", argv[optind]);
	if (c->token == NULL && getenv("HSP_JOIN_TOKEN") && *getenv("HSP_JOIN_TOKEN"))
		c->token = getenv("HSP_JOIN_TOKEN");
	c->root = c->root ? c->root : AGENT_DEFAULT_ROOT;
	c->run_dir = c->run_dir ? c->run_dir : AGENT_DEFAULT_RUN_DIR;
	r = check_options(c);
	return r ? r : -1;
}

/* ------------------------------------------------------------ start-up */

static char *search_path(const char *name)
{
	const char *path = getenv("PATH");
	cleanup_free char *copy = strdup(path && *path ? path : "/usr/sbin:/usr/bin:/sbin:/bin");
	char *save = NULL;
	for (char *dir = strtok_r(copy, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
		char *p = hsp_strdup_printf("%s/%s", *dir ? dir : ".", name);
		if (access(p, X_OK) == 0)
			return p;
		free(p);
	}
	return NULL;
}

/* Resolved once, so every spawn runs the same binary. */
static char *find_runtime(const char *given)
{
	if (given)
		return strchr(given, '/') ? realpath(given, NULL) : search_path(given);
	char self[4096];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		char *p = hsp_strdup_printf("%s/hsp-runtime", dirname(self));
		if (access(p, X_OK) == 0)
			return p;
		free(p);
	}
	return search_path("hsp-runtime");
}

static char **child_env(void)
{
	size_t n = 0;
	while (environ[n])
		n++;
	char **env = calloc(n + 2, sizeof(char *));
	size_t k = 0;
	if (env == NULL)
		abort();
	/* --root/--run-dir are always passed; these would only confuse. */
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], "HSP_ERRNO_FD=", 13) != 0 &&
		    strncmp(environ[i], "HSP_ROOT=", 9) != 0 &&
		    strncmp(environ[i], "HSP_RUN_DIR=", 12) != 0)
			env[k++] = environ[i];
	env[k] = "HSP_ERRNO_FD=3";
	return env;
}

/* A daemon started with a closed stdio would get fd 0-2 for its pipes,
 * and then dup2 onto the child's stdio would go wrong. */
static void ensure_stdio(void)
{
	for (int fd = 0; fd < 3; fd++)
		if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", O_RDWR) != fd)
			abort();
}

static int fatal(struct agent *a, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fatal(struct agent *a, int code, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "hsp-agent: %s\n", msg);
	if (a->c.log_path)
		agent_log("fatal: %s", msg);
	return code;
}

static int fatal_err(struct agent *a, int code, hsp_error_t *err)
{
	int r = fatal(a, code, "%s", (*err)->msg);
	hsp_error_release(err);
	return r;
}

/* The certificate says who we are to the controller. */
static int check_identity(struct agent *a, hsp_error_t *err)
{
	cleanup_free char *cn = NULL;
	int r = hsp_pki_cert_cn(a->cert_pem, &cn, err);
	if (r < 0)
		return hsp_error_wrap(err, "%s/node.crt", a->c.state_dir);
	if (strcmp(cn, a->c.name) != 0)
		return hsp_make_error(err, EINVAL, "%s/node.crt is node `%s`'s, not `%s`'s",
				      a->c.state_dir, cn, a->c.name);
	return 0;
}

static void prepare_storage(struct agent *a)
{
	hsp_error_t err = NULL;
	if (!storage_is_cephfs(a->config))
		return;
	if (storage_ensure(&a->c, a->config->storage, &err) < 0) {
		agent_log("storage: %s (retried on the next create)", err->msg);
		hsp_error_release(&err);
	}
}

/* -1 to go on, or the exit code. */
static int join_if_needed(struct agent *a)
{
	hsp_error_t err = NULL;
	if (state_joined(a->c.state_dir))
		return -1;
	if (a->c.token == NULL)
		return fatal(a, EXIT_USAGE,
			     "%s has no node.crt (not joined yet) and no join token was given: "
			     "use --token or HSP_JOIN_TOKEN",
			     a->c.state_dir);
	if (join_cluster(a, &err) < 0) {
		if (agent_stop_requested()) {
			hsp_error_release(&err);
			return fatal(a, 0, "stopped before the join finished");
		}
		return fatal_err(a, 1, &err);
	}
	return -1;
}

/* 0, or the exit code (which may be 0: stopped during the join). */
static int start(struct agent *a, bool *go_on)
{
	hsp_error_t err = NULL;
	int r = join_if_needed(a);
	*go_on = false;
	if (r >= 0)
		return r;
	if (state_load(a, &err) < 0 || check_identity(a, &err) < 0)
		return fatal_err(a, 1, &err);
	if (a->c.join_only)
		return 0;
	prepare_storage(a);
	jobs_init(a);
	if (session_start(a, &err) < 0)
		return fatal_err(a, 1, &err);
	*go_on = true;
	return 0;
}

static int setup(struct agent *a)
{
	hsp_error_t err = NULL;
	if (agent_log_open(a->c.log_path, &err) < 0)
		return fatal_err(a, 1, &err);
	a->c.runtime = find_runtime(a->c.runtime);
	if (a->c.runtime == NULL)
		return fatal(
		    a, 1, "hsp-runtime not found (next to hsp-agent or in $PATH); use --runtime");
	a->c.child_env = child_env();
	a->c.boot_id = report_boot_id();
	if (a->c.address == NULL)
		a->c.address = detect_address(a->c.host, a->c.port);
	if (state_prepare_dir(a->c.state_dir, &err) < 0)
		return fatal_err(a, 1, &err);
	return 0;
}

int main(int argc, char **argv)
{
	static struct agent a;
	int r = parse_options(&a.c, argc, argv);
	if (r >= 0)
		return r;
	ensure_stdio();
	signal(SIGPIPE, SIG_IGN);
	sigset_t set = handled_signals();
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	if ((r = setup(&a)) != 0)
		return r;
	hsp_error_t err = NULL;
	if (hsp_rpc_loop_new(&a.loop, &err) < 0)
		return fatal_err(&a, 1, &err);
	if (agent_thread(signal_thread, &a) < 0)
		return fatal(&a, 1, "cannot start the signal thread");
	agent_log("hsp-agent %s: node %s, controller %s, runtime %s, root %s", AGENT_VERSION,
		  a.c.name, a.c.controller, a.c.runtime, a.c.root);
	bool go_on;
	if ((r = start(&a, &go_on)) != 0 || !go_on) {
		close_posts();
		return r;
	}
	hsp_rpc_loop_run(a.loop);
	close_posts();
	hsp_rpc_loop_free(a.loop);
	session_free(&a);
	agent_log("stopped (%u commands left running)", jobs_running(&a));
	return 0;
}
