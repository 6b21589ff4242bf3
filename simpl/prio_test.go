//go:build !race

package simpl_test

// Priority inheritance and priority-ordered receive (issue 12, items 1-3),
// across real processes. Shared-memory hand-offs through futexes: not
// under the race detector, like the other shm tests.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/internal/sys"
	"github.com/gosimpl/gosimpl/simpl"
	"github.com/gosimpl/gosimpl/simpl/simpltest"
	"golang.org/x/sys/unix"
)

var prioRoles = map[string]simpltest.Role{
	"prio-send":  rolePrioSend,
	"prio-serve": rolePrioServe,
	"hog":        roleHog,
	"loopsend":   roleLoopSend, // loop_alloc_test.go
	"proxycount": roleProxyCount,
}

// prioProc is a helper started with a stdin to command it, and killed by
// the kernel (PR_SET_PDEATHSIG) should this process die first.
type prioProc struct {
	*simpltest.Proc
	in io.WriteCloser
}

func startPrio(t *testing.T, dir, role string, args ...string) *prioProc {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), simpltest.Env(role, args...)...)
	cmd.Env = append(cmd.Env, env(dir)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &prioProc{Proc: simpltest.StartCmd(t, cmd), in: in}
	// EOF on stdin ends every role cleanly (its names detached); then
	// the helper is waited for, before StartCmd's cleanup would kill it.
	t.Cleanup(func() {
		in.Close()
		if p.Cmd.ProcessState != nil {
			return // the test waited for it and judged its end
		}
		if err := p.Wait(10 * time.Second); err != nil && !p.Killed() {
			t.Errorf("helper %s: %v", role, err)
		}
	})
	p.Expect("ready", 10*time.Second)
	return p
}

func (p *prioProc) command(t *testing.T, format string, a ...any) {
	t.Helper()
	if _, err := fmt.Fprintf(p.in, format+"\n", a...); err != nil {
		t.Fatalf("command to helper: %v; stderr: %s", err, p.Stderr())
	}
}

// rolePrioSend TARGET: attach with priority inheritance (so Sends carry
// their thread's priority) and locate TARGET through shared memory. Each
// stdin line "POLICY LEVEL CPU DATA" sends DATA from a goroutine of its
// own, on a thread set to POLICY and LEVEL and pinned to CPU (-1: not
// pinned), and prints "done DATA NANOSECONDS REPLY" (the Send's time) or
// "error DATA ERR". The thread stays locked: it exits with its goroutine,
// so its priority never serves another. EOF on stdin ends the helper once
// its Sends are done. Further arguments: "as=CRED" and "nicelim=N" (see
// becomeAs); "nocap": each sending thread drops CAP_SYS_NICE once its
// priority is set, so that it cannot raise the receiver.
func rolePrioSend(args []string) error {
	if err := becomeAs(args[1:]); err != nil {
		return err
	}
	nocap := slices.Contains(args[1:], "nocap")
	ch, err := simpl.Attach("", simpl.WithPriorityInheritance(), simpl.WithTransport(simpl.SHM))
	if err != nil {
		return err
	}
	defer ch.Close()
	to, err := ch.Locate(context.Background(), args[0])
	if err != nil {
		return err
	}
	var out sync.Mutex
	say := func(format string, a ...any) {
		out.Lock()
		defer out.Unlock()
		fmt.Printf(format+"\n", a...)
	}
	simpltest.Ready()
	var wg sync.WaitGroup
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 4 {
			return fmt.Errorf("bad command %q", sc.Text())
		}
		policy, _ := strconv.Atoi(f[0])
		level, _ := strconv.Atoi(f[1])
		cpu, _ := strconv.Atoi(f[2])
		data := f[3]
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread() // never unlocked (see above)
			// Priority first, then the CPU: a thread moved to a hogged
			// CPU at its old priority would wait there.
			if err := sys.SetSched(0, sys.Sched{Policy: policy, Level: level}); err != nil {
				say("error %s set priority: %v", data, err)
				return
			}
			if cpu >= 0 {
				if err := sys.PinThread(cpu); err != nil {
					say("error %s pin: %v", data, err)
					return
				}
			}
			if nocap {
				if err := dropSysNice(); err != nil {
					say("error %s drop CAP_SYS_NICE: %v", data, err)
					return
				}
			}
			reply := make([]byte, 64)
			t0 := time.Now()
			n, err := to.Send(context.Background(), []byte(data), reply)
			d := time.Since(t0)
			if err != nil {
				say("error %s %v", data, err)
				return
			}
			say("done %s %d %s", data, d.Nanoseconds(), reply[:n])
		}()
	}
	wg.Wait()
	return nil
}

