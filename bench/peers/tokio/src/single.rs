//! Single-worker workloads (a fresh `current_thread` runtime each).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::runtime::Runtime;
use tokio::sync::{broadcast, mpsc, oneshot, watch, Mutex, Notify, RwLock, Semaphore};
use tokio::task::yield_now;

use crate::{fail, report, rt1, run_task};

/// One round: spawn n tasks that each return their index, join all.
async fn spawn_join_round(n: u64) -> Duration {
    const NAME: &str = "spawn_join";
    let mut hs = Vec::with_capacity(n as usize);
    let t = Instant::now();
    for i in 0..n {
        hs.push(tokio::spawn(async move { i }));
    }
    let mut sum = 0u64;
    for h in hs {
        match h.await {
            Ok(v) => sum += v,
            Err(e) => fail(NAME, format!("join: {}", e)),
        }
    }
    let e = t.elapsed();
    check!(NAME, sum == n * (n - 1) / 2, "sum {} != {}", sum, n * (n - 1) / 2);
    e
}

/// One untimed warm-up round of the same size first (all peers do this): a
/// first round also measures page faults on memory the process never touched.
pub fn spawn_join(s: u64) {
    const NAME: &str = "spawn_join";
    let n = 100_000 * s;
    let rt = rt1();
    let (cold, e) = run_task(&rt, async move {
        let cold = spawn_join_round(n).await;
        (cold, spawn_join_round(n).await)
    });
    eprintln!(
        "tokio-bench: spawn_join: cold round {:.2} ns/op (not reported)",
        cold.as_nanos() as f64 / n as f64
    );
    report(NAME, e, n);
}

pub fn yield_switch(s: u64) {
    const NAME: &str = "yield_switch";
    let n = 1_000_000 * s;
    let rt = rt1();
    let e = run_task(&rt, async move {
        let body = move || async move {
            let mut c = 0u64;
            for _ in 0..n {
                yield_now().await;
                c += 1;
            }
            c
        };
        let t = Instant::now();
        let a = tokio::spawn(body());
        let b = tokio::spawn(body());
        let ca = a.await.unwrap_or(0);
        let cb = b.await.unwrap_or(0);
        let e = t.elapsed();
        check!(NAME, ca == n && cb == n, "counts {} {} != {}", ca, cb, n);
        e
    });
    report(NAME, e, 2 * n);
}

pub fn mutex_uncontended(s: u64) {
    const NAME: &str = "mutex_uncontended";
    let n = 10_000_000 * s;
    let rt = rt1();
    let e = run_task(&rt, async move {
        let m = Mutex::new(0u64);
        let t = Instant::now();
        for _ in 0..n {
            let mut g = m.lock().await;
            *g += 1;
        }
        let e = t.elapsed();
        let v = *m.lock().await;
        check!(NAME, v == n, "count {} != {}", v, n);
        e
    });
    report(NAME, e, n);
}

pub fn mutex_contended_handoff(s: u64) {
    const NAME: &str = "mutex_contended_handoff";
    let per = 250_000 * s;
    let rt = rt1();
    let e = run_task(&rt, async move {
        let m = Arc::new(Mutex::new(0u64));
        let t = Instant::now();
        let hs: Vec<_> = (0..4)
            .map(|_| {
                let m = m.clone();
                tokio::spawn(async move {
                    for _ in 0..per {
                        let mut g = m.lock().await;
                        *g += 1;
                        yield_now().await; // yield while holding the lock
                        drop(g);
                    }
                })
            })
            .collect();
        for h in hs {
            if h.await.is_err() {
                fail(NAME, "worker task failed".into());
            }
        }
        let e = t.elapsed();
        let v = *m.lock().await;
        check!(NAME, v == 4 * per, "count {} != {}", v, 4 * per);
        e
    });
    report(NAME, e, 4 * per);
}

pub fn rwlock_read_uncontended(s: u64) {
    const NAME: &str = "rwlock_read_uncontended";
    let n = 10_000_000 * s;
    let rt = rt1();
    let e = run_task(&rt, async move {
        let l = RwLock::new(7u64);
        let mut acc = 0u64;
        let t = Instant::now();
        for _ in 0..n {
            let g = l.read().await;
            acc = acc.wrapping_add(*g);
        }
        let e = t.elapsed();
        check!(NAME, acc == 7 * n, "sum {} != {}", acc, 7 * n);
        e
    });
    report(NAME, e, n);
}

pub fn semaphore_uncontended(s: u64) {
    const NAME: &str = "semaphore_uncontended";
    let n = 10_000_000 * s;
    let rt = rt1();
    let e = run_task(&rt, async move {
        let sem = Semaphore::new(4);
        let mut c = 0u64;
        let t = Instant::now();
        for _ in 0..n {
            match sem.acquire().await {
                Ok(p) => drop(p),
                Err(_) => fail(NAME, "semaphore closed".into()),
            }
            c += 1;
        }
        let e = t.elapsed();
        check!(NAME, c == n, "count {} != {}", c, n);
        check!(NAME, sem.available_permits() == 4, "permits {} != 4", sem.available_permits());
        e
    });
    report(NAME, e, n);
}

