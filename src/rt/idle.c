/* A worker with nothing to run: it takes work from the inject queue or
 * steals it from another worker's stealable queue, watches for work a
 * while if the spin policy allows, and otherwise sleeps in its ring. And
 * the other side: waking one sleeping worker when work that others could
 * take is queued, and kicking a sleeping worker whose inbox got a task.
 *
 * Searching. An idle worker that looks for work to steal counts itself in
 * rt->nsearching; at most half the awake workers search at once, so a
 * burst of work does not set every idle worker on every queue. A worker
 * that queues work others could take (more than the one task it runs
 * next) wakes one sleeping worker, unless a worker is searching already:
 * that one will find it. A searcher that finds work and was the last one
 * wakes another, so the work spreads one worker at a time (Go's wakep,
 * Tokio's notify_parked).
 *
 * No lost wake. Going to sleep: stop searching (an RMW), sleeping = how,
 * seq_cst fence, look at the inbox, the inject queue and the others'
 * queues. Queuing work: publish it, seq_cst fence, read nsearching and
 * the sleeping flags. Either the sleeper sees the work or the notifier sees
 * it asleep (or someone searching who will see the work); the exchange of
 * sleeping (how it sleeps) -> 0 elects the one kicker of each sleep, which
 * kicks the way the sleeper said (a futex or its ring). */
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "../core/clock.h"
#include "../core/spin.h"
#include "runtime.h"
#include "task.h"
#include "worker.h"

/* Pauses between two looks at the other queues while searching. */
#define URSA__IDLE_LOOK_PAUSES 32

