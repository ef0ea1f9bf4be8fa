/* ve: the Ves service, one sub-verb a function. */
#define _GNU_SOURCE
#include "hspctl.h"
#include "utils.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define VES "/hsp.v1.Ves/"
/* ExecRequest.stdin: the whole of a non-terminal standard input, up to this. */
#define MAX_STDIN (4u << 20)

/* ------------------------------------------------------------ views */

static void ve_list_table(const ProtobufCMessage *m)
{
	static const char *const head[] = {"NAME",     "TENANT", "NODE",   "STATE",
					   "TEMPLATE", "IP",	 "MEMORY", "CPUS"};
	const Hsp__V1__ListVesResponse *r = (const Hsp__V1__ListVesResponse *)m;
	struct ctl_table *t = ctl_table_new(8, head);
	for (size_t i = 0; i < r->n_ves; i++) {
		const Hsp__V1__Ve *v = r->ves[i];
		char state[32], mem[32], cpus[32];
		ctl_fmt_enum(&hsp__v1__ve_state__descriptor, v->state, state, sizeof(state));
		ctl_fmt_size(v->limits ? v->limits->memory_bytes : 0, true, mem, sizeof(mem));
		ctl_fmt_millicpus(v->limits ? v->limits->cpu_millis : 0, cpus, sizeof(cpus));
		const char *row[] = {v->name,	   v->tenant, v->node, state,
				     v->template_, v->ip,     mem,     cpus};
		ctl_table_add(t, row);
	}
	ctl_table_print(t, stdout);
	ctl_table_free(t);
}

static void kv_size(const char *key, uint64_t v)
{
	char buf[32];
	ctl_fmt_size(v, true, buf, sizeof(buf));
	ctl_kv(stdout, key, buf);
}

static void kv_u32(const char *key, uint32_t v)
{
	char buf[16] = "-";
	if (v)
		snprintf(buf, sizeof(buf), "%" PRIu32, v);
	ctl_kv(stdout, key, buf);
}

static void kv_time(const char *key, int64_t t)
{
	char buf[32];
	ctl_fmt_time(t, buf, sizeof(buf));
	ctl_kv(stdout, key, buf);
}

static void show_limits(const Hsp__V1__Limits *l)
{
	static const Hsp__V1__Limits none = HSP__V1__LIMITS__INIT;
	char cpus[32];
	l = l ? l : &none;
	kv_size("memory", l->memory_bytes);
	kv_size("swap", l->swap_bytes);
	ctl_fmt_millicpus(l->cpu_millis, cpus, sizeof(cpus));
	ctl_kv(stdout, "cpus", cpus);
	kv_u32("cpu-weight", l->cpu_weight);
	kv_u32("pids", l->pids);
	kv_u32("io-weight", l->io_weight);
	kv_size("disk", l->disk_bytes);
}

static void show_usage(const Hsp__V1__VeUsage *u)
{
	static const Hsp__V1__VeUsage none = HSP__V1__VE_USAGE__INIT;
	char buf[32];
	u = u ? u : &none;
	snprintf(buf, sizeof(buf), "%.1fs", (double)u->cpu_ns / 1e9);
	ctl_kv(stdout, "used-cpu-time", buf);
	kv_size("used-memory", u->memory_bytes);
	snprintf(buf, sizeof(buf), "%" PRIu32, u->pids);
	ctl_kv(stdout, "used-pids", buf);
	kv_size("used-disk", u->disk_used_bytes);
}

static void ve_show_table(const ProtobufCMessage *m)
{
	const Hsp__V1__Ve *v = (const Hsp__V1__Ve *)m;
	char buf[32];
	ctl_kv(stdout, "name", v->name);
	ctl_kv(stdout, "tenant", v->tenant);
	ctl_kv(stdout, "template", v->template_);
	ctl_kv(stdout, "node", v->node);
	ctl_kv(stdout, "pool", v->pool);
	ctl_fmt_enum(&hsp__v1__ve_state__descriptor, v->state, buf, sizeof(buf));
	ctl_kv(stdout, "state", buf);
	ctl_kv(stdout, "message", v->message);
	ctl_kv(stdout, "hostname", v->hostname);
	ctl_kv(stdout, "ip", v->ip);
	show_limits(v->limits);
	for (size_t i = 0; i < v->n_ssh_keys; i++)
		ctl_kv(stdout, "ssh-key", v->ssh_keys[i]);
	kv_time("created", v->created_at);
	kv_time("expires", v->expires_at);
	show_usage(v->usage);
}

