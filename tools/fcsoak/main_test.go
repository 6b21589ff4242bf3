package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/internal/testmain"
	"golang.org/x/sys/unix"
)

// TestMain lets the test binary be fcsoak's children: run re-executes
// os.Executable, which here is this binary, with -role first.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "-role" {
		main()
		os.Exit(0)
	}
	os.Exit(testmain.Run(m))
}

// runTimeout bounds one short soak: its duration, the children's start
// (slow under -race on a loaded machine) and their stop.
const runTimeout = 90 * time.Second

// soakFor runs fcsoak with args plus -json and returns its report and
// error.
func soakFor(t *testing.T, args ...string) (report, error) {
	t.Helper()
	type result struct {
		out string
		err error
	}
	done := make(chan result, 1)
	go func() {
		var out bytes.Buffer
		err := run(append(args, "-json"), &out)
		done <- result{out.String(), err}
	}()
	var res result
	select {
	case res = <-done:
	case <-time.After(runTimeout):
		t.Fatalf("fcsoak %q did not finish within %v", args, runTimeout)
	}
	var r report
	if err := json.Unmarshal([]byte(res.out), &r); err != nil {
		t.Fatalf("fcsoak %q: %v; printed %q: %v", args, res.err, res.out, err)
	}
	return r, res.err
}

// A short soak with kills every 300 ms: replies verified, nothing
// corrupt, crossed or leaked, and the receiver and a sender restarted, on
// each transport.
func TestSoak(t *testing.T) {
	for _, transport := range []string{"auto", "fifo"} {
		t.Run(transport, func(t *testing.T) {
			start := time.Now()
			r, err := soakFor(t, "-duration", "3s", "-senders", "4", "-kill-every", "300ms", "-max-size", "16384", "-transport", transport)
			t.Logf("%v in %v", &r, time.Since(start).Round(time.Millisecond))
			if r.FirstOther != "" {
				t.Logf("first other error: %s", r.FirstOther)
			}
			if err != nil {
				t.Fatalf("fcsoak failed: %v", err)
			}
			if r.Verified == 0 || r.Sent < r.Verified {
				t.Errorf("sent %d, verified %d", r.Sent, r.Verified)
			}
			// Every Send is counted once; failed Locates are not Sends.
			if failed := sum(r.SendErrors); r.Sent != r.Verified+r.Corrupt+r.Crossed+failed {
				t.Errorf("sent %d, but verified %d + corrupt %d + crossed %d + failed %d = %d (send errors %v, locate errors %v)",
					r.Sent, r.Verified, r.Corrupt, r.Crossed, failed, r.Verified+r.Corrupt+r.Crossed+failed, r.SendErrors, r.LocateErrors)
			}
			if r.Received < r.Replied+sum(r.ReplyErrors) {
				t.Errorf("received %d, but replied %d and %d replies failed", r.Received, r.Replied, sum(r.ReplyErrors))
			}
			if r.Corrupt != 0 || r.Crossed != 0 {
				t.Errorf("corrupt %d, crossed %d: %s", r.Corrupt, r.Crossed, r.FirstBad)
			}
			if n := r.LeakedFIFOs + r.LeakedShm + r.LeakedSysV + r.LeakedProcs; n != 0 {
				t.Errorf("leaked %d: %s", n, r.Leaks)
			}
			if r.Crashes != 0 || r.Hangs != 0 {
				t.Errorf("crashes %d (%s), hangs %d (%s)", r.Crashes, r.FirstCrash, r.Hangs, r.FirstHang)
			}
			if r.ReceiverRestarts < 1 || r.SenderRestarts < 1 {
				t.Errorf("receiver restarts %d, sender restarts %d; want at least one each", r.ReceiverRestarts, r.SenderRestarts)
			}
			if r.Transport != transport || r.Senders != 4 || r.Seed == 0 {
				t.Errorf("report says transport %q, senders %d, seed %d", r.Transport, r.Senders, r.Seed)
			}
		})
	}
}

