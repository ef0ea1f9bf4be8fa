#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "caps.h"

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/capability.h>
#include <sys/prctl.h>

/* The system-container set: a whitelist, so capabilities added by newer
 * kernels are dropped until someone decides otherwise.  All of these act on
 * the VE's own namespaces, files and processes (or, for the ones that check
 * the initial user namespace, are harmless there).  CHECKPOINT_RESTORE is a
 * subset of SYS_ADMIN (kept anyway) and lets CRIU run inside. */
#define KEEP_CAPS(X)                                                                               \
	X(CHOWN)                                                                                   \
	X(DAC_OVERRIDE)                                                                            \
	X(DAC_READ_SEARCH)                                                                         \
	X(FOWNER)                                                                                  \
	X(FSETID)                                                                                  \
	X(KILL)                                                                                    \
	X(SETGID)                                                                                  \
	X(SETUID)                                                                                  \
	X(SETPCAP)                                                                                 \
	X(LINUX_IMMUTABLE)                                                                         \
	X(NET_BIND_SERVICE)                                                                        \
	X(NET_BROADCAST)                                                                           \
	X(NET_ADMIN)                                                                               \
	X(NET_RAW)                                                                                 \
	X(IPC_LOCK)                                                                                \
	X(IPC_OWNER)                                                                               \
	X(SYS_CHROOT)                                                                              \
	X(SYS_PTRACE)                                                                              \
	X(SYS_ADMIN)                                                                               \
	X(SYS_BOOT)                                                                                \
	X(SYS_NICE)                                                                                \
	X(SYS_RESOURCE)                                                                            \
	X(SYS_TTY_CONFIG)                                                                          \
	X(MKNOD)                                                                                   \
	X(LEASE)                                                                                   \
	X(AUDIT_WRITE)                                                                             \
	X(SETFCAP)                                                                                 \
	X(CHECKPOINT_RESTORE)

/* What reaches the host kernel as a whole: modules, raw I/O, process
 * accounting, the clock, LSM policy, the audit subsystem and kernel log,
 * power management (suspend blocking, wake-up alarms), bpf and perf. */
#define DROP_CAPS(X)                                                                               \
	X(SYS_MODULE)                                                                              \
	X(SYS_RAWIO)                                                                               \
	X(SYS_PACCT)                                                                               \
	X(SYS_TIME)                                                                                \
	X(MAC_OVERRIDE)                                                                            \
	X(MAC_ADMIN)                                                                               \
	X(AUDIT_CONTROL)                                                                           \
	X(AUDIT_READ)                                                                              \
	X(SYSLOG)                                                                                  \
	X(WAKE_ALARM)                                                                              \
	X(BLOCK_SUSPEND)                                                                           \
	X(PERFMON)                                                                                 \
	X(BPF)

#define CAP_BIT(c) | (UINT64_C(1) << CAP_##c)
#define CAP_NAME(c) "CAP_" #c,

#define KEEP_MASK (0 KEEP_CAPS(CAP_BIT))
#define DROP_MASK (0 DROP_CAPS(CAP_BIT))
static const uint64_t keep_mask = KEEP_MASK;

/* Every capability these headers know must be classified: a new one fails
 * the build instead of silently landing on one side. */
_Static_assert((KEEP_MASK & DROP_MASK) == 0, "capability both kept and dropped");
_Static_assert((KEEP_MASK | DROP_MASK) == (UINT64_C(1) << (CAP_LAST_CAP + 1)) - 1,
	       "unclassified capability: add it to KEEP_CAPS or DROP_CAPS");

static const char *const dropped[] = {DROP_CAPS(CAP_NAME) NULL};

const char *const *hsp_caps_dropped(void)
{
	return dropped;
}

/* libcap probes the running kernel when it is loaded (PR_CAPBSET_READ), so
 * this needs no /proc, which may not be mounted between clone and exec. */
static unsigned kernel_caps(void)
{
	int n = cap_max_bits();
	return n > 0 && n <= 64 ? (unsigned)n : 64;
}

static int drop_bounding(void)
{
	unsigned n = kernel_caps();
	for (unsigned c = 0; c < n; c++) {
		if (keep_mask & (UINT64_C(1) << c))
			continue;
		if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0)
			return -errno;
	}
	return 0;
}

/* capget/capset directly: no allocation, async-signal-safe.  Clearing bits
 * never needs privileges, and bits the kernel lacks are zero already. */
static int drop_process_sets(void)
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
	if (capget(&hdr, data) < 0)
		return -errno;
	for (int i = 0; i < _LINUX_CAPABILITY_U32S_3; i++) {
		uint32_t keep = (uint32_t)(keep_mask >> (32 * i));
		data[i].effective &= keep;
		data[i].permitted &= keep;
		data[i].inheritable &= keep;
	}
	if (capset(&hdr, data) < 0)
		return -errno;
	return 0;
}

int hsp_caps_drop(void)
{
	/* Ambient first: it must stay a subset of permitted and inheritable.
	 * EINVAL: kernel older than 4.3, which has no ambient set. */
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		return -errno;
	/* Bounding next: PR_CAPBSET_DROP needs CAP_SETPCAP in effective (kept). */
	int r = drop_bounding();
	if (r == 0)
		r = drop_process_sets();
	return r;
}
