#include "timer.h"

#include <stdlib.h>

#include "task.h"

static void heap_set(ursa__timers_t *tm, size_t i, ursa_task_t *t)
{
    tm->heap[i] = t;
    t->timer_idx = i;
}

static void heap_up(ursa__timers_t *tm, size_t i)
{
    ursa_task_t *t = tm->heap[i];
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (tm->heap[p]->timer_when <= t->timer_when)
            break;
        heap_set(tm, i, tm->heap[p]);
        i = p;
    }
    heap_set(tm, i, t);
}

static void heap_down(ursa__timers_t *tm, size_t i)
{
    ursa_task_t *t = tm->heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= tm->heap_len)
            break;
        if (c + 1 < tm->heap_len && tm->heap[c + 1]->timer_when < tm->heap[c]->timer_when)
            c++;
        if (t->timer_when <= tm->heap[c]->timer_when)
            break;
        heap_set(tm, i, tm->heap[c]);
        i = c;
    }
    heap_set(tm, i, t);
}

/* Puts t in the heap: false if it is full and cannot grow. */
static bool heap_push(ursa__timers_t *tm, ursa_task_t *t)
{
    if (tm->heap_len == tm->cap) {
        size_t cap = tm->cap ? tm->cap * 2 : 64;
        ursa_task_t **h = realloc(tm->heap, cap * sizeof *h);
        if (!h)
            return false;
        tm->heap = h;
        tm->cap = cap;
    }
    heap_set(tm, tm->heap_len++, t);
    heap_up(tm, t->timer_idx);
    return true;
}

static void heap_remove(ursa__timers_t *tm, ursa_task_t *t)
{
    size_t i = t->timer_idx;
    ursa_task_t *last = tm->heap[--tm->heap_len];
    if (i == tm->heap_len)
        return;
    heap_set(tm, i, last);
    heap_up(tm, i);
    heap_down(tm, last->timer_idx);
}

static void spill_push(ursa__timers_t *tm, ursa_task_t *t)
{
    t->timer_idx = URSA__TIMER_SPILLED;
    t->timer_prev = NULL;
    t->timer_next = tm->spill;
    if (tm->spill)
        tm->spill->timer_prev = t;
    tm->spill = t;
}

static void spill_remove(ursa__timers_t *tm, ursa_task_t *t)
{
    if (t->timer_prev)
        t->timer_prev->timer_next = t->timer_next;
    else
        tm->spill = t->timer_next;
    if (t->timer_next)
        t->timer_next->timer_prev = t->timer_prev;
}

void ursa__timer_arm(ursa__timers_t *tm, ursa_task_t *t, ursa_time_t when)
{
    t->timer_when = when;
    tm->len++;
    if (!heap_push(tm, t))
        spill_push(tm, t);
}

void ursa__timer_disarm(ursa__timers_t *tm, ursa_task_t *t)
{
    if (t->timer_idx == URSA__TIMER_NONE)
        return;
    if (t->timer_idx == URSA__TIMER_SPILLED)
        spill_remove(tm, t);
    else
        heap_remove(tm, t);
    t->timer_idx = URSA__TIMER_NONE;
    tm->len--;
}

/* Wakes the spilled timers that are due; moves the others into the heap
 * while it has (or can get) room. */
static void fire_spilled(ursa__timers_t *tm, ursa_time_t now)
{
    ursa_task_t *t = tm->spill;
    while (t) {
        ursa_task_t *next = t->timer_next;
        if (t->timer_when <= now) {
            ursa__timer_disarm(tm, t);
            ursa__task_wake(t);
        } else {
            spill_remove(tm, t);
            if (!heap_push(tm, t)) {
                spill_push(tm, t);
                return; /* still no memory: the rest stay spilled */
            }
        }
        t = next;
    }
}

void ursa__timers_fire(ursa__timers_t *tm, ursa_time_t now)
{
    while (tm->heap_len && tm->heap[0]->timer_when <= now) {
        ursa_task_t *t = tm->heap[0];
        ursa__timer_disarm(tm, t);
        ursa__task_wake(t);
    }
    if (tm->spill)
        fire_spilled(tm, now);
}

ursa_time_t ursa__timers_next(const ursa__timers_t *tm)
{
    ursa_time_t next = tm->heap_len ? tm->heap[0]->timer_when : URSA_NEVER;
    for (const ursa_task_t *t = tm->spill; t; t = t->timer_next)
        if (t->timer_when < next)
            next = t->timer_when;
    return next;
}

void ursa__timers_fini(ursa__timers_t *tm)
{
    free(tm->heap);
    tm->heap = NULL;
    tm->spill = NULL;
    tm->heap_len = tm->cap = tm->len = 0;
}
