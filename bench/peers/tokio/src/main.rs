//! ursa peer benchmark: the workloads of WORKLOADS.md implemented on Tokio.
//!
//! Usage: tokio-bench [S] [workload...]   (S: scale factor, default 1)
//!        tokio-bench --list
//!
//! stdout: exactly one line per workload, `name ns_per_op` (or `name bytes`
//! for the memory workloads). Everything else goes to stderr. Every workload
//! checks its own result and exits non-zero on a mismatch. Without names it
//! runs every workload but `mem_1m_tasks`, which runs only when named (it
//! needs a fresh process and a few hundred MB).
//!
//! Fairness notes:
//! - Single-worker workloads run on a fresh `current_thread` runtime, the
//!   `mt2_*` ones on a fresh 2-worker `multi_thread` runtime. The I/O and
//!   time drivers are left disabled except for `select_recv_or_timeout`
//!   (it needs the timer): without them an idle/yielding scheduler only
//!   touches a thread parker instead of calling epoll.
//! - The workload bodies run inside a spawned task (the `block_on` future is
//!   polled on a slower path in Tokio, so it only awaits the JoinHandle).
//! - Only `tokio::sync` primitives, `tokio::select!`, `tokio::time::sleep`
//!   and `tokio::task::yield_now` are used, plus the `async-channel` crate
//!   for the MPMC stage of `mt2_pipeline` (Tokio has no MPMC channel).
//!   Tokio's cooperative budget stays on.
//! - Tokio cannot pin a task to a worker: `mt2_request_reply` and
//!   `mt2_request_reply_migratable` run the same code, with Tokio's own
//!   placement. Tokio's Mutex has no barging mode:
//!   `mt2_mutex_contended_barging` is `mt2_mutex_contended` again.
//! - `oversub_*`: the main thread is confined to one CPU with
//!   sched_setaffinity before the runtime is built, so every runtime thread
//!   inherits the mask; each worker checks it; the mask is restored after.
//! - Timing uses `std::time::Instant` (monotonic) around the timed region
//!   only; runtime construction and teardown are excluded.

use std::future::Future;
use std::time::Duration;

use tokio::runtime::{Builder, Runtime};

pub fn fail(name: &str, msg: String) -> ! {
    eprintln!("tokio-bench: {}: CHECK FAILED: {}", name, msg);
    std::process::exit(1);
}

macro_rules! check {
    ($name:expr, $cond:expr, $($arg:tt)*) => {
        if !$cond {
            $crate::fail($name, format!($($arg)*));
        }
    };
}

mod mem;
mod mt2;
mod select;
mod single;

pub fn report(name: &str, elapsed: Duration, ops: u64) {
    println!("{} {:.2}", name, elapsed.as_nanos() as f64 / ops as f64);
}

/// One worker: the calling thread.
pub fn rt1() -> Runtime {
    Builder::new_current_thread()
        .build()
        .expect("build current_thread runtime")
}

/// Two workers (used by the mt2_* workloads only).
pub fn rt2() -> Runtime {
    Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .expect("build multi_thread runtime")
}

/// Runs `f` as a spawned task on `rt` and returns its output.
pub fn run_task<F>(rt: &Runtime, f: F) -> F::Output
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    rt.block_on(async move {
        match tokio::spawn(f).await {
            Ok(v) => v,
            Err(e) => fail("run_task", format!("task failed: {}", e)),
        }
    })
}

pub fn vm_rss_bytes() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    for line in s.lines() {
        if let Some(rest) = line.strip_prefix("VmRSS:") {
            let kb: u64 = rest
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .expect("parse VmRSS");
            return kb * 1024;
        }
    }
    fail("vm_rss", "no VmRSS line".into());
}

/// CPUs the calling thread may run on.
pub fn cpus_allowed() -> usize {
    // SAFETY: cpu_set_t is plain data; the kernel fills it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            fail("affinity", "sched_getaffinity failed".into());
        }
        libc::CPU_COUNT(&set) as usize
    }
}