// Without kills nothing fails at all, and the summary is the documented
// one: a line a figure.
func TestNoKills(t *testing.T) {
	var out bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- run([]string{"-duration", "1s", "-senders", "2", "-kill-every", "0", "-max-size", "4096"}, &out)
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("fcsoak: %v; printed %q", err, out.String())
		}
	case <-time.After(runTimeout):
		t.Fatalf("fcsoak did not finish within %v", runTimeout)
	}
	summary := out.String()
	t.Log("\n" + summary)
	lines := strings.Split(strings.TrimSuffix(summary, "\n"), "\n")
	header := regexp.MustCompile(`^soak of [0-9.]+m?s: transport auto, 2 senders, seed [0-9]+$`)
	want := []struct{ label, figure, detail string }{
		{"sent", "", "verified + corrupt + crossed + failed"},
		{"  verified", "", ""},
		{"  corrupt", "0", ""},
		{"  crossed", "0", ""},
		{"  failed", "0", ""},
		{"locates failed", "0", ""},
		{"received", "", "by the receiver"},
		{"  corrupt", "0", ""},
		{"  crossed", "0", ""},
		{"replied", "", ""},
		{"replies failed", "0", ""},
		{"restarts", "0", "receiver 0, senders 0"},
		{"leaked", "0", "FIFOs 0, /dev/shm 0, System V 0, processes 0"},
		{"crashes", "0", ""},
		{"hangs", "0", ""},
	}
	if len(lines) != 1+len(want) || !header.MatchString(lines[0]) {
		t.Fatalf("fcsoak printed %d lines, want a header and %d", len(lines), len(want))
	}
	// label, padding, the figure aligned right, and its detail.
	row := regexp.MustCompile(`^(  )?([a-z]+( [a-z]+)?) +([0-9]+)(  (.+))?$`)
	end := -1
	for i, w := range want {
		l := lines[i+1]
		m := row.FindStringSubmatchIndex(l)
		if m == nil {
			t.Errorf("line %d: %q", i+1, l)
			continue
		}
		label, figure, detail := l[:m[5]], l[m[8]:m[9]], ""
		if m[12] >= 0 {
			detail = l[m[12]:m[13]]
		}
		if label != w.label || (w.figure != "" && figure != w.figure) || detail != w.detail {
			t.Errorf("line %d: %q, want %q %q %q", i+1, l, w.label, w.figure, w.detail)
		}
		if end < 0 {
			end = m[9]
		}
		if m[9] != end {
			t.Errorf("line %d: %q: its figure ends at %d, the first one's at %d", i+1, l, m[9], end)
		}
	}
}

// Bad flags fail with one line.
func TestFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-senders", "0"},
		{"-duration", "0s"},
		{"-max-size", "10"},
		{"-kill-every", "-1s"},
		{"-transport", "tcp"},
		{"-bogus"},
		{"extra"},
		{"-flood", "-transport", "fifo"},
		{"-lanes", "-transport", "fifo"},
		{"-flood-conns", "0"},
		{"-lanes-max", "0"},
		{"-big-size", "10"},
		{"-big-size", "67108865"},
		{"-big-senders", "0"},
		{"-big-delay", "-1ms"},
		{"-stray-every", "0s"},
		{"-max-rss", "-1"},
	} {
		var out bytes.Buffer
		err := run(args, &out)
		if err == nil || strings.Contains(err.Error(), "\n") || out.Len() != 0 {
			t.Errorf("fcsoak %q: error %v, printed %q; want one line and nothing printed", args, err, out.String())
		}
	}
}

