/* The lease table: one row per lease name, never deleted, so its fence only
 * grows. A row is free when its owner is '' or its expires_at has passed
 * by the server's clock; the client's clock never reaches the table. */
#include "sql.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *format(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (s) {
        va_start(ap, fmt);
        vsnprintf(s, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    return s;
}

int ursa__lease_sql_build(ursa__lease_sql_t *q, const char *t, bool notify,
                          ursa_time_t stmt_timeout)
{
    long long ms = stmt_timeout / URSA_MSEC(1);
    if (ms < 1)
        ms = 1;
    /* An abandoned transaction (a guarded write cut off mid-way) must not
     * keep the lease row locked for long. */
    long long idle_ms = ms * 4;
    /* synchronous_commit on whatever the server's default: a grant that
     * was confirmed but not yet flushed would be lost in a server crash,
     * and the next grant would reuse its fence. */
    q->setup =
        format("SET statement_timeout = %lld; SET idle_in_transaction_session_timeout = %lld; "
               "SET synchronous_commit = on; "
               "CREATE TABLE IF NOT EXISTS \"%s\" (name text PRIMARY KEY, "
               "owner text NOT NULL DEFAULT '', fence bigint NOT NULL DEFAULT 0, "
               "expires_at timestamptz NOT NULL DEFAULT '-infinity'); %s%s%s"
               "SELECT backend_start::text FROM pg_stat_activity WHERE pid = pg_backend_pid()",
               ms, idle_ms, t, notify ? "LISTEN \"" : "", notify ? t : "", notify ? "\"; " : "");
    /* Granted if the row is new, free, expired by the server's clock, or
     * already ours: a retry after a lost reply carries the same token and
     * finds its own grant (same fence). Otherwise the fence grows by one.
     * `prev` reads the row as it was before, for the holder's time left. */
    q->acquire = format(
        "WITH prev AS (SELECT expires_at FROM \"%s\" WHERE name = $1), "
        "got AS (INSERT INTO \"%s\" AS l (name, owner, fence, expires_at) "
        "VALUES ($1, $2, 1, clock_timestamp() + $3::bigint * interval '1 microsecond') "
        "ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, "
        "fence = CASE WHEN l.owner = excluded.owner THEN l.fence ELSE l.fence + 1 END, "
        "expires_at = excluded.expires_at "
        "WHERE l.owner = excluded.owner OR l.owner = '' OR l.expires_at <= clock_timestamp() "
        "RETURNING fence) "
        "SELECT (SELECT fence FROM got), "
        "(SELECT greatest(0, ceil(extract(epoch FROM expires_at - clock_timestamp()) * 1000000))"
        "::bigint FROM prev)",
        t, t);
    q->renew = format(
        "UPDATE \"%s\" SET expires_at = clock_timestamp() + $4::bigint * interval '1 microsecond' "
        "WHERE name = $1 AND owner = $2 AND fence = $3::bigint AND expires_at > clock_timestamp()",
        t);
    if (notify)
        q->release =
            format("WITH r AS (UPDATE \"%s\" SET owner = '', expires_at = clock_timestamp() "
                   "WHERE name = $1 AND owner = $2 AND ($3::bigint IS NULL OR fence = $3) "
                   "RETURNING name) SELECT pg_notify('%s', name) FROM r",
                   t, t);
    else
        q->release = format("UPDATE \"%s\" SET owner = '', expires_at = clock_timestamp() "
                            "WHERE name = $1 AND owner = $2 AND ($3::bigint IS NULL OR fence = $3)",
                            t);
    q->check = format("SELECT 1 FROM \"%s\" WHERE name = $1 AND owner = $2 AND fence = $3::bigint "
                      "AND expires_at > clock_timestamp() FOR SHARE",
                      t);
    if (!q->setup || !q->acquire || !q->renew || !q->release || !q->check) {
        ursa__lease_sql_free(q);
        return -ENOMEM;
    }
    return 0;
}

void ursa__lease_sql_free(ursa__lease_sql_t *q)
{
    free(q->setup);
    free(q->acquire);
    free(q->renew);
    free(q->release);
    free(q->check);
    memset(q, 0, sizeof *q);
}

bool ursa__lease_table_ok(const char *t)
{
    size_t n = strlen(t);
    if (n == 0 || n > URSA__LEASE_TABLE_MAX || (t[0] >= '0' && t[0] <= '9'))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((t[i] >= 'a' && t[i] <= 'z') || (t[i] >= '0' && t[i] <= '9') || t[i] == '_'))
            return false;
    return true;
}

bool ursa__lease_owner_ok(const char *o)
{
    size_t n = strlen(o);
    if (n == 0 || n > URSA__LEASE_OWNER_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (o[i] < 0x20 || o[i] > 0x7e)
            return false;
    return true;
}

/* Length of the UTF-8 sequence at s (0: malformed, overlong, a surrogate,
 * or past U+10FFFF). */
static size_t utf8_seq(const unsigned char *s)
{
    unsigned c = s[0];
    if (c < 0x80)
        return 1;
    size_t len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 ? 2 : 0;
    if (!len || c > 0xf4)
        return 0;
    unsigned cp = c & (0x3f >> (len - 1));
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    static const unsigned min[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

bool ursa__lease_name_ok(const char *name, size_t max)
{
    const unsigned char *s = (const unsigned char *)name;
    size_t n = strlen(name);
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n;) {
        if (s[i] < 0x20 || s[i] == 0x7f)
            return false; /* a control character in a name is a bug */
        size_t k = utf8_seq(s + i);
        if (!k)
            return false;
        i += k;
    }
    return true;
}
