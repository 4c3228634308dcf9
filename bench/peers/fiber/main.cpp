// fiber-bench: ursa peer benchmark, the workloads of WORKLOADS.md on
// Boost.Fiber (Debian 12: Boost 1.74).
//
// Usage: fiber-bench [--suspend] [S] [workload...]   (S: scale, default 1)
//        fiber-bench --list
// --suspend runs the mt2_* workloads only, with work_stealing(2, true):
// idle threads sleep instead of spinning (work_stealing's default). Which is
// faster depends on the load: the suite runs both and keeps the better.
//
// stdout: exactly one line per workload, "name ns_per_op" (or "name bytes"
// for the memory workloads). Everything else goes to stderr. Every workload
// checks its own result and exits non-zero on a mismatch. Without names it
// runs every workload but mem_1m_tasks, which runs only when named (it needs
// a fresh process and ~12 GB).
//
// Fairness notes:
//  - Single-worker workloads run on the main thread with Boost.Fiber's
//    default round_robin scheduler; the main thread's own context acts as the
//    "main task" (it is a full fiber context in Boost.Fiber).
//  - mt2_* run on two fresh threads that both install the work_stealing
//    scheduler (2 threads); fibers launched on one thread are stolen by the
//    other, as in Tokio's multi-thread runtime.
//  - Fiber stacks have Boost's default size (128 KiB). The timed workloads use
//    pooled_fixedsize_stack: stacks are recycled like ursa's pooled stacks
//    instead of a malloc/free per fiber. mem_per_idle_task uses Boost's
//    default allocator (fixedsize_stack, malloc), which left fewer resident
//    bytes per fiber than the pool (11.2 KB vs 13.6 KB here; the pool writes
//    a free-list link into every chunk). protected_fixedsize_stack (mmap +
//    guard page) cannot create 100k fibers at all: two mappings per stack
//    exceed vm.max_map_count (65530).
//  - Boost.Fiber cannot pin a fiber to a thread: mt2_request_reply and
//    mt2_request_reply_migratable run the same code with work_stealing's
//    placement; fibers::mutex may barge, so mt2_mutex_contended_barging is
//    mt2_mutex_contended again.
//  - oversub_*: work_stealing allows one pair of threads per process, so
//    they run in a child process: the parent confines its thread to one CPU
//    (sched_setaffinity), forks and execs itself; the child's threads
//    inherit the mask, and the child checks it before starting. The child
//    uses work_stealing(2, suspend = true): with the default (idle threads
//    spin) each hand-off on one CPU waits for the spinner's time slice to
//    end, and oversub_mt2_request_reply did not finish in 10 minutes.
//  - Timing uses std::chrono::steady_clock around the timed region only.
//  - buffered_channel<T>(cap) requires a power-of-two capacity and holds
//    cap-1 values (one ring slot stays empty). "capacity 1024" is
//    buffered_channel(1024) (holds 1023); "capacity 1" is buffered_channel(2).
//
// Not implemented (no line printed), because Boost.Fiber has no such
// primitive:
//  - rwlock_read_uncontended: no fiber shared_mutex/rwlock.
//  - semaphore_uncontended: no fiber semaphore.
//  - mpsc_unbounded_1p: only buffered (bounded) and unbuffered (rendezvous)
//    channels.
//  - mem_per_waiter: a blocked fiber links its own context into the wait
//    queue; there is no separate waiter object whose size could be measured.
// Substitutes (printed, see the comments at each workload): select_* = the
// channels' try_pop under one shared condition that every push signals
// (select.cpp; Boost.Fiber has no select); notify = a
// buffered_channel with room for one token and try_push; broadcast = fan-out
// to 4 buffered channels; watch = mutex + condition_variable + value +
// version; oneshot = promise/future.

#include "common.hpp"

#include <sched.h>
#include <sys/wait.h>

#include <vector>

// ---------------------------------------------------------------- memory

