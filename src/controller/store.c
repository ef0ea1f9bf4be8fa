/* SQLite backend of the controller store (see store.h).  SQLite because it
 * is Debian's well-kept embedded database: transactions, crash safety and
 * a file an operator can inspect with sqlite3(1), with nothing to run. */
#define _GNU_SOURCE
#include "store.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "utils.h"

struct hsp_store {
	sqlite3 *db;
	int depth; /* nesting of begin */
};

static const char schema[] = "PRAGMA journal_mode=WAL;"
			     "PRAGMA synchronous=NORMAL;"
			     "PRAGMA busy_timeout=5000;"
			     "CREATE TABLE IF NOT EXISTS records("
			     " kind TEXT NOT NULL, key TEXT NOT NULL, data BLOB NOT NULL,"
			     " PRIMARY KEY(kind, key)) WITHOUT ROWID;"
			     "CREATE TABLE IF NOT EXISTS events("
			     " seq INTEGER PRIMARY KEY, data BLOB NOT NULL);";

static int db_error(hsp_store_t *st, hsp_error_t *err, const char *what)
{
	int code = sqlite3_errcode(st->db);
	int e = code == SQLITE_FULL ? ENOSPC : code == SQLITE_BUSY ? EBUSY : EIO;
	return hsp_make_error(err, e, "store: %s: %s", what, sqlite3_errmsg(st->db));
}

int hsp_store_open(const char *path, hsp_store_t **out, hsp_error_t *err)
{
	hsp_store_t *st = calloc(1, sizeof(*st));
	if (st == NULL)
		return hsp_make_errno(err, ENOMEM, "store");
	int rc = sqlite3_open_v2(
	    path, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		int r = hsp_make_error(err, EIO, "store `%s`: %s", path,
				       st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc));
		hsp_store_close(st);
		return r;
	}
	char *msg = NULL;
	if (sqlite3_exec(st->db, schema, NULL, NULL, &msg) != SQLITE_OK) {
		int r = hsp_make_error(err, EIO, "store `%s`: %s", path, msg ? msg : "schema");
		sqlite3_free(msg);
		hsp_store_close(st);
		return r;
	}
	*out = st;
	return 0;
}

void hsp_store_close(hsp_store_t *st)
{
	if (st == NULL)
		return;
	sqlite3_close(st->db);
	free(st);
}

