/* Live migration: checkpoint a running VE with CRIU on one node, restore
 * it on another (docs/runtime.md, "Live migration").
 *
 * The checkpoint directory holds criu's images, its dump log and, written
 * last, checkpoint.json (which VE, its id range, when it was frozen); a
 * restore renames that to checkpoint.restored.json, so the same images
 * never run twice.  What a restore needs of the target node is what a
 * start needs, plus the bridge of the same name (criu plugs the VE's veth
 * into it) and the VE's id range free (criu restores the user namespace's
 * mapping as it was). */
#define _GNU_SOURCE
#include "checkpoint.h"
#include "criu.h"
#include "net.h"
#include "spawn.h"
#include "utils.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define META "checkpoint.json"
#define META_SPENT "checkpoint.restored.json"

static uint64_t wall_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000ULL + (uint64_t)ts.tv_nsec / 1000;
}

/* ---- What this node supports ---- */

void hsp_checkpoint_support_clear(struct hsp_checkpoint_support *s)
{
	free(s->reason);
	free(s->criu);
	free(s->criu_version);
	free(s->kernel);
	memset(s, 0, sizeof(*s));
}

/* Runs criu with `args` (NULL-terminated) and returns its output (stdout
 * and stderr, malloc'd) in *out; the exit status as the result. */
static int criu_output(const struct hsp_criu *c, char *const *args, char **out, hsp_error_t *err)
{
	char tmpl[] = "/tmp/hsp-criu-out.XXXXXX";
	cleanup_close int fd = mkostemp(tmpl, O_CLOEXEC);
	if (fd < 0)
		return hsp_make_errno(err, errno, "criu: temporary file");
	unlink(tmpl);
	struct hsp_criu_run run = {.argv = args, .out_fd = fd};
	pid_t pid;
	int r = hsp_criu_spawn(c, &run, &pid, err);
	if (r < 0)
		return r;
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	char buf[4096];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	buf[n > 0 ? n : 0] = '\0';
	*out = strdup(buf);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* The first line of criu check's complaint, for a one-line reason. */
static char *first_problem(const char *out)
{
	const char *p = strstr(out, "Error (");
	p = p ? strstr(p, "): ") : NULL;
	p = p ? p + 3 : out;
	return strndup(p, strcspn(p, "\n"));
}

int hsp_checkpoint_probe(struct hsp_checkpoint_support *s, hsp_error_t *err)
{
	memset(s, 0, sizeof(*s));
	struct utsname u;
	uname(&u);
	s->kernel = strdup(u.release);
	struct hsp_criu c;
	hsp_error_t e = NULL;
	int kv[2] = {0, 0}, cv[3];
	if (hsp_criu_find(&c, &e) < 0) {
		s->reason = strdup(e->msg);
		hsp_error_release(&e);
		return 0;
	}
	s->criu = c.tree ? hsp_strdup_printf("%s:%s", c.tree, c.bin) : strdup(c.bin);
	cleanup_free char *out = NULL;
	static char *const version[] = {"--version", NULL};
	int r = criu_output(&c, version, &out, err);
	if (r < 0)
		goto out;
	if (r != 0 || hsp_criu_parse_version(out, cv) < 0) {
		s->reason = hsp_strdup_printf("`%s --version` failed", s->criu);
		goto done;
	}
	s->criu_version = hsp_strdup_printf("%d.%d.%d", cv[0], cv[1], cv[2]);
	if (cv[0] < HSP_CRIU_MIN_MAJOR ||
	    (cv[0] == HSP_CRIU_MIN_MAJOR && cv[1] < HSP_CRIU_MIN_MINOR)) {
		s->reason = hsp_strdup_printf(
		    "criu %s is too old: %d.%d or later is needed (run scripts/install-criu.sh)",
		    s->criu_version, HSP_CRIU_MIN_MAJOR, HSP_CRIU_MIN_MINOR);
		goto done;
	}
	if (hsp_kernel_parse_version(u.release, kv) < 0 || kv[0] < HSP_CRIU_MIN_KERNEL_MAJOR ||
	    (kv[0] == HSP_CRIU_MIN_KERNEL_MAJOR && kv[1] < HSP_CRIU_MIN_KERNEL_MINOR)) {
		s->reason =
		    hsp_strdup_printf("kernel %s is too old: %d.%d or later is needed", u.release,
				      HSP_CRIU_MIN_KERNEL_MAJOR, HSP_CRIU_MIN_KERNEL_MINOR);
		goto done;
	}
	free(out);
	out = NULL;
	static char *const check[] = {"check", NULL};
	r = criu_output(&c, check, &out, err);
	if (r < 0)
		goto out;
	if (r != 0) {
		cleanup_free char *why = first_problem(out);
		s->reason = hsp_strdup_printf("`criu check` fails: %s", why);
		goto done;
	}
	s->supported = true;
done:
	r = 0;
out:
	hsp_criu_clear(&c);
	return r;
}

/* criu itself and a kernel new enough, without running it: the fast
 * check the verbs make (a failing dump explains itself). */
static int need_criu(struct hsp_criu *c, const char *what, hsp_error_t *err)
{
	struct utsname u;
	int kv[2];
	uname(&u);
	if (hsp_kernel_parse_version(u.release, kv) < 0 || kv[0] < HSP_CRIU_MIN_KERNEL_MAJOR ||
	    (kv[0] == HSP_CRIU_MIN_KERNEL_MAJOR && kv[1] < HSP_CRIU_MIN_KERNEL_MINOR))
		return hsp_make_error(
		    err, EOPNOTSUPP, "%s: kernel %s is too old for live migration (%d.%d needed)",
		    what, u.release, HSP_CRIU_MIN_KERNEL_MAJOR, HSP_CRIU_MIN_KERNEL_MINOR);
	int r = hsp_criu_find(c, err);
	return r < 0 ? hsp_error_wrap(err, "%s", what) : 0;
}

/* ---- checkpoint.json ---- */

struct meta {
	char *ve;
	uid_t id_base;
	uint64_t frozen_at_us; /* wall clock when the dump began */
	uint64_t dump_us;
};

static void meta_clear(struct meta *m)
{
	free(m->ve);
	memset(m, 0, sizeof(*m));
}

static int meta_save(const char *dir, const struct meta *m, hsp_error_t *err)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "format", json_object_new_int(1));
	json_object_object_add(o, "ve", json_object_new_string(m->ve));
	json_object_object_add(o, "id_base", json_object_new_int64(m->id_base));
	json_object_object_add(o, "frozen_at_us", json_object_new_int64((int64_t)m->frozen_at_us));
	json_object_object_add(o, "dump_us", json_object_new_int64((int64_t)m->dump_us));
	cleanup_free char *path = hsp_strdup_printf("%s/" META, dir);
	int r = hsp_json_save(path, o, err);
	json_object_put(o);
	return r;
}

