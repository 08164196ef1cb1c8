/*
 * See shim.h. Each wrapper marks the calling thread as "inside a shim call" so
 * the event handler can keep WiredTiger's error message for the caller instead
 * of printing it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wiredtiger.h>

#include "shim.h"

static __thread int wts_in_call;
static __thread int wts_have_msg;
static __thread char wts_msg[1024];

#define WTS_BEGIN()       \
    do {                  \
        wts_in_call = 1;  \
        wts_have_msg = 0; \
        wts_msg[0] = '\0'; \
    } while (0)

/* Evaluates the WiredTiger call with capture enabled and returns its result. */
#define WTS_CALL(expr)   \
    do {                 \
        int wts_ret_;    \
        WTS_BEGIN();     \
        wts_ret_ = (expr); \
        wts_in_call = 0; \
        return wts_ret_; \
    } while (0)

static int
wts_handle_error(WT_EVENT_HANDLER *handler, WT_SESSION *session, int error, const char *message)
{
    (void)handler;
    (void)session;
    (void)error;
    if (message == NULL)
        return (0);
    if (wts_in_call) {
        /* The first message is the most specific one; later ones unwind the call stack. */
        if (!wts_have_msg) {
            snprintf(wts_msg, sizeof(wts_msg), "%s", message);
            wts_have_msg = 1;
        }
        return (0);
    }
    fprintf(stderr, "[wiredtiger] %s\n", message);
    return (0);
}

static int
wts_handle_message(WT_EVENT_HANDLER *handler, WT_SESSION *session, const char *message)
{
    (void)handler;
    (void)session;
    /* Informational messages go to stderr so stdout stays the application's. */
    if (message != NULL)
        fprintf(stderr, "[wiredtiger] %s\n", message);
    return (0);
}

static WT_EVENT_HANDLER wts_event_handler = {
  wts_handle_error, wts_handle_message, NULL, NULL, NULL};

size_t
wts_last_error_message(const char **msg)
{
    *msg = wts_msg;
    return (wts_have_msg ? strlen(wts_msg) : 0);
}

const char *
wts_strerror(int code)
{
    /* wiredtiger_strerror formats other negative codes into a static buffer: not thread-safe. */
    if (code < 0 && (code < WT_TRY_SALVAGE || code > WT_ROLLBACK))
        return (NULL);
    return (wiredtiger_strerror(code));
}

const char *
wts_version(void)
{
    return (wiredtiger_version(NULL, NULL, NULL));
}

int
wts_open(const char *home, const char *config, WT_CONNECTION **connp)
{
    WTS_CALL(wiredtiger_open(home, &wts_event_handler, config, connp));
}

int
wts_conn_close(WT_CONNECTION *conn, const char *config)
{
    WTS_CALL(conn->close(conn, config));
}

int
wts_open_session(WT_CONNECTION *conn, const char *config, WT_SESSION **sessionp)
{
    WTS_CALL(conn->open_session(conn, NULL, config, sessionp));
}

int
wts_conn_set_timestamp(WT_CONNECTION *conn, const char *config)
{
    WTS_CALL(conn->set_timestamp(conn, config));
}

static int
wts_query_hex(WT_CONNECTION *conn, const char *config, uint64_t *ts)
{
    char hex[2 * sizeof(uint64_t) + 1];
    int ret;

    *ts = 0;
    if ((ret = conn->query_timestamp(conn, hex, config)) != 0)
        return (ret);
    hex[sizeof(hex) - 1] = '\0';
    *ts = (uint64_t)strtoull(hex, NULL, 16);
    return (0);
}

int
wts_conn_query_timestamp(WT_CONNECTION *conn, const char *config, uint64_t *ts)
{
    WTS_CALL(wts_query_hex(conn, config, ts));
}

int
wts_session_close(WT_SESSION *session, const char *config)
{
    WTS_CALL(session->close(session, config));
}

int
wts_session_reset(WT_SESSION *session)
{
    WTS_CALL(session->reset(session));
}

int
wts_create(WT_SESSION *session, const char *uri, const char *config)
{
    WTS_CALL(session->create(session, uri, config));
}

int
wts_drop(WT_SESSION *session, const char *uri, const char *config)
{
    WTS_CALL(session->drop(session, uri, config));
}

int
wts_begin_transaction(WT_SESSION *session, const char *config)
{
    WTS_CALL(session->begin_transaction(session, config));
}

int
wts_commit_transaction(WT_SESSION *session, const char *config)
{
    WTS_CALL(session->commit_transaction(session, config));
}

int
wts_rollback_transaction(WT_SESSION *session, const char *config)
{
    WTS_CALL(session->rollback_transaction(session, config));
}

int
wts_checkpoint(WT_SESSION *session, const char *config)
{
    WTS_CALL(session->checkpoint(session, config));
}

int
wts_log_flush(WT_SESSION *session, const char *config)
{
    WTS_CALL(session->log_flush(session, config));
}

int
wts_set_commit_timestamp(WT_SESSION *session, uint64_t ts)
{
    WTS_CALL(session->timestamp_transaction_uint(session, WT_TS_TXN_TYPE_COMMIT, ts));
}

