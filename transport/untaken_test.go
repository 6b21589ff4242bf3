package transport

import (
	"context"
	"testing"
)

type withdrawingConn struct{ Conn }

func (withdrawingConn) WithdrawsQueued() bool { return true }

type wrapper struct{ Conn }

func (w wrapper) Unwrap() Conn { return w.Conn }

func TestUntilTakenFrom(t *testing.T) {
	bg := context.Background()
	if _, _, ok := UntilTakenFrom(bg); ok {
		t.Error("a plain context reads as UntilTaken's")
	}
	if _, _, ok := UntilTakenFrom(UntilTaken(bg, bg, nil)); ok {
		t.Error("a queued context that cannot end reads as one that can")
	}
	q, cancel := context.WithCancel(bg)
	defer cancel()
	called := 0
	got, taken, ok := UntilTakenFrom(UntilTaken(bg, q, func() { called++ }))
	if !ok || got != q || taken == nil {
		t.Fatalf("UntilTakenFrom = %v, %v, %v; want the queued context and its function", got, taken != nil, ok)
	}
	taken()
	if called != 1 {
		t.Errorf("taken ran %d times, want 1", called)
	}
}

func TestWithdrawsQueued(t *testing.T) {
	if WithdrawsQueued(wrapper{}) {
		t.Error("a Conn without the method withdraws")
	}
	if !WithdrawsQueued(withdrawingConn{}) {
		t.Error("a Withdrawing Conn does not withdraw")
	}
	if !WithdrawsQueued(wrapper{wrapper{withdrawingConn{}}}) {
		t.Error("a Withdrawing Conn inside wrappers does not withdraw")
	}
}

func TestWithoutUntilTaken(t *testing.T) {
	q, cancel := context.WithCancel(context.Background())
	defer cancel()
	ctx := WithoutUntilTaken(UntilTaken(context.Background(), q, nil))
	if _, _, ok := UntilTakenFrom(ctx); ok {
		t.Error("a context made WithoutUntilTaken reads as UntilTaken's")
	}
	if bg := context.Background(); WithoutUntilTaken(bg) != bg {
		t.Error("WithoutUntilTaken of a plain context is a new context")
	}
}
