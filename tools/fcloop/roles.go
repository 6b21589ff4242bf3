package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gosimpl/gosimpl/internal/pace"
	"github.com/gosimpl/gosimpl/internal/sys"
	"github.com/gosimpl/gosimpl/simpl"
)

// The loop's names, in the run's own FIFO directory.
const (
	controllerName = "FCLOOP_CTL"
	actuatorName   = "FCLOOP_ACT"
)

// commandSize is a controller's command: the cycle, its tick, when the
// controller's handler had it (CLOCK_MONOTONIC) and how many older
// triggers the controller dropped for it (-overrun skip), four
// little-endian 64-bit words. The hammer sends hammerSize bytes, which
// the actuator answers without recording.
const (
	commandSize = 32
	hammerSize  = 40
)

// skippedNS marks, in the sensor's wake-ups, a tick it skipped: it woke
// for an earlier one after this one was due.
const skippedNS = -2

// runRole runs one child process. Every child first asks the kernel to
// kill it when fcloop's thread that started it exits (PR_SET_PDEATHSIG),
// and checks that fcloop had not exited already.
func runRole(role string, c config, args []string, stdout io.Writer) error {
	if err := sys.SetPdeathsig(syscall.SIGKILL, c.Parent); err != nil {
		return err
	}
	if c.Runtime > 0 && (role == "sensor" || role == "controller" || role == "actuator") {
		// Before anything else starts threads: the runtime's threads at
		// c.Runtime (docs/realtime.md, "The runtime's threads").
		if err := simpl.SetProcessPriority(simpl.Priority{Policy: simpl.SchedFIFO, Level: c.Runtime}); err != nil {
			return err
		}
	}
	switch role {
	case "sensor":
		return sensor(c, stdout)
	case "controller":
		return controller(c, stdout)
	case "actuator":
		return actuator(c, stdout)
	case "cpu":
		cpu, err := strconv.Atoi(strings.Join(args, ""))
		if err != nil {
			return fmt.Errorf("-role cpu: CPU %q", args)
		}
		return hog(cpu, stdout)
	case "mem", "hammer":
		// On -load-cpus (fcloop's children start on -cpus).
		if err := sys.SetProcessAffinity(c.LoadCPUs); err != nil {
			return fmt.Errorf("-load-cpus: %w", err)
		}
		if role == "mem" {
			return churn(stdout)
		}
		return hammer(stdout)
	}
	return fmt.Errorf("-role %q: internal flag", role)
}

// loopThread prepares the calling goroutine's thread for the loop: locked
// to it (for good: the process ends with it), at SCHED_FIFO c.FIFO if set,
// and the process's memory locked with -mlock.
func loopThread(c config) error {
	runtime.LockOSThread()
	if c.FIFO > 0 {
		if err := sys.SetSched(0, sys.Sched{Policy: sys.SchedFIFO, Level: c.FIFO}); err != nil {
			return fmt.Errorf("SCHED_FIFO %d: %w", c.FIFO, err)
		}
	}
	if c.MLock {
		if err := simpl.LockMemory(); err != nil {
			return err
		}
	}
	return nil
}

// loopOptions are the Attach options of the loop's processes: shared
// memory, and with -fifo priority inheritance and priority order.
func loopOptions(c config) []simpl.Option {
	opts := []simpl.Option{simpl.WithTransport(simpl.SHM)}
	if c.FIFO > 0 {
		opts = append(opts, simpl.WithPriorityInheritance(), simpl.WithPriorityOrder())
	}
	return opts
}

// readStart reads the parent's "go T0" line: T0 is cycle 0's tick.
func readStart(in *bufio.Reader) (int64, error) {
	line, err := in.ReadString('\n')
	if err != nil {
		return 0, fmt.Errorf("waiting for go: %w", err)
	}
	f := strings.Fields(line)
	if len(f) != 2 || f[0] != "go" {
		return 0, fmt.Errorf("want go T0, got %q", line)
	}
	return strconv.ParseInt(f[1], 10, 64)
}

