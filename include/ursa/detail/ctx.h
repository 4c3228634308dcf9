/* ursa — private layout of the current wait context (src/core/ctx.h): who
 * is calling and what it holds. Public only for the library's inline fast
 * paths (ursa/mutex.h), which read the caller's context once and record a
 * hold in its ledger. Nothing here is callable. */
#ifndef URSA_DETAIL_CTX_H
#define URSA_DETAIL_CTX_H

#include "../wait.h"
#include "oblig.h"

struct ursa__ctx_ops;

typedef struct ursa__ctx {
    const struct ursa__ctx_ops *ops;
    ursa_waker_t waker;
    ursa__ledger_t ledger;
    const ursa_time_t *vclock; /* virtual clock, or NULL for real time */
    const char *name;
} ursa__ctx_t;

#ifndef __cplusplus
/* The calling task's or thread's context, NULL until a thread first needs
 * one; initial-exec, one load off the thread pointer (src/core/ctx.h says
 * why that model is correct for the shared library too). */
URSA_API extern _Thread_local ursa__ctx_t *ursa__cur_ctx
    __attribute__((tls_model("initial-exec")));
#endif

#endif
