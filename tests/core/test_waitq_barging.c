/* The barging semaphore (core/sema.c) against the wait queue and the
 * select claim: cases are handed over or dropped, never barge; a looker
 * ahead of a part, and a starved looker after the switch to hand-off,
 * take the part back (two deadlocks the stress found); streaks: a looker
 * woken on another thread keeps releases fast and other threads' arrivals
 * behind it until it has looked, and hands on what it leaves. */
#include "support.h"

#include <pthread.h>

#include "ursa/rwlock.h"

#include "raw_checks.h"
#include "task_checks.h"
#include "waitq_checks.h"

/* A barging semaphore (URSA_SEM_BARGING) still decides a select's case
 * through its claim: a case is handed its permit (a case cannot look
 * again); a lost case is dropped and the permit goes on, here to the
 * looker behind it, woken to look with the permit left free in the word
 * (got 0). A closed select's partly assigned permits move on likewise. */
static void test_claim_barging_cases_are_handed_over_or_dropped(void **state)
{
    (void)state;
    ursa__sema_t s1, s2;
    ursa__sema_init(&s1, 0);
    ursa__sema_init(&s2, 0);
    ursa__sema_set_barging(&s1);
    ursa__sema_set_barging(&s2);
    sel_t sel;
    sel_init(&sel);
    ursa__waiter_t c1, c2;
    ursa__sema_looker_t l1, l2;
    rec_t r1 = {0}, r2 = {0};
    sel_case(&sel, &s1, &c1);
    sel_case(&sel, &s2, &c2);
    ursa__waiter_init(&l1.w, rec_waker(&r1), &sema_ops);
    ursa__waiter_init(&l2.w, rec_waker(&r2), &sema_ops);
    l1.since = l2.since = ursa_now();
    l1.thread = l2.thread = ursa__thread_uid(); /* woken here: no streak (sema.h) */
    assert_int_equal(ursa__sema_look(&s1, &l1, 1, false, false), -EINPROGRESS);
    assert_int_equal(ursa__sema_look(&s2, &l2, 1, false, false), -EINPROGRESS);
    assert_int_equal(l1.w.got, URSA__SEMA_LOOKING);

    ursa__sema_release(&s2, 1); /* the case at the head is handed the permit */
    assert_ptr_equal(ursa__claim_winner(&sel.claim), &c2);
    assert_int_equal(state_of(&c2), URSA__W_GRANTED);
    assert_int_equal(c2.got, 1);
    assert_int_equal(state_of(&l2.w), URSA__W_QUEUED);
    assert_int_equal(ursa__sema_available(&s2), 0);

    ursa__sema_release(&s1, 1); /* the lost case is dropped: the looker looks */
    assert_int_equal(state_of(&c1), URSA__W_CANCELLED);
    assert_true(ursa__wait_is_done(&c1));
    assert_int_equal(state_of(&l1.w), URSA__W_GRANTED);
    assert_int_equal(l1.w.got, 0);                    /* a look, not a permit */
    assert_int_equal(ursa__sema_available(&s1), 1);   /* free for whoever is first */
    assert_int_equal(atomic_load(&r1.calls), 1);
    assert_int_equal(atomic_load(&sel.r.calls), 1);   /* the select woken once */
    assert_true(ursa__sema_try_barge(&s1, 1));        /* the looker takes it */

    assert_false(ursa__claim_close(&sel.claim));
    assert_true(ursa__sema_cancel(&c1));
    assert_false(ursa__sema_cancel(&c2));
    ursa__sema_release(&s2, 1); /* c2's: l2 woken to look */
    assert_int_equal(state_of(&l2.w), URSA__W_GRANTED);
    assert_int_equal(l2.w.got, 0);
    assert_true(ursa__sema_try_barge(&s2, 1));
    ursa__sema_release(&s1, 1);
    ursa__sema_release(&s2, 1);
    assert_int_equal(ursa__sema_available(&s1), 1);
    assert_int_equal(ursa__sema_available(&s2), 1);
    assert_false(ursa__sema_has_waiters(&s1));
    assert_false(ursa__sema_has_waiters(&s2));

    /* A closed select's case, partly assigned, is dropped at the grant:
     * its part and the rest go on (to the word: nobody else queues). */
    ursa__sema_t s;
    ursa__sema_init(&s, 0);
    ursa__sema_set_barging(&s);
    sel_t sel2;
    sel_init(&sel2);
    ursa__waiter_t c;
    ursa__waiter_init(&c, ursa__claim_waker(&sel2.claim), &sema_ops);
    assert_int_equal(ursa__sema_start(&s, &c, 2), -EINPROGRESS);
    ursa__sema_release(&s, 1); /* a part: the head keeps it */
    assert_int_equal(c.got, 1);
    assert_true(ursa__claim_close(&sel2.claim));
    ursa__sema_release(&s, 1);
    assert_int_equal(state_of(&c), URSA__W_CANCELLED);
    assert_int_equal(atomic_load(&sel2.r.calls), 0);
    assert_int_equal(ursa__sema_available(&s), 2);
    assert_true(ursa__sema_cancel(&c));
    assert_false(ursa__sema_has_waiters(&s));
}

