// fiber-bench: ursa peer benchmark, the workloads of WORKLOADS.md on
// Boost.Fiber (Debian 12: Boost 1.74).
//
// Usage: fiber-bench [S]   (scale factor, default 1)
//
// stdout: exactly one line per workload, "name ns_per_op" (or "name bytes"
// for the memory workloads). Everything else goes to stderr. Every workload
// checks its own result and exits non-zero on a mismatch.
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
// Substitutes (printed, see the comments at each workload): notify = a
// buffered_channel with room for one token and try_push; broadcast = fan-out
// to 4 buffered channels; watch = mutex + condition_variable + value +
// version; oneshot = promise/future.

#include <boost/fiber/all.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

namespace bf = boost::fibers;
using clk = std::chrono::steady_clock;
using u64 = std::uint64_t;

[[noreturn]] static void fail(const char *name, const std::string &msg) {
    std::fflush(stdout);
    std::fprintf(stderr, "fiber-bench: %s: CHECK FAILED: %s\n", name, msg.c_str());
    std::fflush(stderr);
    _exit(1);
}

#define CHECK(name, cond, ...)                                          \
    do {                                                                \
        if (!(cond)) {                                                  \
            char buf_[256];                                             \
            std::snprintf(buf_, sizeof buf_, __VA_ARGS__);              \
            fail(name, buf_);                                           \
        }                                                               \
    } while (0)

static void report(const char *name, clk::duration d, u64 ops) {
    double ns = std::chrono::duration<double, std::nano>(d).count();
    std::printf("%s %.2f\n", name, ns / double(ops));
    std::fflush(stdout);
}

static long vm_rss_bytes() {
    FILE *f = std::fopen("/proc/self/status", "r");
    if (!f) fail("vm_rss", "open /proc/self/status");
    char line[256];
    long kb = -1;
    while (std::fgets(line, sizeof line, f)) {
        if (std::strncmp(line, "VmRSS:", 6) == 0) {
            kb = std::strtol(line + 6, nullptr, 10);
            break;
        }
    }
    std::fclose(f);
    if (kb < 0) fail("vm_rss", "no VmRSS line");
    return kb * 1024;
}

// Stack allocator for the single-thread timed workloads (not thread-safe:
// boost::pool), see the header comment.
static bf::pooled_fixedsize_stack &salloc() {
    static bf::pooled_fixedsize_stack a(boost::context::stack_traits::default_size());
    return a;
}

template <typename Fn>
static bf::fiber spawn(Fn &&fn) {
    return bf::fiber(std::allocator_arg, salloc(), std::forward<Fn>(fn));
}

using lock_t = std::unique_lock<bf::mutex>;

// Notify equivalent with one stored permit: a channel with room for one
// token and a non-blocking send (the same idiom as Go's chan struct{} of
// size 1). notify() with no waiter is remembered, extra notifies coalesce.
// (The textbook mutex + condition_variable + flag event measured ~350 ns per
// round trip here against ~220 ns for this one, so the faster form is used.)
class event {
    bf::buffered_channel<char> ch_{2}; // capacity 2 = room for 1 token

public:
    void notify() { (void)ch_.try_push('x'); } // full: a permit is already stored
    void wait() {
        char c;
        if (ch_.pop(c) != bf::channel_op_status::success) fail("event", "pop failed");
    }
};

// Watch equivalent: latest value + version; receivers wait for a version
// different from the one they saw last.
class watch_var {
    bf::mutex m_;
    bf::condition_variable cv_;
    u64 val_;
    u64 ver_ = 0;
    bool closed_ = false;

public:
    explicit watch_var(u64 v) : val_(v) {}
    void send(u64 v) {
        {
            lock_t lk(m_);
            val_ = v;
            ++ver_;
        }
        cv_.notify_all();
    }
    void close() {
        {
            lock_t lk(m_);
            closed_ = true;
        }
        cv_.notify_all();
    }
    // Returns false if closed with no newer value.
    bool changed(u64 &seen, u64 &out) {
        lock_t lk(m_);
        cv_.wait(lk, [&] { return ver_ != seen || closed_; });
        if (ver_ == seen) return false;
        seen = ver_;
        out = val_;
        return true;
    }
};

// ---------------------------------------------------------------- workloads