// closeOnEOF closes ch when stdin ends: the parent's way of stopping a
// child.
func closeOnEOF(in *bufio.Reader, ch *simpl.Channel) {
	io.Copy(io.Discard, in)
	ch.Close()
}

// sensor wakes at every tick and triggers the controller with proxy k+1
// for cycle k (with -sensor send, Sends it k). A sensor that wakes after
// the next tick was due skips the ticks it overslept, as cyclictest does:
// it sleeps to the first tick still ahead (with -overrun catchup it runs
// every cycle, late). When the last tick is done it writes, after its
// "ready" line, each cycle's wake-up, c.Cycles little-endian 64-bit
// nanoseconds after the tick (skippedNS: skipped), and exits.
func sensor(c config, stdout io.Writer) error {
	wake := make([]int64, c.Cycles)
	for i := range wake {
		wake[i] = skippedNS // writes every page: pre-faulted
	}
	ch, err := simpl.Attach("", loopOptions(c)...)
	if err != nil {
		return err
	}
	defer ch.Close()
	ctl, err := ch.Locate(context.Background(), controllerName)
	if err != nil {
		return err
	}
	if err := loopThread(c); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "ready")
	t0, err := readStart(bufio.NewReader(os.Stdin))
	if err != nil {
		return err
	}
	var req [8]byte
	var reply [8]byte
	var p pace.Pacer // as the receive queue paces a sleeping Receive: see package pace
	for k := 0; k < c.Cycles; {
		p.KeepP()
		tick := t0 + int64(k)*c.PeriodNS
		if err := sys.SleepUntil(tick); err != nil {
			return fmt.Errorf("cycle %d: sleep: %w", k, err)
		}
		woke := sys.MonoNow()
		wake[k] = max(woke-tick, 0)
		if c.SendHop {
			binary.LittleEndian.PutUint64(req[:], uint64(k))
			if _, err := ctl.Send(context.Background(), req[:], reply[:]); err != nil {
				return fmt.Errorf("cycle %d: send: %w", k, err)
			}
		} else if err := ctl.Trigger(k + 1); err != nil && !errors.Is(err, simpl.ErrTooLarge) {
			// ErrTooLarge: the controller has not read its last 2,048
			// triggers (a stall of seconds). That cycle is lost, and
			// counted so; the run goes on.
			return fmt.Errorf("cycle %d: trigger: %w", k, err)
		}
		if c.CatchUp {
			k++
		} else {
			k = nextTick(t0, c.PeriodNS, k, woke)
		}
	}
	w := bufio.NewWriter(stdout)
	if err := binary.Write(w, binary.LittleEndian, wake); err != nil {
		return err
	}
	return w.Flush()
}

// nextTick is the cycle after cycle k whose sensor woke at woke: k+1, or,
// if the sensor woke after that cycle's tick, the first whose tick is
// still ahead of the wake-up (cyclictest's rule: it skips a tick earlier
// than the wake-up, not one equal to it).
func nextTick(t0, period int64, k int, woke int64) int {
	next := k + 1
	if woke-t0 > int64(next)*period {
		next = int((woke-t0-1)/period) + 1
	}
	return next
}