static int64_t get_i64(json_object *o, const char *key)
{
	json_object *v;
	return json_object_object_get_ex(o, key, &v) ? json_object_get_int64(v) : -1;
}

/* Reads the checkpoint of VE `name` in `dir`, refusing anything else. */
static int meta_load(const char *dir, const char *name, struct meta *m, hsp_error_t *err)
{
	memset(m, 0, sizeof(*m));
	cleanup_free char *path = hsp_strdup_printf("%s/" META, dir);
	cleanup_free char *spent = hsp_strdup_printf("%s/" META_SPENT, dir);
	struct stat st;
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
		return hsp_make_error(err, ENOENT, "restore: no checkpoint directory `%s`", dir);
	if (access(path, F_OK) < 0 && access(spent, F_OK) == 0)
		return hsp_make_error(err, EALREADY,
				      "restore: the checkpoint in `%s` was restored already", dir);
	if (access(path, F_OK) < 0)
		return hsp_make_error(err, ENOENT, "restore: `%s` holds no checkpoint", dir);
	json_object *o = NULL;
	hsp_error_t e = NULL;
	if (hsp_json_load(path, &o, &e) < 0) {
		hsp_error_release(&e);
		return hsp_make_error(err, EINVAL, "restore: `%s` is not a valid checkpoint", path);
	}
	json_object *v;
	int r = 0;
	if (get_i64(o, "format") != 1 || !json_object_object_get_ex(o, "ve", &v) ||
	    !json_object_is_type(v, json_type_string) || get_i64(o, "id_base") <= 0 ||
	    get_i64(o, "frozen_at_us") <= 0)
		r = hsp_make_error(err, EINVAL, "restore: `%s` is not a valid checkpoint", path);
	else if (strcmp(json_object_get_string(v), name) != 0)
		r = hsp_make_error(err, EINVAL,
				   "restore: `%s` is a checkpoint of VE `%s`, not `%s`", dir,
				   json_object_get_string(v), name);
	if (r == 0) {
		m->ve = strdup(name);
		m->id_base = (uid_t)get_i64(o, "id_base");
		m->frozen_at_us = (uint64_t)get_i64(o, "frozen_at_us");
		m->dump_us = (uint64_t)get_i64(o, "dump_us");
	}
	json_object_put(o);
	return r;
}

