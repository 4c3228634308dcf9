// fiber-bench: single-thread workloads (round_robin on the main thread).
#include "common.hpp"

#include <memory>
#include <vector>

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
void spawn_join(u64 s) {
    const char *name = "spawn_join";
    const u64 n = 100000 * s;
    auto cold = spawn_join_round(name, n);
    auto d = spawn_join_round(name, n);
    std::fprintf(stderr, "fiber-bench: spawn_join: cold round %.2f ns/op (not reported)\n",
                 std::chrono::duration<double, std::nano>(cold).count() / double(n));
    report(name, d, n);
}

void yield_switch(u64 s) {
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

void mutex_uncontended(u64 s) {
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
void mutex_contended_handoff(u64 s) {
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
clk::duration mpsc_1p(const char *name, u64 s, bool mt) {
    auto sp = [mt](std::function<void()> fn) { return mt ? spawn_mt(std::move(fn)) : spawn(std::move(fn)); };
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

void mpsc_bounded_1p(u64 s) {
    auto d = mpsc_1p("mpsc_bounded_1p", s, false);
    report("mpsc_bounded_1p", d, 5000000 * s);
}

void mpsc_bounded_4p(u64 s) {
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
void oneshot_create_send_recv(u64 s) {
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

void mpsc_pingpong_roundtrip(u64 s) {
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

void notify_pingpong_roundtrip(u64 s) {
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
void broadcast_1to4_per_send(u64 s) {
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

void watch_pingpong_roundtrip(u64 s) {
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

// 200·S times: a buffered_channel of 2^20 slots (it needs a power of two;
// holds 1,048,575 >= 1,000,000), a producer fiber sends 5000 values, this
// context receives them, the channel is destroyed.
void mpsc_bounded_big(u64 s) {
    const char *name = "mpsc_bounded_big";
    const u64 iters = 200 * s, msgs = 5000;
    auto t = clk::now();
    for (u64 it = 0; it < iters; it++) {
        bf::buffered_channel<u64> ch(1u << 20);
        bf::fiber p = spawn([&] {
            for (u64 i = 0; i < msgs; i++)
                if (ch.push(i) != bf::channel_op_status::success) fail(name, "push failed");
            ch.close();
        });
        u64 v, cnt = 0, sum = 0;
        while (ch.pop(v) == bf::channel_op_status::success) {
            cnt++;
            sum += v;
        }
        p.join();
        CHECK(name, cnt == msgs && sum == msgs * (msgs - 1) / 2, "received %llu",
              (unsigned long long)cnt);
    }
    auto d = clk::now() - t;
    report(name, d, iters * msgs);
}
