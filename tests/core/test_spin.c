/* The spin policy (core/spin.h): budgets that adapt, CPUs read from the
 * affinity mask, and the rule that matters on a shared machine: with the
 * process confined to one CPU, workloads that hand work between workers
 * and threads complete without a single busy-wait pause, and otherwise no
 * wait spins past its site's cap. Counts, never times. */
#include "support.h"

#include <sched.h>

#include "core/spin.h"
#include "task_checks.h"

/* ---- budgets ---- */

/* A wait at `site` that spins `pauses` and then ends (ended == true) or
 * gives up (the budget ran out first). */
static void one_wait(int site, uint32_t pauses, bool ended)
{
    ursa__spinner_t s = URSA__SPINNER((uint8_t)site);
    for (uint32_t i = 0; i < pauses || !ended; i++)
        if (!ursa__spin_pause(&s))
            break;
    ursa__spin_end(&s);
}

static uint32_t budget(int site)
{
    return atomic_load(&ursa__spin_sites[site].budget);
}

static void test_spin_budget_grows_when_waits_end_and_shrinks_when_they_run_out(void **state)
{
    (void)state;
    if (!ursa__spin_allowed())
        skip(); /* one CPU: nothing may spin, so nothing adapts */
    int site = URSA__SPIN_REVOKE;
    uint32_t cap = atomic_load(&ursa__spin_sites[site].cap);
    assert_true(cap >= 64);
    /* Waits that run out of budget halve it, down to zero. */
    for (int i = 0; i < 64 && budget(site); i++)
        one_wait(site, 0, false);
    assert_int_equal(budget(site), 0);
    /* At zero, most waits do not spin at all, but one in a few probes. */
    uint64_t before = atomic_load(&ursa__spin_sites[site].waits);
    for (int i = 0; i < 64; i++)
        one_wait(site, 0, false);
    uint64_t probes = atomic_load(&ursa__spin_sites[site].waits) - before;
    assert_true(probes >= 3 && probes <= 5);
    assert_int_equal(budget(site), 0); /* probes that failed */
    for (int i = 0; i < 16 && !budget(site); i++)
        one_wait(site, 1, true);
    assert_true(budget(site) > 0); /* a probe that paid grew it back */
    /* Waits that end while spinning grow it, never past the cap. */
    for (int i = 0; i < 64; i++)
        one_wait(site, 1, true);
    assert_int_equal(budget(site), cap);
    /* A wait never spins past its budget. */
    ursa__spinner_t s = URSA__SPINNER((uint8_t)site);
    uint32_t n = 0;
    while (ursa__spin_pause(&s))
        n++;
    ursa__spin_end(&s);
    assert_int_equal(n, cap);
    assert_true(atomic_load(&ursa__spin_sites[site].longest) <= cap);
}

/* ---- CPUs available ---- */

static bool confine_to_one_cpu(cpu_set_t *saved)
{
    if (sched_getaffinity(0, sizeof *saved, saved) != 0)
        return false;
    cpu_set_t one;
    CPU_ZERO(&one);
    for (int c = 0; c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, saved)) {
            CPU_SET(c, &one);
            break;
        }
    return sched_setaffinity(0, sizeof one, &one) == 0;
}

static void test_spin_counts_the_cpus_of_the_affinity_mask(void **state)
{
    (void)state;
    cpu_set_t saved;
    unsigned all = ursa__cpus_available();
    assert_true(all >= 1);
    assert_true(confine_to_one_cpu(&saved));
    assert_int_equal(ursa__cpus_available(), 1);
    ursa__spin_workers_add(0); /* re-reads the CPUs */
    assert_false(ursa__spin_allowed());
    assert_int_equal(sched_setaffinity(0, sizeof saved, &saved), 0);
    ursa__spin_workers_add(0);
    assert_int_equal(ursa__cpus_available(), all);
    assert_int_equal(ursa__spin_allowed(), all > 1);
}

/* ---- workloads that hand work between workers and threads ---- */

enum { ROUNDS = 3000 };

/* A client on worker 0 asks a server fixed on worker 1 ROUNDS times. */
static void *request_reply(void *arg)
{
    (void)arg;
    return request_reply_rounds(test_scale(ROUNDS));
}

typedef struct stream {
    ursa_mpsc_sender_t tx;
    long n;
} stream_t;

static void *producer(void *arg)
{
    stream_t *st = arg;
    for (long i = 0; i < st->n; i++)
        CHECK_EQ(ursa_mpsc_send(&st->tx, &i, URSA_NEVER), 0);
    CHECK_EQ(ursa_mpsc_sender_drop(&st->tx), 0);
    return NULL;
}

