/* The controller's commands.  Each runs in its own worker thread, which
 * spawns hsp-runtime and blocks on it; the loop thread only dispatches
 * and, when the worker posts its result, sends it.  A worker sees a deep
 * copy of its command and of the config bits it needs, never the loop's
 * state. */
#define _GNU_SOURCE
#include "agent.h"
#include "utils.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_JOBS 256
#define VERB_TIMEOUT_MS (10 * 60 * 1000)
#define BACKUP_TIMEOUT_MS (6 * 3600 * 1000) /* a big VE over a slow pool */
#define SSHD_WAIT_MS 30000
#define SSHD_POLL_MS 50

struct running {
	uint64_t id;
	struct running *next;
};

struct jobs {
	struct running *head;
	unsigned n;
};

struct job {
	struct agent *a;
	Hsp__V1__Command *cmd;
	/* CREATE on shared storage: where, and how to make sure it is there. */
	Hsp__V1__StorageConfig *storage;
};

void jobs_init(struct agent *a)
{
	a->jobs = calloc(1, sizeof(*a->jobs));
	if (a->jobs == NULL)
		abort();
}

unsigned jobs_running(const struct agent *a)
{
	return a->jobs->n;
}

static bool jobs_has(struct jobs *j, uint64_t id)
{
	for (struct running *r = j->head; r; r = r->next)
		if (r->id == id)
			return true;
	return false;
}

static void jobs_add(struct jobs *j, uint64_t id)
{
	struct running *r = malloc(sizeof(*r));
	if (r == NULL)
		abort();
	*r = (struct running){.id = id, .next = j->head};
	j->head = r;
	j->n++;
}

static void jobs_remove(struct jobs *j, uint64_t id)
{
	for (struct running **p = &j->head; *p; p = &(*p)->next) {
		if ((*p)->id != id)
			continue;
		struct running *r = *p;
		*p = r->next;
		free(r);
		j->n--;
		return;
	}
}

/* ------------------------------------------------------------ posting */

struct posted {
	struct agent *a;
	Hsp__V1__AgentMessage *m;
	bool done; /* the job's final result */
	uint64_t id;
};

static void on_posted(void *arg)
{
	struct posted *p = arg;
	struct agent *a = p->a;
	if (p->m->msg_case == HSP__V1__AGENT_MESSAGE__MSG_EXEC && p->m->exec->output)
		exec_flow_taken(p->m->exec->output->data.len);
	if (p->done) {
		jobs_remove(a->jobs, p->id);
		const Hsp__V1__CommandResult *r = p->m->result;
		if (r->code == 0)
			agent_log("command %" PRIu64 ": done", r->id);
		else
			agent_log("command %" PRIu64 ": %s: %s", r->id, pb_code_name(r->code),
				  r->message);
	}
	session_send(a, p->m);
	if (p->done)
		session_job_ended(a);
	free(p);
}

static void post(struct agent *a, Hsp__V1__AgentMessage *m, bool done, uint64_t id)
{
	struct posted *p = malloc(sizeof(*p));
	if (p == NULL)
		abort();
	*p = (struct posted){.a = a, .m = m, .done = done, .id = id};
	/* The loop is gone only when the agent exits: nobody to tell. */
	if (agent_post(a, on_posted, p) < 0) {
		pb_free(m);
		free(p);
	}
}

void agent_post_message(struct agent *a, Hsp__V1__AgentMessage *m)
{
	post(a, m, false, 0);
}

/* ------------------------------------------------------------ helpers */

Hsp__V1__VeStatus *command_ve_status(const struct agent_conf *c, const char *name)
{
	Hsp__V1__VeStatus *ve = NULL;
	hsp_error_t err = NULL;
	if (report_ve_state(c, name, &ve, NULL, &err) < 0)
		hsp_error_release(&err);
	return ve;
}

