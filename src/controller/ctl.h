/* hsp-controller: shared state of the daemon.  Everything here is touched
 * only on the rpc loop's thread (see src/rpc/rpc.h), so nothing is locked,
 * except the metrics text handed to the HTTP thread (metrics.c). */
#ifndef HSP_CTL_H
#define HSP_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "hsp/v1/hsp.pb-c.h"
#include "hsp/v1/node.pb-c.h"
#include "hsp/v1/store.pb-c.h"
#include "rpc.h"
#include "store.h"

#define CTL_NAME_MAX 63

struct ctl_opts {
	const char *state_dir;
	const char *listen;  /* host:port of the TLS API */
	const char *socket;  /* unix socket for the machine's root */
	const char *metrics; /* host:port of /metrics, NULL = off */
	const char *cluster_name;
	const char *const *sans; /* extra subjectAltNames of the server cert */
	size_t n_sans;
	unsigned heartbeat_ms;
	unsigned suspect_ms;
	unsigned dead_ms;
	unsigned lease_ms;
	const char *subnet; /* VE addresses; NULL = VEs get none */
	const char *bridge;
	const char *storage; /* NULL/"local" or "cephfs" */
	const char *ceph_conf, *ceph_id, *ceph_keyring, *ceph_fs_path, *ceph_pool;
	const char *ceph_helper;
	bool gateway_external; /* the VE gateway is a router, not the nodes */
	unsigned max_moves;    /* a drain's parallel moves */
};

/* Who is calling. */
enum ctl_role { ROLE_NONE, ROLE_LOCAL, ROLE_ADMIN, ROLE_TENANT };
struct ctl_caller {
	enum ctl_role role;
	const char *tenant; /* ROLE_TENANT: points into the token record */
	const char *token_id;
};

struct ctl_cmd; /* a command sent to an agent, waiting for its result */

struct ctl_node {
	Hsp__V1__Node *pb; /* persisted fields + last reports */
	hsp_rpc_call_t *session;
	int64_t last_seen_ms; /* monotonic */
	struct ctl_cmd *cmds; /* in flight on this node */
	Hsp__V1__Template **templates;
	size_t n_templates;
	char *boot_id;
	bool fencing;		/* hsp-ceph fence runs for it */
	int64_t fence_retry_ms; /* monotonic: when a failed fence is tried again */
	int64_t down_since_ms;	/* monotonic: its last sign of life before it died */
	bool authorizing;	/* hsp-ceph authorize runs for its welcome */
	bool removing;		/* Nodes.Remove revokes its Ceph user */
};

/* An Operations.Wait call parked until its operation ends or its timer. */
struct ctl_waiter {
	hsp_rpc_call_t *call;
	uint64_t timer; /* 0 = none */
	void *timer_arg;
};

struct ctl_op {
	Hsp__V1__Operation *pb;
	uint64_t first_seq; /* its first event; 0 when not known (restart) */
	struct ctl_waiter *waiters;
	size_t n_waiters;
};

struct ctl_watcher {
	hsp_rpc_call_t *call;
	struct ctl_caller who;
	char *tenant; /* copy: the token may be revoked while watching */
	char *ve, *node, *operation;
	struct ctl_watcher *next;
};

struct ctl {
	struct ctl_opts o;
	hsp_rpc_loop_t *loop;
	hsp_rpc_server_t *srv;
	hsp_store_t *store;
	char *ca_cert, *ca_key, *ca_fp;
	int64_t started_at;

	struct ctl_node **nodes;
	size_t n_nodes;
	Hsp__V1__Ve **ves;
	size_t n_ves;
	Hsp__V1__StoredToken **tokens;
	size_t n_tokens;
	struct ctl_op **ops;
	size_t n_ops;
	Hsp__V1__Backup **backups;
	size_t n_backups;
	struct ctl_watcher *watchers;
	uint64_t event_seq;
	uint64_t next_cmd_id;
	uint32_t subnet_base, subnet_mask, gateway; /* host order */
	char *gateway_str;
};

extern struct ctl *ctl;

/* model.c: protobuf-c messages used as the in-memory model.  Every string
 * and sub-message is malloc'd, so protobuf_c_message_free_unpacked frees
 * them; these set fields in that discipline. */
