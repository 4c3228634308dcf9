//! `tokio::select!` workloads (single worker). select! polls its branches
//! in random order by default, as ursa_select chooses among ready cases.

use std::time::{Duration, Instant};

use tokio::runtime::Builder;
use tokio::sync::mpsc;
use tokio::time::sleep;

use crate::{fail, report, rt1, run_task};

/// Main sends i on channel i % 2 and waits for the echo on the matching
/// return channel; the echo task selects over its two input channels.
pub fn select_2chan_pingpong(s: u64) {
    const NAME: &str = "select_2chan_pingpong";
    let n = 1_000_000 * s;
    let rt = rt1();
    let e = run_task(&rt, async move {
        let (a0, mut in0) = mpsc::channel::<u64>(1);
        let (a1, mut in1) = mpsc::channel::<u64>(1);
        let (out0, mut b0) = mpsc::channel::<u64>(1);
        let (out1, mut b1) = mpsc::channel::<u64>(1);
        let echo = tokio::spawn(async move {
            let mut c = [0u64; 2];
            loop {
                tokio::select! {
                    Some(v) = in0.recv() => {
                        if out0.send(v).await.is_err() { fail(NAME, "echo send 0".into()); }
                        c[0] += 1;
                    }
                    Some(v) = in1.recv() => {
                        if out1.send(v).await.is_err() { fail(NAME, "echo send 1".into()); }
                        c[1] += 1;
                    }
                    else => break,
                }
            }
            c
        });
        let t = Instant::now();
        for i in 0..n {
            let (tx, rx) = if i % 2 == 0 { (&a0, &mut b0) } else { (&a1, &mut b1) };
            if tx.send(i).await.is_err() {
                fail(NAME, "send failed".into());
            }
            match rx.recv().await {
                Some(v) if v == i => {}
                other => fail(NAME, format!("got {:?} expected {}", other, i)),
            }
        }
        let e = t.elapsed();
        drop((a0, a1));
        let c = echo.await.unwrap_or([0, 0]);
        check!(NAME, c[0] == (n + 1) / 2 && c[1] == n / 2, "echo counts {:?}", c);
        e
    });
    report(NAME, e, n);
}

/// One task: refill a capacity-1 channel, then select between receiving
/// from it and a fresh 1 s sleep (the channel always wins).
pub fn select_recv_or_timeout(s: u64) {
    const NAME: &str = "select_recv_or_timeout";
    let n = 1_000_000 * s;
    let rt = Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("build current_thread runtime with timer");
    let e = run_task(&rt, async move {
        let (tx, mut rx) = mpsc::channel::<u64>(1);
        let t = Instant::now();
        for i in 0..n {
            if tx.try_send(i).is_err() {
                fail(NAME, "refill failed".into());
            }
            tokio::select! {
                v = rx.recv() => check!(NAME, v == Some(i), "got {:?} expected {}", v, i),
                _ = sleep(Duration::from_secs(1)) => fail(NAME, "timed out".into()),
            }
        }
        t.elapsed()
    });
    report(NAME, e, n);
}