/* ---- Checkpoint ---- */

/* A criu command line being built: NULL-terminated, strings owned. */
struct argv {
	char *v[64];
	size_t n;
};

static void add(struct argv *a, char *s)
{
	if (a->n < 63 && s)
		a->v[a->n++] = s;
}

static void argv_clear(struct argv *a)
{
	for (size_t i = 0; i < a->n; i++)
		free(a->v[i]);
	a->n = 0;
}

/* HSP_CRIU_VERBOSITY=0..4 sets criu's log level (default 2, errors and
 * warnings): 4 is what a failure needs looked at. */
static void add_verbosity(struct argv *a)
{
	const char *v = getenv("HSP_CRIU_VERBOSITY");
	if (v && v[0] >= '0' && v[0] <= '4' && v[1] == '\0')
		add(a, hsp_strdup_printf("-v%s", v));
}

/* The VE's groups, "<mode>;<controller>=<path>;..." (cgroup.h): for a dump
 * (root == NULL) the controllers to dump, so that criu leaves the groups
 * the VE shares with the host (name=systemd, a hybrid host's v2) alone; for
 * a restore (root set) where each controller's VE group is on this node.
 * criu names the v2 hierarchy "". */
static void cgroup_args(struct argv *a, const char *spec, bool restore)
{
	cleanup_free char *copy = strdup(spec);
	char *save = NULL;
	for (char *tok = copy ? strtok_r(copy, ";", &save) : NULL; tok;
	     tok = strtok_r(NULL, ";", &save)) {
		char *eq = strchr(tok, '=');
		if (eq == NULL)
			continue;
		*eq = '\0';
		const char *ctrl = strcmp(tok, "unified") == 0 ? "" : tok;
		add(a, strdup(restore ? "--cgroup-root" : "--cgroup-dump-controller"));
		add(a, restore ? hsp_strdup_printf("%s:%s", ctrl, eq + 1) : strdup(ctrl));
	}
}

/* criu dump of the tree under `init` into `dir`; the VE is frozen from the
 * start and killed at the end.  m->frozen_at_us and dump_us are set. */
static int dump(const struct hsp_criu *c, const char *dir, const struct hsp_run_state *st,
		const char *log, struct meta *m, hsp_error_t *err)
{
	static const char *const fixed[] = {
	    "dump",
	    "-o",
	    "dump.log",
	    "--tcp-established",
	    "--file-locks",
	    "--manage-cgroups",
	    "--ext-mount-map",
	    "auto",
	    "--network-lock",
	    "nftables",
	    NULL,
	};
	struct argv a = {0};
	for (size_t i = 0; fixed[i]; i++)
		add(&a, strdup(fixed[i]));
	add(&a, strdup("-t"));
	add(&a, hsp_strdup_printf("%d", st->init_pid));
	add(&a, strdup("-D"));
	add(&a, strdup(dir));
	cgroup_args(&a, st->cgroup, false);
	add_verbosity(&a);
	const char *paths[] = {dir, NULL};
	struct hsp_criu_run run = {.argv = a.v, .paths = paths, .out_fd = -1};
	m->frozen_at_us = wall_us();
	uint64_t t0 = hsp_now_ns();
	int r = hsp_criu_run(c, &run, log, "checkpoint", err);
	m->dump_us = (hsp_now_ns() - t0) / 1000;
	argv_clear(&a);
	return r;
}

