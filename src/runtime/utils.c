#define _GNU_SOURCE
#include "utils.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

void hsp_freep(void *p)
{
	free(*(void **)p);
}

void hsp_closep(int *fd)
{
	if (*fd >= 0) {
		int saved = errno;
		close(*fd);
		errno = saved;
	}
	*fd = -1;
}

void hsp_fclosep(void *p)
{
	FILE *f = *(FILE **)p;
	if (f)
		fclose(f);
}

void hsp_strv_free(char **v)
{
	if (v == NULL)
		return;
	for (char **p = v; *p; p++)
		free(*p);
	free(v);
}

void hsp_strvfreep(void *p)
{
	hsp_strv_free(*(char ***)p);
}

size_t hsp_strv_len(char *const *v)
{
	size_t n = 0;
	while (v && v[n])
		n++;
	return n;
}

char *hsp_strdup_printf(const char *fmt, ...)
{
	char *s = NULL;
	va_list ap;
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	if (s == NULL)
		abort(); /* out of memory: nothing sensible to do */
	return s;
}

int hsp_read_file_at(int dirfd, const char *path, char **out, size_t *len, hsp_error_t *err)
{
	cleanup_close int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return hsp_make_errno(err, errno, "open `%s`", path);

	size_t cap = 4096, n = 0;
	cleanup_free char *buf = malloc(cap);
	if (buf == NULL)
		return hsp_make_errno(err, ENOMEM, "read `%s`", path);
	for (;;) {
		if (n + 1 >= cap) {
			char *nb = realloc(buf, cap * 2);
			if (nb == NULL)
				return hsp_make_errno(err, ENOMEM, "read `%s`", path);
			buf = nb;
			cap *= 2;
		}
		ssize_t r = read(fd, buf + n, cap - n - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return hsp_make_errno(err, errno, "read `%s`", path);
		if (r == 0)
			break;
		n += r;
	}
	buf[n] = '\0';
	if (len)
		*len = n;
	*out = steal_pointer(&buf);
	return 0;
}

int hsp_read_file(const char *path, char **out, size_t *len, hsp_error_t *err)
{
	return hsp_read_file_at(AT_FDCWD, path, out, len, err);
}

static int write_all(int fd, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t w = write(fd, data, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		data += w;
		len -= w;
	}
	return 0;
}

int hsp_write_file_at(int dirfd, const char *path, const char *data, size_t len, hsp_error_t *err)
{
	cleanup_close int fd = openat(dirfd, path, O_WRONLY | O_CLOEXEC | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return hsp_make_errno(err, errno, "open `%s`", path);
	int r = write_all(fd, data, len);
	if (r < 0)
		return hsp_make_errno(err, -r, "write `%s`", path);
	return 0;
}

int hsp_write_file(const char *path, const char *data, size_t len, hsp_error_t *err)
{
	return hsp_write_file_at(AT_FDCWD, path, data, len, err);
}

int hsp_write_file_atomic(const char *path, const char *data, size_t len, mode_t mode,
			  hsp_error_t *err)
{
	cleanup_free char *tmp = hsp_strdup_printf("%s.tmp.%d", path, getpid());
	cleanup_close int fd = open(tmp, O_WRONLY | O_CLOEXEC | O_CREAT | O_TRUNC, mode);
	if (fd < 0)
		return hsp_make_errno(err, errno, "open `%s`", tmp);
	int r = write_all(fd, data, len);
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0) {
		unlink(tmp);
		return hsp_make_errno(err, -r, "write `%s`", path);
	}
	return 0;
}

int hsp_mkdir_p(const char *path, mode_t mode, hsp_error_t *err)
{
	cleanup_free char *p = strdup(path);
	if (p == NULL)
		return hsp_make_errno(err, ENOMEM, "mkdir `%s`", path);
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, mode) < 0 && errno != EEXIST)
			return hsp_make_errno(err, errno, "mkdir `%s`", p);
		*s = '/';
	}
	if (mkdir(p, mode) < 0 && errno != EEXIST)
		return hsp_make_errno(err, errno, "mkdir `%s`", p);
	return 0;
}

