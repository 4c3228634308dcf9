// Command go-bench: ursa peer benchmark, the workloads of WORKLOADS.md in Go.
//
// Usage: go-bench [S] [workload...]   (S: scale factor, default 1)
//
//	go-bench --list
//
// stdout: exactly one line per workload, "name ns_per_op" (or "name bytes"
// for the memory workloads). Everything else goes to stderr. Every workload
// checks its own result and exits non-zero on a mismatch. Without names it
// runs every workload but mem_1m_tasks, which runs only when named (it needs
// a fresh process and a few GB).
//
// Standard library only (golang.org/x/sync is not available offline, and
// would not be needed: see the semaphore note).
//
// Fairness notes:
//   - GOMAXPROCS is 1 for every workload except mt2_* and oversub_*, which
//     set it to 2 (runtime.GOMAXPROCS per workload, so one run covers all).
//   - runtime.GC() runs before each workload, outside the timed region, as
//     testing.B does.
//   - Timing uses time.Now/time.Since (monotonic clock) around the timed
//     region only.
//   - Go cannot pin a goroutine to a P: mt2_request_reply and
//     mt2_request_reply_migratable run the same code with Go's placement.
//     sync.Mutex barges (with a 1 ms starvation bound): it is both
//     mt2_mutex_contended and mt2_mutex_contended_barging.
//   - oversub_*: the Go runtime starts its threads before main runs, so the
//     process re-executes itself for these workloads with the affinity set
//     first: a goroutine locked to its OS thread sets that thread's mask to
//     one CPU (sched_setaffinity), then starts the child from that thread
//     (fork inherits the calling thread's mask, so every thread of the child
//     runtime has it). The child checks runtime.NumCPU() == 1.
//   - Skipped workloads (no line printed):
//     mpsc_unbounded_1p: Go has no unbounded channel; any substitute
//     (mutex+slice queue) would be a hand-written data structure, not a
//     runtime primitive.
//     mem_per_waiter: a blocked goroutine waits on a runtime-internal sudog
//     (allocated by the runtime from a per-P cache, not on the caller's
//     stack); its size is not observable from a Go program the same way.
package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"
)

func fail(name string, format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "go-bench: %s: CHECK FAILED: %s\n", name, fmt.Sprintf(format, args...))
	os.Exit(1)
}

func report(name string, d time.Duration, ops int) {
	fmt.Printf("%s %.2f\n", name, float64(d.Nanoseconds())/float64(ops))
}

// prep sets the number of Ps for the next workload and collects garbage left
// by the previous one (outside the timed region).
func prep(procs int) {
	runtime.GOMAXPROCS(procs)
	runtime.GC()
}

func vmRSSBytes() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		fail("vm_rss", "%v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			f := strings.Fields(line)
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				fail("vm_rss", "%v", err)
			}
			return kb * 1024
		}
	}
	fail("vm_rss", "no VmRSS line")
	return 0
}

// ---------------------------------------------------------------- oversub

type cpuMask [16]uint64 // 1024 CPUs, as glibc's cpu_set_t

func affinity(set bool, m *cpuMask) {
	nr := uintptr(syscall.SYS_SCHED_GETAFFINITY)
	if set {
		nr = syscall.SYS_SCHED_SETAFFINITY
	}
	// pid 0: the calling thread only.
	if _, _, e := syscall.RawSyscall(nr, 0, unsafe.Sizeof(*m), uintptr(unsafe.Pointer(m))); e != 0 {
		fail("affinity", "sched_{get,set}affinity: %v", e)
	}
}

const confinedEnv = "GO_BENCH_CONFINED"

// runConfined re-executes this program for the named workloads with every
// thread confined to the first CPU this thread may use (see the top).
func runConfined(s int, names []string) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var saved, one cpuMask
	affinity(false, &saved)
	for c := 0; c < 1024; c++ {
		if saved[c/64]&(1<<(c%64)) != 0 {
			one[c/64] = 1 << (c % 64)
			break
		}
	}
	affinity(true, &one)
	self, err := os.Executable()
	if err != nil {
		fail("oversub", "os.Executable: %v", err)
	}
	cmd := exec.Command(self, append([]string{strconv.Itoa(s)}, names...)...)
	cmd.Env = append(os.Environ(), confinedEnv+"=1")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	err = cmd.Run()
	affinity(true, &saved)
	if err != nil {
		fail("oversub", "confined child: %v", err)
	}
}

