#include "timer.h"

#include <stdint.h>
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
        if (c >= tm->len)
            break;
        if (c + 1 < tm->len && tm->heap[c + 1]->timer_when < tm->heap[c]->timer_when)
            c++;
        if (t->timer_when <= tm->heap[c]->timer_when)
            break;
        heap_set(tm, i, tm->heap[c]);
        i = c;
    }
    heap_set(tm, i, t);
}

void ursa__timer_arm(ursa__timers_t *tm, ursa_task_t *t, ursa_time_t when)
{
    if (tm->len == tm->cap) {
        size_t cap = tm->cap ? tm->cap * 2 : 64;
        ursa_task_t **h = realloc(tm->heap, cap * sizeof *h);
        if (!h) {
            /* No room to remember the deadline: poll instead, by waking at
             * once; the block loop re-checks the clock. */
            ursa__task_wake(t);
            return;
        }
        tm->heap = h;
        tm->cap = cap;
    }
    t->timer_when = when;
    tm->heap[tm->len] = t;
    t->timer_idx = tm->len++;
    heap_up(tm, t->timer_idx);
}

void ursa__timer_disarm(ursa__timers_t *tm, ursa_task_t *t)
{
    size_t i = t->timer_idx;
    if (i == SIZE_MAX)
        return;
    t->timer_idx = SIZE_MAX;
    ursa_task_t *last = tm->heap[--tm->len];
    if (i == tm->len)
        return;
    heap_set(tm, i, last);
    heap_up(tm, i);
    heap_down(tm, last->timer_idx);
}

void ursa__timers_fire(ursa__timers_t *tm, ursa_time_t now)
{
    while (tm->len && tm->heap[0]->timer_when <= now) {
        ursa_task_t *t = tm->heap[0];
        ursa__timer_disarm(tm, t);
        ursa__task_wake(t);
    }
}

ursa_time_t ursa__timers_next(const ursa__timers_t *tm)
{
    return tm->heap[0]->timer_when;
}

void ursa__timers_fini(ursa__timers_t *tm)
{
    free(tm->heap);
    tm->heap = NULL;
    tm->len = tm->cap = 0;
}
