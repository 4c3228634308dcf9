/* ursa — private layout of a once cell (ursa/once.h). Public only so that
 * it can be embedded: every field is private, read and written by
 * src/sync/once.c. Nothing here is callable. */
#ifndef URSA_DETAIL_ONCE_H
#define URSA_DETAIL_ONCE_H

#include "../wait.h"

struct ursa_once_cell {
    /* Hot, read by every get: EMPTY / RUNNING / SET (src/sync/once.c). */
    URSA_ATOMIC(uint32_t) state;
    void *value;           /* immutable once state is SET */
    void (*dtor)(void *value);          /* ursa_once_dtor_t */
    URSA_ATOMIC(void *) runner;         /* context running init_fn (self-deadlock check) */
    /* Queued get_or_init and ursa_once_wait callers, FIFO; its lock guards
     * the state's changes too. */
    ursa__waitq_t q;
};

/* URSA_ONCE_CELL_INIT in C++: every field in order (C++17 has no
 * designated initializers, and C++20's draw missing-field warnings).
 * Follows the layout above. */
#define URSA__ONCE_CELL_INIT_CXX(dtor_) \
    {0, nullptr, (dtor_), nullptr, {0, 0, nullptr, nullptr, nullptr}}

#endif
