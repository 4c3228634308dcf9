//! Two-worker workloads: a fresh 2-worker `multi_thread` runtime each.
//! Tasks are spawned from the `block_on` future (the inject queue), so each
//! idle worker takes some; Tokio then places and steals them itself.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::runtime::Runtime;
use tokio::sync::{mpsc, oneshot, Mutex, Semaphore};
use tokio::task::yield_now;

use crate::{cpus_allowed, fail, on_one_cpu, report, rt2};

fn mpsc_bounded_1p_on(name: &'static str, rt: &Runtime, s: u64, one_cpu: bool) -> Duration {
    let n = 5_000_000 * s;
    rt.block_on(async move {
        let (tx, mut rx) = mpsc::channel::<u64>(1024);
        let t = Instant::now();
        let p = tokio::spawn(async move {
            check!(name, !one_cpu || cpus_allowed() == 1, "producer not confined");
            for i in 0..n {
                if tx.send(i).await.is_err() {
                    fail(name, "send on closed channel".into());
                }
            }
        });
        let c = tokio::spawn(async move {
            check!(name, !one_cpu || cpus_allowed() == 1, "consumer not confined");
            let mut expect = 0u64;
            while let Some(v) = rx.recv().await {
                if v != expect {
                    fail(name, format!("got {} expected {}", v, expect));
                }
                expect += 1;
            }
            expect
        });
        if p.await.is_err() {
            fail(name, "producer failed".into());
        }
        let got = c.await.unwrap_or(0);
        let e = t.elapsed();
        check!(name, got == n, "received {} != {}", got, n);
        e
    })
}

pub fn mt2_mpsc_bounded_1p(s: u64) {
    let e = mpsc_bounded_1p_on("mt2_mpsc_bounded_1p", &rt2(), s, false);
    report("mt2_mpsc_bounded_1p", e, 5_000_000 * s);
}

pub fn oversub_mt2_mpsc_bounded_1p(s: u64) {
    const NAME: &str = "oversub_mt2_mpsc_bounded_1p";
    let e = on_one_cpu(|| mpsc_bounded_1p_on(NAME, &rt2(), s, true));
    report(NAME, e, 5_000_000 * s);
}

/// 4 tasks x 1M·S lock/increment/unlock on a `tokio::sync::Mutex` (FIFO).
fn mutex_contended(name: &'static str, s: u64) {
    let per = 1_000_000 * s;
    let rt = rt2();
    let e = rt.block_on(async move {
        let m = Arc::new(Mutex::new(0u64));
        let t = Instant::now();
        let hs: Vec<_> = (0..4)
            .map(|_| {
                let m = m.clone();
                tokio::spawn(async move {
                    for _ in 0..per {
                        let mut g = m.lock().await;
                        *g += 1;
                    }
                })
            })
            .collect();
        for h in hs {
            if h.await.is_err() {
                fail(name, "worker task failed".into());
            }
        }
        let e = t.elapsed();
        let v = *m.lock().await;
        check!(name, v == 4 * per, "count {} != {}", v, 4 * per);
        e
    });
    report(name, e, 4 * per);
}

pub fn mt2_mutex_contended(s: u64) {
    mutex_contended("mt2_mutex_contended", s);
}

/// Tokio's Mutex has no barging mode: the same FIFO mutex.
pub fn mt2_mutex_contended_barging(s: u64) {
    mutex_contended("mt2_mutex_contended_barging", s);
}

/// A server task answers `i + 1` on each request's oneshot; a client task
/// sends N = 100k·S requests one at a time over a bounded mpsc (64).
fn request_reply(name: &'static str, s: u64, one_cpu: bool) {
    let n = 100_000 * s;
    let e = on_one_cpu_if(one_cpu, || {
        let rt = rt2();
        rt.block_on(async move {
            let (tx, mut rx) = mpsc::channel::<(u64, oneshot::Sender<u64>)>(64);
            let t = Instant::now();
            let server = tokio::spawn(async move {
                check!(name, !one_cpu || cpus_allowed() == 1, "server not confined");
                let mut served = 0u64;
                while let Some((i, reply)) = rx.recv().await {
                    if reply.send(i + 1).is_err() {
                        fail(name, "reply dropped".into());
                    }
                    served += 1;
                }
                served
            });
            let client = tokio::spawn(async move {
                check!(name, !one_cpu || cpus_allowed() == 1, "client not confined");
                for i in 0..n {
                    let (rtx, rrx) = oneshot::channel();
                    if tx.send((i, rtx)).await.is_err() {
                        fail(name, "server gone".into());
                    }
                    match rrx.await {
                        Ok(v) if v == i + 1 => {}
                        other => fail(name, format!("reply {:?} to {}", other, i)),
                    }
                }
            });
            if client.await.is_err() {
                fail(name, "client failed".into());
            }
            let served = server.await.unwrap_or(0);
            let e = t.elapsed();
            check!(name, served == n, "served {} != {}", served, n);
            e
        })
    });
    report(name, e, n);
}