// "Return a value": each fiber writes its result into its own slot; join()
// collects it. (fibers::async + future would add a shared-state allocation
// per task on top of the fiber itself.)
static clk::duration spawn_join_round(const char *name, u64 n) {
    std::vector<u64> res(n);
    std::vector<bf::fiber> fs;
    fs.reserve(n);
    auto t = clk::now();
    for (u64 i = 0; i < n; i++) fs.push_back(spawn([&res, i] { res[i] = i; }));
    u64 sum = 0;
    for (u64 i = 0; i < n; i++) {
        fs[i].join();
        sum += res[i];
    }
    auto d = clk::now() - t;
    CHECK(name, sum == n * (n - 1) / 2, "sum %llu", (unsigned long long)sum);
    return d;
}

// One untimed warm-up round of the same size first (all peers do this): the
// first round mostly measures page faults on fresh stack memory.
static void spawn_join(u64 s) {
    const char *name = "spawn_join";
    const u64 n = 100000 * s;
    auto cold = spawn_join_round(name, n);
    auto d = spawn_join_round(name, n);
    std::fprintf(stderr, "fiber-bench: spawn_join: cold round %.2f ns/op (not reported)\n",
                 std::chrono::duration<double, std::nano>(cold).count() / double(n));
    report(name, d, n);
}

static void yield_switch(u64 s) {
    const char *name = "yield_switch";
    const u64 n = 1000000 * s;
    u64 c[2] = {0, 0};
    auto body = [n](u64 *cnt) {
        for (u64 i = 0; i < n; i++) {
            boost::this_fiber::yield();
            ++*cnt;
        }
    };
    auto t = clk::now();
    bf::fiber a = spawn([&] { body(&c[0]); });
    bf::fiber b = spawn([&] { body(&c[1]); });
    a.join();
    b.join();
    auto d = clk::now() - t;
    CHECK(name, c[0] == n && c[1] == n, "counts %llu %llu", (unsigned long long)c[0],
          (unsigned long long)c[1]);
    report(name, d, 2 * n);
}

static void mutex_uncontended(u64 s) {
    const char *name = "mutex_uncontended";
    const u64 n = 10000000 * s;
    bf::mutex m;
    volatile u64 cnt = 0;
    auto t = clk::now();
    for (u64 i = 0; i < n; i++) {
        m.lock();
        cnt = cnt + 1;
        m.unlock();
    }
    auto d = clk::now() - t;
    CHECK(name, cnt == n, "count %llu", (unsigned long long)cnt);
    report(name, d, n);
}

// boost::fibers::mutex::unlock wakes the first waiter, which then retries;
// it is not a direct handoff, so the unlocking fiber can re-acquire first.
static void mutex_contended_handoff(u64 s) {
    const char *name = "mutex_contended_handoff";
    const u64 per = 250000 * s;
    bf::mutex m;
    u64 cnt = 0;
    std::vector<bf::fiber> fs;
    auto t = clk::now();
    for (int k = 0; k < 4; k++)
        fs.push_back(spawn([&] {
            for (u64 i = 0; i < per; i++) {
                m.lock();
                cnt++;
                boost::this_fiber::yield(); // yield while holding the lock
                m.unlock();
            }
        }));
    for (auto &f : fs) f.join();
    auto d = clk::now() - t;
    CHECK(name, cnt == 4 * per, "count %llu", (unsigned long long)cnt);
    report(name, d, 4 * per);
}

// Producer and consumer are both fibers (the caller only joins), so the same
// body serves the single-thread and the work_stealing (mt2) runs.
template <typename Spawn>
static clk::duration mpsc_1p(const char *name, u64 s, Spawn sp) {
    const u64 n = 5000000 * s;
    bf::buffered_channel<u64> ch(1024);
    u64 got = 0;
    auto t = clk::now();
    bf::fiber p = sp([&] {
        for (u64 i = 0; i < n; i++)
            if (ch.push(i) != bf::channel_op_status::success) fail(name, "push failed");
        ch.close();
    });
    bf::fiber c = sp([&] {
        u64 v, expect = 0;
        while (ch.pop(v) == bf::channel_op_status::success) {
            if (v != expect) fail(name, "out of order");
            expect++;
        }
        got = expect;
    });
    p.join();
    c.join();
    auto d = clk::now() - t;
    CHECK(name, got == n, "received %llu", (unsigned long long)got);
    return d;
}

static void mpsc_bounded_1p(u64 s) {
    auto d = mpsc_1p("mpsc_bounded_1p", s, [](auto &&fn) { return spawn(fn); });
    report("mpsc_bounded_1p", d, 5000000 * s);
}

