/* Semaphore permits as obligations: the held count and a reported double
 * release, a permit left at task or thread exit (reported with its site,
 * every one of its permits back), URSA_SCOPED, and disown/adopt. */
#include "support.h"

#include "queue_peek.h" /* internal: inspect the wait queue */
#include "task_checks.h"

/* ====================================================================== */
/* obligation ledger                                                       */
/* ====================================================================== */

static void *held_count_body(void *arg)
{
    (void)arg;
    ursa_sem_t s;
    URSA_SCOPED(sem_permit, a);
    URSA_SCOPED(sem_permit, b);
    size_t h0 = ursa_held_count();
    CHECK_EQ(ursa_sem_init(&s, 4), 0);
    CHECK_EQ(ursa_sem_acquire(&s, 1, &a, URSA_NOW), 0);
    CHECK_EQ(ursa_held_count(), h0 + 1);
    CHECK_EQ(ursa_sem_acquire(&s, 2, &b, URSA_NEVER), 0);
    CHECK_EQ(ursa_held_count(), h0 + 2);
    CHECK_EQ(ursa_sem_release(&a), 0);
    CHECK_EQ(ursa_held_count(), h0 + 1);
    CHECK_EQ(ursa_sem_release(&b), 0);
    CHECK_EQ(ursa_held_count(), h0);
    CHECK_EQ(ursa_sem_available(&s), 4);

    /* double release: -EINVAL, reported, nothing returned twice */
    int leaks0 = test_leak_count();
    CHECK_EQ(ursa_sem_release(&a), -EINVAL);
    CHECK_EQ(test_leak_count(), leaks0 + 1);
    CHECK_EQ(ursa_sem_release(&b), -EINVAL);
    CHECK_EQ(test_leak_count(), leaks0 + 2);
    CHECK_EQ(ursa_held_count(), h0);
    CHECK_EQ(ursa_sem_available(&s), 4);
    CHECK_EQ(ursa_sem_destroy(&s), 0);
    return NULL;
}

static void test_sem_held_count_tracks_permits_and_double_release_is_reported(void **state)
{
    (void)state;
    test_capture_leaks();
    ASSERT_OK(held_count_body(NULL));
    ASSERT_OK(test_run(2, body_on_worker1, (void *)held_count_body));
}

static int leak_line;

static void *leaking_task(void *arg)
{
    ursa_sem_t *s = arg;
    ursa_sem_permit_t p = {0};
    leak_line = __LINE__ + 1;
    if (ursa_sem_acquire(s, 2, &p, URSA_NEVER) != 0)
        return (void *)"acquire failed";
    if (ursa_sem_available(s) != 1)
        return (void *)"acquire did not take 2";
    return NULL; /* ends holding p */
}

static void *leak_root(void *arg)
{
    ursa_sem_t *s = arg;
    CHECK_OK(join_task(spawn_on(1, leaking_task, s, "leaker")));
    /* released by the runtime when the task ended */
    CHECK_EQ(ursa_sem_available(s), 3);
    CHECK_EQ(peek_sema_len(&s->sema), 0);
    return NULL;
}

static void *leaking_thread(void *arg)
{
    ursa_sem_t *s = arg;
    /* static: the thread's frames are gone when its ledger is swept */
    static ursa_sem_permit_t kept;
    memset(&kept, 0, sizeof kept);
    leak_line = __LINE__ + 1;
    if (ursa_sem_acquire(s, 1, &kept, URSA_NEVER) != 0)
        return (void *)"acquire failed";
    return NULL; /* exits holding it */
}

static void test_sem_permit_left_at_exit_is_reported_and_all_its_permits_return(void **state)
{
    (void)state;
    ursa_sem_t s;
    test_capture_leaks();
    assert_int_equal(ursa_sem_init(&s, 3), 0);
    ASSERT_OK(test_run(2, leak_root, &s));
    assert_int_equal(test_leak_count(), 1);
    assert_string_equal(test_leaks.kind, "semaphore permit");
    assert_string_equal(test_leaks.owner, "leaker");
    assert_int_equal(test_leaks.line, leak_line);
    assert_int_equal(ursa_sem_available(&s), 3);

    /* a plain thread that exits holding a permit: the same */
    test_capture_leaks();
    pthread_t th;
    void *res = NULL;
    assert_int_equal(pthread_create(&th, NULL, leaking_thread, &s), 0);
    assert_int_equal(pthread_join(th, &res), 0);
    ASSERT_OK(res);
    assert_int_equal(test_leak_count(), 1);
    assert_string_equal(test_leaks.kind, "semaphore permit");
    assert_string_equal(test_leaks.owner, "thread");
    assert_int_equal(test_leaks.line, leak_line);
    assert_int_equal(ursa_sem_available(&s), 3);
    assert_int_equal(ursa_sem_destroy(&s), 0);
}

