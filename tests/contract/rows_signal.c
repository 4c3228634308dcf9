/* Contract rows for the signals of src/sync/: notify, event (auto and
 * manual reset), barrier of two, once cell. A grant is one notify_one, one
 * set, the second party's arrival, the once cell's set. */
#include "support.h"

#include "contract.h"
#include "queue_peek.h"
#include "task_checks.h"

/* ---- notify: a grant is one notify_one ---- */

static void *notify_make(void)
{
    ursa_notify_t *n = calloc(1, sizeof *n);
    if (!n || ursa_notify_init(n)) {
        free(n);
        return NULL;
    }
    return n;
}

static const char *notify_grant(void *p)
{
    CHECK_EQ(ursa_notify_one(p), 1);
    return NULL;
}

static const char *notify_destroy(void *p)
{
    CHECK_EQ(ursa_notify_destroy(p), 0);
    free(p);
    return NULL;
}

static int notify_wait(void *p, int who, void *hold, ursa_time_t deadline)
{
    (void)who;
    (void)hold;
    return ursa_notify_wait(p, deadline);
}

static int notify_start(void *p, int who, ursa_wait_t *w, ursa_waker_t k)
{
    (void)who;
    return ursa_notify_wait_start(p, w, k);
}

static int notify_finish(void *p, int who, ursa_wait_t *w, void *hold)
{
    (void)who;
    (void)hold;
    return ursa_notify_wait_finish(p, w);
}

static int notify_queued(void *p)
{
    return (int)peek_notify_len(p);
}

static const char *notify_unchanged(void *p)
{
    CHECK(!peek_notify_permit(p)); /* nothing stored */
    return NULL;
}

static int notify_take(void *p)
{
    return contract_tried(ursa_notify_wait(p, URSA_NOW));
}

static const contract_row_t contract_notify = {
    .name = "notify",
    .checks = CONTRACT_WAIT_CHECKS,
    .kind = CONTRACT_CONSUMED,
    .make = notify_make,
    .destroy = notify_destroy,
    .grant = notify_grant,
    .wait = notify_wait,
    .start = notify_start,
    .finish = notify_finish,
    .release = contract_nothing_to_release,
    .queued = notify_queued,
    .unchanged = notify_unchanged,
    .take = notify_take,
};

/* ---- event: a grant is one set ---- */

static void *event_make(ursa_event_mode_t mode)
{
    ursa_event_t *e = calloc(1, sizeof *e);
    if (!e || ursa_event_init(e, mode, false)) {
        free(e);
        return NULL;
    }
    return e;
}

static void *event_auto_make(void)
{
    return event_make(URSA_EVENT_AUTO);
}

static void *event_manual_make(void)
{
    return event_make(URSA_EVENT_MANUAL);
}

static const char *event_grant(void *p)
{
    CHECK_EQ(ursa_event_set(p), 1);
    return NULL;
}

static const char *event_destroy(void *p)
{
    CHECK_EQ(ursa_event_destroy(p), 0);
    free(p);
    return NULL;
}

static int event_wait(void *p, int who, void *hold, ursa_time_t deadline)
{
    (void)who;
    (void)hold;
    return ursa_event_wait(p, deadline);
}

static int event_start(void *p, int who, ursa_wait_t *w, ursa_waker_t k)
{
    (void)who;
    return ursa_event_wait_start(p, w, k);
}

static int event_finish(void *p, int who, ursa_wait_t *w, void *hold)
{
    (void)who;
    (void)hold;
    return ursa_event_wait_finish(p, w);
}

static int event_queued(void *p)
{
    return (int)peek_event_len(p);
}

static const char *event_unchanged(void *p)
{
    CHECK(!ursa_event_is_set(p));
    return NULL;
}

static int event_take(void *p)
{
    return contract_tried(ursa_event_wait(p, URSA_NOW));
}

#define EVENT_ROW(row, name_, kind_, make_)                                                  \
    static const contract_row_t row = {                                                      \
        .name = name_,                                                                       \
        .checks = CONTRACT_WAIT_CHECKS,                                                      \
        .kind = kind_,                                                                       \
        .make = make_,                                                                       \
        .destroy = event_destroy,                                                            \
        .grant = event_grant,                                                                \
        .wait = event_wait,                                                                  \
        .start = event_start,                                                                \
        .finish = event_finish,                                                              \
        .release = contract_nothing_to_release,                                              \
        .queued = event_queued,                                                              \
        .unchanged = event_unchanged,                                                        \
        .take = event_take,                                                                  \
    }

EVENT_ROW(contract_event_auto, "event_auto", CONTRACT_CONSUMED, event_auto_make);
EVENT_ROW(contract_event_manual, "event_manual", CONTRACT_SHARED, event_manual_make); /* stays set */

/* ---- barrier of two: a grant is the second party's arrival ---- */

static void *barrier_make(void)
{
    ursa_barrier_t *b = calloc(1, sizeof *b);
    if (!b || ursa_barrier_init(b, 2)) {
        free(b);
        return NULL;
    }
    return b;
}

