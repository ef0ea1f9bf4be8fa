#define _GNU_SOURCE
#include "errpipe.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RECORD_MAX 600

static void write_v(int fd, int status, const char *fmt, va_list ap)
{
	char buf[RECORD_MAX];
	int n = snprintf(buf, sizeof(buf), "%d\t", status);
	n += vsnprintf(buf + n, sizeof(buf) - n, fmt, ap);
	if (n >= (int)sizeof(buf))
		n = sizeof(buf) - 1;
	if (write(fd, buf, n) < 0) {
		/* the reader is gone: nobody left to tell */
	}
}

void hsp_errpipe_write(int fd, int status, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	write_v(fd, status, fmt, ap);
	va_end(ap);
}

void hsp_errpipe_fail(int fd, int status, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	write_v(fd, status > 0 ? status : EIO, fmt, ap);
	va_end(ap);
	_exit(127);
}

int hsp_errpipe_read(int fd, const char *prefix, hsp_error_t *err)
{
	char buf[RECORD_MAX];
	ssize_t n, total = 0;
	while ((n = read(fd, buf + total, sizeof(buf) - 1 - total)) > 0 ||
	       (n < 0 && errno == EINTR))
		if (n > 0)
			total += n;
	if (total == 0)
		return 1;
	buf[total] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	char *tab = strchr(buf, '\t');
	int status = atoi(buf);
	if (tab != NULL && status == 0)
		return 0;
	return hsp_make_error(err, status > 0 ? status : EIO, "%s%s", prefix ? prefix : "",
			      tab ? tab + 1 : buf);
}