// rolePrioServe NAME INHERIT CPU [nicelim=N] [as=CRED]: attach NAME (shared memory
// only), with priority inheritance if INHERIT is 1, and Serve on a thread
// pinned to CPU (-1: not pinned), as user CRED if given. EOF on stdin
// detaches and ends it. Requests:
//
//	work:MS  print "busy", use MS ms of this thread's CPU time, reply "ok";
//	         if meanwhile the thread is raised to SCHED_FIFO 30 or more,
//	         print "boosted MS" with the CPU time left then
//	prio     reply the thread's policy and level, "P L"
//	fails    reply the Channel's PriorityFailures
func rolePrioServe(args []string) error {
	if err := becomeAs(args[3:]); err != nil {
		return err
	}
	opts := []simpl.Option{simpl.WithTransport(simpl.SHM)}
	if args[1] == "1" {
		opts = append(opts, simpl.WithPriorityInheritance())
	}
	ch, err := simpl.Attach(args[0], opts...)
	if err != nil {
		return err
	}
	defer ch.Close()
	cpu, _ := strconv.Atoi(args[2])
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if cpu >= 0 {
		if err := sys.PinThread(cpu); err != nil {
			return err
		}
	}
	simpltest.Ready()
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		io.Copy(io.Discard, os.Stdin)
		ch.Close() // EOF: Serve returns ErrClosed
	}()
	err = ch.Serve(context.Background(), func(m simpl.Message) {
		d := string(m.Data())
		switch {
		case strings.HasPrefix(d, "work:"):
			ms, _ := strconv.Atoi(d[len("work:"):])
			fmt.Println("busy")
			want := time.Duration(ms) * time.Millisecond
			start := sys.ThreadCPUTime()
			boosted := false
			for {
				used := sys.ThreadCPUTime() - start
				if used >= want {
					break
				}
				if s, _ := sys.GetSched(0); !boosted && s.Policy == sys.SchedFIFO && s.Level >= 30 {
					boosted = true
					fmt.Printf("boosted %d\n", (want - used).Milliseconds())
				}
			}
			m.Reply([]byte("ok"))
		case d == "prio":
			s, _ := sys.GetSched(0)
			m.Reply([]byte(fmt.Sprintf("%d %d", s.Policy, s.Level)))
		case d == "fails":
			m.Reply([]byte(strconv.FormatUint(ch.PriorityFailures(), 10)))
		default:
			m.ReplyError()
		}
	})
	if errors.Is(err, simpl.ErrClosed) {
		<-closed // the name detached whole before the process exits
		return nil
	}
	return err
}

// becomeAs applies optional arguments "nicelim=N" (set RLIMIT_NICE to N,
// while still root) and "as=CRED" (become that user), in that order.
func becomeAs(args []string) error {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "nicelim="); ok {
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return err
			}
			if err := syscall.Setrlimit(unix.RLIMIT_NICE, &syscall.Rlimit{Cur: n, Max: n}); err != nil {
				return fmt.Errorf("RLIMIT_NICE %d: %w", n, err)
			}
		}
	}
	for _, a := range args {
		if cred, ok := strings.CutPrefix(a, "as="); ok {
			return becomeUser(cred)
		}
	}
	return nil
}

// roleHog CPU PRIO MS PPID: wait for "go" on stdin, then spin as
// SCHED_FIFO PRIO pinned to CPU for MS ms and exit. It dies with its
// parent (PR_SET_PDEATHSIG, checked against PPID) and ends by itself
// after MS ms in any case; EOF on stdin before "go" ends it too.
func roleHog(args []string) error {
	cpu, _ := strconv.Atoi(args[0])
	prio, _ := strconv.Atoi(args[1])
	ms, _ := strconv.Atoi(args[2])
	ppid, _ := strconv.Atoi(args[3])
	if err := sys.SetPdeathsig(syscall.SIGKILL, ppid); err != nil {
		return err
	}
	runtime.LockOSThread() // never unlocked: the process ends with it
	simpltest.Ready()
	line, err := bufio.NewReader(os.Stdin).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "go" {
		return fmt.Errorf("no go (%q, %v)", line, err)
	}
	deadline := time.Now().Add(time.Duration(ms) * time.Millisecond)
	if err := sys.SetSched(0, sys.Sched{Policy: sys.SchedFIFO, Level: prio}); err != nil {
		return err
	}
	if err := sys.PinThread(cpu); err != nil {
		return err
	}
	fmt.Println("spinning")
	for time.Now().Before(deadline) {
	}
	return nil
}

