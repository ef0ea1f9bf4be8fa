/* hsp-controller: the cluster's control centre.  Holds desired and observed
 * state in an embedded store, serves the public API (TLS + bearer tokens,
 * and a unix socket for the machine's root) and the node API (join tokens,
 * then mTLS), and exposes Prometheus metrics. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctl.h"
#include "pki.h"
#include "utils.h"

#define MAX_SANS 16

static const char usage[] =
    "usage: hsp-controller --state-dir DIR [options]\n"
    "  --listen HOST:PORT     public and node API, TLS (default 0.0.0.0:7443; port 0 = any)\n"
    "  --socket PATH          local API for this machine's root (default "
    "/run/hsp/controller.sock)\n"
    "  --metrics HOST:PORT    Prometheus /metrics over HTTP (default off)\n"
    "  --san NAME|IP          extra name of the server certificate (repeatable)\n"
    "  --cluster-name NAME    (default hsp)\n"
    "  --heartbeat-ms N       agents' heartbeat interval (default 1000)\n"
    "  --suspect-ms N         a quiet node is suspect after this (default 2000)\n"
    "  --dead-ms N            ... and dead after this (default 5000)\n"
    "  --lease-ms N           an agent cut off this long stops its VEs (default: 4000\n"
    "                         with cephfs storage, 0 = never with local storage)\n"
    "  --subnet CIDR          VE addresses (IPv4); without it VEs get no network\n"
    "  --bridge NAME          the VE bridge on every node (default hspbr0)\n"
    "  --storage local|cephfs VE storage handed to nodes at join (default local)\n"
    "  --ceph-conf F --ceph-id ID --ceph-keyring F --ceph-fs-path P --ceph-pool NAME\n"
    "                         the admin client the controller uses: every node gets its\n"
    "                         own key for P at join, and a dead node is fenced with it\n"
    "  --ceph-helper PATH     hsp-ceph (default: beside this program, else on PATH)\n"
    "  --gateway node|external  node: every node's VE bridge carries the VE gateway\n"
    "                         (one node, or isolated nodes); external: a router on a VE\n"
    "                         segment all nodes join, each node gets its own address\n"
    "  --max-moves N          VEs a drain moves at once (default 4)\n"
    "On first start the controller makes the cluster CA and an admin token\n"
    "(DIR/admin.token); join tokens for nodes come from `hspctl token create --kind join`.\n";

static int parse_ms(const char *s, unsigned *out)
{
	char *end;
	long v = strtol(s, &end, 10);
	if (*s == '\0' || *end || v < 0 || v > 3600000)
		return -1;
	*out = (unsigned)v;
	return 0;
}

static int parse_opts(int argc, char **argv, struct ctl_opts *o, const char **sans)
{
	enum {
		O_LISTEN = 256,
		O_SOCKET,
		O_METRICS,
		O_SAN,
		O_NAME,
		O_HB,
		O_SUSPECT,
		O_DEAD,
		O_LEASE,
		O_SUBNET,
		O_BRIDGE,
		O_STORAGE,
		O_CCONF,
		O_CID,
		O_CKEY,
		O_CPATH,
		O_CPOOL,
		O_CHELPER,
		O_GATEWAY,
		O_MOVES,
		O_STATE
	};
	static const struct option lo[] = {{"state-dir", 1, 0, O_STATE},
					   {"listen", 1, 0, O_LISTEN},
					   {"socket", 1, 0, O_SOCKET},
					   {"metrics", 1, 0, O_METRICS},
					   {"san", 1, 0, O_SAN},
					   {"cluster-name", 1, 0, O_NAME},
					   {"heartbeat-ms", 1, 0, O_HB},
					   {"suspect-ms", 1, 0, O_SUSPECT},
					   {"dead-ms", 1, 0, O_DEAD},
					   {"lease-ms", 1, 0, O_LEASE},
					   {"subnet", 1, 0, O_SUBNET},
					   {"bridge", 1, 0, O_BRIDGE},
					   {"storage", 1, 0, O_STORAGE},
					   {"ceph-conf", 1, 0, O_CCONF},
					   {"ceph-id", 1, 0, O_CID},
					   {"ceph-keyring", 1, 0, O_CKEY},
					   {"ceph-fs-path", 1, 0, O_CPATH},
					   {"ceph-pool", 1, 0, O_CPOOL},
					   {"ceph-helper", 1, 0, O_CHELPER},
					   {"gateway", 1, 0, O_GATEWAY},
					   {"max-moves", 1, 0, O_MOVES},
					   {"help", 0, 0, 'h'},
					   {0, 0, 0, 0}};
	int c;
	size_t n_sans = 0;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		unsigned *ms = NULL;
		switch (c) {
		case O_STATE:
			o->state_dir = optarg;
			break;
		case O_LISTEN:
			o->listen = optarg;
			break;
		case O_SOCKET:
			o->socket = optarg;
			break;
		case O_METRICS:
			o->metrics = optarg;
			break;
		case O_SAN:
			if (n_sans == MAX_SANS) {
				fprintf(stderr, "hsp-controller: at most %d --san\n", MAX_SANS);
				return -1;
			}
			sans[n_sans++] = optarg;
			break;
		case O_NAME:
			o->cluster_name = optarg;
			break;
		case O_HB:
			ms = &o->heartbeat_ms;
			break;
		case O_SUSPECT:
			ms = &o->suspect_ms;
			break;
		case O_DEAD:
			ms = &o->dead_ms;
			break;
		case O_LEASE:
			ms = &o->lease_ms;
			break;
		case O_SUBNET:
			o->subnet = optarg;
			break;
		case O_BRIDGE:
			o->bridge = optarg;
			break;
		case O_STORAGE:
			o->storage = optarg;
			break;
		case O_CCONF:
			o->ceph_conf = optarg;
			break;
		case O_CID:
			o->ceph_id = optarg;
			break;
		case O_CKEY:
			o->ceph_keyring = optarg;
			break;
		case O_CPATH:
			o->ceph_fs_path = optarg;
			break;
		case O_CPOOL:
			o->ceph_pool = optarg;
			break;
		case O_CHELPER:
			o->ceph_helper = optarg;
			break;
		case O_GATEWAY:
			if (strcmp(optarg, "node") != 0 && strcmp(optarg, "external") != 0) {
				fprintf(stderr, "hsp-controller: --gateway is node or external\n");
				return -1;
			}
			o->gateway_external = strcmp(optarg, "external") == 0;
			break;
		case O_MOVES: {
			char *end;
			long v = strtol(optarg, &end, 10);
			if (*optarg == '\0' || *end || v < 1 || v > 64) {
				fprintf(stderr, "hsp-controller: --max-moves takes 1-64\n");
				return -1;
			}
			o->max_moves = (unsigned)v;
			break;
		}
		case 'h':
			fputs(usage, stdout);
			exit(0);
		default:
			fputs(usage, stderr);
			return -1;
		}
		if (ms && parse_ms(optarg, ms) < 0) {
			fprintf(stderr, "hsp-controller: invalid milliseconds `%s` (50-3600000)\n",
				optarg);
			return -1;
		}
	}
	o->sans = sans;
	o->n_sans = n_sans;
	if (optind < argc || o->state_dir == NULL) {
		fprintf(stderr, "hsp-controller: %s\n",
			optind < argc ? "unexpected arguments" : "--state-dir is required");
		return -1;
	}
	if (!(50 <= o->heartbeat_ms && o->heartbeat_ms < o->suspect_ms &&
	      o->suspect_ms < o->dead_ms)) {
		fprintf(stderr, "hsp-controller: need 50 <= heartbeat-ms < suspect-ms < dead-ms\n");
		return -1;
	}
	bool ceph = o->storage && strcmp(o->storage, "cephfs") == 0;
	/* Self-fencing matters only where another node could start the same
	 * VE: on shared storage.  A local VE had better outlive a cut-off. */
	if (o->lease_ms == UINT32_MAX)
		o->lease_ms = ceph ? 4000 : 0;
	if (o->storage && !ceph && strcmp(o->storage, "local") != 0) {
		fprintf(stderr, "hsp-controller: --storage is local or cephfs\n");
		return -1;
	}
	if (ceph &&
	    !(o->ceph_conf && o->ceph_id && o->ceph_keyring && o->ceph_fs_path && o->ceph_pool)) {
		fprintf(stderr, "hsp-controller: --storage cephfs needs --ceph-conf, --ceph-id, "
				"--ceph-keyring, --ceph-fs-path and --ceph-pool\n");
		return -1;
	}
	return 0;
}

