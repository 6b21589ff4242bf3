package surrogate

import (
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/internal/surwire"
	"github.com/gosimpl/gosimpl/simpl"
)

// A peer's NAME_LOCATE reaches local names only, and those Admit lets it:
// a remote name (which the Channel's remote transport would carry to
// another host), a C SIMPL host's name, the Channel's own name and the
// names gosimpl and C SIMPL keep for themselves are refused (-1, as a
// name not found) and counted, with nothing located; a name held here
// is found. Before, each of them was located as any name.
func TestLocateRefused(t *testing.T) {
	var admitted []string
	s, ch := serve(t, Options{Admit: func(addr netip.Addr, name string) error {
		admitted = append(admitted, addr.String()+" "+name)
		if name == "DENIED" {
			return errors.New("not for you")
		}
		return nil
	}})
	srv, err := simpl.Attach("SRV", simpl.WithDir(ch.Dir()))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	denied, err := simpl.Attach("DENIED", simpl.WithDir(ch.Dir()))
	if err != nil {
		t.Fatal(err)
	}
	defer denied.Close()
	locate := func(name string) int32 {
		t.Helper()
		c, err := net.Dial("tcp", s.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		b, _ := surwire.AppendFrame(nil, surwire.Char, &surwire.Frame{Token: surwire.TokenNameLocate, RProgram: name, SHost: "c"}, false)
		if _, err := c.Write(b); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(15 * time.Second))
		f, err := surwire.ReadFrame(c, surwire.Char, true, 1<<10)
		if err != nil {
			t.Fatalf("locate %q: %v", name, err)
		}
		return f.Result
	}
	refused := []string{"otherhost:SRV", "_simplTCP:10.1.2.3:SRV", "GW", "_gosimpl_gw", "_simplProtoRouter", "DENIED"}
	for _, name := range refused {
		if r := locate(name); r != -1 {
			t.Errorf("locate %q: result %d, want -1", name, r)
		}
	}
	if r := locate("SRV"); r != 0 {
		t.Errorf("locate SRV: result %d, want 0", r)
	}
	st := s.Stats()
	if st.Denied != 6 || st.Located != 1 || st.NotFound != 0 {
		t.Errorf("stats %+v: want 6 denied (5 names refused, 1 by Admit), 1 located", st)
	}
	// Admit sees only names the server takes at all, with the peer's
	// address.
	if len(admitted) != 2 || admitted[0] != "127.0.0.1 DENIED" || admitted[1] != "127.0.0.1 SRV" {
		t.Errorf("Admit asked %q, want DENIED and SRV from 127.0.0.1", admitted)
	}
}
