package simpl_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/internal/pace"
	"github.com/gosimpl/gosimpl/internal/sys"
	"github.com/gosimpl/gosimpl/simpl"
	"github.com/gosimpl/gosimpl/simpl/simpltest"
)

func init() { threadRxRoles["paced"] = rolePaced }

// Requests to rolePaced: opCount gets the server process's voluntary
// context switches so far (8 bytes); opQuit ends its Serve.
const (
	opCount = 'C'
	opQuit  = 'Q'
)

// rolePaced NAME HOW TRANSPORT: with two Ps (as on this 2-CPU machine,
// and whatever the machine), receive on NAME through TRANSPORT (shm or
// fifo), never spinning, until an opQuit: HOW is serve (Serve), locked (a
// Receive loop on a goroutine locked to its thread) or loop (a Receive
// loop).
// Its environment may turn pacing off (pace.Env).
func rolePaced(args []string) error {
	runtime.GOMAXPROCS(2)
	ch, err := simpl.Attach(args[0], simpl.WithTransport(args[2]), simpl.WithSpin(false))
	if err != nil {
		return err
	}
	defer ch.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	simpltest.Ready()
	handle := func(m simpl.Message) {
		var out [8]byte
		if d := m.Data(); len(d) > 0 {
			switch d[0] {
			case opCount:
				n, err := sys.VoluntarySwitches(os.Getpid())
				if err != nil {
					m.ReplyError()
					return
				}
				binary.LittleEndian.PutUint64(out[:], uint64(n))
				m.Reply(out[:])
				return
			case opQuit:
				cancel()
			}
		}
		m.Reply(nil)
	}
	switch args[1] {
	case "serve":
		err = ch.Serve(ctx, handle)
	case "locked", "loop":
		if args[1] == "locked" {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
		}
		for err == nil {
			var m simpl.Message
			if m, err = ch.Receive(ctx); err == nil {
				handle(m)
			}
		}
	default:
		return fmt.Errorf("paced: %q is not serve, locked or loop", args[1])
	}
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// TestReceiveKeepsP: a receiver whose requests come a millisecond apart
// (a control loop's) sleeps between them without Go's runtime taking its
// processor at every sleep, which costs its process about two more
// thread wake-ups a request (package pace; the receive queue paces the
// sleeping Receive). The test counts the receiving process's voluntary
// context switches a request, with the pacer and without it, in one run,
// and wants the pacer's at most 70% of the other's: about 1.5 against
// 3.2–3.6 on the 2-core VM of docs/benchmarks.md. Serve, and Receive
// loops on a locked goroutine and on any goroutine, through shared
// memory and through FIFOs alike. Counts, not times, decide it.
func TestReceiveKeepsP(t *testing.T) {
	for _, how := range []string{"serve", "locked", "loop"} {
		for _, tr := range []string{simpl.SHM, simpl.FIFO} {
			t.Run(how+"/"+tr, func(t *testing.T) { testKeepsP(t, how, tr) })
		}
	}
}

func testKeepsP(t *testing.T, how, tr string) {
	const (
		warm = 30  // past the runtime's first 10 ms, after which it takes Ps
		n    = 200 // requests counted
		gap  = time.Millisecond
	)
	dir := simpltest.Dir(t)
	cli := attach(t, dir, "PACECLI", simpl.WithTransport(tr), simpl.WithSpin(false))
	perRequest := map[string]float64{}
	for _, mode := range []string{"on", "off"} {
		name := "PACED" + mode
		srv := simpltest.Start(t, "paced", append(env(dir), pace.Env+"="+mode), name, how, tr)
		to := locate(t, cli, name)
		ctx := simpltest.Context(t, simpltest.Scale(time.Minute))
		var reply [8]byte
		count := func() int64 {
			t.Helper()
			if n, err := to.Send(ctx, []byte{opCount}, reply[:]); err != nil || n != 8 {
				t.Fatalf("%s: count: %d bytes, %v", mode, n, err)
			}
			return int64(binary.LittleEndian.Uint64(reply[:]))
		}
		var c0 int64
		for i := range warm + n {
			if i == warm {
				c0 = count()
			}
			// The pacing is the workload: the server sleeps between
			// requests, as a control loop's does between cycles.
			time.Sleep(gap)
			if _, err := to.Send(ctx, []byte{opEcho}, reply[:]); err != nil {
				t.Fatalf("%s: request %d: %v", mode, i, err)
			}
		}
		perRequest[mode] = float64(count()-c0) / n
		if _, err := to.Send(ctx, []byte{opQuit}, reply[:]); err != nil {
			t.Fatalf("%s: quit: %v", mode, err)
		}
		if err := srv.Wait(simpltest.Scale(10 * time.Second)); err != nil {
			t.Fatalf("%s: server: %v", mode, err)
		}
	}
	t.Logf("voluntary context switches a request: %.2f with the pacer, %.2f without", perRequest["on"], perRequest["off"])
	if on, off := perRequest["on"], perRequest["off"]; on > 0.7*off {
		t.Errorf("with the pacer %.2f context switches a request, without %.2f: want at most 70%% of it", on, off)
	}
}