static Hsp__V1__AgentMessage *fail(uint64_t id, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static Hsp__V1__AgentMessage *fail(uint64_t id, int code, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return pb_result_msg(id, code, msg);
}

static Hsp__V1__AgentMessage *from_error(uint64_t id, hsp_error_t *err)
{
	Hsp__V1__AgentMessage *m = pb_result_msg(id, errno_to_code((*err)->status), (*err)->msg);
	hsp_error_release(err);
	return m;
}

/* A hung runtime must not hold a worker forever; a long stop timeout
 * (up to an hour) must not be cut short either. */
static unsigned verb_timeout_ms(const Hsp__V1__Command *cmd)
{
	unsigned s = cmd->timeout_seconds > 3600 ? 3600 : cmd->timeout_seconds;
	return VERB_TIMEOUT_MS > (s + 60) * 1000 ? VERB_TIMEOUT_MS : (s + 60) * 1000;
}

/* Runs `hsp-runtime args`; the result, without the VE's status. */
static Hsp__V1__AgentMessage *run_verb(struct job *j, struct argv_buf *args)
{
	struct run_out r;
	hsp_error_t err = NULL;
	if (run_runtime(&j->a->c, args->v, verb_timeout_ms(j->cmd), &r, &err) < 0)
		return from_error(j->cmd->id, &err);
	cleanup_free char *msg = NULL;
	int code = run_code(&r, &msg);
	run_out_clear(&r);
	return pb_result_msg(j->cmd->id, code, msg);
}

static void with_status(struct job *j, Hsp__V1__AgentMessage *m)
{
	m->result->ve = command_ve_status(&j->a->c, j->cmd->ve);
}

static void limit_args(struct argv_buf *b, const Hsp__V1__Limits *l)
{
	if (l == NULL)
		return;
	if (l->memory_bytes)
		argv_addf(b, "--memory=%" PRIu64, l->memory_bytes);
	if (l->swap_bytes)
		argv_addf(b, "--swap=%" PRIu64, l->swap_bytes);
	if (l->cpu_millis)
		argv_addf(b, "--cpus=%u.%03u", l->cpu_millis / 1000, l->cpu_millis % 1000);
	if (l->cpu_weight)
		argv_addf(b, "--cpu-weight=%u", l->cpu_weight);
	if (l->pids)
		argv_addf(b, "--pids=%u", l->pids);
	if (l->io_weight)
		argv_addf(b, "--io-weight=%u", l->io_weight);
	if (l->disk_bytes)
		argv_addf(b, "--disk=%" PRIu64, l->disk_bytes);
}

/* ------------------------------------------------------------ CREATE */

/* One key a line, so a key cannot smuggle in a second line. */
static int write_keys(struct job *j, char **path, hsp_error_t *err)
{
	const Hsp__V1__VeSpec *s = j->cmd->spec;
	cleanup_free char *all = NULL;
	size_t len = 0;
	for (size_t i = 0; i < s->n_ssh_keys; i++) {
		const char *k = s->ssh_keys[i];
		if (strpbrk(k, "\r\n") || *k == '\0')
			return hsp_make_error(err, EINVAL, "ssh key %zu: not a single line", i + 1);
		char *n = realloc(all, len + strlen(k) + 2);
		if (n == NULL)
			return hsp_make_errno(err, ENOMEM, "ssh keys");
		all = n;
		len += (size_t)sprintf(all + len, "%s\n", k);
	}
	return state_write_temp(j->a->c.state_dir, ".ssh-keys", all, len, path, err);
}

static void create_args(struct job *j, struct argv_buf *b, const char *keys)
{
	const Hsp__V1__VeSpec *s = j->cmd->spec;
	argv_add(b, "create");
	argv_add(b, j->cmd->ve);
	argv_addf(b, "--template=%s", s->template_);
	if (*s->hostname)
		argv_addf(b, "--hostname=%s", s->hostname);
	limit_args(b, s->limits);
	if (*s->ip) {
		argv_addf(b, "--ip=%s", s->ip);
		if (*s->gateway)
			argv_addf(b, "--gateway=%s", s->gateway);
		if (*s->bridge)
			argv_addf(b, "--bridge=%s", s->bridge);
	}
	if (keys)
		argv_addf(b, "--ssh-key=%s", keys);
	if (j->storage)
		argv_addf(b, "--pool=%s", j->storage->pool);
}

static Hsp__V1__AgentMessage *do_create(struct job *j)
{
	const Hsp__V1__VeSpec *s = j->cmd->spec;
	hsp_error_t err = NULL;
	if (s == NULL || *s->template_ == '\0')
		return fail(j->cmd->id, GRPC_STATUS_INVALID_ARGUMENT, "create: no template given");
	if (j->storage && storage_ensure(&j->a->c, j->storage, &err) < 0)
		return from_error(j->cmd->id, &err);
	cleanup_free char *keys = NULL;
	if (s->n_ssh_keys && write_keys(j, &keys, &err) < 0)
		return from_error(j->cmd->id, &err);
	struct argv_buf b = {0};
	create_args(j, &b, keys);
	Hsp__V1__AgentMessage *m = run_verb(j, &b);
	argv_clear(&b);
	if (keys)
		unlink(keys);
	return m;
}

/* ------------------------------------------------------------ START */

/* One connect attempt, at most SSHD_POLL_MS. */
static bool tcp_accepts(const struct addrinfo *ai)
{
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	bool ok = connect(fd, ai->ai_addr, ai->ai_addrlen) == 0;
	if (!ok && errno == EINPROGRESS) {
		struct pollfd p = {.fd = fd, .events = POLLOUT};
		int soerr = 1;
		socklen_t len = sizeof(soerr);
		ok = poll(&p, 1, SSHD_POLL_MS) == 1 &&
		     getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == 0 && soerr == 0;
	}
	close(fd);
	return ok;
}

/* From the agent's own network namespace: the VE bridge is on this node. */
static bool wait_port22(const char *ip)
{
	struct addrinfo hints = {.ai_flags = AI_NUMERICHOST, .ai_socktype = SOCK_STREAM};
	struct addrinfo *ai = NULL;
	if (getaddrinfo(ip, "22", &hints, &ai) != 0)
		return true; /* not an address we can probe: do not hold START */
	int64_t until = hsp_rpc_now_ms() + SSHD_WAIT_MS;
	bool ok = false;
	while (!ok && hsp_rpc_now_ms() < until) {
		int64_t slot = hsp_rpc_now_ms() + SSHD_POLL_MS;
		ok = tcp_accepts(ai);
		int64_t left = slot - hsp_rpc_now_ms();
		if (!ok && left > 0) {
			struct timespec ts = {0, left * 1000000L};
			nanosleep(&ts, NULL);
		}
	}
	freeaddrinfo(ai);
	return ok;
}

static bool has_sshd(struct job *j)
{
	char *args[] = {"exec", j->cmd->ve, "--", "test", "-x", "/usr/sbin/sshd", NULL};
	struct run_out r;
	hsp_error_t err = NULL;
	if (run_runtime(&j->a->c, args, 30000, &r, &err) < 0) {
		hsp_error_release(&err);
		return false;
	}
	bool yes =
	    r.err_no == 0 && !r.timed_out && WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0;
	run_out_clear(&r);
	return yes;
}

/* Started means "sshd accepts" when the VE has an address and an sshd,
 * so the controller can finish `create --wait` on it. */
static Hsp__V1__AgentMessage *do_start(struct job *j, struct argv_buf *args)
{
	Hsp__V1__AgentMessage *m = run_verb(j, args);
	if (m->result->code != GRPC_STATUS_OK)
		return m;
	Hsp__V1__VeStatus *ve = NULL;
	cleanup_free char *ip = NULL;
	hsp_error_t err = NULL;
	if (report_ve_state(&j->a->c, j->cmd->ve, &ve, &ip, &err) < 0)
		hsp_error_release(&err);
	pb_free(ve);
	if (ip && has_sshd(j) && !wait_port22(ip)) {
		pb_free(m);
		m = fail(j->cmd->id, GRPC_STATUS_DEADLINE_EXCEEDED,
			 "sshd did not accept within 30 s");
	}
	return m;
}

/* ------------------------------------------------------------ snapshots */

static Hsp__V1__AgentMessage *do_snapshot_list(struct job *j, struct argv_buf *args)
{
	struct run_out r;
	hsp_error_t err = NULL;
	if (run_runtime(&j->a->c, args->v, VERB_TIMEOUT_MS, &r, &err) < 0)
		return from_error(j->cmd->id, &err);
	cleanup_free char *msg = NULL;
	json_object *a = NULL;
	int code = run_code(&r, &msg);
	if (code == GRPC_STATUS_OK && report_parse_json(&r, &a, &err) < 0) {
		run_out_clear(&r);
		return from_error(j->cmd->id, &err);
	}
	run_out_clear(&r);
	Hsp__V1__AgentMessage *m = pb_result_msg(j->cmd->id, code, msg);
	Hsp__V1__CommandResult *res = m->result;
	size_t n = json_object_is_type(a, json_type_array) ? json_object_array_length(a) : 0;
	if (n && (res->snapshots = calloc(n, sizeof(*res->snapshots))) == NULL)
		abort();
	for (size_t i = 0; i < n; i++) {
		json_object *o = json_object_array_get_idx(a, i), *v;
		Hsp__V1__Snapshot *s = calloc(1, sizeof(*s));
		if (s == NULL)
			abort();
		hsp__v1__snapshot__init(s);
		if (json_object_object_get_ex(o, "name", &v))
			s->name = pb_str(json_object_get_string(v));
		if (json_object_object_get_ex(o, "created", &v))
			s->created_at = json_object_get_int64(v);
		res->snapshots[res->n_snapshots++] = s;
	}
	json_object_put(a);
	return m;
}

/* ------------------------------------------------------------ dispatch */

static const char *kind_name(Hsp__V1__CommandKind k)
{
	const ProtobufCEnumValue *v =
	    protobuf_c_enum_descriptor_get_value(&hsp__v1__command_kind__descriptor, (int)k);
	return v ? v->name + strlen("COMMAND_KIND_") : "(unknown kind)";
}

static bool is_backup_kind(Hsp__V1__CommandKind k)
{
	return k == HSP__V1__COMMAND_KIND__COMMAND_KIND_BACKUP_CREATE ||
	       k == HSP__V1__COMMAND_KIND__COMMAND_KIND_BACKUP_RESTORE ||
	       k == HSP__V1__COMMAND_KIND__COMMAND_KIND_BACKUP_DELETE;
}

/* Names become arguments: one starting with '-' would be an option. */
static Hsp__V1__AgentMessage *check_names(const Hsp__V1__Command *cmd)
{
	hsp_error_t err = NULL;
	bool snap = cmd->kind == HSP__V1__COMMAND_KIND__COMMAND_KIND_SNAPSHOT_CREATE ||
		    cmd->kind == HSP__V1__COMMAND_KIND__COMMAND_KIND_SNAPSHOT_RESTORE ||
		    cmd->kind == HSP__V1__COMMAND_KIND__COMMAND_KIND_SNAPSHOT_DELETE;
	/* A backup id also becomes a file name. */
	if (hsp_validate_name(cmd->ve, "VE", &err) < 0 ||
	    (snap && hsp_validate_name(cmd->snapshot, "snapshot", &err) < 0) ||
	    (is_backup_kind(cmd->kind) && hsp_validate_name(cmd->backup, "backup", &err) < 0))
		return from_error(cmd->id, &err);
	return NULL;
}

/* The verb's arguments for the kinds that are one runtime call. */
static bool simple_args(const Hsp__V1__Command *cmd, struct argv_buf *b)
{
	static const char *const snap_verb[] = {
	    [HSP__V1__COMMAND_KIND__COMMAND_KIND_SNAPSHOT_CREATE] = "create",
	    [HSP__V1__COMMAND_KIND__COMMAND_KIND_SNAPSHOT_RESTORE] = "restore",
	    [HSP__V1__COMMAND_KIND__COMMAND_KIND_SNAPSHOT_DELETE] = "delete",
	    [HSP__V1__COMMAND_KIND__COMMAND_KIND_SNAPSHOT_LIST] = "list",
	};
	unsigned timeout = cmd->timeout_seconds ? cmd->timeout_seconds : 10;
	switch (cmd->kind) {
	case HSP__V1__COMMAND_KIND__COMMAND_KIND_START:
	case HSP__V1__COMMAND_KIND__COMMAND_KIND_KILL:
		argv_add(b,
			 cmd->kind == HSP__V1__COMMAND_KIND__COMMAND_KIND_START ? "start" : "kill");
		argv_add(b, cmd->ve);
		if (cmd->rescue)
			argv_add(b, "--rescue");
		return true;
	case HSP__V1__COMMAND_KIND__COMMAND_KIND_STOP:
	case HSP__V1__COMMAND_KIND__COMMAND_KIND_RESTART:
		argv_add(b, cmd->kind == HSP__V1__COMMAND_KIND__COMMAND_KIND_STOP ? "stop"
										  : "restart");
		argv_add(b, cmd->ve);
		argv_addf(b, "--timeout=%u", timeout);
		return true;
	case HSP__V1__COMMAND_KIND__COMMAND_KIND_DESTROY:
		argv_add(b, "destroy");
		argv_add(b, cmd->ve);
		argv_add(b, "--force");
		return true;
	case HSP__V1__COMMAND_KIND__COMMAND_KIND_SET_LIMITS:
		argv_add(b, "set");
		argv_add(b, cmd->ve);
		limit_args(b, cmd->limits);
		return true;
	case HSP__V1__COMMAND_KIND__COMMAND_KIND_CHECKPOINT:
	case HSP__V1__COMMAND_KIND__COMMAND_KIND_RESTORE:
		return true; /* their own functions build theirs */
	case HSP__V1__COMMAND_KIND__COMMAND_KIND_SNAPSHOT_CREATE:
	case HSP__V1__COMMAND_KIND__COMMAND_KIND_SNAPSHOT_RESTORE:
	case HSP__V1__COMMAND_KIND__COMMAND_KIND_SNAPSHOT_DELETE:
	case HSP__V1__COMMAND_KIND__COMMAND_KIND_SNAPSHOT_LIST:
		argv_add(b, "snapshot");
		argv_add(b, snap_verb[cmd->kind]);
		argv_add(b, cmd->ve);
		argv_add(b, cmd->kind == HSP__V1__COMMAND_KIND__COMMAND_KIND_SNAPSHOT_LIST
				? "--json"
				: cmd->snapshot);
		return true;
	default:
		return false;
	}
}

/* Maintenance: this node lets go of the shared pool; any later use of it
 * (a welcome after an undrain) mounts it again. */
static Hsp__V1__AgentMessage *do_release_storage(struct job *j)
{
	if (j->storage == NULL)
		return pb_result_msg(j->cmd->id, GRPC_STATUS_OK, "no shared storage");
	char *args[] = {"pool", "unmount", j->storage->pool, NULL};
	struct argv_buf b = {.v = args};
	storage_forget();
	return run_verb(j, &b);
}

/* ------------------------------------------------------------ live migration */

/* Where a VE's checkpoint goes: in the shared pool, which the source and
 * the target both mount under their runtime roots. */
static char *checkpoint_dir(const struct job *j)
{
	return hsp_strdup_printf("%s/pools/%s/migrations/%s", j->a->c.root, j->storage->pool,
				 j->cmd->ve);
}

static Hsp__V1__AgentMessage *do_checkpoint(struct job *j)
{
	if (j->storage == NULL)
		return fail(j->cmd->id, GRPC_STATUS_FAILED_PRECONDITION,
			    "live migration needs the shared pool");
	cleanup_free char *dir = checkpoint_dir(j);
	cleanup_free char *parent = hsp_strdup_printf("%s/..", dir);
	hsp_error_t err = NULL;
	/* A checkpoint left by a move that failed half-way is stale. */
	if (hsp_rm_rf(dir, &err) < 0 || hsp_mkdir_p(parent, 0700, &err) < 0)
		return from_error(j->cmd->id, &err);
	char *args[] = {"checkpoint", j->cmd->ve, "--dir", dir, NULL};
	struct argv_buf b = {.v = args};
	return run_verb(j, &b);
}

static Hsp__V1__AgentMessage *do_restore(struct job *j)
{
	if (j->storage == NULL)
		return fail(j->cmd->id, GRPC_STATUS_FAILED_PRECONDITION,
			    "live migration needs the shared pool");
	/* Finding the VE mounts its pool here, where the checkpoint is. */
	Hsp__V1__VeStatus *ve = NULL;
	hsp_error_t err = NULL;
	if (report_ve_state(&j->a->c, j->cmd->ve, &ve, NULL, &err) < 0)
		return from_error(j->cmd->id, &err);
	pb_free(ve);
	cleanup_free char *dir = checkpoint_dir(j);
	char *args[] = {"restore", j->cmd->ve, "--dir", dir, "--json", NULL};
	struct run_out r;
	if (run_runtime(&j->a->c, args, verb_timeout_ms(j->cmd), &r, &err) < 0)
		return from_error(j->cmd->id, &err);
	cleanup_free char *msg = NULL;
	int code = run_code(&r, &msg);
	json_object *o = NULL, *v = NULL;
	if (code == GRPC_STATUS_OK && report_parse_json(&r, &o, &err) == 0 &&
	    json_object_object_get_ex(o, "frozen_us", &v)) {
		free(msg);
		msg = hsp_strdup_printf("frozen for %lld ms",
					(long long)json_object_get_int64(v) / 1000);
	}
	hsp_error_release(&err);
	json_object_put(o);
	run_out_clear(&r);
	if (code == GRPC_STATUS_OK && hsp_rm_rf(dir, &err) < 0) {
		agent_log("restore %s: %s", j->cmd->ve, err->msg);
		hsp_error_release(&err);
	}
	return pb_result_msg(j->cmd->id, code, msg);
}

/* ------------------------------------------------------------ backups */

/* Where this node keeps backups: in the shared pool, where every node
 * finds them, else beside its runtime root. */
static char *backup_dir(const struct job *j)
{
	if (j->storage)
		return hsp_strdup_printf("%s/pools/%s/backups", j->a->c.root, j->storage->pool);
	return hsp_strdup_printf("%s/backups", j->a->c.root);
}

static char *backup_path(const struct job *j, const char *suffix)
{
	cleanup_free char *dir = backup_dir(j);
	return hsp_strdup_printf("%s/%s%s.tar.zst%s", dir, *suffix ? "." : "", j->cmd->backup,
				 suffix);
}

/* The archive is written beside its final name and renamed once whole and
 * on disk: a backup that exists is complete. */
static int backup_commit(const char *part, const char *path, int fd, uint64_t *size,
			 hsp_error_t *err)
{
	struct stat st;
	if (fsync(fd) < 0 || fstat(fd, &st) < 0)
		return hsp_make_errno(err, errno, "backup `%s`", part);
	if (rename(part, path) < 0)
		return hsp_make_errno(err, errno, "rename `%s`", part);
	cleanup_free char *dir = strdup(path);
	*strrchr(dir, '/') = '\0';
	cleanup_close int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0)
		fsync(dfd);
	*size = (uint64_t)st.st_size;
	return 0;
}