static void snapshot_table(const ProtobufCMessage *m)
{
	static const char *const head[] = {"NAME", "CREATED"};
	const Hsp__V1__ListSnapshotsResponse *r = (const Hsp__V1__ListSnapshotsResponse *)m;
	struct ctl_table *t = ctl_table_new(2, head);
	for (size_t i = 0; i < r->n_snapshots; i++) {
		char when[32];
		ctl_fmt_time(r->snapshots[i]->created_at, when, sizeof(when));
		const char *row[] = {r->snapshots[i]->name, when};
		ctl_table_add(t, row);
	}
	ctl_table_print(t, stdout);
	ctl_table_free(t);
}

/* ------------------------------------------------------------ create */

struct create_opts {
	Hsp__V1__CreateVeRequest req;
	Hsp__V1__Limits limits;
	char **keys;
	size_t n_keys;
	bool no_start, wait;
};

/* One create option; 0 or an exit code. */
static int create_opt(struct create_opts *o, int c, const char *arg)
{
	switch (c) {
	case 't':
		o->req.template_ = (char *)arg;
		return 0;
	case 'H':
		o->req.hostname = (char *)arg;
		return 0;
	case 'K':
		return ctl_read_ssh_keys(arg, &o->keys, &o->n_keys);
	case 'N':
		o->req.node = (char *)arg;
		return 0;
	case 'U':
		o->req.tenant = (char *)arg;
		return 0;
	case 'L':
		return ctl_parse_duration(arg, "--ttl", &o->req.ttl_seconds);
	case 'n':
		o->req.network = true;
		return 0;
	case 'S':
		o->no_start = true;
		return 0;
	case 'w':
		o->wait = true;
		return 0;
	}
	int r = ctl_parse_limit(c, arg, &o->limits);
	return r == 1 ? 0 : CTL_EXIT_USAGE;
}

static int ve_create(struct ctl *g, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"template", required_argument, NULL, 't'},
	    {"hostname", required_argument, NULL, 'H'},
	    {"ssh-key", required_argument, NULL, 'K'},
	    {"node", required_argument, NULL, 'N'},
	    {"tenant", required_argument, NULL, 'U'},
	    {"ttl", required_argument, NULL, 'L'},
	    {"network", no_argument, NULL, 'n'},
	    {"no-start", no_argument, NULL, 'S'},
	    {"wait", no_argument, NULL, 'w'},
	    CTL_LIMIT_OPTIONS,
	    CTL_COMMON_OPTIONS,
	    {NULL, 0, NULL, 0},
	};
	struct create_opts o = {.req = HSP__V1__CREATE_VE_REQUEST__INIT,
				.limits = HSP__V1__LIMITS__INIT};
	cleanup_strv char **keys = NULL;
	int c, rc = 0;
	bool stop = false;
	while (!stop &&
	       (c = ctl_getopt(g, argc, argv, CTL_COMMON_SHORT "t:", opts, "ve", &rc)) != -1)
		stop = c == -2 || (rc = create_opt(&o, c, optarg)) != 0;
	keys = o.keys;
	if (stop)
		return rc;
	rc = ctl_args(argc, 1, 1, "ve", "create", "expected exactly one VE name");
	if (rc)
		return rc;
	if (o.req.template_ == NULL || *o.req.template_ == '\0')
		return ctl_usage("ve", "ve create: --template is required");
	o.req.name = argv[optind];
	o.req.limits = ctl_limits_any(&o.limits) ? &o.limits : NULL;
	o.req.ssh_keys = keys;
	o.req.n_ssh_keys = o.n_keys;
	o.req.start = !o.no_start;
	cleanup_free char *what = hsp_strdup_printf("ve create %s", o.req.name);
	return ctl_operation_call(g, what, VES "Create", &o.req.base, o.wait);
}

/* ------------------------------------------------------------ reads */

static int ve_list(struct ctl *g, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"node", required_argument, NULL, 'N'},
	    {"tenant", required_argument, NULL, 'U'},
	    CTL_COMMON_OPTIONS,
	    {NULL, 0, NULL, 0},
	};
	Hsp__V1__ListVesRequest req = HSP__V1__LIST_VES_REQUEST__INIT;
	int c, rc = 0;
	while ((c = ctl_getopt(g, argc, argv, CTL_COMMON_SHORT, opts, "ve", &rc)) != -1) {
		if (c == -2)
			return rc;
		if (c == 'N')
			req.node = optarg;
		else
			req.tenant = optarg;
	}
	rc = ctl_args(argc, 0, 0, "ve", "list", "takes no arguments");
	if (rc)
		return rc;
	return ctl_query(g, "ve list", VES "List", &req.base,
			 &hsp__v1__list_ves_response__descriptor, ve_list_table);
}

