//! Memory workloads (print `name bytes`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::{mpsc, Mutex, Notify, Semaphore};
use tokio::task::yield_now;

use crate::{rt1, run_task, vm_rss_bytes};

/// Resident bytes per parked task: `n` tasks, each awaiting
/// `Notify::notified()` on one shared Notify. Tasks are detached (no
/// JoinHandle kept) so only the task allocation itself is counted.
fn mem_idle(name: &'static str, n: usize) {
    let rt = rt1();
    let per = run_task(&rt, async move {
        let notify = Arc::new(Notify::new());
        let started = Arc::new(AtomicUsize::new(0));
        let finished = Arc::new(AtomicUsize::new(0));
        let before = vm_rss_bytes();
        for _ in 0..n {
            let (notify, started, finished) = (notify.clone(), started.clone(), finished.clone());
            tokio::spawn(async move {
                let w = notify.notified();
                started.fetch_add(1, Ordering::Relaxed);
                w.await; // first poll registers the waiter
                finished.fetch_add(1, Ordering::Relaxed);
            });
        }
        while started.load(Ordering::Relaxed) < n {
            yield_now().await;
        }
        let after = vm_rss_bytes();
        notify.notify_waiters();
        while finished.load(Ordering::Relaxed) < n {
            yield_now().await;
        }
        check!(name, finished.load(Ordering::Relaxed) == n, "finished != n");
        eprintln!(
            "tokio-bench: {}: VmRSS before {} after {} ({} tasks)",
            name, before, after, n
        );
        after.saturating_sub(before) / n as u64
    });
    println!("{} {}", name, per);
}

pub fn mem_per_idle_task(_s: u64) {
    mem_idle("mem_per_idle_task", 100_000);
}

/// 1,000,000 parked tasks (Tokio's default: no stacks, a task is a heap
/// allocation holding its future).
pub fn mem_1m_tasks(_s: u64) {
    mem_idle("mem_1m_tasks", 1_000_000);
}

pub fn mem_per_waiter(_s: u64) {
    let notify = Notify::new();
    let n = std::mem::size_of_val(&notify.notified());
    let m = Mutex::new(0u64);
    let sem = Semaphore::new(1);
    let (_tx, mut rx) = mpsc::channel::<u64>(1);
    eprintln!(
        "tokio-bench: mem_per_waiter: Notified {} B, Mutex::lock() future {} B, \
         Semaphore::acquire() future {} B, mpsc::Receiver::recv() future {} B",
        n,
        std::mem::size_of_val(&m.lock()),
        std::mem::size_of_val(&sem.acquire()),
        std::mem::size_of_val(&rx.recv()),
    );
    println!("mem_per_waiter {}", n);
}
