/* ursa — obligations: phase 2 of the two-phase contract.
 *
 * Every hold a successful wait yields (mutex guard, semaphore permit, ...)
 * embeds an ursa_oblig_t as its member `ob` and links itself, in O(1), into
 * the ledger of the task (or plain thread) that acquired it. Discharging the
 * hold unlinks it. When a task ends, or a plain thread exits, with holds
 * still linked, ursa releases each one, reports it with its acquire site,
 * and aborts if so configured (the default in debug builds). A mutex
 * released that way is poisoned: its next locker gets -EOWNERDEAD.
 *
 * A hold may only be discharged by its owner. To hand one to another task
 * or thread, the owner calls ursa_oblig_disown() and the receiver
 * ursa_oblig_adopt(). */
#ifndef URSA_OBLIG_H
#define URSA_OBLIG_H

#include "base.h"

typedef struct ursa_oblig ursa_oblig_t;
struct ursa__ledger;

/* Per hold type: its name and how to discharge it when its owner leaked it. */
typedef struct ursa_oblig_kind {
    const char *name;
    void (*release_leaked)(ursa_oblig_t *ob);
} ursa_oblig_kind_t;

/* Private; zero means "holds nothing". */
struct ursa_oblig {
    ursa_oblig_t *prev, *next;
    const ursa_oblig_kind_t *kind;
    const ursa_site_t *site;
    struct ursa__ledger *ledger; /* owner, or NULL while disowned */
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

/* Links a disowned hold into the caller's ledger. 0, or -EINVAL (NULL, not
 * held, or still owned by someone). */
URSA_API int ursa_oblig_adopt(ursa_oblig_t *ob);

#endif