/* Sub-verbs taking NAME and common options only: *name NULL when the
 * verb must return the exit code now. */
static int name_only(struct ctl *g, int argc, char **argv, const char *verb, const char **name)
{
	static const struct option opts[] = {CTL_COMMON_OPTIONS, {NULL, 0, NULL, 0}};
	int c, rc = 0;
	*name = NULL;
	while ((c = ctl_getopt(g, argc, argv, CTL_COMMON_SHORT, opts, "ve", &rc)) != -1)
		if (c == -2)
			return rc;
	rc = ctl_args(argc, 1, 1, "ve", verb, "expected exactly one VE name");
	*name = rc ? NULL : argv[optind];
	return rc;
}

static int ve_show(struct ctl *g, int argc, char **argv)
{
	Hsp__V1__VeRef ref = HSP__V1__VE_REF__INIT;
	const char *name = NULL;
	int rc = name_only(g, argc, argv, "show", &name);
	if (name == NULL) /* --help, or a usage error */
		return rc;
	ref.name = (char *)name;
	cleanup_free char *what = hsp_strdup_printf("ve show %s", name);
	return ctl_query(g, what, VES "Get", &ref.base, &hsp__v1__ve__descriptor, ve_show_table);
}

/* ------------------------------------------------------------ lifecycle */

/* start, stop, restart, destroy: NAME [--wait], stop/restart [--timeout S]. */
static int lifecycle(struct ctl *g, int argc, char **argv, const char *verb, const char *method,
		     bool has_timeout)
{
	static const struct option opts[] = {
	    {"wait", no_argument, NULL, 'w'},
	    {"timeout", required_argument, NULL, 'T'},
	    CTL_COMMON_OPTIONS,
	    {NULL, 0, NULL, 0},
	};
	Hsp__V1__StopVeRequest stop = HSP__V1__STOP_VE_REQUEST__INIT;
	Hsp__V1__VeRef ref = HSP__V1__VE_REF__INIT;
	bool wait = false;
	int c, rc = 0;
	while ((c = ctl_getopt(g, argc, argv, CTL_COMMON_SHORT, opts, "ve", &rc)) != -1) {
		if (c == -2)
			return rc;
		if (c == 'w')
			wait = true;
		else if (!has_timeout)
			return ctl_usage("ve", "ve %s: takes no --timeout", verb);
		else if ((rc = ctl_parse_duration(optarg, "--timeout", &stop.timeout_seconds)))
			return rc;
	}
	rc = ctl_args(argc, 1, 1, "ve", verb, "expected exactly one VE name");
	if (rc)
		return rc;
	stop.name = ref.name = argv[optind];
	cleanup_free char *what = hsp_strdup_printf("ve %s %s", verb, ref.name);
	cleanup_free char *path = hsp_strdup_printf(VES "%s", method);
	return ctl_operation_call(g, what, path, has_timeout ? &stop.base : &ref.base, wait);
}

static int ve_start(struct ctl *g, int argc, char **argv)
{
	return lifecycle(g, argc, argv, "start", "Start", false);
}

static int ve_stop(struct ctl *g, int argc, char **argv)
{
	return lifecycle(g, argc, argv, "stop", "Stop", true);
}

static int ve_restart(struct ctl *g, int argc, char **argv)
{
	return lifecycle(g, argc, argv, "restart", "Restart", true);
}

static int ve_destroy(struct ctl *g, int argc, char **argv)
{
	return lifecycle(g, argc, argv, "destroy", "Destroy", false);
}

/* ------------------------------------------------------------ set */

static int ve_set(struct ctl *g, int argc, char **argv)
{
	static const struct option opts[] = {
	    CTL_LIMIT_OPTIONS, CTL_COMMON_OPTIONS, {NULL, 0, NULL, 0}};
	Hsp__V1__SetLimitsRequest req = HSP__V1__SET_LIMITS_REQUEST__INIT;
	Hsp__V1__Limits limits = HSP__V1__LIMITS__INIT;
	int c, rc = 0;
	while ((c = ctl_getopt(g, argc, argv, CTL_COMMON_SHORT, opts, "ve", &rc)) != -1) {
		if (c == -2)
			return rc;
		if (ctl_parse_limit(c, optarg, &limits) != 1)
			return CTL_EXIT_USAGE;
	}
	rc = ctl_args(argc, 1, 1, "ve", "set", "expected exactly one VE name");
	if (rc)
		return rc;
	if (!ctl_limits_any(&limits))
		return ctl_usage("ve", "ve set: give at least one limit");
	req.name = argv[optind];
	req.limits = &limits;
	cleanup_free char *what = hsp_strdup_printf("ve set %s", req.name);
	return ctl_query(g, what, VES "SetLimits", &req.base, &hsp__v1__ve__descriptor,
			 ve_show_table);
}