static int rm_rf_at(int dirfd, const char *name, dev_t dev)
{
	struct stat st;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISDIR(st.st_mode))
		return unlinkat(dirfd, name, 0) < 0 && errno != ENOENT ? -errno : 0;
	if (st.st_dev != dev)
		return -EXDEV; /* a mount point: never remove what lies beyond it */

	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	DIR *d = fdopendir(fd);
	if (d == NULL) {
		close(fd);
		return -errno;
	}
	int ret = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		int r = rm_rf_at(fd, de->d_name, dev);
		if (r < 0 && ret == 0)
			ret = r;
	}
	closedir(d);
	if (ret == 0 && unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
		ret = -errno;
	return ret;
}

int hsp_rm_rf(const char *path, hsp_error_t *err)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : hsp_make_errno(err, errno, "stat `%s`", path);
	int r = rm_rf_at(AT_FDCWD, path, st.st_dev);
	if (r < 0)
		return hsp_make_errno(err, -r, "remove `%s`", path);
	return 0;
}

int hsp_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out, const char *what,
		  hsp_error_t *err)
{
	if (s == NULL || *s == '\0' || !isdigit((unsigned char)*s))
		return hsp_make_error(err, EINVAL, "invalid %s `%s`: not a number", what,
				      s ? s : "");
	errno = 0;
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno == ERANGE || *end != '\0')
		return hsp_make_error(err, EINVAL, "invalid %s `%s`: not a number", what, s);
	if (v < min || v > max)
		return hsp_make_error(err, ERANGE, "invalid %s `%s`: must be between %llu and %llu",
				      what, s, (unsigned long long)min, (unsigned long long)max);
	*out = v;
	return 0;
}

/* Parses "123" or "1.5" into an integer scaled by `scale`, with at most
 * `decimals` fractional digits honoured; rejects anything else. */
static int parse_decimal(const char *s, uint64_t scale, const char **rest, uint64_t *out)
{
	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	uint64_t ip = 0;
	while (isdigit((unsigned char)*s)) {
		if (ip > (UINT64_MAX - 9) / 10)
			return -ERANGE;
		ip = ip * 10 + (*s++ - '0');
	}
	if (ip > UINT64_MAX / scale)
		return -ERANGE;
	uint64_t v = ip * scale;
	if (*s == '.') {
		s++;
		if (!isdigit((unsigned char)*s))
			return -EINVAL;
		uint64_t div = 1, frac = 0;
		while (isdigit((unsigned char)*s)) {
			if (div < 1000000000ULL) {
				frac = frac * 10 + (*s - '0');
				div *= 10;
			}
			s++;
		}
		v += (uint64_t)((long double)frac * scale / div);
	}
	*rest = s;
	*out = v;
	return 0;
}

int hsp_parse_size(const char *s, uint64_t *out, hsp_error_t *err)
{
	if (s == NULL)
		return hsp_make_error(err, EINVAL, "invalid size: missing value");
	/* Find the unit first so the scale is known while parsing. */
	size_t n = strlen(s);
	uint64_t scale = 1;
	if (n > 0) {
		switch (toupper((unsigned char)s[n - 1])) {
		case 'K':
			scale = 1ULL << 10;
			break;
		case 'M':
			scale = 1ULL << 20;
			break;
		case 'G':
			scale = 1ULL << 30;
			break;
		case 'T':
			scale = 1ULL << 40;
			break;
		}
	}
	const char *rest;
	uint64_t v;
	int r = parse_decimal(s, scale, &rest, &v);
	if (r == -ERANGE)
		return hsp_make_error(err, ERANGE, "invalid size `%s`: too large", s);
	bool ok = r == 0 && ((scale == 1 && *rest == '\0') || (scale != 1 && rest == s + n - 1));
	if (!ok)
		return hsp_make_error(
		    err, EINVAL, "invalid size `%s`: expected bytes with optional K, M, G or T", s);
	*out = v;
	return 0;
}

int hsp_parse_cpus(const char *s, uint64_t *millicpus, hsp_error_t *err)
{
	const char *rest;
	uint64_t v;
	if (s == NULL || parse_decimal(s, 1000, &rest, &v) < 0 || *rest != '\0')
		return hsp_make_error(
		    err, EINVAL, "invalid cpus `%s`: expected a number like 2 or 0.5", s ? s : "");
	if (v < 10 || v > 1024 * 1000)
		return hsp_make_error(err, ERANGE,
				      "invalid cpus `%s`: must be between 0.01 and 1024", s);
	*millicpus = v;
	return 0;
}

