/* Contract rows for the locks of src/sync/: mutex, semaphore, rwlock (read
 * and write). Each fixture starts blocked; a lock's own block is a hold
 * taken and disowned at make(), so that grant() may adopt and release it
 * from any thread. An acquire whose site a leak report names keeps
 * `x_line = __LINE__;` on the call's own line. */
#include "support.h"

#include "contract.h"
#include "queue_peek.h"
#include "task_checks.h"

/* rows_barging.c includes this file with ROWS_BARGING 1: the same rows on
 * barging locks (the contract holds in both modes). */
#ifndef ROWS_BARGING
#define ROWS_BARGING 0
#endif
#if ROWS_BARGING
#define ROWS_NAME(s) "barging_" s
#define ROWS_ATTR (&(ursa_lock_attr_t){.flags = URSA_LOCK_BARGING})
#define ROWS_SEM_FLAGS URSA_SEM_BARGING
#else
#define ROWS_NAME(s) s
#define ROWS_ATTR NULL
#define ROWS_SEM_FLAGS 0u
#endif

/* ---- mutex ---- */

typedef struct mutex_fx {
    ursa_mutex_t m;
    ursa_mutex_guard_t block;
} mutex_fx_t;

static int mutex_line;

static void *mutex_make(void)
{
    mutex_fx_t *f = calloc(1, sizeof *f);
    if (!f || ursa_mutex_init_attr(&f->m, ROWS_ATTR) || ursa_mutex_lock(&f->m, &f->block, URSA_NOW) ||
        ursa_oblig_disown(&f->block.ob)) {
        free(f);
        return NULL;
    }
    return f;
}

static const char *mutex_grant(void *p)
{
    mutex_fx_t *f = p;
    CHECK_EQ(ursa_oblig_adopt(&f->block.ob), 0);
    CHECK_EQ(ursa_mutex_unlock(&f->block), 0);
    return NULL;
}

static const char *mutex_destroy(void *p)
{
    mutex_fx_t *f = p;
    if (f->block.mutex)
        CHECK_OK(mutex_grant(f));
    CHECK_EQ(ursa_mutex_destroy(&f->m), 0);
    free(f);
    return NULL;
}

static int mutex_wait(void *p, int who, void *hold, ursa_time_t deadline)
{
    mutex_fx_t *f = p;
    (void)who;
    mutex_line = __LINE__; return ursa_mutex_lock(&f->m, hold, deadline);
}

static int mutex_start(void *p, int who, ursa_wait_t *w, ursa_waker_t k)
{
    (void)who;
    return ursa_mutex_lock_start(&((mutex_fx_t *)p)->m, w, k);
}

static int mutex_finish(void *p, int who, ursa_wait_t *w, void *hold)
{
    (void)who;
    return ursa_mutex_lock_finish(&((mutex_fx_t *)p)->m, w, hold);
}

static const char *mutex_release(void *p, void *hold)
{
    (void)p;
    CHECK_EQ(ursa_mutex_unlock(hold), 0);
    return NULL;
}

static bool mutex_holds(const void *hold)
{
    return ((const ursa_mutex_guard_t *)hold)->mutex != NULL;
}

static int mutex_queued(void *p)
{
    return (int)peek_sema_len(&((mutex_fx_t *)p)->m.sema);
}

static const char *mutex_unchanged(void *p)
{
    mutex_fx_t *f = p;
    CHECK(ursa_mutex_is_locked(&f->m));
    CHECK(f->block.mutex == &f->m); /* still the block's */
    return NULL;
}

/* A mutex whose holder ended holding it is poisoned: a try gets it with
 * -EOWNERDEAD and repairs it. */
static int mutex_take(void *p)
{
    mutex_fx_t *f = p;
    ursa_mutex_guard_t g = {0};
    int rc = ursa_mutex_lock(&f->m, &g, URSA_NOW);
    if (rc == -EOWNERDEAD)
        rc = ursa_mutex_consistent(&f->m);
    if (g.mutex && ursa_mutex_unlock(&g))
        return -EIO;
    return contract_tried(rc);
}