static int checkpoint_locked(hsp_runtime_t *rt, const char *name, const char *dir,
			     const struct hsp_criu *c, struct meta *m, hsp_error_t *err)
{
	if (!hsp_ve_is_running(rt, name))
		return hsp_make_error(err, EINVAL, "checkpoint: VE `%s` is not running", name);
	struct hsp_ve_config cfg;
	int r = hsp_config_load(rt, name, &cfg, err);
	if (r < 0)
		return r;
	struct hsp_run_state st;
	r = hsp_state_load(rt, name, &st, err);
	if (r < 0) {
		hsp_config_clear(&cfg);
		return r;
	}
	cleanup_close int pidfd = hsp_state_init_pidfd(&st);
	cleanup_free char *meta = hsp_strdup_printf("%s/" META, dir);
	cleanup_free char *images = hsp_strdup_printf("%s/images", dir);
	cleanup_free char *log = hsp_strdup_printf("%s/images/dump.log", dir);
	cleanup_free char *marker = hsp_strdup_printf("%s/%s/stop", rt->run_dir, name);
	if (pidfd < 0)
		r = hsp_make_error(err, EINVAL, "checkpoint: VE `%s` is not running", name);
	else if (st.cgroup == NULL)
		r = hsp_make_error(
		    err, EOPNOTSUPP,
		    "checkpoint: VE `%s` runs without cgroups, which a restore needs", name);
	else if (access(meta, F_OK) == 0)
		r = hsp_make_error(err, EEXIST, "checkpoint: `%s` holds a checkpoint already", dir);
	/* Restored tasks open some images themselves before they have any
	 * rights in their user namespace, so the images are world-readable
	 * (criu writes them 0644) in a world-searchable directory: D itself
	 * (0700) keeps everyone else out. */
	if (r == 0 && mkdir(images, 0755) < 0 && errno != EEXIST)
		r = hsp_make_errno(err, errno, "checkpoint: mkdir `%s`", images);
	if (r == 0 && (chmod(images, 0755) < 0 || chmod(dir, 0700) < 0))
		r = hsp_make_errno(err, errno, "checkpoint: chmod `%s`", images);
	/* The monitor must take init's end for a stop, not a reboot. */
	if (r == 0)
		r = hsp_write_file(marker, "", 0, err);
	if (r < 0)
		goto out;
	m->ve = strdup(name);
	m->id_base = cfg.id_base;
	r = dump(c, images, &st, log, m, err);
	if (r < 0) {
		/* criu thaws the VE when a dump fails: it runs on. */
		unlink(marker);
		goto out;
	}
	/* criu killed the VE: from here the checkpoint is all there is of it,
	 * so it is complete before anything else can fail. */
	r = meta_save(dir, m, err);
	/* Stopped means the disk is free for the target.  A mount namespace
	 * made elsewhere on the node while the VE ran holds a copy of its
	 * disk's mount until it goes away. */
	if (r == 0 && hsp_wait_monitor_gone(rt, name, 30000) < 0)
		r = hsp_make_error(err, ETIMEDOUT,
				   "checkpoint: VE `%s` is checkpointed to `%s`, but its disk is "
				   "still in use here after 30 s: restore it once it is released",
				   name, dir);
out:
	hsp_state_clear(&st);
	hsp_config_clear(&cfg);
	return r;
}

/* The checkpoint directory, made if missing, as an absolute path (criu
 * sees it at the same place in its own mount namespace). */
static int checkpoint_dir(const char *dir, bool create, char **out, hsp_error_t *err)
{
	if (dir == NULL || *dir == '\0')
		return hsp_make_error(err, EINVAL, "no checkpoint directory given");
	if (create && hsp_mkdir_p(dir, 0700, err) < 0)
		return -(*err)->status;
	*out = realpath(dir, NULL);
	if (*out == NULL)
		return hsp_make_errno(err, errno, "checkpoint directory `%s`", dir);
	return 0;
}

/* What both verbs check first: a VE of that name (its id range in *base)
 * and criu on a kernel that can. */
static int prelude(hsp_runtime_t *rt, const char *name, const char *what, uid_t *base,
		   struct hsp_criu *c, hsp_error_t *err)
{
	int r = hsp_validate_name(name, "VE", err);
	if (r < 0)
		return r;
	struct hsp_ve_config cfg;
	r = hsp_config_load(rt, name, &cfg, err);
	if (r < 0)
		return r;
	*base = cfg.id_base;
	hsp_config_clear(&cfg);
	return need_criu(c, what, err);
}

int hsp_ve_checkpoint(hsp_runtime_t *rt, const char *name, const char *dir,
		      struct hsp_migration_times *t, hsp_error_t *err)
{
	struct hsp_criu c = {0};
	uid_t base;
	int r = prelude(rt, name, "checkpoint", &base, &c, err);
	if (r < 0)
		return r;
	cleanup_free char *abs = NULL;
	struct meta m = {0};
	cleanup_close int lock = hsp_lock_ve(rt, name, err);
	r = lock < 0 ? lock : 0;
	if (r == 0 && !hsp_ve_is_running(rt, name))
		r = hsp_make_error(err, EINVAL, "checkpoint: VE `%s` is not running", name);
	if (r == 0)
		r = checkpoint_dir(dir, true, &abs, err);
	if (r == 0)
		r = checkpoint_locked(rt, name, abs, &c, &m, err);
	if (r == 0 && t)
		*t = (struct hsp_migration_times){.dump_us = m.dump_us};
	meta_clear(&m);
	hsp_criu_clear(&c);
	return r;
}

