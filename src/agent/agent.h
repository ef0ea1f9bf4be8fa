/* hsp-agent: the node agent.  It joins the cluster once, then keeps one
 * bidi Session stream to the controller open, reports the node and its
 * VEs, and runs the controller's commands by spawning the hsp-runtime CLI.
 *
 * Threads: the rpc loop thread owns every piece of mutable daemon state
 * (session, queue, config); workers (one per command, one per gather) only
 * read the immutable struct agent_conf and hand their results back with
 * agent_post().  grpc runs its own threads, so children are only ever
 * made with posix_spawn (see runner.c). */
#ifndef HSP_AGENT_H
#define HSP_AGENT_H

#include <grpc/status.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hsp/v1/node.pb-c.h"
#include "rpc.h"

#define AGENT_VERSION "0.1.0"
#define AGENT_DEFAULT_ROOT "/var/lib/hsp"
#define AGENT_DEFAULT_RUN_DIR "/run/hsp"
/* Largest piece of exec output in one message. */
#define AGENT_CHUNK_MAX (32 * 1024)

/* What the command line and the environment decided; never changes once
 * the loop runs, so every thread may read it without locks. */
struct agent_conf {
	char *controller; /* HOST:PORT as given */
	char *host;	  /* without brackets */
	unsigned port;
	char *name;
	char *state_dir;
	char *token;
	char *runtime; /* absolute path of hsp-runtime */
	char *root;
	char *run_dir;
	char *address;
	char *log_path;
	char *ve_uplink; /* the interface onto the shared VE segment, if any */
	unsigned heartbeat_ms;
	bool heartbeat_set;	/* --heartbeat-ms given */
	bool join_only;		/* --join-only: join if needed, then exit */
	bool drain_on_shutdown; /* SIGTERM: have our VEs moved away first */
	char *boot_id;
	char **child_env; /* environ + HSP_ERRNO_FD=3 */
};

struct session;
struct jobs;

struct agent {
	struct agent_conf c;
	hsp_rpc_loop_t *loop;
	/* Loop thread only. */
	Hsp__V1__ClusterConfig *config; /* last known; NULL before join */
	char *ca_pem, *cert_pem, *key_pem;
	struct session *s;
	struct jobs *jobs;
	bool stopping;
};

/* ------------------------------------------------------------ main.c */

/* hsp_rpc_loop_post that is safe from any thread at any time: once the
 * loop is gone it runs nothing and returns -ESHUTDOWN (the caller still
 * owns arg). */
int agent_post(struct agent *a, void (*fn)(void *), void *arg);
/* A detached thread; 0 or -errno. */
int agent_thread(void *(*fn)(void *), void *arg);
/* Set by SIGTERM/SIGINT: long blocking steps before the loop (join) look
 * at it. */
bool agent_stop_requested(void);

/* ------------------------------------------------------------ log.c */

/* network.c */
void network_ensure_async(const Hsp__V1__ClusterConfig *cfg, const char *uplink);

int agent_log_open(const char *path, hsp_error_t *err);
void agent_log_reopen(void);
/* One line with a UTC timestamp, written with a single write(2). */
void agent_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ------------------------------------------------------------ pb.c */

/* Messages the agent builds are allocated exactly like unpacked ones
 * (every pointer malloc'd, empty strings = protobuf_c_empty_string), so
 * protobuf_c_message_free_unpacked frees any of them. */
char *pb_str(const char *s);
void *pb_clone(const ProtobufCMessage *m);
void pb_free(void *m);
Hsp__V1__AgentMessage *pb_result_msg(uint64_t id, int code, const char *message);
const char *pb_code_name(int code);

/* ------------------------------------------------------------ runner.c */

