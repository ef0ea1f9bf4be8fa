#define _GNU_SOURCE
#include "error.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int hsp_make_error_v(hsp_error_t *err, int status, const char *fmt, va_list ap)
{
	if (status <= 0)
		status = EIO;
	if (err == NULL || *err != NULL)
		return -status;

	struct hsp_error_s *e = calloc(1, sizeof(*e));
	if (e == NULL)
		return -status;
	if (vasprintf(&e->msg, fmt, ap) < 0)
		e->msg = NULL;
	e->status = status;
	*err = e;
	return -status;
}

int hsp_make_error(hsp_error_t *err, int status, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = hsp_make_error_v(err, status, fmt, ap);
	va_end(ap);
	return r;
}

int hsp_make_errno(hsp_error_t *err, int status, const char *fmt, ...)
{
	char *head = NULL;
	va_list ap;
	va_start(ap, fmt);
	if (vasprintf(&head, fmt, ap) < 0)
		head = NULL;
	va_end(ap);
	int r = hsp_make_error(err, status, "%s: %s", head ? head : "error", strerror(status));
	free(head);
	return r;
}

int hsp_error_wrap(hsp_error_t *err, const char *fmt, ...)
{
	if (err == NULL || *err == NULL)
		return -EIO;
	char *head = NULL, *msg = NULL;
	va_list ap;
	va_start(ap, fmt);
	if (vasprintf(&head, fmt, ap) < 0)
		head = NULL;
	va_end(ap);
	if (head && asprintf(&msg, "%s: %s", head, (*err)->msg ? (*err)->msg : "") >= 0) {
		free((*err)->msg);
		(*err)->msg = msg;
	}
	free(head);
	return -(*err)->status;
}

void hsp_error_release(hsp_error_t *err)
{
	if (err == NULL || *err == NULL)
		return;
	free((*err)->msg);
	free(*err);
	*err = NULL;
}
