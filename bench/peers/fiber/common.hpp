// fiber-bench: shared helpers and the workload bodies' declarations.
#pragma once

#include <boost/fiber/all.hpp>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <unistd.h>

namespace bf = boost::fibers;
using clk = std::chrono::steady_clock;
using u64 = std::uint64_t;

[[noreturn]] inline void fail(const char *name, const std::string &msg) {
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

inline void report(const char *name, clk::duration d, u64 ops) {
    double ns = std::chrono::duration<double, std::nano>(d).count();
    std::printf("%s %.2f\n", name, ns / double(ops));
    std::fflush(stdout);
}

inline long vm_rss_bytes() {
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
inline bf::pooled_fixedsize_stack &salloc() {
    static bf::pooled_fixedsize_stack a(boost::context::stack_traits::default_size());
    return a;
}

template <typename Fn>
bf::fiber spawn(Fn &&fn) {
    return bf::fiber(std::allocator_arg, salloc(), std::forward<Fn>(fn));
}

using lock_t = std::unique_lock<bf::mutex>;

// Stacks for mt2: default fixedsize_stack (malloc; thread-safe, since a
// fiber stolen by the other thread is freed there).
template <typename Fn>
bf::fiber spawn_mt(Fn &&fn) {
    return bf::fiber(std::forward<Fn>(fn));
}

// Runs `body` on thread A of a pair of threads that both use the
// work_stealing scheduler (2 threads); thread B only lends its scheduler.
// work_stealing keeps a static registry sized at first use, so one pair per
// process runs all mt2 workloads. suspend: work_stealing's own flag (false,
// its default: an idle thread spins; true: it sleeps on a condition
// variable until woken).
void run_mt2(const std::function<void()> &body, bool suspend);

// single.cpp
void spawn_join(u64 s);
void yield_switch(u64 s);
void mutex_uncontended(u64 s);
void mutex_contended_handoff(u64 s);
void mpsc_bounded_1p(u64 s);
void mpsc_bounded_4p(u64 s);
void oneshot_create_send_recv(u64 s);
void mpsc_pingpong_roundtrip(u64 s);
void notify_pingpong_roundtrip(u64 s);
void broadcast_1to4_per_send(u64 s);
void watch_pingpong_roundtrip(u64 s);
void select_2chan_pingpong(u64 s);
void select_recv_or_timeout(u64 s);
void mpsc_bounded_big(u64 s);
clk::duration mpsc_1p(const char *name, u64 s, bool mt);

// mt2.cpp (inside run_mt2)
void mt2_mpsc_bounded_1p(const char *name, u64 s);
void mt2_mutex_contended(const char *name, u64 s);
void mt2_request_reply(const char *name, u64 s);
void mt2_fork_join(u64 s);
void mt2_pipeline(u64 s);
