package pool

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gompm/mpm/internal/procstatus"
	"github.com/gompm/mpm/internal/testenv"
	"github.com/gompm/mpm/prefork"
	"github.com/gompm/mpm/privdrop"
)

var roles prefork.Roles

func TestMain(m *testing.M) {
	roles.Add("job-worker", jobWorker)
	roles.Add("http-worker", httpWorker)
	roles.Add("crash-at-start", func(context.Context, *prefork.Env) error { return errors.New("cannot start") })
	roles.Add("pool-master", poolMaster)
	roles.Main()
	testenv.Main(m, nil)
}

// jobWorker takes jobs from the dispatch socket, one message each:
//
//	sleep <ms> <file>   busy for ms, then create file
//	crash               exit with status 3 at once
//	status <file>       copy /proc/self/status to file
//	resize <file>       try to shrink and to grow the scoreboard (as a
//	                    tenant who took the worker over would), and write
//	                    what each attempt got to file
func jobWorker(ctx context.Context, env *prefork.Env) error {
	w, err := Join(env)
	if err != nil {
		return err
	}
	c, err := net.FileConn(w.Dispatch)
	if err != nil {
		return err
	}
	conn := c.(*net.UnixConn)
	go func() { <-ctx.Done(); conn.Close() }()
	buf := make([]byte, 4096)
	for {
		w.Idle()
		n, _, _, _, err := conn.ReadMsgUnix(buf, nil)
		if err != nil {
			w.Exiting()
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		f := strings.Fields(string(buf[:n]))
		w.Busy("test.example", "/"+f[0])
		switch f[0] {
		case "sleep":
			ms, _ := strconv.Atoi(f[1])
			time.Sleep(time.Duration(ms) * time.Millisecond)
			os.WriteFile(f[2], nil, 0o666)
		case "crash":
			os.Exit(3)
		case "refuse":
			w.Refused()
		case "status":
			b, _ := os.ReadFile("/proc/self/status")
			os.WriteFile(f[1], b, 0o666)
		case "resize":
			board, _ := env.File(fileScoreboard)
			var res []string
			for _, size := range []int64{0, slotSize, 1 << 20} {
				res = append(res, fmt.Sprintf("truncate %d: %v", size, board.Truncate(size)))
			}
			os.WriteFile(f[1], []byte(strings.Join(res, "\n")), 0o666)
		}
		if w.Done() {
			return nil
		}
	}
}

// poolMaster runs a pool of two workers and writes their pids to "out".
func poolMaster(ctx context.Context, env *prefork.Env) error {
	out, err := env.File("out")
	if err != nil {
		return err
	}
	exe, _ := os.Executable()
	p, err := New(Config{Name: "orphans", Role: "job-worker", Path: exe, Min: 2})
	if err != nil {
		return err
	}
	go p.Run(ctx)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if s := p.Stats(); s.Idle == 2 {
			for _, sl := range s.Slots {
				fmt.Fprintln(out, sl.PID)
			}
			out.Close()
			break
		}
	}
	<-ctx.Done()
	return nil
}

type harness struct {
	t      *testing.T
	p      *Pool
	conn   *net.UnixConn
	dir    string
	cancel context.CancelFunc
	done   chan struct{}
	jobs   int
}

func startPool(t *testing.T, cfg Config) *harness {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = "test"
	}
	if cfg.Role == "" {
		cfg.Role = "job-worker"
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.FileConn(p.Dispatch())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &harness{t: t, p: p, conn: c.(*net.UnixConn), dir: testenv.PublicDir(t, 0o777), cancel: cancel, done: make(chan struct{})}
	go func() { defer close(h.done); p.Run(ctx) }()
	t.Cleanup(func() { h.stop(); c.Close(); p.Close() })
	return h
}

func (h *harness) stop() {
	h.cancel()
	select {
	case <-h.done:
	case <-time.After(time.Minute):
		h.t.Error("pool did not stop within a minute")
	}
}

// send queues a job and returns the file it creates when done.
func (h *harness) send(job string, ms int) string {
	h.t.Helper()
	h.jobs++
	file := filepath.Join(h.dir, fmt.Sprintf("done-%d", h.jobs))
	msg := job
	if job == "sleep" {
		msg = fmt.Sprintf("sleep %d %s", ms, file)
	}
	h.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := h.conn.Write([]byte(msg)); err != nil {
		h.t.Fatalf("send %q: %v", msg, err)
	}
	return file
}

func (h *harness) waitFor(what string, limit time.Duration, cond func(Stats) bool) Stats {
	h.t.Helper()
	var s Stats
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if s = h.p.Stats(); cond(s) {
			return s
		}
	}
	h.t.Fatalf("timed out after %v waiting for %s; stats %+v", limit, what, s)
	return s
}

