/* Capabilities of a system container: the bounding set keeps what a full OS
 * needs (root inside can chown, bind ports, manage its network, mount in its
 * own namespaces, mknod where the device allow-list permits) and drops what
 * reaches the host kernel (modules, raw I/O, time, MAC, bpf, perf, ...). */
#ifndef HSP_CAPS_H
#define HSP_CAPS_H

#include "error.h"

/* Drops every capability outside the system-container set (including any
 * the kernel has and this code does not know) from the bounding, ambient,
 * inheritable, permitted and effective sets of the calling process.  Needs
 * CAP_SETPCAP (-EPERM otherwise).  Called after seccomp is installed
 * (loading needs CAP_SYS_ADMIN) and before exec.  Async-signal-safe.
 * Returns 0 or -errno (no error object: runs between clone and exec). */
int hsp_caps_drop(void);

/* NULL-terminated static list of dropped capability names (for tests/docs). */
const char *const *hsp_caps_dropped(void);

#endif
