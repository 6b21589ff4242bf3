package qnx_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/naming"
	"github.com/gosimpl/gosimpl/simpl/qnx"
	"github.com/gosimpl/gosimpl/simpl/simpltest"
)

func TestMain(m *testing.M) {
	simpltest.Main(m, map[string]simpltest.Role{
		"client":     roleClient,
		"named":      roleNamed,
		"echo":       roleEcho,
		"nameserver": roleNameServer,
		"sink":       roleSink,
	}, simpltest.WithLifetime(60*time.Second))
}

// pattern is n bytes that differ with n and position.
func pattern(n, seed int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>8 + seed)
	}
	return b
}

// roleClient PID CHID STEP...: connect to channel CHID of PID and run the
// steps in order, printing one line for each:
//
//	send:TEXT              MsgSend TEXT with a 64-byte reply buffer:
//	                       "reply STATUS TEXT" or "err ERRNO"
//	pulse:CODE:VALUE       MsgSendPulse: "pulsed"
//	big                    send 1 MiB of pattern(1<<20, 1) with a 1 MiB
//	                       reply buffer; "big ok" when the reply is
//	                       pattern(1<<20, 2) and the status 9
//	timeout:MS:FLAGS:TEXT  TimerTimeout(MS, FLAGS) then send:TEXT
//	event:CODE:VALUE       create a channel, send "E"+event for a pulse to
//	                       it, then receive: "event CODE VALUE"
//	events:CODE:VALUE:N    the same, then send "after", then receive N
//	                       pulses: "event CODE VALUE" each
//	sendv:A:B              MsgSendv of parts A and B into a 4- and an
//	                       8-byte part: "replyv STATUS P1|P2"
//	eventsink              create a channel, send "E"+event for a pulse
//	                       to it (code 1, value 0), print "waiting",
//	                       and on SIGUSR1 receive until killed: "pulse
//	                       VALUE" for each
//	fill:N:TEXT            MsgSend TEXT with an N-byte reply buffer full
//	                       of '.': "filled STATUS %q" of the buffer
//	fillv:N:TEXT           the same with MsgSendv, the buffer in two
//	                       halves
//	detach                 ConnectDetach: "detached"
//	shutdown:MS            "shutting down", then qnx.Shutdown within MS ms:
//	                       "shutdown ERR"
//	waitsig                print "waiting", then wait for SIGUSR1
//	reattach               ConnectAttach to the channel again, for the
//	                       steps after: "reattached" or "err ERRNO"
//	pump                   MsgSend 64 bytes until a MsgSend fails
//	hang                   print "hanging" and block until killed
func roleClient(args []string) error {
	pid, _ := strconv.Atoi(args[0])
	chid, _ := strconv.Atoi(args[1])
	coid, err := qnx.ConnectAttach(0, pid, chid, qnx.NTO_SIDE_CHANNEL, 0)
	if err != nil {
		return fmt.Errorf("ConnectAttach: %w", err)
	}
	simpltest.Ready()
	ctx := context.Background()
	defer shutdown()
	for _, step := range args[2:] {
		f := strings.Split(step, ":")
		switch f[0] {
		case "send":
			reply := make([]byte, 64)
			st, err := qnx.MsgSend(ctx, coid, []byte(f[1]), reply)
			printSend(st, reply, err)
		case "timeout":
			ms, _ := strconv.Atoi(f[1])
			flags, _ := strconv.Atoi(f[2])
			runtime.LockOSThread()
			ns := uint64(ms) * 1e6
			if _, err := qnx.TimerTimeout(qnx.CLOCK_MONOTONIC, flags, nil, &ns, nil); err != nil {
				return err
			}
			reply := make([]byte, 64)
			st, err := qnx.MsgSend(ctx, coid, []byte(f[3]), reply)
			runtime.UnlockOSThread()
			printSend(st, reply, err)
		case "pulse":
			code, _ := strconv.Atoi(f[1])
			v, _ := strconv.Atoi(f[2])
			if err := qnx.MsgSendPulse(coid, -1, code, v); err != nil {
				return err
			}
			fmt.Println("pulsed")
		case "big":
			reply := make([]byte, 1<<20)
			st, err := qnx.MsgSend(ctx, coid, pattern(1<<20, 1), reply)
			if err != nil || st != 9 || !bytes.Equal(reply, pattern(1<<20, 2)) {
				return fmt.Errorf("big: status %d, %v", st, err)
			}
			fmt.Println("big ok")
		case "event":
			if err := clientEvent(ctx, coid, f[1], f[2], 0); err != nil {
				return err
			}
		case "events":
			n, _ := strconv.Atoi(f[3])
			if err := clientEvent(ctx, coid, f[1], f[2], n); err != nil {
				return err
			}
		case "sendv":
			r1, r2 := make([]byte, 4), make([]byte, 8)
			st, err := qnx.MsgSendv(ctx, coid, [][]byte{[]byte(f[1]), []byte(f[2])}, [][]byte{r1, r2})
			if err != nil {
				printSend(st, nil, err)
			} else {
				fmt.Printf("replyv %d %s|%s\n", st, bytes.TrimRight(r1, "\x00"), bytes.TrimRight(r2, "\x00"))
			}
		case "detach":
			if err := qnx.ConnectDetach(coid); err != nil {
				return err
			}
			fmt.Println("detached")
		case "waitsig":
			sig := make(chan os.Signal, 1)
			signal.Notify(sig, syscall.SIGUSR1)
			fmt.Println("waiting")
			<-sig
			signal.Stop(sig)
		case "shutdown":
			ms, _ := strconv.Atoi(f[1])
			sctx, cancel := context.WithTimeout(ctx, time.Duration(ms)*time.Millisecond)
			fmt.Println("shutting down")
			fmt.Printf("shutdown %v\n", qnx.Shutdown(sctx))
			cancel()
		case "reattach":
			coid, err = qnx.ConnectAttach(0, pid, chid, qnx.NTO_SIDE_CHANNEL, 0)
			if err != nil {
				printSend(0, nil, err)
				return nil
			}
			fmt.Println("reattached")
		case "pump":
			req, reply := make([]byte, 64), make([]byte, 64)
			for {
				if _, err := qnx.MsgSend(ctx, coid, req, reply); err != nil {
					return nil
				}
			}
		case "fill", "fillv":
			n, _ := strconv.Atoi(f[1])
			reply := bytes.Repeat([]byte("."), n)
			var st int
			var err error
			if f[0] == "fill" {
				st, err = qnx.MsgSend(ctx, coid, []byte(f[2]), reply)
			} else {
				st, err = qnx.MsgSendv(ctx, coid, [][]byte{[]byte(f[2])}, [][]byte{reply[:n/2], reply[n/2:]})
			}
			if err != nil {
				printSend(st, nil, err)
			} else {
				fmt.Printf("filled %d %q\n", st, reply)
			}
		case "eventsink":
			if err := clientEventSink(ctx, coid); err != nil {
				return err
			}
		case "hang":
			fmt.Println("hanging")
			select {}
		}
	}
	return nil
}