// controller serves the sensor's triggers (or Sends, answered at once):
// for each, it works -work and sends the actuator the cycle's command. A
// trigger it has after the next cycle's tick (it fell behind, or the
// sensor woke late) may have newer ones queued behind it: with -overrun
// skip it takes those at once (a Receive whose context has ended takes
// only what waits) and acts on the newest, dropping the older ones, as a
// loop that has fallen behind acts on its freshest reading; the command
// says how many it dropped. It ends when stdin does.
func controller(c config, stdout io.Writer) error {
	ch, err := simpl.Attach(controllerName, loopOptions(c)...)
	if err != nil {
		return err
	}
	defer ch.Close()
	act, err := ch.Locate(context.Background(), actuatorName)
	if err != nil {
		return err
	}
	if err := loopThread(c); err != nil {
		return err
	}
	var req [commandSize]byte
	var reply [8]byte
	if c.MLock {
		simpl.Prefault(req[:])
	}
	stopGC := func() {}
	if c.GC {
		stopGC = garbage()
	}
	defer stopGC()
	fmt.Fprintln(stdout, "ready")
	in := bufio.NewReader(os.Stdin)
	t0, err := readStart(in)
	if err != nil {
		return err
	}
	go closeOnEOF(in, ch)
	// ended is a context that has ended: a Receive with it takes a
	// message already waiting and never waits for one.
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	dropTriggers := !c.CatchUp && !c.SendHop
	var sendErr error
	err = ch.Serve(context.Background(), func(m simpl.Message) {
		now := sys.MonoNow()
		k := m.Proxy() - 1
		if d := m.Data(); k < 0 && len(d) == 8 {
			// -sensor send: free the sensor at once, as a trigger would.
			k = int(binary.LittleEndian.Uint64(d))
			m.ReplyInPlace(0)
		}
		if k < 0 || k >= c.Cycles {
			if m.Proxy() == 0 {
				m.ReplyError()
			}
			return
		}
		dropped := 0
		if dropTriggers && now-t0 >= int64(k+1)*c.PeriodNS {
			k, dropped = newestTrigger(ch, ended, k, c.Cycles)
			now = sys.MonoNow()
		}
		tick := t0 + int64(k)*c.PeriodNS
		binary.LittleEndian.PutUint64(req[16:], uint64(now))
		if c.WorkNS > 0 {
			for end := sys.MonoNow() + c.WorkNS; sys.MonoNow() < end; {
			}
		}
		binary.LittleEndian.PutUint64(req[0:], uint64(k))
		binary.LittleEndian.PutUint64(req[8:], uint64(tick))
		binary.LittleEndian.PutUint64(req[24:], uint64(dropped))
		if _, err := act.Send(context.Background(), req[:], reply[:]); err != nil && sendErr == nil {
			sendErr = fmt.Errorf("cycle %d: send to the actuator: %w", k, err)
		}
	})
	if sendErr != nil {
		return sendErr
	}
	if errors.Is(err, simpl.ErrClosed) {
		return nil
	}
	return err
}

// newestTrigger takes the triggers waiting behind cycle k's, without
// waiting for any (ended has ended), and returns the newest cycle among
// them and how many older ones it dropped. Anything else waiting is
// refused, as the controller refuses it.
func newestTrigger(ch *simpl.Channel, ended context.Context, k, cycles int) (newest, dropped int) {
	for {
		m, err := ch.Receive(ended)
		if err != nil {
			return k, dropped
		}
		j := m.Proxy() - 1
		if j < 0 || j >= cycles {
			if m.Proxy() == 0 {
				m.ReplyError()
			}
			continue
		}
		dropped++
		k = max(k, j)
	}
}

// garbage starts the -gc goroutine: 256 KiB allocated every millisecond,
// the last 16 kept (4 MiB live), so that the collector runs every few
// tens of milliseconds. The function it returns stops it.
func garbage() func() {
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		var keep [16][]byte
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			b := make([]byte, 256<<10)
			b[0], b[len(b)-1] = byte(i), byte(i)
			keep[i%len(keep)] = b
		}
	}()
	return func() { close(stop); <-done }
}