/* A growable NULL-terminated argv. */
struct argv_buf {
	char **v;
	size_t n, cap;
};
void argv_add(struct argv_buf *b, const char *s);
void argv_addf(struct argv_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void argv_clear(struct argv_buf *b);
/* hsp-runtime --root R --run-dir RR */
void argv_runtime(struct argv_buf *b, const struct agent_conf *c);

enum { RUN_STDOUT = 1, RUN_STDERR = 2 };

typedef void (*run_output_fn)(void *ud, int stream, const char *data, size_t len);

struct run_spec {
	char *const *argv; /* argv[0]: a path, or a name looked up in $PATH */
	char *const *envp;
	const void *in; /* stdin; NULL = /dev/null */
	size_t in_len;
	unsigned timeout_ms; /* 0 = none; then SIGKILL to the process group */
	/* Stream mode: output goes here as it arrives instead of into
	 * run_out.out; stderr too until the runtime reported an errno. */
	run_output_fn on_output;
	void *ud;
	/* Called with the child's pid (a process group leader) once it runs. */
	void (*on_start)(void *ud, pid_t pid);
	/* > 2: the child's stdin / stdout as they are (a file), instead of
	 * `in` / capture. */
	int stdin_fd, stdout_fd;
};

struct run_out {
	int status; /* wait status */
	int err_no; /* what hsp-runtime wrote to HSP_ERRNO_FD; 0 = nothing */
	bool timed_out;
	char *out; /* stdout, NUL-terminated (capture mode) */
	size_t out_len;
	char *err; /* stderr, NUL-terminated */
	size_t err_len;
};

/* Runs to completion.  0 when the program ran (whatever its status), or
 * -errno when it could not be started. */
int run_program(const struct run_spec *spec, struct run_out *r, hsp_error_t *err);
void run_out_clear(struct run_out *r);
/* `hsp-runtime ... args` in capture mode. */
int run_runtime(const struct agent_conf *c, char *const *args, unsigned timeout_ms,
		struct run_out *r, hsp_error_t *err);
/* The same with the child's stdin and stdout on files (-1: as above). */
int run_runtime_io(const struct agent_conf *c, char *const *args, unsigned timeout_ms, int in_fd,
		   int out_fd, struct run_out *r, hsp_error_t *err);
/* The gRPC code for an outcome (0 = success) and its one-line message
 * (malloc'd, "" on success). */
int run_code(const struct run_out *r, char **msg);
int errno_to_code(int e);
/* The runtime's one-line message from its stderr, without the prefix. */
char *run_message(const struct run_out *r);

/* ------------------------------------------------------------ report.c */

int report_capacity(const struct agent_conf *c, Hsp__V1__NodeCapacity **cap);
double report_load1(void);
uint64_t report_memory_used(void);
char *report_boot_id(void);
/* `list --json` → VeStatus array. */
int report_ves(const struct agent_conf *c, Hsp__V1__VeStatus ***ves, size_t *n, hsp_error_t *err);
void report_ves_free(Hsp__V1__VeStatus **ves, size_t n);
Hsp__V1__VeStatus *report_ve_from_json(json_object *o);
/* `state NAME --json`: the status, and the VE's IP (no prefix) when it has
 * one.  -ENOENT when the VE does not exist. */
int report_ve_state(const struct agent_conf *c, const char *name, Hsp__V1__VeStatus **ve, char **ip,
		    hsp_error_t *err);
/* `template list --json [--pool P]`: with a shared pool, its store. */
int report_templates(const struct agent_conf *c, const char *pool, Hsp__V1__Template ***t,
		     size_t *n, hsp_error_t *err);
bool report_has_criu(const struct agent_conf *c);
/* The whole Hello (blocking: spawns the runtime several times). */
int report_hello(const struct agent_conf *c, const char *pool, Hsp__V1__Hello **hello,
		 hsp_error_t *err);
/* Parses a runtime's --json output. */
int report_parse_json(const struct run_out *r, json_object **o, hsp_error_t *err);

/* ------------------------------------------------------------ state.c */

int state_prepare_dir(const char *dir, hsp_error_t *err);
bool state_joined(const char *dir);
int state_load(struct agent *a, hsp_error_t *err);
/* node.key, written (and synced) before Join; loading it fails with
 * -ENOENT when there is none, -EPERM when others may read it. */
int state_save_key(const char *dir, const char *key, hsp_error_t *err);
int state_load_key(const char *dir, char **key, hsp_error_t *err);
int state_save_join(const char *dir, const char *ca, const char *cert,
		    const Hsp__V1__ClusterConfig *cfg, hsp_error_t *err);
int state_save_config(const char *dir, const Hsp__V1__ClusterConfig *cfg, hsp_error_t *err);
/* DIR/ceph.conf and DIR/ceph.keyring (0600) from the config. */
int state_write_ceph(const char *dir, const Hsp__V1__StorageConfig *s, char **conf, char **keyring,
		     hsp_error_t *err);
/* A private (0600) temporary file in DIR holding data; *path to unlink. */
int state_write_temp(const char *dir, const char *prefix, const char *data, size_t len, char **path,
		     hsp_error_t *err);

/* ------------------------------------------------------------ storage.c */

bool storage_is_cephfs(const Hsp__V1__ClusterConfig *cfg);
/* Makes sure the runtime has the config's pool (blocking; any thread,
 * serialized).  Remembers success until storage_forget(). */
int storage_ensure(const struct agent_conf *c, const Hsp__V1__StorageConfig *s, hsp_error_t *err);
bool storage_ready(void);
void storage_forget(void);
/* Loop thread: runs storage_ensure in a worker. */
void storage_ensure_async(struct agent *a);

/* ------------------------------------------------------------ fenced.c */

/* Worker: kills every running VE of this node; `why` prefixes the log. */
void agent_kill_all(const struct agent_conf *c, const char *why);
/* Loop thread: the controller fenced this node: kill its VEs, remount the
 * shared pool, then hello again with fence_cleared. */
void fenced_clear_async(struct agent *a);

/* ------------------------------------------------------------ join.c */

int join_cluster(struct agent *a, hsp_error_t *err);
/* "HOST:PORT" / "[V6]:PORT" */
int parse_host_port(const char *s, char **host, unsigned *port, hsp_error_t *err);
/* The local address the kernel would use towards the controller. */
char *detect_address(const char *host, unsigned port);

/* ------------------------------------------------------------ session.c */

int session_start(struct agent *a, hsp_error_t *err);
/* Loop thread: queues a message for the controller (takes ownership);
 * sent at once when a session is open, else when the next one opens. */
void session_send(struct agent *a, Hsp__V1__AgentMessage *m);
/* Loop thread: SIGTERM/SIGINT.  A second call hurries. */
void session_shutdown(struct agent *a);
/* Loop thread: a command ended (the shutdown may be waiting for it). */
void session_job_ended(struct agent *a);
void session_free(struct agent *a);

/* ------------------------------------------------------------ command.c */

void jobs_init(struct agent *a);
/* Loop thread: runs a command in a worker thread. */
void command_dispatch(struct agent *a, const Hsp__V1__Command *cmd);
unsigned jobs_running(const struct agent *a);
/* Any thread: hands a message to the loop (takes ownership). */
void agent_post_message(struct agent *a, Hsp__V1__AgentMessage *m);
/* Worker: the VE's status (NULL when it does not exist). */
Hsp__V1__VeStatus *command_ve_status(const struct agent_conf *c, const char *name);

/* ------------------------------------------------------------ exec-cmd.c */

/* Worker: runs EXEC, posting output chunks; returns the result message. */
Hsp__V1__AgentMessage *exec_command(struct agent *a, const Hsp__V1__Command *cmd);
/* Kills the process group of a running EXEC; false when none runs. */
bool exec_cancel(uint64_t id);
/* Kills every running EXEC; returns how many. */
unsigned exec_cancel_all(void);
/* Exec output's flow control.  Loop thread: a posted chunk of n bytes
 * was taken from the post queue; the session holds `bytes` unsent. */
void exec_flow_taken(size_t n);
void exec_flow_queued(size_t bytes);

#endif