/* ---- Restore ---- */

int hsp_ve_restore(hsp_runtime_t *rt, const char *name, const char *dir,
		   struct hsp_migration_times *t, hsp_error_t *err)
{
	struct hsp_criu c = {0};
	uid_t base;
	int r = prelude(rt, name, "restore", &base, &c, err);
	hsp_criu_clear(&c);
	if (r < 0)
		return r;
	cleanup_free char *abs = NULL;
	struct meta m = {0};
	r = checkpoint_dir(dir, false, &abs, err);
	if (r == -ENOENT) {
		hsp_error_release(err);
		r = hsp_make_error(err, ENOENT, "restore: no checkpoint directory `%s`", dir);
	}
	if (r == 0)
		r = meta_load(abs, name, &m, err);
	if (r == 0 && m.id_base != base)
		r = hsp_make_error(err, ESTALE,
				   "restore: VE `%s` has run elsewhere since its checkpoint (id "
				   "range %u, now %u)",
				   name, m.id_base, base);
	meta_clear(&m);
	if (r == 0)
		r = hsp_ve_boot_restore(rt, name, abs, err);
	if (r < 0)
		return r;
	/* Spent: the VE runs on from here, its images are the past. */
	cleanup_free char *from = hsp_strdup_printf("%s/" META, abs);
	cleanup_free char *to = hsp_strdup_printf("%s/" META_SPENT, abs);
	rename(from, to);
	struct hsp_run_state st;
	if (t && hsp_state_load(rt, name, &st, err) == 0) {
		*t = st.restored;
		hsp_state_clear(&st);
	}
	hsp_error_release(err);
	return 0;
}

/* A helper that becomes root in a user namespace with the VE's mapping (as
 * init does at a start) mounts the overlay and hands back the detached
 * mount: copy-up runs with the mounter's credentials, which must be the
 * VE root's.  Attached at l->root, where criu finds it for --root. */