/// Runs `f` with the calling thread (and every thread it starts) confined
/// to the first CPU it may use now; restores the mask afterwards.
pub fn on_one_cpu<T>(f: impl FnOnce() -> T) -> T {
    // SAFETY: as above; the sets live on this stack.
    unsafe {
        let size = std::mem::size_of::<libc::cpu_set_t>();
        let mut saved: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, size, &mut saved) != 0 {
            fail("affinity", "sched_getaffinity failed".into());
        }
        let first = (0..libc::CPU_SETSIZE as usize)
            .find(|&c| libc::CPU_ISSET(c, &saved))
            .unwrap_or(0);
        let mut one: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(first, &mut one);
        if libc::sched_setaffinity(0, size, &one) != 0 {
            fail("affinity", "sched_setaffinity failed".into());
        }
        let r = f();
        if libc::sched_setaffinity(0, size, &saved) != 0 {
            fail("affinity", "restoring the mask failed".into());
        }
        r
    }
}

/// (name, body, runs only when named)
type Workload = (&'static str, fn(u64), bool);

/// In run order: memory first, in a fresh process, before other workloads
/// leave freed memory in the allocator.
const WORKLOADS: &[Workload] = &[
    ("mem_per_idle_task", mem::mem_per_idle_task, false),
    ("mem_per_waiter", mem::mem_per_waiter, false),
    ("mem_1m_tasks", mem::mem_1m_tasks, true),
    ("spawn_join", single::spawn_join, false),
    ("yield_switch", single::yield_switch, false),
    ("mutex_uncontended", single::mutex_uncontended, false),
    ("mutex_contended_handoff", single::mutex_contended_handoff, false),
    ("rwlock_read_uncontended", single::rwlock_read_uncontended, false),
    ("semaphore_uncontended", single::semaphore_uncontended, false),
    ("mpsc_bounded_1p", single::mpsc_bounded_1p, false),
    ("mpsc_bounded_4p", single::mpsc_bounded_4p, false),
    ("mpsc_unbounded_1p", single::mpsc_unbounded_1p, false),
    ("oneshot_create_send_recv", single::oneshot_create_send_recv, false),
    ("mpsc_pingpong_roundtrip", single::mpsc_pingpong_roundtrip, false),
    ("notify_pingpong_roundtrip", single::notify_pingpong_roundtrip, false),
    ("broadcast_1to4_per_send", single::broadcast_1to4_per_send, false),
    ("watch_pingpong_roundtrip", single::watch_pingpong_roundtrip, false),
    ("mpsc_bounded_big", single::mpsc_bounded_big, false),
    ("select_2chan_pingpong", select::select_2chan_pingpong, false),
    ("select_recv_or_timeout", select::select_recv_or_timeout, false),
    ("mt2_mpsc_bounded_1p", mt2::mt2_mpsc_bounded_1p, false),
    ("mt2_mutex_contended", mt2::mt2_mutex_contended, false),
    ("mt2_mutex_contended_barging", mt2::mt2_mutex_contended_barging, false),
    ("mt2_request_reply", mt2::mt2_request_reply, false),
    ("mt2_request_reply_migratable", mt2::mt2_request_reply_migratable, false),
    ("mt2_fork_join", mt2::mt2_fork_join, false),
    ("mt2_pipeline", mt2::mt2_pipeline, false),
    ("oversub_mt2_request_reply", mt2::oversub_mt2_request_reply, false),
    ("oversub_mt2_mpsc_bounded_1p", mt2::oversub_mt2_mpsc_bounded_1p, false),
];

fn usage() -> ! {
    eprintln!("usage: tokio-bench [S>=1] [workload...] | --list");
    std::process::exit(2);
}

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(|a| a == "--list").unwrap_or(false) {
        for (name, _, alone) in WORKLOADS {
            println!("{}{}", name, if *alone { " (only when named)" } else { "" });
        }
        return;
    }
    let mut s = 1u64;
    if let Some(a) = args.first() {
        if a.chars().all(|c| c.is_ascii_digit()) {
            s = match a.parse() {
                Ok(v) if v >= 1 => v,
                _ => usage(),
            };
            args.remove(0);
        }
    }
    for a in &args {
        if !WORKLOADS.iter().any(|(n, _, _)| n == a) {
            eprintln!("tokio-bench: no workload named {} (--list)", a);
            usage();
        }
    }
    for (name, body, alone) in WORKLOADS {
        let named = args.iter().any(|a| a == name);
        if named || (args.is_empty() && !alone) {
            body(s);
        }
    }
}
