/* The seccomp profile of full-OS VEs.  Built with libseccomp once, exported
 * as a BPF program to a cache file, and loaded from there afterwards
 * (building costs 0.3-0.5 ms, loading the cached program ~15 us; installing
 * it 80-125 us either way). */
#ifndef HSP_SECCOMP_H
#define HSP_SECCOMP_H

#include <stddef.h>

#include "error.h"

struct hsp_seccomp_prog; /* opaque: a ready-to-load BPF program */
struct sock_filter;	 /* <linux/filter.h> */

/* Builds the profile's BPF in memory (used to fill the cache; tests). */
int hsp_seccomp_build(struct hsp_seccomp_prog **out, hsp_error_t *err);
/* Loads the program from <cache_dir>/seccomp-<version>.bpf, building and
 * writing it atomically first if missing or invalid.  <version> is the
 * profile's version and libseccomp's, so upgrades invalidate the file; a file
 * others could have written counts as invalid.  cache_dir is created 0700. */
int hsp_seccomp_load_cached(const char *cache_dir, struct hsp_seccomp_prog **out, hsp_error_t *err);
/* Installs the filter in the calling thread without no_new_privs (so setuid
 * tools keep working); needs CAP_SYS_ADMIN in the current user namespace.
 * Async-signal-safe: usable between clone and exec. */
int hsp_seccomp_install(const struct hsp_seccomp_prog *p);
size_t hsp_seccomp_size(const struct hsp_seccomp_prog *p); /* instructions */
/* The program's hsp_seccomp_size() instructions (for tests and dumps). */
const struct sock_filter *hsp_seccomp_insns(const struct hsp_seccomp_prog *p);
void hsp_seccomp_free(struct hsp_seccomp_prog *p);

/* Names of the syscalls the profile denies (NULL-terminated, static). */
const char *const *hsp_seccomp_denied(void);

#endif
