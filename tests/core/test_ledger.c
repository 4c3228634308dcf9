/* The obligation ledger's records (src/core/oblig.h) under the uncontended
 * fast paths: holds released out of order (a record on the free list) and
 * newest first (top shrinks), records reused, and what a leak sweep sees
 * afterwards: exactly the holds still held, each with its own site, kind
 * and count. A disowned hold carries its target and count (the record is
 * gone) to the adopter's ledger. Every leak here happens on a plain
 * thread, swept when it exits. */
#include "support.h"

/* Every report, not only the last. */
static struct {
    pthread_mutex_t lock;
    int count;
    int lines[8];
    char kinds[8][32];
} seen = {PTHREAD_MUTEX_INITIALIZER, 0, {0}, {{0}}};

static void record_hook(void *ctx, const char *owner, const char *kind, const ursa_site_t *site)
{
    (void)ctx;
    (void)owner;
    pthread_mutex_lock(&seen.lock);
    if (seen.count < 8) {
        seen.lines[seen.count] = site ? site->line : 0;
        snprintf(seen.kinds[seen.count], sizeof seen.kinds[0], "%s", kind);
    }
    seen.count++;
    pthread_mutex_unlock(&seen.lock);
}

static void capture(void)
{
    pthread_mutex_lock(&seen.lock);
    seen.count = 0;
    pthread_mutex_unlock(&seen.lock);
    ursa_leak_set_abort(false);
    ursa_leak_set_hook(record_hook, NULL);
}

/* Whether a report for `kind` at `line` was seen. */
static bool reported(const char *kind, int line)
{
    bool found = false;
    pthread_mutex_lock(&seen.lock);
    for (int i = 0; i < seen.count && i < 8; i++)
        found = found || (seen.lines[i] == line && strcmp(seen.kinds[i], kind) == 0);
    pthread_mutex_unlock(&seen.lock);
    return found;
}

/* Runs fn(arg) on a plain thread of its own, whose ledger is swept when
 * it exits, with every report captured. */
static void run_on_a_thread(void *(*fn)(void *), void *arg)
{
    capture();
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, fn, arg), 0);
    pthread_join(th, NULL);
    ursa_leak_set_hook(NULL, NULL);
}

typedef struct shuffle {
    ursa_mutex_t a, b, c, d;
    ursa_sem_t s;
    int line_a, line_s, line_d;
    size_t held[3];
    int bad;
} shuffle_t;

/* Takes a, 3 permits, b, c; releases b (not the newest: free list), then
 * c (the newest); takes d (into b's record); leaks a, the permits and d. */
static void *shuffle_and_leak(void *arg)
{
    shuffle_t *x = arg;
    static ursa_mutex_guard_t ga, gb, gc, gd; /* the thread's frames are gone at its sweep */
    static ursa_sem_permit_t p;
    x->line_a = __LINE__; x->bad += ursa_mutex_lock(&x->a, &ga, URSA_NEVER) != 0;
    x->line_s = __LINE__; x->bad += ursa_sem_acquire(&x->s, 3, &p, URSA_NEVER) != 0;
    x->bad += ursa_mutex_lock(&x->b, &gb, URSA_NEVER) != 0;
    x->bad += ursa_mutex_lock(&x->c, &gc, URSA_NEVER) != 0;
    x->held[0] = ursa_held_count();
    x->bad += ursa_mutex_unlock(&gb) != 0;
    x->bad += ursa_mutex_unlock(&gc) != 0;
    x->held[1] = ursa_held_count();
    x->line_d = __LINE__; x->bad += ursa_mutex_lock(&x->d, &gd, URSA_NEVER) != 0;
    x->held[2] = ursa_held_count();
    /* Released ones stay released: a second unlock is a reported misuse. */
    x->bad += ursa_mutex_unlock(&gb) != -EINVAL;
    x->bad += ursa_mutex_unlock(&gc) != -EINVAL;
    return NULL;
}