// doneLines reads n "done" lines from p and returns them by DATA.
func doneLines(t *testing.T, p *prioProc, n int) map[string][]string {
	t.Helper()
	got := map[string][]string{}
	for range n {
		line := p.ReadLine(20 * time.Second)
		f := strings.Fields(line)
		if len(f) < 3 || f[0] != "done" {
			t.Fatalf("sender: %q, want a done line; stderr: %s", line, p.Stderr())
		}
		got[f[1]] = f[2:]
	}
	return got
}

// TestPriorityOrder: with WithPriorityOrder, senders queued in a known
// arrival order (each one's request seen waiting before the next sends)
// are received highest priority first, in arrival order within a
// priority; a low-priority request is overtaken by exactly
// PriorityWindow later arrivals, no more; without the option the same
// queue is received in arrival order. The senders are threads of another
// process at nice values (raising one needs root).
func TestPriorityOrder(t *testing.T) {
	needRoot(t)
	dir := simpltest.Dir(t)
	ctx := simpltest.Context(t, time.Minute)
	rx := attach(t, dir, "ORDER", simpl.WithTransport(simpl.SHM), simpl.WithPriorityOrder())
	plain := attach(t, dir, "PLAIN", simpl.WithTransport(simpl.SHM))

	queue := func(ch *simpl.Channel, snd *prioProc, nices []int, tags []string) {
		t.Helper()
		for i := range tags {
			snd.command(t, "%d %d -1 %s", simpl.SchedOther, nices[i], tags[i])
			waitFor(t, 10*time.Second, fmt.Sprintf("request %s waiting", tags[i]), func() bool { return simpl.Waiting(ch) == i+1 })
		}
	}
	receive := func(ch *simpl.Channel, n int) []string {
		t.Helper()
		var order []string
		for range n {
			m, err := ch.Receive(ctx)
			if err != nil {
				t.Fatal(err)
			}
			order = append(order, string(m.Data()))
			if err := m.Reply([]byte("r")); err != nil {
				t.Fatal(err)
			}
		}
		return order
	}

	snd := startPrio(t, dir, "prio-send", "ORDER")
	tags := []string{"a0", "b5", "c-5", "d0", "e-5", "f5"}
	queue(rx, snd, []int{0, 5, -5, 0, -5, 5}, tags)
	if got, want := strings.Join(receive(rx, len(tags)), " "), "c-5 e-5 a0 d0 b5 f5"; got != want {
		t.Errorf("priority order: received %s, want %s", got, want)
	}
	doneLines(t, snd, len(tags))

	// One request at nice 10, then 20 at nice -10: the first is received
	// after PriorityWindow of them, not after all.
	tags, nices := []string{"low"}, []int{10}
	for i := range 20 {
		tags, nices = append(tags, fmt.Sprintf("h%02d", i)), append(nices, -10)
	}
	queue(rx, snd, nices, tags)
	var want []string
	for i := range 20 {
		if i == simpl.PriorityWindow {
			want = append(want, "low")
		}
		want = append(want, fmt.Sprintf("h%02d", i))
	}
	if got := receive(rx, len(tags)); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("window of %d: received %v, want %v", simpl.PriorityWindow, got, want)
	}
	doneLines(t, snd, len(tags))

	// The default: arrival order, whatever the priorities.
	snd2 := startPrio(t, dir, "prio-send", "PLAIN")
	tags = []string{"a5", "b0", "c-5"}
	queue(plain, snd2, []int{5, 0, -5}, tags)
	if got, want := strings.Join(receive(plain, len(tags)), " "), "a5 b0 c-5"; got != want {
		t.Errorf("default order: received %s, want %s", got, want)
	}
	doneLines(t, snd2, len(tags))
}

