/* Once cell: a wait on the cell from its own running initializer is
 * -EDEADLK whatever the deadline (issue 10, defect 7): ursa_once_wait with
 * URSA_NOW returned -EAGAIN there while the header said -EDEADLK, and
 * get_or_init said -EDEADLK for the same call. Now both say -EDEADLK for
 * every deadline; ursa_once_get, which is not a wait, says -EAGAIN.
 * self_wait_* failed on the URSA_NOW once_wait before the fix (seen). */
#include "support.h"

/* What the initializer saw when it waited on its own cell. */
typedef struct probe {
    ursa_once_cell_t cell;
    int wait_now, wait_expired, wait_never, goi_now, goi_never, get;
} probe_t;

static int probing_init(void *arg, void **out)
{
    probe_t *p = arg;
    p->wait_now = ursa_once_wait(&p->cell, NULL, URSA_NOW);
    p->wait_expired = ursa_once_wait(&p->cell, NULL, ursa_deadline_in(0));
    p->wait_never = ursa_once_wait(&p->cell, NULL, URSA_NEVER);
    p->goi_now = ursa_once_get_or_init(&p->cell, probing_init, p, NULL, URSA_NOW);
    p->goi_never = ursa_once_get_or_init(&p->cell, probing_init, p, NULL, URSA_NEVER);
    p->get = ursa_once_get(&p->cell, NULL);
    *out = p;
    return 0;
}

/* Runs the probing initializer; NULL, or what went wrong. */
static void *probe_body(void *arg)
{
    probe_t *p = arg;
    if (ursa_once_init(&p->cell, NULL))
        return "init";
    void *v = NULL;
    if (ursa_once_get_or_init(&p->cell, probing_init, p, &v, URSA_NEVER) != 0 || v != p)
        return "the outer get_or_init did not set the cell";
    if (ursa_once_destroy(&p->cell))
        return "destroy";
    return NULL;
}

static void check(const probe_t *p)
{
    assert_int_equal(p->wait_now, -EDEADLK);
    assert_int_equal(p->wait_expired, -EDEADLK);
    assert_int_equal(p->wait_never, -EDEADLK);
    assert_int_equal(p->goi_now, -EDEADLK);
    assert_int_equal(p->goi_never, -EDEADLK);
    assert_int_equal(p->get, -EAGAIN);
}

static void test_once_self_wait_on_a_thread_is_edeadlk(void **state)
{
    (void)state;
    probe_t p;
    assert_null(probe_body(&p));
    check(&p);
}

static void test_once_self_wait_in_a_task_is_edeadlk(void **state)
{
    (void)state;
    probe_t p;
    assert_null(test_run(2, probe_body, &p));
    check(&p);
}

TEST_MAIN(cmocka_unit_test(test_once_self_wait_on_a_thread_is_edeadlk),
          cmocka_unit_test(test_once_self_wait_in_a_task_is_edeadlk))