static void mpsc_bounded_4p(u64 s) {
    const char *name = "mpsc_bounded_4p";
    const u64 per = 5000000 * s / 4;
    bf::buffered_channel<u64> ch(1024);
    int live = 4;
    std::vector<bf::fiber> fs;
    auto t = clk::now();
    for (int k = 0; k < 4; k++)
        fs.push_back(spawn([&] {
            for (u64 i = 0; i < per; i++)
                if (ch.push(i) != bf::channel_op_status::success) fail(name, "push failed");
            if (--live == 0) ch.close(); // single thread: plain counter
        }));
    u64 v, cnt = 0, sum = 0;
    while (ch.pop(v) == bf::channel_op_status::success) {
        cnt++;
        sum += v;
    }
    for (auto &f : fs) f.join();
    auto d = clk::now() - t;
    CHECK(name, cnt == 4 * per && sum == 4 * (per * (per - 1) / 2), "received %llu",
          (unsigned long long)cnt);
    report(name, d, cnt);
}

// oneshot = promise/future (one shared-state allocation per use).
static void oneshot_create_send_recv(u64 s) {
    const char *name = "oneshot_create_send_recv";
    const u64 n = 1000000 * s;
    auto t = clk::now();
    for (u64 i = 0; i < n; i++) {
        bf::promise<u64> p;
        bf::future<u64> f = p.get_future();
        p.set_value(i);
        u64 v = f.get();
        if (v != i) fail(name, "wrong value");
    }
    auto d = clk::now() - t;
    report(name, d, n);
}

static void mpsc_pingpong_roundtrip(u64 s) {
    const char *name = "mpsc_pingpong_roundtrip";
    const u64 n = 1000000 * s;
    bf::buffered_channel<u64> a(2), b(2); // capacity 1 each
    u64 echoed = 0;
    bf::fiber echo = spawn([&] {
        u64 v;
        while (a.pop(v) == bf::channel_op_status::success) {
            if (b.push(v) != bf::channel_op_status::success) fail(name, "echo push");
            echoed++;
        }
    });
    auto t = clk::now();
    for (u64 i = 0; i < n; i++) {
        if (a.push(i) != bf::channel_op_status::success) fail(name, "push");
        u64 v;
        if (b.pop(v) != bf::channel_op_status::success || v != i) fail(name, "bad echo");
    }
    auto d = clk::now() - t;
    a.close();
    echo.join();
    CHECK(name, echoed == n, "echo count %llu", (unsigned long long)echoed);
    report(name, d, n);
}

static void notify_pingpong_roundtrip(u64 s) {
    const char *name = "notify_pingpong_roundtrip";
    const u64 n = 1000000 * s;
    event a, b;
    u64 echoed = 0, c = 0;
    bf::fiber echo = spawn([&] {
        for (u64 i = 0; i < n; i++) {
            a.wait();
            b.notify();
            echoed++;
        }
    });
    auto t = clk::now();
    for (u64 i = 0; i < n; i++) {
        a.notify();
        b.wait();
        c++;
    }
    auto d = clk::now() - t;
    echo.join();
    CHECK(name, c == n && echoed == n, "counts %llu %llu", (unsigned long long)c,
          (unsigned long long)echoed);
    report(name, d, n);
}

// No broadcast channel in Boost.Fiber: fan-out, one buffered_channel(1024)
// per receiver; a full receiver blocks the sender (no lagging).
static void broadcast_1to4_per_send(u64 s) {
    const char *name = "broadcast_1to4_per_send";
    const u64 n = 1000000 * s;
    std::vector<std::unique_ptr<bf::buffered_channel<u64>>> chs;
    for (int k = 0; k < 4; k++) chs.emplace_back(new bf::buffered_channel<u64>(1024));
    u64 got[4] = {0, 0, 0, 0};
    std::vector<bf::fiber> fs;
    auto t = clk::now();
    for (int k = 0; k < 4; k++)
        fs.push_back(spawn([&, k] {
            u64 v, expect = 0;
            while (chs[k]->pop(v) == bf::channel_op_status::success) {
                if (v != expect) fail(name, "out of order");
                expect++;
            }
            got[k] = expect;
        }));
    for (u64 i = 0; i < n; i++) {
        for (auto &ch : chs)
            if (ch->push(i) != bf::channel_op_status::success) fail(name, "push");
        if (i % 512 == 511) boost::this_fiber::yield();
    }
    for (auto &ch : chs) ch->close();
    for (auto &f : fs) f.join();
    auto d = clk::now() - t;
    for (int k = 0; k < 4; k++)
        CHECK(name, got[k] == n, "receiver %d saw %llu", k, (unsigned long long)got[k]);
    report(name, d, n);
}