/* The start of both regressions below: on an empty barging semaphore s, a
 * looker l wanting `want` queues first and a plain wait p for 3 behind it;
 * `want` permits come in and the looker is woken to look (granted, got 0). */
typedef struct looker_ahead {
    ursa__sema_t s;
    ursa__sema_looker_t l;
    ursa__waiter_t p;
    rec_t rl, rp;
} looker_ahead_t;

static void looker_woken_ahead_of_plain(looker_ahead_t *b, uint32_t want)
{
    memset(b, 0, sizeof *b);
    ursa__sema_init(&b->s, 0);
    ursa__sema_set_barging(&b->s);
    ursa__waiter_init(&b->l.w, rec_waker(&b->rl), &sema_ops);
    b->l.since = ursa_now();
    b->l.thread = ursa__thread_uid();
    assert_int_equal(ursa__sema_look(&b->s, &b->l, want, false, false), -EINPROGRESS);
    plain_sema(&b->s, &b->p, &b->rp, 3); /* a plain wait behind the looker */
    ursa__sema_release(&b->s, want);     /* the looker is woken to look */
    assert_int_equal(state_of(&b->l.w), URSA__W_GRANTED);
}

/* Regression (a hang of test_barging's stress, rwlock writers on threads):
 * a looker that lost its look queued again at the front, ahead of a plain
 * head holding a part (2 of 3), and the permits it waited for sat in that
 * part. The part now comes back when it goes ahead: here enough to take
 * at once. Failed before the fix: the look queued, and 3 permits in all
 * could never meet (looker 2, part 2, word 1 after the barger's release). */
static void test_barging_looker_ahead_of_a_part_takes_it_back(void **state)
{
    (void)state;
    looker_ahead_t b;
    looker_woken_ahead_of_plain(&b, 2);
    assert_int_equal(b.l.w.got, 0);
    assert_true(ursa__sema_try_barge(&b.s, 1)); /* a barger takes one */
    ursa__sema_release(&b.s, 1);              /* the plain head gets a part */
    assert_int_equal(b.p.got, 2);
    assert_false(ursa__sema_try_barge(&b.s, 2)); /* the looker lost its look */
    ursa__waiter_init(&b.l.w, rec_waker(&b.rl), &sema_ops);
    assert_int_equal(ursa__sema_look(&b.s, &b.l, 2, true, false), 0); /* the part came back */
    assert_int_equal(b.l.w.got, 2);
    assert_int_equal(b.p.got, 0);
    assert_int_equal(b.p.want, 3);
    ursa__sema_release(&b.s, 1); /* the barger's: a part again */
    assert_int_equal(b.p.got, 1);
    ursa__sema_release(&b.s, 2); /* the looker's: the plain wait has all 3 */
    assert_int_equal(state_of(&b.p), URSA__W_GRANTED);
    assert_int_equal(b.p.got, 3);
    assert_int_equal(atomic_load(&b.rp.calls), 1);
    ursa__sema_release(&b.s, 3);
    assert_int_equal(ursa__sema_available(&b.s), 3);
    assert_false(ursa__sema_has_waiters(&b.s));
}