static int path_in(const char *dir, const char *name, char **out)
{
	return asprintf(out, "%s/%s", dir, name) < 0 ? -ENOMEM : 0;
}

static int write_private(const char *dir, const char *name, const char *data, hsp_error_t *err)
{
	cleanup_free char *p = NULL;
	if (path_in(dir, name, &p) < 0)
		return hsp_make_errno(err, ENOMEM, "path");
	return hsp_write_file_atomic(p, data, strlen(data), 0600, err);
}

static int read_in(const char *dir, const char *name, char **out, hsp_error_t *err)
{
	cleanup_free char *p = NULL;
	if (path_in(dir, name, &p) < 0)
		return hsp_make_errno(err, ENOMEM, "path");
	return hsp_read_file(p, out, NULL, err);
}

/* The CA is made once and kept; losing it means every node rejoins. */
static int load_ca(hsp_error_t *err)
{
	const char *d = ctl->o.state_dir;
	int r = read_in(d, "ca.crt", &ctl->ca_cert, err);
	if (r == 0)
		r = read_in(d, "ca.key", &ctl->ca_key, err);
	if (r == -ENOENT && ctl->ca_cert == NULL) {
		hsp_error_release(err);
		char cn[128];
		snprintf(cn, sizeof(cn), "hsp cluster CA %s", ctl->o.cluster_name);
		r = hsp_pki_ca_create(cn, &ctl->ca_cert, &ctl->ca_key, err);
		if (r == 0)
			r = write_private(d, "ca.key", ctl->ca_key, err);
		if (r == 0)
			r = write_private(d, "ca.crt", ctl->ca_cert, err);
	}
	if (r < 0)
		return r;
	char fp[65];
	r = hsp_pki_fingerprint(ctl->ca_cert, fp, err);
	if (r == 0)
		ctl->ca_fp = strdup(fp);
	return r;
}

