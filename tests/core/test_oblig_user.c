/* User-defined holds (include/ursa/oblig.h, src/core/oblig.c):
 * ursa_oblig_enter / ursa_oblig_discharge, misuse, a hold left at task exit,
 * ownership and disown/adopt. */
#include "support.h"

typedef struct widget {
    atomic_int leaked_calls;
    uint64_t leaked_n;
} widget_t;

static void widget_leaked(void *target, uint64_t n)
{
    widget_t *w = target;
    w->leaked_n = n;
    atomic_fetch_add(&w->leaked_calls, 1);
}

static const ursa_oblig_kind_t widget_kind = {"widget", widget_leaked};

static void test_oblig_user_hold_enters_discharges_and_can_hold_again(void **state)
{
    (void)state;
    widget_t w = {0};
    ursa_oblig_t ob = {0};
    size_t before = ursa_held_count();
    assert_int_equal(ursa_oblig_enter(&ob, &widget_kind, &w, 7, URSA_SITE), 0);
    assert_int_equal(ursa_held_count(), before + 1);
    assert_int_equal(ursa_oblig_discharge(&ob), 0);
    assert_int_equal(ursa_held_count(), before);
    /* The same object may hold again once discharged. */
    assert_int_equal(ursa_oblig_enter(&ob, &widget_kind, &w, 8, NULL), 0);
    assert_int_equal(ursa_oblig_discharge(&ob), 0);
    assert_int_equal(atomic_load(&w.leaked_calls), 0);
}

static void test_oblig_user_hold_rejects_bad_input_and_reports_a_double_discharge(void **state)
{
    (void)state;
    widget_t w = {0};
    ursa_oblig_t ob = {0};
    static const ursa_oblig_kind_t no_name = {NULL, widget_leaked};
    static const ursa_oblig_kind_t no_release = {"x", NULL};
    assert_int_equal(ursa_oblig_enter(NULL, &widget_kind, &w, 1, NULL), -EINVAL);
    assert_int_equal(ursa_oblig_enter(&ob, NULL, &w, 1, NULL), -EINVAL);
    assert_int_equal(ursa_oblig_enter(&ob, &no_name, &w, 1, NULL), -EINVAL);
    assert_int_equal(ursa_oblig_enter(&ob, &no_release, &w, 1, NULL), -EINVAL);
    assert_int_equal(ursa_oblig_discharge(NULL), -EINVAL);

    /* Entering twice, discharging twice. */
    test_capture_leaks();
    assert_int_equal(ursa_oblig_enter(&ob, &widget_kind, &w, 1, NULL), 0);
    assert_int_equal(ursa_oblig_enter(&ob, &widget_kind, &w, 1, NULL), -EINVAL);
    assert_int_equal(ursa_held_count(), 1);
    assert_int_equal(ursa_oblig_discharge(&ob), 0);
    assert_int_equal(ursa_oblig_discharge(&ob), -EINVAL);
    assert_int_equal(test_leak_count(), 1); /* the double discharge was reported */
    ursa_leak_set_hook(NULL, NULL);
}

/* ursa_oblig_discharge must not discharge one of ursa's own holds: the
 * mutex would stay locked with nobody able to unlock it. */
static void test_oblig_discharge_refuses_ursas_own_holds(void **state)
{
    (void)state;
    ursa_mutex_t m;
    ursa_mutex_init(&m);
    ursa_mutex_guard_t g = {0};
    assert_int_equal(ursa_mutex_lock(&m, &g, URSA_NOW), 0);
    assert_int_equal(ursa_oblig_discharge(&g.ob), -EINVAL);
    assert_true(ursa_mutex_is_locked(&m));
    assert_int_equal(ursa_mutex_unlock(&g), 0);
    assert_false(ursa_mutex_is_locked(&m));
    assert_int_equal(ursa_mutex_destroy(&m), 0);
}

static void *leaking_task(void *arg)
{
    static ursa_oblig_t ob; /* outlives the task, as a leaked hold may not */
    memset(&ob, 0, sizeof ob);
    return ursa_oblig_enter(&ob, &widget_kind, arg, 42, URSA_SITE) == 0 ? arg : NULL;
}

static void *spawn_leaker(void *arg)
{
    ursa_task_t *t;
    if (ursa_spawn(&t, leaking_task, arg, &(ursa_spawn_opts_t){.name = "leaker"}))
        return NULL;
    void *res = NULL;
    return ursa_task_join(t, &res, URSA_NEVER) == 0 ? res : NULL;
}

/* A task that ends holding a user hold: reported with its site and kind,
 * and released through release_leaked with the recorded target and n. */
static void test_oblig_user_hold_left_at_task_exit_is_reported_and_released(void **state)
{
    (void)state;
    widget_t w = {0};
    test_capture_leaks();
    assert_ptr_equal(test_run(1, spawn_leaker, &w), &w);
    assert_int_equal(atomic_load(&w.leaked_calls), 1);
    assert_int_equal(w.leaked_n, 42);
    char owner[64], kind[96];
    int line = 0;
    test_leak_snapshot(owner, sizeof owner, kind, sizeof kind, &line);
    assert_string_equal(owner, "leaker");
    assert_string_equal(kind, "widget");
    assert_true(line > 0);
    ursa_leak_set_hook(NULL, NULL);
}

typedef struct handover {
    ursa_oblig_t *ob;
    int other_discharge; /* what a non-owner's discharge returned */
    int adopt, discharge;
} handover_t;

static void *non_owner(void *arg)
{
    handover_t *h = arg;
    h->other_discharge = ursa_oblig_discharge(h->ob);
    return NULL;
}

static void *adopter(void *arg)
{
    handover_t *h = arg;
    h->adopt = ursa_oblig_adopt(h->ob);
    h->discharge = ursa_oblig_discharge(h->ob);
    return NULL;
}

/* Only the owner discharges; disown/adopt hands a user hold over. */
static void test_oblig_user_hold_is_discharged_by_its_owner_and_handed_over(void **state)
{
    (void)state;
    widget_t w = {0};
    ursa_oblig_t ob = {0};
    handover_t h = {.ob = &ob};
    pthread_t th;
    assert_int_equal(ursa_oblig_enter(&ob, &widget_kind, &w, 1, NULL), 0);
    assert_int_equal(pthread_create(&th, NULL, non_owner, &h), 0);
    pthread_join(th, NULL);
    assert_int_equal(h.other_discharge, -EPERM);
    assert_int_equal(ursa_oblig_disown(&ob), 0);
    assert_int_equal(pthread_create(&th, NULL, adopter, &h), 0);
    pthread_join(th, NULL);
    assert_int_equal(h.adopt, 0);
    assert_int_equal(h.discharge, 0);
    assert_int_equal(atomic_load(&w.leaked_calls), 0);
}

TEST_MAIN(cmocka_unit_test(test_oblig_user_hold_enters_discharges_and_can_hold_again),
          cmocka_unit_test(test_oblig_user_hold_rejects_bad_input_and_reports_a_double_discharge),
          cmocka_unit_test(test_oblig_discharge_refuses_ursas_own_holds),
          cmocka_unit_test(test_oblig_user_hold_left_at_task_exit_is_reported_and_released),
          cmocka_unit_test(test_oblig_user_hold_is_discharged_by_its_owner_and_handed_over))