func exists(f string) bool { _, err := os.Stat(f); return err == nil }

// TestOnDemand: a pool with min 0 holds no process; the first connection
// starts one, and an idle pool goes back to none.
func TestOnDemand(t *testing.T) {
	h := startPool(t, Config{IdleTimeout: 400 * time.Millisecond})
	time.Sleep(300 * time.Millisecond)
	if s := h.p.Stats(); s.Workers != 0 || s.Spawned != 0 {
		t.Fatalf("idle on-demand pool holds %d workers (spawned %d)", s.Workers, s.Spawned)
	}
	t0 := time.Now()
	f := h.send("sleep", 0)
	h.waitFor("the first job", 10*time.Second, func(Stats) bool { return exists(f) })
	t.Logf("first job on an empty pool done after %v", time.Since(t0))
	s := h.waitFor("the pool to empty again", 10*time.Second, func(s Stats) bool { return s.Workers == 0 })
	if s.Spawned != 1 || s.Retired != 1 || s.Served != 1 || s.Crashed != 0 {
		t.Errorf("stats %+v, want 1 spawned, 1 retired, 1 served, 0 crashed", s)
	}
}

// TestScaleUpAndDown: concurrent work grows the pool to its max and no
// further; the idle timeout shrinks it back to min.
func TestScaleUpAndDown(t *testing.T) {
	h := startPool(t, Config{Min: 1, Max: 4, MaxSpare: 4, IdleTimeout: 500 * time.Millisecond})
	h.waitFor("min workers", 10*time.Second, func(s Stats) bool { return s.Idle == 1 })
	var files []string
	for range 8 {
		files = append(files, h.send("sleep", 400))
	}
	peak := 0
	h.waitFor("all jobs", 20*time.Second, func(s Stats) bool {
		peak = max(peak, s.Workers)
		if s.Workers > 4 {
			t.Fatalf("pool grew to %d workers, past its max of 4", s.Workers)
		}
		return !slices.ContainsFunc(files, func(f string) bool { return !exists(f) })
	})
	if peak != 4 {
		t.Errorf("peak %d workers under 8 concurrent jobs, want max 4", peak)
	}
	s := h.waitFor("shrink to min", 10*time.Second, func(s Stats) bool { return s.Workers == 1 })
	if s.Served != 8 || s.Retired != s.Spawned-1 || s.Crashed != 0 {
		t.Errorf("stats %+v, want 8 served, all but the one kept retired, no crash", s)
	}
}

// TestRecycle: a worker exits after MaxRequests and is replaced.
func TestRecycle(t *testing.T) {
	h := startPool(t, Config{Min: 1, MaxRequests: 2})
	var files []string
	for range 5 {
		files = append(files, h.send("sleep", 0))
	}
	s := h.waitFor("all jobs and a ready worker", 10*time.Second, func(s Stats) bool {
		return s.Idle == 1 && s.Recycled >= 2 && !slices.ContainsFunc(files, func(f string) bool { return !exists(f) })
	})
	if s.Recycled < 2 || s.Spawned < 3 || s.Crashed != 0 {
		t.Errorf("stats %+v, want at least 2 recycled and 3 spawned, no crash", s)
	}
}

// TestRefusedCounted: refusals reported by workers add up in Stats, and
// stay counted after the worker that made them is gone.
func TestRefusedCounted(t *testing.T) {
	h := startPool(t, Config{Min: 1, MaxRequests: 2})
	h.send("refuse", 0)
	h.send("refuse", 0) // the worker recycles after these two
	h.waitFor("two refusals by a recycled worker", 10*time.Second, func(s Stats) bool {
		return s.Refused == 2 && s.Recycled == 1 && s.Idle == 1
	})
}

// TestExpire: a worker busy past the expire timeout is killed and
// replaced.
func TestExpire(t *testing.T) {
	h := startPool(t, Config{Min: 1, ExpireTimeout: 300 * time.Millisecond})
	t0 := time.Now()
	f := h.send("sleep", 60000)
	s := h.waitFor("the hung worker to be killed and replaced", 10*time.Second, func(s Stats) bool { return s.Killed == 1 && s.Idle == 1 })
	if took := time.Since(t0); took > 5*time.Second {
		t.Errorf("killed after %v, want about 300ms", took)
	}
	if exists(f) || s.Crashed != 0 {
		t.Errorf("job finished (%v) or kill counted as a crash (%+v)", exists(f), s)
	}
}