// ---------------------------------------------------------------- table

type workload struct {
	name    string
	run     func(s int)
	alone   bool // only when named
	oversub bool // in a child confined to one CPU
}

// In run order: memory first, in a fresh process, so no freed goroutine
// stacks are reused.
var workloads = []workload{
	{"mem_per_idle_task", memPerIdleTask, false, false},
	{"mem_1m_tasks", mem1mTasks, true, false},
	{"spawn_join", spawnJoin, false, false},
	{"yield_switch", yieldSwitch, false, false},
	{"mutex_uncontended", mutexUncontended, false, false},
	{"mutex_contended_handoff", mutexContendedHandoff, false, false},
	{"rwlock_read_uncontended", rwlockReadUncontended, false, false},
	{"semaphore_uncontended", semaphoreUncontended, false, false},
	{"mpsc_bounded_1p", func(s int) { mpscBounded1p("mpsc_bounded_1p", 1, s) }, false, false},
	{"mpsc_bounded_4p", mpscBounded4p, false, false},
	{"oneshot_create_send_recv", oneshotCreateSendRecv, false, false},
	{"mpsc_pingpong_roundtrip", mpscPingpongRoundtrip, false, false},
	{"notify_pingpong_roundtrip", notifyPingpongRoundtrip, false, false},
	{"broadcast_1to4_per_send", broadcast1to4PerSend, false, false},
	{"watch_pingpong_roundtrip", watchPingpongRoundtrip, false, false},
	{"mpsc_bounded_big", mpscBoundedBig, false, false},
	{"select_2chan_pingpong", select2chanPingpong, false, false},
	{"select_recv_or_timeout", selectRecvOrTimeout, false, false},
	{"mt2_mpsc_bounded_1p", func(s int) { mpscBounded1p("mt2_mpsc_bounded_1p", 2, s) }, false, false},
	{"mt2_mutex_contended", func(s int) { mt2MutexContended("mt2_mutex_contended", s) }, false, false},
	{"mt2_mutex_contended_barging", func(s int) { mt2MutexContended("mt2_mutex_contended_barging", s) }, false, false},
	{"mt2_request_reply", func(s int) { requestReply("mt2_request_reply", s) }, false, false},
	{"mt2_request_reply_migratable", func(s int) { requestReply("mt2_request_reply_migratable", s) }, false, false},
	{"mt2_fork_join", mt2ForkJoin, false, false},
	{"mt2_pipeline", mt2Pipeline, false, false},
	{"oversub_mt2_request_reply", func(s int) { requestReply("oversub_mt2_request_reply", s) }, false, true},
	{"oversub_mt2_mpsc_bounded_1p", func(s int) { mpscBounded1p("oversub_mt2_mpsc_bounded_1p", 2, s) }, false, true},
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: go-bench [S>=1] [workload...] | --list")
	os.Exit(2)
}

func main() {
	args := os.Args[1:]
	if len(args) > 0 && args[0] == "--list" {
		for _, w := range workloads {
			if w.alone {
				fmt.Println(w.name + " (only when named)")
			} else {
				fmt.Println(w.name)
			}
		}
		return
	}
	s := 1
	if len(args) > 0 {
		if v, err := strconv.Atoi(args[0]); err == nil {
			if v < 1 {
				usage()
			}
			s = v
			args = args[1:]
		}
	}
	named := map[string]bool{}
	for _, a := range args {
		named[a] = true
	}
	known := 0
	for _, w := range workloads {
		if named[w.name] {
			known++
		}
	}
	if known != len(named) {
		fmt.Fprintln(os.Stderr, "go-bench: unknown workload name in", args, "(--list)")
		usage()
	}
	confined := os.Getenv(confinedEnv) == "1"
	if confined && runtime.NumCPU() != 1 {
		fail("oversub", "confined child sees %d CPUs", runtime.NumCPU())
	}
	var oversub []string
	for _, w := range workloads {
		if !named[w.name] && (len(named) > 0 || w.alone) {
			continue
		}
		if w.oversub && !confined {
			oversub = append(oversub, w.name)
			continue
		}
		w.run(s)
	}
	if len(oversub) > 0 {
		runConfined(s, oversub)
	}
}
