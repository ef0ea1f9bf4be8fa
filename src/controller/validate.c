/* Request validation shared by the API handlers: every field is checked
 * before anything changes. */
#define _GNU_SOURCE
#include <string.h>

#include "ctl.h"

/* The runtime's VE name rule, also used for nodes and tenants: it becomes
 * a directory name, a cgroup name and a certificate CN. */
bool valid_name(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > CTL_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (i > 0 && c == '-');
		if (!ok)
			return false;
	}
	return true;
}

#define KIB 1024ULL
#define MIB (1024 * KIB)
#define GIB (1024 * MIB)
#define TIB (1024 * GIB)

const char *limits_invalid(const Hsp__V1__Limits *l)
{
	if (l == NULL)
		return NULL;
	if (l->memory_bytes && (l->memory_bytes < 4 * MIB || l->memory_bytes > 16 * TIB))
		return "memory_bytes must be between 4 MiB and 16 TiB";
	if (l->swap_bytes > 16 * TIB)
		return "swap_bytes must be at most 16 TiB";
	if (l->cpu_millis && (l->cpu_millis < 10 || l->cpu_millis > 1024 * 1000))
		return "cpu_millis must be between 10 and 1024000";
	if (l->cpu_weight > 10000)
		return "cpu_weight must be between 1 and 10000";
	if (l->io_weight > 10000)
		return "io_weight must be between 1 and 10000";
	if (l->pids && (l->pids < 8 || l->pids > 4194304))
		return "pids must be between 8 and 4194304";
	if (l->disk_bytes && (l->disk_bytes < 64 * MIB || l->disk_bytes > 64 * TIB))
		return "disk_bytes must be between 64 MiB and 64 TiB";
	return NULL;
}

/* One OpenSSH public key line: "<type> <base64> [comment]", no newlines
 * (a newline would smuggle a second key or options into authorized_keys). */
const char *ssh_key_invalid(const char *key)
{
	static const char *types[] = {"ssh-ed25519 ",
				      "ssh-rsa ",
				      "ecdsa-sha2-nistp256 ",
				      "ecdsa-sha2-nistp384 ",
				      "ecdsa-sha2-nistp521 ",
				      "sk-ssh-ed25519@openssh.com ",
				      "sk-ecdsa-sha2-nistp256@openssh.com "};
	if (strlen(key) > 16384)
		return "ssh key longer than 16 KiB";
	if (strpbrk(key, "\r\n") != NULL)
		return "ssh key contains a line break";
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		size_t n = strlen(types[i]);
		if (strncmp(key, types[i], n) != 0)
			continue;
		const char *b = key + n;
		size_t bl =
		    strspn(b, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=");
		if (bl < 16 || (b[bl] != '\0' && b[bl] != ' '))
			return "ssh key has no valid base64 body";
		return NULL;
	}
	return "ssh key type not supported (ssh-ed25519, ssh-rsa, ecdsa-sha2-*, sk-*)";
}
