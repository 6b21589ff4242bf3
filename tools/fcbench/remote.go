package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gosimpl/gosimpl/internal/netwire"
	"github.com/nats-io/nats.go"
)

// rawSubject is where fcbench -serve-nats answers: under the subjects a
// gateway's embedded server lets any client use for itself.
const rawSubject = netwire.RawPrefix + "fcbench"

// sendFunc makes one round trip.
type sendFunc func(ctx context.Context, req, reply []byte) error

// natsConnect connects to a NATS server for raw request/reply, taking
// answers under RawPrefix (what an embedded server lets a program of its
// host subscribe to).
func natsConnect(url string) (*nats.Conn, error) {
	nc, err := nats.Connect(url, nats.Name("fcbench"), nats.CustomInboxPrefix(netwire.RawPrefix+"inbox"), nats.Timeout(5*time.Second))
	if err != nil {
		return nil, fmt.Errorf("NATS at %s: %w", url, err)
	}
	return nc, nil
}

// rawSender is a NATS request/reply round trip on nc (shared by every
// sender, as a gateway's connection is), checking that the echo is the
// request.
func rawSender(nc *nats.Conn) sendFunc {
	return func(_ context.Context, req, reply []byte) error {
		m, err := nc.Request(rawSubject, req, rawTimeout)
		if err != nil {
			return fmt.Errorf("NATS request: %w", err)
		}
		if !bytes.Equal(m.Data, req) {
			return fmt.Errorf("NATS reply of %d bytes is not the request's %d", len(m.Data), len(req))
		}
		copy(reply, m.Data)
		return nil
	}
}

// rawTimeout bounds one raw NATS round trip.
const rawTimeout = 10 * time.Second

// serveRaw echoes every request on rawSubject until SIGTERM.
func serveRaw(url string, stdout io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	nc, err := natsConnect(url)
	if err != nil {
		return err
	}
	defer nc.Close()
	sub, err := nc.Subscribe(rawSubject, func(m *nats.Msg) { m.Respond(m.Data) })
	if err != nil {
		return err
	}
	sub.SetPendingLimits(-1, -1)
	if err := nc.Flush(); err != nil {
		return err
	}
	if err := nc.LastError(); err != nil {
		return fmt.Errorf("NATS at %s: %w", url, err)
	}
	fmt.Fprintln(stdout, "ready")
	<-ctx.Done()
	return nil
}

// measureRemote runs one -remote or -nats configuration: the sender
// process only (the receiver runs on the other host), with the host's
// FIFO_PATH. CPU is the whole machine's over the run.
func measureRemote(ctx context.Context, self string, c config, progress time.Duration) (result, error) {
	rep, err := runSender(ctx, self, os.Environ(), c, progress)
	if err != nil {
		return result{}, err
	}
	r := rep.result
	msgs := float64(c.N * c.Senders)
	r.CPUUSPerMsg = float64(rep.MachineCPUNS) / msgs / 1e3
	if rep.ElapsedNS > 0 {
		r.CPUPct = 100 * float64(rep.MachineCPUNS) / float64(rep.ElapsedNS)
	}
	return r, nil
}

// machineCPU is the CPU time every CPU of the machine has spent busy
// (not idle or waiting for I/O) since boot, from /proc/stat.
func machineCPU() (time.Duration, error) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() {
		return 0, errors.New("/proc/stat: empty")
	}
	fields := strings.Fields(sc.Text())
	if len(fields) < 6 || fields[0] != "cpu" {
		return 0, fmt.Errorf("/proc/stat: first line %q", sc.Text())
	}
	var busy int64
	for i, f := range fields[1:] {
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		v, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/stat: %q: %w", f, err)
		}
		if i < 8 { // user nice system idle iowait irq softirq steal; guest is in user
			busy += v
		}
	}
	// USER_HZ is 100 on every Linux architecture Go supports.
	return time.Duration(busy) * 10 * time.Millisecond, nil
}
