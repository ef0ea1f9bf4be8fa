/* The controller's Ceph administration: a node's own cephx key at join,
 * fencing a dead node.  Both run `hsp-ceph` (the program linking
 * libcephfs/librados, so the daemon itself does not) in a thread of their
 * own, bounded by its --timeout, and deliver the result on the loop. */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctl.h"
#include "utils.h"

#define CEPH_JOB_TIMEOUT_S "20"
#define CEPH_OUT_MAX (64 * 1024)

extern char **environ;

struct ceph_job {
	char *argv[20];
	size_t argc;
	ceph_done_fn done;
	void *ud;
	int err_no; /* 0 = success */
	char *out, *msg;
	pthread_t th;
	bool joined;
	struct ceph_job *next;
};

/* Jobs not yet delivered; touched on the loop only. */
static struct ceph_job *jobs;

bool ceph_enabled(void)
{
	return ctl->o.storage && strcmp(ctl->o.storage, "cephfs") == 0;
}

void ceph_entity(const char *node, char *buf, size_t n)
{
	snprintf(buf, n, "%s-%s", ctl->o.cluster_name, node);
	for (char *p = buf; *p; p++)
		*p = (char)(isalnum((unsigned char)*p) || *p == '.' || *p == '-' ? tolower(*p)
										 : '-');
}

static void job_free(struct ceph_job *j)
{
	for (size_t i = 0; i < j->argc; i++)
		free(j->argv[i]);
	free(j->out);
	free(j->msg);
	free(j);
}

static void add_arg(struct ceph_job *j, const char *s)
{
	if (j->argc + 1 >= sizeof(j->argv) / sizeof(j->argv[0]) ||
	    (j->argv[j->argc] = strdup(s)) == NULL)
		abort();
	j->argc++;
}

static void slurp(int fd, char **buf, size_t *len)
{
	char tmp[4096];
	ssize_t n = read(fd, tmp, sizeof(tmp));
	if (n <= 0 || *len + (size_t)n > CEPH_OUT_MAX)
		return;
	char *b = realloc(*buf, *len + (size_t)n + 1);
	if (b == NULL)
		abort();
	memcpy(b + *len, tmp, (size_t)n);
	*len += (size_t)n;
	b[*len] = '\0';
	*buf = b;
}

/* Runs the helper; fills out (stdout) and err_no/msg from its exit and its
 * "<errno>\t<message>" on stderr. */
static void job_exec(struct ceph_job *j)
{
	int o[2], e[2];
	if (pipe2(o, O_CLOEXEC) < 0 || pipe2(e, O_CLOEXEC) < 0) {
		j->err_no = errno;
		j->msg = strdup("pipe");
		return;
	}
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, o[1], 1);
	posix_spawn_file_actions_adddup2(&fa, e[1], 2);
	sigset_t none;
	sigemptyset(&none);
	posix_spawnattr_t at;
	posix_spawnattr_init(&at);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK);
	pid_t pid;
	int r = posix_spawnp(&pid, j->argv[0], &fa, &at, j->argv, environ);
	posix_spawnattr_destroy(&at);
	posix_spawn_file_actions_destroy(&fa);
	close(o[1]);
	close(e[1]);
	char *err = NULL;
	size_t olen = 0, elen = 0;
	struct pollfd p[2] = {{o[0], POLLIN, 0}, {e[0], POLLIN, 0}};
	while (r == 0 && (p[0].fd >= 0 || p[1].fd >= 0)) {
		if (poll(p, 2, -1) < 0 && errno != EINTR)
			break;
		for (int i = 0; i < 2; i++) {
			if (p[i].fd < 0 || p[i].revents == 0)
				continue;
			size_t before = i ? elen : olen;
			slurp(p[i].fd, i ? &err : &j->out, i ? &elen : &olen);
			if ((i ? elen : olen) == before &&
			    (p[i].revents & (POLLHUP | POLLERR | POLLIN)))
				p[i].fd = -1;
		}
	}
	close(o[0]);
	close(e[0]);
	int status = 0;
	if (r != 0) {
		j->err_no = r;
		j->msg = hsp_strdup_printf("run %s: %s", j->argv[0], strerror(r));
	} else if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status)) {
		char *tab = err ? strchr(err, '\t') : NULL;
		j->err_no = tab ? (int)strtol(err, NULL, 10) : EIO;
		j->msg = strdup(tab ? tab + 1 : err ? err : "hsp-ceph failed");
		char *nl = j->msg ? strchr(j->msg, '\n') : NULL;
		if (nl)
			*nl = '\0';
		if (j->err_no <= 0)
			j->err_no = EIO;
	}
	free(err);
}

static void job_deliver(void *arg)
{
	struct ceph_job *j = arg;
	if (!j->joined)
		pthread_join(j->th, NULL);
	for (struct ceph_job **p = &jobs; *p; p = &(*p)->next)
		if (*p == j) {
			*p = j->next;
			break;
		}
	j->done(j->ud, j->err_no, j->out ? j->out : "", j->msg ? j->msg : "");
	job_free(j);
}

static void *job_thread(void *arg)
{
	struct ceph_job *j = arg;
	job_exec(j);
	/* Fails only once the loop is closing, after ceph_jobs_join. */
	hsp_rpc_loop_post(ctl->loop, job_deliver, j);
	return NULL;
}

int ceph_run(const char *verb, const char *node, ceph_done_fn done, void *ud, hsp_error_t *err)
{
	if (!ceph_enabled())
		return hsp_make_error(err, ENOTSUP, "the cluster has no Ceph storage");
	struct ceph_job *j = calloc(1, sizeof(*j));
	if (j == NULL)
		return hsp_make_errno(err, ENOMEM, "ceph job");
	char entity[160];
	ceph_entity(node, entity, sizeof(entity));
	add_arg(j, ctl->o.ceph_helper);
	add_arg(j, verb);
	const char *kv[][2] = {{"--conf", ctl->o.ceph_conf},
			       {"--id", ctl->o.ceph_id},
			       {"--keyring", ctl->o.ceph_keyring},
			       {"--fs-path", ctl->o.ceph_fs_path},
			       {"--entity", entity},
			       {"--timeout", CEPH_JOB_TIMEOUT_S}};
	for (size_t i = 0; i < sizeof(kv) / sizeof(kv[0]); i++) {
		add_arg(j, kv[i][0]);
		add_arg(j, kv[i][1]);
	}
	j->done = done;
	j->ud = ud;
	int r = pthread_create(&j->th, NULL, job_thread, j);
	if (r != 0) {
		job_free(j);
		return hsp_make_errno(err, r, "ceph job thread");
	}
	j->next = jobs;
	jobs = j;
	return 0;
}

void ceph_jobs_join(void)
{
	/* Each ends within the helper's timeout; their deliveries run when
	 * the loop is freed, while the model still exists. */
	for (struct ceph_job *j = jobs; j; j = j->next) {
		pthread_join(j->th, NULL);
		j->joined = true;
	}
}
