/* Seed exploration over the deterministic mode. */
#include "ursa/sim.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

int ursa_sim_explore(const ursa_rt_config_t *cfg, ursa_task_fn_t scenario, void *arg,
                     uint64_t first_seed, unsigned count, uint64_t *failed_seed)
{
    if (!scenario)
        return -EINVAL;
    const char *replay = getenv("URSA_SEED");
    if (replay && *replay) {
        first_seed = strtoull(replay, NULL, 0);
        count = 1;
    }
    ursa_rt_config_t c = cfg ? *cfg : (ursa_rt_config_t){0};
    c.deterministic = true;
    for (unsigned i = 0; i < count; i++) {
        c.seed = first_seed + i;
        void *res = NULL;
        int rc = ursa_run(&c, scenario, arg, &res);
        if (rc == 0 && res == NULL)
            continue;
        if (failed_seed)
            *failed_seed = c.seed;
        fprintf(stderr, "ursa sim: seed %" PRIu64 " failed: %s (replay: URSA_SEED=%" PRIu64 ")\n",
                c.seed, rc ? ursa_strerror(rc) : (const char *)res, c.seed);
        return rc ? rc : -EPROTO;
    }
    return 0;
}
