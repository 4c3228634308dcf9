// hikari-bench: the pool workloads of WORKLOADS.md on HikariCP (Debian's
// libhikaricp-java) with a stub JDBC driver (StubDriver) and plain Java
// threads.
//
// Usage: hikari-bench [S] [workload...]   (S: scale factor, default 1)
//
// stdout: `name value` per workload (ns per op; pool_spike_creates: a
// count). Diagnostics on stderr. Every workload checks its result and the
// program exits 1 on a mismatch.
//
// Notes:
//  - The JVM compiles hot code as it runs: each timed workload first runs an
//    untimed warm-up (1M acquire/return cycles on the same pool, on the
//    same threads' code paths) so the timed region measures compiled code,
//    as JMH does.
//  - "100 ns of work" (mt2_pool_contended): a busy-wait on System.nanoTime()
//    until 100 ns have passed, the same in every peer.
//  - mt2: 8 plain threads; bench/peers/build.sh's wrapper runs the JVM on at
//    most 2 CPUs (taskset on the first two CPUs of its mask when it has
//    more), so the 8 threads share 2 CPUs as 8 tasks share 2 workers.
//  - pool_spike_creates counts connect() calls started after the pool was
//    constructed, read 300 ms after the last of the 50 threads finished (a
//    create still in flight then counts too). HikariCP's start-up probe
//    (initializationFailTimeout: one connection made and, with minimumIdle 0,
//    closed at once) is printed on stderr, not counted.

import com.zaxxer.hikari.HikariConfig;
import com.zaxxer.hikari.HikariDataSource;
import java.sql.Connection;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.atomic.AtomicLong;

public final class HikariBench {
    static void fail(String name, String msg) {
        System.out.flush();
        System.err.println("hikari-bench: " + name + ": CHECK FAILED: " + msg);
        System.exit(1);
    }

    static void report(String name, long ns, long ops) {
        System.out.printf("%s %.2f%n", name, (double) ns / ops);
        System.out.flush();
    }

    static HikariDataSource pool(String name, int max, int minIdle, int delayMs) {
        HikariConfig c = new HikariConfig();
        c.setPoolName(name);
        c.setDriverClassName(StubDriver.class.getName());
        c.setJdbcUrl(StubDriver.PREFIX + delayMs);
        c.setMaximumPoolSize(max);
        c.setMinimumIdle(minIdle);
        c.setConnectionTimeout(30_000);
        return new HikariDataSource(c);
    }

    /** n acquire/return cycles; counts them into done. */
    static void cycles(HikariDataSource ds, long n, long workNs, AtomicLong done) throws SQLException {
        for (long i = 0; i < n; i++) {
            Connection c = ds.getConnection();
            try {
                if (workNs > 0) {
                    long t = System.nanoTime();
                    while (System.nanoTime() - t < workNs) Thread.onSpinWait();
                }
            } finally {
                c.close(); // back to the pool
            }
        }
        done.addAndGet(n);
    }

    /** `threads` threads run `per` cycles each; returns the elapsed ns. */
    static long parallel(HikariDataSource ds, int threads, long per, long workNs, AtomicLong done)
            throws Exception {
        CyclicBarrier start = new CyclicBarrier(threads + 1);
        List<Thread> ts = new ArrayList<>();
        Throwable[] err = {null};
        for (int k = 0; k < threads; k++) {
            Thread t = new Thread(() -> {
                try {
                    start.await();
                    cycles(ds, per, workNs, done);
                } catch (Throwable e) {
                    err[0] = e;
                }
            });
            t.start();
            ts.add(t);
        }
        start.await();
        long t0 = System.nanoTime();
        for (Thread t : ts) t.join();
        long ns = System.nanoTime() - t0;
        if (err[0] != null) fail("parallel", err[0].toString());
        return ns;
    }

    static void poolUncontended(long s) throws Exception {
        String name = "pool_uncontended";
        long n = 10_000_000L * s;
        try (HikariDataSource ds = pool(name, 4, 4, 0)) {
            AtomicLong done = new AtomicLong();
            cycles(ds, 1_000_000, 0, done); // warm-up
            long t0 = System.nanoTime();
            cycles(ds, n, 0, done);
            long ns = System.nanoTime() - t0;
            if (done.get() != n + 1_000_000) fail(name, "cycles " + done.get());
            report(name, ns, n);
        }
    }

    static void mt2PoolContended(long s) throws Exception {
        String name = "mt2_pool_contended";
        long per = 1_000_000L * s;
        try (HikariDataSource ds = pool(name, 4, 4, 0)) {
            AtomicLong done = new AtomicLong();
            parallel(ds, 8, 125_000, 100, done); // warm-up: 1M cycles in all
            done.set(0);
            long ns = parallel(ds, 8, per, 100, done);
            if (done.get() != 8 * per) fail(name, "cycles " + done.get());
            if (ds.getHikariPoolMXBean().getTotalConnections() > 4) fail(name, "pool grew past 4");
            report(name, ns, 8 * per);
        }
    }

    static void poolSpikeCreates() throws Exception {
        String name = "pool_spike_creates";
        int before = StubDriver.creates.get();
        try (HikariDataSource ds = pool(name, 50, 0, 150)) {
            int startup = StubDriver.creates.get() - before;
            int base = StubDriver.creates.get();
            CyclicBarrier start = new CyclicBarrier(50);
            List<Thread> ts = new ArrayList<>();
            AtomicLong served = new AtomicLong();
            for (int k = 0; k < 50; k++) {
                Thread t = new Thread(() -> {
                    try {
                        start.await();
                        Connection c = ds.getConnection();
                        try {
                            Thread.sleep(10);
                        } finally {
                            c.close();
                        }
                        served.incrementAndGet();
                    } catch (Exception e) {
                        fail(name, e.toString());
                    }
                });
                t.start();
                ts.add(t);
            }
            for (Thread t : ts) t.join();
            Thread.sleep(300);
            int created = StubDriver.creates.get() - base;
            if (served.get() != 50) fail(name, "served " + served.get());
            System.err.printf("hikari-bench: %s: %d created during the spike, %d by the start-up "
                    + "probe, %d in the pool at the end%n", name, created, startup,
                    ds.getHikariPoolMXBean().getTotalConnections());
            System.out.println(name + " " + created);
            System.out.flush();
        }
    }

    public static void main(String[] args) throws Exception {
        long s = 1;
        int first = 0;
        if (args.length > 0 && args[0].matches("[0-9]+")) {
            s = Long.parseLong(args[0]);
            if (s < 1) fail("args", "S must be >= 1");
            first = 1;
        }
        List<String> names = new ArrayList<>();
        for (int a = first; a < args.length; a++) names.add(args[a]);
        String[] all = {"pool_uncontended", "mt2_pool_contended", "pool_spike_creates"};
        for (String n : names)
            if (!List.of(all).contains(n)) fail("args", "no workload named " + n);
        for (String n : all) {
            if (!names.isEmpty() && !names.contains(n)) continue;
            switch (n) {
                case "pool_uncontended": poolUncontended(s); break;
                case "mt2_pool_contended": mt2PoolContended(s); break;
                default: poolSpikeCreates(); break;
            }
        }
    }
}
