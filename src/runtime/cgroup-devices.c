/* The VE's device allow-list (see cgroup.h): devices.deny/devices.allow
 * rules on v1, a BPF_PROG_TYPE_CGROUP_DEVICE program on v2. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cgroup-internal.h"
#include "utils.h"

/* The VE's device allow-list: the pseudo devices a full OS needs, its
 * terminals and tun.  Everything else (block devices, /dev/kvm, /dev/mem...)
 * is denied for open and mknod.  minor -1 is a wildcard. */
static const struct {
	int major, minor;
} ve_devices[] = {
    {1, 3},    /* null */
    {1, 5},    /* zero */
    {1, 7},    /* full */
    {1, 8},    /* random */
    {1, 9},    /* urandom */
    {5, 0},    /* tty */
    {5, 1},    /* console */
    {5, 2},    /* ptmx */
    {136, -1}, /* pts */
    {10, 200}, /* net/tun */
};
#define N_VE_DEVICES (sizeof(ve_devices) / sizeof(ve_devices[0]))

/* ---- devices: v1 allow-list ---- */

int hsp_cg_v1_devices(struct hsp_cgroup *cg, hsp_error_t *err)
{
	int r = hsp_cg_set(cg, "devices.deny", "a", err);
	for (size_t i = 0; r == 0 && i < N_VE_DEVICES; i++) {
		char rule[32], minor[16];
		if (ve_devices[i].minor < 0)
			snprintf(minor, sizeof(minor), "*");
		else
			snprintf(minor, sizeof(minor), "%d", ve_devices[i].minor);
		snprintf(rule, sizeof(rule), "c %d:%s rwm", ve_devices[i].major, minor);
		/* devices.allow takes one rule per write: one modify each */
		r = hsp_cg_set(cg, "devices.allow", rule, err);
	}
	return r;
}

/* ---- devices: v2 eBPF program ---- */

#define INSN(c, d, s, o, i)                                                                        \
	((struct bpf_insn){.code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i)})
#define LDX_W(d, s, o) INSN(BPF_LDX | BPF_W | BPF_MEM, d, s, o, 0)
#define ALU32_IMM(op, d, i) INSN(BPF_ALU | BPF_OP(op) | BPF_K, d, 0, 0, i)
#define JNE_IMM(d, i, o) INSN(BPF_JMP | BPF_JNE | BPF_K, d, 0, o, i)
#define MOV64_IMM(d, i) INSN(BPF_ALU64 | BPF_MOV | BPF_K, d, 0, 0, i)
#define EXIT_INSN() INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)

/* Returns the instruction count.  r2 = device type, r4 = major,
 * r5 = minor; each allowed device is a block "if all match, return 1";
 * the program ends in "return 0" (deny).  Every access type (read, write,
 * mknod) is allowed on listed devices, so the access bits are not read. */
static size_t build_device_prog(struct bpf_insn *p)
{
	size_t n = 0;
	p[n++] = LDX_W(BPF_REG_2, BPF_REG_1, offsetof(struct bpf_cgroup_dev_ctx, access_type));
	p[n++] = ALU32_IMM(BPF_AND, BPF_REG_2, 0xFFFF);
	p[n++] = LDX_W(BPF_REG_4, BPF_REG_1, offsetof(struct bpf_cgroup_dev_ctx, major));
	p[n++] = LDX_W(BPF_REG_5, BPF_REG_1, offsetof(struct bpf_cgroup_dev_ctx, minor));
	for (size_t i = 0; i < N_VE_DEVICES; i++) {
		bool minor = ve_devices[i].minor >= 0;
		short skip = minor ? 4 : 3; /* jumps land after this block's exit */
		p[n++] = JNE_IMM(BPF_REG_2, BPF_DEVCG_DEV_CHAR, skip--);
		p[n++] = JNE_IMM(BPF_REG_4, ve_devices[i].major, skip--);
		if (minor)
			p[n++] = JNE_IMM(BPF_REG_5, ve_devices[i].minor, skip--);
		p[n++] = MOV64_IMM(BPF_REG_0, 1);
		p[n++] = EXIT_INSN();
	}
	p[n++] = MOV64_IMM(BPF_REG_0, 0);
	p[n++] = EXIT_INSN();
	return n;
}

