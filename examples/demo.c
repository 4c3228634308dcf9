/* ursa demo: eight "download" tasks on two workers. A semaphore lets at
 * most three download at once; a mutex guards the shared statistics. The
 * program prints what happened and checks it. */
#include <stdio.h>
#include <stdlib.h>

#include <ursa.h>

enum { TASKS = 8, SLOTS = 3, FILES_EACH = 5 };

typedef struct stats {
    ursa_mutex_t lock;
    int active, peak, done;
    int per_worker[2];
} stats_t;

static ursa_sem_t slots;
static stats_t stats;

static void *downloader(void *arg)
{
    int id = (int)(intptr_t)arg;
    for (int f = 0; f < FILES_EACH; f++) {
        URSA_SCOPED(sem_permit, slot); /* released at the end of each loop */
        if (ursa_sem_acquire(&slots, 1, &slot, URSA_NEVER) != 0)
            return (void *)1;
        {
            URSA_SCOPED(mutex_guard, g);
            if (ursa_mutex_lock(&stats.lock, &g, URSA_NEVER) != 0)
                return (void *)1;
            if (++stats.active > stats.peak)
                stats.peak = stats.active;
        }
        ursa_sleep_for(URSA_MSEC(2 + (id + f) % 3)); /* the "download" */
        URSA_SCOPED(mutex_guard, g);
        if (ursa_mutex_lock(&stats.lock, &g, URSA_NEVER) != 0)
            return (void *)1;
        stats.active--;
        stats.done++;
        stats.per_worker[ursa_worker_index()]++;
    }
    printf("  %-12s on worker %d finished %d files\n", ursa_task_name(ursa_task_self()),
           ursa_worker_index(), FILES_EACH);
    return NULL;
}

static void *root(void *arg)
{
    (void)arg;
    ursa_task_t *t[TASKS];
    for (int i = 0; i < TASKS; i++) {
        char name[32];
        snprintf(name, sizeof name, "downloader-%d", i);
        ursa_spawn_opts_t opts = {.name = name, URSA_ON_WORKER(i % 2)};
        if (ursa_spawn(&t[i], downloader, (void *)(intptr_t)i, &opts) != 0)
            return (void *)1;
    }
    intptr_t failures = 0;
    for (int i = 0; i < TASKS; i++) {
        void *r;
        if (ursa_task_join(t[i], &r, URSA_NEVER) != 0 || r)
            failures++;
    }
    return (void *)failures;
}

int main(void)
{
    ursa_mutex_init(&stats.lock);
    ursa_sem_init(&slots, SLOTS);
    ursa_time_t t0 = ursa_now();
    void *failures = NULL;
    printf("ursa demo: %d tasks on 2 workers, %d download slots\n", TASKS, SLOTS);
    int rc = ursa_run(&(ursa_rt_config_t){.workers = 2}, root, NULL, &failures);
    if (rc) {
        fprintf(stderr, "runtime failed: %s\n", ursa_strerror(rc));
        return 1;
    }
    printf("downloads: %d (worker 0: %d, worker 1: %d)\n", stats.done, stats.per_worker[0],
           stats.per_worker[1]);
    printf("peak concurrent downloads: %d (limit %d)\n", stats.peak, SLOTS);
    printf("permits back in the semaphore: %llu of %d\n",
           (unsigned long long)ursa_sem_available(&slots), SLOTS);
    printf("elapsed: %.1f ms\n", (double)(ursa_now() - t0) / 1e6);
    bool ok = !failures && stats.done == TASKS * FILES_EACH && stats.peak <= SLOTS &&
              ursa_sem_available(&slots) == SLOTS;
    printf("%s\n", ok ? "OK" : "FAILED");
    ursa_mutex_destroy(&stats.lock);
    ursa_sem_destroy(&slots);
    return ok ? 0 : 1;
}
