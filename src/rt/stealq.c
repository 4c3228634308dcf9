/* The stealable run queue's slow paths: overflow to the inject queue and
 * the thief's side. The algorithm and its invariants: stealq.h. */
#include "stealq.h"

#include "task.h"

ursa_task_t *ursa__stealq_overflow(ursa__stealq_t *q, ursa_task_t *t, uint32_t *n)
{
    const uint32_t half = URSA__STEALQ_CAP / 2;
    /* acquire: as in push. */
    uint64_t head = atomic_load_explicit(&q->head, memory_order_acquire);
    uint32_t s = ursa__stealq_steal(head), r = ursa__stealq_real(head);
    /* relaxed: only we write tail. */
    uint32_t tail = atomic_load_explicit(&q->tail, memory_order_relaxed);
    t->rq_next = NULL;
    *n = 1;
    /* A thief is copying (it will free room soon), or the queue is no
     * longer full (a thief finished): only t moves. */
    if (s != r || tail - r < half)
        return t;
    /* acq_rel: takes [r, r + half) as a pop of each would (I4). */
    if (!atomic_compare_exchange_strong_explicit(&q->head, &head,
                                                 ursa__stealq_pack(r + half, r + half),
                                                 memory_order_acq_rel, memory_order_acquire))
        return t; /* a thief came first: it freed room */
    ursa_task_t *first = NULL, **link = &first;
    for (uint32_t i = 0; i < half; i++) {
        /* relaxed: our own slots. */
        ursa_task_t *x = atomic_load_explicit(&q->buf[(r + i) & URSA__STEALQ_MASK],
                                              memory_order_relaxed);
        *link = x;
        link = &x->rq_next;
    }
    *link = t;
    *n = half + 1;
    return first;
}

uint32_t ursa__stealq_claim(ursa__stealq_t *src, uint32_t *first)
{
    /* acquire: the owner's and other thieves' CASes before ours. */
    uint64_t head = atomic_load_explicit(&src->head, memory_order_acquire);
    for (;;) {
        uint32_t s = ursa__stealq_steal(head), r = ursa__stealq_real(head);
        if (s != r)
            return 0; /* another thief is copying (I3) */
        /* acquire: the slots below tail are written (pairs with push). */
        uint32_t tail = atomic_load_explicit(&src->tail, memory_order_acquire);
        int32_t avail = (int32_t)(tail - r);
        if (avail <= 0)
            return 0;
        uint32_t n = (uint32_t)avail - (uint32_t)avail / 2;
        if (n > URSA__STEALQ_CAP / 2)
            n = URSA__STEALQ_CAP / 2;
        /* acq_rel: takes [r, r + n) (I4); steal stays at r while we copy. */
        if (atomic_compare_exchange_weak_explicit(&src->head, &head,
                                                  ursa__stealq_pack(s, r + n),
                                                  memory_order_acq_rel, memory_order_acquire)) {
            *first = r;
            return n;
        }
    }
}

void ursa__stealq_release(ursa__stealq_t *src)
{
    /* relaxed: the CAS validates it. */
    uint64_t head = atomic_load_explicit(&src->head, memory_order_relaxed);
    /* release: our reads of the claimed slots happen before the owner
     * reuses them (its push loads head with acquire); I3: only we move
     * steal now. */
    while (!atomic_compare_exchange_weak_explicit(
        &src->head, &head,
        ursa__stealq_pack(ursa__stealq_real(head), ursa__stealq_real(head)),
        memory_order_acq_rel, memory_order_relaxed)) {
    }
}

uint32_t ursa__stealq_steal_into(ursa__stealq_t *src, ursa__stealq_t *dst)
{
    /* relaxed: only we (dst's owner) write dst's tail. */
    uint32_t tail = atomic_load_explicit(&dst->tail, memory_order_relaxed);
    /* acquire: as in push; a claim of CAP/2 must fit (I2). */
    uint64_t dh = atomic_load_explicit(&dst->head, memory_order_acquire);
    if (tail - ursa__stealq_steal(dh) > URSA__STEALQ_CAP / 2)
        return 0;
    uint32_t first, n = ursa__stealq_claim(src, &first);
    if (n == 0)
        return 0;
    for (uint32_t i = 0; i < n; i++) {
        /* relaxed: claim's acquire load of src's tail made them visible. */
        ursa_task_t *t = atomic_load_explicit(&src->buf[(first + i) & URSA__STEALQ_MASK],
                                              memory_order_relaxed);
        /* relaxed: published by the release store of dst's tail below. */
        atomic_store_explicit(&dst->buf[(tail + i) & URSA__STEALQ_MASK], t,
                              memory_order_relaxed);
    }
    ursa__stealq_release(src);
    /* release: as in push. */
    atomic_store_explicit(&dst->tail, tail + n, memory_order_release);
    return n;
}