int
wts_set_read_timestamp(WT_SESSION *session, uint64_t ts)
{
    WTS_CALL(session->timestamp_transaction_uint(session, WT_TS_TXN_TYPE_READ, ts));
}

int
wts_open_cursor(WT_SESSION *session, const char *uri, const char *config, WT_CURSOR **cursorp)
{
    WTS_CALL(session->open_cursor(session, uri, NULL, config, cursorp));
}

const char *
wts_cursor_key_format(WT_CURSOR *cursor)
{
    return (cursor->key_format);
}

const char *
wts_cursor_value_format(WT_CURSOR *cursor)
{
    return (cursor->value_format);
}

const char *
wts_cursor_uri(WT_CURSOR *cursor)
{
    return (cursor->uri);
}

int
wts_cursor_is_raw(WT_CURSOR *cursor)
{
    return ((cursor->flags & WT_CURSTD_RAW) != 0);
}

int
wts_cursor_close(WT_CURSOR *cursor)
{
    WTS_CALL(cursor->close(cursor));
}

void
wts_set_key_q(WT_CURSOR *cursor, int64_t key)
{
    cursor->set_key(cursor, key);
}

void
wts_set_key_u(WT_CURSOR *cursor, const void *data, size_t size)
{
    WT_ITEM item;

    memset(&item, 0, sizeof(item));
    item.data = data;
    item.size = size;
    /* WiredTiger records data/size from the item; the item itself may go away. */
    cursor->set_key(cursor, &item);
}

void
wts_set_value_u(WT_CURSOR *cursor, const void *data, size_t size)
{
    WT_ITEM item;

    memset(&item, 0, sizeof(item));
    item.data = data;
    item.size = size;
    cursor->set_value(cursor, &item);
}

void
wts_set_key_s(WT_CURSOR *cursor, const char *key)
{
    cursor->set_key(cursor, key);
}

void
wts_set_value_s(WT_CURSOR *cursor, const char *value)
{
    cursor->set_value(cursor, value);
}

int
wts_get_key_s(WT_CURSOR *cursor, const char **key)
{
    WTS_CALL(cursor->get_key(cursor, key));
}

int
wts_get_value_s(WT_CURSOR *cursor, const char **value)
{
    WTS_CALL(cursor->get_value(cursor, value));
}

int
wts_get_key_q(WT_CURSOR *cursor, int64_t *key)
{
    WTS_CALL(cursor->get_key(cursor, key));
}

static int
wts_get_key_u_impl(WT_CURSOR *cursor, const void **data, size_t *size)
{
    WT_ITEM item;
    int ret;

    memset(&item, 0, sizeof(item));
    if ((ret = cursor->get_key(cursor, &item)) != 0)
        return (ret);
    *data = item.data;
    *size = item.size;
    return (0);
}

int
wts_get_key_u(WT_CURSOR *cursor, const void **data, size_t *size)
{
    WTS_CALL(wts_get_key_u_impl(cursor, data, size));
}

static int
wts_get_value_u_impl(WT_CURSOR *cursor, const void **data, size_t *size)
{
    WT_ITEM item;
    int ret;

    memset(&item, 0, sizeof(item));
    if ((ret = cursor->get_value(cursor, &item)) != 0)
        return (ret);
    *data = item.data;
    *size = item.size;
    return (0);
}

int
wts_get_value_u(WT_CURSOR *cursor, const void **data, size_t *size)
{
    WTS_CALL(wts_get_value_u_impl(cursor, data, size));
}

int
wts_insert(WT_CURSOR *cursor)
{
    WTS_CALL(cursor->insert(cursor));
}

int
wts_update(WT_CURSOR *cursor)
{
    WTS_CALL(cursor->update(cursor));
}

int
wts_remove(WT_CURSOR *cursor)
{
    WTS_CALL(cursor->remove(cursor));
}

int
wts_search(WT_CURSOR *cursor)
{
    WTS_CALL(cursor->search(cursor));
}

int
wts_search_near(WT_CURSOR *cursor, int *exact)
{
    WTS_CALL(cursor->search_near(cursor, exact));
}

int
wts_next(WT_CURSOR *cursor)
{
    WTS_CALL(cursor->next(cursor));
}

int
wts_prev(WT_CURSOR *cursor)
{
    WTS_CALL(cursor->prev(cursor));
}

int
wts_reset(WT_CURSOR *cursor)
{
    WTS_CALL(cursor->reset(cursor));
}

int
wts_bound(WT_CURSOR *cursor, const char *config)
{
    WTS_CALL(cursor->bound(cursor, config));
}

static int
wts_stat_get_impl(WT_CURSOR *cursor, int32_t *key, const char **desc, int64_t *value)
{
    const char *pvalue;
    int ret;

    if ((ret = cursor->get_key(cursor, key)) != 0)
        return (ret);
    return (cursor->get_value(cursor, desc, &pvalue, value));
}

int
wts_stat_get(WT_CURSOR *cursor, int32_t *key, const char **desc, int64_t *value)
{
    WTS_CALL(wts_stat_get_impl(cursor, key, desc, value));
}

void
wts_stat_set_key(WT_CURSOR *cursor, int32_t key)
{
    cursor->set_key(cursor, (int)key);
}
