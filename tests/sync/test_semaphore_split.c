/* Semaphore permit split and merge (Tokio's SemaphorePermit::split /
 * merge): permits move between holds without touching the semaphore's
 * count; each hold is released on its own, and a leak sweep returns
 * exactly what each hold has. Errors change nothing. */
#include "support.h"

#include "raw_checks.h"

static void test_sem_split_moves_permits_into_a_new_hold(void **state)
{
    (void)state;
    ursa_sem_t s;
    assert_int_equal(ursa_sem_init(&s, 5), 0);
    ursa_sem_permit_t p = {0}, q = {0};
    assert_int_equal(ursa_sem_acquire(&s, 4, &p, URSA_NOW), 0);
    size_t held = ursa_held_count();
    assert_int_equal(ursa_sem_permit_split(&p, 1, &q), 0);
    assert_int_equal(p.n, 3);
    assert_int_equal(q.n, 1);
    assert_ptr_equal(q.sem, &s);
    assert_int_equal(ursa_held_count(), held + 1);
    assert_int_equal(ursa_sem_available(&s), 1); /* the count did not move */
    assert_int_equal(ursa_sem_release(&q), 0);
    assert_int_equal(ursa_sem_available(&s), 2);
    assert_int_equal(ursa_sem_release(&p), 0);
    assert_int_equal(ursa_sem_available(&s), 5);
    assert_int_equal(ursa_held_count(), held - 1);
    assert_int_equal(ursa_sem_destroy(&s), 0);
}

static void test_sem_split_of_every_permit_leaves_an_empty_hold(void **state)
{
    (void)state;
    ursa_sem_t s;
    assert_int_equal(ursa_sem_init(&s, 2), 0);
    ursa_sem_permit_t p = {0}, q = {0};
    assert_int_equal(ursa_sem_acquire(&s, 2, &p, URSA_NOW), 0);
    assert_int_equal(ursa_sem_permit_split(&p, 2, &q), 0);
    assert_int_equal(p.n, 0);
    assert_int_equal(q.n, 2);
    assert_int_equal(ursa_sem_release(&p), 0); /* still a hold: returns nothing */
    assert_int_equal(ursa_sem_available(&s), 0);
    assert_int_equal(ursa_sem_release(&q), 0);
    assert_int_equal(ursa_sem_available(&s), 2);
    assert_int_equal(test_leak_count(), 0); /* no misuse on the way */
    assert_int_equal(ursa_sem_destroy(&s), 0);
}

static void test_sem_split_errors_change_nothing(void **state)
{
    (void)state;
    ursa_sem_t s;
    assert_int_equal(ursa_sem_init(&s, 4), 0);
    ursa_sem_permit_t p = {0}, q = {0}, other = {0}, empty = {0};
    assert_int_equal(ursa_sem_acquire(&s, 2, &p, URSA_NOW), 0);
    assert_int_equal(ursa_sem_acquire(&s, 1, &other, URSA_NOW), 0);
    size_t held = ursa_held_count();
    assert_int_equal(ursa_sem_permit_split(NULL, 1, &q), -EINVAL);
    assert_int_equal(ursa_sem_permit_split(&p, 1, NULL), -EINVAL);
    assert_int_equal(ursa_sem_permit_split(&p, 0, &q), -EINVAL);
    assert_int_equal(ursa_sem_permit_split(&p, 3, &q), -EINVAL);
    assert_int_equal(ursa_sem_permit_split(&p, 1, &p), -EINVAL);
    assert_int_equal(ursa_sem_permit_split(&p, 1, &other), -EINVAL); /* out holds */
    assert_int_equal(test_leak_count(), 0);
    assert_int_equal(ursa_sem_permit_split(&empty, 1, &q), -EINVAL);
    assert_int_equal(test_leak_count(), 1); /* a released permit used: misuse */
    assert_int_equal(p.n, 2);
    assert_null(q.sem);
    assert_int_equal(other.n, 1);
    assert_int_equal(ursa_held_count(), held);
    assert_int_equal(ursa_sem_release(&p), 0);
    assert_int_equal(ursa_sem_release(&other), 0);
    assert_int_equal(ursa_sem_available(&s), 4);
    assert_int_equal(ursa_sem_destroy(&s), 0);
}

