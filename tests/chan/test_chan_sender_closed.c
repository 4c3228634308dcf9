/* The senders' wait for the close (ursa_mpsc_closed, ursa_mpmc_closed and
 * their raw forms; Tokio's Sender::closed): it returns once the receiving
 * side closes or its last receiver drops, never before, in every calling
 * context; a close racing the wait is never missed (over seeds and on
 * threads). */
#include "support.h"

#include <ursa/mpmc.h>
#include <ursa/mpsc.h>

#include "task_checks.h"

/* Both channels under one interface: two senders, two mpmc receivers. */
typedef struct chan {
    bool mpmc;
    ursa_mpsc_receiver_t mrx;
    ursa_mpsc_sender_t mtx[2];
    ursa_mpmc_receiver_t qrx[2];
    ursa_mpmc_sender_t qtx[2];
} chan_t;

static const char *chan_make(chan_t *c, bool mpmc)
{
    memset(c, 0, sizeof *c);
    c->mpmc = mpmc;
    if (mpmc) {
        CHECK_EQ(ursa_mpmc_new(&c->qrx[0], &c->qtx[0], 8, 4, NULL), 0);
        CHECK_EQ(ursa_mpmc_sender_clone(&c->qtx[0], &c->qtx[1]), 0);
        CHECK_EQ(ursa_mpmc_receiver_clone(&c->qrx[0], &c->qrx[1]), 0);
    } else {
        CHECK_EQ(ursa_mpsc_new(&c->mrx, &c->mtx[0], 8, 4, NULL), 0);
        CHECK_EQ(ursa_mpsc_sender_clone(&c->mtx[0], &c->mtx[1]), 0);
    }
    return NULL;
}

static int closed(chan_t *c, int i, ursa_time_t deadline)
{
    return c->mpmc ? ursa_mpmc_closed(&c->qtx[i], deadline)
                   : ursa_mpsc_closed(&c->mtx[i], deadline);
}

static int closed_start(chan_t *c, ursa_wait_t *w, ursa_waker_t k)
{
    return c->mpmc ? ursa_mpmc_closed_start(&c->qtx[0], w, k)
                   : ursa_mpsc_closed_start(&c->mtx[0], w, k);
}

static int closed_finish(chan_t *c, ursa_wait_t *w)
{
    return c->mpmc ? ursa_mpmc_closed_finish(&c->qtx[0], w)
                   : ursa_mpsc_closed_finish(&c->mtx[0], w);
}

/* The receiving side goes: close (0) or the drop of every receiver (1). */
static const char *chan_close(chan_t *c, int how)
{
    if (c->mpmc && how) {
        CHECK_EQ(ursa_mpmc_receiver_drop(&c->qrx[1]), 0);
        CHECK_EQ(ursa_mpmc_receiver_drop(&c->qrx[0]), 0);
    } else if (c->mpmc) {
        CHECK_EQ(ursa_mpmc_close(&c->qrx[1]), 0);
    } else if (how) {
        CHECK_EQ(ursa_mpsc_receiver_drop(&c->mrx), 0);
    } else {
        CHECK_EQ(ursa_mpsc_close(&c->mrx), 0);
    }
    return NULL;
}

static const char *chan_free(chan_t *c)
{
    for (int i = 0; i < 2; i++) {
        CHECK_EQ(c->mpmc ? ursa_mpmc_sender_drop(&c->qtx[i]) : ursa_mpsc_sender_drop(&c->mtx[i]),
                 0);
        if (c->mpmc && c->qrx[i].ch)
            CHECK_EQ(ursa_mpmc_receiver_drop(&c->qrx[i]), 0);
    }
    if (!c->mpmc && c->mrx.ch)
        CHECK_EQ(ursa_mpsc_receiver_drop(&c->mrx), 0);
    return NULL;
}

/* ---- arguments, URSA_NOW, deadlines, raw ---- */