fn on_one_cpu_if<T>(yes: bool, f: impl FnOnce() -> T) -> T {
    if yes {
        on_one_cpu(f)
    } else {
        f()
    }
}

/// Tokio cannot fix a task on a worker: both rows use Tokio's placement.
pub fn mt2_request_reply(s: u64) {
    request_reply("mt2_request_reply", s, false);
}

pub fn mt2_request_reply_migratable(s: u64) {
    request_reply("mt2_request_reply_migratable", s, false);
}

pub fn oversub_mt2_request_reply(s: u64) {
    request_reply("oversub_mt2_request_reply", s, true);
}

/// 20k·S times: the root task spawns 6 tasks that each take 1 permit of a
/// 5-permit semaphore, yield once, release and return; the root joins all.
pub fn mt2_fork_join(s: u64) {
    const NAME: &str = "mt2_fork_join";
    let n = 20_000 * s;
    let rt = rt2();
    let e = rt.block_on(async move {
        let root = tokio::spawn(async move {
            let sem = Arc::new(Semaphore::new(5));
            let t = Instant::now();
            for _ in 0..n {
                let hs: Vec<_> = (0..6u64)
                    .map(|k| {
                        let sem = sem.clone();
                        tokio::spawn(async move {
                            let p = match sem.acquire().await {
                                Ok(p) => p,
                                Err(_) => fail(NAME, "semaphore closed".into()),
                            };
                            yield_now().await;
                            drop(p);
                            k
                        })
                    })
                    .collect();
                for (k, h) in hs.into_iter().enumerate() {
                    match h.await {
                        Ok(v) if v == k as u64 => {}
                        _ => fail(NAME, format!("task {} failed", k)),
                    }
                }
            }
            let e = t.elapsed();
            check!(NAME, sem.available_permits() == 5, "permits {}", sem.available_permits());
            e
        });
        match root.await {
            Ok(e) => e,
            Err(_) => fail(NAME, "root task failed".into()),
        }
    });
    report(NAME, e, 6 * n);
}

pub fn xorshift50(mut x: u64) -> u64 {
    for _ in 0..50 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    x
}

/// producer -> async_channel::bounded(256) (MPMC) -> 4 workers (50 rounds of
/// xorshift64) -> tokio mpsc(256) -> the collector (root task) sums.
pub fn mt2_pipeline(s: u64) {
    const NAME: &str = "mt2_pipeline";
    let n = 1_000_000 * s;
    let want = (0..n).fold(0u64, |a, i| a.wrapping_add(xorshift50(i)));
    let rt = rt2();
    let e = rt.block_on(async move {
        let root = tokio::spawn(async move {
            let (wtx, wrx) = async_channel::bounded::<u64>(256);
            let (ctx, mut crx) = mpsc::channel::<u64>(256);
            let t = Instant::now();
            let p = tokio::spawn(async move {
                for i in 0..n {
                    if wtx.send(i).await.is_err() {
                        fail(NAME, "workers gone".into());
                    }
                }
            });
            let ws: Vec<_> = (0..4)
                .map(|_| {
                    let (wrx, ctx) = (wrx.clone(), ctx.clone());
                    tokio::spawn(async move {
                        while let Ok(v) = wrx.recv().await {
                            if ctx.send(xorshift50(v)).await.is_err() {
                                fail(NAME, "collector gone".into());
                            }
                        }
                    })
                })
                .collect();
            drop((wrx, ctx));
            let (mut got, mut sum) = (0u64, 0u64);
            while let Some(v) = crx.recv().await {
                got += 1;
                sum = sum.wrapping_add(v);
            }
            let e = t.elapsed();
            check!(NAME, got == n && sum == want, "got {} sum {} want {}", got, sum, want);
            if p.await.is_err() {
                fail(NAME, "producer failed".into());
            }
            for w in ws {
                if w.await.is_err() {
                    fail(NAME, "worker failed".into());
                }
            }
            e
        });
        match root.await {
            Ok(e) => e,
            Err(_) => fail(NAME, "root task failed".into()),
        }
    });
    report(NAME, e, n);
}
