/* The mpsc channel's unbounded storage: a list of blocks of `bslots`
 * slots (see "Storage" in mpsc.h). Senders append blocks as they walk
 * past the end (grow) and move block_tail past fully written ones; the
 * receiver recycles a block once no sender can still hold it. */
#include <stdlib.h>

#include "mpsc.h"

ursa__mpsc_blk_t *ursa__mpsc_blk_new(ursa_mpsc_t *ch, uint64_t start)
{
    size_t sz = sizeof(ursa__mpsc_blk_t) + ch->bslots * ch->stride;
    ursa__mpsc_blk_t *b = malloc(sz);
    if (!b)
        return NULL;
    atomic_init(&b->next, NULL);
    b->start = start;
    for (unsigned i = 0; i < 32; i++)
        atomic_init(&b->ready[i], 0);
    atomic_init(&b->observed, 0);
    atomic_init(&b->released, 0);
    /* relaxed: a statistic. */
    atomic_fetch_add_explicit(&ch->mem, sz, memory_order_relaxed);
    return b;
}

void ursa__mpsc_blk_free(ursa_mpsc_t *ch, ursa__mpsc_blk_t *b)
{
    /* relaxed: a statistic. */
    atomic_fetch_sub_explicit(&ch->mem, sizeof(ursa__mpsc_blk_t) + ch->bslots * ch->stride,
                              memory_order_relaxed);
    free(b);
}

ursa__mpsc_blk_t *ursa__mpsc_grow(ursa_mpsc_t *ch, ursa__mpsc_blk_t *b)
{
    ursa__mpsc_blk_t *nb = ursa__mpsc_blk_new(ch, b->start + ch->bslots);
    if (!nb) {
        ursa__report("mpsc: out of memory growing an unbounded channel", NULL, true);
        abort();
    }
    ursa__mpsc_blk_t *exp = NULL;
    /* acq_rel: publishes nb's fields; on failure acquire the winner's. */
    if (atomic_compare_exchange_strong_explicit(&b->next, &exp, nb, memory_order_acq_rel,
                                                memory_order_acquire))
        return nb;
    ursa__mpsc_blk_free(ch, nb);
    return exp;
}

/* Unbounded: every slot of b is written. Only senders walking past a
 * block ask (once per block crossed), so publication itself is a plain
 * store per slot instead of an RMW on a shared bitmap. */
bool ursa__mpsc_all_written(ursa_mpsc_t *ch, ursa__mpsc_blk_t *b)
{
    for (uint64_t i = 0; i < ch->bslots; i++)
        /* acquire: pairs with the senders' release stores. */
        if (!atomic_load_explicit(&b->ready[i], memory_order_acquire))
            return false;
    return true;
}

static void recycle(ursa_mpsc_t *ch, ursa__mpsc_blk_t *f)
{
    /* relaxed: no sender can reach f until the release CAS below links it. */
    for (unsigned i = 0; i < 32; i++)
        atomic_store_explicit(&f->ready[i], 0, memory_order_relaxed);
    atomic_store_explicit(&f->released, 0, memory_order_relaxed);
    atomic_store_explicit(&f->next, NULL, memory_order_relaxed);
    /* acquire: the blocks' fields; only we unlink blocks, so the walk is safe. */
    ursa__mpsc_blk_t *last = atomic_load_explicit(&ch->block_tail, memory_order_acquire);
    for (int tries = 0; tries < 3; tries++) {
        ursa__mpsc_blk_t *n;
        while ((n = atomic_load_explicit(&last->next, memory_order_acquire)))
            last = n;
        f->start = last->start + ch->bslots;
        ursa__mpsc_blk_t *exp = NULL;
        /* release: f's reset fields reach the sender that walks into it. */
        if (atomic_compare_exchange_strong_explicit(&last->next, &exp, f, memory_order_release,
                                                    memory_order_acquire))
            return;
        last = exp;
    }
    ursa__mpsc_blk_free(ch, f);
}

void ursa__mpsc_reclaim(ursa_mpsc_t *ch, uint64_t head)
{
    while (ch->free_head != ch->head_block) {
        ursa__mpsc_blk_t *f = ch->free_head;
        /* acquire: observed is valid. */
        if (!atomic_load_explicit(&f->released, memory_order_acquire) ||
            atomic_load_explicit(&f->observed, memory_order_relaxed) > head)
            return;
        ch->free_head = atomic_load_explicit(&f->next, memory_order_relaxed);
        recycle(ch, f);
    }
}