static void kick_now(ursa__worker_t *v, uint32_t how)
{
    if (how == URSA__ASLEEP_FUTEX)
        syscall(SYS_futex, &v->sleeping, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
    else
        ursa__ring_kick(&v->ring);
}

/* Sends the kicks w deferred (owner thread). */
static void send_kicks(ursa__worker_t *w);

void ursa__worker_kick(ursa__worker_t *v, uint32_t how)
{
    if (v->rt->cfg.deterministic)
        return; /* one thread runs every worker: nobody sleeps */
    /* The scheduler's own wakes (timers, I/O completions, the inbox) go
     * out together at the end of its turn, before it runs a task
     * (run_task). A task's go out now: nothing bounds how long it runs
     * before it waits, and until the kick the woken task's worker sleeps
     * (a producer that computes and sends, an unlocker that locks again at
     * once: their wakes waited for their end; regression
     * test_rt_kick_from_a_task_that_never_waits_goes_out). */
    ursa__worker_t *cur = ursa__cur_worker;
    if (cur && cur != v && cur->rt == v->rt && cur->nkicks < URSA__KICKS_MAX) {
        cur->kick_how[cur->nkicks] = (uint8_t)how;
        cur->kicks[cur->nkicks++] = v;
        if (cur->current)
            send_kicks(cur);
        return;
    }
    kick_now(v, how);
}

bool ursa__worker_rouse(ursa__worker_t *v)
{
    /* relaxed: the caller's seq_cst fence orders this after what it
     * published; the exchange elects one kicker per sleep. */
    if (!atomic_load_explicit(&v->sleeping, memory_order_relaxed))
        return false;
    uint32_t how = atomic_exchange_explicit(&v->sleeping, URSA__AWAKE, memory_order_relaxed);
    if (how == URSA__AWAKE)
        return false;
    if (how == URSA__ASLEEP_HOSTED)
        /* Its host stored our word and its own before its seq_cst fence;
         * our caller's fence came after it (we saw our word), so this
         * look sees the host's word too. */
        return ursa__worker_rouse(v->host);
    /* relaxed: a measurement, read by the sleeper once awake (a stamp it
     * misses is cleared by its next sleep_begin). */
    atomic_store_explicit(&v->kicked_at, ursa__mono_now(), memory_order_relaxed);
    ursa__worker_kick(v, how);
    return true;
}

void ursa__worker_notify(ursa_rt_t *rt, ursa__worker_t *self)
{
    /* seq_cst fence: Dekker with sleep_begin (see the top of the file). */
    atomic_thread_fence(memory_order_seq_cst);
    /* relaxed: ordered by the fence. */
    if (atomic_load_explicit(&rt->nsearching, memory_order_relaxed))
        return; /* a searcher will find it */
    unsigned n = rt->nworkers, start = self ? (unsigned)self->index + 1 : 0;
    for (unsigned i = 0; i < n; i++) {
        ursa__worker_t *v = &rt->workers[(start + i) % n];
        if (v != self && ursa__worker_rouse(v))
            return;
    }
}

void ursa__worker_flush(ursa__worker_t *w)
{
    if (w->notify) {
        w->notify = false;
        ursa__worker_notify(w->rt, w);
    }
    send_kicks(w);
}

static void send_kicks(ursa__worker_t *w)
{
    /* One submit carries every MSG_RING kick of the turn; a ring sleeper
     * that cannot take one (no ring) gets its eventfd written, a futex
     * sleeper its FUTEX_WAKE. */
    unsigned n = w->nkicks, sent = 0;
    ursa__worker_t *via_ring[URSA__KICKS_MAX];
    ursa__ring_t *own = &w->host->ring; /* this thread's ring */
    for (unsigned i = 0; i < n; i++) {
        ursa__worker_t *v = w->kicks[i];
        if (w->kick_how[i] == URSA__ASLEEP_RING && ursa__ring_msg(own, &v->ring))
            via_ring[sent++] = v;
        else
            kick_now(v, w->kick_how[i]);
    }
    w->nkicks = 0;
    if (!sent)
        return;
    ursa__ring_submit(own);
    for (unsigned i = 0; i < sent; i++)
        ursa__ring_msg_done(&via_ring[i]->ring);
}

/* ---- finding work ---- */

/* Takes a fair share of the inject queue into w's queues. */
static bool take_inject(ursa__worker_t *w)
{
    ursa_rt_t *rt = w->rt;
    uint32_t len = ursa__inject_len(&rt->inject);
    if (!len)
        return false;
    uint32_t max = len / rt->nhosts + 1, n; /* a share per thread */
    if (max > URSA__STEALQ_CAP / 2)
        max = URSA__STEALQ_CAP / 2;
    ursa_task_t *t = ursa__inject_pop(&rt->inject, max, &n);
    if (!t)
        return false;
    while (t) {
        ursa_task_t *next = t->rq_next;
        t->worker = w;
        if (t->owner == URSA__NO_OWNER)
            ursa__worker_adopt(w, t);
        ursa__worker_queue(w, t);
        t = next;
    }
    return true;
}

/* Whether another worker's stealable queue holds at least min tasks. */
static bool others_have(ursa__worker_t *w, uint32_t min)
{
    ursa_rt_t *rt = w->rt;
    for (unsigned i = 0; i < rt->nworkers; i++)
        if (&rt->workers[i] != w && ursa__stealq_len(&rt->workers[i].lq) >= min)
            return true;
    return false;
}

/* Steals about half of one other worker's stealable queue. */
static bool steal(ursa__worker_t *w)
{
    ursa_rt_t *rt = w->rt;
    unsigned n = rt->nworkers, start = ((unsigned)w->index + 1 + w->tick) % n;
    for (unsigned i = 0; i < n; i++) {
        ursa__worker_t *v = &rt->workers[(start + i) % n];
        if (v != w && ursa__stealq_steal_into(&v->lq, &w->lq))
            return true;
    }
    return false;
}

/* Whether a worker of another thread than w's is awake, and so may hand
 * w work. */
static bool other_awake(ursa__worker_t *w)
{
    ursa_rt_t *rt = w->rt;
    for (unsigned i = 0; i < rt->nworkers; i++)
        /* relaxed: a hint for the spin policy. */
        if (rt->workers[i].host != w->host &&
            !atomic_load_explicit(&rt->workers[i].sleeping, memory_order_relaxed))
            return true;
    return false;
}


static bool start_searching(ursa__worker_t *w)
{
    if (w->searching)
        return true;
    ursa_rt_t *rt = w->rt;
    /* relaxed: hints; a notifier that misses our count kicks a sleeper
     * for nothing, which is harmless. */
    unsigned awake = rt->nworkers - atomic_load_explicit(&rt->nsleeping, memory_order_relaxed);
    if (2 * atomic_load_explicit(&rt->nsearching, memory_order_relaxed) >= awake)
        return false;
    atomic_fetch_add_explicit(&rt->nsearching, 1, memory_order_relaxed);
    w->searching = true;
    return true;
}

void ursa__worker_found_work(ursa__worker_t *w)
{
    if (!w->searching)
        return;
    w->searching = false;
    /* seq_cst: part of the Dekker (see the top). The last searcher to find
     * work wakes another: there may be more, queued by a notifier that saw
     * us searching and left it to us. */
    if (atomic_fetch_sub_explicit(&w->rt->nsearching, 1, memory_order_seq_cst) != 1)
        return;
    /* seq_cst fence: the relaxed loads of others_have come after our
     * decrement (an RMW alone does not order later relaxed loads in C11). */
    atomic_thread_fence(memory_order_seq_cst);
    if (others_have(w, 2))
        ursa__worker_notify(w->rt, w);
}

bool ursa__worker_try_steal(ursa__worker_t *w)
{
    return take_inject(w) || steal(w);
}

bool ursa__worker_can_steal(ursa__worker_t *w)
{
    return ursa__inject_len(&w->rt->inject) || others_have(w, 1);
}

bool ursa__worker_find_work(ursa__worker_t *w)
{
    ursa_rt_t *rt = w->rt;
    ursa__spinner_t s = URSA__SPINNER(URSA__SPIN_IDLE);
    bool got = false;
    if (rt->nworkers == 1) {
        /* Only a plain thread could hand us work; watch the inbox a while
         * if some task waits (it may be woken soon). relaxed: a count. */
        ursa__spin_begin(&s, atomic_load_explicit(&w->ntasks, memory_order_relaxed) != 0);
        /* relaxed: drain_inbox's exchange does the acquire. */
        while (!(got = atomic_load_explicit(&w->inbox, memory_order_relaxed) != NULL) &&
               ursa__spin_pause(&s)) {
        }
        ursa__spin_end(&s);
        return got;
    }
    if (take_inject(w))
        return true;
    /* Searching (looking at the others' queues) is for at most half the
     * awake workers; watching our own inbox is for any worker whose tasks
     * wait for another worker's wake (a reply, a lock handed over): it
     * reads only our own line. */
    bool searching = start_searching(w);
    if (searching && steal(w))
        return true;
    if (!searching && !ursa__hosted_any(w, true))
        return false;
    /* Watch while another thread's worker is awake to make work: the
     * inboxes at every pause (a wake is seen within one), the other queues
     * now and then. */
    ursa__spin_begin(&s, other_awake(w));
    for (uint32_t i = 1; !got && ursa__spin_pause(&s); i++)
        got = ursa__hosted_any(w, false) ||
              (searching && i % URSA__IDLE_LOOK_PAUSES == 0 &&
               (take_inject(w) || (others_have(w, 1) && steal(w))));
    ursa__spin_end(&s);
    return got;
}

/* ---- sleeping ---- */

bool ursa__worker_sleep_begin(ursa__worker_t *w)
{
    ursa_rt_t *rt = w->rt;
    URSA__FOR_HOSTED(v, w) { /* each as the current worker: what it defers it sends */
        ursa__cur_worker = v;
        ursa__worker_turn_end(v);
    }
    ursa__cur_worker = w;
    if (w->searching) {
        w->searching = false;
        /* seq_cst: the Dekker (see the top). */
        atomic_fetch_sub_explicit(&rt->nsearching, 1, memory_order_seq_cst);
    }
    /* With nothing in the ring that could end the sleep, the sleep needs
     * no ring: the futex on `sleeping` is the cheaper wake. */
    uint32_t how = ursa__ring_idle(&w->ring) ? URSA__ASLEEP_FUTEX : URSA__ASLEEP_RING;
    w->sleep_how = how;
    /* relaxed: a stale stamp (a kick of a sleep that ended otherwise)
     * must not count as this sleep's. */
    atomic_store_explicit(&w->kicked_at, 0, memory_order_relaxed);
    /* relaxed: ordered by the fence below. The workers we host sleep with
     * us: a waker of theirs wakes us (rouse). */
    unsigned n = 0;
    URSA__FOR_HOSTED(v, w) {
        atomic_store_explicit(&v->sleeping, v == w ? how : URSA__ASLEEP_HOSTED,
                              memory_order_relaxed);
        n++;
    }
    atomic_fetch_add_explicit(&rt->nsleeping, n, memory_order_relaxed); /* relaxed: a count */
    atomic_thread_fence(memory_order_seq_cst);
    /* relaxed: the fence orders these loads after sleeping = how (stopping:
     * Dekker with stop_workers, which wakes only the sleepers it sees). */
    if (ursa__hosted_any(w, false) || take_inject(w) ||
        (rt->nworkers > 1 && others_have(w, 2) && steal(w)) ||
        (how == URSA__ASLEEP_FUTEX && atomic_load_explicit(&rt->stopping, memory_order_relaxed))) {
        ursa__worker_sleep_end(w);
        return false;
    }
    return true;
}

void ursa__worker_sleep(ursa__worker_t *w, ursa_time_t timeout)
{
    /* How sleep_begin said we sleep, not what `sleeping` holds now: a
     * waker may have reset it already, and wakes us the way we said. */
    if (w->sleep_how == URSA__ASLEEP_RING) {
        ursa__ring_wait(&w->ring, timeout);
        return;
    }
    struct timespec ts = {.tv_sec = timeout / 1000000000, .tv_nsec = timeout % 1000000000};
    /* Returns when a waker changed the word (or it had changed: EAGAIN),
     * at the timeout, or on a signal; the loop looks at everything then. */
    syscall(SYS_futex, &w->sleeping, FUTEX_WAIT_PRIVATE, URSA__ASLEEP_FUTEX,
            timeout < 0 ? NULL : &ts, NULL, 0);
}

void ursa__worker_sleep_end(ursa__worker_t *w)
{
    /* relaxed: a measurement (see rouse). A kicked sleeper tells the spin
     * policy how long the kernel took to run it again. */
    int64_t kicked = atomic_exchange_explicit(&w->kicked_at, 0, memory_order_relaxed);
    if (kicked)
        ursa__spin_wake_seen(ursa__mono_now() - kicked);
    /* relaxed: a kicker may have cleared them already; either way we are up. */
    unsigned n = 0;
    URSA__FOR_HOSTED(v, w) {
        atomic_store_explicit(&v->sleeping, 0, memory_order_relaxed);
        n++;
    }
    atomic_fetch_sub_explicit(&w->rt->nsleeping, n, memory_order_relaxed); /* relaxed: a count */
}