// TestServeInheritance: Serve with WithPriorityInheritance runs each
// request on a thread at its sender's policy and priority (SCHED_FIFO,
// SCHED_OTHER's nice), at its own for a sender that carries none, and
// is back at its own after each Reply; while it serves a request, a
// higher-priority sender that arrives raises the serving thread (the
// inversion case) before it is received. The senders are another
// process; setting priorities needs root.
func TestServeInheritance(t *testing.T) {
	needRoot(t)
	dir := simpltest.Dir(t)
	ctx, cancel := context.WithCancel(simpltest.Context(t, time.Minute))
	rx := attach(t, dir, "INHERIT", simpl.WithTransport(simpl.SHM), simpl.WithPriorityInheritance())

	type seen struct {
		data       string
		during     sys.Sched // the thread while the handler ran
		after      sys.Sched // the thread after the answer
		prio       simpl.Priority
		carried    bool
		boostedRaw string
	}
	seenc := make(chan seen, 16)
	holding := make(chan struct{}, 1)
	served := make(chan error, 1)
	var own, ownAfter sys.Sched
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		own, _ = sys.GetSched(0)
		err := rx.Serve(ctx, func(m simpl.Message) {
			s := seen{data: string(m.Data())}
			s.prio, s.carried = m.Priority()
			s.during, _ = sys.GetSched(0)
			if s.data == "hold" {
				// Wait, busy, for a sender of SCHED_FIFO 9 to raise
				// this thread, and for its request to be waiting: a
				// sender raises the thread before it posts (so that a
				// late raise cannot outlive its request), and the
				// answer below must find the request there.
				holding <- struct{}{}
				deadline := time.Now().Add(10 * time.Second)
				for time.Now().Before(deadline) {
					if p, _ := sys.GetSched(0); p.Policy == sys.SchedFIFO && p.Level == 9 && simpl.Waiting(rx) > 0 {
						s.boostedRaw = "raised"
						break
					}
				}
			}
			m.Reply([]byte("r"))
			s.after, _ = sys.GetSched(0)
			seenc <- s
		})
		ownAfter, _ = sys.GetSched(0)
		served <- err
	}()
	next := func() seen {
		t.Helper()
		select {
		case s := <-seenc:
			return s
		case <-time.After(20 * time.Second):
			t.Fatal("no request served within 20 s")
		}
		return seen{}
	}

	snd := startPrio(t, dir, "prio-send", "INHERIT")
	for _, c := range []struct {
		policy, level int
	}{{sys.SchedFIFO, 7}, {sys.SchedRR, 3}, {sys.SchedOther, 3}, {sys.SchedOther, -4}} {
		snd.command(t, "%d %d -1 x", c.policy, c.level)
		s := next()
		want := sys.Sched{Policy: c.policy, Level: c.level}
		if s.during != want || !s.carried || sys.Sched(s.prio) != want {
			t.Errorf("sender at %+v: served at %+v, Priority %+v (carried %v)", want, s.during, s.prio, s.carried)
		}
		if s.after != own {
			t.Errorf("sender at %+v: after the Reply the thread is at %+v, want its own %+v", want, s.after, own)
		}
		doneLines(t, snd, 1)
	}

	// A sender without the option carries nothing: served at the
	// thread's own priority.
	cli := locate(t, attach(t, dir, "NOPRIO", simpl.WithTransport(simpl.SHM)), "INHERIT")
	if _, err := cli.Send(ctx, []byte("x"), make([]byte, 8)); err != nil {
		t.Fatal(err)
	}
	if s := next(); s.carried || s.during != own {
		t.Errorf("sender carrying nothing: served at %+v (carried %v %+v), want the thread's own %+v", s.during, s.carried, s.prio, own)
	}

	// The inversion case: a request at nice 0 holds the thread; a sender
	// at SCHED_FIFO 9 arrives and raises it while it works.
	snd.command(t, "%d 0 -1 hold", sys.SchedOther)
	select {
	case <-holding:
	case <-time.After(20 * time.Second):
		t.Fatal("the hold request was not served within 20 s")
	}
	snd.command(t, "%d 9 -1 high", sys.SchedFIFO)
	hold, high := next(), next()
	if hold.data != "hold" || hold.boostedRaw != "raised" {
		t.Errorf("the thread serving a nice-0 request was not raised to SCHED_FIFO 9 by the waiting sender: %+v", hold)
	}
	if want := (sys.Sched{Policy: sys.SchedFIFO, Level: 9}); hold.after != want {
		// Answered while the high sender still waits: stays raised.
		t.Errorf("after answering the held request with a SCHED_FIFO 9 sender waiting: %+v, want %+v", hold.after, want)
	}
	if want := (sys.Sched{Policy: sys.SchedFIFO, Level: 9}); high.data != "high" || high.during != want || high.after != own {
		t.Errorf("the high request: %+v, want served at %+v and back to %+v", high, want, own)
	}
	doneLines(t, snd, 2)

	// One Serve with inheritance at a time.
	if err := rx.Serve(ctx, func(simpl.Message) {}); !errors.Is(err, simpl.ErrNotSupported) {
		t.Errorf("a second Serve with inheritance: %v, want ErrNotSupported", err)
	}
	cancel()
	if err := <-served; !errors.Is(err, context.Canceled) {
		t.Errorf("Serve after its context ended: %v, want context.Canceled", err)
	}
	if ownAfter != own {
		t.Errorf("after Serve returned its thread is at %+v, want its own %+v", ownAfter, own)
	}
}

