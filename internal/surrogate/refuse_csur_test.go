package surrogate

import (
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/internal/surwire"
	"github.com/gosimpl/gosimpl/simpl"
)

// C SIMPL's own surrogates' names (spec 2.2: surrogateTcp's
// _tcp_Surrogate_R, its idle children _tcp_Surrogate_r_<pid>, its
// per-connection ones _tcp_Surrogate_s_<pid>) are refused as not found,
// counted denied, even when held here: through one a C SIMPL host would
// go on to other hosts (a SUR_NAME_LOCATE to an idle child opens a link
// to any host it names). Their holders get nothing. Before, only the
// _gosimpl* and _simpl* names were refused, and these were located.
func TestLocateRefusedCSurrogates(t *testing.T) {
	s, ch := serve(t, Options{})
	names := []string{"_tcp_Surrogate_R", "_tcp_Surrogate_r_16850", "_tcp_Surrogate_s_16851", "_tcp_Surrogate_S"}
	var held []<-chan simpl.Message
	for _, name := range names {
		held = append(held, holder(t, ch, name))
	}
	echo(t, ch, "tcp_Surrogate_user") // an ordinary name, for all its likeness
	locate := func(name string) int32 {
		t.Helper()
		p := &peer{t: t}
		c := dialServer(t, s)
		p.c = c
		p.write(&surwire.Frame{Token: surwire.TokenNameLocate, RProgram: name, SHost: "c"}, false)
		c.SetReadDeadline(time.Now().Add(15 * time.Second))
		f, err := surwire.ReadFrame(c, surwire.Char, true, 1<<10)
		if err != nil {
			t.Fatalf("locate %q: %v", name, err)
		}
		return f.Result
	}
	for _, name := range names {
		if r := locate(name); r != -1 {
			t.Errorf("locate %q: result %d, want -1", name, r)
		}
	}
	if r := locate("tcp_Surrogate_user"); r != 0 {
		t.Errorf("locate tcp_Surrogate_user: result %d, want 0", r)
	}
	if st := s.Stats(); st.Denied != int64(len(names)) || st.Located != 1 {
		t.Errorf("stats %+v: want %d denied, 1 located", st, len(names))
	}
	for i, msgs := range held {
		select {
		case m := <-msgs:
			t.Errorf("%s got a message (%d bytes) from the peer", names[i], len(m.Data()))
			m.ReplyError()
		default:
		}
	}
}
