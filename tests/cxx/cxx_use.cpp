// ursa used from C++, for test_cxx_layout: the constructs a C++ program
// writes (URSA_SCOPED, the typed wrappers, a raw start with a braced
// waker, URSA_ONCE_CELL_INIT, a task), each behind an extern "C" check
// that returns NULL or what went wrong. No exception leaves this file.
#include <atomic>
#include <stdexcept>

#include <ursa.h>

#include "cxx_use.h"

URSA_MPSC_TYPED(u64q, uint64_t)
URSA_MPMC_TYPED(u32q, uint32_t)
URSA_ONESHOT_TYPED(int_os, int)
struct tick {
    int n;
    double at;
};
URSA_BROADCAST_TYPED(tick_bc, struct tick)

const char *cxx_scoped_releases(void) noexcept
{
    ursa_mutex_t m;
    ursa_sem_t s;
    if (ursa_mutex_init(&m) != 0 || ursa_sem_init(&s, 3) != 0)
        return "init failed";
    {
        URSA_SCOPED(mutex_guard, g);
        URSA_SCOPED(sem_permit, p);
        if (ursa_mutex_lock(&m, &g, URSA_NOW) != 0)
            return "lock failed";
        if (ursa_sem_acquire(&s, 2, &p, URSA_NOW) != 0)
            return "acquire failed";
        if (!ursa_mutex_is_locked(&m) || ursa_sem_available(&s) != 1)
            return "not held inside the scope";
    }
    if (ursa_mutex_is_locked(&m) || ursa_sem_available(&s) != 3)
        return "URSA_SCOPED did not release at scope exit";
    if (ursa_held_count() != 0)
        return "holds left in the ledger";
    return ursa_mutex_destroy(&m) == 0 && ursa_sem_destroy(&s) == 0 ? nullptr : "destroy failed";
}

// Throws from a scope that holds m; URSA_SCOPED must unlock on the way out.
static void lock_and_throw(ursa_mutex_t *m)
{
    URSA_SCOPED(mutex_guard, g);
    if (ursa_mutex_lock(m, &g, URSA_NOW) != 0)
        return;
    throw std::runtime_error("unwinding through a held guard");
}

const char *cxx_scoped_unwinds(void) noexcept
{
    ursa_mutex_t m;
    if (ursa_mutex_init(&m) != 0)
        return "init failed";
    bool thrown = false;
    try {
        lock_and_throw(&m);
    } catch (const std::runtime_error &) {
        thrown = true;
    }
    if (!thrown)
        return "the lock failed, nothing was thrown";
    if (ursa_mutex_is_locked(&m) || ursa_held_count() != 0)
        return "an exception left the guard held";
    return ursa_mutex_destroy(&m) == 0 ? nullptr : "destroy failed";
}

static void count_wake(void *ctx)
{
    static_cast<std::atomic<int> *>(ctx)->fetch_add(1);
}

const char *cxx_raw_start_braced(void) noexcept
{
    ursa_mutex_t m;
    if (ursa_mutex_init(&m) != 0)
        return "init failed";
    ursa_mutex_guard_t first{}, second{};
    if (ursa_mutex_lock(&m, &first, URSA_NOW) != 0)
        return "lock failed";
    std::atomic<int> woken{0};
    ursa_wait_t w;
    // The C++ spelling of the raw-wait line: a braced waker (one comma).
    if (ursa_mutex_lock_start(&m, &w, ursa_waker_t{count_wake, &woken}) != -EINPROGRESS)
        return "start did not queue";
    if (ursa_mutex_unlock(&first) != 0 || woken.load() != 1)
        return "the waker did not run once";
    if (ursa_mutex_lock_finish(&m, &w, &second) != 0 || ursa_mutex_unlock(&second) != 0)
        return "finish failed";
    return ursa_mutex_destroy(&m) == 0 ? nullptr : "destroy failed";
}

