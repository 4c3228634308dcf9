/* The runtime: its configuration and workers. Worker 0 is run by whichever
 * thread calls ursa_rt_block_on (or ursa_rt_free); the others by threads of
 * the runtime. With fewer threads than workers (hosts), host h (worker h)
 * runs workers h, h + nhosts, ... in turn (rt/loop.c). */
#ifndef URSA_RT_RUNTIME_H
#define URSA_RT_RUNTIME_H

#include <pthread.h>
#include <stdatomic.h>

#include "inject.h"
#include "ursa/rt.h"

typedef struct ursa__worker ursa__worker_t;

struct ursa_rt {
    ursa_rt_config_t cfg;
    unsigned nworkers;
    unsigned nhosts; /* threads that run the workers (nworkers in deterministic mode) */
    ursa__worker_t *workers;
    _Atomic bool stopping;
    _Atomic unsigned idle_workers; /* idle with nothing pending */
    /* Load balancing (rt/idle.c): spawns from plain threads and overflow;
     * workers looking for work to steal; workers asleep in their ring. */
    ursa__inject_t inject;
    _Alignas(64) _Atomic unsigned nsearching;
    _Atomic unsigned nsleeping;
    pthread_t owner; /* thread whose ring worker 0 has */
    bool owner_set;
    _Atomic bool in_worker0; /* some thread is running worker 0 now */
    /* Task descriptors from malloc rather than a worker's pool (spawned
     * from outside the runtime, or all of them under ASan), so that
     * ursa_rt_free frees those never joined (rt/task.c). */
    pthread_mutex_t loose_lock;
    struct ursa__loose_task *loose;
};

#endif
