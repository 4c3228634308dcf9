package main

import (
	"fmt"
	"os"
	"runtime"
	"sync"
)

// memIdle: resident bytes per parked goroutine, n goroutines each blocked
// on one shared "notify" (a channel closed to wake them all, Go's
// notify-all idiom).
func memIdle(name string, n int) {
	prep(1)
	release := make(chan struct{})
	var started, finished sync.WaitGroup
	started.Add(n)
	finished.Add(n)
	before := vmRSSBytes()
	for i := 0; i < n; i++ {
		go func() {
			started.Done()
			<-release
			finished.Done()
		}()
	}
	started.Wait()
	runtime.Gosched() // let the last goroutine reach its receive
	after := vmRSSBytes()
	close(release)
	finished.Wait()
	if runtime.NumGoroutine() > 10 {
		fail(name, "%d goroutines still alive", runtime.NumGoroutine())
	}
	fmt.Fprintf(os.Stderr, "go-bench: %s: VmRSS before %d after %d (%d goroutines)\n", name, before, after, n)
	fmt.Printf("%s %d\n", name, (after-before)/int64(n))
}

func memPerIdleTask(int) { memIdle("mem_per_idle_task", 100000) }

// mem1mTasks: 1,000,000 parked goroutines (Go's default 2 KiB initial stacks).
func mem1mTasks(int) { memIdle("mem_1m_tasks", 1000000) }