static void test_sem_merge_moves_every_permit(void **state)
{
    (void)state;
    ursa_sem_t s;
    assert_int_equal(ursa_sem_init(&s, 5), 0);
    ursa_sem_permit_t a = {0}, b = {0};
    assert_int_equal(ursa_sem_acquire(&s, 2, &a, URSA_NOW), 0);
    assert_int_equal(ursa_sem_acquire(&s, 3, &b, URSA_NOW), 0);
    size_t held = ursa_held_count();
    assert_int_equal(ursa_sem_permit_merge(&a, &b), 0);
    assert_int_equal(a.n, 5);
    assert_null(b.sem);
    assert_int_equal(ursa_held_count(), held - 1);
    assert_int_equal(ursa_sem_release(&b), -EINVAL); /* b holds nothing now */
    assert_int_equal(test_leak_count(), 1);
    assert_int_equal(ursa_sem_available(&s), 0);
    assert_int_equal(ursa_sem_release(&a), 0);
    assert_int_equal(ursa_sem_available(&s), 5);
    assert_int_equal(ursa_sem_destroy(&s), 0);
}

static void test_sem_merge_errors_change_nothing(void **state)
{
    (void)state;
    ursa_sem_t s, t;
    assert_int_equal(ursa_sem_init(&s, 2), 0);
    assert_int_equal(ursa_sem_init(&t, 2), 0);
    ursa_sem_permit_t a = {0}, b = {0}, empty = {0};
    assert_int_equal(ursa_sem_acquire(&s, 1, &a, URSA_NOW), 0);
    assert_int_equal(ursa_sem_acquire(&t, 1, &b, URSA_NOW), 0);
    size_t held = ursa_held_count();
    assert_int_equal(ursa_sem_permit_merge(&a, &b), -EINVAL); /* two semaphores */
    assert_int_equal(ursa_sem_permit_merge(&a, &a), -EINVAL);
    assert_int_equal(ursa_sem_permit_merge(NULL, &a), -EINVAL);
    assert_int_equal(ursa_sem_permit_merge(&a, NULL), -EINVAL);
    assert_int_equal(test_leak_count(), 0);
    assert_int_equal(ursa_sem_permit_merge(&a, &empty), -EINVAL);
    assert_int_equal(ursa_sem_permit_merge(&empty, &a), -EINVAL);
    assert_int_equal(test_leak_count(), 2);
    assert_int_equal(a.n, 1);
    assert_int_equal(b.n, 1);
    assert_int_equal(ursa_held_count(), held);
    assert_int_equal(ursa_sem_release(&a), 0);
    assert_int_equal(ursa_sem_release(&b), 0);
    assert_int_equal(ursa_sem_available(&s) + ursa_sem_available(&t), 4);
    assert_int_equal(ursa_sem_destroy(&s), 0);
    assert_int_equal(ursa_sem_destroy(&t), 0);
}

/* Another thread's permit: split and merge refuse it. */
typedef struct foreign {
    ursa_sem_permit_t *p;
    int split_rc, merge_rc, merge_into_rc;
} foreign_t;

static void *use_foreign(void *arg)
{
    foreign_t *f = arg;
    ursa_sem_permit_t q = {0}, mine = {0};
    f->split_rc = ursa_sem_permit_split(f->p, 1, &q);
    if (ursa_sem_acquire(f->p->sem, 1, &mine, URSA_NOW) != 0)
        return "acquire";
    f->merge_rc = ursa_sem_permit_merge(&mine, f->p);
    f->merge_into_rc = ursa_sem_permit_merge(f->p, &mine);
    return ursa_sem_release(&mine) == 0 ? NULL : "release";
}

static void test_sem_another_owners_permit_is_eperm(void **state)
{
    (void)state;
    ursa_sem_t s;
    assert_int_equal(ursa_sem_init(&s, 3), 0);
    ursa_sem_permit_t p = {0};
    assert_int_equal(ursa_sem_acquire(&s, 2, &p, URSA_NOW), 0);
    foreign_t f = {&p, 0, 0, 0};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, use_foreign, &f), 0);
    void *res = "not joined";
    assert_int_equal(pthread_join(th, &res), 0);
    assert_null(res);
    assert_int_equal(f.split_rc, -EPERM);
    assert_int_equal(f.merge_rc, -EPERM);
    assert_int_equal(f.merge_into_rc, -EPERM);
    assert_int_equal(p.n, 2);
    assert_int_equal(ursa_sem_release(&p), 0);
    assert_int_equal(ursa_sem_available(&s), 3);
    assert_int_equal(ursa_sem_destroy(&s), 0);
}