const char *cxx_typed_wrappers(void) noexcept
{
    u64q_rx_t rx;
    u64q_tx_t tx;
    uint64_t v64 = 0;
    if (u64q_new(&rx, &tx, 4) != 0 || u64q_send(&tx, 41, URSA_NEVER) != 0 ||
        u64q_try_send(&tx, 42) != 0 || u64q_recv(&rx, &v64, URSA_NEVER) != 0 || v64 != 41 ||
        u64q_try_recv(&rx, &v64) != 0 || v64 != 42)
        return "mpsc typed wrapper";
    if (u64q_sender_drop(&tx) != 0 || u64q_receiver_drop(&rx) != 0)
        return "mpsc drop";

    u32q_rx_t mrx;
    u32q_tx_t mtx;
    uint32_t v32 = 0;
    if (u32q_new(&mrx, &mtx, 2) != 0 || u32q_send(&mtx, 7, URSA_NEVER) != 0 ||
        u32q_recv(&mrx, &v32, URSA_NEVER) != 0 || v32 != 7)
        return "mpmc typed wrapper";
    if (u32q_sender_drop(&mtx) != 0 || u32q_receiver_drop(&mrx) != 0)
        return "mpmc drop";

    int_os_t os;
    int got = 0;
    if (int_os_init(&os) != 0 || int_os_send(&os, 5) != 0 || int_os_recv(&os, &got, URSA_NEVER) != 0 ||
        got != 5 || int_os_destroy(&os) != 0)
        return "oneshot typed wrapper";

    tick_bc_tx_t *btx;
    tick_bc_rx_t *brx;
    struct tick t = {3, 0.5}, out = {0, 0};
    uint64_t missed = 0;
    if (tick_bc_new(&btx, &brx, 4, nullptr) != 0 || tick_bc_send(btx, &t) != 1 ||
        tick_bc_recv(brx, &out, &missed, URSA_NEVER) != 0 || out.n != 3 || out.at != 0.5)
        return "broadcast typed wrapper";
    if (tick_bc_receiver_drop(brx) != 0 || tick_bc_sender_drop(btx) != 0)
        return "broadcast drop";
    return nullptr;
}

static std::atomic<int> dtor_calls{0};
static void count_dtor(void *) { dtor_calls.fetch_add(1); }
static ursa_once_cell_t cell = URSA_ONCE_CELL_INIT(count_dtor);

const char *cxx_once_cell_init(void) noexcept
{
    static int value;
    void *got = nullptr;
    if (ursa_once_is_set(&cell) || ursa_once_set(&cell, &value) != 0 ||
        ursa_once_get(&cell, &got) != 0 || got != &value)
        return "set / get";
    if (ursa_once_destroy(&cell) != 0 || dtor_calls.load() != 1)
        return "URSA_ONCE_CELL_INIT's destructor did not run once";
    return nullptr;
}

struct shared_counter {
    ursa_mutex_t m;
    int counter;
};

static void *bump(void *arg)
{
    auto *s = static_cast<shared_counter *>(arg);
    for (int i = 0; i < 100; i++) {
        URSA_SCOPED(mutex_guard, g);
        if (ursa_mutex_lock(&s->m, &g, URSA_NEVER) != 0)
            return const_cast<char *>("lock failed");
        s->counter++;
        (void)ursa_yield();
    }
    return nullptr;
}

const char *cxx_tasks(void) noexcept
{
    shared_counter sh{};
    if (ursa_mutex_init(&sh.m) != 0)
        return "init failed";
    auto root = +[](void *arg) -> void * {
        ursa_spawn_opts_t opts{};
        opts.placement = URSA_PLACE_WORKER;
        opts.worker = 1;
        ursa_task_t *t;
        if (ursa_spawn(&t, bump, arg, &opts) != 0)
            return const_cast<char *>("spawn failed");
        void *mine = bump(arg), *theirs = nullptr;
        if (ursa_task_join(t, &theirs, URSA_NEVER) != 0)
            return const_cast<char *>("join failed");
        return mine ? mine : theirs;
    };
    ursa_rt_config_t cfg{};
    cfg.workers = 2;
    void *failed = nullptr;
    if (ursa_run(&cfg, root, &sh, &failed) != 0)
        return "ursa_run failed";
    if (failed)
        return static_cast<const char *>(failed);
    if (sh.counter != 200)
        return "lost increments";
    return ursa_mutex_destroy(&sh.m) == 0 ? nullptr : "destroy failed";
}

unsigned cxx_version(void) noexcept
{
    static_assert(URSA_VERSION ==
                      URSA_VERSION_NUMBER(URSA_VERSION_MAJOR, URSA_VERSION_MINOR, URSA_VERSION_PATCH),
                  "URSA_VERSION");
    return ursa_version();
}