/* ------------------------------------------------------------ exec */

struct exec_run {
	struct ctl_loop l;
	hsp_rpc_stream_t *s;
	const char *what;
	bool exited;
	int exit_code;
	int rc; /* -1 until decided */
};

static int write_all(int fd, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static void exec_message(hsp_rpc_stream_t *s, const ProtobufCMessage *msg, void *ud)
{
	struct exec_run *x = ud;
	const Hsp__V1__ExecOutput *o = (const Hsp__V1__ExecOutput *)msg;
	int fd = o->stream == HSP__V1__EXEC_OUTPUT__STREAM__STREAM_STDERR ? 2 : 1;
	int r = o->data.len ? write_all(fd, o->data.data, o->data.len) : 0;
	if (r < 0 && x->rc < 0) {
		x->rc = ctl_output(r);
		hsp_rpc_stream_cancel(s);
		return;
	}
	if (o->exited) {
		x->exited = true;
		x->exit_code = o->exit_code < 0 || o->exit_code > 255 ? 255 : o->exit_code;
	}
}

static void exec_close(hsp_rpc_stream_t *s, const struct hsp_rpc_status *st, void *ud)
{
	struct exec_run *x = ud;
	(void)s;
	x->s = NULL;
	hsp_rpc_loop_stop(x->l.loop);
	if (x->rc >= 0) /* decided already: output failed */
		return;
	if (x->exited)
		x->rc = x->exit_code;
	else if (x->l.interrupted)
		x->rc = ctl_interrupt_exit();
	else if (st->code != GRPC_STATUS_OK)
		x->rc = ctl_status_fail(x->what, st->code, st->message);
	else
		x->rc = ctl_status_fail(x->what, GRPC_STATUS_UNKNOWN,
					"the output ended without the command's exit status");
}

static void exec_interrupt(void *arg)
{
	struct exec_run *x = arg;
	if (x->s)
		hsp_rpc_stream_cancel(x->s);
}

/* All of a non-terminal standard input, at most MAX_STDIN bytes. */
static int read_stdin(uint8_t **buf, size_t *len)
{
	size_t cap = 0, n = 0;
	*buf = NULL;
	*len = 0;
	if (isatty(STDIN_FILENO))
		return 0;
	for (;;) {
		if (n == cap) {
			cap = cap ? cap * 2 : 65536;
			cap = cap > MAX_STDIN + 1 ? MAX_STDIN + 1 : cap;
			uint8_t *nb = realloc(*buf, cap);
			if (nb == NULL)
				abort(); /* out of memory: nothing sensible to do */
			*buf = nb;
		}
		ssize_t r = read(STDIN_FILENO, *buf + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EBADF) /* no standard input at all */
			break;
		if (r < 0) {
			fprintf(stderr, "hspctl: ve exec: read standard input: %s\n",
				strerror(errno));
			return CTL_EXIT_USAGE;
		}
		if (r == 0)
			break;
		n += (size_t)r;
		if (n > MAX_STDIN) {
			fprintf(stderr, "hspctl: ve exec: standard input is larger than 4 MiB\n");
			return CTL_EXIT_USAGE;
		}
	}
	*len = n;
	return 0;
}

static int exec_run(struct ctl *g, struct exec_run *x, const Hsp__V1__ExecRequest *req)
{
	static const struct hsp_rpc_stream_cbs cbs = {.on_message = exec_message,
						      .on_close = exec_close};
	hsp_error_t err = NULL;
	int rc = ctl_connect(g);
	if (rc == 0)
		rc = ctl_loop_new(&x->l);
	if (rc)
		return rc;
	x->l.on_interrupt = exec_interrupt;
	x->l.arg = x;
	unsigned deadline = req->timeout_seconds ? (req->timeout_seconds + 30) * 1000u : 0;
	if (hsp_rpc_stream_open(x->l.loop, g->ch, VES "Exec", HSP_RPC_SERVER_STREAM, &req->base,
				&hsp__v1__exec_output__descriptor, g->md, g->n_md, deadline, &cbs,
				x, &x->s, &err) < 0) {
		hsp_error_wrap(&err, "%s", x->what);
		x->rc = ctl_fail(&err, CTL_EXIT_FAIL);
	} else {
		ctl_loop_run(&x->l);
	}
	ctl_loop_free(&x->l);
	return x->rc < 0 ? CTL_EXIT_FAIL : x->rc;
}

static int ve_exec(struct ctl *g, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"timeout", required_argument, NULL, 'T'},
	    {"no-stdin", no_argument, NULL, 'n'},
	    CTL_COMMON_OPTIONS,
	    {NULL, 0, NULL, 0},
	};
	Hsp__V1__ExecRequest req = HSP__V1__EXEC_REQUEST__INIT;
	bool no_stdin = false;
	int c, rc = 0;
	while ((c = ctl_getopt(g, argc, argv, CTL_COMMON_SHORT "n", opts, "ve", &rc)) != -1) {
		if (c == -2)
			return rc;
		if (c == 'n')
			no_stdin = true;
		else if ((rc = ctl_parse_duration(optarg, "--timeout", &req.timeout_seconds)))
			return rc;
	}
	/* getopt stopped at "--": NAME, then the command. */
	rc = ctl_args(argc, 2, 1 << 20, "ve", "exec", "expected a VE name and a command after --");
	if (rc)
		return rc;
	req.name = argv[optind];
	req.argv = argv + optind + 1;
	req.n_argv = (size_t)(argc - optind - 1);
	cleanup_free uint8_t *in = NULL;
	if (!no_stdin && (rc = read_stdin(&in, &req.stdin.len)))
		return rc;
	req.stdin.data = in;
	cleanup_free char *what = hsp_strdup_printf("ve exec %s", req.name);
	struct exec_run x = {.what = what, .rc = -1};
	return exec_run(g, &x, &req);
}