/* Regression (a hang of test_barging's stress under TSan, after the fix
 * above): a starved looker that queues again switches to HANDOFF, which
 * hands the plain head's part back to it; the looker then went ahead of
 * that part. It takes it back after the switch now. Failed before: the
 * looker held 1 and the plain wait 2 of 3, each waiting for the other. */
static void test_barging_starved_looker_takes_the_part_back_after_handoff(void **state)
{
    (void)state;
    looker_ahead_t b;
    looker_woken_ahead_of_plain(&b, 3);
    assert_true(ursa__sema_try_barge(&b.s, 1)); /* two bargers, one each */
    assert_true(ursa__sema_try_barge(&b.s, 1));
    ursa__sema_release(&b.s, 1);                /* the plain head: a part of 2 */
    assert_int_equal(b.p.got, 2);
    uint64_t h0 = atomic_load(&ursa__sema_handoffs);
    ursa__waiter_init(&b.l.w, rec_waker(&b.rl), &sema_ops);
    assert_int_equal(ursa__sema_look(&b.s, &b.l, 3, true, true), -EINPROGRESS);
    assert_true(ursa__sema_handoff(&b.s));
    assert_int_equal(atomic_load(&ursa__sema_handoffs), h0 + 1);
    assert_int_equal(b.l.w.got, 2); /* the part came back to the new head */
    assert_int_equal(b.p.got, 0);
    ursa__sema_release(&b.s, 1);    /* the second barger's: the looker has 3 */
    assert_int_equal(state_of(&b.l.w), URSA__W_GRANTED);
    assert_int_equal(b.l.w.got, 3);
    ursa__sema_release(&b.s, 3);    /* the looker's: the plain wait has 3 */
    assert_int_equal(state_of(&b.p), URSA__W_GRANTED);
    assert_int_equal(b.p.got, 3);
    assert_false(ursa__sema_handoff(&b.s)); /* drained */
    ursa__sema_release(&b.s, 3);
    assert_int_equal(ursa__sema_available(&b.s), 3);
    assert_false(ursa__sema_has_waiters(&b.s));
}

/* ---- streaks (core/sema.h): a looker woken on another thread ----
 * The lookers below look from a thread of their own (another
 * ursa__thread_uid than the test's), started and joined around each step,
 * so every step is deterministic. */

typedef struct streak {
    ursa__sema_t s;
    ursa__sema_looker_t l[2];
    rec_t r[2];
    int rc[2];
    bool barged;
} streak_t;

static streak_t k;

static uint64_t flags(void)
{
    return atomic_load(&k.s.state) & ((1u << URSA__SEMA_SHIFT) - 1);
}

/* Runs fn on a thread of its own, and waits for it. */
static void elsewhere(void *(*fn)(void *), intptr_t i)
{
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, fn, (void *)i), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
}

/* Looker i looks, first (again false) or after a wake that lost. */
static void look(int i, bool again)
{
    ursa__waiter_init(&k.l[i].w, rec_waker(&k.r[i]), &sema_ops);
    if (!again) {
        k.l[i].since = ursa_now();
        k.l[i].thread = ursa__thread_uid();
    }
    k.rc[i] = ursa__sema_look(&k.s, &k.l[i], 1, again, false);
}

static void *first_look(void *arg)
{
    look((int)(intptr_t)arg, false);
    return NULL;
}

/* Woken looker i takes the permit if free (barge.h's step), else looks
 * again. */
static void *woken_look(void *arg)
{
    int i = (int)(intptr_t)arg;
    assert_int_equal(state_of(&k.l[i].w), URSA__W_GRANTED);
    assert_int_equal(k.l[i].w.got, 0);
    if (ursa__sema_try_barge(&k.s, 1)) {
        ursa__sema_looked(&k.s);
        k.rc[i] = 0;
    } else {
        look(i, true);
    }
    return NULL;
}

