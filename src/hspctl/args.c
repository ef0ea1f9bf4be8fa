/* Local checks of what the user typed: durations, limits, ssh key files.
 * A bad value is a one-line message and exit 2, before anything is sent. */
#define _GNU_SOURCE
#include "hspctl.h"
#include "utils.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ctl_parse_duration(const char *s, const char *what, uint32_t *seconds)
{
	uint64_t total = 0;
	const char *p = s;
	bool bare = true;
	if (!isdigit((unsigned char)*p))
		goto bad;
	while (*p) {
		uint64_t n = 0;
		if (!isdigit((unsigned char)*p))
			goto bad;
		while (isdigit((unsigned char)*p) && n <= UINT32_MAX)
			n = n * 10 + (uint64_t)(*p++ - '0');
		uint64_t unit = *p == 's'   ? 1
				: *p == 'm' ? 60
				: *p == 'h' ? 3600
				: *p == 'd' ? 86400
					    : 0;
		if (unit == 0 && (*p != '\0' || !bare))
			goto bad;
		if (*p)
			p++;
		bare = false;
		total += n * (unit ? unit : 1);
		if (n > UINT32_MAX || total > UINT32_MAX)
			goto bad;
	}
	*seconds = (uint32_t)total;
	return CTL_EXIT_OK;
bad:
	fprintf(stderr,
		"hspctl: invalid %s `%s`: expected a duration like 30s, 30m, 2h or 1d "
		"(at most 136 years)\n",
		what, s);
	return CTL_EXIT_USAGE;
}

static int limit_u32(const char *arg, uint64_t min, uint64_t max, const char *what, uint32_t *out)
{
	hsp_error_t err = NULL;
	uint64_t v;
	if (hsp_parse_u64(arg, min, max, &v, what, &err) < 0)
		return ctl_fail(&err, -1);
	*out = (uint32_t)v;
	return 1;
}

/* Sizes: 0 would mean "the node's default" in the API, never "none". */
static int limit_size(const char *arg, const char *what, uint64_t *out)
{
	hsp_error_t err = NULL;
	uint64_t v;
	if (hsp_parse_size(arg, &v, &err) < 0) {
		hsp_error_wrap(&err, "--%s", what);
		return ctl_fail(&err, -1);
	}
	if (v == 0) {
		fprintf(stderr, "hspctl: --%s: must be more than 0\n", what);
		return -1;
	}
	*out = v;
	return 1;
}

int ctl_parse_limit(int opt, const char *arg, Hsp__V1__Limits *l)
{
	hsp_error_t err = NULL;
	uint64_t v;
	switch (opt) {
	case OPT_MEMORY:
		return limit_size(arg, "memory", &l->memory_bytes);
	case OPT_SWAP:
		return limit_size(arg, "swap", &l->swap_bytes);
	case OPT_DISK:
		return limit_size(arg, "disk", &l->disk_bytes);
	case OPT_CPUS:
		if (hsp_parse_cpus(arg, &v, &err) < 0)
			return ctl_fail(&err, -1);
		l->cpu_millis = (uint32_t)v;
		return 1;
	case OPT_CPU_WEIGHT:
		return limit_u32(arg, 1, 10000, "cpu weight", &l->cpu_weight);
	case OPT_IO_WEIGHT:
		return limit_u32(arg, 1, 10000, "io weight", &l->io_weight);
	case OPT_PIDS:
		return limit_u32(arg, 1, 4194304, "pids limit", &l->pids);
	}
	return 0;
}

bool ctl_limits_any(const Hsp__V1__Limits *l)
{
	return l->memory_bytes || l->swap_bytes || l->cpu_millis || l->cpu_weight || l->pids ||
	       l->io_weight || l->disk_bytes;
}

/* ------------------------------------------------------------ ssh keys */

#define MAX_KEY_FILE (1 << 20)

static bool is_key_type(const char *t, size_t n)
{
	static const char *const prefixes[] = {"ssh-", "ecdsa-sha2-", "sk-ssh-", "sk-ecdsa-sha2-",
					       NULL};
	for (size_t i = 0; prefixes[i]; i++)
		if (n > strlen(prefixes[i]) && strncmp(t, prefixes[i], strlen(prefixes[i])) == 0)
			return true;
	return false;
}

static bool is_base64(const char *t, size_t n)
{
	return n >= 16 && strspn(t, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
				    "0123456789+/=") >= n;
}

/* "[options] TYPE BASE64 [comment]", as in a .pub or authorized_keys file. */
static bool is_public_key_line(const char *line)
{
	const char *p = line;
	while (*p) {
		size_t n = strcspn(p, " \t");
		if (is_key_type(p, n)) {
			const char *b = p + n + strspn(p + n, " \t");
			return is_base64(b, strcspn(b, " \t"));
		}
		p += n;
		p += strspn(p, " \t");
	}
	return false;
}

static int add_key(char ***keys, size_t *n, const char *line)
{
	char **v = reallocarray(*keys, *n + 2, sizeof(char *));
	if (v == NULL)
		abort(); /* out of memory: nothing sensible to do */
	v[(*n)++] = strdup(line);
	v[*n] = NULL;
	*keys = v;
	return 0;
}

static int key_line(const char *path, int lineno, char *line, char ***keys, size_t *n)
{
	line[strcspn(line, "\r")] = '\0';
	line += strspn(line, " \t");
	if (*line == '\0' || *line == '#')
		return 0;
	if (strstr(line, "PRIVATE KEY")) {
		fprintf(stderr,
			"hspctl: --ssh-key `%s` is a private key: give the public one (.pub)\n",
			path);
		return CTL_EXIT_USAGE;
	}
	if (!is_public_key_line(line)) {
		fprintf(stderr, "hspctl: --ssh-key `%s`: line %d is not an OpenSSH public key\n",
			path, lineno);
		return CTL_EXIT_USAGE;
	}
	return add_key(keys, n, line);
}

int ctl_read_ssh_keys(const char *path, char ***keys, size_t *n)
{
	hsp_error_t err = NULL;
	cleanup_free char *text = NULL;
	size_t len, before = *n;
	if (hsp_read_file(path, &text, &len, &err) < 0) {
		hsp_error_wrap(&err, "--ssh-key");
		return ctl_fail(&err, CTL_EXIT_USAGE);
	}
	if (len > MAX_KEY_FILE || strlen(text) != len) {
		fprintf(stderr, "hspctl: --ssh-key `%s`: not a public key file\n", path);
		return CTL_EXIT_USAGE;
	}
	int lineno = 0;
	for (char *line = text, *next; line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		int r = key_line(path, ++lineno, line, keys, n);
		if (r)
			return r;
	}
	if (*n == before) {
		fprintf(stderr, "hspctl: --ssh-key `%s`: no public key in it\n", path);
		return CTL_EXIT_USAGE;
	}
	return CTL_EXIT_OK;
}

int ctl_args(int argc, int min, int max, const char *group, const char *verb, const char *expect)
{
	int n = argc - optind;
	if (n >= min && n <= max)
		return CTL_EXIT_OK;
	if (strcmp(group, verb) == 0)
		return ctl_usage(group, "%s: %s", verb, expect);
	return ctl_usage(group, "%s %s: %s", group, verb, expect);
}