static Hsp__V1__AgentMessage *do_backup_create(struct job *j)
{
	hsp_error_t err = NULL;
	cleanup_free char *dir = backup_dir(j);
	cleanup_free char *path = backup_path(j, "");
	cleanup_free char *part = backup_path(j, ".part");
	if (hsp_mkdir_p(dir, 0700, &err) < 0)
		return from_error(j->cmd->id, &err);
	if (access(path, F_OK) == 0)
		return fail(j->cmd->id, GRPC_STATUS_ALREADY_EXISTS, "backup `%s` exists on storage",
			    j->cmd->backup);
	cleanup_close int fd = open(part, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		hsp_make_errno(&err, errno, "backup `%s`", part);
		return from_error(j->cmd->id, &err);
	}
	char *args[] = {"backup", j->cmd->ve, NULL};
	struct run_out r;
	if (run_runtime_io(&j->a->c, args, BACKUP_TIMEOUT_MS, -1, fd, &r, &err) < 0) {
		unlink(part);
		return from_error(j->cmd->id, &err);
	}
	cleanup_free char *msg = NULL;
	int code = run_code(&r, &msg);
	run_out_clear(&r);
	uint64_t size = 0;
	if (code == GRPC_STATUS_OK && backup_commit(part, path, fd, &size, &err) < 0) {
		unlink(part);
		return from_error(j->cmd->id, &err);
	}
	if (code != GRPC_STATUS_OK)
		unlink(part);
	Hsp__V1__AgentMessage *m = pb_result_msg(j->cmd->id, code, msg);
	m->result->size_bytes = size;
	return m;
}

