/* The watch's senders: store a new value under the value lock and wake
 * the receivers that wait for a change. */
#include <string.h>

#include "value_lock.h"

static int store(ursa_watch_t *w, const void *value, void *old)
{
    int rc = ursa__watch_write_lock(w);
    if (rc)
        return rc;
    if (old)
        memcpy(old, w->value, w->elem_size);
    memcpy(w->value, value, w->elem_size);
    ursa__watch_bump_version(w);
    ursa__watch_write_unlock(w, true);
    return 0;
}

int ursa_watch_send(ursa_watch_tx_t *tx, const void *value)
{
    if (!tx || !value)
        return -EINVAL;
    /* acquire: a receiver drop seen here happened; a racing one may not be. */
    if (atomic_load_explicit(&tx->w->rx_count, memory_order_acquire) == 0)
        return -EPIPE;
    return store(tx->w, value, NULL);
}

int ursa_watch_send_replace(ursa_watch_tx_t *tx, const void *value, void *old)
{
    if (!tx || !value)
        return -EINVAL;
    return store(tx->w, value, old);
}

int ursa_watch_send_modify(ursa_watch_tx_t *tx, ursa_watch_modify_t fn, void *ctx)
{
    if (!tx || !fn)
        return -EINVAL;
    ursa_watch_t *w = tx->w;
    int rc = ursa__watch_write_lock(w);
    if (rc)
        return rc;
    bool changed = fn(w->value, ctx);
    if (changed)
        ursa__watch_bump_version(w);
    ursa__watch_write_unlock(w, changed);
    return changed ? 1 : 0;
}
