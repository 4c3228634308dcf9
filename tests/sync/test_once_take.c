/* Once cell take and into_inner (Tokio's OnceCell::take / into_inner):
 * the value moves to the caller and the destructor never sees it; take
 * leaves a cell that can be set or initialised again; both refuse, like
 * destroy, while an initializer runs or waiters queue. */
#include "support.h"

#include "raw_checks.h"

/* The destructor's calls, and the last value it got. */
static _Atomic int dtor_calls;
static void *_Atomic dtor_last;

static void counting_dtor(void *v)
{
    atomic_fetch_add(&dtor_calls, 1);
    atomic_store(&dtor_last, v);
}

static void fresh(ursa_once_cell_t *cell)
{
    atomic_store(&dtor_calls, 0);
    atomic_store(&dtor_last, NULL);
    assert_int_equal(ursa_once_init(cell, counting_dtor), 0);
}

static int v1, v2, v3;

static int init_v3(void *arg, void **out)
{
    (void)arg;
    *out = &v3;
    return 0;
}

static void test_once_take_moves_the_value_and_empties_the_cell(void **state)
{
    (void)state;
    ursa_once_cell_t cell;
    fresh(&cell);
    assert_int_equal(ursa_once_set(&cell, &v1), 0);
    void *got = NULL;
    assert_int_equal(ursa_once_take(&cell, &got), 1);
    assert_ptr_equal(got, &v1);
    assert_false(ursa_once_is_set(&cell));
    assert_int_equal(ursa_once_get(&cell, NULL), -EAGAIN);
    assert_int_equal(atomic_load(&dtor_calls), 0); /* the value is ours now */
    /* set again; destroy destroys only the new value */
    assert_int_equal(ursa_once_set(&cell, &v2), 0);
    assert_int_equal(ursa_once_destroy(&cell), 0);
    assert_int_equal(atomic_load(&dtor_calls), 1);
    assert_ptr_equal(atomic_load(&dtor_last), &v2);
}

static void test_once_take_then_get_or_init_initialises_again(void **state)
{
    (void)state;
    ursa_once_cell_t cell;
    fresh(&cell);
    void *got = NULL;
    assert_int_equal(ursa_once_get_or_init(&cell, init_v3, NULL, &got, URSA_NEVER), 0);
    assert_ptr_equal(got, &v3);
    assert_int_equal(ursa_once_take(&cell, NULL), 1); /* value may be NULL: dropped */
    got = NULL;
    assert_int_equal(ursa_once_set(&cell, &v1), 0);
    assert_int_equal(ursa_once_take(&cell, &got), 1);
    assert_ptr_equal(got, &v1);
    got = NULL;
    assert_int_equal(ursa_once_get_or_init(&cell, init_v3, NULL, &got, URSA_NOW), 0);
    assert_ptr_equal(got, &v3);
    assert_int_equal(ursa_once_destroy(&cell), 0);
    assert_int_equal(atomic_load(&dtor_calls), 1);
}

static void test_once_take_of_an_empty_cell_takes_nothing(void **state)
{
    (void)state;
    ursa_once_cell_t cell;
    fresh(&cell);
    void *got = &v2;
    assert_int_equal(ursa_once_take(&cell, &got), 0);
    assert_ptr_equal(got, &v2); /* untouched */
    assert_int_equal(ursa_once_take(NULL, &got), -EINVAL);
    assert_int_equal(ursa_once_into_inner(NULL, &got), -EINVAL);
    assert_int_equal(ursa_once_destroy(&cell), 0);
    assert_int_equal(atomic_load(&dtor_calls), 0);
}

/* An initializer that tries take and into_inner on its own cell. */
static int take_inside_init(void *arg, void **out)
{
    ursa_once_cell_t *cell = arg;
    void *got = NULL;
    if (ursa_once_take(cell, &got) != -EBUSY || ursa_once_into_inner(cell, &got) != -EBUSY ||
        got != NULL)
        return -EPROTO;
    *out = &v1;
    return 0;
}

static void test_once_take_while_an_initializer_runs_is_ebusy(void **state)
{
    (void)state;
    ursa_once_cell_t cell;
    fresh(&cell);
    void *got = NULL;
    assert_int_equal(ursa_once_get_or_init(&cell, take_inside_init, &cell, &got, URSA_NEVER), 0);
    assert_ptr_equal(got, &v1);
    assert_int_equal(test_leak_count(), 2); /* both reported as misuse */
    assert_int_equal(ursa_once_destroy(&cell), 0);
    assert_ptr_equal(atomic_load(&dtor_last), &v1);
}

static void test_once_take_with_waiters_queued_is_ebusy(void **state)
{
    (void)state;
    ursa_once_cell_t cell;
    fresh(&cell);
    rwaker_t r;
    rwaker_init(&r, false);
    ursa_wait_t w;
    assert_int_equal(ursa_once_wait_start(&cell, &w, rwaker(&r)), -EINPROGRESS);
    void *got = NULL;
    assert_int_equal(ursa_once_take(&cell, &got), -EBUSY);
    assert_int_equal(ursa_once_into_inner(&cell, &got), -EBUSY);
    assert_int_equal(test_leak_count(), 2);
    /* nothing changed: the waiter still gets the value */
    assert_int_equal(ursa_once_set(&cell, &v2), 0);
    assert_int_equal(atomic_load(&r.count), 1);
    assert_int_equal(ursa_once_wait_finish(&cell, &w, &got), 0);
    assert_ptr_equal(got, &v2);
    assert_int_equal(ursa_once_destroy(&cell), 0);
    assert_int_equal(atomic_load(&dtor_calls), 1);
}