// shutdown ends a helper's QNX objects before it exits.
func shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	qnx.Shutdown(ctx)
}

// printSend prints a MsgSend's outcome for roleClient.
func printSend(status int, reply []byte, err error) {
	if err != nil {
		var e syscall.Errno
		errors.As(err, &e)
		fmt.Printf("err %d\n", int(e))
		return
	}
	fmt.Printf("reply %d %s\n", status, bytes.TrimRight(reply, "\x00"))
}

// clientEvent is the MsgDeliverEvent pattern: the client's own channel
// and a side-channel connection to it, an event in the request, and the
// pulse the server delivers later.
func clientEvent(ctx context.Context, coid int, code, value string, after int) error {
	chid, err := qnx.ChannelCreate(0)
	if err != nil {
		return err
	}
	defer qnx.ChannelDestroy(chid)
	self, err := qnx.ConnectAttach(0, 0, chid, qnx.NTO_SIDE_CHANNEL, 0)
	if err != nil {
		return err
	}
	defer qnx.ConnectDetach(self)
	c, _ := strconv.Atoi(code)
	v, _ := strconv.Atoi(value)
	var ev qnx.SigEvent
	qnx.SigevPulseInit(&ev, self, 10, c, v)
	req := make([]byte, 1+qnx.EventSize)
	req[0] = 'E'
	qnx.EncodeEvent(req[1:], ev)
	if _, err := qnx.MsgSend(ctx, coid, req, nil); err != nil {
		return err
	}
	pulses := 1
	if after > 0 {
		// Another message, answered after the server delivered the
		// event that many times.
		if _, err := qnx.MsgSend(ctx, coid, []byte("after"), nil); err != nil {
			return err
		}
		pulses = after
	}
	buf := make([]byte, qnx.PulseSize)
	for range pulses {
		rcvid, err := qnx.MsgReceive(ctx, chid, buf, nil)
		if err != nil || rcvid != 0 {
			return fmt.Errorf("event receive: rcvid %d, %v", rcvid, err)
		}
		p, _ := qnx.DecodePulse(buf)
		fmt.Printf("event %d %d\n", p.Code, p.Value)
	}
	return nil
}

// clientEventSink is the "eventsink" step of roleClient.
func clientEventSink(ctx context.Context, coid int) error {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGUSR1)
	chid, err := qnx.ChannelCreate(0)
	if err != nil {
		return err
	}
	self, err := qnx.ConnectAttach(0, 0, chid, qnx.NTO_SIDE_CHANNEL, 0)
	if err != nil {
		return err
	}
	var ev qnx.SigEvent
	qnx.SigevPulseInit(&ev, self, 10, 1, 0)
	req := make([]byte, 1+qnx.EventSize)
	req[0] = 'E'
	qnx.EncodeEvent(req[1:], ev)
	if _, err := qnx.MsgSend(ctx, coid, req, nil); err != nil {
		return err
	}
	fmt.Println("waiting")
	<-sig
	buf := make([]byte, qnx.PulseSize)
	for {
		if _, err := qnx.MsgReceive(ctx, chid, buf, nil); err != nil {
			return err
		}
		p, _ := qnx.DecodePulse(buf)
		fmt.Printf("pulse %d\n", p.Value)
	}
}

