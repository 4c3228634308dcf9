//! r2d2-bench: the pool workloads of WORKLOADS.md on r2d2 (a blocking pool:
//! plain threads) with a stub connection manager.
//!
//! Usage: r2d2-bench [S] [workload...]   (S: scale factor, default 1)
//!
//! stdout: `name value` per workload (ns per op; pool_spike_creates: a
//! count). Every workload checks its result and exits 1 on a mismatch.
//!
//! Notes:
//! - acquire = `Pool::get()`, return = dropping the PooledConnection.
//!   r2d2's defaults stay on, among them `test_on_check_out` (the stub's
//!   `is_valid` returns Ok at once).
//! - mt2_pool_contended: 8 threads; the suite runs the process on the
//!   machine's 2 CPUs (bench/peers/build.sh's wrapper confines it to the
//!   first two CPUs of its mask when it has more).
//! - "100 ns of work": a busy-wait on the monotonic clock until 100 ns have
//!   passed, the same in every peer.
//! - pool_spike_creates: max_size 50, min_idle Some(0); creates run on
//!   r2d2's own thread pool (3 threads by default). Counts `connect` calls,
//!   read 300 ms after the last of the 50 threads finished.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

fn fail(name: &str, msg: String) -> ! {
    eprintln!("r2d2-bench: {}: CHECK FAILED: {}", name, msg);
    std::process::exit(1);
}

fn report(name: &str, elapsed: Duration, ops: u64) {
    println!("{} {:.2}", name, elapsed.as_nanos() as f64 / ops as f64);
}

/// Connections that do nothing; `connect` sleeps `delay` and counts.
struct StubManager {
    delay: Duration,
    creates: Arc<AtomicU64>,
}

struct StubConn;

#[derive(Debug)]
struct StubError;

impl std::fmt::Display for StubError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("stub error")
    }
}

impl std::error::Error for StubError {}

impl r2d2::ManageConnection for StubManager {
    type Connection = StubConn;
    type Error = StubError;

    fn connect(&self) -> Result<StubConn, StubError> {
        // Relaxed: a counter read after the threads are joined.
        self.creates.fetch_add(1, Ordering::Relaxed);
        if !self.delay.is_zero() {
            thread::sleep(self.delay);
        }
        Ok(StubConn)
    }

    fn is_valid(&self, _conn: &mut StubConn) -> Result<(), StubError> {
        Ok(())
    }

    fn has_broken(&self, _conn: &mut StubConn) -> bool {
        false
    }
}

fn pool(max: u32, min_idle: Option<u32>, delay: Duration) -> (r2d2::Pool<StubManager>, Arc<AtomicU64>) {
    let creates = Arc::new(AtomicU64::new(0));
    let m = StubManager { delay, creates: creates.clone() };
    let p = r2d2::Pool::builder()
        .max_size(max)
        .min_idle(min_idle)
        .build(m)
        .unwrap_or_else(|e| fail("pool", format!("build: {}", e)));
    (p, creates)
}

fn cycles(name: &str, p: &r2d2::Pool<StubManager>, n: u64, work: Duration) {
    for _ in 0..n {
        let c = p.get().unwrap_or_else(|e| fail(name, format!("get: {}", e)));
        if !work.is_zero() {
            let t = Instant::now();
            while t.elapsed() < work {
                std::hint::spin_loop();
            }
        }
        drop(c);
    }
}

fn pool_uncontended(s: u64) {
    const NAME: &str = "pool_uncontended";
    let n = 10_000_000 * s;
    let (p, creates) = pool(4, None, Duration::ZERO); // build() fills the pool
    let t = Instant::now();
    cycles(NAME, &p, n, Duration::ZERO);
    let e = t.elapsed();
    let st = p.state();
    if st.connections > 4 || st.idle_connections != st.connections || creates.load(Ordering::Relaxed) > 4 {
        fail(NAME, format!("pool state {:?}", st));
    }
    report(NAME, e, n);
}

fn mt2_pool_contended(s: u64) {
    const NAME: &str = "mt2_pool_contended";
    let per = 1_000_000 * s;
    let (p, _) = pool(4, None, Duration::ZERO);
    let start = Arc::new(Barrier::new(9));
    let hs: Vec<_> = (0..8)
        .map(|_| {
            let (p, start) = (p.clone(), start.clone());
            thread::spawn(move || {
                start.wait();
                cycles(NAME, &p, per, Duration::from_nanos(100));
            })
        })
        .collect();
    start.wait();
    let t = Instant::now();
    for h in hs {
        if h.join().is_err() {
            fail(NAME, "thread panicked".into());
        }
    }
    let e = t.elapsed();
    if p.state().connections > 4 {
        fail(NAME, format!("pool grew past 4: {:?}", p.state()));
    }
    report(NAME, e, 8 * per);
}

fn pool_spike_creates(_s: u64) {
    const NAME: &str = "pool_spike_creates";
    let (p, creates) = pool(50, Some(0), Duration::from_millis(150));
    let base = creates.load(Ordering::Relaxed);
    let start = Arc::new(Barrier::new(50));
    let hs: Vec<_> = (0..50)
        .map(|_| {
            let (p, start) = (p.clone(), start.clone());
            thread::spawn(move || {
                start.wait();
                let c = p.get().unwrap_or_else(|e| fail(NAME, format!("get: {}", e)));
                thread::sleep(Duration::from_millis(10));
                drop(c);
            })
        })
        .collect();
    for h in hs {
        if h.join().is_err() {
            fail(NAME, "thread panicked".into());
        }
    }
    thread::sleep(Duration::from_millis(300));
    let created = creates.load(Ordering::Relaxed) - base;
    eprintln!(
        "r2d2-bench: {}: {} created, {:?} at the end",
        NAME,
        created,
        p.state()
    );
    println!("{} {}", NAME, created);
}

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut s = 1u64;
    if let Some(a) = args.first() {
        if a.chars().all(|c| c.is_ascii_digit()) {
            s = a.parse().ok().filter(|&v| v >= 1).unwrap_or_else(|| fail("args", "S must be >= 1".into()));
            args.remove(0);
        }
    }
    let all: [(&str, fn(u64)); 3] = [
        ("pool_uncontended", pool_uncontended),
        ("mt2_pool_contended", mt2_pool_contended),
        ("pool_spike_creates", pool_spike_creates),
    ];
    for a in &args {
        if !all.iter().any(|(n, _)| n == a) {
            fail("args", format!("no workload named {}", a));
        }
    }
    for (name, run) in all {
        if args.is_empty() || args.iter().any(|a| a == name) {
            run(s);
        }
    }
}