/* A try that trips the barrier, as the leader. */
static const char *barrier_grant(void *p)
{
    bool leader = false;
    CHECK_EQ(ursa_barrier_wait(p, &leader, URSA_NOW), 0);
    CHECK(leader);
    return NULL;
}

static const char *barrier_destroy(void *p)
{
    CHECK_EQ(ursa_barrier_destroy(p), 0);
    free(p);
    return NULL;
}

static int barrier_wait(void *p, int who, void *hold, ursa_time_t deadline)
{
    (void)who;
    return ursa_barrier_wait(p, hold, deadline); /* hold: the leader flag */
}

static int barrier_start(void *p, int who, ursa_wait_t *w, ursa_waker_t k)
{
    (void)who;
    return ursa_barrier_wait_start(p, w, k);
}

static int barrier_finish(void *p, int who, ursa_wait_t *w, void *hold)
{
    (void)who;
    return ursa_barrier_wait_finish(p, w, hold);
}

/* The grant's arrival led: the waiter did not. */
static const char *barrier_release(void *p, void *hold)
{
    (void)p;
    CHECK(!*(bool *)hold);
    return NULL;
}

static int barrier_queued(void *p)
{
    return (int)ursa_barrier_arrived(p);
}

static const char *barrier_unchanged(void *p)
{
    CHECK_EQ(ursa_barrier_generation(p), 0); /* never tripped */
    return NULL;
}

/* A trip is not stored: nothing for a later try (which would arrive). */
static int barrier_take(void *p)
{
    (void)p;
    return 0;
}

static const contract_row_t contract_barrier = {
    .name = "barrier",
    .checks = CONTRACT_CONTEXTS | CONTRACT_RAW | CONTRACT_NOW | CONTRACT_DEADLINE |
              CONTRACT_TASK_CANCEL,
    .kind = CONTRACT_CONSUMED,
    .one_waiter = true,
    .grant_needs_waiter = true,
    .make = barrier_make,
    .destroy = barrier_destroy,
    .grant = barrier_grant,
    .wait = barrier_wait,
    .start = barrier_start,
    .finish = barrier_finish,
    .release = barrier_release,
    .queued = barrier_queued,
    .unchanged = barrier_unchanged,
    .take = barrier_take,
};

/* ---- once cell, waited on: a grant sets it ---- */

typedef struct once_fx {
    ursa_once_cell_t c;
    int value;
} once_fx_t;

static void *once_make(void)
{
    once_fx_t *f = calloc(1, sizeof *f);
    if (!f || ursa_once_init(&f->c, NULL)) {
        free(f);
        return NULL;
    }
    return f;
}

static const char *once_grant(void *p)
{
    once_fx_t *f = p;
    CHECK_EQ(ursa_once_set(&f->c, &f->value), 0);
    return NULL;
}

static const char *once_destroy(void *p)
{
    CHECK_EQ(ursa_once_destroy(&((once_fx_t *)p)->c), 0);
    free(p);
    return NULL;
}

static int once_wait(void *p, int who, void *hold, ursa_time_t deadline)
{
    (void)who;
    return ursa_once_wait(&((once_fx_t *)p)->c, hold, deadline); /* hold: the value */
}

static int once_start(void *p, int who, ursa_wait_t *w, ursa_waker_t k)
{
    (void)who;
    return ursa_once_wait_start(&((once_fx_t *)p)->c, w, k);
}

static int once_finish(void *p, int who, ursa_wait_t *w, void *hold)
{
    (void)who;
    return ursa_once_wait_finish(&((once_fx_t *)p)->c, w, hold);
}

static const char *once_release(void *p, void *hold)
{
    CHECK(*(void **)hold == &((once_fx_t *)p)->value);
    return NULL;
}

static int once_queued(void *p)
{
    return peek_once_waits(&((once_fx_t *)p)->c);
}

static const char *once_unchanged(void *p)
{
    CHECK(!ursa_once_is_set(&((once_fx_t *)p)->c));
    return NULL;
}

static int once_take(void *p)
{
    void *v = NULL;
    return contract_tried(ursa_once_wait(&((once_fx_t *)p)->c, &v, URSA_NOW));
}

static const contract_row_t contract_once = {
    .name = "once",
    .checks = CONTRACT_WAIT_CHECKS,
    .kind = CONTRACT_SHARED,
    .make = once_make,
    .destroy = once_destroy,
    .grant = once_grant,
    .wait = once_wait,
    .start = once_start,
    .finish = once_finish,
    .release = once_release,
    .queued = once_queued,
    .unchanged = once_unchanged,
    .take = once_take,
};

/* The rows of test_contract_signal. */
const contract_row_t *const contract_rows[] = {
    &contract_notify,
    &contract_event_auto,
    &contract_event_manual,
    &contract_barrier,
    &contract_once,
    NULL,
};
