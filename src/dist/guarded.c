/* The guarded write: the user's statement and the fence check in one
 * transaction. The check takes a share lock on the lease row, which a
 * grant to anyone else (an UPDATE of that row) must wait for: every write
 * that passed the check commits before the next owner is granted. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"

#define GUARDED_PARAMS_MAX 64

/* One statement of the transaction; *r kept only if r is not NULL. */
static int step(ursa_lease_store_t *s, const char *sql, int n, const char *const *params,
                ursa_time_t deadline, PGresult **keep)
{
    PGresult *r;
    int rc = ursa__pg_exec(&s->pg, sql, n, params, deadline, &r);
    if (keep)
        *keep = r;
    else
        PQclear(r);
    return rc;
}

typedef struct guarded {
    const char *sql;
    int nparams;
    const char *const *params;
    int64_t *rows;
} guarded_t;

/* BEGIN, check, statement, COMMIT. Caller holds conn, connection ready. */
static int run(ursa_lease_store_t *s, struct ursa__lease *rec, void *ctx, ursa_time_t deadline)
{
    const guarded_t *g = ctx;
    int rc = step(s, "BEGIN", 0, NULL, deadline, NULL);
    if (rc)
        return rc;
    char fence[24];
    snprintf(fence, sizeof fence, "%lld", (long long)rec->fence);
    const char *check[] = {rec->name, rec->token, fence};
    PGresult *r;
    rc = step(s, s->sql.check, 3, check, deadline, &r);
    bool held = rc == 0 && PQntuples(r) == 1;
    PQclear(r);
    if (rc == 0 && !held) {
        ursa__lease_mark_lost(rec);
        rc = -ENOLCK;
    }
    if (rc == 0) {
        rc = step(s, g->sql, g->nparams, g->params, deadline, &r);
        if (rc == 0 && g->rows)
            *g->rows = strtoll(PQcmdTuples(r), NULL, 10);
        PQclear(r);
        if (rc == 0 && PQtransactionStatus(s->pg.conn) != PQTRANS_INTRANS) {
            /* It ended the transaction (and so the check's row lock). */
            ursa__pg_set_err(&s->pg, "the guarded statement must not end the transaction");
            rc = -EIO;
        }
    }
    if (rc == 0)
        return step(s, "COMMIT", 0, NULL, deadline, NULL);
    if (rc == -ENOLCK || rc == -EIO) /* the connection is fine: end it now */
        (void)step(s, "ROLLBACK", 0, NULL, deadline, NULL);
    return rc;
}

int ursa_lease_guarded_exec(ursa_lease_t *l, const char *sql, int nparams,
                            const char *const *params, int64_t *rows, ursa_time_t deadline)
{
    if (!l || !l->rec || !sql || nparams < 0 || nparams > GUARDED_PARAMS_MAX ||
        (nparams > 0 && !params))
        return -EINVAL;
    if (rows)
        *rows = 0;
    guarded_t g = {sql, nparams, params, rows};
    return ursa__lease_on_conn(l, deadline, run, &g);
}
