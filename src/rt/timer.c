#include "timer.h"

#include <stdlib.h>

#include "../core/spin.h"
#include "task.h"

/* The number of timers armed, changed under the lock. */
static void len_add(ursa__timers_t *tm, long d)
{
    /* relaxed: under the lock; readers without it take it as a hint. */
    atomic_store_explicit(&tm->len, atomic_load_explicit(&tm->len, memory_order_relaxed) + (size_t)d,
                          memory_order_relaxed);
}

static void heap_set(ursa__timers_t *tm, uint32_t i, ursa__timer_t e)
{
    tm->heap[i] = e;
    e.task->timer_idx = i;
}

/* Fills the hole at i with e, moving the hole up past later deadlines. */
static void sift_up(ursa__timers_t *tm, uint32_t i, ursa__timer_t e)
{
    while (i > 0) {
        uint32_t p = (i - 1) / 2;
        if (tm->heap[p].when <= e.when)
            break;
        heap_set(tm, i, tm->heap[p]);
        i = p;
    }
    heap_set(tm, i, e);
}

/* Fills the hole at i with e, moving the hole down past earlier deadlines. */
static void sift_down(ursa__timers_t *tm, uint32_t i, ursa__timer_t e)
{
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= tm->heap_len)
            break;
        if (c + 1 < tm->heap_len && tm->heap[c + 1].when < tm->heap[c].when)
            c++;
        if (e.when <= tm->heap[c].when)
            break;
        heap_set(tm, i, tm->heap[c]);
        i = c;
    }
    heap_set(tm, i, e);
}

/* Puts e in the heap: false if it is full and cannot grow. */
static bool heap_push(ursa__timers_t *tm, ursa__timer_t e)
{
    if (tm->heap_len == tm->cap) {
        if (tm->cap >= URSA__TIMER_SPILLED / 2) /* indices stay below the markers */
            return false;
        uint32_t cap = tm->cap ? tm->cap * 2 : 64;
        ursa__timer_t *h = realloc(tm->heap, (size_t)cap * sizeof *h);
        if (!h)
            return false;
        tm->heap = h;
        tm->cap = cap;
    }
    sift_up(tm, tm->heap_len++, e);
    return true;
}

static void heap_remove(ursa__timers_t *tm, uint32_t i)
{
    uint32_t n = --tm->heap_len;
    if (i == n)
        return;
    /* The last entry fills the hole, up or down from there. */
    ursa__timer_t last = tm->heap[n];
    if (i > 0 && last.when < tm->heap[(i - 1) / 2].when)
        sift_up(tm, i, last);
    else
        sift_down(tm, i, last);
}

static void spill_push(ursa__timers_t *tm, ursa__timer_spill_t *s)
{
    s->timer.task->timer_idx = URSA__TIMER_SPILLED;
    s->next = tm->spill;
    tm->spill = s;
}

/* Unlinks t's room from the spill list (a scan: spilling is the rare,
 * out-of-memory path). */
static ursa__timer_spill_t *spill_remove(ursa__timers_t *tm, const ursa_task_t *t)
{
    ursa__timer_spill_t **p = &tm->spill;
    while ((*p)->timer.task != t)
        p = &(*p)->next;
    ursa__timer_spill_t *s = *p;
    *p = s->next;
    return s;
}

void ursa__timer_arm(ursa__timers_t *tm, ursa_task_t *t, ursa_time_t when,
                     ursa__timer_spill_t *room)
{
    ursa__spin_lock(&tm->lock);
    len_add(tm, 1);
    ursa__timer_t e = {when, t};
    if (!heap_push(tm, e)) {
        room->timer = e;
        spill_push(tm, room);
    }
    ursa__spin_unlock(&tm->lock);
}

/* Under the lock. */
static void disarm_locked(ursa__timers_t *tm, ursa_task_t *t)
{
    uint32_t i = t->timer_idx;
    if (i == URSA__TIMER_NONE)
        return;
    if (i == URSA__TIMER_SPILLED)
        spill_remove(tm, t);
    else
        heap_remove(tm, i);
    t->timer_idx = URSA__TIMER_NONE;
    len_add(tm, -1);
}

void ursa__timer_disarm(ursa__timers_t *tm, ursa_task_t *t)
{
    ursa__spin_lock(&tm->lock);
    disarm_locked(tm, t);
    ursa__spin_unlock(&tm->lock);
}

/* Wakes the spilled timers that are due; moves the others into the heap
 * while it has (or can get) room. Under the lock (which also keeps every
 * room alive: its task's disarm waits for it). */
static void fire_spilled(ursa__timers_t *tm, ursa_time_t now)
{
    ursa__timer_spill_t *s = tm->spill;
    while (s) {
        ursa__timer_spill_t *next = s->next;
        ursa_task_t *t = s->timer.task;
        if (s->timer.when <= now) {
            disarm_locked(tm, t);
            ursa__task_wake(t); /* under the lock: see timer.h */
        } else {
            spill_remove(tm, t);
            if (!heap_push(tm, s->timer)) {
                spill_push(tm, s);
                return; /* still no memory: the rest stay spilled */
            }
        }
        s = next;
    }
}

void ursa__timers_fire(ursa__timers_t *tm, ursa_time_t now)
{
    if (!ursa__timers_any(tm))
        return;
    ursa__spin_lock(&tm->lock);
    while (tm->heap_len && tm->heap[0].when <= now) {
        ursa_task_t *t = tm->heap[0].task;
        disarm_locked(tm, t);
        ursa__task_wake(t); /* under the lock: see timer.h */
    }
    if (tm->spill)
        fire_spilled(tm, now);
    ursa__spin_unlock(&tm->lock);
}

ursa_time_t ursa__timers_next(ursa__timers_t *tm)
{
    ursa__spin_lock(&tm->lock);
    ursa_time_t next = tm->heap_len ? tm->heap[0].when : URSA_NEVER;
    for (const ursa__timer_spill_t *s = tm->spill; s; s = s->next)
        if (s->timer.when < next)
            next = s->timer.when;
    ursa__spin_unlock(&tm->lock);
    return next;
}

void ursa__timers_fini(ursa__timers_t *tm)
{
    free(tm->heap);
    tm->heap = NULL;
    tm->spill = NULL;
    tm->heap_len = tm->cap = 0;
    atomic_store_explicit(&tm->len, 0, memory_order_relaxed); /* relaxed: nobody else now */
}