static int exec_sql(hsp_store_t *st, const char *sql, hsp_error_t *err)
{
	if (sqlite3_exec(st->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return db_error(st, err, sql);
	return 0;
}

int hsp_store_begin(hsp_store_t *st, hsp_error_t *err)
{
	if (st->depth++ > 0)
		return 0;
	int r = exec_sql(st, "BEGIN IMMEDIATE", err);
	if (r < 0)
		st->depth = 0;
	return r;
}

int hsp_store_commit(hsp_store_t *st, hsp_error_t *err)
{
	if (st->depth == 0 || --st->depth > 0)
		return 0;
	int r = exec_sql(st, "COMMIT", err);
	if (r < 0)
		sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
	return r;
}

void hsp_store_rollback(hsp_store_t *st)
{
	if (st->depth == 0)
		return;
	st->depth = 0;
	sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
}

static void finalize(sqlite3_stmt **s)
{
	sqlite3_finalize(*s);
}
#define cleanup_stmt __attribute__((cleanup(finalize)))

static int prepare(hsp_store_t *st, const char *sql, sqlite3_stmt **s, hsp_error_t *err)
{
	if (sqlite3_prepare_v2(st->db, sql, -1, s, NULL) != SQLITE_OK)
		return db_error(st, err, "prepare");
	return 0;
}

int hsp_store_put(hsp_store_t *st, const char *kind, const char *key, const void *data, size_t len,
		  hsp_error_t *err)
{
	cleanup_stmt sqlite3_stmt *s = NULL;
	int r =
	    prepare(st, "INSERT OR REPLACE INTO records(kind, key, data) VALUES(?, ?, ?)", &s, err);
	if (r < 0)
		return r;
	sqlite3_bind_text(s, 1, kind, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, key, -1, SQLITE_STATIC);
	sqlite3_bind_blob64(s, 3, len ? data : "", len, SQLITE_STATIC);
	if (sqlite3_step(s) != SQLITE_DONE)
		return db_error(st, err, "put");
	return 0;
}

int hsp_store_del(hsp_store_t *st, const char *kind, const char *key, hsp_error_t *err)
{
	cleanup_stmt sqlite3_stmt *s = NULL;
	int r = prepare(st, "DELETE FROM records WHERE kind = ? AND key = ?", &s, err);
	if (r < 0)
		return r;
	sqlite3_bind_text(s, 1, kind, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, key, -1, SQLITE_STATIC);
	if (sqlite3_step(s) != SQLITE_DONE)
		return db_error(st, err, "delete");
	return sqlite3_changes(st->db) > 0 ? 0 : -ENOENT;
}

static int copy_blob(sqlite3_stmt *s, int col, void **data, size_t *len, hsp_error_t *err)
{
	size_t n = (size_t)sqlite3_column_bytes(s, col);
	void *p = malloc(n ? n : 1);
	if (p == NULL)
		return hsp_make_errno(err, ENOMEM, "store");
	if (n)
		memcpy(p, sqlite3_column_blob(s, col), n);
	*data = p;
	*len = n;
	return 0;
}

int hsp_store_get(hsp_store_t *st, const char *kind, const char *key, void **data, size_t *len,
		  hsp_error_t *err)
{
	cleanup_stmt sqlite3_stmt *s = NULL;
	int r = prepare(st, "SELECT data FROM records WHERE kind = ? AND key = ?", &s, err);
	if (r < 0)
		return r;
	sqlite3_bind_text(s, 1, kind, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, key, -1, SQLITE_STATIC);
	int rc = sqlite3_step(s);
	if (rc == SQLITE_DONE)
		return -ENOENT;
	if (rc != SQLITE_ROW)
		return db_error(st, err, "get");
	return copy_blob(s, 0, data, len, err);
}

int hsp_store_scan(hsp_store_t *st, const char *kind, hsp_store_fn fn, void *ud, hsp_error_t *err)
{
	cleanup_stmt sqlite3_stmt *s = NULL;
	int r = prepare(st, "SELECT key, data FROM records WHERE kind = ? ORDER BY key", &s, err);
	if (r < 0)
		return r;
	sqlite3_bind_text(s, 1, kind, -1, SQLITE_STATIC);
	int rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		r = fn((const char *)sqlite3_column_text(s, 0), sqlite3_column_blob(s, 1),
		       (size_t)sqlite3_column_bytes(s, 1), ud);
		if (r < 0)
			return r;
	}
	return rc == SQLITE_DONE ? 0 : db_error(st, err, "scan");
}

int hsp_store_event_append(hsp_store_t *st, uint64_t seq, const void *data, size_t len,
			   hsp_error_t *err)
{
	cleanup_stmt sqlite3_stmt *s = NULL;
	int r = prepare(st, "INSERT INTO events(seq, data) VALUES(?, ?)", &s, err);
	if (r < 0)
		return r;
	sqlite3_bind_int64(s, 1, (sqlite3_int64)seq);
	sqlite3_bind_blob64(s, 2, len ? data : "", len, SQLITE_STATIC);
	if (sqlite3_step(s) != SQLITE_DONE)
		return db_error(st, err, "event append");
	return 0;
}

int hsp_store_event_scan(hsp_store_t *st, uint64_t after_seq, hsp_store_event_fn fn, void *ud,
			 hsp_error_t *err)
{
	cleanup_stmt sqlite3_stmt *s = NULL;
	int r = prepare(st, "SELECT seq, data FROM events WHERE seq > ? ORDER BY seq", &s, err);
	if (r < 0)
		return r;
	sqlite3_bind_int64(s, 1, (sqlite3_int64)after_seq);
	int rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		r = fn((uint64_t)sqlite3_column_int64(s, 0), sqlite3_column_blob(s, 1),
		       (size_t)sqlite3_column_bytes(s, 1), ud);
		if (r < 0)
			return r;
	}
	return rc == SQLITE_DONE ? 0 : db_error(st, err, "event scan");
}

int hsp_store_event_last(hsp_store_t *st, uint64_t *seq, hsp_error_t *err)
{
	cleanup_stmt sqlite3_stmt *s = NULL;
	int r = prepare(st, "SELECT COALESCE(MAX(seq), 0) FROM events", &s, err);
	if (r < 0)
		return r;
	if (sqlite3_step(s) != SQLITE_ROW)
		return db_error(st, err, "event last");
	*seq = (uint64_t)sqlite3_column_int64(s, 0);
	return 0;
}

int hsp_store_event_trim(hsp_store_t *st, uint64_t keep, hsp_error_t *err)
{
	cleanup_stmt sqlite3_stmt *s = NULL;
	int r = prepare(st, "DELETE FROM events WHERE seq <= (SELECT MAX(seq) FROM events) - ?", &s,
			err);
	if (r < 0)
		return r;
	sqlite3_bind_int64(s, 1, (sqlite3_int64)keep);
	if (sqlite3_step(s) != SQLITE_DONE)
		return db_error(st, err, "event trim");
	return 0;
}
