/*
 * Plain C functions over WiredTiger's function-pointer API, so Rust can call
 * them through ordinary `extern "C"` declarations.
 *
 * Every function returning int returns 0 or a WiredTiger/errno error code.
 * When a call fails, the first message WiredTiger reported for it (through
 * the connection's event handler, on the calling thread) can be read with
 * wts_last_error_message(). Messages reported by WiredTiger's own background
 * threads, or outside any shim call, go to stderr.
 *
 * The handle types stay opaque here; shim.c includes the real wiredtiger.h.
 */
#ifndef SECANTUS_WT_SHIM_H
#define SECANTUS_WT_SHIM_H

#include <stddef.h>
#include <stdint.h>

typedef struct __wt_connection WT_CONNECTION;
typedef struct __wt_session WT_SESSION;
typedef struct __wt_cursor WT_CURSOR;

/* Message captured for the last failed shim call on this thread (NUL-terminated). */
size_t wts_last_error_message(const char **msg);
/* wiredtiger_strerror(): a constant string for WiredTiger and errno codes, else NULL. */
const char *wts_strerror(int code);
/* The library's version string. */
const char *wts_version(void);

/* Connection. */
int wts_open(const char *home, const char *config, WT_CONNECTION **connp);
int wts_conn_close(WT_CONNECTION *conn, const char *config);
int wts_open_session(WT_CONNECTION *conn, const char *config, WT_SESSION **sessionp);
/* WT_CONNECTION::set_timestamp, e.g. "oldest_timestamp=1a,stable_timestamp=2b" (hex). */
int wts_conn_set_timestamp(WT_CONNECTION *conn, const char *config);
/* WT_CONNECTION::query_timestamp ("get=all_durable", ...), decoded from hex into *ts. */
int wts_conn_query_timestamp(WT_CONNECTION *conn, const char *config, uint64_t *ts);

/* Session. */
int wts_session_close(WT_SESSION *session, const char *config);
int wts_session_reset(WT_SESSION *session);
int wts_create(WT_SESSION *session, const char *uri, const char *config);
int wts_drop(WT_SESSION *session, const char *uri, const char *config);
int wts_begin_transaction(WT_SESSION *session, const char *config);
int wts_commit_transaction(WT_SESSION *session, const char *config);
int wts_rollback_transaction(WT_SESSION *session, const char *config);
int wts_checkpoint(WT_SESSION *session, const char *config);
int wts_log_flush(WT_SESSION *session, const char *config);
/* WT_SESSION::timestamp_transaction_uint with WT_TS_TXN_TYPE_COMMIT / WT_TS_TXN_TYPE_READ. */
int wts_set_commit_timestamp(WT_SESSION *session, uint64_t ts);
int wts_set_read_timestamp(WT_SESSION *session, uint64_t ts);
int wts_open_cursor(
  WT_SESSION *session, const char *uri, const char *config, WT_CURSOR **cursorp);

/* Cursor metadata. */
const char *wts_cursor_key_format(WT_CURSOR *cursor);
const char *wts_cursor_value_format(WT_CURSOR *cursor);
const char *wts_cursor_uri(WT_CURSOR *cursor);
/* Non-zero if the cursor was opened in raw mode (keys/values are then WT_ITEMs). */
int wts_cursor_is_raw(WT_CURSOR *cursor);
int wts_cursor_close(WT_CURSOR *cursor);

/*
 * Keys and values. The setters only record pointers: the memory must stay valid
 * until the next operation on the cursor has returned.
 */
void wts_set_key_q(WT_CURSOR *cursor, int64_t key);
void wts_set_key_u(WT_CURSOR *cursor, const void *data, size_t size);
void wts_set_value_u(WT_CURSOR *cursor, const void *data, size_t size);
/* key_format/value_format "S": NUL-terminated strings. */
void wts_set_key_s(WT_CURSOR *cursor, const char *key);
void wts_set_value_s(WT_CURSOR *cursor, const char *value);
int wts_get_key_q(WT_CURSOR *cursor, int64_t *key);
/* Returned memory belongs to the cursor, valid until its next operation. */
int wts_get_key_u(WT_CURSOR *cursor, const void **data, size_t *size);
int wts_get_value_u(WT_CURSOR *cursor, const void **data, size_t *size);
int wts_get_key_s(WT_CURSOR *cursor, const char **key);
int wts_get_value_s(WT_CURSOR *cursor, const char **value);

/* Operations. */
int wts_insert(WT_CURSOR *cursor);
int wts_update(WT_CURSOR *cursor);
int wts_remove(WT_CURSOR *cursor);
int wts_search(WT_CURSOR *cursor);
/* *exact: <0 found key is smaller, 0 equal, >0 larger than the searched key. */
int wts_search_near(WT_CURSOR *cursor, int *exact);
int wts_next(WT_CURSOR *cursor);
int wts_prev(WT_CURSOR *cursor);
int wts_reset(WT_CURSOR *cursor);
/* WT_CURSOR::bound, e.g. "bound=lower,inclusive=true" after setting the key, or "action=clear". */
int wts_bound(WT_CURSOR *cursor, const char *config);

/*
 * Statistics cursors ("statistics:", "statistics:table:x"): after a successful
 * wts_next/wts_search on one, read the current entry. *desc belongs to the cursor.
 */
int wts_stat_get(WT_CURSOR *cursor, int32_t *key, const char **desc, int64_t *value);
void wts_stat_set_key(WT_CURSOR *cursor, int32_t key);

#endif
