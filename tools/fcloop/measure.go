package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/gosimpl/gosimpl/internal/sys"
	"github.com/gosimpl/gosimpl/tools/internal/cli"
)

// startDelay is how far ahead of now cycle 0's tick is set, so that
// every process has read its "go" and cyclictest has started.
const startDelay = 50 * time.Millisecond

// child is one process fcloop started.
type child struct {
	kind string
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  *bufio.Reader
	errb *lockedBuffer
	done chan struct{} // closed when Wait returned, after wait
	err  error         // Wait's, once done

	waiting bool // wait was called: done will close
	reaped  bool // kill reaped it
}

// lockedBuffer keeps a child's stderr for the error message.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() < 4096 {
		l.b.Write(p)
	}
	return len(p), nil
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(bytes.TrimSpace(l.b.Bytes()))
}

// group is every child of a run; kill ends and reaps them all.
type group struct {
	self string
	env  []string
	all  []*child
}

// start starts `fcloop -role kind args...` and waits for its "ready", or
// until ctx ends.
func (g *group) start(ctx context.Context, kind string, args ...string) (*child, error) {
	cmd := exec.Command(g.self, append([]string{"-role", kind}, args...)...)
	cmd.Env = g.env
	// Killed when the thread that started it exits, as well as by the
	// child's own PR_SET_PDEATHSIG (which also checks the parent still
	// lives); fcloop never ends the threads it starts children from.
	cmd.SysProcAttr = pdeath()
	ch := &child{kind: kind, cmd: cmd, errb: &lockedBuffer{}, done: make(chan struct{})}
	cmd.Stderr = ch.errb
	var err error
	if ch.in, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	ch.out = bufio.NewReader(out)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", kind, err)
	}
	g.all = append(g.all, ch)
	ready := make(chan error, 1)
	go func() {
		line, err := ch.out.ReadString('\n')
		if err == nil && line != "ready\n" {
			err = fmt.Errorf("said %q", line)
		}
		ready <- err
	}()
	select {
	case err = <-ready:
	case <-ctx.Done():
		g.kill()
		return nil, interrupted(ctx)
	case <-time.After(10 * time.Second):
		err = errors.New("not ready within 10s")
	}
	if err != nil {
		g.kill()
		return nil, ch.failure(err)
	}
	return ch, nil
}

// wait starts waiting for ch; its done closes when it exits. Its stdout
// must be read to the end first (cmd.Wait closes the pipe).
func (ch *child) wait() {
	ch.waiting = true
	go func() {
		ch.err = ch.cmd.Wait()
		close(ch.done)
	}()
}

func (ch *child) failure(err error) error {
	if s := ch.errb.String(); s != "" {
		return fmt.Errorf("%s: %v (%s)", ch.kind, err, s)
	}
	return fmt.Errorf("%s: %v", ch.kind, err)
}

// kill kills every child still running and reaps it. It may be called
// again: what is reaped stays reaped.
func (g *group) kill() {
	for _, ch := range g.all {
		ch.cmd.Process.Kill() // an exited child's error does not matter
	}
	for _, ch := range g.all {
		switch {
		case ch.waiting:
			<-ch.done
		case !ch.reaped:
			ch.in.Close()
			ch.cmd.Wait()
			ch.reaped = true
		}
	}
}

// interrupted is the error of a run a signal ended (ctx's end).
func interrupted(ctx context.Context) error {
	return fmt.Errorf("interrupted (%v)", context.Cause(ctx))
}

