/* ursa — once cell: a value set at most once, initialised lazily by one
 * caller at a time, awaited by everyone else. Also serves as SetOnce.
 *
 *     static ursa_once_cell_t config = URSA_ONCE_CELL_INIT(free);
 *
 *     static int load(void *arg, void **out) {   // may wait; runs in the caller
 *         char *c = read_config_file(arg);         // e.g. async I/O in a task
 *         if (!c) return -EIO;                      // next waiter takes over
 *         *out = c;
 *         return 0;
 *     }
 *     void *v;
 *     if (ursa_once_get_or_init(&config, load, "/etc/app.conf", &v, URSA_NEVER) == 0)
 *         use(v);
 *
 * Holds nothing: a call that returns 0 hands out the value, and there is no
 * hold object to release (phase 2 is empty). The value is owned by the cell
 * once set and is passed to the destructor (if any) by ursa_once_destroy().
 *
 * Exactly one initializer runs at a time. Callers that find one running
 * queue FIFO. If it fails (init_fn returns non-zero, e.g. -ECANCELED because
 * its task was cancelled and its waits failed), the cell stays empty and the
 * OLDEST queued get_or_init caller — one, not all — becomes the next
 * initializer and runs its own init_fn. When one succeeds, every waiter gets
 * the value.
 *
 * SetOnce (a cell that is only ever set, never initialised by a getter) is
 * the same type used without get_or_init: ursa_once_set / ursa_once_get /
 * ursa_once_wait. ursa_set_once_t is an alias of ursa_once_cell_t.
 *
 * Every call works inside a task, on a plain thread, and (ursa_once_wait) in
 * the raw form from a foreign event loop. */
#ifndef URSA_ONCE_H
#define URSA_ONCE_H

#include "detail/once.h"
#include "wait.h"

URSA_EXTERN_C_BEGIN

/* Destructor for the cell's value; receives the value ursa_once_destroy()
 * found in the cell. */
typedef void (*ursa_once_dtor_t)(void *value);

/* Initializer for ursa_once_get_or_init: runs in the calling task or thread
 * (it may block, sleep, do I/O, wait on other primitives). Returns 0 and
 * stores the value in *out, or a non-zero error (conventionally a negative
 * errno; -ECANCELED when its own waits were cancelled): then the cell stays
 * empty, *out is ignored, and the next queued initializer takes over. */
typedef int (*ursa_once_init_fn_t)(void *arg, void **out);

/* A once cell: embed it. Fields private (ursa/detail/once.h).
 * Zero-initialised (or URSA_ONCE_CELL_INIT) it is an empty cell without
 * destructor. */
typedef struct ursa_once_cell ursa_once_cell_t;

/* SetOnce: the once cell used through set / get / wait only. */
typedef ursa_once_cell_t ursa_set_once_t;

/* Static initialiser: an empty cell whose value goes to dtor (may be NULL)
 * on destroy. In C and C++. */
#ifdef __cplusplus
#define URSA_ONCE_CELL_INIT(dtor_) URSA__ONCE_CELL_INIT_CXX(dtor_)
#else
#define URSA_ONCE_CELL_INIT(dtor_) {.dtor = (dtor_)}
#endif

/* Not a wait: initialises an empty cell; dtor (may be NULL) will get the
 * value on destroy.
 *   0        initialised
 *   -EINVAL  cell is NULL */
URSA_API int ursa_once_init(ursa_once_cell_t *cell, ursa_once_dtor_t dtor);

/* Not a wait: destroys the cell: if a value is set, calls dtor(value)
 * exactly once and leaves the cell empty (a second destroy runs nothing).
 * No call may race with destroy.
 *   0        destroyed
 *   -EBUSY   an initializer is running or waiters are queued (reported
 *            as misuse; nothing changed)
 *   -EINVAL  cell is NULL */
URSA_API int ursa_once_destroy(ursa_once_cell_t *cell);

/* Not a wait: takes the value out of the cell, which is empty afterwards
 * and may be set or initialised again; the value is the caller's now (the
 * destructor never sees it). Tokio's OnceCell::take. Like destroy, it
 * must not race with any other call on the cell, and nobody may still use
 * the value through an earlier get.
 *   1        the cell was set: *value (may be NULL) gets the value
 *   0        the cell was empty: nothing taken, *value untouched
 *   -EBUSY   an initializer is running or waiters are queued (reported
 *            as misuse; nothing changed)
 *   -EINVAL  cell is NULL */
URSA_API int ursa_once_take(ursa_once_cell_t *cell, void **value);

/* Not a wait: destroys the cell as ursa_once_destroy does, but hands the
 * value to the caller instead of the destructor. Tokio's
 * OnceCell::into_inner. No call may race with it.
 *   1        the cell was set: *value (may be NULL) gets the value; the
 *            destructor is not called
 *   0        the cell was empty: *value untouched
 *   -EBUSY   an initializer is running or waiters are queued (reported
 *            as misuse; nothing changed)
 *   -EINVAL  cell is NULL */