/* A task that splits and merges, then ends holding everything: the sweep
 * returns exactly the permits each hold has, once. */
static void *split_merge_then_leak(void *arg)
{
    ursa_sem_t *s = arg;
    ursa_sem_permit_t p = {0}, q = {0}, r = {0};
    if (ursa_sem_acquire(s, 6, &p, URSA_NEVER) || ursa_sem_permit_split(&p, 2, &q) ||
        ursa_sem_permit_split(&q, 1, &r) || ursa_sem_permit_merge(&p, &r))
        return "split/merge";
    if (p.n != 5 || q.n != 1 || r.sem)
        return "wrong counts";
    return NULL; /* p and q leak */
}

static void *leak_root(void *arg)
{
    ursa_task_t *t;
    if (ursa_spawn(&t, split_merge_then_leak, arg, &(ursa_spawn_opts_t){URSA_ON_WORKER(1)}))
        return "spawn";
    void *res = "join";
    if (ursa_task_join(t, &res, URSA_NEVER))
        return "join";
    return res;
}

static void test_sem_leak_after_split_and_merge_returns_exactly_what_is_held(void **state)
{
    (void)state;
    ursa_sem_t s;
    assert_int_equal(ursa_sem_init(&s, 6), 0);
    assert_null(test_run(2, leak_root, &s));
    assert_int_equal(test_leak_count(), 2); /* p and q */
    assert_int_equal(ursa_sem_available(&s), 6);
    assert_int_equal(ursa_sem_destroy(&s), 0);
}

/* Tasks on two workers and a plain thread: acquire a batch, split one off,
 * release each on its own or merge them back; the count ends whole. */
static void *split_churn(void *arg)
{
    ursa_sem_t *s = arg;
    for (long i = 0; i < test_scale(2000); i++) {
        ursa_sem_permit_t p = {0}, q = {0};
        if (ursa_sem_acquire(s, 3, &p, URSA_NEVER) || ursa_sem_permit_split(&p, 1 + i % 3, &q))
            return "acquire/split";
        if (i % 2 && ursa_sem_permit_merge(&p, &q))
            return "merge";
        if (ursa_sem_release(&p) || (q.sem && ursa_sem_release(&q)))
            return "release";
    }
    return NULL;
}

static void *churn_root(void *arg)
{
    ursa_task_t *t;
    if (ursa_spawn(&t, split_churn, arg, &(ursa_spawn_opts_t){URSA_ON_WORKER(1)}))
        return "spawn";
    void *mine = split_churn(arg), *theirs = "join";
    if (ursa_task_join(t, &theirs, URSA_NEVER))
        return "join";
    return mine ? mine : theirs;
}

static void test_sem_split_and_merge_under_contention_keep_the_count(void **state)
{
    (void)state;
    ursa_sem_t s;
    assert_int_equal(ursa_sem_init(&s, 4), 0);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, split_churn, &s), 0);
    assert_null(test_run(2, churn_root, &s));
    void *res = "not joined";
    assert_int_equal(pthread_join(th, &res), 0);
    assert_null(res);
    assert_int_equal(ursa_sem_available(&s), 4);
    assert_int_equal(ursa_sem_destroy(&s), 0);
}

TEST_MAIN(LEAK_CHECKED(test_sem_split_moves_permits_into_a_new_hold),
          LEAK_CHECKED(test_sem_split_of_every_permit_leaves_an_empty_hold),
          LEAK_CHECKED(test_sem_split_errors_change_nothing),
          LEAK_CHECKED(test_sem_merge_moves_every_permit),
          LEAK_CHECKED(test_sem_merge_errors_change_nothing),
          LEAK_CHECKED(test_sem_another_owners_permit_is_eperm),
          LEAK_CHECKED(test_sem_leak_after_split_and_merge_returns_exactly_what_is_held),
          LEAK_CHECKED(test_sem_split_and_merge_under_contention_keep_the_count))