pub fn mpsc_bounded_1p(s: u64) {
    let rt = rt1();
    let e = mpsc_bounded_1p_inner(&rt, "mpsc_bounded_1p", s);
    report("mpsc_bounded_1p", e, 5_000_000 * s);
}

/// Single-worker version: the whole body (spawns, joins, timing) runs in a task.
fn mpsc_bounded_1p_inner(rt: &Runtime, name: &'static str, s: u64) -> Duration {
    let n = 5_000_000 * s;
    run_task(rt, async move {
        let (tx, mut rx) = mpsc::channel::<u64>(1024);
        let t = Instant::now();
        let p = tokio::spawn(async move {
            for i in 0..n {
                if tx.send(i).await.is_err() {
                    fail(name, "send on closed channel".into());
                }
            }
        });
        let mut expect = 0u64;
        while let Some(v) = rx.recv().await {
            if v != expect {
                fail(name, format!("got {} expected {}", v, expect));
            }
            expect += 1;
        }
        if p.await.is_err() {
            fail(name, "producer failed".into());
        }
        let e = t.elapsed();
        check!(name, expect == n, "received {} != {}", expect, n);
        e
    })
}

pub fn mpsc_bounded_4p(s: u64) {
    const NAME: &str = "mpsc_bounded_4p";
    let per = 5_000_000 * s / 4;
    let rt = rt1();
    let e = run_task(&rt, async move {
        let (tx, mut rx) = mpsc::channel::<u64>(1024);
        let t = Instant::now();
        for _ in 0..4 {
            let tx = tx.clone();
            tokio::spawn(async move {
                for i in 0..per {
                    if tx.send(i).await.is_err() {
                        fail(NAME, "send on closed channel".into());
                    }
                }
            });
        }
        drop(tx);
        let (mut cnt, mut sum) = (0u64, 0u64);
        while let Some(v) = rx.recv().await {
            cnt += 1;
            sum += v;
        }
        let e = t.elapsed();
        check!(NAME, cnt == 4 * per, "received {} != {}", cnt, 4 * per);
        check!(NAME, sum == 4 * (per * (per - 1) / 2), "sum mismatch {}", sum);
        (e, cnt)
    });
    report(NAME, e.0, e.1);
}

pub fn mpsc_unbounded_1p(s: u64) {
    const NAME: &str = "mpsc_unbounded_1p";
    let n = 5_000_000 * s;
    let rt = rt1();
    let e = run_task(&rt, async move {
        let (tx, mut rx) = mpsc::unbounded_channel::<u64>();
        let t = Instant::now();
        let p = tokio::spawn(async move {
            for i in 0..n {
                if tx.send(i).is_err() {
                    fail(NAME, "send on closed channel".into());
                }
                if i % 1024 == 1023 {
                    yield_now().await;
                }
            }
        });
        let mut expect = 0u64;
        while let Some(v) = rx.recv().await {
            if v != expect {
                fail(NAME, format!("got {} expected {}", v, expect));
            }
            expect += 1;
        }
        if p.await.is_err() {
            fail(NAME, "producer failed".into());
        }
        let e = t.elapsed();
        check!(NAME, expect == n, "received {} != {}", expect, n);
        e
    });
    report(NAME, e, n);
}

pub fn oneshot_create_send_recv(s: u64) {
    const NAME: &str = "oneshot_create_send_recv";
    let n = 1_000_000 * s;
    let rt = rt1();
    let e = run_task(&rt, async move {
        let t = Instant::now();
        for i in 0..n {
            let (tx, rx) = oneshot::channel::<u64>();
            if tx.send(i).is_err() {
                fail(NAME, "send failed".into());
            }
            match rx.await {
                Ok(v) if v == i => {}
                Ok(v) => fail(NAME, format!("got {} expected {}", v, i)),
                Err(_) => fail(NAME, "recv failed".into()),
            }
        }
        t.elapsed()
    });
    report(NAME, e, n);
}

pub fn mpsc_pingpong_roundtrip(s: u64) {
    const NAME: &str = "mpsc_pingpong_roundtrip";
    let n = 1_000_000 * s;
    let rt = rt1();
    let e = run_task(&rt, async move {
        let (atx, mut arx) = mpsc::channel::<u64>(1);
        let (btx, mut brx) = mpsc::channel::<u64>(1);
        let echo = tokio::spawn(async move {
            let mut c = 0u64;
            while let Some(v) = arx.recv().await {
                if btx.send(v).await.is_err() {
                    fail(NAME, "echo send failed".into());
                }
                c += 1;
            }
            c
        });
        let t = Instant::now();
        for i in 0..n {
            if atx.send(i).await.is_err() {
                fail(NAME, "send failed".into());
            }
            match brx.recv().await {
                Some(v) if v == i => {}
                other => fail(NAME, format!("got {:?} expected {}", other, i)),
            }
        }
        let e = t.elapsed();
        drop(atx);
        let c = echo.await.unwrap_or(0);
        check!(NAME, c == n, "echo count {} != {}", c, n);
        e
    });
    report(NAME, e, n);
}

