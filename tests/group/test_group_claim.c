/* Tokens and groups as select cases, before select exists: raw waits that
 * share one claim (core/claim.h), as a select's cases will. Only the case
 * that takes the claim is decided; a loser is dropped holding nothing, and
 * what it would have got goes to the next waiter (a finished member) or
 * was never its to take (a token's cancel). */

#include "support.h"

#include "core/claim.h"
#include "raw_waker.h"
#include "rt_checks.h"

typedef struct claim_case {
    ursa_rt_t *rt;
    ursa_token_t tok;
    ursa_group_t g;
    ursa_sem_t gate;
} claim_case_t;

static void case_init(claim_case_t *c)
{
    memset(c, 0, sizeof *c);
    assert_int_equal(ursa_rt_new(&c->rt, &(ursa_rt_config_t){.workers = 2}), 0);
    assert_int_equal(ursa_token_init(&c->tok, NULL), 0);
    assert_int_equal(ursa_group_init(&c->g, NULL), 0);
    assert_int_equal(ursa_sem_init(&c->gate, 0), 0);
    assert_int_equal(ursa_group_rt_spawn(&c->g, c->rt, NULL, gated_member, &c->gate, NULL), 0);
}

static void case_end(claim_case_t *c)
{
    assert_int_equal(ursa_group_destroy(&c->g), 0);
    assert_int_equal(ursa_token_destroy(&c->tok), 0);
    ursa_rt_free(c->rt);
}

/* A select's two cases on one claim, both queued: the token's wait (a)
 * and a join of the next member (b). */
typedef struct two_cases {
    rwaker_t rw;
    ursa__claim_t claim;
    ursa_wait_t a, b;
} two_cases_t;

static void start_two_cases(claim_case_t *c, two_cases_t *s)
{
    rwaker_init(&s->rw, false);
    ursa__claim_init(&s->claim, rwaker(&s->rw));
    assert_int_equal(ursa_token_wait_start(&c->tok, &s->a, ursa__claim_waker(&s->claim)),
                     -EINPROGRESS);
    assert_int_equal(ursa_group_join_next_start(&c->g, &s->b, ursa__claim_waker(&s->claim)),
                     -EINPROGRESS);
}

/* The token's case wins; the member that ends later is not taken by the
 * losing join case: it is still there for a plain join. */
static void test_token_case_wins_and_the_join_case_takes_nothing(void **state)
{
    (void)state;
    claim_case_t c;
    case_init(&c);
    two_cases_t s;
    start_two_cases(&c, &s);
    assert_int_equal(ursa_token_cancel(&c.tok), 1);
    assert_true(ursa__claim_winner(&s.claim) == &s.a.waiter);
    assert_int_equal(atomic_load(&s.rw.count), 1);
    /* The member ends: the join case's claim is lost, it is dropped. */
    assert_int_equal(ursa_sem_add(&c.gate, 1), 0);
    assert_int_equal(ursa_group_wait(&c.g, test_guard_deadline()), 0);
    assert_int_equal(atomic_load(&s.rw.count), 1); /* the select is woken once */
    assert_int_equal(ursa_token_wait_finish(&c.tok, &s.a), 0);
    assert_int_equal(ursa_wait_cancel(&s.b), -ECANCELED);
    void *res = NULL;
    assert_int_equal(ursa_group_join_next(&c.g, &res, NULL, URSA_NOW), 0);
    assert_int_equal(I(res), GATED_MEMBER_RES);
    case_end(&c);
}

/* The join case wins; the token's cancel drops the token case. */
static void test_join_case_wins_and_the_token_case_is_dropped(void **state)
{
    (void)state;
    claim_case_t c;
    case_init(&c);
    two_cases_t s;
    start_two_cases(&c, &s);
    assert_int_equal(ursa_sem_add(&c.gate, 1), 0);
    assert_true(await_ready(&s.b));
    assert_true(ursa__claim_winner(&s.claim) == &s.b.waiter);
    assert_int_equal(ursa_token_cancel(&c.tok), 1);
    assert_true(ursa__claim_winner(&s.claim) == &s.b.waiter);
    assert_true(await_woken(&s.rw, 1)); /* ready comes before the waker call */
    assert_int_equal(atomic_load(&s.rw.count), 1);
    assert_int_equal(ursa_wait_cancel(&s.a), -ECANCELED); /* dropped: nothing held */
    void *res = NULL;
    assert_int_equal(ursa_group_join_next_finish(&c.g, &s.b, &res, NULL), 0);
    assert_int_equal(I(res), GATED_MEMBER_RES);
    case_end(&c); /* the token destroys: no waiter left on it */
}