URSA_API int ursa_once_into_inner(ursa_once_cell_t *cell, void **value);

/* Phase 1 (wait; there is no phase 2: nothing is held): returns the
 * value, running init_fn(arg, &v) in the caller if the cell is empty and
 * nobody initialises it, or waiting until `deadline` while another caller
 * does.
 * The deadline bounds only the wait behind another initializer, not the
 * caller's own init_fn (which may take its own deadline through arg).
 * On a set cell this is a single acquire load. *value (may be NULL) gets
 * the value on success and is untouched on error.
 *   0                the cell is set (by us, another initializer, or
 *                    ursa_once_set)
 *   init_fn's error  our own init_fn failed; the cell is still empty and
 *                    the next queued caller (FIFO) became the initializer
 *   -EAGAIN          deadline is URSA_NOW and another initializer is
 *                    running
 *   -ETIMEDOUT       the deadline passed while another initializer ran
 *   -ECANCELED       the calling task was cancelled while queued (if it
 *                    had just been handed the initializer role, the role
 *                    went on to the next waiter: nothing changed)
 *   -EDEADLK         called from inside this cell's own running init_fn,
 *                    whatever the deadline (URSA_NOW included)
 *   -EINVAL          NULL cell or init_fn */
#define ursa_once_get_or_init(cell, init_fn, arg, value, deadline) \
    ursa_once_get_or_init_at(cell, init_fn, arg, value, deadline, URSA_SITE)
URSA_API int ursa_once_get_or_init_at(ursa_once_cell_t *cell, ursa_once_init_fn_t init_fn,
                                      void *arg, void **value, ursa_time_t deadline,
                                      const ursa_site_t *site) URSA_NODISCARD;

/* Not a wait: sets the value if the cell is empty and no initializer
 * runs; waiters (ursa_once_wait, queued get_or_init) get it. Never
 * blocks.
 *   0        set
 *   -EBUSY   an initializer is running (its result will decide)
 *   -EEXIST  already set (the cell keeps its value; the caller keeps
 *            ownership of `value`, the destructor is not called on it)
 *   -EINVAL  NULL cell */
URSA_API int ursa_once_set(ursa_once_cell_t *cell, void *value);

/* Not a wait: a read, one acquire load: whatever the setter wrote before
 * setting is visible to the caller. *value may be NULL.
 *   0        set: *value is the value
 *   -EAGAIN  empty (also while an initializer runs)
 *   -EINVAL  cell is NULL */
URSA_API int ursa_once_get(const ursa_once_cell_t *cell, void **value);

/* Not a wait: true if the cell holds a value (acquire). */
URSA_API bool ursa_once_is_set(const ursa_once_cell_t *cell);

/* Phase 1 (wait; nothing is held after): waits until the cell is set,
 * without ever initialising it (a failed initializer does not end the
 * wait). *value may be NULL.
 *   0           set: *value is the value
 *   -EAGAIN     deadline is URSA_NOW and the cell is empty
 *   -ETIMEDOUT  the deadline passed first
 *   -ECANCELED  the calling task was cancelled first
 *   -EDEADLK    called from this cell's running init_fn, whatever the
 *               deadline (URSA_NOW included: the cell cannot be set
 *               before that init_fn returns)
 *   -EINVAL     cell is NULL */
#define ursa_once_wait(cell, value, deadline) \
    ursa_once_wait_at(cell, value, deadline, URSA_SITE)
URSA_API int ursa_once_wait_at(ursa_once_cell_t *cell, void **value, ursa_time_t deadline,
                               const ursa_site_t *site) URSA_NODISCARD;

/* Phase 1 (wait), raw two-phase form of ursa_once_wait (calling context
 * 3, see ursa/wait.h). w must stay put until finished or cancelled.
 * _start:
 *   0             set already: call _finish now (the waker is not called)
 *   -EINPROGRESS  queued; waker.fn(waker.ctx) is called once, from the
 *                 thread that sets the cell
 *   -EINVAL       NULL cell / w / waker.fn
 * _finish, once ursa_wait_ready(w) (*value may be NULL):
 *   0        set: *value is the value
 *   -EAGAIN  not set yet (w stays queued)
 *   -EINVAL  NULL, another cell's wait, or already finished /
 *            cancelled
 * Or ursa_wait_cancel(w) instead of _finish (a granted wait holds
 * nothing, so that is always safe). */
#define ursa_once_wait_start(cell, w, ...) ursa_once_wait_start_at(cell, w, __VA_ARGS__, URSA_SITE)
URSA_API int ursa_once_wait_start_at(ursa_once_cell_t *cell, ursa_wait_t *w, ursa_waker_t waker,
                                     const ursa_site_t *site) URSA_NODISCARD;
URSA_API int ursa_once_wait_finish(ursa_once_cell_t *cell, ursa_wait_t *w,
                                   void **value) URSA_NODISCARD;

URSA_EXTERN_C_END

#endif
