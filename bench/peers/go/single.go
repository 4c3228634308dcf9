package main

import (
	"fmt"
	"os"
	"runtime"
	"sync"
	"time"
)

// ---------------------------------------------------------------- primitives

// notifier is the idiomatic Go "notify with one stored permit": a buffered
// channel of size 1 with a non-blocking send. A notify with nobody waiting is
// kept (like tokio::sync::Notify::notify_one); extra notifies coalesce.
type notifier chan struct{}

func newNotifier() notifier { return make(notifier, 1) }

func (n notifier) notify() {
	select {
	case n <- struct{}{}:
	default:
	}
}

func (n notifier) wait() { <-n }

// watchVar is the Go equivalent of a watch channel: the latest value plus a
// version, guarded by a sync.Mutex, and a sync.Cond that is broadcast on every
// change. Receivers remember the version they last saw and wait until it
// differs. (The other common pattern, closing and replacing a
// chan struct{} on every change, also works with select but allocates a
// channel per send; it measured slower here, so the Cond form is used.)
type watchVar struct {
	mu     sync.Mutex
	cond   sync.Cond
	val    uint64
	ver    uint64
	closed bool
}

func newWatch(v uint64) *watchVar {
	w := &watchVar{val: v}
	w.cond.L = &w.mu
	return w
}

func (w *watchVar) send(v uint64) {
	w.mu.Lock()
	w.val = v
	w.ver++
	w.mu.Unlock()
	w.cond.Broadcast()
}

func (w *watchVar) close() {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	w.cond.Broadcast()
}

// changed waits until the version differs from seen; returns the value, the
// new version, and false if the sender closed without a newer value.
func (w *watchVar) changed(seen uint64) (uint64, uint64, bool) {
	w.mu.Lock()
	for w.ver == seen && !w.closed {
		w.cond.Wait()
	}
	v, ver, ok := w.val, w.ver, w.ver != seen
	w.mu.Unlock()
	return v, ver, ok
}

// ---------------------------------------------------------------- workloads

func spawnJoinRound(n int) time.Duration {
	const name = "spawn_join"
	res := make([]uint64, n)
	var wg sync.WaitGroup
	t := time.Now()
	wg.Add(n)
	for i := 0; i < n; i++ {
		go func(i int) {
			res[i] = uint64(i) // the "returned value"
			wg.Done()
		}(i)
	}
	wg.Wait()
	var sum uint64
	for _, v := range res {
		sum += v
	}
	d := time.Since(t)
	if want := uint64(n) * uint64(n-1) / 2; sum != want {
		fail(name, "sum %d != %d", sum, want)
	}
	return d
}

// One untimed warm-up round of the same size first (all peers do this): a
// first round also measures page faults on memory the process never touched.
func spawnJoin(s int) {
	const name = "spawn_join"
	prep(1)
	n := 100000 * s
	cold := spawnJoinRound(n)
	d := spawnJoinRound(n)
	fmt.Fprintf(os.Stderr, "go-bench: spawn_join: cold round %.2f ns/op (not reported)\n",
		float64(cold.Nanoseconds())/float64(n))
	report(name, d, n)
}

func yieldSwitch(s int) {
	const name = "yield_switch"
	prep(1)
	n := 1000000 * s
	var counts [2]int
	var wg sync.WaitGroup
	t := time.Now()
	wg.Add(2)
	for k := 0; k < 2; k++ {
		go func(k int) {
			c := 0
			for i := 0; i < n; i++ {
				runtime.Gosched()
				c++
			}
			counts[k] = c
			wg.Done()
		}(k)
	}
	wg.Wait()
	d := time.Since(t)
	if counts[0] != n || counts[1] != n {
		fail(name, "counts %v != %d", counts, n)
	}
	report(name, d, 2*n)
}

type counter struct {
	mu sync.Mutex
	n  int
}

func mutexUncontended(s int) {
	const name = "mutex_uncontended"
	prep(1)
	n := 10000000 * s
	c := &counter{}
	t := time.Now()
	for i := 0; i < n; i++ {
		c.mu.Lock()
		c.n++
		c.mu.Unlock()
	}
	d := time.Since(t)
	if c.n != n {
		fail(name, "count %d != %d", c.n, n)
	}
	report(name, d, n)
}

