package tools_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// soakTimeout bounds one short fcsoak run: its duration, its children's
// start (slow under -race) and their stop.
const soakTimeout = 90 * time.Second

// fcsoak as a user runs it: -progress says what runs and how far it is
// on stderr, the summary is a line a figure, -json the same for machines,
// and its internal flags stay out of -h (TestHelp).
func TestFcsoak(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), soakTimeout)
	defer cancel()
	cmd := e.command(ctx, "fcsoak", "-duration", "2s", "-senders", "2", "-kill-every", "300ms", "-max-size", "4096", "-seed", "7", "-progress", "500ms")
	r := e.runCmd(ctx, cmd, "")
	if r.code != 0 {
		t.Fatalf("fcsoak: exit %d, stderr %q, stdout %q", r.code, r.stderr, r.stdout)
	}
	progress := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
	if want := "fcsoak: 2 senders for 2s, transport auto, a kill every 300ms on average, seed 7"; progress[0] != want {
		t.Errorf("fcsoak -progress began %q, want %q", progress[0], want)
	}
	line := regexp.MustCompile(`^fcsoak: [0-9.]+m?s of 2s: sent [0-9]+, verified [0-9]+, corrupt 0, crossed 0, failed [0-9]+, kills [0-9]+$`)
	if len(progress) < 2 {
		t.Errorf("fcsoak -progress wrote %q, want a line at least when the kills end", r.stderr)
	}
	for _, l := range progress[1:] {
		if !line.MatchString(l) {
			t.Errorf("fcsoak -progress wrote %q", l)
		}
	}
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if len(lines) != 16 || !strings.HasPrefix(lines[0], "soak of ") || !strings.HasSuffix(lines[0], ": transport auto, 2 senders, seed 7") ||
		!regexp.MustCompile(`^sent +[0-9]+  verified \+ corrupt \+ crossed \+ failed$`).MatchString(lines[1]) {
		t.Errorf("fcsoak printed\n%s\nwant the summary, a line a figure", r.stdout)
	}
	for _, l := range lines {
		if len(l) > 80 {
			t.Errorf("fcsoak's summary has a %d-character line: %q", len(l), l)
		}
	}

	// -json: every count, and sent adds up.
	ctx, cancel = context.WithTimeout(context.Background(), soakTimeout)
	defer cancel()
	cmd = e.command(ctx, "fcsoak", "-duration", "1s", "-senders", "2", "-kill-every", "200ms", "-max-size", "4096", "-json")
	r = e.runCmd(ctx, cmd, "")
	r.ok(t, "fcsoak -json")
	var got map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("fcsoak -json: %v: %q", err, r.stdout)
	}
	for _, k := range []string{"sent", "verified", "corrupt", "crossed", "failed", "send_errors", "locate_errors",
		"received", "corrupt_requests", "crossed_requests", "replied", "reply_errors", "receiver_restarts", "sender_restarts",
		"leaked_fifos", "leaked_shm", "leaked_sysv", "leaked_procs", "crashes", "hangs", "duration", "transport", "senders", "seed",
		"interrupted", "duration_asked", "seconds_asked"} {
		if _, ok := got[k]; !ok {
			t.Errorf("fcsoak -json has no %q: %s", k, r.stdout)
		}
	}
	if got["interrupted"] != false || got["duration_asked"] != "1s" || got["seconds_asked"] != 1.0 {
		t.Errorf("fcsoak -json: interrupted %v, duration_asked %v, seconds_asked %v; want false, 1s, 1", got["interrupted"], got["duration_asked"], got["seconds_asked"])
	}
	n := func(k string) float64 { v, _ := got[k].(float64); return v }
	var failed float64
	for _, v := range got["send_errors"].(map[string]any) {
		failed += v.(float64)
	}
	if n("failed") != failed || n("sent") != n("verified")+n("corrupt")+n("crossed")+failed || n("verified") == 0 {
		t.Errorf("fcsoak -json: sent %v, verified %v, corrupt %v, crossed %v, failed %v (send errors sum to %v)",
			n("sent"), n("verified"), n("corrupt"), n("crossed"), n("failed"), failed)
	}
}