// measure runs the loop once, with the load and cyclictest. When ctx ends
// (SIGINT or SIGTERM) every wait ends at once, and the run with it: the
// deferred kill.
func measure(ctx context.Context, c config, kinds []string, ctPath string) (*report, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	// Its FIFO directory, named for this process: a later fcloop removes
	// it if this one is killed before it can.
	dir, err := cli.PrivateDir("fcloop")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	cfg, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	// The children, cyclictest too, inherit fcloop's CPUs.
	if err := sys.SetProcessAffinity(c.CPUs); err != nil {
		return nil, fmt.Errorf("-cpus: %w", err)
	}
	g := &group{self: self, env: append(os.Environ(), "FIFO_PATH="+dir, "FCLOOP_CONFIG="+string(cfg))}
	defer g.kill()

	act, err := g.start(ctx, "actuator")
	if err != nil {
		return nil, err
	}
	ctl, err := g.start(ctx, "controller")
	if err != nil {
		return nil, err
	}
	sen, err := g.start(ctx, "sensor")
	if err != nil {
		return nil, err
	}
	rep := &report{PeriodNS: c.PeriodNS, Cycles: c.Cycles, FIFO: c.FIFO, Runtime: c.Runtime, CPUs: c.CPUs, LoadCPUs: c.LoadCPUs, GC: c.GC, MLock: c.MLock, WorkNS: c.WorkNS, Sensor: "trigger", Load: []loadProc{}}
	if c.SendHop {
		rep.Sensor = "send"
	}
	rep.Overrun = "skip"
	if c.CatchUp {
		rep.Overrun = "catchup"
	}
	for _, k := range kinds {
		switch k {
		case "cpu":
			for _, cpu := range c.LoadCPUs {
				p, err := g.start(ctx, "cpu", strconv.Itoa(cpu))
				if err != nil {
					return nil, err
				}
				rep.Load = append(rep.Load, loadProc{Kind: k, PID: p.cmd.Process.Pid})
			}
		default:
			p, err := g.start(ctx, k)
			if err != nil {
				return nil, err
			}
			rep.Load = append(rep.Load, loadProc{Kind: k, PID: p.cmd.Process.Pid})
		}
	}
	var ct *cyclictestRun
	if ctPath != "" {
		if ct, err = startCyclictest(ctPath, dir, c); err != nil {
			return nil, err
		}
		defer ct.stop()
	}

	t0 := sys.MonoNow() + int64(startDelay)
	// The sensor and the actuator are waited for only once what they
	// write is read: Wait closes their stdout.
	ctl.wait()
	wake := make([]int64, c.Cycles)
	senRead := make(chan error, 1)
	go func() { senRead <- binary.Read(sen.out, binary.LittleEndian, wake) }()
	lat := make([]int64, c.Cycles)
	ctlAt := make([]int64, c.Cycles)
	drops := make([]int64, c.Cycles)
	var ham hammerStats
	read := make(chan error, 1)
	go func() {
		err := binary.Read(act.out, binary.LittleEndian, lat)
		if err == nil {
			err = binary.Read(act.out, binary.LittleEndian, ctlAt)
		}
		if err == nil {
			err = binary.Read(act.out, binary.LittleEndian, drops)
		}
		if err == nil {
			err = binary.Read(act.out, binary.LittleEndian, &ham)
		}
		read <- err
	}()
	for _, ch := range []*child{ctl, sen} {
		if _, err := fmt.Fprintf(ch.in, "go %d\n", t0); err != nil {
			return nil, ch.failure(err)
		}
	}
	// The sensor ends after the last tick; then the actuator has the last
	// cycle or, a second later, is told to give what it has.
	runFor := time.Duration(c.Cycles)*time.Duration(c.PeriodNS) + startDelay
	var readErr, senErr error
	readDone := false
	select {
	case senErr = <-senRead:
	case <-ctl.done:
		return nil, ctl.failure(fmt.Errorf("exited during the run: %v", ctl.err))
	case readErr = <-read:
		readDone = true
		if readErr != nil {
			return nil, act.failure(fmt.Errorf("during the run: %w", readErr))
		}
		select {
		case senErr = <-senRead:
		case <-ctx.Done():
			return nil, interrupted(ctx)
		case <-time.After(10 * time.Second):
			return nil, sen.failure(errors.New("still running 10s after the last cycle arrived"))
		}
	case <-ctx.Done():
		return nil, interrupted(ctx)
	case <-time.After(runFor + 30*time.Second):
		return nil, sen.failure(fmt.Errorf("still running %v after the last tick", 30*time.Second))
	}
	sen.wait()
	select {
	case <-sen.done:
	case <-ctx.Done():
		return nil, interrupted(ctx)
	case <-time.After(10 * time.Second):
		return nil, sen.failure(errors.New("did not exit within 10s of its last tick"))
	}
	if sen.err != nil {
		return nil, sen.failure(sen.err)
	}
	if senErr != nil {
		return nil, sen.failure(fmt.Errorf("reading its wake-ups: %w", senErr))
	}
	if !readDone {
		select {
		case readErr = <-read:
		case <-ctx.Done():
			return nil, interrupted(ctx)
		case <-time.After(time.Second):
			act.in.Close() // lost cycles: take what arrived
			select {
			case readErr = <-read:
			case <-ctx.Done():
				return nil, interrupted(ctx)
			case <-time.After(10 * time.Second):
				readErr = errors.New("no latencies within 10s of being asked")
			}
		}
	}
	if readErr != nil {
		return nil, act.failure(fmt.Errorf("reading its latencies: %w", readErr))
	}
	act.wait()
	ctl.in.Close()
	act.in.Close()
	for _, ch := range []*child{act, ctl} {
		select {
		case <-ch.done:
			if ch.err != nil {
				return nil, ch.failure(ch.err)
			}
		case <-ctx.Done():
			return nil, interrupted(ctx)
		case <-time.After(10 * time.Second):
			return nil, ch.failure(errors.New("did not exit within 10s of the end"))
		}
	}
	rep.addLoop(wake, ctlAt, lat, drops)
	if slices.ContainsFunc(rep.Load, func(l loadProc) bool { return l.Kind == "hammer" }) {
		rep.Hammer = &ham
	}
	if ct != nil {
		st, err := ct.wait(ctx, runFor+30*time.Second)
		if err != nil {
			return nil, err
		}
		rep.addCyclictest(st)
	}
	return rep, nil
}

// pdeath makes the kernel kill a child when the thread that started it
// exits (PR_SET_PDEATHSIG).
func pdeath() *syscall.SysProcAttr { return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} }
