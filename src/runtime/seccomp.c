#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "seccomp.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "utils.h"

/* Bump whenever the rules below change: the cache file name carries it (and
 * libseccomp's version), so stale programs are never loaded. */
#define PROFILE_VERSION 1

struct hsp_seccomp_prog {
	size_t len; /* instructions */
	struct sock_filter insns[];
};

/* Denied with EPERM.  The profile sits between LXC's (5 calls) and docker's
 * (~44): a full OS must keep mount, pivot_root, unshare, setns, clone3,
 * reboot (the pid namespace turns it into a signal to the supervisor),
 * ptrace, kcmp, userfaultfd (CRIU), name_to_handle_at and fanotify (systemd),
 * quotactl and syslog (both gated by capabilities in the initial userns),
 * adjtimex and clock_adjtime (glibc implements adjtimex() and ntp_gettime()
 * with clock_adjtime; setting the clock through them needs CAP_SYS_TIME,
 * which caps.c drops).  Denied: what reaches the host kernel as a whole or
 * has no namespaced meaning. */
static const char *const denied[] = {
    /* kernel code and kernel replacement */
    "init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load",
    /* "shocker": opens host files by handle, bypassing the mount namespace */
    "open_by_handle_at",
    /* global kernel facilities, large attack surface */
    "bpf", "perf_event_open", "lookup_dcookie",
    /* io_uring: frequent escapes, and CRIU cannot checkpoint it */
    "io_uring_setup", "io_uring_enter", "io_uring_register",
    /* the kernel keyring is shared with the host */
    "keyctl", "add_key", "request_key",
    /* the wall clock is not namespaced; these have no read-only mode */
    "clock_settime", "clock_settime64", "settimeofday", "stime",
    /* host-wide state */
    "swapon", "swapoff", "acct", "_sysctl", "nfsservctl",
    /* raw hardware access and obsolete i386 entry points */
    "iopl", "ioperm", "uselib", "vm86", "vm86old",
    /* personality: only some values are denied, see add_personality_rules() */
    "personality", NULL};

/* Arches whose ABI the calling task can also enter the kernel with: without
 * them a 32-bit int 0x80 or an x32 call would hit the bad-arch action (or,
 * worse, bypass the rules with another syscall numbering). */
static const uint32_t extra_arches[] = {
#if defined(__x86_64__)
    SCMP_ARCH_X86, SCMP_ARCH_X32,
#elif defined(__aarch64__)
    SCMP_ARCH_ARM,
#endif
    0};

/* personality(2) flags a VE may set (PER_LINUX is 0): `linux32`, `setarch
 * --uname-2.6` (as docker allows) and ADDR_NO_RANDOMIZE for gdb, which the
 * kernel clears on setuid exec anyway.  0xffffffff (a query) is allowed too. */
#define PERSONA_ALLOWED ((uint32_t)(PER_LINUX32 | UNAME26 | ADDR_NO_RANDOMIZE))

const char *const *hsp_seccomp_denied(void)
{
	return denied;
}

static void ctx_releasep(scmp_filter_ctx *ctx)
{
	if (*ctx)
		seccomp_release(*ctx);
}

static void prog_freep(struct hsp_seccomp_prog **p)
{
	hsp_seccomp_free(*p);
}

#define cleanup_ctx __attribute__((cleanup(ctx_releasep)))
#define cleanup_prog __attribute__((cleanup(prog_freep)))

static int add_arches(scmp_filter_ctx ctx, hsp_error_t *err)
{
	for (const uint32_t *a = extra_arches; *a; a++) {
		int r = seccomp_arch_add(ctx, *a);
		if (r < 0 && r != -EEXIST) /* EEXIST: it is the native arch */
			return hsp_make_errno(err, -r, "seccomp: add arch 0x%x", (unsigned)*a);
	}
	return 0;
}