/* A fresh server certificate at every start, so its names always match the
 * options; the CA signs it, and the chain (server + CA) lets a joining agent
 * pin the CA from its token. */
static int server_cert(char **chain, char **key, hsp_error_t *err)
{
	const char *sans[MAX_SANS + 4];
	size_t n = 0;
	sans[n++] = "DNS:localhost";
	sans[n++] = "IP:127.0.0.1";
	sans[n++] = "DNS:hsp-controller";
	cleanup_free char **owned = calloc(ctl->o.n_sans + 1, sizeof(char *));
	for (size_t i = 0; owned && i < ctl->o.n_sans; i++) {
		const char *s = ctl->o.sans[i];
		bool ip = strspn(s, "0123456789.") == strlen(s) || strchr(s, ':');
		if (asprintf(&owned[i], "%s:%s", ip ? "IP" : "DNS", s) < 0)
			owned[i] = NULL;
		if (owned[i])
			sans[n++] = owned[i];
	}
	cleanup_free char *cert = NULL;
	int r = hsp_pki_issue(ctl->ca_cert, ctl->ca_key, "hsp-controller", sans, n, 825, &cert, key,
			      err);
	for (size_t i = 0; owned && i < ctl->o.n_sans; i++)
		free(owned[i]);
	if (r < 0)
		return r;
	if (asprintf(chain, "%s%s", cert, ctl->ca_cert) < 0)
		return hsp_make_errno(err, ENOMEM, "cert chain");
	return 0;
}

/* The first admin token, for whoever runs the controller. */
static int bootstrap_admin(hsp_error_t *err)
{
	for (size_t i = 0; i < ctl->n_tokens; i++)
		if (ctl->tokens[i]->token->kind == HSP__V1__TOKEN_KIND__TOKEN_KIND_ADMIN)
			return 0;
	cleanup_free char *secret = NULL;
	int r = token_create(HSP__V1__TOKEN_KIND__TOKEN_KIND_ADMIN, NULL, 0, "bootstrap admin",
			     &secret, err);
	if (r < 0)
		return r;
	cleanup_free char *line = NULL;
	if (asprintf(&line, "%s\n", secret) < 0)
		return hsp_make_errno(err, ENOMEM, "token");
	return write_private(ctl->o.state_dir, "admin.token", line, err);
}