void pb_set_str(char **field, const char *value);
char *pb_strdup(const char *s);
ProtobufCMessage *pb_clone(const ProtobufCMessage *m);
int64_t now_unix(void);
const char *ve_state_str(Hsp__V1__VeState s);
int64_t now_unix_ms(void);

Hsp__V1__Ve *ve_find(const char *name);
struct ctl_node *node_find(const char *name);
struct ctl_op *op_find(const char *id);
int ve_save(Hsp__V1__Ve *ve, hsp_error_t *err);
/* The last usage a node reported (not persisted). */
void ve_set_usage(Hsp__V1__Ve *ve, const Hsp__V1__VeUsage *u);
int ve_forget(const char *name, hsp_error_t *err);
int node_save(struct ctl_node *n, hsp_error_t *err);
int token_save(Hsp__V1__StoredToken *t, hsp_error_t *err);
int op_save(struct ctl_op *op, hsp_error_t *err);
Hsp__V1__Backup *backup_find(const char *id);
int backup_save(Hsp__V1__Backup *b, hsp_error_t *err);
/* Drops it from the model and the store. */
void backup_forget(const char *id);
int model_load(hsp_error_t *err);
void model_free(void);

/* Records an event and sends it to the watchers it concerns. */
void event_emit(const char *kind, const char *ve, const char *node, const char *op,
		const char *state, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
int events_watch(hsp_rpc_call_t *call, const struct ctl_caller *who,
		 const Hsp__V1__WatchRequest *req);
void events_unwatch(hsp_rpc_call_t *call);

/* Operations: begin persists a RUNNING operation; progress, done and fail
 * record its steps as events and wake Wait callers. */
struct ctl_op *op_begin(const char *kind, const char *ve, const char *node, hsp_error_t *err);
/* The same for a tenant's operation that is about more than a VE it owns
 * now (a backup): the tenant sees it and its events by that. */
struct ctl_op *op_begin_for(const char *kind, const char *ve, const char *node, const char *tenant,
			    hsp_error_t *err);
void op_progress(struct ctl_op *op, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void op_done(struct ctl_op *op, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void op_fail(struct ctl_op *op, grpc_status_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void op_expire(void);
/* Releases a waiter: its timer, its call reference. */
void waiter_release(struct ctl_waiter *w);
void ops_release_waiters(void);

/* auth.c */
int caller_identify(hsp_rpc_call_t *call, struct ctl_caller *who);
bool caller_is_admin(const struct ctl_caller *who);
bool caller_sees_ve(const struct ctl_caller *who, const Hsp__V1__Ve *ve);
const char *caller_describe(const struct ctl_caller *who, char *buf, size_t n);
int token_parse(const char *s, const char *prefix, char *id, size_t idn, const char **secret);
Hsp__V1__StoredToken *token_find(const char *id);

/* validate.c */
bool valid_name(const char *s);
const char *limits_invalid(const Hsp__V1__Limits *l);
const char *ssh_key_invalid(const char *key);

/* nodes.c: the node API and commands to agents. */
typedef void (*ctl_cmd_done_fn)(void *ud, const Hsp__V1__CommandResult *res);
typedef void (*ctl_cmd_exec_fn)(void *ud, const Hsp__V1__ExecOutput *out);
/* Sends a command to a connected node.  done runs exactly once: with the
 * agent's result, or with UNAVAILABLE when the node's session ends first. */
int cmd_send(struct ctl_node *n, Hsp__V1__Command *cmd, ctl_cmd_done_fn done,
	     ctl_cmd_exec_fn exec_out, void *ud, hsp_error_t *err);
bool node_usable(const struct ctl_node *n);
void node_disconnect(struct ctl_node *n, const char *why);
void node_destroy(struct ctl_node *n);
/* Drops from the store the keys a removed node joined with. */
void node_forget_keys(const char *node);
const char *node_state_str(Hsp__V1__NodeState s);
/* Records and announces a node's new state (nothing when unchanged). */
void node_set_state(struct ctl_node *n, Hsp__V1__NodeState s, const char *why);
void nodes_tick(void *arg);
/* Maintenance: the node unmounts the shared pool. */
void node_release_storage(struct ctl_node *n);
/* Sends the node its configuration again (after an undrain). */
void node_welcome(struct ctl_node *n);
void node_allocated(const struct ctl_node *n, uint64_t *mem, uint32_t *cpu_millis, uint32_t *count);
extern const struct hsp_rpc_method ctl_node_methods[];
extern const size_t ctl_n_node_methods;

/* moves.c: migration, drain, failover, rescue */
bool ve_on_shared_storage(const Hsp__V1__Ve *ve);
/* Every node sees this pool (the cluster's CephFS pool). */
bool pool_is_shared(const char *pool);
int drain_begin(struct ctl_node *n, struct ctl_op *op);
bool drain_running(const char *node);
void drains_free(void);
/* Places the VEs of a fenced node elsewhere (again on every tick). */
void evacuate(struct ctl_node *dead);
extern const struct hsp_rpc_method ctl_move_methods[];
extern const size_t ctl_n_move_methods;

/* ves.c */
void ve_set_state(Hsp__V1__Ve *ve, Hsp__V1__VeState s, const char *msg);
/* A VE the caller may see, or NULL after answering NOT_FOUND (the same
 * words whether it does not exist or is someone else's). */
Hsp__V1__Ve *ve_lookup(hsp_rpc_call_t *call, const struct ctl_caller *who, const char *name);
/* false after answering FAILED_PRECONDITION when an operation runs on it. */
bool ve_not_busy(hsp_rpc_call_t *call, Hsp__V1__Ve *ve);
/* The opening of a call that changes a VE: the caller, the VE it may see,
 * no operation running on it.  NULL once answered. */
Hsp__V1__Ve *ve_for_op(hsp_rpc_call_t *call, const char *name, struct ctl_caller *who);
/* A restore of backup b as the new VE `name` (on `node`, admin only); the
 * backup is held until it ends. */
void ve_create_from_backup(hsp_rpc_call_t *call, const struct ctl_caller *who, Hsp__V1__Backup *b,
			   const char *name, const char *node, bool start);
struct ctl_place {
	const char *template_; /* NULL: none needed */
	const Hsp__V1__Limits *limits;
	const char *node;     /* only this one (NULL or "" = any) */
	const char *not_node; /* never this one (a move's source) */
};
struct ctl_node *place_ve(const struct ctl_place *w, grpc_status_code *code, char *why,
			  size_t whyn);
extern const struct hsp_rpc_method ctl_ve_methods[];
extern const size_t ctl_n_ve_methods;
void ves_schedule_ttl(Hsp__V1__Ve *ve);
void ves_resume(void);
void ves_free_timers(void);

/* backups.c */
extern const struct hsp_rpc_method ctl_backup_methods[];
extern const size_t ctl_n_backup_methods;

/* admin.c: nodes, templates, tokens, events, operations, cluster */
extern const struct hsp_rpc_method ctl_admin_methods[];
extern const size_t ctl_n_admin_methods;
int token_create(Hsp__V1__TokenKind kind, const char *tenant, uint32_t ttl, const char *desc,
		 char **secret, hsp_error_t *err);

/* ipam.c */
int ipam_init(hsp_error_t *err);
int ipam_alloc(char **cidr, hsp_error_t *err);
/* A node's own address on the VE segment: from the top of the subnet. */
int ipam_alloc_node(char **cidr, hsp_error_t *err);

/* ceph.c: hsp-ceph runs in a thread; done runs on the loop with 0 or an
 * errno, its stdout and its one-line error. */
typedef void (*ceph_done_fn)(void *ud, int err_no, const char *out, const char *msg);
bool ceph_enabled(void);
/* The cephx id of a node's own user. */
void ceph_entity(const char *node, char *buf, size_t n);
int ceph_run(const char *verb, const char *node, ceph_done_fn done, void *ud, hsp_error_t *err);
/* At shutdown: waits for running jobs, whose results the loop's end delivers. */
void ceph_jobs_join(void);

/* metrics.c */
int metrics_start(const char *addr, hsp_error_t *err);
void metrics_stop(void);
void metrics_refresh(void *arg);
void metrics_observe(const char *method, int64_t usec, grpc_status_code code);

/* Common answer helpers: they record API latency too. */
void api_reply(hsp_rpc_call_t *call, const ProtobufCMessage *msg);
void api_fail(hsp_rpc_call_t *call, grpc_status_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Authenticates a public API call; answers it UNAUTHENTICATED and returns
 * false when it may not proceed. */
bool api_begin(hsp_rpc_call_t *call, struct ctl_caller *who);

#endif