/* ------------------------------------------------------------ snapshots */

static int snapshot_run(struct ctl *g, const char *action, char **args, int n, bool wait)
{
	Hsp__V1__SnapshotRequest req = HSP__V1__SNAPSHOT_REQUEST__INIT;
	Hsp__V1__VeRef ref = HSP__V1__VE_REF__INIT;
	bool list = strcmp(action, "list") == 0, create = strcmp(action, "create") == 0;
	int min = list ? 1 : create ? 1 : 2, max = list ? 1 : 2;
	if (n < min || n > max)
		return ctl_usage("ve", "ve snapshot %s: expected a VE name%s", action,
				 list	  ? ""
				 : create ? " and optionally a snapshot name"
					  : " and a snapshot name");
	cleanup_free char *what = hsp_strdup_printf("ve snapshot %s %s%s%s", action, args[0],
						    n > 1 ? " " : "", n > 1 ? args[1] : "");
	if (list) {
		ref.name = args[0];
		return ctl_query(g, what, VES "ListSnapshots", &ref.base,
				 &hsp__v1__list_snapshots_response__descriptor, snapshot_table);
	}
	req.name = args[0];
	req.snapshot = n > 1 ? args[1] : "";
	const char *method = create			      ? VES "CreateSnapshot"
			     : strcmp(action, "restore") == 0 ? VES "RestoreSnapshot"
							      : VES "DeleteSnapshot";
	return ctl_operation_call(g, what, method, &req.base, wait);
}

static int ve_snapshot(struct ctl *g, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"wait", no_argument, NULL, 'w'}, CTL_COMMON_OPTIONS, {NULL, 0, NULL, 0}};
	static const char *const actions[] = {"create", "list", "restore", "delete", NULL};
	bool wait = false;
	int c, rc = 0;
	while ((c = ctl_getopt(g, argc, argv, CTL_COMMON_SHORT, opts, "ve", &rc)) != -1) {
		if (c == -2)
			return rc;
		wait = true;
	}
	const char *action = optind < argc ? argv[optind] : "";
	bool known = false;
	for (size_t i = 0; actions[i] && !known; i++)
		known = strcmp(action, actions[i]) == 0;
	if (!known)
		return ctl_usage("ve", "ve snapshot: expected create, list, restore or delete");
	if (wait && strcmp(action, "list") == 0)
		return ctl_usage("ve", "ve snapshot list: takes no --wait");
	return snapshot_run(g, action, argv + optind + 1, argc - optind - 1, wait);
}

int cmd_ve(struct ctl *g, int argc, char **argv)
{
	static const struct ctl_subverb v[] = {
	    {"create", ve_create},     {"list", ve_list},	{"show", ve_show},
	    {"start", ve_start},       {"stop", ve_stop},	{"restart", ve_restart},
	    {"destroy", ve_destroy},   {"set", ve_set},		{"exec", ve_exec},
	    {"snapshot", ve_snapshot}, {"migrate", ve_migrate}, {"rescue", ve_rescue},
	};
	return ctl_dispatch(g, "ve", v, sizeof(v) / sizeof(v[0]), argc, argv);
}
