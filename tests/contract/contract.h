/* The contract every waiting primitive owes (docs/internals.md, "Tests"),
 * checked once, against a table with a row per primitive.
 *
 * A row describes a primitive through a fixture: make() builds one in the
 * blocked state (a wait would block), grant() lets exactly one waiter
 * through (unlock, release a permit, notify, send a message ...), wait()
 * and start()/finish() are its blocking and raw two-phase calls, take()
 * tries once (URSA_NOW) and reports whether the grant was still there. The
 * checks in contract.c and contract_cancel.c drive every row the same way;
 * a row names the checks that apply to it. A new primitive gets all of
 * them by adding a row to the contract_rows table of its rows_<kind>.c. */
#ifndef URSA_TEST_CONTRACT_H
#define URSA_TEST_CONTRACT_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>

#include <ursa.h>

/* The checks (contract_row_t.checks). */
enum {
    CONTRACT_CONTEXTS = 1 << 0,    /* waits in a task (worker 0, 1) and on a plain thread */
    CONTRACT_RAW = 1 << 1,         /* raw start/finish woken by a foreign waker */
    CONTRACT_RAW_CANCEL = 1 << 2,  /* a cancelled raw wait holds nothing */
    CONTRACT_NOW = 1 << 3,         /* URSA_NOW is a pure try */
    CONTRACT_DEADLINE = 1 << 4,    /* an expired deadline: -ETIMEDOUT, nothing changed */
    CONTRACT_TASK_CANCEL = 1 << 5, /* a cancelled task: -ECANCELED, nothing held */
    CONTRACT_RACE = 1 << 6,        /* cancel (or deadline) racing a grant loses nothing */
    CONTRACT_LEAK = 1 << 7,        /* a hold left at task/thread exit: reported, released */
    /* The checks every wait owes, with a raw form / without one. */
    CONTRACT_WAIT_CHECKS = CONTRACT_CONTEXTS | CONTRACT_RAW | CONTRACT_RAW_CANCEL | CONTRACT_NOW |
                           CONTRACT_DEADLINE | CONTRACT_TASK_CANCEL | CONTRACT_RACE,
    CONTRACT_WAIT_CHECKS_NO_RAW = CONTRACT_CONTEXTS | CONTRACT_NOW | CONTRACT_DEADLINE |
                                  CONTRACT_TASK_CANCEL | CONTRACT_RACE,
};

/* What a grant becomes once a waiter has it. */
typedef enum contract_kind {
    CONTRACT_RETURNED, /* held, then given back: the next waiter (or a try) gets it */
    CONTRACT_CONSUMED, /* taken by exactly one waiter (a notification, a message, a slot) */
    CONTRACT_SHARED,   /* every waiter passes, and it stays (a set once cell, ...) */
} contract_kind_t;

/* Room for any row's hold (a guard, a permit, a received value). */
typedef union contract_hold {
    max_align_t align;
    unsigned char bytes[256];
} contract_hold_t;

typedef struct contract_row {
    const char *name; /* an identifier: test names are test_<name>_<check> */
    unsigned checks;
    contract_kind_t kind;
    bool exclusive;          /* at most one waiter holds it at a time */
    bool one_waiter;         /* one waiter at a time (one receiver, one joiner) */
    bool grant_needs_waiter; /* grant() only passes a queued waiter (a barrier's arrival) */
    bool needs_task;         /* make() must run in a task (it spawns one) */
    const char *hold_kind;   /* the leak report's kind; NULL: a wait leaves nothing held */
    const int *line;         /* the line of the last acquire call (set by wait/start) */

    void *(*make)(void);                /* a fresh fixture, blocked; NULL on failure */
    const char *(*destroy)(void *f);    /* ends it (grants first if never granted) */
    const char *(*grant)(void *f);      /* lets one waiter through */
    /* who: 0 for the first waiter, 1 for the second (rows with a handle per
     * waiter give the second its own). */
    int (*wait)(void *f, int who, void *hold, ursa_time_t deadline);
    int (*start)(void *f, int who, ursa_wait_t *w, ursa_waker_t waker);
    int (*finish)(void *f, int who, ursa_wait_t *w, void *hold);
    /* After a wait returned 0: checks what it got, discharges the hold. */
    const char *(*release)(void *f, void *hold);
    bool (*holds)(const void *hold); /* NULL when nothing is held */
    int (*queued)(void *f);          /* waiters queued now; NULL: cannot tell */
    /* The state make() left: nothing taken, nothing granted. NULL: none. */
    const char *(*unchanged)(void *f);
    /* One try (URSA_NOW): 1 got the grant (released again unless consumed),
     * 0 nothing there, negative an error. */
    int (*take)(void *f);
} contract_row_t;

/* One try's result as take() reports it: 1 got, 0 would block, else the
 * error. */
static inline int contract_tried(int rc)
{
    return rc == 0 ? 1 : rc == -EAGAIN ? 0 : rc;
}

/* release() for a wait that leaves nothing to discharge. */
const char *contract_nothing_to_release(void *f, void *hold);

/* What a try finds at the end, when w1 and w2 (0 or 1) got the grant. */
int contract_left(const contract_row_t *r, int w1, int w2);
/* Polls (yields, then sleeps) until n waiters are queued; false after the
 * hang guard. Rows that cannot tell: a few yields and a short sleep. */
bool contract_wait_queued(const contract_row_t *r, void *f, int n);

/* The hold is set (a row with holds() only). */
bool contract_held(const contract_row_t *r, const void *hold);
/* The row's unchanged() and, where it can tell, `queued` waiters queued. */
const char *contract_unchanged(const contract_row_t *r, void *f, int queued);
/* Runs scenario(r) over TEST_SEEDS seeds: NULL, or the first failure. */
const char *contract_explore(ursa_task_fn_t scenario, const contract_row_t *r);

/* The checks. Each returns NULL or a message; cmocka asserts stay with the
 * caller. */
const char *contract_now_thread(const contract_row_t *r);
const char *contract_now_task(const contract_row_t *r);
const char *contract_now_sim(const contract_row_t *r);
const char *contract_deadline_thread(const contract_row_t *r);
const char *contract_deadline_sim(const contract_row_t *r);
const char *contract_contexts(const contract_row_t *r);
const char *contract_raw(const contract_row_t *r);
const char *contract_raw_cancel(const contract_row_t *r);
const char *contract_task_cancel_sim(const contract_row_t *r);
const char *contract_task_cancel_workers(const contract_row_t *r);
const char *contract_race_sim(const contract_row_t *r);
const char *contract_race_threads(const contract_row_t *r);
const char *contract_raw_race_threads(const contract_row_t *r);
const char *contract_leak(const contract_row_t *r);

/* The rows of one program, NULL-terminated: each rows_<kind>.c defines
 * them and is linked into its own test_contract_<kind>. */
extern const contract_row_t *const contract_rows[];

#endif