// TestPriorityInversion is the inversion of issue 12 across real
// processes, everything that matters pinned to one CPU: a server, its
// serving thread at SCHED_OTHER, serves a request from a SCHED_FIFO 10
// sender that takes workMS of its CPU time; a SCHED_FIFO 20 hog starts
// spinning on that CPU for hogMS; then a SCHED_FIFO 30 sender sends a
// request that takes no work. Without inheritance the server's thread
// cannot run until the hog ends, so the high sender waits at least the
// hog's remaining time (about hogMS). With it, the high sender raises the
// serving thread above the hog, which finishes the low request's
// remaining work and serves the high one: it waits no more than that
// work (at most workMS) plus slack.
//
// The comparison is of states, not a timing benchmark: the two bounds
// (at least hogMS-100 without, at most workMS+100 with) are 200 ms
// apart, far beyond the noise of a shared VM, because a SCHED_FIFO thread
// is not preempted by ordinary load. The work is long (workMS) so that
// the test's own reaction, between the server saying it is busy and the
// hog spinning, cannot outlast it; the server says when it was raised,
// which shows the high sender arrived while it worked. Run time is
// bounded (each helper's wait is), RT throttling stays as it is (the hog
// spins 600 ms and the server's real-time work is at most 200 ms, under
// the default 950 ms a second), and no hog outlives the test: each ends
// by itself after hogMS, dies with this process (PR_SET_PDEATHSIG) and is
// killed at cleanup.
func TestPriorityInversion(t *testing.T) {
	if wantTransport() != simpl.SHM {
		// Its processes use shared memory whatever is forced (priorities
		// travel there only): the suite over FIFOs would run it again
		// as it is.
		t.Skip("runs over shared memory only; done in the main suite")
	}
	needRoot(t)
	cpus, err := sys.AllowedCPUs()
	if err != nil || len(cpus) == 0 {
		t.Fatalf("allowed CPUs: %v (%v)", cpus, err)
	}
	if len(cpus) < 2 {
		// The test itself must go on, on another CPU, while the hog
		// holds the one it pins everything to.
		cannotRun(t, "needs two CPUs, has %v", cpus)
	}
	cpu := cpus[len(cpus)-1]
	// Slack for the rest of the exchange (the answers, the wake-ups, the
	// Go runtime's own threads, which are not real-time, on a CPU the hog
	// holds): up to 200 ms with inheritance (115 ms was seen in CI, with
	// other test packages running), so that the two cases stay apart by
	// 100 ms at least: with inheritance at most 400 ms, without at least
	// 500 ms.
	const (
		workMS       = 200
		hogMS        = 600
		slack        = 100 * time.Millisecond
		inheritSlack = 200 * time.Millisecond
	)
	for _, inherit := range []bool{false, true} {
		t.Run(fmt.Sprintf("inherit=%v", inherit), func(t *testing.T) {
			dir := simpltest.Dir(t)
			name := "INV"
			flag := "0"
			if inherit {
				flag = "1"
			}
			srv := startPrio(t, dir, "prio-serve", name, flag, strconv.Itoa(cpu))
			low := startPrio(t, dir, "prio-send", name)
			high := startPrio(t, dir, "prio-send", name)
			hog := startPrio(t, dir, "hog", strconv.Itoa(cpu), "20", strconv.Itoa(hogMS), strconv.Itoa(os.Getpid()))

			low.command(t, "%d 10 %d work:%d", sys.SchedFIFO, cpu, workMS)
			srv.Expect("busy", 10*time.Second)
			hog.command(t, "go")
			hog.Expect("spinning", 10*time.Second)
			high.command(t, "%d 30 %d work:0", sys.SchedFIFO, cpu)
			got := doneLines(t, high, 1)["work:0"]
			if len(got) < 1 {
				t.Fatalf("high sender: no latency reported")
			}
			ns, _ := strconv.ParseInt(got[0], 10, 64)
			lat := time.Duration(ns)
			t.Logf("high sender's Send took %v", lat)
			if inherit {
				line := srv.Expect("boosted", 10*time.Second)
				t.Logf("server: %s ms of the low request's work left when raised", strings.Fields(line)[1])
				if max := workMS*time.Millisecond + inheritSlack; lat > max {
					t.Errorf("with inheritance the high sender waited %v, want at most the low request's work (%d ms) plus %v", lat, workMS, inheritSlack)
				}
			} else if min := hogMS*time.Millisecond - slack; lat < min {
				t.Errorf("without inheritance the high sender waited %v, want at least the hog's run (%d ms) less %v: was the server's thread not starved?", lat, hogMS, slack)
			}
			if err := hog.Wait(hogMS*time.Millisecond + 10*time.Second); err != nil {
				t.Errorf("hog: %v", err)
			}
			doneLines(t, low, 1)
		})
	}
}

