package main

import (
	"strings"
	"testing"

	"github.com/gosimpl/gosimpl/internal/proctest"
)

// runFixes runs testdata/qnx_fixes.c's group of checks and fails on any
// FAIL line, or unless it printed want "ok" lines and "checks 0".
func runFixes(t *testing.T, group string, want int) {
	t.Helper()
	builtQNX(t)
	dir := proctest.Dir(t)
	p := start(t, dir, nil, "qnx_fixes", group)
	out := string(p.output(t, qwait))
	ok := strings.Count(out, "\nok ")
	if strings.HasPrefix(out, "ok ") {
		ok++
	}
	if strings.Contains(out, "FAIL") || ok != want || !strings.HasSuffix(out, "checks 0\n") {
		t.Fatalf("qnx_fixes %s: %d checks passed, want %d:\n%s\nstderr: %s", group, ok, want, out, p.Stderr())
	}
	p.exits(t, 0)
}

// TestQNXSigevThreadID: SIGEV_PULSE is not 4, Linux's SIGEV_THREAD_ID, so
// the header's timer_create leaves a Linux per-thread signal timer to
// Linux (before, it took it for a pulse timer, and the signal never
// came).
func TestQNXSigevThreadID(t *testing.T) { runFixes(t, "sigev", 6) }

// TestQNXTimeoutClearedByAnyCall: a TimerTimeout is cleared by any call
// of the API, those that fail in the C half too (QNX clears it on return
// from any kernel call): TimerTimeout's result, the flags armed before,
// is 0 after each.
func TestQNXTimeoutClearedByAnyCall(t *testing.T) { runFixes(t, "timeout", 20) }

// TestQNXMsgErrorUnblockReason: MsgError(rcvid, -1) passes the client's
// unblock reason (QNX 7.0.1), ETIMEDOUT here; without an unblock request,
// and for other negative values, it is EINVAL and the client stays
// blocked (before, MsgSend_r returned +1, which looks like a status).
func TestQNXMsgErrorUnblockReason(t *testing.T) { runFixes(t, "msgerror", 9) }

// TestQNXReceivevMsglen: msglen is what MsgReceivev's parts received,
// also when they add up to less than a struct _pulse (before, up to 24).
func TestQNXReceivevMsglen(t *testing.T) { runFixes(t, "receivev", 5) }