// TestCrash: a worker that dies is replaced; workers that keep dying put
// the pool in back-off instead of a fork loop.
func TestCrash(t *testing.T) {
	h := startPool(t, Config{Min: 1})
	h.waitFor("a worker", 10*time.Second, func(s Stats) bool { return s.Idle == 1 })
	h.send("crash", 0)
	s := h.waitFor("replacement", 10*time.Second, func(s Stats) bool { return s.Crashed == 1 && s.Idle == 1 })
	if s.Spawned != 2 {
		t.Errorf("spawned %d, want 2", s.Spawned)
	}

	loop := startPool(t, Config{Name: "crashloop", Role: "crash-at-start", Min: 1})
	s = loop.waitFor("back-off", 10*time.Second, func(s Stats) bool { return !s.BackoffUntil.IsZero() })
	time.Sleep(500 * time.Millisecond)
	s2 := loop.p.Stats()
	if s2.Spawned > crashLimit+1 {
		t.Errorf("spawned %d workers during back-off (had %d when it began)", s2.Spawned, s.Spawned)
	}
}

// TestGracefulStop: stopping the pool lets an in-flight job finish.
func TestGracefulStop(t *testing.T) {
	h := startPool(t, Config{Min: 1})
	h.waitFor("a worker", 10*time.Second, func(s Stats) bool { return s.Idle == 1 })
	f := h.send("sleep", 500)
	h.waitFor("the job to start", 10*time.Second, func(s Stats) bool { return s.Busy == 1 })
	h.stop()
	if !exists(f) {
		t.Error("the in-flight job did not finish before the pool stopped")
	}
	if s := h.p.Stats(); s.Workers != 0 {
		t.Errorf("%d workers left after stop", s.Workers)
	}
}

// TestGlobalLimit: pools sharing a Limit never hold more workers
// together than it allows.
func TestGlobalLimit(t *testing.T) {
	lim := &Limit{Max: 2}
	a := startPool(t, Config{Name: "a", Max: 3, MaxSpare: 3, Limit: lim})
	b := startPool(t, Config{Name: "b", Max: 3, MaxSpare: 3, Limit: lim})
	var files []string
	for range 3 {
		files = append(files, a.send("sleep", 300), b.send("sleep", 300))
	}
	var mu sync.Mutex
	a.waitFor("all jobs", 30*time.Second, func(sa Stats) bool {
		mu.Lock()
		defer mu.Unlock()
		if n := sa.Workers + b.p.Stats().Workers; n > 2 {
			t.Fatalf("%d workers across pools under a limit of 2", n)
		}
		return !slices.ContainsFunc(files, func(f string) bool { return !exists(f) })
	})
}

func TestConfigErrors(t *testing.T) {
	for _, c := range []Config{
		{Role: "x"},
		{Name: "x"},
		{Name: "x", Role: "x", Min: 5, Max: 2},
		{Name: "x", Role: "x", MinSpare: 3, MaxSpare: 2},
		{Name: "x", Role: "x", Max: -1},
	} {
		if _, err := New(c); err == nil {
			t.Errorf("New(%+v) accepted", c)
		}
	}
}

// BenchmarkColdStart is the latency of the first job sent to an on-demand
// pool with no worker: spawn, start, take the job, finish it. It reports
// the median and 90th percentile, for workers of the master's own
// identity and (as root) of another identity, which adds the drop:
//
//	CGO_ENABLED=0 go test -run '^$' -bench ColdStart ./pool
func BenchmarkColdStart(b *testing.B) {
	b.Run("same-identity", func(b *testing.B) { benchColdStart(b, Config{}) })
	b.Run("as-identity", func(b *testing.B) {
		testenv.RequireRoot(b)
		id := &privdrop.Identity{UID: testenv.FreeID(b, 2072), GID: testenv.FreeID(b, 2072)}
		benchColdStart(b, Config{Identity: id, Path: testenv.PublicExecutable(b)})
	})
}

func benchColdStart(b *testing.B, cfg Config) {
	cfg.Name, cfg.Role, cfg.IdleTimeout = "bench", "job-worker", time.Millisecond
	p, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	c, err := net.FileConn(p.Dispatch())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); p.Run(ctx) }()
	defer func() { cancel(); <-done }()
	dir := testenv.PublicDir(b, 0o777)
	var lat []time.Duration
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		for p.Stats().Workers != 0 {
			time.Sleep(time.Millisecond)
		}
		f := filepath.Join(dir, strconv.Itoa(i))
		b.StartTimer()
		t0 := time.Now()
		c.Write([]byte("sleep 0 " + f))
		for !exists(f) {
			time.Sleep(100 * time.Microsecond)
		}
		lat = append(lat, time.Since(t0))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*9/10].Microseconds())/1000, "p90-ms")
}