static void test_once_waiters_after_take_get_the_next_value(void **state)
{
    (void)state;
    ursa_once_cell_t cell;
    fresh(&cell);
    assert_int_equal(ursa_once_set(&cell, &v1), 0);
    assert_int_equal(ursa_once_take(&cell, NULL), 1);
    rwaker_t r;
    rwaker_init(&r, false);
    ursa_wait_t w;
    assert_int_equal(ursa_once_wait_start(&cell, &w, rwaker(&r)), -EINPROGRESS);
    assert_int_equal(ursa_once_set(&cell, &v2), 0);
    void *got = NULL;
    assert_int_equal(ursa_once_wait_finish(&cell, &w, &got), 0);
    assert_ptr_equal(got, &v2);
    assert_int_equal(ursa_once_into_inner(&cell, &got), 1);
    assert_ptr_equal(got, &v2);
    assert_int_equal(atomic_load(&dtor_calls), 0);
}

static void test_once_into_inner_hands_over_instead_of_the_destructor(void **state)
{
    (void)state;
    ursa_once_cell_t cell;
    fresh(&cell);
    assert_int_equal(ursa_once_set(&cell, &v3), 0);
    void *got = NULL;
    assert_int_equal(ursa_once_into_inner(&cell, &got), 1);
    assert_ptr_equal(got, &v3);
    assert_int_equal(atomic_load(&dtor_calls), 0);
    /* destroyed and empty: again, nothing more happens */
    got = &v1;
    assert_int_equal(ursa_once_into_inner(&cell, &got), 0);
    assert_ptr_equal(got, &v1);
    assert_int_equal(ursa_once_destroy(&cell), 0);
    assert_int_equal(atomic_load(&dtor_calls), 0);
}

/* Takers and setters from tasks on two workers and plain threads: every
 * value set is taken exactly once, none reaches the destructor. Each
 * round's set and take are ordered by the round's barrier: take must not
 * race with other calls, so only sets race with sets. */
typedef struct round_trip {
    ursa_once_cell_t cell;
    ursa_barrier_t set_done, taken;
    int values[4];
    _Atomic int set_ok;
} round_trip_t;

static void *setter(void *arg)
{
    round_trip_t *rt = arg;
    for (long i = 0; i < test_scale(200); i++) {
        /* all four race to set; exactly one wins each round */
        for (int k = 0; k < 4; k++)
            if (ursa_once_set(&rt->cell, &rt->values[k]) == 0)
                atomic_fetch_add(&rt->set_ok, 1);
        bool leader = false;
        if (ursa_barrier_wait(&rt->set_done, &leader, URSA_NEVER))
            return "barrier";
        if (leader && ursa_once_take(&rt->cell, NULL) != 1)
            return "take did not find the round's value";
        if (ursa_barrier_wait(&rt->taken, NULL, URSA_NEVER))
            return "barrier";
    }
    return NULL;
}

static void *two_setters(void *arg)
{
    ursa_task_t *t;
    if (ursa_spawn(&t, setter, arg, &(ursa_spawn_opts_t){URSA_ON_WORKER(1)}))
        return "spawn";
    void *mine = setter(arg), *theirs = "join";
    if (ursa_task_join(t, &theirs, URSA_NEVER))
        return "join";
    return mine ? mine : theirs;
}

static void test_once_take_rounds_between_tasks(void **state)
{
    (void)state;
    round_trip_t rt = {0};
    fresh(&rt.cell);
    assert_int_equal(ursa_barrier_init(&rt.set_done, 2), 0);
    assert_int_equal(ursa_barrier_init(&rt.taken, 2), 0);
    assert_null(test_run(2, two_setters, &rt));
    assert_int_equal(atomic_load(&rt.set_ok), test_scale(200));
    assert_int_equal(ursa_once_destroy(&rt.cell), 0);
    assert_int_equal(atomic_load(&dtor_calls), 0);
}

TEST_MAIN(LEAK_CHECKED(test_once_take_moves_the_value_and_empties_the_cell),
          LEAK_CHECKED(test_once_take_then_get_or_init_initialises_again),
          LEAK_CHECKED(test_once_take_of_an_empty_cell_takes_nothing),
          LEAK_CHECKED(test_once_take_while_an_initializer_runs_is_ebusy),
          LEAK_CHECKED(test_once_take_with_waiters_queued_is_ebusy),
          LEAK_CHECKED(test_once_waiters_after_take_get_the_next_value),
          LEAK_CHECKED(test_once_into_inner_hands_over_instead_of_the_destructor),
          LEAK_CHECKED(test_once_take_rounds_between_tasks))