/* A producer on worker 1 streams into a bounded channel drained here. */
static void *stream_across(void *arg)
{
    (void)arg;
    ursa_mpsc_receiver_t rx;
    stream_t st = {.n = test_scale(50 * ROUNDS)};
    CHECK_EQ(ursa_mpsc_new(&rx, &st.tx, sizeof(long), 16, NULL), 0);
    ursa_task_t *p = spawn_on(1, producer, &st, "producer");
    CHECK(p != NULL);
    long v, sum = 0, n = 0;
    int rc;
    while ((rc = ursa_mpsc_recv(&rx, &v, URSA_NEVER)) == 0) {
        sum += v;
        n++;
    }
    CHECK_EQ(rc, -EPIPE);
    CHECK_EQ(n, st.n);
    CHECK_EQ(sum, st.n * (st.n - 1) / 2);
    CHECK_OK(join_task(p));
    CHECK_EQ(ursa_mpsc_receiver_drop(&rx), 0);
    return NULL;
}

typedef struct contended {
    ursa_mutex_t m;
    long counter, iters;
} contended_t;

static void *contender(void *arg)
{
    contended_t *c = arg;
    for (long i = 0; i < c->iters; i++) {
        ursa_mutex_guard_t g = {0};
        CHECK_EQ(ursa_mutex_lock(&c->m, &g, URSA_NEVER), 0);
        c->counter++;
        if (i % 16 == 0)
            (void)ursa_yield();
        CHECK_EQ(ursa_mutex_unlock(&g), 0);
    }
    return NULL;
}

/* Four tasks with default placement share a mutex. */
static void *mutex_shared(void *arg)
{
    (void)arg;
    contended_t c = {.iters = test_scale(5 * ROUNDS)};
    ursa_mutex_init(&c.m);
    ursa_task_t *t[4];
    for (int i = 0; i < 4; i++)
        CHECK_EQ(ursa_spawn(&t[i], contender, &c, NULL), 0);
    for (int i = 0; i < 4; i++)
        CHECK_OK(join_task(t[i]));
    CHECK_EQ(c.counter, 4 * c.iters);
    CHECK_EQ(ursa_mutex_destroy(&c.m), 0);
    return NULL;
}

typedef struct pingpong {
    ursa_sem_t ping, pong;
    long rounds;
} pingpong_t;

static void *ponger_thread(void *arg)
{
    pingpong_t *pp = arg;
    for (long i = 0; i < pp->rounds; i++) {
        ursa_sem_permit_t p = {0};
        if (ursa_sem_acquire(&pp->ping, 1, &p, URSA_NEVER) || ursa_sem_permit_forget(&p))
            return (void *)"ponger: acquire failed";
        (void)ursa_sem_add(&pp->pong, 1);
    }
    return NULL;
}

/* A task and a plain thread hand a semaphore permit back and forth. */
static void *with_thread(void *arg)
{
    (void)arg;
    pingpong_t pp = {.rounds = test_scale(ROUNDS)};
    ursa_sem_init(&pp.ping, 0);
    ursa_sem_init(&pp.pong, 0);
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, ponger_thread, &pp), 0);
    for (long i = 0; i < pp.rounds; i++) {
        (void)ursa_sem_add(&pp.ping, 1);
        ursa_sem_permit_t p = {0};
        CHECK_EQ(ursa_sem_acquire(&pp.pong, 1, &p, URSA_NEVER), 0);
        CHECK_EQ(ursa_sem_permit_forget(&p), 0);
    }
    void *res;
    CHECK_EQ(pthread_join(th, &res), 0);
    CHECK_OK(res);
    return NULL;
}

static void *all_workloads(void *arg)
{
    CHECK_OK(request_reply(arg));
    CHECK_OK(stream_across(arg));
    CHECK_OK(mutex_shared(arg));
    CHECK_OK(with_thread(arg));
    return NULL;
}

typedef struct counts {
    uint64_t pauses[URSA__SPIN_SITES], refused[URSA__SPIN_SITES];
} counts_t;

static counts_t counts_now(void)
{
    counts_t c;
    for (int i = 0; i < URSA__SPIN_SITES; i++) {
        c.pauses[i] = atomic_load(&ursa__spin_sites[i].pauses);
        c.refused[i] = atomic_load(&ursa__spin_sites[i].refused);
    }
    return c;
}

/* Two workers on one CPU: every workload completes, and no site spun a
 * single pause (spinning there only delays the party waited for); both
 * when the two share a thread (the default there) and when each has its
 * own (`threads = 2`). */
static void two_workers_on_one_cpu_never_pause(unsigned threads)
{
    cpu_set_t saved;
    assert_true(confine_to_one_cpu(&saved));
    counts_t before = counts_now();
    void *res = NULL; /* the runtime re-reads the CPUs */
    assert_int_equal(
        ursa_run(&(ursa_rt_config_t){.workers = 2, .threads = threads}, all_workloads, NULL, &res),
        0);
    ASSERT_OK(res);
    counts_t after = counts_now();
    assert_int_equal(sched_setaffinity(0, sizeof saved, &saved), 0);
    ursa__spin_workers_add(0);
    uint64_t refused = 0;
    for (int i = 0; i < URSA__SPIN_SITES; i++) {
        if (after.pauses[i] != before.pauses[i])
            fail_msg("site '%s' spun %llu pauses on one CPU", ursa__spin_sites[i].name,
                     (unsigned long long)(after.pauses[i] - before.pauses[i]));
        refused += after.refused[i] - before.refused[i];
    }
    /* With a thread each, the workloads did reach the busy-waits. Sharing
     * one thread they need not: a wake from the same thread asks for no
     * poll, and a waiting task switches to its partner at once. */
    if (threads == 2)
        assert_true(refused > 0);
}

