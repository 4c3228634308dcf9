/* A member's end and a by-hand join (issue 12): a member is the group's
 * to join, also in the instant between its task's end and the group's
 * taking it. Before the fix, ursa__task_done published JOIN_DONE in the
 * member's join slot and the group's waker put its waiter back a few
 * instructions later: a join (or detach) by hand in between took the
 * task (0) and freed it under the group. A spy wraps the group's waker
 * (white-box: it is the waker of the waiter in the slot), so the by-hand
 * calls run exactly inside that window, every run. */

#include "support.h"

#include "core/waitq.h"
#include "rt/task.h"
#include "rt_checks.h"
#include "task_checks.h"

typedef struct spy {
    ursa_waker_t group;  /* the group's own waker of the member */
    ursa_task_t *member; /* its task */
    bool ran;
    bool slot_done;          /* the join slot said JOIN_DONE in the window */
    int join_rc, detach_rc;  /* the by-hand calls made in the window */
} spy_t;

/* Runs where the group's waker runs (the member's end), before it. */
static void spy_wake(void *p)
{
    spy_t *s = p;
    s->ran = true;
    /* relaxed: read on the thread that ended the member, a value compare. */
    s->slot_done = atomic_load_explicit(&s->member->joiner, memory_order_relaxed) ==
                   URSA__JOIN_DONE;
    /* With JOIN_DONE in the slot a by-hand join would free the task the
     * group still uses: the check above fails the test without that. */
    if (!s->slot_done) {
        s->join_rc = ursa_task_join(s->member, NULL, URSA_NOW);
        s->detach_rc = ursa_task_detach(s->member);
    }
    s->group.fn(s->group.ctx);
}

static void *waits_for_gate_5(void *arg)
{
    return ursa_event_wait(arg, URSA_NEVER) == 0 ? R(5) : R(-1);
}

static void *member_end_root(void *arg)
{
    (void)arg;
    ursa_group_t g;
    ursa_event_t gate;
    spy_t s = {.join_rc = 1, .detach_rc = 1};
    CHECK_EQ(ursa_event_init(&gate, URSA_EVENT_MANUAL, false), 0);
    CHECK_EQ(ursa_group_init(&g, NULL), 0);
    CHECK_EQ(ursa_group_spawn(&g, &s.member, waits_for_gate_5, &gate, NULL), 0);
    /* The member cannot end before the gate opens: its slot holds the
     * group's waiter; the spy goes between it and the group. */
    /* relaxed: the member's task is not running (one worker, and we are). */
    ursa__waiter_t *w = atomic_load_explicit(&s.member->joiner, memory_order_relaxed);
    CHECK(w != NULL && w != URSA__JOIN_DONE && w != URSA__JOIN_DETACHED);
    s.group = w->waker;
    w->waker = (ursa_waker_t){spy_wake, &s};
    CHECK_EQ(ursa_event_set(&gate), 1);
    void *res = NULL;
    ursa_task_t *which = NULL;
    CHECK_EQ(ursa_group_join_next(&g, &res, &which, test_guard_deadline()), 0);
    CHECK(s.ran);
    CHECK(!s.slot_done);
    CHECK_EQ(s.join_rc, -EINVAL); /* the group's to join, in the window too */
    CHECK_EQ(s.detach_rc, -EINVAL);
    CHECK(which == s.member);
    CHECK_EQ(I(res), 5); /* the group got the result all the same */
    CHECK_EQ(ursa_group_destroy(&g), 0);
    CHECK_EQ(ursa_event_destroy(&gate), 0);
    return NULL;
}

static void test_group_member_end_refuses_a_join_by_hand(void **state)
{
    (void)state;
    ASSERT_OK(test_run(1, member_end_root, NULL));
}

TEST_MAIN(cmocka_unit_test(test_group_member_end_refuses_a_join_by_hand))