static int mount_root(const struct hsp_root_layers *l, uid_t base, hsp_error_t *err)
{
	int sk[2], sync[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sk) < 0)
		return hsp_make_errno(err, errno, "restore: socketpair");
	if (pipe2(sync, O_CLOEXEC) < 0) {
		close(sk[0]);
		close(sk[1]);
		return hsp_make_errno(err, errno, "restore: pipe");
	}
	pid_t pid =
	    (pid_t)syscall(SYS_clone, CLONE_NEWUSER | CLONE_NEWNS | SIGCHLD, NULL, NULL, NULL, 0);
	if (pid == 0) {
		char ch;
		close(sync[1]);
		if (read(sync[0], &ch, 1) != 1)
			_exit(1);
		/* Opened with the host uid we still have: the VE's root may not
		 * traverse the runtime's directories. */
		const char *paths[3] = {l->lower, l->upper, l->work};
		int fds[3];
		for (int i = 0; i < 3; i++)
			if ((fds[i] = open(paths[i], O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
				_exit(2);
		if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)
			_exit(3);
		hsp_error_t e = NULL;
		int m = hsp_overlay_fsmount(fds, "the VE root", &e);
		_exit(m < 0 || hsp_send_fd(sk[1], m) < 0 ? 4 : 0);
	}
	int e = errno;
	close(sync[0]);
	close(sk[1]);
	if (pid < 0) {
		close(sync[1]);
		close(sk[0]);
		return hsp_make_errno(err, e, "restore: clone");
	}
	int r = hsp_idmap_write(pid, "uid_map", base, err);
	if (r == 0)
		r = hsp_idmap_write(pid, "gid_map", base, err);
	if (r == 0 && write(sync[1], "x", 1) != 1)
		r = hsp_make_errno(err, errno, "restore: release helper");
	close(sync[1]);
	cleanup_close int m = r == 0 ? hsp_recv_fd(sk[0]) : -1;
	close(sk[0]);
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (r == 0 && m < 0)
		r = hsp_make_error(err, EIO,
				   "restore: mount the VE root overlay (helper status %d)",
				   WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	if (r == 0 && move_mount(m, "", AT_FDCWD, l->root, MOVE_MOUNT_F_EMPTY_PATH) < 0)
		r = hsp_make_errno(err, errno, "restore: attach the VE root at `%s`", l->root);
	return r;
}

static void restore_args(struct argv *a, const struct hsp_ve_config *cfg, const char *root,
			 const char *run, struct hsp_cgroup *cg, const char *host_if,
			 const char *images)
{
	static const char *const fixed[] = {
	    "restore",
	    "--restore-detached",
	    "--restore-sibling",
	    "--tcp-established",
	    "--file-locks",
	    "--ext-mount-map",
	    "auto",
	    "--manage-cgroups=none",
	    "-o",
	    "restore.log",
	    NULL,
	};
	for (size_t i = 0; fixed[i]; i++)
		add(a, strdup(fixed[i]));
	add(a, strdup("-D"));
	add(a, strdup(images));
	add(a, strdup("-W"));
	add(a, strdup(run));
	add(a, strdup("--pidfile"));
	add(a, hsp_strdup_printf("%s/restore.pid", run));
	add(a, strdup("--root"));
	add(a, strdup(root));
	if (cfg->ip) {
		add(a, strdup("--external"));
		add(a, hsp_strdup_printf("veth[eth0]:%s@%s", host_if, cfg->bridge));
	}
	cgroup_args(a, hsp_cgroup_path(cg), true);
	add_verbosity(a);
}

static int run_restore(const struct hsp_criu *c, char *const *args, const char *dir,
		       const char *run, struct hsp_cgroup *cg, const char *log,
		       struct hsp_migration_times *t, hsp_error_t *err)
{
	const char *paths[] = {dir, run, NULL};
	struct hsp_criu_run cr = {.argv = args, .paths = paths, .cg = cg, .out_fd = -1};
	uint64_t t0 = hsp_now_ns();
	int r = hsp_criu_run(c, &cr, log, "restore", err);
	t->restore_us = (hsp_now_ns() - t0) / 1000;
	return r;
}

int hsp_checkpoint_restore_tree(hsp_runtime_t *rt, const struct hsp_ve_config *cfg,
				const struct hsp_root_layers *l, struct hsp_cgroup *cg,
				const char *host_if, const char *dir, pid_t *pid,
				struct hsp_migration_times *t, hsp_error_t *err)
{
	struct meta m;
	int r = meta_load(dir, cfg->name, &m, err);
	if (r < 0)
		return r;
	struct hsp_criu c = {0};
	cleanup_free char *run = hsp_ve_run_dir(rt, cfg->name);
	cleanup_free char *images = hsp_strdup_printf("%s/images", dir);
	cleanup_free char *log = hsp_strdup_printf("%s/restore.log", run);
	cleanup_free char *pidfile = hsp_strdup_printf("%s/restore.pid", run);
	struct argv args = {0};
	cleanup_free char *pidtext = NULL;
	bool mounted = false;
	unlink(pidfile);
	r = hsp_criu_find(&c, err);
	if (r == 0 && l->upper) {
		r = mount_root(l, cfg->id_base, err);
		mounted = r == 0;
	}
	if (r == 0 && cfg->ip) {
		r = hsp_net_bridge_ensure(cfg->bridge, err);
		/* A host end left by a monitor that was killed. */
		if (r == 0)
			r = hsp_net_veth_delete(host_if, err);
	}
	if (r < 0)
		goto out;
	restore_args(&args, cfg, l->root, run, cg, host_if, images);
	r = run_restore(&c, args.v, dir, run, cg, log, t, err);
	t->frozen_us = wall_us() - m.frozen_at_us;
	t->dump_us = m.dump_us;
	if (r == 0)
		r = hsp_read_file(pidfile, &pidtext, NULL, err);
	if (r == 0 && (*pid = (pid_t)strtol(pidtext, NULL, 10)) <= 0)
		r = hsp_make_error(err, EIO, "restore: criu wrote no pid to `%s`", pidfile);
out:
	/* The VE's mount namespace holds its own copy of the root now. */
	if (mounted)
		umount2(l->root, MNT_DETACH | UMOUNT_NOFOLLOW);
	argv_clear(&args);
	hsp_criu_clear(&c);
	meta_clear(&m);
	return r;
}
