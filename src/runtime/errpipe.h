/* Reporting failures across a fork/exec: a child that fails before it can
 * return an error object writes one record, "<errno>\t<message>", to a pipe
 * the parent reads.  A successful exec closes a close-on-exec pipe with
 * nothing written; a process that lives on (the monitor) writes "0\t". */
#ifndef HSP_ERRPIPE_H
#define HSP_ERRPIPE_H

#include "error.h"

/* Writes one record; async-signal-safe (no allocation). */
void hsp_errpipe_write(int fd, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Writes a record and _exits(127). */
void hsp_errpipe_fail(int fd, int status, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 3, 4)));
/* Reads the pipe to EOF: 1 if nothing was written, 0 for a "0" record,
 * or -errno with *err set to "<prefix><message>". */
int hsp_errpipe_read(int fd, const char *prefix, hsp_error_t *err);

#endif