static Hsp__V1__AgentMessage *do_backup_restore(struct job *j)
{
	const Hsp__V1__VeSpec *s = j->cmd->spec;
	hsp_error_t err = NULL;
	cleanup_free char *path = backup_path(j, "");
	cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fail(j->cmd->id,
			    errno == ENOENT ? GRPC_STATUS_NOT_FOUND : GRPC_STATUS_INTERNAL,
			    "backup `%s`: %s", j->cmd->backup, strerror(errno));
	struct argv_buf b = {0};
	argv_add(&b, "restore");
	argv_add(&b, j->cmd->ve);
	if (j->storage)
		argv_addf(&b, "--pool=%s", j->storage->pool);
	if (s && *s->ip) {
		argv_addf(&b, "--ip=%s", s->ip);
		if (*s->gateway)
			argv_addf(&b, "--gateway=%s", s->gateway);
		if (*s->bridge)
			argv_addf(&b, "--bridge=%s", s->bridge);
	} else {
		argv_add(&b, "--no-network");
	}
	struct run_out r;
	int ret = run_runtime_io(&j->a->c, b.v, BACKUP_TIMEOUT_MS, fd, -1, &r, &err);
	argv_clear(&b);
	if (ret < 0)
		return from_error(j->cmd->id, &err);
	cleanup_free char *msg = NULL;
	int code = run_code(&r, &msg);
	run_out_clear(&r);
	return pb_result_msg(j->cmd->id, code, msg);
}

