/* Small helpers shared by the runtime: cleanup attributes, file I/O,
 * parsing of user input.  All fallible helpers return 0 or -errno. */
#ifndef HSP_UTILS_H
#define HSP_UTILS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "error.h"

void hsp_freep(void *p);
void hsp_closep(int *fd);
void hsp_fclosep(void *f);
void hsp_strvfreep(void *p);

#define cleanup_free __attribute__((cleanup(hsp_freep)))
#define cleanup_close __attribute__((cleanup(hsp_closep)))
#define cleanup_fclose __attribute__((cleanup(hsp_fclosep)))
#define cleanup_strv __attribute__((cleanup(hsp_strvfreep)))

/* Hands a cleanup-owned value to the caller. */
#define steal_pointer(pp)                                                                          \
	({                                                                                         \
		__typeof__(*(pp)) _v = *(pp);                                                      \
		*(pp) = NULL;                                                                      \
		_v;                                                                                \
	})
#define steal_fd(fdp)                                                                              \
	({                                                                                         \
		int _fd = *(fdp);                                                                  \
		*(fdp) = -1;                                                                       \
		_fd;                                                                               \
	})

char *hsp_strdup_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void hsp_strv_free(char **v);
size_t hsp_strv_len(char *const *v);

/* Whole-file helpers; read_file NUL-terminates. */
int hsp_read_file(const char *path, char **out, size_t *len, hsp_error_t *err);
int hsp_read_file_at(int dirfd, const char *path, char **out, size_t *len, hsp_error_t *err);
int hsp_write_file(const char *path, const char *data, size_t len, hsp_error_t *err);
int hsp_write_file_at(int dirfd, const char *path, const char *data, size_t len, hsp_error_t *err);
/* Write to a temporary file next to path, fsync, rename over path. */
int hsp_write_file_atomic(const char *path, const char *data, size_t len, mode_t mode,
			  hsp_error_t *err);

int hsp_mkdir_p(const char *path, mode_t mode, hsp_error_t *err);
/* Removes a tree without following symlinks or crossing mount points. */
int hsp_rm_rf(const char *path, hsp_error_t *err);

/* "512", "64K", "1.5G" -> bytes; K/M/G/T are powers of 1024. */
int hsp_parse_size(const char *s, uint64_t *out, hsp_error_t *err);
/* "2", "0.5" -> millicpus. */
int hsp_parse_cpus(const char *s, uint64_t *millicpus, hsp_error_t *err);
int hsp_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out, const char *what,
		  hsp_error_t *err);
/* "SIGTERM", "TERM", "15", "RTMIN+3" -> signal number. */
int hsp_parse_signal(const char *s, int *sig, hsp_error_t *err);
const char *hsp_signal_name(int sig, char buf[16]);

/* VE names: [a-z0-9][a-z0-9-]{0,62}. */
int hsp_validate_name(const char *name, const char *what, hsp_error_t *err);
/* Hostnames: RFC 1123 labels, at most 64 bytes. */
int hsp_validate_hostname(const char *h, hsp_error_t *err);

/* Monotonic clock in nanoseconds. */
uint64_t hsp_now_ns(void);
/* Short stable hash (FNV-1a 64) for naming per-instance resources. */
uint64_t hsp_hash64(const char *s);

/* One fd over a unix socket (SCM_RIGHTS); recv returns it close-on-exec,
 * or -EIO. */
int hsp_send_fd(int sock, int fd);
int hsp_recv_fd(int sock);

#endif
