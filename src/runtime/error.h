/* Error objects: every fallible call returns 0 (or a count) on success and a
 * negative errno on failure, and fills *err with a one-line message that the
 * CLI or daemon prints.  Library code never logs. */
#ifndef HSP_ERROR_H
#define HSP_ERROR_H

#include <stdarg.h>

struct hsp_error_s {
	int status; /* positive errno */
	char *msg;
};
typedef struct hsp_error_s *hsp_error_t;

/* Sets *err (if not already set) and returns -status. */
int hsp_make_error(hsp_error_t *err, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int hsp_make_error_v(hsp_error_t *err, int status, const char *fmt, va_list ap);
/* Like hsp_make_error with status=errno and ": strerror" appended. */
int hsp_make_errno(hsp_error_t *err, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Prefixes an existing error's message with more context. */
int hsp_error_wrap(hsp_error_t *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void hsp_error_release(hsp_error_t *err);

#endif
