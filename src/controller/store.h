/* The controller's persistent state, behind an interface small enough to
 * move to RADOS omaps later (controller HA): typed key -> blob records, an
 * append-only event log, and atomic batches.
 *
 * The embedded default is one SQLite file (WAL, synchronous=NORMAL): every
 * batch is a transaction, so a crash leaves either all of a change or none. */
#ifndef HSP_STORE_H
#define HSP_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

typedef struct hsp_store hsp_store_t;

int hsp_store_open(const char *path, hsp_store_t **st, hsp_error_t *err);
void hsp_store_close(hsp_store_t *st);

/* Batches nest: only the outermost commit writes. */
int hsp_store_begin(hsp_store_t *st, hsp_error_t *err);
int hsp_store_commit(hsp_store_t *st, hsp_error_t *err);
void hsp_store_rollback(hsp_store_t *st);

int hsp_store_put(hsp_store_t *st, const char *kind, const char *key, const void *data, size_t len,
		  hsp_error_t *err);
/* 0, or -ENOENT when absent. */
int hsp_store_del(hsp_store_t *st, const char *kind, const char *key, hsp_error_t *err);
/* *data is malloc'd. -ENOENT when absent. */
int hsp_store_get(hsp_store_t *st, const char *kind, const char *key, void **data, size_t *len,
		  hsp_error_t *err);

typedef int (*hsp_store_fn)(const char *key, const void *data, size_t len, void *ud);
/* Calls fn for every record of a kind in key order; a negative return
 * from fn stops the scan and is returned. */
int hsp_store_scan(hsp_store_t *st, const char *kind, hsp_store_fn fn, void *ud, hsp_error_t *err);

/* Events: seq is the caller's (strictly increasing). */
int hsp_store_event_append(hsp_store_t *st, uint64_t seq, const void *data, size_t len,
			   hsp_error_t *err);
typedef int (*hsp_store_event_fn)(uint64_t seq, const void *data, size_t len, void *ud);
int hsp_store_event_scan(hsp_store_t *st, uint64_t after_seq, hsp_store_event_fn fn, void *ud,
			 hsp_error_t *err);
/* The last seq stored, 0 when none. */
int hsp_store_event_last(hsp_store_t *st, uint64_t *seq, hsp_error_t *err);
/* Keeps only the newest `keep` events. */
int hsp_store_event_trim(hsp_store_t *st, uint64_t keep, hsp_error_t *err);

#endif
