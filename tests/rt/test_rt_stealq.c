/* The stealable run queue (src/rt/stealq.h) alone: its owner's and a
 * thief's steps interleaved by seed, then real threads. Every task leaves
 * exactly once; the owner sees its own tasks in FIFO order. */
#include "support.h"

#include <pthread.h>

#include "partner_wait.h"
#include "rt/stealq.h"
#include "rt/task.h"

static uint64_t mix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

enum { QTASKS = 4000 };

static ursa_task_t qtasks[QTASKS];
static _Atomic uint8_t qtaken[QTASKS];

/* Marks t taken; false if it was taken before (lost exactly-once). */
static bool take(ursa_task_t *t)
{
    return atomic_fetch_add(&qtaken[t - qtasks], 1) == 0;
}

static bool qinvariants(ursa__stealq_t *q, uint32_t tail)
{
    uint64_t h = atomic_load(&q->head);
    uint32_t s = ursa__stealq_steal(h), r = ursa__stealq_real(h);
    return (uint32_t)(r - s) <= (uint32_t)(tail - s) && tail - s <= URSA__STEALQ_CAP;
}

/* One seed: the owner pushes, pops and overflows while a thief's claim,
 * copy and release are interleaved with it step by step. Every task leaves
 * exactly once; the owner sees its own tasks in FIFO order. */
static const char *stealq_steps(uint64_t seed)
{
    static ursa__stealq_t q;
    memset(&q, 0, sizeof q);
    memset(qtaken, 0, sizeof qtaken);
    uint64_t rng = seed;
    int pushed = 0, left = 0;
    int thief = 0; /* 0 idle, 1 claimed, 2 copied */
    uint32_t first = 0, n = 0, copied = 0;
    long last_popped = -1;
    while (pushed < QTASKS || left || thief) {
        switch (mix(&rng) % 6) {
        case 0:
        case 1: /* owner pushes */
            if (pushed < QTASKS) {
                ursa_task_t *t = &qtasks[pushed++];
                left++;
                if (!ursa__stealq_push(&q, t)) {
                    uint32_t k;
                    for (ursa_task_t *x = ursa__stealq_overflow(&q, t, &k); x; x = x->rq_next) {
                        if (!take(x))
                            return "overflowed task taken twice";
                        left--;
                    }
                }
            }
            break;
        case 2: { /* owner pops */
            ursa_task_t *t = ursa__stealq_pop(&q);
            if (t) {
                if (!take(t))
                    return "popped task taken twice";
                if (t - qtasks <= last_popped)
                    return "owner popped out of order";
                last_popped = t - qtasks;
                left--;
            }
            break;
        }
        case 3: /* thief: claim */
            if (thief == 0 && (n = ursa__stealq_claim(&q, &first)) != 0) {
                thief = 1;
                copied = 0;
            }
            break;
        case 4: /* thief: copy one slot */
            if (thief == 1) {
                ursa_task_t *t = atomic_load(&q.buf[(first + copied) & URSA__STEALQ_MASK]);
                if (!take(t))
                    return "stolen task taken twice";
                left--;
                if (++copied == n)
                    thief = 2;
            }
            break;
        default: /* thief: release */
            if (thief == 2) {
                ursa__stealq_release(&q);
                thief = 0;
            }
            break;
        }
        if (!qinvariants(&q, atomic_load(&q.tail)))
            return "steal <= real <= tail <= steal + CAP broken";
    }
    for (int i = 0; i < QTASKS; i++)
        if (atomic_load(&qtaken[i]) != 1)
            return "a task was lost";
    return NULL;
}

static void test_rt_stealq_loses_and_repeats_nothing_with_steps_interleaved_by_seed(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= TEST_SEEDS; seed++) {
        const char *m = stealq_steps(seed);
        if (m)
            fail_msg("seed %llu: %s", (unsigned long long)seed, m);
    }
}

/* Real threads: one owner pushes and pops, two thieves steal into queues
 * of their own and drain them; every task is taken exactly once. */
typedef struct qstress {
    ursa__stealq_t owner;
    ursa__stealq_t thief[2];
    _Atomic int done;
    _Atomic long stolen;
} qstress_t;

static qstress_t qs;

static void *thief_main(void *arg)
{
    ursa__stealq_t *mine = &qs.thief[(intptr_t)arg];
    long n = 0;
    for (;;) {
        bool done = atomic_load(&qs.done);
        n += ursa__stealq_steal_into(&qs.owner, mine);
        for (ursa_task_t *t; (t = ursa__stealq_pop(mine));)
            if (!take(t))
                return (void *)"stolen task taken twice";
        if (done && !ursa__stealq_len(&qs.owner))
            break;
        partner_wait_step();
    }
    atomic_fetch_add(&qs.stolen, n);
    return NULL;
}

static void test_rt_stealq_loses_and_repeats_nothing_with_two_thief_threads(void **state)
{
    (void)state;
    long rounds = test_scale(50);
    long stolen = 0;
    for (long round = 0; round < rounds; round++) {
        memset(&qs, 0, sizeof qs);
        memset(qtaken, 0, sizeof qtaken);
        pthread_t th[2];
        for (intptr_t i = 0; i < 2; i++)
            assert_int_equal(pthread_create(&th[i], NULL, thief_main, (void *)i), 0);
        uint64_t rng = (uint64_t)round;
        for (int i = 0; i < QTASKS; i++) {
            ursa_task_t *t = &qtasks[i];
            if (!ursa__stealq_push(&qs.owner, t)) {
                uint32_t k;
                for (ursa_task_t *x = ursa__stealq_overflow(&qs.owner, t, &k); x; x = x->rq_next)
                    assert_true(take(x));
            }
            while (mix(&rng) % 3 == 0) { /* pop a few now and then */
                ursa_task_t *x = ursa__stealq_pop(&qs.owner);
                if (!x)
                    break;
                assert_true(take(x));
            }
        }
        for (ursa_task_t *x; (x = ursa__stealq_pop(&qs.owner));)
            assert_true(take(x));
        atomic_store(&qs.done, 1);
        for (int i = 0; i < 2; i++) {
            void *res;
            assert_int_equal(pthread_join(th[i], &res), 0);
            if (res)
                fail_msg("%s", (const char *)res);
        }
        for (int i = 0; i < QTASKS; i++)
            assert_int_equal(atomic_load(&qtaken[i]), 1);
        stolen += atomic_load(&qs.stolen);
    }
    print_message("stealq threads: %ld of %ld tasks stolen\n", stolen, rounds * QTASKS);
}

TEST_MAIN(cmocka_unit_test(test_rt_stealq_loses_and_repeats_nothing_with_steps_interleaved_by_seed),
          cmocka_unit_test(test_rt_stealq_loses_and_repeats_nothing_with_two_thief_threads))
