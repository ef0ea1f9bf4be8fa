/* hsp-runtime: the thin command line over libhsp-runtime, one file a verb. */
#ifndef HSP_CLI_H
#define HSP_CLI_H

#include <json-c/json.h>
#include <stdbool.h>

#include "hsp-runtime.h"

struct cli {
	const char *root;
	const char *run_dir;
	const char *verb;
	bool no_cgroups;
};

/* Exit codes: 0 success, 1 failure, 2 usage; exec returns the command's. */
#define EXIT_USAGE 2

typedef int (*cli_verb_fn)(struct cli *g, int argc, char **argv);

/* Prints "hsp-runtime: <message>" and returns 1 (or the given code). */
int cli_fail(hsp_error_t *err);
int cli_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int cli_open(struct cli *g, hsp_runtime_t **rt);
/* After getopt returned '?': names the offending argument. */
int cli_bad_option(const char *verb, char **argv);

/* --memory/--swap/--cpus/--cpu-weight/--pids/--io-weight/--disk for create and set. */
enum {
	OPT_MEMORY = 1000,
	OPT_SWAP,
	OPT_CPUS,
	OPT_CPU_WEIGHT,
	OPT_PIDS,
	OPT_IO_WEIGHT,
	OPT_DISK,
};
#define CLI_LIMIT_OPTIONS                                                                          \
	{"memory", required_argument, NULL, OPT_MEMORY},                                           \
	    {"swap", required_argument, NULL, OPT_SWAP},                                           \
	    {"cpus", required_argument, NULL, OPT_CPUS},                                           \
	    {"cpu-weight", required_argument, NULL, OPT_CPU_WEIGHT},                               \
	    {"pids", required_argument, NULL, OPT_PIDS},                                           \
	    {"io-weight", required_argument, NULL, OPT_IO_WEIGHT},                                 \
	{                                                                                          \
		"disk", required_argument, NULL, OPT_DISK                                          \
	}
/* Returns 1 if opt was a limit option (parsed into l), 0 if not, <0 on error. */
int cli_parse_limit(int opt, const char *arg, struct hsp_limits *l, hsp_error_t *err);

json_object *cli_limits_json(const struct hsp_limits *l);
json_object *cli_info_json(const struct hsp_ve_info *info);
void cli_print_json(json_object *o);
void cli_format_size(uint64_t v, char *buf, size_t len);

int cmd_create(struct cli *g, int argc, char **argv);
int cmd_start(struct cli *g, int argc, char **argv);
int cmd_stop(struct cli *g, int argc, char **argv);
int cmd_kill(struct cli *g, int argc, char **argv);
int cmd_restart(struct cli *g, int argc, char **argv);
int cmd_exec(struct cli *g, int argc, char **argv);
int cmd_enter(struct cli *g, int argc, char **argv);
int cmd_run(struct cli *g, int argc, char **argv);
int cmd_state(struct cli *g, int argc, char **argv);
int cmd_list(struct cli *g, int argc, char **argv);
int cmd_set(struct cli *g, int argc, char **argv);
int cmd_destroy(struct cli *g, int argc, char **argv);
int cmd_template(struct cli *g, int argc, char **argv);
int cmd_mount(struct cli *g, int argc, char **argv);
int cmd_pool(struct cli *g, int argc, char **argv);
int cmd_umount(struct cli *g, int argc, char **argv);
int cmd_snapshot(struct cli *g, int argc, char **argv);
int cmd_backup(struct cli *g, int argc, char **argv);
int cmd_restore(struct cli *g, int argc, char **argv);
int cmd_checkpoint(struct cli *g, int argc, char **argv);
int cmd_info(struct cli *g, int argc, char **argv);

#endif