// chaosRun runs fcsoak -json with the chaos options args as root (the
// attackers become nobody) and returns its report, its exit code and
// stderr.
func chaosRun(t *testing.T, args ...string) (map[string]any, int, string) {
	t.Helper()
	if uid := os.Geteuid(); uid != 0 {
		why := fmt.Sprintf("needs root (running as uid %d): fcsoak's attackers become nobody (%d) through setuid", uid, nobodyUID)
		if os.Getenv("GOSIMPL_CI") == "1" {
			t.Fatalf("%s; GOSIMPL_CI=1 (CI, which runs as root) requires this test to run", why)
		}
		t.Skipf("%s; CI (.ci/run) runs it as root", why)
	}
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), soakTimeout)
	defer cancel()
	r := e.runCmd(ctx, e.command(ctx, "fcsoak", append(args, "-json")...), "")
	var got map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("fcsoak %q: exit %d, stderr %q: %v: %q", args, r.code, r.stderr, err, r.stdout)
	}
	t.Logf("fcsoak %q: exit %d, stderr %q\n%s", args, r.code, r.stderr, r.stdout)
	return got, r.code, r.stderr
}

// checkChaos checks a chaos run: it passed (nothing hung, dropped,
// corrupt, crossed or leaked), ran the attacks asked for as nobody, and
// each of them did something: the counts named are all above zero.
func checkChaos(t *testing.T, got map[string]any, code int, stderr string, attacks []string, nonzero ...string) {
	t.Helper()
	n := func(k string) float64 { v, _ := got[k].(float64); return v }
	if code != 0 || stderr != "" {
		t.Errorf("fcsoak: exit %d, stderr %q; want success", code, stderr)
	}
	for _, k := range []string{"hung_sends", "corrupt", "crossed", "corrupt_requests", "crossed_requests",
		"leaked_fifos", "leaked_shm", "leaked_sysv", "leaked_procs", "crashes", "hangs"} {
		if n(k) != 0 {
			t.Errorf("fcsoak: %s %v, want 0", k, n(k))
		}
	}
	if n("verified") == 0 {
		t.Errorf("fcsoak: no legitimate reply verified")
	}
	var ran []string
	for _, a := range got["attacks"].([]any) {
		ran = append(ran, a.(string))
	}
	if strings.Join(ran, ",") != strings.Join(attacks, ",") || n("attack_uid") != nobodyUID {
		t.Errorf("fcsoak ran attacks %q as uid %v, want %q as nobody (%d)", ran, n("attack_uid"), attacks, nobodyUID)
	}
	for _, k := range nonzero {
		if n(k) <= 0 {
			t.Errorf("fcsoak: %s %v, want more than 0: the attack did nothing", k, n(k))
		}
	}
}

// The chaos runs last 6 s with a kill a second: each attacker needs a
// receiver that lives long enough to be found and attacked, also when the
// tests of other packages load the machine (3 s with a kill every 500 ms
// left the lane grabber or the big sender nothing to show 4 times in 7
// beside fcgate's tests).

// -chaos: every attack runs as nobody against a receiver of mode 0666
// beside the soak's kills, and each shows in its counts; the legitimate
// traffic stays whole, nothing leaks, and the forged FIFOs are removed.
func TestFcsoakChaos(t *testing.T) {
	got, code, stderr := chaosRun(t, "-duration", "6s", "-senders", "2", "-kill-every", "1s", "-max-size", "4096",
		"-chaos", "-stray-every", "20ms", "-flood-conns", "50", "-lanes-max", "100", "-big-size", "1048576", "-big-senders", "2",
		"-big-delay", "5ms")
	checkChaos(t, got, code, stderr, []string{"stray", "flood", "lanes", "big", "squat"},
		"stray_writes", "stray_bytes", "flood_connects", "flood_held", "lanes_held", "lane_connects",
		"big_sent", "big_verified", "big_received", "forged_made", "forged_removed", "max_rss", "rss_limit")
	if got["receiver_perm"] != "0666" {
		t.Errorf("receiver_perm %v, want 0666: nobody's attacks reach the receiver", got["receiver_perm"])
	}
	if n := got["lanes_held"].(float64); n > 100 {
		t.Errorf("lanes_held %v, over -lanes-max 100", n)
	}
}

// The attacks on the FIFO transport, with every request over FIFOs: stray
// bytes in the receiver's receive FIFO cost no legitimate Send its answer
// (issue 16, item 3), big requests leave the receiver's memory within
// -max-rss (item 4), and forged entries mislead nobody (item 2).
func TestFcsoakChaosFIFO(t *testing.T) {
	got, code, stderr := chaosRun(t, "-duration", "6s", "-senders", "2", "-kill-every", "1s", "-max-size", "4096",
		"-transport", "fifo", "-chaos", "-stray-every", "20ms", "-big-size", "1048576", "-big-senders", "2",
		"-big-delay", "5ms")
	checkChaos(t, got, code, stderr, []string{"stray", "big", "squat"},
		"stray_writes", "big_verified", "big_received", "forged_made", "forged_removed", "max_rss")
}