pub fn notify_pingpong_roundtrip(s: u64) {
    const NAME: &str = "notify_pingpong_roundtrip";
    let n = 1_000_000 * s;
    let rt = rt1();
    let e = run_task(&rt, async move {
        let a = Arc::new(Notify::new());
        let b = Arc::new(Notify::new());
        let (a2, b2) = (a.clone(), b.clone());
        let echo = tokio::spawn(async move {
            let mut c = 0u64;
            for _ in 0..n {
                a2.notified().await;
                b2.notify_one();
                c += 1;
            }
            c
        });
        let t = Instant::now();
        let mut c = 0u64;
        for _ in 0..n {
            a.notify_one();
            b.notified().await;
            c += 1;
        }
        let e = t.elapsed();
        let ce = echo.await.unwrap_or(0);
        check!(NAME, c == n && ce == n, "counts {} {} != {}", c, ce, n);
        e
    });
    report(NAME, e, n);
}

pub fn broadcast_1to4_per_send(s: u64) {
    const NAME: &str = "broadcast_1to4_per_send";
    let n = 1_000_000 * s;
    let rt = rt1();
    let e = run_task(&rt, async move {
        let (tx, _) = broadcast::channel::<u64>(1024);
        let rxs: Vec<_> = (0..4).map(|_| tx.subscribe()).collect();
        let t = Instant::now();
        let hs: Vec<_> = rxs
            .into_iter()
            .map(|mut rx| {
                tokio::spawn(async move {
                    let mut expect = 0u64;
                    loop {
                        match rx.recv().await {
                            Ok(v) => {
                                if v != expect {
                                    fail(NAME, format!("got {} expected {}", v, expect));
                                }
                                expect += 1;
                            }
                            Err(broadcast::error::RecvError::Closed) => break,
                            Err(broadcast::error::RecvError::Lagged(k)) => {
                                fail(NAME, format!("receiver lagged by {}", k))
                            }
                        }
                    }
                    expect
                })
            })
            .collect();
        for i in 0..n {
            if tx.send(i).is_err() {
                fail(NAME, "send failed".into());
            }
            if i % 512 == 511 {
                yield_now().await;
            }
        }
        drop(tx);
        for h in hs {
            let got = h.await.unwrap_or(0);
            check!(NAME, got == n, "receiver saw {} != {}", got, n);
        }
        t.elapsed()
    });
    report(NAME, e, n);
}

pub fn watch_pingpong_roundtrip(s: u64) {
    const NAME: &str = "watch_pingpong_roundtrip";
    let n = 1_000_000 * s;
    let rt = rt1();
    let e = run_task(&rt, async move {
        let (atx, mut arx) = watch::channel(0u64);
        let (btx, mut brx) = watch::channel(0u64);
        let echo = tokio::spawn(async move {
            let mut c = 0u64;
            while arx.changed().await.is_ok() {
                let v = *arx.borrow_and_update();
                if btx.send(v).is_err() {
                    fail(NAME, "echo send failed".into());
                }
                c += 1;
            }
            c
        });
        let t = Instant::now();
        for i in 1..=n {
            if atx.send(i).is_err() {
                fail(NAME, "send failed".into());
            }
            if brx.changed().await.is_err() {
                fail(NAME, "echo closed".into());
            }
            let v = *brx.borrow_and_update();
            check!(NAME, v == i, "got {} expected {}", v, i);
        }
        let e = t.elapsed();
        drop(atx);
        let c = echo.await.unwrap_or(0);
        check!(NAME, c == n, "echo count {} != {}", c, n);
        e
    });
    report(NAME, e, n);
}

/// 200·S times: a bounded channel of capacity 1,000,000, a producer task
/// sends 5000 values, this task receives them, the channel is dropped.
pub fn mpsc_bounded_big(s: u64) {
    const NAME: &str = "mpsc_bounded_big";
    const MSGS: u64 = 5000;
    let iters = 200 * s;
    let rt = rt1();
    let e = run_task(&rt, async move {
        let t = Instant::now();
        for _ in 0..iters {
            let (tx, mut rx) = mpsc::channel::<u64>(1_000_000);
            let p = tokio::spawn(async move {
                for i in 0..MSGS {
                    if tx.send(i).await.is_err() {
                        fail(NAME, "send on closed channel".into());
                    }
                }
            });
            let (mut cnt, mut sum) = (0u64, 0u64);
            while let Some(v) = rx.recv().await {
                cnt += 1;
                sum += v;
            }
            check!(NAME, cnt == MSGS && sum == MSGS * (MSGS - 1) / 2, "received {} sum {}", cnt, sum);
            if p.await.is_err() {
                fail(NAME, "producer failed".into());
            }
        }
        t.elapsed()
    });
    report(NAME, e, iters * MSGS);
}