// Note: sync.Mutex is not FIFO. With GOMAXPROCS=1 it does not spin; an
// unlocking goroutine wakes one waiter but may re-acquire the lock before the
// waiter runs (barging) until a waiter has waited > 1 ms, after which the
// mutex switches to direct handoff (starvation mode). That is the real
// behaviour of the primitive Go programs use, so it is measured as is.
func mutexContendedHandoff(s int) {
	const name = "mutex_contended_handoff"
	prep(1)
	per := 250000 * s
	c := &counter{}
	var wg sync.WaitGroup
	t := time.Now()
	wg.Add(4)
	for k := 0; k < 4; k++ {
		go func() {
			for i := 0; i < per; i++ {
				c.mu.Lock()
				c.n++
				runtime.Gosched() // yield while holding the lock
				c.mu.Unlock()
			}
			wg.Done()
		}()
	}
	wg.Wait()
	d := time.Since(t)
	if c.n != 4*per {
		fail(name, "count %d != %d", c.n, 4*per)
	}
	report(name, d, 4*per)
}

func rwlockReadUncontended(s int) {
	const name = "rwlock_read_uncontended"
	prep(1)
	n := 10000000 * s
	var l sync.RWMutex
	val := uint64(7)
	var acc uint64
	t := time.Now()
	for i := 0; i < n; i++ {
		l.RLock()
		acc += val
		l.RUnlock()
	}
	d := time.Since(t)
	if acc != 7*uint64(n) {
		fail(name, "sum %d != %d", acc, 7*uint64(n))
	}
	report(name, d, n)
}

// The semaphore is a buffered channel of capacity 4 (send = acquire, receive =
// release), the counting-semaphore idiom from Effective Go. For acquiring one
// permit at a time it is what Go programmers use; a weighted semaphore
// (x/sync/semaphore: a mutex plus a waiter list) is only needed for
// multi-permit acquires and is slower on this path.
func semaphoreUncontended(s int) {
	const name = "semaphore_uncontended"
	prep(1)
	n := 10000000 * s
	sem := make(chan struct{}, 4)
	c := 0
	t := time.Now()
	for i := 0; i < n; i++ {
		sem <- struct{}{}
		<-sem
		c++
	}
	d := time.Since(t)
	if c != n || len(sem) != 0 {
		fail(name, "count %d != %d or %d permits held", c, n, len(sem))
	}
	report(name, d, n)
}

// mpscBounded1p: producer goroutine sends 0..n-1 and closes; consumer
// goroutine ranges until closed. Both are goroutines; main only waits.
func mpscBounded1p(name string, procs int, s int) {
	prep(procs)
	n := 5000000 * s
	ch := make(chan uint64, 1024)
	var got uint64
	done := make(chan struct{})
	t := time.Now()
	go func() {
		for i := 0; i < n; i++ {
			ch <- uint64(i)
		}
		close(ch)
	}()
	go func() {
		var expect uint64
		for v := range ch {
			if v != expect {
				fail(name, "got %d expected %d", v, expect)
			}
			expect++
		}
		got = expect
		close(done)
	}()
	<-done
	d := time.Since(t)
	if got != uint64(n) {
		fail(name, "received %d != %d", got, n)
	}
	report(name, d, n)
}

func mpscBounded4p(s int) {
	const name = "mpsc_bounded_4p"
	prep(1)
	per := 5000000 * s / 4
	ch := make(chan uint64, 1024)
	var wg sync.WaitGroup
	t := time.Now()
	wg.Add(4)
	for k := 0; k < 4; k++ {
		go func() {
			for i := 0; i < per; i++ {
				ch <- uint64(i)
			}
			wg.Done()
		}()
	}
	go func() { wg.Wait(); close(ch) }()
	var cnt, sum uint64
	for v := range ch {
		cnt++
		sum += v
	}
	d := time.Since(t)
	p := uint64(per)
	if cnt != 4*p || sum != 4*(p*(p-1)/2) {
		fail(name, "received %d (sum %d), want %d", cnt, sum, 4*p)
	}
	report(name, d, int(cnt))
}

// oneshot: a channel of capacity 1 used once is Go's oneshot.
func oneshotCreateSendRecv(s int) {
	const name = "oneshot_create_send_recv"
	prep(1)
	n := 1000000 * s
	t := time.Now()
	for i := 0; i < n; i++ {
		c := make(chan uint64, 1)
		c <- uint64(i)
		if v := <-c; v != uint64(i) {
			fail(name, "got %d expected %d", v, i)
		}
	}
	d := time.Since(t)
	report(name, d, n)
}

