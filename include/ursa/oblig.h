/* ursa — obligations: phase 2 of the two-phase contract.
 *
 * Every hold a successful wait yields (mutex guard, semaphore permit, ...)
 * embeds an ursa_oblig_t as its member `ob` and is entered, in O(1), in the
 * ledger of the task (or plain thread) that acquired it. Discharging the
 * hold removes it. When a task ends, or a plain thread exits, with holds
 * still entered, ursa releases each one, reports it with its acquire site,
 * and aborts if so configured (the default in debug builds). A mutex
 * released that way is poisoned: its next locker gets -EOWNERDEAD.
 *
 * The ledger keeps its own record of what each hold must release, so the
 * sweep never reads the hold itself: a leaked hold usually lives in a stack
 * frame that is already gone by the time its owner ends.
 *
 * A hold may only be discharged by its owner. To hand one to another task
 * or thread, the owner calls ursa_oblig_disown() and the receiver
 * ursa_oblig_adopt().
 *
 * Libraries and applications make holds of their own kind obligations too
 * (a lease, a pooled connection...): embed an ursa_oblig_t, define a static
 * ursa_oblig_kind_t, enter the hold with ursa_oblig_enter() when the wait
 * that yields it succeeds, and discharge it with ursa_oblig_discharge()
 * when it is released. Such a hold is tracked, reported and handed over
 * like ursa's own. */
#ifndef URSA_OBLIG_H
#define URSA_OBLIG_H

#include "base.h"
#include "detail/oblig.h"

URSA_EXTERN_C_BEGIN

/* A hold's record of itself (embedded first in every hold type; fields
 * private: ursa/detail/oblig.h). Zero means "holds nothing". */
typedef struct ursa_oblig ursa_oblig_t;

/* Per hold type: its name and how to discharge it when its owner leaked it
 * (target and n as the hold recorded them). release_leaked runs where the
 * owner ended (a worker between tasks, or an exiting thread): it must not
 * wait or block. */
typedef struct ursa_oblig_kind {
    const char *name;
    void (*release_leaked)(void *target, uint64_t n);
} ursa_oblig_kind_t;

/* Called for each leaked hold, before it is released. `owner` is the task
 * name (or "thread"). */
typedef void (*ursa_leak_hook_t)(void *ctx, const char *owner, const char *kind,
                                 const ursa_site_t *site);

/* Not a wait: installs a process-wide leak hook (NULL restores the
 * default, which prints one line per leak to stderr). */
URSA_API void ursa_leak_set_hook(ursa_leak_hook_t hook, void *ctx);

/* Not a wait: whether a leak aborts the process after being reported.
 * The default is true in builds without NDEBUG, false otherwise. Returns
 * the old value. */
URSA_API bool ursa_leak_set_abort(bool abort_on_leak);

/* Not a wait: the number of holds owned by the calling task or thread. */
URSA_API size_t ursa_held_count(void);

/* Phase 2 (hold): takes a held hold out of the caller's ledger so another
 * task or thread can adopt it.
 *   0        disowned
 *   -EINVAL  NULL, or ob holds nothing
 *   -EPERM   the caller is not the owner */
URSA_API int ursa_oblig_disown(ursa_oblig_t *ob);

/* Phase 2 (hold): enters a disowned hold in the caller's ledger.
 *   0        adopted: the caller owns it
 *   -EINVAL  NULL, ob holds nothing, or it is still owned by someone
 *   -ENOMEM  the caller's ledger could not grow (it stays disowned) */
URSA_API int ursa_oblig_adopt(ursa_oblig_t *ob);

/* Phase 2 (hold), its start: enters ob, a hold of a caller-defined kind, in
 * the calling task's (or thread's) ledger. Call it once the wait that
 * yields the hold has succeeded. From then on ob must be discharged exactly
 * once with ursa_oblig_discharge(); if its owner ends first, the leak is
 * reported with `site` (may be NULL) and kind->release_leaked(target, n)
 * runs. ob must be zeroed (or discharged) before; kind must outlive it.
 *   0        entered
 *   -EINVAL  NULL ob or kind, a kind without name or release_leaked, or ob
 *            already holds something
 *   -ENOMEM  the ledger could not grow: nothing entered (the caller gives
 *            the resource back) */
URSA_API int ursa_oblig_enter(ursa_oblig_t *ob, const ursa_oblig_kind_t *kind, void *target,
                              uint64_t n, const ursa_site_t *site) URSA_NODISCARD;

/* Phase 2 (hold), its end: discharges a hold entered with
 * ursa_oblig_enter() (the caller then releases the resource itself;
 * release_leaked is not called). A disowned hold may be discharged by
 * anyone.
 *   0        discharged; ob holds nothing now
 *   -EINVAL  NULL, ob holds nothing (a double discharge: reported as
 *            misuse), or ob is one of ursa's own holds (release those with
 *            their own call, e.g. ursa_mutex_unlock)
 *   -EPERM   ob belongs to another task or thread (nothing changed) */
URSA_API int ursa_oblig_discharge(ursa_oblig_t *ob);

URSA_EXTERN_C_END

#endif
