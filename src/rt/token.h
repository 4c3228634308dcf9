/* Cancellation tokens, the runtime's side: binding tasks (rt/token.c). */
#ifndef URSA_RT_TOKEN_H
#define URSA_RT_TOKEN_H

#include "task.h"
#include "ursa/token.h"

/* Binds t to tok: the caller itself, or a task not queued yet. t is
 * cancelled now if tok is (no wake needed: it runs or has not started). */
void ursa__token_bind_task(ursa_token_t *tok, ursa_task_t *t);

/* The ended task t leaves its token's list (ursa__task_done): a cancel
 * walking that list has let go of t once this returns. */
void ursa__token_unbind(ursa_task_t *t);

#endif
