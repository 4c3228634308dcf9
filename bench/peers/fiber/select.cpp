// The select_* workloads on Boost.Fiber, which has no select: emulated the
// way Boost.Fiber code waits on "any of" its channels without losing a
// value: one shared condition (mutex + condition_variable) that every
// sender signals after its push, and a waiter that tries each channel
// (try_pop, in random order like a select) under that mutex, waiting on
// the condition when none had a value. A timer case is the condition's
// wait_until. Nothing is popped by a branch that does not win.

#include "common.hpp"

#include <random>

namespace {

// Signalled after every push into any channel it covers.
struct any_of {
    bf::mutex m;
    bf::condition_variable cv;
    void signal() {
        { lock_t lk(m); } // a waiter between its tries and its wait sees the push or the notify
        cv.notify_one();
    }
};

using chan = bf::buffered_channel<u64>;

} // namespace

void select_2chan_pingpong(u64 s) {
    const char *name = "select_2chan_pingpong";
    const u64 n = 1000000 * s;
    chan in0(2), in1(2), out0(2), out1(2); // capacity 1 each
    chan *in[2] = {&in0, &in1}, *out[2] = {&out0, &out1};
    any_of sig;
    bool done = false;
    u64 count[2] = {0, 0};
    bf::fiber echo = spawn([&] {
        std::minstd_rand rng(1);
        for (;;) {
            u64 v;
            int got = -1;
            {
                lock_t lk(sig.m);
                for (;;) {
                    int first = int(rng() & 1);
                    for (int k = 0; k < 2 && got < 0; k++) {
                        int i = first ^ k;
                        if (in[i]->try_pop(v) == bf::channel_op_status::success) got = i;
                    }
                    if (got >= 0 || done) break;
                    sig.cv.wait(lk);
                }
            }
            if (got < 0) break;
            if (out[got]->push(v) != bf::channel_op_status::success) fail(name, "echo push");
            count[got]++;
        }
    });
    auto t = clk::now();
    for (u64 i = 0; i < n; i++) {
        if (in[i % 2]->push(i) != bf::channel_op_status::success) fail(name, "push");
        sig.signal();
        u64 v;
        if (out[i % 2]->pop(v) != bf::channel_op_status::success || v != i) fail(name, "bad echo");
    }
    auto d = clk::now() - t;
    {
        lock_t lk(sig.m);
        done = true;
    }
    sig.cv.notify_one();
    echo.join();
    CHECK(name, count[0] == (n + 1) / 2 && count[1] == n / 2, "echo counts %llu %llu",
          (unsigned long long)count[0], (unsigned long long)count[1]);
    report(name, d, n);
}

void select_recv_or_timeout(u64 s) {
    const char *name = "select_recv_or_timeout";
    const u64 n = 1000000 * s;
    chan ch(2); // capacity 1
    any_of sig;
    std::minstd_rand rng(1);
    auto t = clk::now();
    for (u64 i = 0; i < n; i++) {
        if (ch.try_push(i) != bf::channel_op_status::success) fail(name, "refill");
        sig.signal();
        auto deadline = clk::now() + std::chrono::seconds(1); // a fresh 1 s timer
        u64 v = ~i;
        bool got = false, timed_out = false;
        lock_t lk(sig.m);
        while (!got && !timed_out) {
            // the two cases in random order: the value, or the timer
            if (rng() & 1) {
                got = ch.try_pop(v) == bf::channel_op_status::success;
                if (!got) timed_out = clk::now() >= deadline;
            } else {
                timed_out = clk::now() >= deadline;
                if (!timed_out) got = ch.try_pop(v) == bf::channel_op_status::success;
            }
            if (!got && !timed_out) sig.cv.wait_until(lk, deadline);
        }
        if (!got || v != i) fail(name, "timed out or bad value");
    }
    report(name, clk::now() - t, n);
}