static int listen_all(hsp_error_t *err)
{
	cleanup_free char *chain = NULL, *key = NULL;
	int r = server_cert(&chain, &key, err);
	if (r < 0)
		return r;
	struct hsp_rpc_creds tls = {HSP_RPC_TLS, ctl->ca_cert, chain, key, NULL};
	int port = hsp_rpc_server_listen(ctl->srv, ctl->o.listen, &tls, err);
	if (port < 0)
		return port;
	cleanup_free char *host = strdup(ctl->o.listen);
	char *colon = host ? strrchr(host, ':') : NULL;
	if (colon == NULL)
		return hsp_make_error(err, EINVAL, "invalid --listen `%s`", ctl->o.listen);
	*colon = '\0';
	cleanup_free char *addr = NULL;
	if (asprintf(&addr, "%s:%d\n", host, port) < 0)
		return hsp_make_errno(err, ENOMEM, "addr");
	r = write_private(ctl->o.state_dir, "listen.addr", addr, err);
	if (r < 0)
		return r;
	fprintf(stderr, "hsp-controller: API on %s", addr);
	if (ctl->o.socket) {
		cleanup_free char *dir = strdup(ctl->o.socket);
		char *slash = dir ? strrchr(dir, '/') : NULL;
		if (slash && slash != dir) {
			*slash = '\0';
			hsp_mkdir_p(dir, 0755, NULL);
		}
		unlink(ctl->o.socket);
		cleanup_free char *uds = NULL;
		if (asprintf(&uds, "unix:%s", ctl->o.socket) < 0)
			return hsp_make_errno(err, ENOMEM, "addr");
		struct hsp_rpc_creds local = {HSP_RPC_LOCAL, NULL, NULL, NULL, NULL};
		r = hsp_rpc_server_listen(ctl->srv, uds, &local, err);
		if (r < 0)
			return r;
	}
	return 0;
}

/* The server's method table: it must outlive the server. */
static struct hsp_rpc_method *all;

static int start_server(hsp_error_t *err)
{
	const struct {
		const struct hsp_rpc_method *m;
		size_t n;
	} tables[] = {{ctl_ve_methods, ctl_n_ve_methods},
		      {ctl_move_methods, ctl_n_move_methods},
		      {ctl_backup_methods, ctl_n_backup_methods},
		      {ctl_admin_methods, ctl_n_admin_methods},
		      {ctl_node_methods, ctl_n_node_methods}};
	size_t n = 0;
	for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++)
		n += tables[i].n;
	all = calloc(n, sizeof(*all));
	if (all == NULL)
		return hsp_make_errno(err, ENOMEM, "methods");
	for (size_t i = 0, at = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
		memcpy(all + at, tables[i].m, tables[i].n * sizeof(*all));
		at += tables[i].n;
	}
	/* room for ExecRequest's 4 MiB of stdin plus its other fields */
	struct hsp_rpc_server_opts so = {.keepalive_ms = 2000,
					 .keepalive_timeout_ms = 3000,
					 .max_message = (4 << 20) + (64 << 10)};
	int r = hsp_rpc_server_new(ctl->loop, all, n, &so, NULL, &ctl->srv, err);
	if (r == 0)
		r = listen_all(err);
	if (r == 0)
		r = hsp_rpc_server_start(ctl->srv, err);
	/* grpc binds the unix socket at start; only root may use it. */
	if (r == 0 && ctl->o.socket && chmod(ctl->o.socket, 0600) < 0)
		r = hsp_make_errno(err, errno, "chmod `%s`", ctl->o.socket);
	return r;
}

static void *signal_main(void *arg)
{
	sigset_t *set = arg;
	int sig;
	while (sigwait(set, &sig) == 0) {
		fprintf(stderr, "hsp-controller: signal %d, shutting down\n", sig);
		hsp_rpc_loop_stop(ctl->loop);
		break;
	}
	return NULL;
}