// n detached fibers, each waiting on one shared notify-all (mutex +
// condition_variable + flag), on Boost's default stack allocator.
static void mem_idle(const char *name, int n) {
    bf::fixedsize_stack alloc(boost::context::stack_traits::default_size());
    bf::mutex m;
    bf::condition_variable cv;
    bool go = false;
    int started = 0, finished = 0;
    long before = vm_rss_bytes();
    for (int i = 0; i < n; i++) {
        bf::fiber(std::allocator_arg, alloc, [&] {
            lock_t lk(m);
            started++;
            cv.wait(lk, [&] { return go; });
            finished++;
        }).detach();
    }
    while (started < n) boost::this_fiber::yield();
    long after = vm_rss_bytes();
    {
        lock_t lk(m);
        go = true;
    }
    cv.notify_all();
    while (finished < n) boost::this_fiber::yield();
    std::fprintf(stderr, "fiber-bench: %s: VmRSS before %ld after %ld (%d fibers)\n", name,
                 before, after, n);
    std::printf("%s %ld\n", name, (after - before) / n);
    std::fflush(stdout);
}

static void mem_per_idle_task(u64) { mem_idle("mem_per_idle_task", 100000); }
static void mem_1m_tasks(u64) { mem_idle("mem_1m_tasks", 1000000); }


// ---------------------------------------------------------------- table

enum where { SINGLE, MT2, OVERSUB };

struct workload {
    const char *name;
    void (*run)(const char *name, u64 s);
    where on;
    bool alone; // only when named
};

#define W1(f) [](const char *, u64 s) { f(s); }
static const workload workloads[] = {
    // Memory first, in a fresh process, before other workloads leave freed
    // memory in the allocator.
    {"mem_per_idle_task", W1(mem_per_idle_task), SINGLE, false},
    {"mem_1m_tasks", W1(mem_1m_tasks), SINGLE, true},
    {"spawn_join", W1(spawn_join), SINGLE, false},
    {"yield_switch", W1(yield_switch), SINGLE, false},
    {"mutex_uncontended", W1(mutex_uncontended), SINGLE, false},
    {"mutex_contended_handoff", W1(mutex_contended_handoff), SINGLE, false},
    // rwlock_read_uncontended, semaphore_uncontended: no such primitive.
    {"mpsc_bounded_1p", W1(mpsc_bounded_1p), SINGLE, false},
    {"mpsc_bounded_4p", W1(mpsc_bounded_4p), SINGLE, false},
    // mpsc_unbounded_1p: no unbounded channel.
    {"oneshot_create_send_recv", W1(oneshot_create_send_recv), SINGLE, false},
    {"mpsc_pingpong_roundtrip", W1(mpsc_pingpong_roundtrip), SINGLE, false},
    {"notify_pingpong_roundtrip", W1(notify_pingpong_roundtrip), SINGLE, false},
    {"broadcast_1to4_per_send", W1(broadcast_1to4_per_send), SINGLE, false},
    {"watch_pingpong_roundtrip", W1(watch_pingpong_roundtrip), SINGLE, false},
    {"mpsc_bounded_big", W1(mpsc_bounded_big), SINGLE, false},
    {"select_2chan_pingpong", W1(select_2chan_pingpong), SINGLE, false},
    {"select_recv_or_timeout", W1(select_recv_or_timeout), SINGLE, false},
    {"mt2_mpsc_bounded_1p", mt2_mpsc_bounded_1p, MT2, false},
    {"mt2_mutex_contended", mt2_mutex_contended, MT2, false},
    {"mt2_mutex_contended_barging", mt2_mutex_contended, MT2, false},
    {"mt2_request_reply", mt2_request_reply, MT2, false},
    {"mt2_request_reply_migratable", mt2_request_reply, MT2, false},
    {"mt2_fork_join", W1(mt2_fork_join), MT2, false},
    {"mt2_pipeline", W1(mt2_pipeline), MT2, false},
    {"oversub_mt2_request_reply", mt2_request_reply, OVERSUB, false},
    {"oversub_mt2_mpsc_bounded_1p", mt2_mpsc_bounded_1p, OVERSUB, false},
};
#undef W1