/* A select that gave up (claim closed) has a join case still queued: the
 * member goes past it to the plain joiner behind it. */
static void test_closed_select_passes_the_member_on(void **state)
{
    (void)state;
    claim_case_t c;
    case_init(&c);
    rwaker_t rs, rp;
    rwaker_init(&rs, false);
    rwaker_init(&rp, false);
    ursa__claim_t claim;
    ursa__claim_init(&claim, rwaker(&rs));
    ursa_wait_t sel, plain;
    assert_int_equal(ursa_group_join_next_start(&c.g, &sel, ursa__claim_waker(&claim)),
                     -EINPROGRESS);
    assert_int_equal(ursa_group_join_next_start(&c.g, &plain, rwaker(&rp)), -EINPROGRESS);
    assert_true(ursa__claim_close(&claim));
    assert_int_equal(ursa_sem_add(&c.gate, 1), 0);
    assert_true(await_ready(&plain));
    assert_true(await_woken(&rp, 1)); /* ready comes before the waker call */
    assert_int_equal(atomic_load(&rs.count), 0);
    assert_int_equal(atomic_load(&rp.count), 1);
    void *res = NULL;
    assert_int_equal(ursa_group_join_next_finish(&c.g, &plain, &res, NULL), 0);
    assert_int_equal(I(res), GATED_MEMBER_RES);
    assert_int_equal(ursa_wait_cancel(&sel), -ECANCELED);
    assert_int_equal(ursa_group_len(&c.g), 0);
    case_end(&c);
}

/* Starts that find their wait ready take the claim before they take
 * anything: with the claim gone they take nothing and drop the case. */
static void test_ready_starts_take_the_claim_first(void **state)
{
    (void)state;
    claim_case_t c;
    case_init(&c);
    assert_int_equal(ursa_sem_add(&c.gate, 1), 0);
    assert_int_equal(ursa_group_wait(&c.g, test_guard_deadline()), 0); /* one finished */
    assert_int_equal(ursa_token_cancel(&c.tok), 1);
    rwaker_t rw;
    rwaker_init(&rw, false);
    /* A lost claim: each start drops its case, nothing taken. */
    ursa__claim_t lost;
    ursa__claim_init(&lost, rwaker(&rw));
    assert_true(ursa__claim_close(&lost));
    ursa_wait_t a, b, i;
    assert_int_equal(ursa_token_wait_start(&c.tok, &a, ursa__claim_waker(&lost)), -EINPROGRESS);
    assert_int_equal(ursa_group_join_next_start(&c.g, &b, ursa__claim_waker(&lost)),
                     -EINPROGRESS);
    assert_int_equal(ursa_group_wait_start(&c.g, &i, ursa__claim_waker(&lost)), -EINPROGRESS);
    assert_int_equal(ursa_wait_cancel(&a), -ECANCELED);
    assert_int_equal(ursa_wait_cancel(&b), -ECANCELED);
    assert_int_equal(ursa_wait_cancel(&i), -ECANCELED);
    assert_int_equal(ursa_group_len(&c.g), 1); /* the member is still there */
    /* An open claim: the join start takes it and the member with it. */
    ursa__claim_t open;
    ursa__claim_init(&open, rwaker(&rw));
    assert_int_equal(ursa_group_join_next_start(&c.g, &b, ursa__claim_waker(&open)), 0);
    assert_true(ursa__claim_winner(&open) == &b.waiter);
    assert_int_equal(ursa_group_join_next(&c.g, NULL, NULL, URSA_NOW), -ECHILD); /* promised */
    void *res = NULL;
    assert_int_equal(ursa_group_join_next_finish(&c.g, &b, &res, NULL), 0);
    assert_int_equal(I(res), GATED_MEMBER_RES);
    assert_int_equal(atomic_load(&rw.count), 0); /* no case was woken: none queued */
    case_end(&c);
}

TEST_MAIN(cmocka_unit_test(test_ready_starts_take_the_claim_first),
          cmocka_unit_test(test_token_case_wins_and_the_join_case_takes_nothing),
          cmocka_unit_test(test_join_case_wins_and_the_token_case_is_dropped),
          cmocka_unit_test(test_closed_select_passes_the_member_on))