static const struct {
	const char *name;
	int sig;
} signals[] = {
    {"HUP", SIGHUP},   {"INT", SIGINT},	  {"QUIT", SIGQUIT},   {"KILL", SIGKILL},
    {"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"TERM", SIGTERM},   {"PWR", SIGPWR},
    {"CONT", SIGCONT}, {"STOP", SIGSTOP}, {"WINCH", SIGWINCH}, {"ALRM", SIGALRM},
};

int hsp_parse_signal(const char *s, int *sig, hsp_error_t *err)
{
	if (s == NULL || *s == '\0')
		return hsp_make_error(err, EINVAL, "invalid signal: empty");
	const char *n = strncasecmp(s, "SIG", 3) == 0 ? s + 3 : s;
	for (size_t i = 0; i < sizeof(signals) / sizeof(signals[0]); i++)
		if (strcasecmp(n, signals[i].name) == 0) {
			*sig = signals[i].sig;
			return 0;
		}
	uint64_t v;
	hsp_error_t ignored = NULL;
	if (strncasecmp(n, "RTMIN+", 6) == 0 &&
	    hsp_parse_u64(n + 6, 0, SIGRTMAX - SIGRTMIN, &v, "signal", &ignored) == 0) {
		*sig = SIGRTMIN + (int)v;
		return 0;
	}
	hsp_error_release(&ignored);
	if (hsp_parse_u64(n, 1, SIGRTMAX, &v, "signal", &ignored) == 0) {
		*sig = (int)v;
		return 0;
	}
	hsp_error_release(&ignored);
	return hsp_make_error(err, EINVAL, "invalid signal `%s`", s);
}

const char *hsp_signal_name(int sig, char buf[16])
{
	for (size_t i = 0; i < sizeof(signals) / sizeof(signals[0]); i++)
		if (signals[i].sig == sig) {
			snprintf(buf, 16, "SIG%s", signals[i].name);
			return buf;
		}
	if (sig >= SIGRTMIN && sig <= SIGRTMAX)
		snprintf(buf, 16, "SIGRTMIN+%d", sig - SIGRTMIN);
	else
		snprintf(buf, 16, "%d", sig);
	return buf;
}

int hsp_validate_name(const char *name, const char *what, hsp_error_t *err)
{
	size_t n = name ? strlen(name) : 0;
	if (n == 0)
		return hsp_make_error(err, EINVAL, "invalid %s name: empty", what);
	if (n > 63)
		return hsp_make_error(
		    err, EINVAL, "invalid %s name `%.70s`: longer than 63 characters", what, name);
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (c == '-' && i > 0);
		if (!ok)
			return hsp_make_error(
			    err, EINVAL,
			    "invalid %s name `%s`: use lower-case letters, digits "
			    "and '-' (not first)",
			    what, name);
	}
	return 0;
}

int hsp_validate_hostname(const char *h, hsp_error_t *err)
{
	size_t n = h ? strlen(h) : 0;
	if (n == 0 || n > 64)
		return hsp_make_error(err, EINVAL, "invalid hostname `%s`: must be 1-64 characters",
				      h ? h : "");
	size_t label = 0;
	for (size_t i = 0; i < n; i++) {
		char c = h[i];
		if (c == '.') {
			if (label == 0 || h[i - 1] == '-')
				goto bad;
			label = 0;
			continue;
		}
		if (!(isalnum((unsigned char)c) || (c == '-' && label > 0)))
			goto bad;
		if (++label > 63)
			goto bad;
	}
	if (label == 0 || h[n - 1] == '-')
		goto bad;
	return 0;
bad:
	return hsp_make_error(err, EINVAL, "invalid hostname `%s`", h);
}

uint64_t hsp_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

uint64_t hsp_hash64(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ULL;
	}
	return h;
}

int hsp_send_fd(int sock, int fd)
{
	char dummy = 'm';
	struct iovec iov = {.iov_base = &dummy, .iov_len = 1};
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr msg = {.msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = u.buf,
			     .msg_controllen = sizeof(u.buf)};
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	return sendmsg(sock, &msg, 0) < 0 ? -errno : 0;
}

int hsp_recv_fd(int sock)
{
	char dummy;
	struct iovec iov = {.iov_base = &dummy, .iov_len = 1};
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr msg = {.msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = u.buf,
			     .msg_controllen = sizeof(u.buf)};
	if (recvmsg(sock, &msg, MSG_CMSG_CLOEXEC) <= 0)
		return -EIO;
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	if (c == NULL || c->cmsg_type != SCM_RIGHTS)
		return -EIO;
	int fd;
	memcpy(&fd, CMSG_DATA(c), sizeof(int));
	return fd;
}
