/* A load generator that speaks the real node protocol: N simulated agents
 * join (a join token each, a key and CSR each, a certificate each), open a
 * Session each over its own mTLS connection, say Hello and heartbeat at
 * 1 Hz.  Meanwhile it samples the controller's CPU time and RSS from /proc.
 *
 *   hsp-bench-agents --controller HOST:PORT --ca FILE --token ADMIN_TOKEN
 *                    --pid CONTROLLER_PID [--agents N] [--seconds S]
 *
 * Prints one line of figures; exits non-zero if not every agent got its
 * session welcomed. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hsp/v1/hsp.pb-c.h"
#include "hsp/v1/node.pb-c.h"
#include "pki.h"
#include "rpc.h"
#include "utils.h"

struct sim {
	int idx;
	char name[32];
	char *cert, *key;
	hsp_rpc_channel_t *ch;
	hsp_rpc_stream_t *s;
	bool welcomed;
	uint64_t seq;
};

static hsp_rpc_loop_t *loop;
static struct sim *sims;
static int n_agents = 1000, seconds = 30, welcomed, closed;
static const char *target, *ca_file, *admin;
static char *ca;

static int join_one(struct sim *a, hsp_rpc_channel_t *pub)
{
	hsp_error_t err = NULL;
	struct hsp_rpc_status st = {0};
	char bearer[256];
	snprintf(bearer, sizeof(bearer), "Bearer %s", admin);
	struct hsp_rpc_md md = {"authorization", bearer};
	Hsp__V1__CreateTokenRequest treq = HSP__V1__CREATE_TOKEN_REQUEST__INIT;
	treq.kind = HSP__V1__TOKEN_KIND__TOKEN_KIND_JOIN;
	ProtobufCMessage *resp = NULL;
	if (hsp_rpc_unary(pub, "/hsp.v1.Tokens/Create", &treq.base,
			  &hsp__v1__created_token__descriptor, &md, 1, 10000, &resp, &st,
			  &err) < 0 ||
	    st.code != GRPC_STATUS_OK) {
		fprintf(stderr, "token: %s\n", err ? err->msg : st.message);
		return -1;
	}
	cleanup_free char *token = strdup(((Hsp__V1__CreatedToken *)resp)->secret);
	protobuf_c_message_free_unpacked(resp, NULL);
	hsp_rpc_status_clear(&st);
	cleanup_free char *csr = NULL;
	if (hsp_pki_csr_create(a->name, &a->key, &csr, &err) < 0)
		return -1;
	Hsp__V1__JoinRequest jr = HSP__V1__JOIN_REQUEST__INIT;
	Hsp__V1__NodeCapacity cap = HSP__V1__NODE_CAPACITY__INIT;
	cap.cpus = 8;
	cap.memory_bytes = 32ULL << 30;
	jr.token = token;
	jr.node_name = a->name;
	jr.csr_pem.data = (uint8_t *)csr;
	jr.csr_pem.len = strlen(csr);
	jr.capacity = &cap;
	jr.agent_version = "bench";
	resp = NULL;
	if (hsp_rpc_unary(pub, "/hsp.v1.NodeAgent/Join", &jr.base,
			  &hsp__v1__join_response__descriptor, NULL, 0, 10000, &resp, &st,
			  &err) < 0 ||
	    st.code != GRPC_STATUS_OK) {
		fprintf(stderr, "join %s: %s\n", a->name, err ? err->msg : st.message);
		return -1;
	}
	Hsp__V1__JoinResponse *j = (Hsp__V1__JoinResponse *)resp;
	a->cert = strndup((char *)j->cert_pem.data, j->cert_pem.len);
	protobuf_c_message_free_unpacked(resp, NULL);
	hsp_rpc_status_clear(&st);
	return 0;
}

static void on_msg(hsp_rpc_stream_t *s, const ProtobufCMessage *msg, void *ud)
{
	(void)s;
	struct sim *a = ud;
	const Hsp__V1__ControllerMessage *m = (const void *)msg;
	if (m->msg_case == HSP__V1__CONTROLLER_MESSAGE__MSG_WELCOME && !a->welcomed) {
		a->welcomed = true;
		welcomed++;
	}
}

static void on_close(hsp_rpc_stream_t *s, const struct hsp_rpc_status *st, void *ud)
{
	(void)s;
	struct sim *a = ud;
	a->s = NULL;
	closed++;
	if (st->code != GRPC_STATUS_CANCELLED)
		fprintf(stderr, "%s: session closed: %s\n", a->name, hsp_rpc_code_name(st->code));
}

static void beat(void *arg)
{
	struct sim *a = arg;
	if (a->s == NULL)
		return;
	Hsp__V1__Heartbeat hb = HSP__V1__HEARTBEAT__INIT;
	hb.seq = ++a->seq;
	hb.load1 = 0.5;
	hb.memory_used_bytes = 1ULL << 30;
	Hsp__V1__AgentMessage m = HSP__V1__AGENT_MESSAGE__INIT;
	m.msg_case = HSP__V1__AGENT_MESSAGE__MSG_HEARTBEAT;
	m.heartbeat = &hb;
	hsp_rpc_stream_send(a->s, &m.base);
	hsp_rpc_timer_add(loop, 1000, beat, a);
}

static int open_session(struct sim *a)
{
	hsp_error_t err = NULL;
	struct hsp_rpc_creds c = {HSP_RPC_TLS, ca, a->cert, a->key, NULL};
	struct hsp_rpc_channel_opts o = {.keepalive_ms = 10000, .own_connection = true};
	if (hsp_rpc_channel_new(target, &c, &o, &a->ch, &err) < 0)
		return -1;
	Hsp__V1__Hello h = HSP__V1__HELLO__INIT;
	Hsp__V1__NodeCapacity cap = HSP__V1__NODE_CAPACITY__INIT;
	Hsp__V1__Template t = HSP__V1__TEMPLATE__INIT;
	Hsp__V1__Template *tp = &t;
	cap.cpus = 8;
	cap.memory_bytes = 32ULL << 30;
	t.name = "busybox";
	h.capacity = &cap;
	h.agent_version = "bench";
	h.templates = &tp;
	h.n_templates = 1;
	Hsp__V1__AgentMessage m = HSP__V1__AGENT_MESSAGE__INIT;
	m.msg_case = HSP__V1__AGENT_MESSAGE__MSG_HELLO;
	m.hello = &h;
	struct hsp_rpc_stream_cbs cbs = {.on_message = on_msg, .on_close = on_close};
	if (hsp_rpc_stream_open(loop, a->ch, "/hsp.v1.NodeAgent/Session", HSP_RPC_BIDI_STREAM,
				&m.base, &hsp__v1__controller_message__descriptor, NULL, 0, 0, &cbs,
				a, &a->s, &err) < 0) {
		fprintf(stderr, "%s: %s\n", a->name, err->msg);
		return -1;
	}
	/* spread the beats over the second */
	hsp_rpc_timer_add(loop, 1000 + (unsigned)(a->idx * 1000 / n_agents), beat, a);
	return 0;
}