static void *basics_body(void *arg)
{
    (void)arg;
    cw_t cw;
    ursa_wait_t w;
    CHECK_EQ(ursa_mpsc_closed(NULL, URSA_NOW), -EINVAL);
    CHECK_EQ(ursa_mpmc_closed(NULL, URSA_NOW), -EINVAL);
    CHECK_EQ(ursa_mpsc_closed_start(NULL, &w, cw_fresh(&cw)), -EINVAL);
    CHECK_EQ(ursa_mpmc_closed_start(NULL, &w, cw_fresh(&cw)), -EINVAL);
    for (int mpmc = 0; mpmc < 2; mpmc++) {
        for (int how = 0; how < 2; how++) {
            chan_t c;
            const char *m = chan_make(&c, mpmc);
            if (m)
                return (void *)m;
            CHECK_EQ(closed(&c, 0, URSA_NOW), -EAGAIN);
            CHECK_EQ(closed(&c, 0, ursa_deadline_in(URSA_MSEC(1))), -ETIMEDOUT);
            CHECK_EQ(closed_start(&c, &w, ((ursa_waker_t){NULL, NULL})), -EINVAL);
            /* raw: queued, not yet; a cancelled one calls no waker */
            CHECK_EQ(closed_start(&c, &w, cw_fresh(&cw)), -EINPROGRESS);
            CHECK_EQ(closed_finish(&c, &w), -EAGAIN);
            CHECK_EQ(ursa_wait_cancel(&w), -ECANCELED);
            CHECK_EQ(closed_start(&c, &w, cw_fresh(&cw)), -EINPROGRESS);
            if (mpmc && how) { /* the first receiver's drop leaves one */
                CHECK_EQ(ursa_mpmc_receiver_drop(&c.qrx[0]), 0);
                CHECK_EQ(closed(&c, 1, URSA_NOW), -EAGAIN);
                CHECK(!ursa_wait_ready(&w));
                CHECK_EQ(ursa_mpmc_receiver_drop(&c.qrx[1]), 0);
            } else {
                m = chan_close(&c, how);
                if (m)
                    return (void *)m;
            }
            CHECK(ursa_wait_ready(&w));
            CHECK_EQ(atomic_load(&cw.calls), 1);
            CHECK_EQ(closed_finish(&c, &w), 0);
            CHECK_EQ(closed_finish(&c, &w), -EINVAL); /* finished */
            CHECK_EQ(closed(&c, 0, URSA_NOW), 0);
            CHECK_EQ(closed(&c, 1, URSA_NEVER), 0);
            CHECK_EQ(closed_start(&c, &w, cw_fresh(&cw)), 0); /* closed already */
            CHECK_EQ(closed_finish(&c, &w), 0);
            CHECK_EQ(atomic_load(&cw.calls), 0);
            m = chan_free(&c);
            if (m)
                return (void *)m;
        }
    }
    return NULL;
}

static void test_sender_closed_returns_at_the_close_only(void **state)
{
    (void)state;
    ASSERT_OK(basics_body(NULL));
    ASSERT_OK(test_run(1, basics_body, NULL));
}

/* ---- a close racing the waits ---- */

typedef struct race {
    chan_t c;
    int how;
    unsigned yields;
} race_t;

static void *race_waiter(void *arg)
{
    race_t *r = arg;
    CHECK_EQ(closed(&r->c, 1, URSA_NEVER), 0);
    return NULL;
}

/* Two waiters (a task each) against the close, in every interleaving the
 * seeds give: both return 0, none is left queued. */
static void *race_scenario(void *arg)
{
    race_t *r = arg;
    for (int mpmc = 0; mpmc < 2; mpmc++) {
        for (r->how = 0; r->how < 2; r->how++) {
            for (r->yields = 0; r->yields < 4; r->yields++) {
                URSA_SIM_CHECK(chan_make(&r->c, mpmc) == NULL);
                ursa_task_t *t[2];
                for (int i = 0; i < 2; i++)
                    URSA_SIM_CHECK(ursa_spawn(&t[i], race_waiter, r, NULL) == 0);
                yield_n(r->yields);
                URSA_SIM_CHECK(chan_close(&r->c, r->how) == NULL);
                URSA_SIM_CHECK(join_tasks(t, 2) == NULL);
                URSA_SIM_CHECK(chan_free(&r->c) == NULL);
            }
        }
    }
    return NULL;
}

static race_t race;
TEST_EXPLORE(test_sender_closed_never_misses_a_racing_close_over_seeds, race_scenario, &race)

/* Plain threads: waiters block while the main thread closes. */
static void *thread_waiter(void *arg)
{
    return race_waiter(arg);
}

static void test_sender_closed_wakes_every_waiting_thread(void **state)
{
    (void)state;
    static race_t r;
    long rounds = test_scale(200);
    for (long i = 0; i < rounds; i++) {
        for (int mpmc = 0; mpmc < 2; mpmc++) {
            ASSERT_OK(chan_make(&r.c, mpmc));
            pthread_t th[2];
            for (int k = 0; k < 2; k++)
                assert_int_equal(pthread_create(&th[k], NULL, thread_waiter, &r), 0);
            ASSERT_OK(chan_close(&r.c, (int)(i & 1)));
            ASSERT_OK(join_threads(th, 2));
            ASSERT_OK(chan_free(&r.c));
        }
    }
}

TEST_MAIN(cmocka_unit_test(test_sender_closed_returns_at_the_close_only),
          cmocka_unit_test(test_sender_closed_never_misses_a_racing_close_over_seeds),
          cmocka_unit_test(test_sender_closed_wakes_every_waiting_thread))
