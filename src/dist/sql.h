/* The lease table and the statements on it, and the checks on the names
 * that go into them. */
#ifndef URSA_DIST_SQL_H
#define URSA_DIST_SQL_H

#include <stdbool.h>
#include <stddef.h>
#include <ursa/base.h>

#define URSA__LEASE_TABLE_MAX 48
#define URSA__LEASE_OWNER_MAX 64

/* Statement texts for one table. Parameters, all text:
 *   acquire  $1 name, $2 owner token, $3 ttl in µs
 *            -> one row: fence (NULL: not granted), the holder's time left
 *               in µs by the server's clock (NULL: no row before)
 *   renew    $1 name, $2 token, $3 fence, $4 ttl in µs -> rows changed
 *   release  $1 name, $2 token, $3 fence or NULL (any) -> rows released
 *   check    $1 name, $2 token, $3 fence -> one row if held; locks it
 *            until the transaction ends
 * setup is a simple-protocol script for each new connection; its last
 * result is the backend's start time. */
typedef struct ursa__lease_sql {
    char *setup, *acquire, *renew, *release, *check;
} ursa__lease_sql_t;

/* 0 or -ENOMEM. table must have passed ursa__lease_table_ok. */
int ursa__lease_sql_build(ursa__lease_sql_t *q, const char *table, bool notify,
                          ursa_time_t stmt_timeout);
void ursa__lease_sql_free(ursa__lease_sql_t *q);

/* [a-z_][a-z0-9_]*, 1..URSA__LEASE_TABLE_MAX bytes. */
bool ursa__lease_table_ok(const char *table);
/* Printable ASCII, 1..URSA__LEASE_OWNER_MAX bytes. */
bool ursa__lease_owner_ok(const char *owner);
/* Well-formed UTF-8 without control characters, 1..max bytes. */
bool ursa__lease_name_ok(const char *name, size_t max);

#endif