static void *scoped_body(void *arg)
{
    (void)arg;
    ursa_sem_t s;
    size_t h0 = ursa_held_count();
    int leaks0 = test_leak_count();
    CHECK_EQ(ursa_sem_init(&s, 3), 0);
    {
        URSA_SCOPED(sem_permit, p);
        CHECK_EQ(ursa_sem_acquire(&s, 2, &p, URSA_NEVER), 0);
        CHECK_EQ(ursa_sem_available(&s), 1);
        CHECK_EQ(ursa_held_count(), h0 + 1);
    }
    CHECK_EQ(ursa_sem_available(&s), 3);
    CHECK_EQ(ursa_held_count(), h0);
    {
        URSA_SCOPED(sem_permit, p); /* failed acquire: the cleanup does nothing */
        CHECK_EQ(ursa_sem_acquire(&s, 5, &p, URSA_NOW), -EAGAIN);
        CHECK(p.sem == NULL);
    }
    CHECK_EQ(ursa_sem_available(&s), 3);
    {
        URSA_SCOPED(sem_permit, p); /* released by hand: no double release */
        CHECK_EQ(ursa_sem_acquire(&s, 1, &p, URSA_NOW), 0);
        CHECK_EQ(ursa_sem_release(&p), 0);
    }
    {
        URSA_SCOPED(sem_permit, p); /* forgotten: nothing to give back */
        CHECK_EQ(ursa_sem_acquire(&s, 1, &p, URSA_NOW), 0);
        CHECK_EQ(ursa_sem_permit_forget(&p), 0);
    }
    CHECK_EQ(ursa_sem_available(&s), 2);
    CHECK_EQ(ursa_held_count(), h0);
    CHECK_EQ(test_leak_count(), leaks0);
    CHECK_EQ(ursa_sem_destroy(&s), 0);
    return NULL;
}

static void test_sem_scoped_permit_releases_at_scope_exit(void **state)
{
    (void)state;
    test_capture_leaks();
    ASSERT_OK(scoped_body(NULL));
    ASSERT_OK(test_run(2, body_on_worker1, (void *)scoped_body));
}

typedef struct xfer {
    ursa_sem_t s;
    ursa_sem_permit_t p;
    int rc_release, rc_disown, rc_adopt, rc_adopt2, rc_release2;
    size_t held_after_adopt, held_after_release;
} xfer_t;

static void *xfer_stranger(void *arg)
{
    xfer_t *x = arg;
    x->rc_release = ursa_sem_release(&x->p);
    x->rc_disown = ursa_oblig_disown(&x->p.ob);
    return NULL;
}

static void *xfer_stranger_thread(void *arg)
{
    return xfer_stranger(arg);
}

static void *xfer_receiver(void *arg)
{
    xfer_t *x = arg;
    x->rc_adopt = ursa_oblig_adopt(&x->p.ob);
    x->rc_adopt2 = ursa_oblig_adopt(&x->p.ob);
    x->held_after_adopt = ursa_held_count();
    x->rc_release2 = ursa_sem_release(&x->p);
    x->held_after_release = ursa_held_count();
    return NULL;
}

static void *xfer_root(void *arg)
{
    xfer_t *x = arg;
    CHECK_EQ(ursa_sem_init(&x->s, 3), 0);
    memset(&x->p, 0, sizeof x->p);
    CHECK_EQ(ursa_sem_acquire(&x->s, 2, &x->p, URSA_NOW), 0);
    CHECK_EQ(ursa_held_count(), 1);

    /* another task may not release it (nor disown it) */
    x->rc_release = x->rc_disown = 1;
    CHECK_OK(join_task(spawn_on(1, xfer_stranger, x, "stranger")));
    CHECK_EQ(x->rc_release, -EPERM);
    CHECK_EQ(x->rc_disown, -EPERM);
    CHECK(x->p.sem == &x->s);
    CHECK_EQ(ursa_held_count(), 1);
    CHECK_EQ(ursa_sem_available(&x->s), 1);
    /* nor a plain thread */
    x->rc_release = x->rc_disown = 1;
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, xfer_stranger_thread, x), 0);
    CHECK_EQ(pthread_join(th, NULL), 0);
    CHECK_EQ(x->rc_release, -EPERM);
    CHECK_EQ(x->rc_disown, -EPERM);
    CHECK_EQ(ursa_sem_available(&x->s), 1);

    /* hand it over: disown here, adopt and release there */
    CHECK_EQ(ursa_oblig_disown(&x->p.ob), 0);
    CHECK_EQ(ursa_held_count(), 0);
    CHECK_EQ(ursa_oblig_disown(&x->p.ob), -EINVAL); /* not in a ledger now */
    CHECK_EQ(ursa_oblig_disown(NULL), -EINVAL);
    CHECK_EQ(ursa_oblig_adopt(NULL), -EINVAL);
    x->rc_adopt = x->rc_adopt2 = x->rc_release2 = 1;
    CHECK_OK(join_task(spawn_on(1, xfer_receiver, x, "receiver")));
    CHECK_EQ(x->rc_adopt, 0);
    CHECK_EQ(x->rc_adopt2, -EINVAL); /* owned already */
    CHECK_EQ(x->held_after_adopt, 1);
    CHECK_EQ(x->rc_release2, 0);
    CHECK_EQ(x->held_after_release, 0);
    CHECK(x->p.sem == NULL);
    CHECK_EQ(ursa_sem_available(&x->s), 3);
    CHECK_EQ(ursa_held_count(), 0);
    /* released now: adopt of an empty hold is refused */
    CHECK_EQ(ursa_oblig_adopt(&x->p.ob), -EINVAL);
    CHECK_EQ(ursa_sem_destroy(&x->s), 0);
    return NULL;
}

static void test_sem_permit_moves_between_owners_by_disown_and_adopt(void **state)
{
    (void)state;
    xfer_t x;
    memset(&x, 0, sizeof x);
    test_capture_leaks();
    int leaks0 = test_leak_count();
    ASSERT_OK(test_run(2, xfer_root, &x));
    assert_int_equal(test_leak_count(), leaks0); /* -EPERM is not a misuse report */
}

TEST_MAIN(cmocka_unit_test(test_sem_held_count_tracks_permits_and_double_release_is_reported),
          cmocka_unit_test(test_sem_permit_left_at_exit_is_reported_and_all_its_permits_return),
          cmocka_unit_test(test_sem_scoped_permit_releases_at_scope_exit),
          cmocka_unit_test(test_sem_permit_moves_between_owners_by_disown_and_adopt))