static int sys_bpf(int cmd, union bpf_attr *attr)
{
	return (int)syscall(__NR_bpf, cmd, attr, sizeof(*attr));
}

static int load_device_prog(hsp_error_t *err)
{
	struct bpf_insn prog[8 + 5 * N_VE_DEVICES];
	union bpf_attr attr;
	memset(&attr, 0, sizeof(attr));
	attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
	attr.insns = (uint64_t)(uintptr_t)prog;
	attr.insn_cnt = (uint32_t)build_device_prog(prog);
	attr.license = (uint64_t)(uintptr_t) "GPL";
	int fd = sys_bpf(BPF_PROG_LOAD, &attr);
	if (fd < 0 && errno == EPERM) {
		/* Before Linux 5.11 programs were charged to RLIMIT_MEMLOCK. */
		struct rlimit rl = {RLIM_INFINITY, RLIM_INFINITY};
		if (setrlimit(RLIMIT_MEMLOCK, &rl) == 0)
			fd = sys_bpf(BPF_PROG_LOAD, &attr);
	}
	if (fd < 0)
		return hsp_make_errno(err, errno, "cgroup: load the device-filter eBPF program");
	return fd;
}

/* Detaches the device programs that were on the group before ours (a
 * left-over group being reused): ours must be the only one. */
static int detach_old_progs(int dirfd, const uint32_t *ids, uint32_t n, const char *dir,
			    hsp_error_t *err)
{
	for (uint32_t i = 0; i < n; i++) {
		union bpf_attr attr;
		memset(&attr, 0, sizeof(attr));
		attr.prog_id = ids[i];
		cleanup_close int fd = sys_bpf(BPF_PROG_GET_FD_BY_ID, &attr);
		if (fd < 0 && errno == ENOENT)
			continue;
		if (fd < 0)
			return hsp_make_errno(err, errno, "cgroup: open old eBPF program of `%s`",
					      dir);
		memset(&attr, 0, sizeof(attr));
		attr.target_fd = (uint32_t)dirfd;
		attr.attach_bpf_fd = (uint32_t)fd;
		attr.attach_type = BPF_CGROUP_DEVICE;
		if (sys_bpf(BPF_PROG_DETACH, &attr) < 0 && errno != ENOENT)
			return hsp_make_errno(err, errno, "cgroup: detach old eBPF program of `%s`",
					      dir);
	}
	return 0;
}

int hsp_cgroup_attach_device_filter(const char *dir, hsp_error_t *err)
{
	cleanup_close int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return hsp_make_errno(err, errno, "cgroup: open `%s`", dir);
	uint32_t ids[64];
	union bpf_attr attr;
	memset(&attr, 0, sizeof(attr));
	attr.query.target_fd = (uint32_t)dirfd;
	attr.query.attach_type = BPF_CGROUP_DEVICE;
	attr.query.prog_ids = (uint64_t)(uintptr_t)ids;
	attr.query.prog_cnt = 64;
	if (sys_bpf(BPF_PROG_QUERY, &attr) < 0)
		return hsp_make_errno(err, errno, "cgroup: query eBPF programs of `%s`", dir);
	uint32_t old = attr.query.prog_cnt;

	cleanup_close int prog = load_device_prog(err);
	if (prog < 0)
		return prog;
	memset(&attr, 0, sizeof(attr));
	attr.target_fd = (uint32_t)dirfd;
	attr.attach_bpf_fd = (uint32_t)prog;
	attr.attach_type = BPF_CGROUP_DEVICE;
	attr.attach_flags = BPF_F_ALLOW_MULTI;
	if (sys_bpf(BPF_PROG_ATTACH, &attr) < 0)
		return hsp_make_errno(err, errno,
				      "cgroup: attach device-filter eBPF program to `%s`", dir);
	/* The cgroup holds the program now; our fd can go. */
	return detach_old_progs(dirfd, ids, old, dir, err);
}