static Hsp__V1__AgentMessage *do_backup_delete(struct job *j)
{
	cleanup_free char *path = backup_path(j, "");
	cleanup_free char *part = backup_path(j, ".part");
	unlink(part);
	if (unlink(path) < 0)
		return fail(j->cmd->id,
			    errno == ENOENT ? GRPC_STATUS_NOT_FOUND : GRPC_STATUS_INTERNAL,
			    "backup `%s`: %s", j->cmd->backup, strerror(errno));
	return pb_result_msg(j->cmd->id, GRPC_STATUS_OK, "");
}

static Hsp__V1__AgentMessage *run_backup_job(struct job *j)
{
	hsp_error_t err = NULL;
	if (j->storage && storage_ensure(&j->a->c, j->storage, &err) < 0)
		return from_error(j->cmd->id, &err);
	switch (j->cmd->kind) {
	case HSP__V1__COMMAND_KIND__COMMAND_KIND_BACKUP_CREATE:
		return do_backup_create(j);
	case HSP__V1__COMMAND_KIND__COMMAND_KIND_BACKUP_RESTORE: {
		Hsp__V1__AgentMessage *m = do_backup_restore(j);
		with_status(j, m);
		return m;
	}
	default:
		return do_backup_delete(j);
	}
}

static Hsp__V1__AgentMessage *run_job(struct job *j)
{
	const Hsp__V1__Command *cmd = j->cmd;
	if (cmd->kind == HSP__V1__COMMAND_KIND__COMMAND_KIND_RELEASE_STORAGE)
		return do_release_storage(j);
	if ((cmd->kind < HSP__V1__COMMAND_KIND__COMMAND_KIND_CREATE ||
	     cmd->kind > HSP__V1__COMMAND_KIND__COMMAND_KIND_RESTORE ||
	     cmd->kind == HSP__V1__COMMAND_KIND__COMMAND_KIND_CANCEL) &&
	    !is_backup_kind(cmd->kind))
		return fail(cmd->id, GRPC_STATUS_UNIMPLEMENTED, "unknown command kind %d",
			    (int)cmd->kind);
	Hsp__V1__AgentMessage *m = check_names(cmd);
	if (m)
		return m;
	if (is_backup_kind(cmd->kind))
		return run_backup_job(j);
	if (cmd->kind == HSP__V1__COMMAND_KIND__COMMAND_KIND_EXEC)
		return exec_command(j->a, cmd);
	if (cmd->kind == HSP__V1__COMMAND_KIND__COMMAND_KIND_SET_LIMITS &&
	    (cmd->limits == NULL || protobuf_c_message_get_packed_size(&cmd->limits->base) == 0))
		return fail(cmd->id, GRPC_STATUS_INVALID_ARGUMENT, "set limits: no limit given");
	struct argv_buf b = {0};
	if (cmd->kind == HSP__V1__COMMAND_KIND__COMMAND_KIND_CREATE)
		m = do_create(j);
	else if (!simple_args(cmd, &b))
		abort(); /* every kind in range is handled above or there */
	else if (cmd->kind == HSP__V1__COMMAND_KIND__COMMAND_KIND_START)
		m = do_start(j, &b);
	else if (cmd->kind == HSP__V1__COMMAND_KIND__COMMAND_KIND_SNAPSHOT_LIST)
		m = do_snapshot_list(j, &b);
	else if (cmd->kind == HSP__V1__COMMAND_KIND__COMMAND_KIND_CHECKPOINT)
		m = do_checkpoint(j);
	else if (cmd->kind == HSP__V1__COMMAND_KIND__COMMAND_KIND_RESTORE)
		m = do_restore(j);
	else
		m = run_verb(j, &b);
	/* A destroyed VE has no status; a failed destroy still has one. */
	if (cmd->kind != HSP__V1__COMMAND_KIND__COMMAND_KIND_DESTROY ||
	    m->result->code != GRPC_STATUS_OK)
		with_status(j, m);
	argv_clear(&b);
	return m;
}