// TestPriorityAllocs: carrying priorities costs no allocation. A Send
// from a Channel with WithPriorityInheritance (which reads its thread's
// priority and writes it in the lane) allocates nothing in steady state,
// and neither does a Serve loop with inheritance (which settles its
// thread on each request and answer) per request received and replied.
func TestPriorityAllocs(t *testing.T) {
	if wantTransport() != simpl.SHM {
		t.Skip("FIFO transport forced")
	}
	dir := simpltest.Dir(t)
	srv := simpltest.Start(t, "echo", env(dir), "ECHO")
	c := locate(t, attach(t, dir, "CLI", simpl.WithTransport(simpl.SHM), simpl.WithPriorityInheritance()), "ECHO")
	ctx := context.Background()
	req, reply := make([]byte, 64), make([]byte, 64)
	send := func() {
		if _, err := c.Send(ctx, req, reply); err != nil {
			t.Fatal(err)
		}
	}
	for range 100 {
		send()
	}
	if a := testing.AllocsPerRun(2000, send); a != 0 {
		t.Errorf("sender carrying its priority: %v allocations per round trip, want 0", a)
	}
	srv.Signal(syscall.SIGKILL)
	srv.Wait(5 * time.Second)
	reap(t, dir)

	rx := attach(t, dir, "RX", simpl.WithTransport(simpl.SHM), simpl.WithPriorityInheritance())
	pump := simpltest.Start(t, "pump", env(dir), "PUMP", "RX")
	sctx, cancel := context.WithCancel(simpltest.Context(t, time.Minute))
	defer cancel()
	const warm, runs = 100, 2000
	var before, after runtime.MemStats
	n := 0
	err := rx.Serve(sctx, func(m simpl.Message) {
		n++
		switch n {
		case warm:
			runtime.ReadMemStats(&before)
		case warm + runs:
			runtime.ReadMemStats(&after)
			cancel()
		}
		if err := m.Reply(m.Data()); err != nil {
			t.Error(err)
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Serve: %v", err)
	}
	if a := (after.Mallocs - before.Mallocs) / runs; a != 0 {
		t.Errorf("Serve with inheritance: %d allocations per request, want 0", a)
	}
	rx.Close()
	pump.Wait(10 * time.Second)
}

// TestPriorityOtherUser: a receiver believes the priority a sender
// carries only of its own user or root. A sender of another user (nobody,
// admitted by mode 0666) at nice 5 carries none as far as the receiver
// is concerned; a root sender's nice 5 is believed.
func TestPriorityOtherUser(t *testing.T) {
	needRoot(t)
	dir := simpltest.Dir(t)
	shareDir(t, dir)
	ctx := simpltest.Context(t, time.Minute)
	rx := attach(t, dir, "OTHER", simpl.WithTransport(simpl.SHM), simpl.WithPriorityInheritance(), simpl.WithPerm(0o666))
	for _, c := range []struct {
		cred    string
		uid     int
		carried bool
	}{{nobodyCred, 65534, false}, {rootCred, 0, true}} {
		snd := startPrio(t, dir, "prio-send", "OTHER", "as="+c.cred)
		snd.command(t, "%d 5 -1 x", simpl.SchedOther)
		m, err := rx.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		p, ok := m.Priority()
		cred, _ := m.Cred()
		if cred.UID != c.uid || ok != c.carried || ok && p != (simpl.Priority{Policy: simpl.SchedOther, Level: 5}) {
			t.Errorf("sender uid %d at nice 5: Priority %+v, %v; want carried %v", cred.UID, p, ok, c.carried)
		}
		if err := m.Reply([]byte("r")); err != nil {
			t.Fatal(err)
		}
		doneLines(t, snd, 1)
	}
}

// TestServeNoPrivilege: a receiver without CAP_SYS_NICE (nobody, with
// RLIMIT_NICE 0) cannot return to its own nice 0 from a higher nice, so
// it does not follow its senders down: a nice-10 sender is served at nice
// 0. A nice -5 sender (root, but without CAP_SYS_NICE on its sending
// thread, so that it cannot raise the receiver's thread either) asks for
// a raise the kernel refuses: that request is served at nice 0, the
// refusal is counted once (PriorityFailures), and Serve goes on serving
// and ends cleanly at EOF. (A receiver that may come back follows a
// sender down: TestServeInheritance, as root; the probe itself is checked
// by internal/sys TestMayReturnTo.)
func TestServeNoPrivilege(t *testing.T) {
	needRoot(t)
	prio := func(snd *prioProc, level int, data string) []string {
		t.Helper()
		snd.command(t, "%d %d -1 %s", simpl.SchedOther, level, data)
		got := doneLines(t, snd, 1)[data]
		if len(got) < 2 {
			t.Fatalf("%s: reply %q", data, got)
		}
		return got[1:]
	}
	nice0 := []string{fmt.Sprint(simpl.SchedOther), "0"}
	dir := simpltest.Dir(t)
	shareDir(t, dir)
	srv := startPrio(t, dir, "prio-serve", "NOPRIV", "1", "-1", "nicelim=0", "as="+nobodyCred)
	low := startPrio(t, dir, "prio-send", "NOPRIV", "as="+nobodyCred)
	if got := prio(low, 10, "prio"); !slices.Equal(got, nice0) {
		t.Errorf("nice-10 sender served at %v, want %v (not followed down)", got, nice0)
	}
	if got := prio(low, 10, "fails"); !slices.Equal(got, []string{"0"}) {
		t.Errorf("PriorityFailures %v before any raise, want 0", got)
	}
	high := startPrio(t, dir, "prio-send", "NOPRIV", "nocap")
	if got := prio(high, -5, "prio"); !slices.Equal(got, nice0) {
		t.Errorf("nice -5 sender, raise refused: served at %v, want %v", got, nice0)
	}
	if got := prio(low, 10, "fails"); !slices.Equal(got, []string{"1"}) {
		t.Errorf("PriorityFailures %v after one refused raise, want 1", got)
	}
	if got := prio(low, 10, "prio"); !slices.Equal(got, nice0) {
		t.Errorf("Serve after the refusal: nice-10 sender served at %v, want %v", got, nice0)
	}
	srv.in.Close()
	if err := srv.Wait(20 * time.Second); err != nil {
		t.Errorf("Serve: %v, want it to end cleanly at EOF", err)
	}
}

// dropSysNice removes CAP_SYS_NICE from the calling thread's effective
// capabilities (capabilities are per thread in the kernel).
func dropSysNice() error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return err
	}
	data[unix.CAP_SYS_NICE/32].Effective &^= 1 << (unix.CAP_SYS_NICE % 32)
	return unix.Capset(&hdr, &data[0])
}
