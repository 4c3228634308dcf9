/* Contract row for src/rt/: joining a task. The fixture spawns a task that
 * waits on a gate (a semaphore with no permit); a grant opens the gate, and
 * the task finishes with RESULT. A join that returned 0 used the handle up. */
#include "support.h"

#include "contract.h"
#include "task_checks.h"

#define RESULT ((void *)(intptr_t)77)

typedef struct join_fx {
    ursa_sem_t gate;
    ursa_task_t *t;
    _Atomic int returned;
    _Atomic bool joined;
} join_fx_t;

static void *gated(void *arg)
{
    join_fx_t *f = arg;
    ursa_sem_permit_t p = {0};
    if (ursa_sem_acquire(&f->gate, 1, &p, URSA_NEVER) != 0 || ursa_sem_permit_forget(&p) != 0)
        return NULL;
    atomic_store(&f->returned, 1);
    return RESULT;
}

static void *join_make(void)
{
    join_fx_t *f = calloc(1, sizeof *f);
    if (!f || ursa_sem_init(&f->gate, 0)) {
        free(f);
        return NULL;
    }
    if (ursa_spawn(&f->t, gated, f, &(ursa_spawn_opts_t){.name = "joined", .placement = URSA_PLACE_LOCAL})) {
        free(f);
        return NULL;
    }
    return f;
}

/* Opens the gate. In a task, also lets the joined task (on this worker)
 * run to its end, so that a try right after finds it finished. */
static const char *join_grant(void *p)
{
    join_fx_t *f = p;
    CHECK_EQ(ursa_sem_add(&f->gate, 1), 0);
    if (ursa_task_self()) {
        YIELD_UNTIL(atomic_load(&f->returned));
        (void)ursa_yield();
    }
    return NULL;
}

static int join_wait(void *p, int who, void *hold, ursa_time_t deadline)
{
    join_fx_t *f = p;
    (void)who;
    int rc = ursa_task_join(f->t, hold, deadline);
    if (rc == 0)
        atomic_store(&f->joined, true);
    return rc;
}

static const char *join_release(void *p, void *hold)
{
    (void)p;
    CHECK(*(void **)hold == RESULT);
    return NULL;
}

static const char *join_unchanged(void *p)
{
    join_fx_t *f = p;
    CHECK(!atomic_load(&f->joined));
    CHECK(!atomic_load(&f->returned));
    CHECK_EQ(ursa_sem_available(&f->gate), 0);
    return NULL;
}

/* Joins what a grant let finish (a bounded wait: the task needs its turn). */
static int join_take(void *p)
{
    join_fx_t *f = p;
    if (atomic_load(&f->joined))
        return 0;
    void *v = NULL;
    int rc = ursa_task_join(f->t, &v, ursa_deadline_in(URSA_SEC(10)));
    if (rc)
        return rc;
    atomic_store(&f->joined, true);
    return v == RESULT ? 1 : -EIO;
}

static const char *join_destroy(void *p)
{
    join_fx_t *f = p;
    if (!atomic_load(&f->joined)) {
        if (ursa_sem_available(&f->gate) == 0 && !atomic_load(&f->returned))
            CHECK_EQ(ursa_sem_add(&f->gate, 1), 0);
        CHECK_EQ(ursa_task_join(f->t, NULL, URSA_NEVER), 0);
    }
    CHECK_EQ(ursa_sem_destroy(&f->gate), 0);
    free(f);
    return NULL;
}

static const contract_row_t contract_task_join = {
    .name = "task_join",
    .checks = CONTRACT_WAIT_CHECKS_NO_RAW,
    .kind = CONTRACT_CONSUMED, /* the handle */
    .one_waiter = true,
    .needs_task = true,
    .make = join_make,
    .destroy = join_destroy,
    .grant = join_grant,
    .wait = join_wait,
    .release = join_release,
    .unchanged = join_unchanged,
    .take = join_take,
};

/* The rows of test_contract_rt. */
const contract_row_t *const contract_rows[] = {
    &contract_task_join,
    NULL,
};