static void test_ledger_records_reused_out_of_order_and_the_sweep_sees_what_is_held(void **state)
{
    (void)state;
    static shuffle_t x;
    assert_int_equal(ursa_mutex_init(&x.a), 0);
    assert_int_equal(ursa_mutex_init(&x.b), 0);
    assert_int_equal(ursa_mutex_init(&x.c), 0);
    assert_int_equal(ursa_mutex_init(&x.d), 0);
    assert_int_equal(ursa_sem_init(&x.s, 5), 0);
    run_on_a_thread(shuffle_and_leak, &x);
    assert_int_equal(x.bad, 0);
    assert_int_equal(x.held[0], 4);
    assert_int_equal(x.held[1], 2);
    assert_int_equal(x.held[2], 3);
    /* Two double unlocks and three leaks, each leak with its own site. */
    assert_int_equal(seen.count, 5);
    assert_true(reported("mutex guard", x.line_a));
    assert_true(reported("semaphore permit", x.line_s));
    assert_true(reported("mutex guard", x.line_d));
    /* Released by the sweep: the leaked mutexes poisoned, b and c not. */
    ursa_mutex_guard_t g = {0};
    assert_int_equal(ursa_mutex_lock(&x.a, &g, URSA_NOW), -EOWNERDEAD);
    assert_int_equal(ursa_mutex_consistent(&x.a), 0);
    assert_int_equal(ursa_mutex_unlock(&g), 0);
    assert_int_equal(ursa_mutex_lock(&x.d, &g, URSA_NOW), -EOWNERDEAD);
    assert_int_equal(ursa_mutex_consistent(&x.d), 0);
    assert_int_equal(ursa_mutex_unlock(&g), 0);
    assert_int_equal(ursa_mutex_lock(&x.b, &g, URSA_NOW), 0);
    assert_int_equal(ursa_mutex_unlock(&g), 0);
    assert_int_equal(ursa_mutex_lock(&x.c, &g, URSA_NOW), 0);
    assert_int_equal(ursa_mutex_unlock(&g), 0);
    assert_int_equal(ursa_sem_available(&x.s), 5);
    assert_int_equal(ursa_held_count(), 0);
}

typedef struct adopt {
    ursa_sem_permit_t *p;
    int adopt_rc;
    size_t held;
} adopt_t;

static void *adopt_and_leak(void *arg)
{
    adopt_t *a = arg;
    a->adopt_rc = ursa_oblig_adopt(&a->p->ob);
    a->held = ursa_held_count();
    return NULL; /* still holding the adopted permit */
}

/* The disowned permit's record left its first owner's ledger: what the
 * adopter's sweep releases (its semaphore, its 3 permits, its site) came
 * with the hold. */
static void test_ledger_disowned_hold_carries_its_target_and_count_to_the_adopter(void **state)
{
    (void)state;
    static ursa_sem_t s;
    static ursa_sem_permit_t p;
    assert_int_equal(ursa_sem_init(&s, 4), 0);
    int line = __LINE__; assert_int_equal(ursa_sem_acquire(&s, 3, &p, URSA_NEVER), 0);
    size_t before = ursa_held_count();
    assert_int_equal(ursa_oblig_disown(&p.ob), 0);
    assert_int_equal(ursa_held_count(), before - 1);
    adopt_t a = {.p = &p};
    run_on_a_thread(adopt_and_leak, &a);
    assert_int_equal(a.adopt_rc, 0);
    assert_int_equal(a.held, 1);
    assert_int_equal(seen.count, 1);
    assert_true(reported("semaphore permit", line));
    assert_int_equal(ursa_sem_available(&s), 4);
}

typedef struct stack_of_holds {
    ursa_mutex_t m[6];
    int bad;
} stack_of_holds_t;

/* More holds than the inline records (the table grows), released newest
 * first, then again oldest first: every record is found and freed. */
static void *grow_and_release(void *arg)
{
    stack_of_holds_t *x = arg;
    ursa_mutex_guard_t g[6] = {0};
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 6; i++)
            x->bad += ursa_mutex_lock(&x->m[i], &g[i], URSA_NEVER) != 0;
        x->bad += ursa_held_count() != 6;
        for (int i = 0; i < 6; i++) {
            int k = round == 0 ? 5 - i : i;
            x->bad += ursa_mutex_unlock(&g[k]) != 0;
            x->bad += ursa_held_count() != (size_t)(5 - i);
        }
    }
    return NULL;
}

static void test_ledger_grows_and_releases_newest_first_and_oldest_first(void **state)
{
    (void)state;
    stack_of_holds_t x = {0};
    for (int i = 0; i < 6; i++)
        assert_int_equal(ursa_mutex_init(&x.m[i]), 0);
    run_on_a_thread(grow_and_release, &x);
    assert_int_equal(x.bad, 0);
    assert_int_equal(seen.count, 0);
    for (int i = 0; i < 6; i++)
        assert_int_equal(ursa_mutex_destroy(&x.m[i]), 0);
}

TEST_MAIN(cmocka_unit_test(test_ledger_records_reused_out_of_order_and_the_sweep_sees_what_is_held),
          cmocka_unit_test(test_ledger_disowned_hold_carries_its_target_and_count_to_the_adopter),
          cmocka_unit_test(test_ledger_grows_and_releases_newest_first_and_oldest_first))