static const char *const CONFINED_ENV = "FIBER_BENCH_CONFINED";

static int cpus_allowed() {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) != 0) fail("affinity", "sched_getaffinity");
    return CPU_COUNT(&set);
}

// Runs this program again for the named workloads, confined to the first
// CPU this thread may use (the child inherits the mask before any of its
// threads exist).
static void run_confined(u64 s, const std::vector<const char *> &names) {
    cpu_set_t saved, one;
    if (sched_getaffinity(0, sizeof saved, &saved) != 0) fail("affinity", "sched_getaffinity");
    CPU_ZERO(&one);
    for (int c = 0; c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, &saved)) {
            CPU_SET(c, &one);
            break;
        }
    if (sched_setaffinity(0, sizeof one, &one) != 0) fail("affinity", "sched_setaffinity");
    std::fflush(stdout);
    std::string sarg = std::to_string(s);
    std::vector<char *> argv{const_cast<char *>("fiber-bench"), sarg.data()};
    for (const char *n : names) argv.push_back(const_cast<char *>(n));
    argv.push_back(nullptr);
    pid_t pid = fork();
    if (pid == 0) {
        setenv(CONFINED_ENV, "1", 1);
        execv("/proc/self/exe", argv.data());
        _exit(127);
    }
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) != pid) fail("oversub", "fork/wait failed");
    if (sched_setaffinity(0, sizeof saved, &saved) != 0) fail("affinity", "restore");
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) fail("oversub", "confined child failed");
}

int main(int argc, char **argv) {
    // --suspend: only the mt2_* workloads (unless others are named), on
    // work_stealing(2, suspend = true).
    const bool suspend = argc > 1 && std::strcmp(argv[1], "--suspend") == 0;
    if (suspend) {
        argv++;
        argc--;
    }
    if (argc > 1 && std::strcmp(argv[1], "--list") == 0) {
        for (const auto &w : workloads)
            std::printf("%s%s\n", w.name, w.alone ? " (only when named)" : "");
        return 0;
    }
    u64 s = 1;
    int first = 1;
    if (argc > 1 && argv[1][0] >= '0' && argv[1][0] <= '9') {
        char *end;
        long v = std::strtol(argv[1], &end, 10);
        if (*end || v < 1) {
            std::fprintf(stderr, "usage: fiber-bench [--suspend] [S>=1] [workload...] | --list\n");
            return 2;
        }
        s = u64(v);
        first = 2;
    }
    auto named = [&](const char *name) {
        for (int a = first; a < argc; a++)
            if (std::strcmp(argv[a], name) == 0) return true;
        return false;
    };
    for (int a = first; a < argc; a++) {
        bool known = false;
        for (const auto &w : workloads) known |= std::strcmp(w.name, argv[a]) == 0;
        if (!known) {
            std::fprintf(stderr, "fiber-bench: no workload named %s (--list)\n", argv[a]);
            return 2;
        }
    }
    const bool confined = std::getenv(CONFINED_ENV) != nullptr;
    if (confined && cpus_allowed() != 1) fail("oversub", "confined child may use several CPUs");
    std::vector<const workload *> mt2;
    std::vector<const char *> oversub;
    for (const auto &w : workloads) {
        if (first < argc ? !named(w.name) : w.alone || (suspend && w.on != MT2)) continue;
        if (w.on == SINGLE)
            w.run(w.name, s);
        else if (w.on == MT2 || confined)
            mt2.push_back(&w);
        else
            oversub.push_back(w.name);
    }
    // The confined child suspends idle threads: with work_stealing's default
    // (spin) two threads on one CPU hand over only when the spinner's time
    // slice ends (100k round trips ran over 10 minutes).
    if (!mt2.empty())
        run_mt2(
            [&] {
                for (const workload *w : mt2) w->run(w->name, s);
            },
            suspend || confined);
    if (!oversub.empty()) run_confined(s, oversub);
    return 0;
}
