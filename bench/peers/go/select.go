package main

import "time"

// select2chanPingpong: main sends i on channel i%2 (capacity 1) and waits
// for the echo on the matching return channel; the echo goroutine selects
// over its two input channels.
func select2chanPingpong(s int) {
	const name = "select_2chan_pingpong"
	prep(1)
	n := 1000000 * s
	in := [2]chan uint64{make(chan uint64, 1), make(chan uint64, 1)}
	out := [2]chan uint64{make(chan uint64, 1), make(chan uint64, 1)}
	echoed := make(chan [2]int)
	go func() {
		var c [2]int
		in0, in1 := in[0], in[1]
		for in0 != nil || in1 != nil {
			select {
			case v, ok := <-in0:
				if !ok {
					in0 = nil // a nil channel is never ready
					continue
				}
				out[0] <- v
				c[0]++
			case v, ok := <-in1:
				if !ok {
					in1 = nil
					continue
				}
				out[1] <- v
				c[1]++
			}
		}
		echoed <- c
	}()
	t := time.Now()
	for i := 0; i < n; i++ {
		in[i%2] <- uint64(i)
		if v := <-out[i%2]; v != uint64(i) {
			fail(name, "got %d expected %d", v, i)
		}
	}
	d := time.Since(t)
	close(in[0])
	close(in[1])
	if c := <-echoed; c[0] != (n+1)/2 || c[1] != n/2 {
		fail(name, "echo counts %v", c)
	}
	report(name, d, n)
}

// selectRecvOrTimeout: refill a capacity-1 channel, then select between it
// and a 1 s timer armed for this select (one Timer, Reset each time, as Go
// code that cares about allocation does; time.After would allocate a timer
// per select that lives for 1 s).
func selectRecvOrTimeout(s int) {
	const name = "select_recv_or_timeout"
	prep(1)
	n := 1000000 * s
	ch := make(chan uint64, 1)
	tm := time.NewTimer(time.Second)
	if !tm.Stop() {
		<-tm.C
	}
	t := time.Now()
	for i := 0; i < n; i++ {
		ch <- uint64(i)
		tm.Reset(time.Second)
		select {
		case v := <-ch:
			if v != uint64(i) {
				fail(name, "got %d expected %d", v, i)
			}
		case <-tm.C:
			fail(name, "timed out")
		}
		if !tm.Stop() {
			<-tm.C
		}
	}
	d := time.Since(t)
	report(name, d, n)
}