/* An arrival's barge from this thread: blocking (arg 0) or a try. */
static void *barge_in(void *arg)
{
    k.barged = ursa__sema_barge_in(&k.s, 1, arg ? URSA_NOW : URSA_NEVER);
    return NULL;
}

static void streak_init(uint64_t permits)
{
    memset(&k, 0, sizeof k);
    ursa__sema_init(&k.s, permits);
    ursa__sema_set_barging(&k.s);
}

static void streak_done(uint64_t permits)
{
    assert_int_equal(ursa__sema_available(&k.s), permits);
    assert_false(ursa__sema_has_waiters(&k.s));
    assert_int_equal(flags(), 0);
}

/* A release that wakes a looker on another thread sets OUT: until it has
 * looked, the streak's thread locks past the queue and releases without
 * the queue's lock, waking nobody else; another thread's blocking barge
 * and first look queue behind it even while the permit is free. The
 * looker that wins makes the streak its thread's: now the test's thread
 * queues, and its release wakes the next looker. */
static void test_barging_streak_stays_with_a_thread_while_a_looker_is_out(void **state)
{
    (void)state;
    streak_init(1);
    assert_true(ursa__sema_try_barge(&k.s, 1));
    elsewhere(first_look, 0);
    assert_int_equal(k.rc[0], -EINPROGRESS);
    ursa__sema_release(&k.s, 1); /* slow: wakes looker 0, elsewhere */
    assert_int_equal(atomic_load(&k.r[0].calls), 1);
    assert_int_equal(flags(), URSA__SEMA_OUT);
    assert_int_equal(atomic_load(&k.s.streak), ursa__thread_uid());

    assert_true(ursa__sema_barge_in(&k.s, 1, URSA_NEVER)); /* the streak's thread */
    assert_true(ursa__sema_release_fast(&k.s, 1));         /* nobody else woken */
    elsewhere(barge_in, 0);
    assert_false(k.barged); /* another thread's blocking acquire: no */
    elsewhere(barge_in, 1);
    assert_true(k.barged); /* its try: free permits are anyone's */
    assert_true(ursa__sema_release_fast(&k.s, 1));
    elsewhere(first_look, 1);
    assert_int_equal(k.rc[1], -EINPROGRESS);         /* behind, though free */
    assert_int_equal(ursa__sema_available(&k.s), 1);
    assert_int_equal(flags(), URSA__SEMA_OUT | URSA__SEMA_WAITERS);

    elsewhere(woken_look, 0); /* wins: the streak is looker 0's thread's */
    assert_int_equal(k.rc[0], 0);
    assert_int_equal(flags(), URSA__SEMA_WAITERS);
    assert_false(ursa__sema_barge_in(&k.s, 1, URSA_NEVER));
    assert_false(ursa__sema_release_fast(&k.s, 1)); /* looker 1 queues */
    ursa__sema_release_slow(&k.s, 1);
    assert_int_equal(atomic_load(&k.r[1].calls), 1);
    assert_int_equal(flags(), URSA__SEMA_OUT);
    elsewhere(woken_look, 1);
    assert_int_equal(k.rc[1], 0);
    ursa__sema_release(&k.s, 1);
    streak_done(1);
}

/* Regression for the streak's hand-on: two releases while looker 0 is
 * out, the second fast (no wake); looker 0 takes one and must wake looker
 * 1 for the other, or looker 1 waits with a permit free for good. */
static void test_barging_streak_looker_hands_on_what_fast_releases_left(void **state)
{
    (void)state;
    streak_init(0);
    elsewhere(first_look, 0);
    elsewhere(first_look, 1);
    ursa__sema_release(&k.s, 1); /* wakes looker 0 */
    ursa__sema_release(&k.s, 1); /* fast */
    assert_int_equal(atomic_load(&k.r[1].calls), 0);
    assert_int_equal(ursa__sema_available(&k.s), 2);
    elsewhere(woken_look, 0);
    assert_int_equal(k.rc[0], 0);
    assert_int_equal(atomic_load(&k.r[1].calls), 1); /* handed on */
    elsewhere(woken_look, 1);
    assert_int_equal(k.rc[1], 0);
    ursa__sema_release(&k.s, 2);
    streak_done(2);
}

