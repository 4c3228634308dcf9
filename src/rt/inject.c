/* The runtime's inject queue (rt/inject.h). */
#include "inject.h"

#include "../core/spin.h"
#include "task.h"

void ursa__inject_push(ursa__inject_t *q, ursa_task_t *first, ursa_task_t *last,
                                     uint32_t n)
{
    last->rq_next = NULL;
    ursa__spin_lock(&q->lock);
    if (q->tail)
        q->tail->rq_next = first;
    else
        q->head = first;
    q->tail = last;
    /* relaxed: a hint (see ursa__inject_len); seq_cst fences order it
     * against sleeping workers (worker.c). */
    atomic_store_explicit(&q->len, ursa__inject_len(q) + n, memory_order_relaxed);
    ursa__spin_unlock(&q->lock);
}

ursa_task_t *ursa__inject_pop(ursa__inject_t *q, uint32_t max, uint32_t *n)
{
    *n = 0;
    if (!ursa__inject_len(q))
        return NULL;
    ursa__spin_lock(&q->lock);
    ursa_task_t *first = q->head, *last = NULL;
    uint32_t k = 0;
    for (ursa_task_t *t = first; t && k < max; t = t->rq_next) {
        last = t;
        k++;
    }
    if (last) {
        q->head = last->rq_next;
        if (!q->head)
            q->tail = NULL;
        last->rq_next = NULL;
        /* relaxed: as in push. */
        atomic_store_explicit(&q->len, ursa__inject_len(q) - k, memory_order_relaxed);
    }
    ursa__spin_unlock(&q->lock);
    *n = k;
    return last ? first : NULL;
}