static void test_spin_two_workers_on_one_cpu_never_pause(void **state)
{
    (void)state;
    two_workers_on_one_cpu_never_pause(0);
}

static void test_spin_two_worker_threads_on_one_cpu_never_pause(void **state)
{
    (void)state;
    two_workers_on_one_cpu_never_pause(2);
}

/* With CPUs to spare: the same workloads, and no wait past its cap. */
static void test_spin_no_wait_spins_past_its_cap(void **state)
{
    (void)state;
    ASSERT_OK(test_run(2, all_workloads, NULL));
    for (int i = 0; i < URSA__SPIN_SITES; i++) {
        uint32_t longest = atomic_load(&ursa__spin_sites[i].longest);
        uint32_t cap = atomic_load(&ursa__spin_sites[i].cap_high);
        if (longest > cap)
            fail_msg("site '%s' spun %u pauses, cap %u", ursa__spin_sites[i].name, longest, cap);
    }
}

/* The sites that wait for a wake chain follow the measured wake latency:
 * up to twice it, never below their own cap_ns, never past 200 µs; the
 * others keep theirs, and samples that are no wake (over 1 ms) are
 * ignored. */
static void test_spin_cap_follows_the_measured_wake_within_its_bounds(void **state)
{
    (void)state;
    ursa__spin_site_t *idle = &ursa__spin_sites[URSA__SPIN_IDLE];
    ursa__spin_site_t *lock = &ursa__spin_sites[URSA__SPIN_LOCK];
    ursa__spin_wake_seen(1000); /* also sets up the policy */
    for (int i = 0; i < 100; i++)
        ursa__spin_wake_seen(1000); /* a fast wake: the caps of cap_ns */
    uint32_t base = atomic_load(&idle->cap), lock_cap = atomic_load(&lock->cap);
    assert_int_equal(ursa__spin_wake_ns(), 1000);
    for (int i = 0; i < 100; i++)
        ursa__spin_wake_seen(40000); /* a VM's halted vCPU */
    uint32_t wake = ursa__spin_wake_ns();
    assert_true(wake > 35000 && wake <= 40000);
    uint32_t slow = atomic_load(&idle->cap);
    /* 80 µs against 20 µs, within the eighth the cap may lag */
    assert_true(slow > 3 * base && slow < 5 * base);
    assert_true(atomic_load(&idle->budget) <= slow);
    assert_true(atomic_load(&idle->cap_high) >= slow);
    assert_int_equal(atomic_load(&lock->cap), lock_cap);
    ursa__spin_wake_seen(5000000); /* 5 ms: not a wake */
    assert_int_equal(ursa__spin_wake_ns(), wake);
    if (ursa__spin_allowed()) {
        /* At budget zero, a cap four times its own probes four times less
         * often: failing waits spend what they would with their own cap. */
        for (int i = 0; i < 64 && budget(URSA__SPIN_IDLE); i++)
            one_wait(URSA__SPIN_IDLE, 0, false);
        assert_int_equal(budget(URSA__SPIN_IDLE), 0);
        uint64_t before = atomic_load(&idle->waits);
        for (int i = 0; i < 256; i++)
            one_wait(URSA__SPIN_IDLE, 0, false);
        uint64_t probes = atomic_load(&idle->waits) - before;
        assert_true(probes >= 3 && probes <= 6); /* 256 / (16 * 3 or 4) */
    }
    for (int i = 0; i < 100; i++)
        ursa__spin_wake_seen(900000);
    assert_true(atomic_load(&idle->cap) <= 11 * base); /* 200 µs at most */
    for (int i = 0; i < 200; i++)
        ursa__spin_wake_seen(1000);
    assert_int_equal(atomic_load(&idle->cap), base);
}

TEST_MAIN(cmocka_unit_test(test_spin_budget_grows_when_waits_end_and_shrinks_when_they_run_out),
          cmocka_unit_test(test_spin_cap_follows_the_measured_wake_within_its_bounds),
          cmocka_unit_test(test_spin_counts_the_cpus_of_the_affinity_mask),
          cmocka_unit_test(test_spin_two_workers_on_one_cpu_never_pause),
          cmocka_unit_test(test_spin_two_worker_threads_on_one_cpu_never_pause),
          cmocka_unit_test(test_spin_no_wait_spins_past_its_cap))