// fcsoak itself finds corrupt and crossed replies: a receiver told to
// spoil every 50th reply makes the run fail, with the first one named.
func TestInjected(t *testing.T) {
	for _, tc := range []struct{ inject, want string }{
		{"corrupt", "checksum"},
		{"cross", "is for sender"},
	} {
		t.Run(tc.inject, func(t *testing.T) {
			r, err := soakFor(t, "-duration", "1s", "-senders", "2", "-kill-every", "0", "-max-size", "4096", "-inject", tc.inject)
			t.Logf("%v: %v", &r, err)
			bad := r.Corrupt
			if tc.inject == "cross" {
				bad = r.Crossed
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") || bad == 0 {
				t.Errorf("-inject %s: error %v, report %v; want a one-line failure mentioning %q", tc.inject, err, &r, tc.want)
			}
		})
	}
}

func TestCheckReply(t *testing.T) {
	req := make([]byte, 100)
	h := header{magic: reqMagic, id: 3, pid: 1234, seq: 7, extra: 64}
	h.csum = seal(req, h)
	if got, err := open(req, reqMagic); err != nil || got != h {
		t.Fatalf("open(seal(h)) = %+v, %v; want %+v", got, err, h)
	}
	reply := func(f func(*header)) []byte {
		b := make([]byte, 64)
		for i := hdrLen; i < len(b); i++ {
			b[i] = byte(i)
		}
		rh := header{magic: repMagic, id: h.id, pid: h.pid, seq: h.seq, extra: h.csum}
		if f != nil {
			f(&rh)
		}
		seal(b, rh)
		return b
	}
	for _, tc := range []struct {
		name string
		b    []byte
		want int
	}{
		{"good", reply(nil), okReply},
		{"flipped bit", func() []byte { b := reply(nil); b[40] ^= 1; return b }(), corruptReply},
		{"short", reply(nil)[:20], corruptReply},
		{"truncated", reply(nil)[:63], corruptReply},
		{"the request", req, corruptReply},
		{"other seq", reply(func(r *header) { r.seq++ }), crossedReply},
		{"other sender", reply(func(r *header) { r.id++ }), crossedReply},
		{"other incarnation", reply(func(r *header) { r.pid++ }), crossedReply},
		{"other request", reply(func(r *header) { r.extra++ }), crossedReply},
	} {
		if got, detail := checkReply(tc.b, h); got != tc.want {
			t.Errorf("%s: checkReply = %d (%s), want %d", tc.name, got, detail, tc.want)
		}
	}
}

