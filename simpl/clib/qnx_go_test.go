package main

import (
	"bytes"
	"context"
	"fmt"
	"hash/fnv"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/internal/proctest"
	"github.com/gosimpl/gosimpl/simpl/qnx"
)

// The test binary re-executed as a Go QNX program (package simpl/qnx):
// GOSIMPL_QNXC_GO=server or client, before the tests' own set-up runs.
const goRoleEnv = "GOSIMPL_QNXC_GO"

func init() {
	role := os.Getenv(goRoleEnv)
	if role == "" {
		return
	}
	var err error
	switch role {
	case "server":
		err = goServer()
	case "client":
		err = goClient(os.Args[1:])
	default:
		err = fmt.Errorf("unknown role %q", role)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	qnx.Shutdown(ctx)
	cancel()
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// goServer serves a DISCONNECT channel like qnx_server: text messages
// are answered with "go: " and the text, "big" messages are read with
// MsgRead and answered with MsgWrite as qnx_server does; pulses are
// printed. It ends after its second client has gone.
func goServer() error {
	chid, err := qnx.ChannelCreate(qnx.NTO_CHF_DISCONNECT)
	if err != nil {
		return err
	}
	fmt.Printf("ready %d %d\n", os.Getpid(), chid)
	buf := make([]byte, 512)
	for gone := 0; gone < 2; {
		var info qnx.MessageInfo
		rcvid, err := qnx.MsgReceive(context.Background(), chid, buf, &info)
		if err != nil {
			return err
		}
		if rcvid == 0 {
			p, _ := qnx.DecodePulse(buf)
			if p.Code == qnx.PULSE_CODE_DISCONNECT {
				gone++
				fmt.Println("disconnect", qnx.ConnectDetach(p.Scoid))
				continue
			}
			fmt.Println("pulse", p.Code, p.Value)
			continue
		}
		if bytes.HasPrefix(buf, []byte("big\x00")) {
			if err := goBig(rcvid, &info); err != nil {
				return err
			}
			continue
		}
		text, _, _ := bytes.Cut(buf[:info.Msglen], []byte{0})
		fmt.Printf("msg %d %s\n", info.Msglen, text)
		reply := make([]byte, 512)
		copy(reply, "go: "+string(text))
		if err := qnx.MsgReply(rcvid, 0, reply); err != nil {
			return err
		}
	}
	return nil
}

func goBig(rcvid int, info *qnx.MessageInfo) error {
	h := fnv.New32a()
	piece := make([]byte, 100000)
	for off := 16; ; {
		n, err := qnx.MsgRead(rcvid, piece, off)
		if err != nil {
			return err
		}
		if n == 0 {
			break
		}
		h.Write(piece[:n])
		off += n
	}
	fmt.Printf("big %d %d %d %08x\n", info.Msglen, info.Srcmsglen, info.Dstmsglen, h.Sum32())
	w := 0
	for w < info.Dstmsglen {
		for i := range 65536 {
			piece[i] = byte(((w+i)*13 + 7) & 0xFF)
		}
		n, err := qnx.MsgWrite(rcvid, piece[:65536], w)
		if err != nil {
			return err
		}
		w += n
	}
	return qnx.MsgReply(rcvid, w, nil)
}

// goClient connects to PID CHID, sends Getting Started's text, then a
// pulse (code 6, value 66), and prints the reply.
func goClient(args []string) error {
	if len(args) != 2 {
		return fmt.Errorf("want PID CHID, got %q", args)
	}
	pid, _ := strconv.Atoi(args[0])
	chid, _ := strconv.Atoi(args[1])
	coid, err := qnx.ConnectAttach(0, pid, chid, qnx.NTO_SIDE_CHANNEL, 0)
	if err != nil {
		return err
	}
	reply := make([]byte, 200)
	status, err := qnx.MsgSend(context.Background(), coid, []byte("Does this work? Let us see.\x00"), reply)
	if err != nil {
		return err
	}
	text, _, _ := bytes.Cut(reply, []byte{0})
	fmt.Printf("status %d reply %s\n", status, text)
	if err := qnx.MsgSendPulse(coid, -1, 6, 66); err != nil {
		return err
	}
	return qnx.ConnectDetach(coid)
}

// startGo runs the test binary as a Go QNX program.
func startGo(t *testing.T, dir, role string, args ...string) *prog {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "FIFO_PATH="+dir, goRoleEnv+"="+role)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &prog{proctest.StartCmd(t, cmd), in}
	t.Cleanup(func() { in.Close() })
	return p
}

// TestQNXGoAndC: a C program and a Go program (package simpl/qnx) on
// one channel, each way round. A C server receives from a C client and a
// Go client (messages and pulses); a Go server receives from two C
// clients, one of them sending a 1 MiB message the Go server reads with
// MsgRead and answers with MsgWrite.
func TestQNXGoAndC(t *testing.T) {
	builtQNX(t)
	t.Run("C server", func(t *testing.T) {
		dir := proctest.Dir(t)
		s, pid, chid := qnxServer(t, dir)
		c := start(t, dir, nil, "qnx_client", pid, chid, "pulse:5:55", "hello")
		c.expectLine(t, "pulsed", qwait)
		c.expectLine(t, "status 0 reply This is the reply", qwait)
		c.exits(t, 0)
		s.expectLine(t, "pulse 5 55", qwait)
		s.expectLine(t, "msg 28 Does this work? Let us see.", qwait)
		g := startGo(t, dir, "client", pid, chid)
		g.expectLine(t, "status 0 reply This is the reply", qwait)
		g.exits(t, 0)
		s.expectLine(t, "msg 28 Does this work? Let us see.", qwait)
		s.expectLine(t, "pulse 6 66", qwait)
		quit(t, dir, s, pid, chid)
	})
	t.Run("Go server", func(t *testing.T) {
		dir := proctest.Dir(t)
		g := startGo(t, dir, "server")
		f := strings.Fields(g.ReadLine(qwait))
		if len(f) != 3 || f[0] != "ready" {
			t.Fatalf("Go server: %q; stderr: %s", f, g.Stderr())
		}
		c := start(t, dir, nil, "qnx_client", f[1], f[2], "hello", "pulse:4:44")
		c.expectLine(t, "status 0 reply go: Does this work? Let us see.", qwait)
		c.expectLine(t, "pulsed", qwait)
		c.exits(t, 0)
		const big = 1 << 20
		b := start(t, dir, nil, "qnx_client", f[1], f[2], "big:"+strconv.Itoa(big))
		b.expectLine(t, "big "+strconv.Itoa(big)+" "+bigHash(big)+" reply ok", qwait)
		b.exits(t, 0)
		for _, want := range []string{"msg 28 Does this work? Let us see.", "pulse 4 44", "disconnect <nil>",
			fmt.Sprintf("big 512 %d %d %s", big+16, big, bigHash(big)), "disconnect <nil>"} {
			g.expectLine(t, want, qwait)
		}
		g.exits(t, 0)
	})
}
