/* ursa — deterministic-mode exploration for tests.
 *
 * A scenario is a root task that returns NULL when it passed, or a message
 * saying what failed (URSA_SIM_CHECK builds one). ursa_sim_explore runs it
 * once per seed in deterministic mode (one thread runs cfg->workers
 * workers, default 1; seeded choice of the next runnable task, or of the
 * worker that acts next; virtual time), and prints the first failing seed.
 * Set URSA_SEED=N in the environment to replay only seed N. */
#ifndef URSA_SIM_H
#define URSA_SIM_H

#include "rt.h"

URSA_EXTERN_C_BEGIN

#define URSA_SIM_STR2(x) #x
#define URSA_SIM_STR(x) URSA_SIM_STR2(x)
/* Inside a scenario task: fail the scenario when cond is false. */
#define URSA_SIM_CHECK(cond)                                                         \
    do {                                                                             \
        if (!(cond))                                                                 \
            return (void *)(__FILE__ ":" URSA_SIM_STR(__LINE__) ": check failed: " #cond); \
    } while (0)

/* Not a wait: runs scenario(arg) under seeds first_seed ..
 * first_seed+count-1 (cfg may be NULL; its deterministic and seed fields
 * are overridden). On a failure *failed_seed (may be NULL) gets the first
 * failing seed and a line naming it goes to stderr.
 *   0         every seed passed
 *   -EDEADLK  every task blocked
 *   -EPROTO   the scenario returned a message
 *   < 0       the runtime's error */
URSA_API int ursa_sim_explore(const ursa_rt_config_t *cfg, ursa_task_fn_t scenario, void *arg,
                              uint64_t first_seed, unsigned count,
                              uint64_t *failed_seed) URSA_NODISCARD;

URSA_EXTERN_C_END

#endif
