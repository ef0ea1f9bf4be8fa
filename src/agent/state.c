/* The agent's state directory (--state-dir, 0700):
 *   ca.crt       the cluster CA (pinned by the join token)
 *   node.crt     this node's certificate; its presence means "joined"
 *   node.key     its key (0600), made here, never sent anywhere; saved
 *                before Join is called, so a join whose answer is lost
 *                is asked again with the same key
 *   config.pb    the last ClusterConfig (serialized; 0600: it may hold a
 *                Ceph keyring)
 *   ceph.conf, ceph.keyring   written from the config for a cephfs pool
 * Every file is written atomically (temporary file + rename), so a crash
 * leaves the old or the new version, never half of one. */
#define _GNU_SOURCE
#include "agent.h"
#include "utils.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *path_in(const char *dir, const char *file)
{
	return hsp_strdup_printf("%s/%s", dir, file);
}

int state_prepare_dir(const char *dir, hsp_error_t *err)
{
	int r = hsp_mkdir_p(dir, 0700, err);
	if (r < 0)
		return r;
	/* It holds the node's key: whatever made it, nobody else reads it. */
	if (chmod(dir, 0700) < 0)
		return hsp_make_errno(err, errno, "chmod `%s`", dir);
	return 0;
}

bool state_joined(const char *dir)
{
	cleanup_free char *p = path_in(dir, "node.crt");
	return access(p, F_OK) == 0;
}

static int read_in(const char *dir, const char *file, char **out, size_t *len, hsp_error_t *err)
{
	cleanup_free char *p = path_in(dir, file);
	size_t n = 0;
	int r = hsp_read_file(p, out, len ? len : &n, err);
	return r < 0 ? r : 0;
}

static int load_config(const char *dir, Hsp__V1__ClusterConfig **cfg, hsp_error_t *err)
{
	cleanup_free char *data = NULL;
	size_t len = 0;
	hsp_error_t rerr = NULL;
	*cfg = NULL;
	/* Not there: joined by a version that did not keep it; the welcome
	 * brings it. */
	if (read_in(dir, "config.pb", &data, &len, &rerr) < 0) {
		int status = rerr->status;
		hsp_error_release(&rerr);
		return status == ENOENT ? 0 : hsp_make_errno(err, status, "read config.pb");
	}
	*cfg = hsp__v1__cluster_config__unpack(NULL, len, (const uint8_t *)data);
	if (*cfg == NULL)
		return hsp_make_error(err, EINVAL, "%s/config.pb: not a ClusterConfig", dir);
	return 0;
}

int state_load(struct agent *a, hsp_error_t *err)
{
	const char *dir = a->c.state_dir;
	int r = read_in(dir, "ca.crt", &a->ca_pem, NULL, err);
	if (r == 0)
		r = read_in(dir, "node.crt", &a->cert_pem, NULL, err);
	if (r == 0)
		r = read_in(dir, "node.key", &a->key_pem, NULL, err);
	if (r == 0)
		r = load_config(dir, &a->config, err);
	return r;
}

static int write_in(const char *dir, const char *file, const void *data, size_t len, mode_t mode,
		    hsp_error_t *err)
{
	cleanup_free char *p = path_in(dir, file);
	return hsp_write_file_atomic(p, data, len, mode, err);
}

int state_save_config(const char *dir, const Hsp__V1__ClusterConfig *cfg, hsp_error_t *err)
{
	size_t n = hsp__v1__cluster_config__get_packed_size(cfg);
	cleanup_free uint8_t *buf = malloc(n ? n : 1);
	if (buf == NULL)
		return hsp_make_errno(err, ENOMEM, "config.pb");
	hsp__v1__cluster_config__pack(cfg, buf);
	return write_in(dir, "config.pb", buf, n, 0600, err);
}

/* On disk, the rename included, before Join may spend the token: the
 * key is what lets the next start ask again. */
int state_save_key(const char *dir, const char *key, hsp_error_t *err)
{
	int r = write_in(dir, "node.key", key, strlen(key), 0600, err);
	if (r < 0)
		return r;
	cleanup_close int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) < 0)
		return hsp_make_errno(err, errno, "sync `%s`", dir);
	return 0;
}

int state_load_key(const char *dir, char **key, hsp_error_t *err)
{
	cleanup_free char *p = path_in(dir, "node.key");
	struct stat st;
	if (stat(p, &st) < 0)
		return hsp_make_errno(err, errno, "`%s`", p);
	/* Someone else may have read it: a fresh key (and token) is safer. */
	if (st.st_mode & 077)
		return hsp_make_error(err, EPERM,
				      "`%s` is readable by others (mode %04o): not used; remove it",
				      p, (unsigned)(st.st_mode & 07777));
	return read_in(dir, "node.key", key, NULL, err);
}

/* node.crt last: until it exists the node counts as not joined.  The key
 * is there already (state_save_key). */
int state_save_join(const char *dir, const char *ca, const char *cert,
		    const Hsp__V1__ClusterConfig *cfg, hsp_error_t *err)
{
	int r = write_in(dir, "ca.crt", ca, strlen(ca), 0644, err);
	if (r == 0 && cfg)
		r = state_save_config(dir, cfg, err);
	if (r == 0)
		r = write_in(dir, "node.crt", cert, strlen(cert), 0644, err);
	return r;
}

int state_write_ceph(const char *dir, const Hsp__V1__StorageConfig *s, char **conf, char **keyring,
		     hsp_error_t *err)
{
	int r = write_in(dir, "ceph.conf", s->ceph_conf, strlen(s->ceph_conf), 0600, err);
	if (r == 0)
		r = write_in(dir, "ceph.keyring", s->ceph_keyring, strlen(s->ceph_keyring), 0600,
			     err);
	if (r < 0)
		return r;
	*conf = path_in(dir, "ceph.conf");
	*keyring = path_in(dir, "ceph.keyring");
	return 0;
}

int state_write_temp(const char *dir, const char *prefix, const char *data, size_t len, char **path,
		     hsp_error_t *err)
{
	cleanup_free char *p = hsp_strdup_printf("%s/%s.XXXXXX", dir, prefix);
	/* mkostemp makes it 0600. */
	cleanup_close int fd = mkostemp(p, O_CLOEXEC);
	if (fd < 0)
		return hsp_make_errno(err, errno, "create `%s`", p);
	for (size_t off = 0; off < len;) {
		ssize_t n = write(fd, data + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			unlink(p);
			return hsp_make_errno(err, e, "write `%s`", p);
		}
		off += (size_t)n;
	}
	*path = steal_pointer(&p);
	return 0;
}
