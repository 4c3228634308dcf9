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
 * ursa_oblig_adopt(). */
#ifndef URSA_OBLIG_H
#define URSA_OBLIG_H

#include "base.h"

typedef struct ursa_oblig ursa_oblig_t;
struct ursa__ledger;
struct ursa__lockinfo;

/* Per hold type: its name and how to discharge it when its owner leaked it
 * (target and n as the hold recorded them). */
typedef struct ursa_oblig_kind {
    const char *name;
    void (*release_leaked)(void *target, uint64_t n);
} ursa_oblig_kind_t;

/* Private; zero means "holds nothing". */
struct ursa_oblig {
    const ursa_oblig_kind_t *kind; /* NULL when holding nothing */
    const ursa_site_t *site;
    struct ursa__ledger *ledger; /* owner, or NULL while disowned */
    void *target;                /* what to release ... */
    uint64_t n;                  /* ... and how much */
    const struct ursa__lockinfo *lock; /* a lock's name and rank, or NULL */
    uint32_t slot;               /* its record in the owner's ledger */
    uint32_t reserved_;
};

/* Called for each leaked hold, before it is released. `owner` is the task
 * name (or "thread"). */
typedef void (*ursa_leak_hook_t)(void *ctx, const char *owner, const char *kind,
                                 const ursa_site_t *site);

/* Installs a process-wide leak hook (NULL restores the default, which prints
 * one line per leak to stderr). */
URSA_API void ursa_leak_set_hook(ursa_leak_hook_t hook, void *ctx);

/* Whether a leak aborts the process after being reported. The default is
 * true in builds without NDEBUG, false otherwise. Returns the old value. */
URSA_API bool ursa_leak_set_abort(bool abort_on_leak);

/* Number of holds owned by the calling task or thread. */
URSA_API size_t ursa_held_count(void);

/* Takes a held hold out of the caller's ledger so another task or thread
 * can adopt it. 0, or -EINVAL (NULL, not held), -EPERM (not the owner). */
URSA_API int ursa_oblig_disown(ursa_oblig_t *ob);

/* Enters a disowned hold in the caller's ledger. 0; -EINVAL (NULL, not
 * held, or still owned by someone); -ENOMEM (it stays disowned). */
URSA_API int ursa_oblig_adopt(ursa_oblig_t *ob);

#endif