static void watch_pingpong_roundtrip(u64 s) {
    const char *name = "watch_pingpong_roundtrip";
    const u64 n = 1000000 * s;
    watch_var a(0), b(0);
    u64 echoed = 0;
    bf::fiber echo = spawn([&] {
        u64 seen = 0, v;
        while (a.changed(seen, v)) {
            b.send(v);
            echoed++;
        }
    });
    auto t = clk::now();
    u64 seen = 0;
    for (u64 i = 1; i <= n; i++) {
        a.send(i);
        u64 v = 0;
        if (!b.changed(seen, v) || v != i) fail(name, "bad echo");
    }
    auto d = clk::now() - t;
    a.close();
    echo.join();
    CHECK(name, echoed == n, "echo count %llu", (unsigned long long)echoed);
    report(name, d, n);
}

// ---------------------------------------------------------------- mt2

// Runs `body` on thread A of a pair of threads that both use the
// work_stealing scheduler; thread B only lends its scheduler until done.
// work_stealing keeps a static registry sized at first use, so the pair is
// created once and runs all mt2 workloads.
static void run_mt2(const std::function<void()> &body) {
    std::mutex m;
    std::condition_variable cv;
    int registered = 0;
    auto wait_both = [&] {
        std::unique_lock<std::mutex> lk(m);
        if (++registered == 2) cv.notify_all();
        cv.wait(lk, [&] { return registered == 2; });
    };
    bf::mutex done_m;
    bf::condition_variable done_cv;
    bool done = false;

    std::thread helper([&] {
        bf::use_scheduling_algorithm<bf::algo::work_stealing>(2);
        wait_both();
        lock_t lk(done_m);
        done_cv.wait(lk, [&] { return done; }); // scheduler runs stolen fibers meanwhile
    });
    std::thread main_worker([&] {
        bf::use_scheduling_algorithm<bf::algo::work_stealing>(2);
        wait_both();
        body();
        {
            lock_t lk(done_m);
            done = true;
        }
        done_cv.notify_all();
    });
    main_worker.join();
    helper.join();
}

// Stacks: default fixedsize_stack (malloc; thread-safe, since a fiber stolen
// by the other thread is freed there). Only a handful of fibers are created.
template <typename Fn>
static bf::fiber spawn_mt(Fn &&fn) {
    return bf::fiber(std::forward<Fn>(fn));
}

static void mt2_mpsc_bounded_1p(u64 s) {
    auto d = mpsc_1p("mt2_mpsc_bounded_1p", s, [](auto &&fn) { return spawn_mt(fn); });
    report("mt2_mpsc_bounded_1p", d, 5000000 * s);
}

static void mt2_mutex_contended(u64 s) {
    const char *name = "mt2_mutex_contended";
    const u64 per = 1000000 * s;
    bf::mutex m;
    u64 cnt = 0;
    std::vector<bf::fiber> fs;
    auto t = clk::now();
    for (int k = 0; k < 4; k++)
        fs.push_back(spawn_mt([&] {
            for (u64 i = 0; i < per; i++) {
                m.lock();
                cnt++;
                m.unlock();
            }
        }));
    for (auto &f : fs) f.join();
    auto d = clk::now() - t;
    CHECK(name, cnt == 4 * per, "count %llu", (unsigned long long)cnt);
    report(name, d, 4 * per);
}

// ---------------------------------------------------------------- memory

// 100k detached fibers, each waiting on one shared notify-all (mutex +
// condition_variable + flag). Runs first, in a fresh process.
static long mem_per_idle_task() {
    const char *name = "mem_per_idle_task";
    const int n = 100000;
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
    return (after - before) / n;
}

int main(int argc, char **argv) {
    u64 s = 1;
    if (argc > 1) {
        char *end;
        long v = std::strtol(argv[1], &end, 10);
        if (*end || v < 1) {
            std::fprintf(stderr, "usage: fiber-bench [S>=1]\n");
            return 2;
        }
        s = u64(v);
    }
    long mem = mem_per_idle_task();

    spawn_join(s);
    yield_switch(s);
    mutex_uncontended(s);
    mutex_contended_handoff(s);
    // rwlock_read_uncontended, semaphore_uncontended: no such primitive.
    mpsc_bounded_1p(s);
    mpsc_bounded_4p(s);
    // mpsc_unbounded_1p: no unbounded channel.
    oneshot_create_send_recv(s);
    mpsc_pingpong_roundtrip(s);
    notify_pingpong_roundtrip(s);
    broadcast_1to4_per_send(s);
    watch_pingpong_roundtrip(s);
    run_mt2([s] {
        mt2_mpsc_bounded_1p(s);
        mt2_mutex_contended(s);
    });

    std::printf("mem_per_idle_task %ld\n", mem);
    // mem_per_waiter: not measurable the same way (see header).
    return 0;
}