// actuator records each command's latency, in its handler, against the
// tick it carries, when the controller's handler had it, and how many
// older triggers the controller dropped for it, and replies. When it has
// the last cycle's (commands arrive in order; the sensor may have skipped
// some before it, the controller dropped some), or stdin ends, it writes
// them to stdout after its "ready" line: c.Cycles little-endian 64-bit
// nanoseconds after the tick for its own receipt, then c.Cycles for the
// controller's, -1 for a cycle that never arrived, then c.Cycles counts
// of dropped triggers, then the hammer's figures.
func actuator(c config, stdout io.Writer) error {
	lat := make([]int64, c.Cycles)
	ctlAt := make([]int64, c.Cycles)
	drops := make([]int64, c.Cycles)
	for i := range lat {
		lat[i], ctlAt[i], drops[i] = -1, -1, 0 // writes every page: pre-faulted
	}
	ch, err := simpl.Attach(actuatorName, append(loopOptions(c), simpl.WithPerm(0o600))...)
	if err != nil {
		return err
	}
	defer ch.Close()
	if err := loopThread(c); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "ready")
	in := bufio.NewReader(os.Stdin)
	go closeOnEOF(in, ch)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got, last := 0, false
	var ham hammerStats
	err = ch.Serve(ctx, func(m simpl.Message) {
		now := sys.MonoNow()
		d := m.Data()
		switch len(d) {
		case commandSize:
			k := binary.LittleEndian.Uint64(d[0:])
			tick := int64(binary.LittleEndian.Uint64(d[8:]))
			at := int64(binary.LittleEndian.Uint64(d[16:]))
			if k < uint64(len(lat)) && lat[k] < 0 {
				lat[k] = max(now-tick, 0)
				ctlAt[k] = max(at-tick, 0)
				drops[k] = int64(binary.LittleEndian.Uint64(d[24:]))
				got++
				last = k == uint64(len(lat)-1)
			}
		case hammerSize:
			ham.Served++
			if s, err := sys.GetSched(0); err == nil && c.FIFO > 0 && !(s.Policy == sys.SchedFIFO && s.Level >= c.FIFO) {
				ham.Below++
			}
		}
		m.ReplyInPlace(0)
		if got == len(lat) || last {
			cancel() // Serve returns at its next Receive
		}
	})
	if err != nil && !errors.Is(err, simpl.ErrClosed) && !errors.Is(err, context.Canceled) {
		return err
	}
	ch.Close()
	w := bufio.NewWriter(stdout)
	var b [8]byte
	for _, s := range [][]int64{lat, ctlAt, drops} {
		for _, l := range s {
			binary.LittleEndian.PutUint64(b[:], uint64(l))
			w.Write(b[:])
		}
	}
	binary.Write(w, binary.LittleEndian, ham)
	return w.Flush()
}

// hammerStats is what the actuator tells of the hammer's requests, after
// the latencies: how many it served, and how many of those with its
// thread below the loop's SCHED_FIFO level (inherited from the hammer;
// the rest were served while the controller waited, raised for it).
type hammerStats struct {
	Served uint64 `json:"served"`
	Below  uint64 `json:"below_loop"`
}

// hog spins on cpu until it is killed.
func hog(cpu int, stdout io.Writer) error {
	runtime.LockOSThread()
	if err := sys.PinThread(cpu); err != nil {
		return fmt.Errorf("pin to CPU %d: %w", cpu, err)
	}
	fmt.Fprintln(stdout, "ready")
	for {
	}
}

// churn maps 64 MiB, writes every page, and hands it back to the kernel,
// over and over, until it is killed: page faults, zeroing and memory
// traffic next to the loop.
func churn(stdout io.Writer) error {
	fmt.Fprintln(stdout, "ready")
	page := os.Getpagesize()
	for {
		b := make([]byte, 64<<20)
		for i := 0; i < len(b); i += page {
			b[i] = 1
		}
		b = nil
		debug.FreeOSMemory() // collect it and return its pages
	}
}

// hammer Sends to the actuator as fast as it answers, at its own
// (SCHED_OTHER) priority, until it is killed or the actuator goes. Its
// requests carry that priority (WithPriorityInheritance), as every
// sender's should in a system that uses inheritance: the actuator's
// thread then serves them at SCHED_OTHER, below the loop and below
// cyclictest, and is raised only while the controller waits. (A request
// that carries no priority is served at the serving thread's own, the
// loop's: the hammer would then hold a CPU at the loop's priority.)
func hammer(stdout io.Writer) error {
	ch, err := simpl.Attach("", simpl.WithTransport(simpl.SHM), simpl.WithPriorityInheritance())
	if err != nil {
		return err
	}
	defer ch.Close()
	act, err := ch.Locate(context.Background(), actuatorName)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, "ready")
	var req [hammerSize]byte
	var reply [8]byte
	for {
		if _, err := act.Send(context.Background(), req[:], reply[:]); err != nil {
			return nil // the actuator is gone: the run is over
		}
	}
}