static int add_denied(scmp_filter_ctx ctx, hsp_error_t *err)
{
	for (const char *const *n = denied; *n; n++) {
		if (strcmp(*n, "personality") == 0)
			continue;
		/* Fail closed: an unknown name would silently weaken the profile. */
		int nr = seccomp_syscall_resolve_name(*n);
		if (nr == __NR_SCMP_ERROR)
			return hsp_make_error(err, ENOSYS, "seccomp: libseccomp does not know `%s`",
					      *n);
		/* libseccomp skips arches the syscall does not exist on. */
		int r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0);
		if (r < 0)
			return hsp_make_errno(err, -r, "seccomp: add rule for `%s`", *n);
	}
	return 0;
}

/* Denies personality(v) when the low 32 bits (the kernel's argument is an
 * unsigned int) hold a bit outside PERSONA_ALLOWED, unless v is 0xffffffff. */
static int deny_persona(scmp_filter_ctx ctx, uint32_t set, uint32_t clear, hsp_error_t *err)
{
	int r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(personality), 1,
				 SCMP_A0(SCMP_CMP_MASKED_EQ, set | clear, set));
	if (r < 0)
		return hsp_make_errno(err, -r, "seccomp: add personality rule 0x%x/0x%x", set,
				      clear);
	return 0;
}

/* libseccomp allows one comparison per argument in a rule, and a default
 * ALLOW rules out allow-listing values, so the denied set is written as a
 * union of "bit b set and bit c clear" rules, b outside PERSONA_ALLOWED (the
 * clear bit keeps 0xffffffff out).  A value is covered iff b reaches c in the
 * graph of rules: a cycle over the other bits plus edges from the first of
 * them to each allowed bit reaches every bit in 32 rules. */
static int add_personality_rules(scmp_filter_ctx ctx, hsp_error_t *err)
{
	uint32_t other = ~PERSONA_ALLOWED;
	uint32_t first = other & -other;
	for (uint32_t b = first; b; b <<= 1) {
		if (!(b & other))
			continue;
		uint32_t next = other & ~((b << 1) - 1); /* higher bits of `other` */
		next = next ? next & -next : first;
		int r = deny_persona(ctx, b, next, err);
		if (r < 0)
			return r;
	}
	for (uint32_t a = PERSONA_ALLOWED; a; a &= a - 1) {
		int r = deny_persona(ctx, first, a & -a, err);
		if (r < 0)
			return r;
	}
	return 0;
}

static bool size_valid(off_t size)
{
	return size > 0 && size % sizeof(struct sock_filter) == 0 &&
	       size / sizeof(struct sock_filter) <= BPF_MAXINSNS;
}