static int init(hsp_error_t *err)
{
	const char *d = ctl->o.state_dir;
	int r = hsp_mkdir_p(d, 0700, err);
	if (r == 0)
		r = load_ca(err);
	cleanup_free char *db = NULL;
	if (r == 0 && path_in(d, "state.db", &db) < 0)
		r = hsp_make_errno(err, ENOMEM, "path");
	if (r == 0)
		r = hsp_store_open(db, &ctl->store, err);
	if (r == 0)
		r = model_load(err);
	if (r == 0)
		r = bootstrap_admin(err);
	if (r == 0)
		r = ipam_init(err);
	return r;
}

static int run(sigset_t *set, hsp_error_t *err)
{
	int r = hsp_rpc_loop_new(&ctl->loop, err);
	if (r == 0)
		r = start_server(err);
	if (r == 0 && ctl->o.metrics)
		r = metrics_start(ctl->o.metrics, err);
	if (r < 0)
		return r;
	ctl->started_at = now_unix();
	ves_resume();
	pthread_t sig;
	pthread_create(&sig, NULL, signal_main, set);
	pthread_detach(sig);
	hsp_rpc_timer_add(ctl->loop, 250, nodes_tick, NULL);
	hsp_rpc_timer_add(ctl->loop, 0, metrics_refresh, NULL);
	fprintf(stderr, "hsp-controller: ready (cluster %s, CA %s, %zu nodes, %zu VEs)\n",
		ctl->o.cluster_name, ctl->ca_fp, ctl->n_nodes, ctl->n_ves);
	return hsp_rpc_loop_run(ctl->loop);
}

/* hsp-ceph installed beside us (sbin), or where the build tree puts it. */
static char *default_ceph_helper(void)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		*strrchr(self, '/') = '\0';
		static const char *const rel[] = {"hsp-ceph", "../runtime/hsp-ceph"};
		for (size_t i = 0; i < 2; i++) {
			char *p = hsp_strdup_printf("%s/%s", self, rel[i]);
			if (access(p, X_OK) == 0)
				return p;
			free(p);
		}
	}
	return strdup("hsp-ceph");
}

int main(int argc, char **argv)
{
	static struct ctl c;
	const char *sans[MAX_SANS];
	c.o = (struct ctl_opts){.listen = "0.0.0.0:7443",
				.socket = "/run/hsp/controller.sock",
				.cluster_name = "hsp",
				.heartbeat_ms = 1000,
				.suspect_ms = 2000,
				.dead_ms = 5000,
				.lease_ms = UINT32_MAX, /* decided after parsing */
				.bridge = "hspbr0",
				.max_moves = 4};
	if (parse_opts(argc, argv, &c.o, sans) < 0)
		return 2;
	if (c.o.socket && *c.o.socket == '\0')
		c.o.socket = NULL;
	cleanup_free char *helper = NULL;
	if (c.o.ceph_helper == NULL)
		c.o.ceph_helper = helper = default_ceph_helper();
	ctl = &c;
	umask(077); /* the store holds token hashes and the CA key sits next to it */
	srandom((unsigned)getpid() ^ (unsigned)now_unix_ms());
	/* Blocked before grpc starts its threads, so only signal_main
	 * takes these. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	hsp_error_t err = NULL;
	int r = init(&err);
	if (r == 0)
		r = run(&set, &err);
	if (r < 0)
		fprintf(stderr, "hsp-controller: %s\n", err ? err->msg : strerror(-r));
	hsp_error_release(&err);
	metrics_stop();
	/* Our timers and parked calls go while the loop lives; the loop's end
	 * then ends every call (sessions and watchers clean up in on_done,
	 * which needs the model); the model goes last. */
	if (c.loop) {
		ves_free_timers();
		ops_release_waiters();
		ceph_jobs_join();
	}
	hsp_rpc_loop_free(c.loop);
	drains_free();
	free(all);
	model_free();
	hsp_store_close(c.store);
	if (c.o.socket && r == 0)
		unlink(c.o.socket);
	free(c.ca_cert);
	free(c.ca_key);
	free(c.ca_fp);
	free(c.gateway_str);
	return r < 0 ? 1 : 0;
}
