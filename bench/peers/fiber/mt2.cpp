// fiber-bench: two-thread workloads (work_stealing(2)), run inside run_mt2.
#include "common.hpp"

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

void run_mt2(const std::function<void()> &body, bool suspend) {
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
        bf::use_scheduling_algorithm<bf::algo::work_stealing>(2, suspend);
        wait_both();
        lock_t lk(done_m);
        done_cv.wait(lk, [&] { return done; }); // scheduler runs stolen fibers meanwhile
    });
    std::thread main_worker([&] {
        bf::use_scheduling_algorithm<bf::algo::work_stealing>(2, suspend);
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

void mt2_mpsc_bounded_1p(const char *name, u64 s) {
    auto d = mpsc_1p(name, s, true);
    report(name, d, 5000000 * s);
}

// fibers::mutex wakes a waiter that retries; the unlocker may barge. The
// same code serves mt2_mutex_contended_barging.
void mt2_mutex_contended(const char *name, u64 s) {
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

// A server fiber answers i+1 on each request's promise; a client fiber sends
// N = 100k·S requests one at a time over a buffered_channel(64) (holds 63).
// The promise travels in the request (moved), so the server owns it while it
// sets the value. Boost.Fiber cannot pin a fiber to a thread: work_stealing
// places them.
struct request {
    u64 i = 0;
    bf::promise<u64> reply;
};

void mt2_request_reply(const char *name, u64 s) {
    const u64 n = 100000 * s;
    bf::buffered_channel<request> reqs(64);
    u64 served = 0;
    auto t = clk::now();
    bf::fiber server = spawn_mt([&] {
        request q;
        while (reqs.pop(q) == bf::channel_op_status::success) {
            q.reply.set_value(q.i + 1);
            served++;
        }
    });
    bf::fiber client = spawn_mt([&] {
        for (u64 i = 0; i < n; i++) {
            request q;
            q.i = i;
            bf::future<u64> f = q.reply.get_future();
            if (reqs.push(std::move(q)) != bf::channel_op_status::success) fail(name, "push");
            if (f.get() != i + 1) fail(name, "wrong reply");
        }
        reqs.close();
    });
    client.join();
    server.join();
    auto d = clk::now() - t;
    CHECK(name, served == n, "served %llu", (unsigned long long)served);
    report(name, d, n);
}

// 20k·S times: 6 fibers each take a permit of a 5-permit semaphore, yield
// once, release and return. Boost.Fiber has no semaphore: the permits are 5
// tokens in a buffered_channel(8) (pop = acquire, push = release), the Go
// idiom.
void mt2_fork_join(u64 s) {
    const char *name = "mt2_fork_join";
    const u64 n = 20000 * s;
    bf::buffered_channel<char> sem(8);
    for (int k = 0; k < 5; k++)
        if (sem.try_push('p') != bf::channel_op_status::success) fail(name, "fill");
    u64 res[6];
    auto t = clk::now();
    for (u64 it = 0; it < n; it++) {
        bf::fiber fs[6];
        for (u64 k = 0; k < 6; k++)
            fs[k] = spawn_mt([&, k] {
                char c;
                if (sem.pop(c) != bf::channel_op_status::success) fail(name, "acquire");
                boost::this_fiber::yield();
                if (sem.push(c) != bf::channel_op_status::success) fail(name, "release");
                res[k] = k + 1;
            });
        for (u64 k = 0; k < 6; k++) {
            fs[k].join();
            if (res[k] != k + 1) fail(name, "wrong result");
            res[k] = 0;
        }
    }
    auto d = clk::now() - t;
    int left = 0;
    char c;
    while (sem.try_pop(c) == bf::channel_op_status::success) left++;
    CHECK(name, left == 5, "%d permits left", left);
    report(name, d, 6 * n);
}

static u64 xorshift50(u64 x) {
    for (int r = 0; r < 50; r++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    return x;
}

// producer -> buffered_channel(256) shared by 4 worker fibers (it is MPMC)
// -> 50 rounds of xorshift64 -> buffered_channel(256) -> this fiber sums.
// (capacity 256 holds 255.)
void mt2_pipeline(u64 s) {
    const char *name = "mt2_pipeline";
    const u64 n = 1000000 * s;
    u64 want = 0;
    for (u64 i = 0; i < n; i++) want += xorshift50(i);
    bf::buffered_channel<u64> work(256), out(256);
    std::atomic<int> live{4};
    auto t = clk::now();
    bf::fiber p = spawn_mt([&] {
        for (u64 i = 0; i < n; i++)
            if (work.push(i) != bf::channel_op_status::success) fail(name, "push");
        work.close();
    });
    bf::fiber ws[4];
    for (auto &w : ws)
        w = spawn_mt([&] {
            u64 v;
            while (work.pop(v) == bf::channel_op_status::success)
                if (out.push(xorshift50(v)) != bf::channel_op_status::success) fail(name, "out");
            // acq_rel: the last worker's close follows every worker's pushes.
            if (live.fetch_sub(1, std::memory_order_acq_rel) == 1) out.close();
        });
    u64 v, got = 0, sum = 0;
    while (out.pop(v) == bf::channel_op_status::success) {
        got++;
        sum += v;
    }
    auto d = clk::now() - t;
    p.join();
    for (auto &w : ws) w.join();
    CHECK(name, got == n && sum == want, "got %llu", (unsigned long long)got);
    report(name, d, n);
}