/* A looker that loses its look queues again at the front and is out no
 * more: the next release takes the queue's lock and wakes it again. */
static void test_barging_streak_looker_that_loses_is_woken_again(void **state)
{
    (void)state;
    streak_init(1);
    assert_true(ursa__sema_try_barge(&k.s, 1));
    elsewhere(first_look, 0);
    ursa__sema_release(&k.s, 1);
    assert_true(ursa__sema_barge_in(&k.s, 1, URSA_NEVER)); /* the streak's, first */
    elsewhere(woken_look, 0);
    assert_int_equal(k.rc[0], -EINPROGRESS);
    assert_int_equal(flags(), URSA__SEMA_WAITERS);
    assert_false(ursa__sema_release_fast(&k.s, 1));
    ursa__sema_release_slow(&k.s, 1);
    assert_int_equal(atomic_load(&k.r[0].calls), 2);
    elsewhere(woken_look, 0);
    assert_int_equal(k.rc[0], 0);
    ursa__sema_release(&k.s, 1);
    streak_done(1);
}

/* Regression (found in review): a release that wakes more than a batch of
 * lookers on other threads wakes the first URSA__WAKE_BATCH with the lock
 * dropped (the flush), before it has popped the rest. It set OUT only
 * after its loop, so a looker that looked at once had cleared OUT before
 * it was set: OUT stayed set with nobody out, every release then took the
 * fast path, and queued waiters hung with permits free. Here each looker
 * looks inside its wake, as a looker on another CPU may. */
enum { BATCH_LOOKERS = URSA__WAKE_BATCH + 1 };

static struct {
    ursa__sema_t s;
    ursa__sema_looker_t l[BATCH_LOOKERS];
    rec_t r[BATCH_LOOKERS];
    bool took[BATCH_LOOKERS];
} bl;

static void look_at_once(void *arg)
{
    int i = (int)(intptr_t)arg;
    bl.took[i] = ursa__sema_try_barge(&bl.s, 1);
    if (bl.took[i])
        ursa__sema_looked(&bl.s);
}

static void test_barging_streak_out_is_set_before_a_full_batch_wakes(void **state)
{
    (void)state;
    memset(&bl, 0, sizeof bl);
    ursa__sema_init(&bl.s, 0);
    ursa__sema_set_barging(&bl.s);
    for (int i = 0; i < BATCH_LOOKERS; i++) {
        bl.r[i].hook = look_at_once;
        bl.r[i].hook_arg = (void *)(intptr_t)i;
        ursa__waiter_init(&bl.l[i].w, rec_waker(&bl.r[i]), &sema_ops);
        bl.l[i].since = ursa_now();
        bl.l[i].thread = ursa__thread_uid() + 1; /* another thread's */
        assert_int_equal(ursa__sema_look(&bl.s, &bl.l[i], 1, false, false), -EINPROGRESS);
    }
    ursa__sema_release(&bl.s, BATCH_LOOKERS);
    for (int i = 0; i < BATCH_LOOKERS; i++) {
        assert_int_equal(atomic_load(&bl.r[i].calls), 1);
        assert_true(bl.took[i]);
    }
    assert_int_equal(atomic_load(&bl.s.state) & ((1u << URSA__SEMA_SHIFT) - 1), 0);
    ursa__sema_release(&bl.s, BATCH_LOOKERS); /* the fast path, nobody to wake */
    assert_int_equal(ursa__sema_available(&bl.s), BATCH_LOOKERS);
    assert_false(ursa__sema_has_waiters(&bl.s));
}

/* Regression (found in review): a barging rwlock's release that promotes
 * the queued readers ahead of a writer streak (writer_preference.c) then
 * released through the fast path while a writer looker was out (OUT), so
 * the promoted readers at the head were not served: the out writer took
 * every permit first, one writer past the bound. The release takes the
 * queue's path now, which serves a plain head from the word. */
