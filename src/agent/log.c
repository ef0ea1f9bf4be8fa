/* The daemon's log: one line per event, "2025-01-31T12:00:00.123Z text",
 * to stderr or to --log FILE.  Each line is a single write(2) on an
 * O_APPEND descriptor, so lines from different threads never interleave
 * and no lock is needed to write. */
#define _GNU_SOURCE
#include "agent.h"
#include "utils.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int log_fd = STDERR_FILENO;
static char *log_path;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static int open_log(const char *path)
{
	return open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, 0640);
}

int agent_log_open(const char *path, hsp_error_t *err)
{
	if (path == NULL)
		return 0;
	int fd = open_log(path);
	if (fd < 0)
		return hsp_make_errno(err, errno, "open log `%s`", path);
	log_fd = fd;
	log_path = strdup(path);
	return 0;
}

/* SIGHUP: logrotate moved the file away.  dup2 swaps the file under the
 * same descriptor number atomically, so writers never see a closed fd. */
void agent_log_reopen(void)
{
	if (log_path == NULL)
		return;
	pthread_mutex_lock(&log_lock);
	int fd = open_log(log_path);
	if (fd >= 0) {
		dup3(fd, log_fd, O_CLOEXEC);
		close(fd);
	}
	pthread_mutex_unlock(&log_lock);
}

void agent_log(const char *fmt, ...)
{
	char line[4096];
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	size_t n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	n += snprintf(line + n, sizeof(line) - n, ".%03ldZ ", ts.tv_nsec / 1000000);
	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	va_end(ap);
	/* A message longer than the buffer is cut, never split. */
	n = m < 0 ? n : n + (size_t)m < sizeof(line) - 1 ? n + (size_t)m : sizeof(line) - 2;
	/* Keep it one line whatever the message holds. */
	for (char *p = line; p < line + n; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	line[n++] = '\n';
	ssize_t w;
	do
		w = write(log_fd, line, n);
	while (w < 0 && errno == EINTR);
}
