/* Prometheus metrics over plain HTTP/1.0: the loop renders the text once a
 * second, a small thread serves it.  Plain sockets, no framework: one GET
 * path, one content type. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ctl.h"
#include "utils.h"

static const double buckets_s[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
				   0.01,   0.025,   0.05,   0.1,   0.25,   1};
#define NB (sizeof(buckets_s) / sizeof(buckets_s[0]))

struct hist {
	char *method;
	uint64_t counts[NB + 1];
	uint64_t n;
	double sum_s;
	uint64_t by_code[17];
};

static struct hist *hists;
static size_t n_hists;
static pthread_mutex_t text_lock = PTHREAD_MUTEX_INITIALIZER;
static char *text;
static int listen_fd = -1, stop_pipe[2] = {-1, -1};
static pthread_t thread;
static bool running;

void metrics_observe(const char *method, int64_t usec, grpc_status_code code)
{
	struct hist *h = NULL;
	for (size_t i = 0; i < n_hists && h == NULL; i++)
		if (strcmp(hists[i].method, method) == 0)
			h = &hists[i];
	if (h == NULL) {
		struct hist *p = reallocarray(hists, n_hists + 1, sizeof(*hists));
		if (p == NULL)
			return;
		hists = p;
		h = &hists[n_hists++];
		memset(h, 0, sizeof(*h));
		h->method = strdup(method);
		if (h->method == NULL)
			abort();
	}
	double s = (double)usec / 1e6;
	size_t b = 0;
	while (b < NB && s > buckets_s[b])
		b++;
	h->counts[b]++;
	h->n++;
	h->sum_s += s;
	if ((unsigned)code < 17)
		h->by_code[code]++;
}

static void render_api(FILE *f)
{
	fprintf(f, "# HELP hsp_api_request_duration_seconds Public API latency in the controller.\n"
		   "# TYPE hsp_api_request_duration_seconds histogram\n");
	for (size_t i = 0; i < n_hists; i++) {
		struct hist *h = &hists[i];
		uint64_t cum = 0;
		for (size_t b = 0; b < NB; b++) {
			cum += h->counts[b];
			fprintf(f,
				"hsp_api_request_duration_seconds_bucket{method=\"%s\",le=\"%g\"} "
				"%lu\n",
				h->method, buckets_s[b], (unsigned long)cum);
		}
		fprintf(f,
			"hsp_api_request_duration_seconds_bucket{method=\"%s\",le=\"+Inf\"} %lu\n"
			"hsp_api_request_duration_seconds_sum{method=\"%s\"} %.6f\n"
			"hsp_api_request_duration_seconds_count{method=\"%s\"} %lu\n",
			h->method, (unsigned long)h->n, h->method, h->sum_s, h->method,
			(unsigned long)h->n);
	}
	fprintf(f, "# HELP hsp_api_requests_total Public API calls by status code.\n"
		   "# TYPE hsp_api_requests_total counter\n");
	for (size_t i = 0; i < n_hists; i++)
		for (unsigned c = 0; c < 17; c++)
			if (hists[i].by_code[c])
				fprintf(f,
					"hsp_api_requests_total{method=\"%s\",code=\"%u\"} %lu\n",
					hists[i].method, c, (unsigned long)hists[i].by_code[c]);
}

static void render_nodes(FILE *f)
{
	static const Hsp__V1__NodeState states[] = {
	    HSP__V1__NODE_STATE__NODE_STATE_JOINING,	 HSP__V1__NODE_STATE__NODE_STATE_READY,
	    HSP__V1__NODE_STATE__NODE_STATE_SUSPECT,	 HSP__V1__NODE_STATE__NODE_STATE_DRAINING,
	    HSP__V1__NODE_STATE__NODE_STATE_MAINTENANCE, HSP__V1__NODE_STATE__NODE_STATE_DEAD,
	    HSP__V1__NODE_STATE__NODE_STATE_FENCED};
	fprintf(f, "# HELP hsp_nodes Nodes by state.\n# TYPE hsp_nodes gauge\n");
	for (size_t s = 0; s < sizeof(states) / sizeof(states[0]); s++) {
		unsigned n = 0;
		for (size_t i = 0; i < ctl->n_nodes; i++)
			n += ctl->nodes[i]->pb->state == states[s];
		fprintf(f, "hsp_nodes{state=\"%s\"} %u\n", node_state_str(states[s]), n);
	}
	fprintf(f, "# HELP hsp_node_connected Whether the node's agent has a session open.\n"
		   "# TYPE hsp_node_connected gauge\n");
	for (size_t i = 0; i < ctl->n_nodes; i++)
		fprintf(f, "hsp_node_connected{node=\"%s\"} %d\n", ctl->nodes[i]->pb->name,
			ctl->nodes[i]->session != NULL);
	fprintf(f, "# TYPE hsp_node_load1 gauge\n");
	for (size_t i = 0; i < ctl->n_nodes; i++)
		fprintf(f, "hsp_node_load1{node=\"%s\"} %.2f\n", ctl->nodes[i]->pb->name,
			ctl->nodes[i]->pb->load1);
}

static void render_ves(FILE *f)
{
	fprintf(f, "# HELP hsp_ves VEs by state.\n# TYPE hsp_ves gauge\n");
	for (int s = 1; s <= HSP__V1__VE_STATE__VE_STATE_RESCUE; s++) {
		unsigned n = 0;
		for (size_t i = 0; i < ctl->n_ves; i++)
			n += (int)ctl->ves[i]->state == s;
		fprintf(f, "hsp_ves{state=\"%s\"} %u\n", ve_state_str((Hsp__V1__VeState)s), n);
	}
	fprintf(f, "# TYPE hsp_ve_cpu_seconds_total counter\n# TYPE hsp_ve_memory_bytes gauge\n"
		   "# TYPE hsp_ve_pids gauge\n# TYPE hsp_ve_disk_used_bytes gauge\n"
		   "# TYPE hsp_ve_disk_bytes gauge\n");
	for (size_t i = 0; i < ctl->n_ves; i++) {
		const Hsp__V1__Ve *ve = ctl->ves[i];
		const Hsp__V1__VeUsage *u = ve->usage;
		const char *fmt = "{ve=\"%s\",node=\"%s\",tenant=\"%s\"}";
		char lbl[256];
		snprintf(lbl, sizeof(lbl), fmt, ve->name, ve->node, ve->tenant);
		fprintf(f, "hsp_ve_cpu_seconds_total%s %.3f\n", lbl, u ? u->cpu_ns / 1e9 : 0.0);
		fprintf(f, "hsp_ve_memory_bytes%s %lu\n", lbl,
			(unsigned long)(u ? u->memory_bytes : 0));
		fprintf(f, "hsp_ve_pids%s %u\n", lbl, u ? u->pids : 0);
		fprintf(f, "hsp_ve_disk_used_bytes%s %lu\n", lbl,
			(unsigned long)(u ? u->disk_used_bytes : 0));
		fprintf(f, "hsp_ve_disk_bytes%s %lu\n", lbl,
			(unsigned long)(ve->limits ? ve->limits->disk_bytes : 0));
	}
}

void metrics_refresh(void *arg)
{
	(void)arg;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (f) {
		render_nodes(f);
		render_ves(f);
		render_api(f);
		fclose(f);
		pthread_mutex_lock(&text_lock);
		free(text);
		text = buf;
		pthread_mutex_unlock(&text_lock);
	}
	hsp_rpc_timer_add(ctl->loop, 1000, metrics_refresh, NULL);
}

static void write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w <= 0)
			return;
		p += w;
		n -= (size_t)w;
	}
}

static void serve(int fd)
{
	char req[1024];
	struct pollfd p = {fd, POLLIN, 0};
	ssize_t n = poll(&p, 1, 2000) == 1 ? read(fd, req, sizeof(req) - 1) : -1;
	if (n <= 0)
		return;
	req[n] = '\0';
	if (strncmp(req, "GET /metrics ", 13) != 0 && strncmp(req, "GET / ", 6) != 0) {
		static const char nf[] = "HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n";
		write_all(fd, nf, sizeof(nf) - 1);
		return;
	}
	pthread_mutex_lock(&text_lock);
	cleanup_free char *body = strdup(text ? text : "");
	pthread_mutex_unlock(&text_lock);
	if (body == NULL)
		return;
	char head[160];
	int hl = snprintf(head, sizeof(head),
			  "HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n"
			  "Content-Length: %zu\r\n\r\n",
			  strlen(body));
	write_all(fd, head, (size_t)hl);
	write_all(fd, body, strlen(body));
}

static void *http_main(void *arg)
{
	(void)arg;
	for (;;) {
		struct pollfd p[2] = {{listen_fd, POLLIN, 0}, {stop_pipe[0], POLLIN, 0}};
		if (poll(p, 2, -1) < 0 && errno != EINTR)
			break;
		if (p[1].revents)
			break;
		if (!(p[0].revents & POLLIN))
			continue;
		int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		serve(fd);
		close(fd);
	}
	return NULL;
}

static int bind_addr(const char *addr, hsp_error_t *err)
{
	cleanup_free char *host = strdup(addr);
	if (host == NULL)
		return hsp_make_errno(err, ENOMEM, "metrics");
	char *colon = strrchr(host, ':');
	if (colon == NULL)
		return hsp_make_error(err, EINVAL, "invalid --metrics `%s`: HOST:PORT", addr);
	*colon = '\0';
	char *h = host;
	if (*h == '[' && colon[-1] == ']') {
		h++;
		colon[-1] = '\0';
	}
	struct addrinfo hints = {.ai_flags = AI_PASSIVE, .ai_socktype = SOCK_STREAM}, *ai;
	int rc = getaddrinfo(*h ? h : NULL, colon + 1, &hints, &ai);
	if (rc != 0)
		return hsp_make_error(err, EINVAL, "invalid --metrics `%s`: %s", addr,
				      gai_strerror(rc));
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	if (fd >= 0)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 64) < 0) {
		int e = errno;
		freeaddrinfo(ai);
		if (fd >= 0)
			close(fd);
		return hsp_make_errno(err, e, "metrics listen on `%s`", addr);
	}
	freeaddrinfo(ai);
	return fd;
}

int metrics_start(const char *addr, hsp_error_t *err)
{
	int fd = bind_addr(addr, err);
	if (fd < 0)
		return fd;
	if (pipe2(stop_pipe, O_CLOEXEC) < 0) {
		close(fd);
		return hsp_make_errno(err, errno, "pipe");
	}
	listen_fd = fd;
	int rc = pthread_create(&thread, NULL, http_main, NULL);
	if (rc != 0) {
		metrics_stop();
		return hsp_make_errno(err, rc, "metrics thread");
	}
	running = true;
	return 0;
}

void metrics_stop(void)
{
	if (running) {
		write_all(stop_pipe[1], "x", 1);
		pthread_join(thread, NULL);
		running = false;
	}
	for (int i = 0; i < 2; i++)
		if (stop_pipe[i] >= 0)
			close(stop_pipe[i]);
	stop_pipe[0] = stop_pipe[1] = -1;
	if (listen_fd >= 0)
		close(listen_fd);
	listen_fd = -1;
	free(text);
	text = NULL;
	for (size_t i = 0; i < n_hists; i++)
		free(hists[i].method);
	free(hists);
	hists = NULL;
	n_hists = 0;
}