static void *job_thread(void *arg)
{
	struct job *j = arg;
	uint64_t id = j->cmd->id;
	Hsp__V1__AgentMessage *m = run_job(j);
	post(j->a, m, true, id);
	pb_free(j->cmd);
	pb_free(j->storage);
	free(j);
	return NULL;
}

/* Answers at once, without a worker. */
static void reply_now(struct agent *a, uint64_t id, int code, const char *msg)
{
	agent_log("command %" PRIu64 ": %s: %s", id, pb_code_name(code), msg);
	session_send(a, pb_result_msg(id, code, msg));
}

void command_dispatch(struct agent *a, const Hsp__V1__Command *cmd)
{
	const char *ve = *cmd->ve || cmd->spec == NULL ? cmd->ve : cmd->spec->name;
	agent_log("command %" PRIu64 ": %s %s", cmd->id, kind_name(cmd->kind), ve);
	if (a->stopping)
		return reply_now(a, cmd->id, GRPC_STATUS_UNAVAILABLE, "the agent is stopping");
	if (cmd->kind == HSP__V1__COMMAND_KIND__COMMAND_KIND_CANCEL) {
		bool found = exec_cancel(cmd->cancel_id);
		return reply_now(a, cmd->id, found ? GRPC_STATUS_OK : GRPC_STATUS_NOT_FOUND,
				 found ? "cancelled" : "no such command running");
	}
	/* A controller that re-sends after a reconnect gets the one result
	 * when the first run ends. */
	if (jobs_has(a->jobs, cmd->id))
		return agent_log("command %" PRIu64 ": already running", cmd->id);
	if (a->jobs->n >= MAX_JOBS)
		return reply_now(a, cmd->id, GRPC_STATUS_RESOURCE_EXHAUSTED,
				 "too many commands running on this node");
	struct job *j = calloc(1, sizeof(*j));
	if (j == NULL)
		abort();
	j->a = a;
	j->cmd = pb_clone(&cmd->base);
	/* CREATE may name its VE in the spec only. */
	if (*j->cmd->ve == '\0' && j->cmd->spec && *j->cmd->spec->name)
		j->cmd->ve = pb_str(j->cmd->spec->name);
	if ((cmd->kind == HSP__V1__COMMAND_KIND__COMMAND_KIND_CREATE ||
	     cmd->kind == HSP__V1__COMMAND_KIND__COMMAND_KIND_RELEASE_STORAGE ||
	     cmd->kind == HSP__V1__COMMAND_KIND__COMMAND_KIND_CHECKPOINT ||
	     cmd->kind == HSP__V1__COMMAND_KIND__COMMAND_KIND_RESTORE ||
	     is_backup_kind(cmd->kind)) &&
	    storage_is_cephfs(a->config))
		j->storage = pb_clone(&a->config->storage->base);
	jobs_add(a->jobs, cmd->id);
	if (agent_thread(job_thread, j) < 0) {
		jobs_remove(a->jobs, cmd->id);
		pb_free(j->cmd);
		pb_free(j->storage);
		free(j);
		reply_now(a, cmd->id, GRPC_STATUS_INTERNAL, "cannot start a worker thread");
	}
}
