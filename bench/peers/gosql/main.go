// Command gosql-bench: the pool workloads of WORKLOADS.md on Go's
// database/sql connection pool, with a stub driver (standard library only).
//
// Usage: gosql-bench [S] [workload...]   (S: scale factor, default 1)
//
// stdout: "name value" per workload (ns per op; pool_spike_creates: a
// count). Every workload checks its result and exits 1 on a mismatch.
//
// Notes:
//   - acquire = db.Conn(ctx) (a dedicated connection from the pool),
//     return = Conn.Close(). The stub connection implements neither
//     SessionResetter nor Validator, so nothing runs on the way in or out
//     but the pool itself.
//   - GOMAXPROCS 1, and 2 for mt2_pool_contended (8 goroutines).
//   - "100 ns of work": a busy-wait on the monotonic clock until 100 ns have
//     passed, the same in every peer.
//   - database/sql has no min_idle (it never creates ahead of demand): the
//     spike pool is SetMaxOpenConns(50), SetMaxIdleConns(50). A caller that
//     finds no idle connection below the limit opens one itself.
//   - pool_spike_creates counts Open calls, read 300 ms after the last of
//     the 50 goroutines finished.
package main

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

func fail(name string, format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "gosql-bench: %s: CHECK FAILED: %s\n", name, fmt.Sprintf(format, args...))
	os.Exit(1)
}

func report(name string, d time.Duration, ops int) {
	fmt.Printf("%s %.2f\n", name, float64(d.Nanoseconds())/float64(ops))
}

// ---------------------------------------------------------------- stub driver

// stubDriver opens connections that do nothing; the DSN is the create
// delay in milliseconds.
type stubDriver struct{ opens atomic.Int64 }

type stubConn struct{}

var errStub = errors.New("stub connection: no statements")

func (d *stubDriver) Open(dsn string) (driver.Conn, error) {
	d.opens.Add(1)
	ms, err := strconv.Atoi(dsn)
	if err != nil {
		return nil, err
	}
	if ms > 0 {
		time.Sleep(time.Duration(ms) * time.Millisecond)
	}
	return stubConn{}, nil
}

func (stubConn) Prepare(string) (driver.Stmt, error) { return nil, errStub }
func (stubConn) Close() error                        { return nil }
func (stubConn) Begin() (driver.Tx, error)           { return nil, errStub }

var stub = &stubDriver{}

func init() { sql.Register("stub", stub) }

func open(name string, dsn string, maxOpen int) *sql.DB {
	db, err := sql.Open("stub", dsn)
	if err != nil {
		fail(name, "sql.Open: %v", err)
	}
	db.SetMaxOpenConns(maxOpen)
	db.SetMaxIdleConns(maxOpen)
	return db
}

// ---------------------------------------------------------------- workloads

func cycles(name string, db *sql.DB, n int, work time.Duration) {
	ctx := context.Background()
	for i := 0; i < n; i++ {
		c, err := db.Conn(ctx)
		if err != nil {
			fail(name, "acquire: %v", err)
		}
		if work > 0 {
			t := time.Now()
			for time.Since(t) < work {
			}
		}
		if err := c.Close(); err != nil {
			fail(name, "return: %v", err)
		}
	}
}

func poolUncontended(s int) {
	const name = "pool_uncontended"
	runtime.GOMAXPROCS(1)
	n := 10000000 * s
	db := open(name, "0", 4)
	defer db.Close()
	cycles(name, db, 4, 0) // the first acquire opens a connection
	t := time.Now()
	cycles(name, db, n, 0)
	d := time.Since(t)
	if st := db.Stats(); st.OpenConnections > 4 || st.InUse != 0 {
		fail(name, "pool state %+v", st)
	}
	report(name, d, n)
}

func mt2PoolContended(s int) {
	const name = "mt2_pool_contended"
	runtime.GOMAXPROCS(2)
	per := 1000000 * s
	db := open(name, "0", 4)
	defer db.Close()
	var wg sync.WaitGroup
	t := time.Now()
	wg.Add(8)
	for k := 0; k < 8; k++ {
		go func() {
			cycles(name, db, per, 100*time.Nanosecond)
			wg.Done()
		}()
	}
	wg.Wait()
	d := time.Since(t)
	if st := db.Stats(); st.OpenConnections > 4 || st.InUse != 0 {
		fail(name, "pool state %+v", st)
	}
	report(name, d, 8*per)
}

func poolSpikeCreates(int) {
	const name = "pool_spike_creates"
	runtime.GOMAXPROCS(1)
	db := open(name, "150", 50)
	defer db.Close()
	base := stub.opens.Load()
	ctx := context.Background()
	var start, wg sync.WaitGroup
	start.Add(1)
	wg.Add(50)
	for k := 0; k < 50; k++ {
		go func() {
			start.Wait()
			c, err := db.Conn(ctx)
			if err != nil {
				fail(name, "acquire: %v", err)
			}
			time.Sleep(10 * time.Millisecond)
			if err := c.Close(); err != nil {
				fail(name, "return: %v", err)
			}
			wg.Done()
		}()
	}
	start.Done()
	wg.Wait()
	time.Sleep(300 * time.Millisecond)
	created := stub.opens.Load() - base
	fmt.Fprintf(os.Stderr, "gosql-bench: %s: %d created, %d open at the end\n", name, created, db.Stats().OpenConnections)
	fmt.Printf("%s %d\n", name, created)
}

func main() {
	args := os.Args[1:]
	s := 1
	if len(args) > 0 {
		if v, err := strconv.Atoi(args[0]); err == nil {
			if v < 1 {
				fail("args", "S must be >= 1")
			}
			s = v
			args = args[1:]
		}
	}
	all := []struct {
		name string
		run  func(int)
	}{
		{"pool_uncontended", poolUncontended},
		{"mt2_pool_contended", mt2PoolContended},
		{"pool_spike_creates", poolSpikeCreates},
	}
	want := map[string]bool{}
	for _, a := range args {
		want[a] = true
	}
	ran := 0
	for _, w := range all {
		if len(want) == 0 || want[w.name] {
			w.run(s)
			ran++
		}
	}
	if len(want) > 0 && ran != len(want) {
		fail("args", "unknown workload in %v", args)
	}
}