func mpscPingpongRoundtrip(s int) {
	const name = "mpsc_pingpong_roundtrip"
	prep(1)
	n := 1000000 * s
	a := make(chan uint64, 1)
	b := make(chan uint64, 1)
	echoed := make(chan int)
	go func() {
		c := 0
		for v := range a {
			b <- v
			c++
		}
		echoed <- c
	}()
	t := time.Now()
	for i := 0; i < n; i++ {
		a <- uint64(i)
		if v := <-b; v != uint64(i) {
			fail(name, "got %d expected %d", v, i)
		}
	}
	d := time.Since(t)
	close(a)
	if c := <-echoed; c != n {
		fail(name, "echo count %d != %d", c, n)
	}
	report(name, d, n)
}

func notifyPingpongRoundtrip(s int) {
	const name = "notify_pingpong_roundtrip"
	prep(1)
	n := 1000000 * s
	a, b := newNotifier(), newNotifier()
	echoed := make(chan int)
	go func() {
		c := 0
		for i := 0; i < n; i++ {
			a.wait()
			b.notify()
			c++
		}
		echoed <- c
	}()
	t := time.Now()
	c := 0
	for i := 0; i < n; i++ {
		a.notify()
		b.wait()
		c++
	}
	d := time.Since(t)
	if ce := <-echoed; c != n || ce != n {
		fail(name, "counts %d %d != %d", c, ce, n)
	}
	report(name, d, n)
}

// Go has no broadcast channel. The idiomatic equivalent is fan-out: the
// sender sends every value on one buffered channel (capacity 1024) per
// receiver. Unlike a lagging broadcast ring, a full receiver channel blocks
// the sender (backpressure) and each value is copied 4 times.
func broadcast1to4PerSend(s int) {
	const name = "broadcast_1to4_per_send"
	prep(1)
	n := 1000000 * s
	var chs [4]chan uint64
	var got [4]uint64
	var wg sync.WaitGroup
	for k := range chs {
		chs[k] = make(chan uint64, 1024)
	}
	t := time.Now()
	wg.Add(4)
	for k := range chs {
		go func(k int) {
			var expect uint64
			for v := range chs[k] {
				if v != expect {
					fail(name, "receiver %d got %d expected %d", k, v, expect)
				}
				expect++
			}
			got[k] = expect
			wg.Done()
		}(k)
	}
	for i := 0; i < n; i++ {
		v := uint64(i)
		for k := range chs {
			chs[k] <- v
		}
		if i%512 == 511 {
			runtime.Gosched()
		}
	}
	for k := range chs {
		close(chs[k])
	}
	wg.Wait()
	d := time.Since(t)
	for k := range got {
		if got[k] != uint64(n) {
			fail(name, "receiver %d saw %d != %d", k, got[k], n)
		}
	}
	report(name, d, n)
}

func watchPingpongRoundtrip(s int) {
	const name = "watch_pingpong_roundtrip"
	prep(1)
	n := 1000000 * s
	a, b := newWatch(0), newWatch(0)
	echoed := make(chan int)
	go func() {
		c := 0
		var seen uint64
		for {
			v, ver, ok := a.changed(seen)
			if !ok {
				break
			}
			seen = ver
			b.send(v)
			c++
		}
		echoed <- c
	}()
	t := time.Now()
	var seen uint64
	for i := 1; i <= n; i++ {
		a.send(uint64(i))
		v, ver, ok := b.changed(seen)
		if !ok || v != uint64(i) {
			fail(name, "got %d (ok=%v) expected %d", v, ok, i)
		}
		seen = ver
	}
	d := time.Since(t)
	a.close()
	if c := <-echoed; c != n {
		fail(name, "echo count %d != %d", c, n)
	}
	report(name, d, n)
}

// mpscBoundedBig: 200·S times, a channel of capacity 1,000,000 (make
// allocates and zeroes its whole buffer), a producer goroutine sends 5000
// values and closes it, main receives them all.
func mpscBoundedBig(s int) {
	const name = "mpsc_bounded_big"
	const msgs = 5000
	prep(1)
	iters := 200 * s
	t := time.Now()
	for it := 0; it < iters; it++ {
		ch := make(chan uint64, 1000000)
		go func() {
			for i := 0; i < msgs; i++ {
				ch <- uint64(i)
			}
			close(ch)
		}()
		var cnt, sum uint64
		for v := range ch {
			cnt++
			sum += v
		}
		if cnt != msgs || sum != msgs*(msgs-1)/2 {
			fail(name, "received %d sum %d", cnt, sum)
		}
	}
	d := time.Since(t)
	report(name, d, iters*msgs)
}
