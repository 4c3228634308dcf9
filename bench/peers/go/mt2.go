package main

import (
	"runtime"
	"sync"
	"time"
)

// Two-P workloads (GOMAXPROCS=2). Go places goroutines itself; none can be
// pinned to a P.

// mt2MutexContended: 4 goroutines x 1M·S lock/increment/unlock on a
// sync.Mutex (which barges, with a 1 ms starvation bound, and spins with
// 2 Ps).
func mt2MutexContended(name string, s int) {
	prep(2)
	per := 1000000 * s
	c := &counter{}
	var wg sync.WaitGroup
	t := time.Now()
	wg.Add(4)
	for k := 0; k < 4; k++ {
		go func() {
			for i := 0; i < per; i++ {
				c.mu.Lock()
				c.n++
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

type request struct {
	i     uint64
	reply chan uint64 // capacity 1, used once: Go's oneshot
}

// requestReply: a server goroutine answers i+1 on each request's reply
// channel; a client goroutine sends N = 100k·S requests one at a time over
// a channel of capacity 64.
func requestReply(name string, s int) {
	prep(2)
	n := 100000 * s
	reqs := make(chan request, 64)
	served := make(chan int)
	done := make(chan struct{})
	t := time.Now()
	go func() {
		c := 0
		for q := range reqs {
			q.reply <- q.i + 1
			c++
		}
		served <- c
	}()
	go func() {
		for i := 0; i < n; i++ {
			r := make(chan uint64, 1)
			reqs <- request{uint64(i), r}
			if v := <-r; v != uint64(i)+1 {
				fail(name, "reply %d to %d", v, i)
			}
		}
		close(reqs)
		close(done)
	}()
	<-done
	c := <-served
	d := time.Since(t)
	if c != n {
		fail(name, "served %d != %d", c, n)
	}
	report(name, d, n)
}

// mt2ForkJoin: 20k·S times, 6 goroutines each take 1 permit of a 5-permit
// semaphore (a buffered channel, as in semaphore_uncontended), yield once,
// release and write their result; the root waits for all 6.
func mt2ForkJoin(s int) {
	const name = "mt2_fork_join"
	prep(2)
	n := 20000 * s
	sem := make(chan struct{}, 5)
	var res [6]int
	var wg sync.WaitGroup
	t := time.Now()
	for it := 0; it < n; it++ {
		wg.Add(6)
		for k := 0; k < 6; k++ {
			go func(k int) {
				sem <- struct{}{}
				runtime.Gosched()
				<-sem
				res[k] = k + 1
				wg.Done()
			}(k)
		}
		wg.Wait()
		for k := range res {
			if res[k] != k+1 {
				fail(name, "task %d returned %d", k, res[k])
			}
			res[k] = 0
		}
	}
	d := time.Since(t)
	if len(sem) != 0 {
		fail(name, "%d permits still held", len(sem))
	}
	report(name, d, 6*n)
}

func xorshift50(x uint64) uint64 {
	for r := 0; r < 50; r++ {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
	}
	return x
}

// mt2Pipeline: producer -> chan(256) shared by 4 workers (Go channels are
// MPMC) -> 50 rounds of xorshift64 -> chan(256) -> the root sums.
func mt2Pipeline(s int) {
	const name = "mt2_pipeline"
	prep(2)
	n := 1000000 * s
	var want uint64
	for i := 0; i < n; i++ {
		want += xorshift50(uint64(i))
	}
	work := make(chan uint64, 256)
	out := make(chan uint64, 256)
	var wg sync.WaitGroup
	t := time.Now()
	go func() {
		for i := 0; i < n; i++ {
			work <- uint64(i)
		}
		close(work)
	}()
	wg.Add(4)
	for k := 0; k < 4; k++ {
		go func() {
			for v := range work {
				out <- xorshift50(v)
			}
			wg.Done()
		}()
	}
	go func() { wg.Wait(); close(out) }()
	var got int
	var sum uint64
	for v := range out {
		got++
		sum += v
	}
	d := time.Since(t)
	if got != n || sum != want {
		fail(name, "got %d sum %d want %d", got, sum, want)
	}
	report(name, d, n)
}