// roleNamed NAME N: name_open NAME, send N messages "m<i>", name_close.
func roleNamed(args []string) error {
	simpltest.Ready()
	ctx := context.Background()
	defer shutdown()
	coid, err := qnx.NameOpen(ctx, args[0], 0)
	if err != nil {
		return fmt.Errorf("name_open: %w", err)
	}
	n, _ := strconv.Atoi(args[1])
	for i := range n {
		reply := make([]byte, 8)
		if _, err := qnx.MsgSend(ctx, coid, fmt.Appendf(nil, "m%d", i), reply); err != nil {
			return err
		}
	}
	if err := qnx.NameClose(coid); err != nil {
		return err
	}
	fmt.Println("closed")
	return nil
}

// setup gives the test its own FIFO directory, for this process and its
// helpers.
func setup(t *testing.T) []string {
	t.Helper()
	dir := simpltest.Dir(t)
	t.Setenv("FIFO_PATH", dir)
	// After the test's channels are destroyed: let this process's
	// disconnects finish and its sending name go.
	t.Cleanup(shutdown)
	return []string{"FIFO_PATH=" + dir}
}

// channel creates a channel destroyed when the test ends.
func channel(t *testing.T, flags int) int {
	t.Helper()
	chid, err := qnx.ChannelCreate(flags)
	if err != nil {
		t.Fatalf("ChannelCreate: %v", err)
	}
	t.Cleanup(func() { qnx.ChannelDestroy(chid) })
	return chid
}

func startClient(t *testing.T, env []string, chid int, steps ...string) *simpltest.Proc {
	t.Helper()
	return simpltest.Start(t, "client", env, append([]string{strconv.Itoa(os.Getpid()), strconv.Itoa(chid)}, steps...)...)
}

// receive is MsgReceive bounded by the test.
func receive(t *testing.T, chid int, buf []byte, info *qnx.MessageInfo) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rcvid, err := qnx.MsgReceive(ctx, chid, buf, info)
	if err != nil {
		t.Fatalf("MsgReceive: %v", err)
	}
	return rcvid
}

// receivePulse receives and insists on a pulse.
func receivePulse(t *testing.T, chid int) qnx.Pulse {
	t.Helper()
	buf := make([]byte, 64)
	if rcvid := receive(t, chid, buf, nil); rcvid != 0 {
		t.Fatalf("rcvid %d (%q), want a pulse", rcvid, buf)
	}
	p, _ := qnx.DecodePulse(buf)
	return p
}

// waitExit waits for a helper to finish its steps and exit cleanly.
func waitExit(t *testing.T, p *simpltest.Proc) {
	t.Helper()
	if err := p.Wait(10 * time.Second); err != nil {
		t.Fatalf("helper: %v\n%s", err, p.Stderr())
	}
}

// reap removes the FIFOs a killed helper left.
func reap(t *testing.T) {
	t.Helper()
	reg, err := naming.Open(os.Getenv("FIFO_PATH"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Reap(""); err != nil {
		t.Fatal(err)
	}
}

// roleEcho: create a channel, print "chid N", and answer every message
// with itself until killed.
func roleEcho(args []string) error {
	flags := 0
	if len(args) > 0 {
		flags, _ = strconv.Atoi(args[0])
	}
	chid, err := qnx.ChannelCreate(flags)
	if err != nil {
		return err
	}
	fmt.Printf("chid %d\n", chid)
	simpltest.Ready()
	buf := make([]byte, 1024)
	var info qnx.MessageInfo
	for {
		rcvid, err := qnx.MsgReceive(context.Background(), chid, buf, &info)
		if err != nil {
			return err
		}
		if rcvid > 0 {
			qnx.MsgReply(rcvid, info.Msglen, buf[:info.Msglen])
		}
	}
}

// echoServer starts roleEcho and connects to its channel, created with
// flags (none if not given).
func echoServer(t *testing.T, env []string, flags ...int) (*simpltest.Proc, int) {
	t.Helper()
	srv, chid := startEcho(t, env, flags...)
	coid, err := qnx.ConnectAttach(0, srv.PID(), chid, qnx.NTO_SIDE_CHANNEL, 0)
	if err != nil {
		t.Fatal(err)
	}
	return srv, coid
}

// startEcho starts roleEcho and returns its channel's chid.
func startEcho(t *testing.T, env []string, flags ...int) (*simpltest.Proc, int) {
	t.Helper()
	var args []string
	if len(flags) > 0 {
		args = append(args, strconv.Itoa(flags[0]))
	}
	srv := simpltest.StartNoWait(t, "echo", env, args...)
	line := srv.Expect("chid ", 10*time.Second)
	srv.Expect("ready", 10*time.Second)
	chid, _ := strconv.Atoi(strings.TrimPrefix(line, "chid "))
	return srv, chid
}

// overFIFO is whether the tests run with the FIFO transport forced
// (GOSIMPL_TRANSPORT=fifo), where a few behaviours differ (doc.go).
func overFIFO() bool { return os.Getenv("GOSIMPL_TRANSPORT") == "fifo" }