static const contract_row_t contract_mutex = {
    .name = ROWS_NAME("mutex"),
    .checks = CONTRACT_WAIT_CHECKS | CONTRACT_LEAK,
    .kind = CONTRACT_RETURNED,
    .exclusive = true,
    .hold_kind = "mutex guard",
    .line = &mutex_line,
    .make = mutex_make,
    .destroy = mutex_destroy,
    .grant = mutex_grant,
    .wait = mutex_wait,
    .start = mutex_start,
    .finish = mutex_finish,
    .release = mutex_release,
    .holds = mutex_holds,
    .queued = mutex_queued,
    .unchanged = mutex_unchanged,
    .take = mutex_take,
};

/* ---- semaphore: one permit per wait, none to start with ---- */

static int sem_line;

static void *sem_make(void)
{
    ursa_sem_t *s = calloc(1, sizeof *s);
    if (!s || ursa_sem_init_flags(s, 0, ROWS_SEM_FLAGS)) {
        free(s);
        return NULL;
    }
    return s;
}

static const char *sem_grant(void *p)
{
    CHECK_EQ(ursa_sem_add(p, 1), 0);
    return NULL;
}

static const char *sem_destroy(void *p)
{
    CHECK_EQ(ursa_sem_destroy(p), 0);
    free(p);
    return NULL;
}

static int sem_wait(void *p, int who, void *hold, ursa_time_t deadline)
{
    (void)who;
    sem_line = __LINE__; return ursa_sem_acquire(p, 1, hold, deadline);
}

static int sem_start(void *p, int who, ursa_wait_t *w, ursa_waker_t k)
{
    (void)who;
    return ursa_sem_acquire_start(p, 1, w, k);
}

static int sem_finish(void *p, int who, ursa_wait_t *w, void *hold)
{
    (void)who;
    return ursa_sem_acquire_finish(p, w, hold);
}

static const char *sem_release(void *p, void *hold)
{
    (void)p;
    CHECK_EQ(((ursa_sem_permit_t *)hold)->n, 1);
    CHECK_EQ(ursa_sem_release(hold), 0);
    return NULL;
}

static bool sem_holds(const void *hold)
{
    return ((const ursa_sem_permit_t *)hold)->sem != NULL;
}

static int sem_queued(void *p)
{
    return (int)peek_sema_len(&((ursa_sem_t *)p)->sema);
}

static const char *sem_unchanged(void *p)
{
    CHECK_EQ(ursa_sem_available(p), 0);
    CHECK_EQ(peek_sema_got_sum(&((ursa_sem_t *)p)->sema), 0);
    return NULL;
}

static int sem_take(void *p)
{
    ursa_sem_permit_t q = {0};
    int rc = ursa_sem_acquire(p, 1, &q, URSA_NOW);
    if (q.sem && ursa_sem_release(&q))
        return -EIO;
    return contract_tried(rc);
}

static const contract_row_t contract_semaphore = {
    .name = ROWS_NAME("semaphore"),
    .checks = CONTRACT_WAIT_CHECKS | CONTRACT_LEAK,
    .kind = CONTRACT_RETURNED,
    .exclusive = true,
    .hold_kind = "semaphore permit",
    .line = &sem_line,
    .make = sem_make,
    .destroy = sem_destroy,
    .grant = sem_grant,
    .wait = sem_wait,
    .start = sem_start,
    .finish = sem_finish,
    .release = sem_release,
    .holds = sem_holds,
    .queued = sem_queued,
    .unchanged = sem_unchanged,
    .take = sem_take,
};

/* ---- rwlock: the read side blocked by a writer, the write side by a reader ---- */

#define SIDE read
#define OTHER write
#define WRITE_SIDE 0
#include "rows_rwlock.h"
#undef WRITE_SIDE
#undef OTHER
#undef SIDE

#define SIDE write
#define OTHER read
#define WRITE_SIDE 1
#include "rows_rwlock.h"
#undef WRITE_SIDE
#undef OTHER
#undef SIDE

/* The rows of test_contract_lock. */
const contract_row_t *const contract_rows[] = {
    &contract_mutex,
    &contract_semaphore,
    &contract_rwlock_read,
    &contract_rwlock_write,
    NULL,
};
