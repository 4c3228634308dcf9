/* The barging semaphore (core/sema.c) against the wait queue and the
 * select claim: cases are handed over or dropped, never barge; a looker
 * ahead of a part, and a starved looker after the switch to hand-off,
 * take the part back (two deadlocks the stress found). */
#include "support.h"

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

TEST_MAIN(cmocka_unit_test(test_claim_barging_cases_are_handed_over_or_dropped),
          cmocka_unit_test(test_barging_looker_ahead_of_a_part_takes_it_back),
          cmocka_unit_test(test_barging_starved_looker_takes_the_part_back_after_handoff))
