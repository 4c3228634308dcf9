/* The smallest real use of ursa: two tasks share a mutex and a semaphore. */
#include <stdio.h>

#include <ursa.h>

static ursa_mutex_t m;
static int counter;

static void *bump(void *arg)
{
    for (int i = 0; i < 1000; i++) {
        URSA_SCOPED(mutex_guard, g);
        if (ursa_mutex_lock(&m, &g, URSA_NEVER) != 0)
            return (void *)1;
        counter++;
        if (i % 100 == 0)
            ursa_yield();
    }
    return arg;
}

static void *root(void *arg)
{
    (void)arg;
    ursa_task_t *t;
    if (ursa_spawn(&t, bump, NULL, &(ursa_spawn_opts_t){URSA_ON_WORKER(1)}) != 0)
        return (void *)1;
    void *mine = bump(NULL), *theirs = (void *)1;
    if (ursa_task_join(t, &theirs, URSA_NEVER) != 0)
        return (void *)1;
    ursa_sem_t s;
    ursa_sem_init(&s, 2);
    URSA_SCOPED(sem_permit, p);
    if (ursa_sem_acquire(&s, 2, &p, URSA_NOW) != 0)
        return (void *)1;
    return (void *)((intptr_t)mine | (intptr_t)theirs);
}

int main(void)
{
    ursa_mutex_init(&m);
    void *failed = (void *)1;
    int rc = ursa_run(&(ursa_rt_config_t){.workers = 2}, root, NULL, &failed);
    printf("consumer: rc=%d counter=%d\n", rc, counter);
    return rc == 0 && !failed && counter == 2000 ? 0 : 1;
}