// TestScoreboardPerPool: a worker holds its own pool's scoreboard and
// dispatch socket and not another pool's, so it can misreport only its
// own pool.
func TestScoreboardPerPool(t *testing.T) {
	a := startPool(t, Config{Name: "alpha", Min: 1})
	b := startPool(t, Config{Name: "beta", Min: 1})
	sa := a.waitFor("alpha's worker", 10*time.Second, func(s Stats) bool { return s.Idle == 1 })
	b.waitFor("beta's worker", 10*time.Second, func(s Stats) bool { return s.Idle == 1 })
	fds, err := procstatus.FDs(sa.Slots[0].PID)
	if err != nil {
		t.Fatal(err)
	}
	var boards []string
	sockets := 0
	for _, target := range fds {
		if strings.Contains(target, "mpm-scoreboard-") {
			boards = append(boards, target)
		}
		if strings.HasPrefix(target, "socket:") {
			sockets++
		}
	}
	if len(boards) != 1 || !strings.Contains(boards[0], "mpm-scoreboard-alpha") {
		t.Errorf("alpha's worker holds scoreboards %v, want only alpha's", boards)
	}
	// The dispatch socket (and net.FileConn's duplicate of it).
	if sockets > 2 {
		t.Errorf("alpha's worker holds %d sockets: %v", sockets, fds)
	}
}

// TestScoreboardResizeRefused: a worker cannot shrink or grow the
// scoreboard it maps read-write. Shrunk, the master's next read of a slot
// past the end killed it with SIGBUS, and every worker with it.
func TestScoreboardResizeRefused(t *testing.T) {
	h := startPool(t, Config{Max: 4})
	file := filepath.Join(h.dir, "resize")
	h.send("resize "+file, 0)
	var got []byte
	for deadline := time.Now().Add(10 * time.Second); len(got) == 0 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		got, _ = os.ReadFile(file)
	}
	want := "truncate 0: truncate scoreboard: operation not permitted\ntruncate 320: truncate scoreboard: operation not permitted\ntruncate 1048576: truncate scoreboard: operation not permitted"
	if string(got) != want {
		t.Errorf("a worker resizing the scoreboard got:\n%s\nwant:\n%s", got, want)
	}
	// The master reads every slot, the last one included.
	s := h.p.Stats()
	for i := range h.p.board.n {
		h.p.board.read(i)
	}
	if s.Workers != 1 {
		t.Errorf("stats after the attempt: %+v", s)
	}
}

// TestMasterKilledLeavesNoWorker: SIGKILL to the process running a pool
// takes its workers down with it.
func TestMasterKilledLeavesNoWorker(t *testing.T) {
	var g prefork.Group
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	master, err := g.Start(prefork.Spec{Role: "pool-master", Files: []prefork.File{{Name: "out", File: w}}})
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer master.Signal(syscall.SIGKILL)
	r.SetReadDeadline(time.Now().Add(time.Minute))
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			t.Fatal(err)
		}
		pids = append(pids, pid)
		defer syscall.Kill(pid, syscall.SIGKILL)
	}
	if len(pids) != 2 {
		t.Fatalf("master reported workers %q, want 2 pids", b)
	}
	master.Signal(syscall.SIGKILL)
	master.Exit()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		left := slices.DeleteFunc(slices.Clone(pids), func(pid int) bool { return !testenv.Running(pid) })
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("workers %v outlived their master by 10s", left)
		}
	}
}

// TestIdlePoolsSleep: on-demand pools with no traffic cost the master no
// thread each and no wake-ups (a host has hundreds of idle sites), and a
// message still starts a worker at once.
func TestIdlePoolsSleep(t *testing.T) {
	_, threadsBefore, err := procstatus.Wakeups(0)
	if err != nil {
		t.Fatal(err)
	}
	const pools = 30
	hs := make([]*harness, pools)
	for i := range hs {
		hs[i] = startPool(t, Config{Name: fmt.Sprintf("idle%d", i), IdleTimeout: time.Minute})
	}
	time.Sleep(300 * time.Millisecond) // every loop has gone to sleep
	before, threads, err := procstatus.Wakeups(0)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	after, _, err := procstatus.Wakeups(0)
	if err != nil {
		t.Fatal(err)
	}
	// The Go runtime has a few periodic wake-ups of its own; a poll or a
	// tick per pool would be hundreds a second.
	t.Logf("%d idle pools: %d threads (%d before), %d wake-ups in a second", pools, threads, threadsBefore, after-before)
	if after-before > 50 {
		t.Errorf("%d idle pools woke the process %d times in a second", pools, after-before)
	}
	if threads-threadsBefore > 5 {
		t.Errorf("%d idle pools added %d threads", pools, threads-threadsBefore)
	}
	t0 := time.Now()
	f := hs[pools/2].send("sleep", 0)
	hs[pools/2].waitFor("a job on a sleeping pool", 10*time.Second, func(Stats) bool { return exists(f) })
	t.Logf("first job on a sleeping pool done after %v", time.Since(t0))
}
