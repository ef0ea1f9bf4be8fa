/* hspctl: the operator's command line over the controller's public API
 * (proto/hsp/v1/hsp.proto), one file per verb group. */
#ifndef HSPCTL_H
#define HSPCTL_H

#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>

#include "hsp/v1/hsp.pb-c.h"
#include "print.h"
#include "rpc.h"

/* Exit codes (the table is in conn.c and `hspctl --help`). */
#define CTL_EXIT_OK 0
#define CTL_EXIT_FAIL 1
#define CTL_EXIT_USAGE 2
#define CTL_EXIT_API 10 /* + the gRPC status code */
#define CTL_EXIT_INTERRUPTED 130

struct ctl {
	/* from the command line (NULL: not given) */
	const char *opt_controller, *opt_token, *opt_ca;
	enum ctl_format fmt;
	/* resolved by ctl_connect: flags > env > config file > default */
	char *controller, *token, *ca_file;
	char *ca_pem;
	char *auth; /* "Bearer <token>" */
	struct hsp_rpc_md md[1];
	size_t n_md;
	hsp_rpc_channel_t *ch;
};

typedef int (*ctl_verb_fn)(struct ctl *g, int argc, char **argv);

/* ------------------------------------------------------------ main.c */

/* Prints "hspctl: <message> (see hspctl GROUP --help)" and returns 2. */
int ctl_usage(const char *group, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints the usage lines of one verb group, or all (group NULL). */
void ctl_help(FILE *f, const char *group);
/* Fills controller, token and ca_file: flags > env > config file > default.
 * 0 or an exit code (message printed). */
int ctl_config_resolve(struct ctl *g);

/* Options every verb takes: the global ones (also after the verb) and --help. */
enum {
	OPT_CONTROLLER = 900,
	OPT_TOKEN,
	OPT_CA,
};
#define CTL_COMMON_OPTIONS                                                                         \
	{"controller", required_argument, NULL, OPT_CONTROLLER},                                   \
	    {"token", required_argument, NULL, OPT_TOKEN},                                         \
	    {"ca", required_argument, NULL, OPT_CA}, {"output", required_argument, NULL, 'o'},     \
	{                                                                                          \
		"help", no_argument, NULL, 'h'                                                     \
	}
#define CTL_COMMON_SHORT "ho:"
/* getopt_long over a sub-verb's own arguments, common options included:
 * the verb's own options come back, CTL_CONTINUE-handled ones do not;
 * -1 at the end, or -2 with *rc set when the verb must return *rc. */
int ctl_getopt(struct ctl *g, int argc, char **argv, const char *shortopts,
	       const struct option *longopts, const char *group, int *rc);

/* ------------------------------------------------------------ args.c */

/* "30s", "30m", "2h", "1d", "1h30m", "90" (seconds): 0, or 2 with the
 * message printed. */
int ctl_parse_duration(const char *s, const char *what, uint32_t *seconds);
/* --memory/--swap/--cpus/--cpu-weight/--pids/--io-weight/--disk */
enum {
	OPT_MEMORY = 1000,
	OPT_SWAP,
	OPT_CPUS,
	OPT_CPU_WEIGHT,
	OPT_PIDS,
	OPT_IO_WEIGHT,
	OPT_DISK,
};
#define CTL_LIMIT_OPTIONS                                                                          \
	{"memory", required_argument, NULL, OPT_MEMORY},                                           \
	    {"swap", required_argument, NULL, OPT_SWAP},                                           \
	    {"cpus", required_argument, NULL, OPT_CPUS},                                           \
	    {"cpu-weight", required_argument, NULL, OPT_CPU_WEIGHT},                               \
	    {"pids", required_argument, NULL, OPT_PIDS},                                           \
	    {"io-weight", required_argument, NULL, OPT_IO_WEIGHT},                                 \
	{                                                                                          \
		"disk", required_argument, NULL, OPT_DISK                                          \
	}
/* 1: opt was a limit option, parsed into l; 0: not one; -1: bad value
 * (message printed). */
int ctl_parse_limit(int opt, const char *arg, Hsp__V1__Limits *l);
bool ctl_limits_any(const Hsp__V1__Limits *l);
/* Appends the OpenSSH public keys of a file (one or more lines) to
 * keys[] (count n); a private key or anything else is refused.  0, or 2 with the
 * message printed. */
int ctl_read_ssh_keys(const char *path, char ***keys, size_t *n);
/* A count of positional arguments (after getopt) between min and max:
 * 0, else the usage message "<verb>: <expect>" and 2. */
int ctl_args(int argc, int min, int max, const char *group, const char *verb, const char *expect);

/* ------------------------------------------------------------ conn.c */

/* Resolves controller/token/CA and opens the channel once; 0 or an exit
 * code (message printed). */
int ctl_connect(struct ctl *g);
void ctl_disconnect(struct ctl *g);
/* One unary call that completed with any status: 0 with *st (and *resp
 * on OK) set, or an exit code when it could not be made (message printed). */
int ctl_call_status(struct ctl *g, const char *what, const char *path, const ProtobufCMessage *req,
		    const ProtobufCMessageDescriptor *resp_desc, unsigned deadline_ms,
		    ProtobufCMessage **resp, struct hsp_rpc_status *st);
/* One unary call; 0 with *resp set, or an exit code (message printed as
 * "hspctl: <what>: <STATUS>: <message>"). */
int ctl_call(struct ctl *g, const char *what, const char *path, const ProtobufCMessage *req,
	     const ProtobufCMessageDescriptor *resp_desc, unsigned deadline_ms,
	     ProtobufCMessage **resp);
/* A read verb: the call, then table(resp) with -o table or the message as
 * json/yaml.  Returns the exit code. */
typedef void (*ctl_table_fn)(const ProtobufCMessage *resp);
int ctl_query(struct ctl *g, const char *what, const char *path, const ProtobufCMessage *req,
	      const ProtobufCMessageDescriptor *resp_desc, ctl_table_fn table);
const char *ctl_status_name(int code);
/* Prints the error line of a failed status and returns 10 + code. */
int ctl_status_fail(const char *what, int code, const char *message);
/* Prints "hspctl: <err>" and returns code. */
int ctl_fail(hsp_error_t *err, int code);
/* Output could not be written: message, exit 1. */
int ctl_output(int r);

/* SIGINT/SIGTERM/SIGHUP: outside a loop they end hspctl at once (exit
 * 128+N); inside ctl_loop_run they call the loop's on_interrupt. */
void ctl_signals_init(void);
bool ctl_interrupted(void);
/* 128 + the signal that interrupted (130 for SIGINT). */
int ctl_interrupt_exit(void);

struct ctl_loop {
	hsp_rpc_loop_t *loop;
	void (*on_interrupt)(void *arg); /* on the loop thread */
	void *arg;
	bool interrupted;
};
/* 0 or an exit code (message printed). */
int ctl_loop_new(struct ctl_loop *l);
/* Runs until hsp_rpc_loop_stop(l->loop); l->interrupted tells whether a
 * signal came meanwhile. */
void ctl_loop_run(struct ctl_loop *l);
void ctl_loop_free(struct ctl_loop *l);

/* ------------------------------------------------------------ operation.c */

/* What a call returning an Operation prints: without wait its id (or the
 * Operation as json/yaml), with wait the progress on stderr until it ends,
 * then the final Operation.  Returns the exit code. */
int ctl_operation_result(struct ctl *g, const char *what, const Hsp__V1__Operation *op, bool wait);
/* Calls path with req (returning an Operation) then ctl_operation_result. */
int ctl_operation_call(struct ctl *g, const char *what, const char *path,
		       const ProtobufCMessage *req, bool wait);
void ctl_show_operation(const Hsp__V1__Operation *op);

/* ------------------------------------------------------------ events.c */

/* Events.Watch, reopened after last_seq when the server ends the stream
 * (its deadline, a restart); runs a loop until on_event returns true or
 * an interrupt. */
struct ctl_watch {
	struct ctl *g;
	const char *what;
	Hsp__V1__WatchRequest req;
	/* true: the watch is over */
	bool (*on_event)(struct ctl_watch *w, const Hsp__V1__Event *ev);
	/* Optional, before a reopen: true when the watch is over anyway. */
	bool (*on_reopen)(struct ctl_watch *w);
	void *ud;
	/* internal */
	struct ctl_loop l;
	hsp_rpc_stream_t *s;
	uint64_t timer;
	bool done, opened, got_event;
	unsigned failures;
	int rc;
};
/* 0 when on_event ended it, 130 interrupted, else the exit code of the failure. */
int ctl_watch_run(struct ctl_watch *w);

/* ------------------------------------------------------------ verb groups */

int cmd_ve(struct ctl *g, int argc, char **argv);
/* move.c */
int ve_migrate(struct ctl *g, int argc, char **argv);
int ve_rescue(struct ctl *g, int argc, char **argv);
int cmd_node(struct ctl *g, int argc, char **argv);
int cmd_backup(struct ctl *g, int argc, char **argv);
int cmd_template(struct ctl *g, int argc, char **argv);
int cmd_token(struct ctl *g, int argc, char **argv);
int cmd_events(struct ctl *g, int argc, char **argv);
int cmd_operation(struct ctl *g, int argc, char **argv);
int cmd_cluster(struct ctl *g, int argc, char **argv);

/* The sub-verbs of a group: argv[0] names one; unknown -> usage, exit 2. */
struct ctl_subverb {
	const char *name;
	ctl_verb_fn fn;
};
int ctl_dispatch(struct ctl *g, const char *group, const struct ctl_subverb *v, size_t n, int argc,
		 char **argv);

#endif