static void test_barging_rwlock_promoted_readers_served_while_a_writer_is_out(void **state)
{
    (void)state;
    ursa_rwlock_t rw;
    ursa_rwlock_write_guard_t g = {0};
    ursa_rwlock_read_guard_t rg = {0};
    const ursa_lock_attr_t attr = {.flags = URSA_LOCK_BARGING};
    assert_int_equal(ursa_rwlock_init_attr(&rw, 4, &attr), 0);
    assert_int_equal(ursa_rwlock_write_lock(&rw, &g, URSA_NOW), 0);
    /* A writer looker of another thread, woken by the unlock: out. */
    ursa__sema_looker_t l;
    rec_t rl = {0};
    ursa__waiter_init(&l.w, rec_waker(&rl), &sema_ops);
    l.since = ursa_now();
    l.thread = ursa__thread_uid() + 1;
    assert_int_equal(ursa__sema_look(&rw.sema, &l, 4, false, false), -EINPROGRESS);
    assert_int_equal(ursa_rwlock_write_unlock(&g), 0);
    assert_int_equal(atomic_load(&rl.calls), 1);
    assert_true(atomic_load(&rw.sema.state) & URSA__SEMA_OUT);
    /* The streak's thread locks again; a writer and a reader queue (raw
     * waits: plain waiters), and the writer streak is used up. */
    assert_int_equal(ursa_rwlock_write_lock(&rw, &g, URSA_NEVER), 0);
    ursa_wait_t ww, wr;
    rwaker_t kw, kr;
    rwaker_init(&kw, false);
    rwaker_init(&kr, false);
    assert_int_equal(ursa_rwlock_write_lock_start(&rw, &ww, rwaker(&kw)), -EINPROGRESS);
    assert_int_equal(ursa_rwlock_read_lock_start(&rw, &wr, rwaker(&kr)), -EINPROGRESS);
    atomic_store(&rw.wstreak, URSA_RWLOCK_WRITER_STREAK);
    assert_int_equal(ursa_rwlock_write_unlock(&g), 0); /* promotes the reader */
    assert_true(ursa_wait_ready(&wr));
    assert_false(ursa_wait_ready(&ww));
    /* The out writer looks: the reader holds one, so it queues again. */
    assert_false(ursa__sema_try_barge(&rw.sema, 4));
    ursa__waiter_init(&l.w, rec_waker(&rl), &sema_ops);
    assert_int_equal(ursa__sema_look(&rw.sema, &l, 4, true, false), -EINPROGRESS);
    assert_int_equal(ursa_rwlock_read_lock_finish(&rw, &wr, &rg), 0);
    assert_int_equal(ursa_rwlock_read_unlock(&rg), 0); /* the looker is woken */
    assert_int_equal(atomic_load(&rl.calls), 2);
    assert_true(ursa__sema_try_barge(&rw.sema, 4));
    ursa__sema_looked(&rw.sema);
    ursa__sema_release(&rw.sema, 4); /* the looker's: the raw writer's turn */
    assert_true(ursa_wait_ready(&ww));
    assert_int_equal(ursa_rwlock_write_lock_finish(&rw, &ww, &g), 0);
    assert_int_equal(ursa_rwlock_write_unlock(&g), 0);
    assert_int_equal(ursa_rwlock_destroy(&rw), 0);
}

TEST_MAIN(cmocka_unit_test(test_claim_barging_cases_are_handed_over_or_dropped),
          cmocka_unit_test(test_barging_looker_ahead_of_a_part_takes_it_back),
          cmocka_unit_test(test_barging_streak_stays_with_a_thread_while_a_looker_is_out),
          cmocka_unit_test(test_barging_streak_looker_hands_on_what_fast_releases_left),
          cmocka_unit_test(test_barging_streak_looker_that_loses_is_woken_again),
          cmocka_unit_test(test_barging_streak_out_is_set_before_a_full_batch_wakes),
          cmocka_unit_test(test_barging_rwlock_promoted_readers_served_while_a_writer_is_out),
          cmocka_unit_test(test_barging_starved_looker_takes_the_part_back_after_handoff))