// The leak checks see what they look for.
func TestLeakChecks(t *testing.T) {
	dir := t.TempDir()
	if got := fifoLeaks(dir); len(got) != 0 {
		t.Errorf("fifoLeaks(empty) = %v", got)
	}
	os.WriteFile(dir+"/YX.1", nil, 0o600)
	if got := fifoLeaks(dir); len(got) != 1 {
		t.Errorf("fifoLeaks = %v, want YX.1", got)
	}

	self := map[int]bool{os.Getpid(): true}
	defer func(d time.Duration) { sysvWait = d }(sysvWait)
	sysvWait = 100 * time.Millisecond
	if before := shmNames(); before != nil {
		name := shmDir + "/fcsoak-test-" + strconv.Itoa(os.Getpid())
		if err := os.WriteFile(name, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		defer os.Remove(name)
		if got := shmLeaks(before, map[int]bool{}); len(got) != 1 || got[0] != name {
			t.Errorf("shmLeaks = %v, want %s", got, name)
		}
	}

	id, err := unix.SysvShmGet(unix.IPC_PRIVATE, 4096, unix.IPC_CREAT|0o600)
	if err != nil {
		t.Fatal(err)
	}
	if got := sysvLeaks(self); len(got) != 1 || !strings.Contains(got[0], "shmid "+strconv.Itoa(id)+" ") {
		t.Errorf("sysvLeaks = %v, want shmid %d", got, id)
	}
	unix.SysvShmCtl(id, unix.IPC_RMID, nil)
	if got := sysvLeaks(self); len(got) != 0 {
		t.Errorf("sysvLeaks after IPC_RMID = %v", got)
	}

	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if got := childProcs(); len(got) != 1 || !strings.Contains(got[0], strconv.Itoa(cmd.Process.Pid)) {
		t.Errorf("childProcs = %v, want pid %d", got, cmd.Process.Pid)
	}
	cmd.Process.Kill()
	cmd.Wait()
	if got := childProcs(); len(got) != 0 {
		t.Errorf("childProcs after wait = %v", got)
	}
}

// The receiver's resident set is read from /proc; a process that is gone
// reads as 0.
func TestRSSOf(t *testing.T) {
	if rss := rssOf(os.Getpid()); rss < 1<<20 {
		t.Errorf("rssOf(self) = %d, want at least 1 MiB", rss)
	}
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	if rss := rssOf(cmd.Process.Pid); rss != 0 {
		t.Errorf("rssOf(a reaped child) = %d, want 0", rss)
	}
}

// removeForged removes FIFOs of the attackers' user that name no child's
// pid, and leaves the children's own (a leak, for the leak check), other
// users' and files that are not FIFOs.
func TestRemoveForged(t *testing.T) {
	dir := t.TempDir()
	s := &soak{dir: dir, attacks: []string{"squat"}, pids: map[int]bool{4242: true}}
	s.r.AttackUID = os.Getuid()
	for _, name := range []string{"FCSOAK.1", "YFCSOAK_S1.1", "SQ7.99999", "FCSOAK.4242", "YFCSOAK.4242"} {
		if err := unix.Mkfifo(dir+"/"+name, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(dir+"/PLAIN.1", nil, 0o600)
	if n := s.removeForged(); n != 3 {
		t.Errorf("removeForged = %d, want 3", n)
	}
	want := []string{"FCSOAK.4242", "PLAIN.1", "YFCSOAK.4242"}
	if got := fifoLeaks(dir); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("left %q, want %q", got, want)
	}
	s.attacks = nil // without -squat nothing is forged
	if n := s.removeForged(); n != 0 {
		t.Errorf("removeForged without -squat = %d", n)
	}
}

// The summary shows a row for each attack that ran, and the chaos line
// says as whom; -json has every attack count, zeros included.
func TestChaosSummary(t *testing.T) {
	r := &report{counts: counts{SendErrors: map[string]int64{}, LocateErrors: map[string]int64{}, ReplyErrors: map[string]int64{}},
		Attacks: []string{"stray", "squat"}, AttackUID: nobodyUID, ReceiverPerm: "0666", MaxRSS: 12 << 20}
	r.StrayWrites, r.StrayBytes, r.ForgedMade, r.ForgedRemoved = 5, 17, 3, 2
	out := r.String()
	for _, want := range []string{`\nchaos: stray, squat as nobody \(uid 65534\); receiver mode 0666\n`, `\nstray writes +5  17 bytes\n`,
		`\nforged made +3  held open 0, removed at end 2\n`, `\nreceiver MiB +12  largest VmRSS seen; no limit\n`} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "flood") || strings.Contains(out, "lanes held") || strings.Contains(out, "big sent") {
		t.Errorf("summary has rows of attacks that did not run:\n%s", out)
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	json.Unmarshal(b, &got)
	for _, k := range []string{"hung_sends", "stray_writes", "stray_bytes", "stray_errors", "flood_connects", "flood_held", "flood_errors",
		"lanes_held", "lane_connects", "lane_errors", "big_sent", "big_verified", "big_errors", "big_received",
		"forged_made", "forged_held", "forged_errors", "forged_removed", "attacks", "attack_uid", "receiver_perm", "max_rss", "rss_limit"} {
		if _, ok := got[k]; !ok {
			t.Errorf("-json has no %q: %s", k, b)
		}
	}
	r.RSSLimit = 10 << 20
	if err := r.failure(); err == nil || !strings.Contains(err.Error(), "-max-rss") {
		t.Errorf("RSS over the limit: failure %v", err)
	}
	r.RSSLimit = 0
	r.SendErrors["deadline"] = 1
	if err := r.failure(); err == nil || !strings.Contains(err.Error(), "no answer") {
		t.Errorf("a Send past its deadline: failure %v", err)
	}
}