static int proc_sample(int pid, double *cpu_s, long *rss_kb)
{
	char path[64], buf[4096];
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	FILE *f = fopen(path, "r");
	if (f == NULL || fgets(buf, sizeof(buf), f) == NULL) {
		if (f)
			fclose(f);
		return -1;
	}
	fclose(f);
	char *p = strrchr(buf, ')');
	unsigned long ut, st;
	/* fields after ")": state(3) ... utime(14) stime(15) */
	if (p == NULL ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
		return -1;
	*cpu_s = (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	f = fopen(path, "r");
	*rss_kb = 0;
	while (f && fgets(buf, sizeof(buf), f))
		if (sscanf(buf, "VmRSS: %ld kB", rss_kb) == 1)
			break;
	if (f)
		fclose(f);
	return 0;
}

struct measure {
	int pid;
	double cpu0;
	int64_t t0;
	long rss_max;
	int ticks;
};

static void sample(void *arg)
{
	struct measure *m = arg;
	double cpu;
	long rss;
	if (proc_sample(m->pid, &cpu, &rss) == 0 && rss > m->rss_max)
		m->rss_max = rss;
	if (++m->ticks >= seconds) {
		hsp_rpc_loop_stop(loop);
		return;
	}
	hsp_rpc_timer_add(loop, 1000, sample, m);
}

static void start_measure(void *arg)
{
	struct measure *m = arg;
	long rss;
	proc_sample(m->pid, &m->cpu0, &rss);
	m->t0 = hsp_rpc_now_ms();
	hsp_rpc_timer_add(loop, 1000, sample, m);
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {{"controller", 1, 0, 'c'},
					   {"ca", 1, 0, 'a'},
					   {"token", 1, 0, 't'},
					   {"pid", 1, 0, 'p'},
					   {"agents", 1, 0, 'n'},
					   {"seconds", 1, 0, 's'},
					   {0, 0, 0, 0}};
	int c, pid = 0;
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'c':
			target = optarg;
			break;
		case 'a':
			ca_file = optarg;
			break;
		case 't':
			admin = optarg;
			break;
		case 'p':
			pid = atoi(optarg);
			break;
		case 'n':
			n_agents = atoi(optarg);
			break;
		case 's':
			seconds = atoi(optarg);
			break;
		default:
			return 2;
		}
	}
	hsp_error_t err = NULL;
	if (!target || !ca_file || !admin || pid <= 0 || n_agents < 1 ||
	    hsp_read_file(ca_file, &ca, NULL, &err) < 0) {
		fprintf(stderr, "usage: see the header of bench/agents-load.c\n");
		return 2;
	}
	if (hsp_rpc_loop_new(&loop, &err) < 0)
		return 1;
	hsp_rpc_channel_t *pub;
	struct hsp_rpc_creds pc = {HSP_RPC_TLS, ca, NULL, NULL, NULL};
	if (hsp_rpc_channel_new(target, &pc, NULL, &pub, &err) < 0)
		return 1;
	sims = calloc((size_t)n_agents, sizeof(*sims));
	int64_t t = hsp_rpc_now_ms();
	for (int i = 0; i < n_agents; i++) {
		sims[i].idx = i;
		snprintf(sims[i].name, sizeof(sims[i].name), "bench-%d-%d", getpid() % 10000, i);
		if (join_one(&sims[i], pub) < 0)
			return 1;
	}
	int64_t join_ms = hsp_rpc_now_ms() - t;
	for (int i = 0; i < n_agents; i++)
		if (open_session(&sims[i]) < 0)
			return 1;
	/* the steady state starts once everyone is in: measure after 5 s */
	struct measure m = {.pid = pid};
	hsp_rpc_timer_add(loop, 5000, start_measure, &m);
	hsp_rpc_loop_run(loop);
	double cpu1;
	long rss;
	proc_sample(pid, &cpu1, &rss);
	double wall = (double)(hsp_rpc_now_ms() - m.t0) / 1000.0;
	printf("agents %d joined in %.1f s, welcomed %d, closed %d; controller over %.0f s of "
	       "heartbeats: %.1f%% of one core, RSS %ld MB now, %ld MB max\n",
	       n_agents, join_ms / 1000.0, welcomed, closed, wall, 100.0 * (cpu1 - m.cpu0) / wall,
	       rss / 1024, m.rss_max / 1024);
	int ok = welcomed == n_agents && closed == 0;
	for (int i = 0; i < n_agents; i++)
		if (sims[i].s)
			hsp_rpc_stream_cancel(sims[i].s);
	hsp_rpc_loop_free(loop);
	for (int i = 0; i < n_agents; i++) {
		hsp_rpc_channel_free(sims[i].ch);
		free(sims[i].cert);
		free(sims[i].key);
	}
	hsp_rpc_channel_free(pub);
	free(sims);
	free(ca);
	return ok ? 0 : 1;
}