/* Reads a whole program of `size` bytes from the start of fd. */
static int read_prog(int fd, off_t size, struct hsp_seccomp_prog **out)
{
	if (!size_valid(size))
		return -EINVAL;
	cleanup_prog struct hsp_seccomp_prog *p = malloc(sizeof(*p) + size);
	if (p == NULL)
		return -ENOMEM;
	p->len = size / sizeof(struct sock_filter);
	for (off_t done = 0; done < size;) {
		ssize_t n = pread(fd, (char *)p->insns + done, size - done, done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EINVAL; /* shrank under us */
		done += n;
	}
	/* The kernel would reject it too, but a cache hit must be loadable. */
	if (p->insns[p->len - 1].code != (BPF_RET | BPF_K))
		return -EINVAL;
	*out = steal_pointer(&p);
	return 0;
}

/* seccomp_export_bpf() (libseccomp 2.5) only writes to an fd. */
static int export_prog(scmp_filter_ctx ctx, struct hsp_seccomp_prog **out, hsp_error_t *err)
{
	cleanup_close int fd = memfd_create("hsp-seccomp", MFD_CLOEXEC);
	if (fd < 0)
		return hsp_make_errno(err, errno, "seccomp: memfd_create");
	int r = seccomp_export_bpf(ctx, fd);
	if (r < 0)
		return hsp_make_errno(err, -r, "seccomp: export BPF");
	struct stat st;
	if (fstat(fd, &st) < 0)
		return hsp_make_errno(err, errno, "seccomp: stat exported BPF");
	r = read_prog(fd, st.st_size, out);
	if (r < 0)
		return hsp_make_errno(err, -r, "seccomp: read exported BPF (%lld bytes)",
				      (long long)st.st_size);
	return 0;
}

int hsp_seccomp_build(struct hsp_seccomp_prog **out, hsp_error_t *err)
{
	cleanup_ctx scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	if (ctx == NULL)
		return hsp_make_error(err, ENOMEM, "seccomp: cannot create filter context");
	/* A binary tree instead of a linear chain of syscall numbers: the kernel
	 * runs the filter for every syscall number when installing it (to
	 * cache constant ALLOWs): 80-125 us here instead of 135-190 us. */
	int r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
	if (r < 0)
		return hsp_make_errno(err, -r, "seccomp: set binary-tree optimization");
	r = add_arches(ctx, err);
	if (r == 0)
		r = add_denied(ctx, err);
	if (r == 0)
		r = add_personality_rules(ctx, err);
	if (r == 0)
		r = export_prog(ctx, out, err);
	return r;
}

static char *cache_path(const char *cache_dir)
{
	const struct scmp_version *v = seccomp_version();
	return hsp_strdup_printf("%s/seccomp-%d-%u.%u.%u.bpf", cache_dir, PROFILE_VERSION, v->major,
				 v->minor, v->micro);
}

/* A miss (any error) just means "rebuild".  Files others could have written
 * are misses too: a planted program would disable the profile. */
static int read_cache(const char *path, struct hsp_seccomp_prog **out)
{
	cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 022))
		return -EPERM;
	return read_prog(fd, st.st_size, out);
}

static int write_cache(const char *cache_dir, const char *path, const struct hsp_seccomp_prog *p,
		       hsp_error_t *err)
{
	int r = hsp_mkdir_p(cache_dir, 0700, err);
	if (r == 0)
		r = hsp_write_file_atomic(path, (const char *)p->insns,
					  p->len * sizeof(struct sock_filter), 0600, err);
	if (r < 0)
		hsp_error_wrap(err, "seccomp: cache");
	return r;
}

int hsp_seccomp_load_cached(const char *cache_dir, struct hsp_seccomp_prog **out, hsp_error_t *err)
{
	cleanup_free char *path = cache_path(cache_dir);
	if (read_cache(path, out) == 0)
		return 0;

	cleanup_prog struct hsp_seccomp_prog *p = NULL;
	int r = hsp_seccomp_build(&p, err);
	if (r == 0)
		r = write_cache(cache_dir, path, p, err);
	if (r == 0)
		*out = steal_pointer(&p);
	return r;
}

int hsp_seccomp_install(const struct hsp_seccomp_prog *p)
{
	if (p == NULL || p->len == 0 || p->len > BPF_MAXINSNS)
		return -EINVAL;
	struct sock_fprog prog = {
	    .len = (unsigned short)p->len,
	    .filter = (struct sock_filter *)p->insns, /* the kernel only reads it */
	};
	/* No flags: a single thread runs here (no TSYNC), and SPEC_ALLOW would
	 * override the host's choice of spectre mitigations for seccomp tasks.
	 * No PR_SET_NO_NEW_PRIVS, so that setuid tools work inside; the kernel
	 * then requires CAP_SYS_ADMIN in our user namespace. */
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0)
		return -errno;
	return 0;
}

size_t hsp_seccomp_size(const struct hsp_seccomp_prog *p)
{
	return p ? p->len : 0;
}

const struct sock_filter *hsp_seccomp_insns(const struct hsp_seccomp_prog *p)
{
	return p ? p->insns : NULL;
}

void hsp_seccomp_free(struct hsp_seccomp_prog *p)
{
	free(p);
}
