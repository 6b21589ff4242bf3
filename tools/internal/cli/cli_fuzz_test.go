package cli

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
)

// FuzzParseSignal: a signal ParseSignal accepts is 1 to 64, is the
// number given when a number was, and comes back from its name and its
// number; anything refused is an error that quotes or gives the input.
func FuzzParseSignal(f *testing.F) {
	for _, s := range []string{"TERM", "SIGTERM", "term", "sigkill", "15", "64", "65", "0", "-9", "+9", "SIG", "", "KILL ", "SIGRTMIN", "RTMIN+3", "99999999999999999999", "hup\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sig, err := ParseSignal(s)
		if err != nil {
			if sig != 0 {
				t.Fatalf("ParseSignal(%q) = %d with error %v", s, sig, err)
			}
			if !strings.Contains(err.Error(), strconv.Quote(s)) && !strings.Contains(err.Error(), "signal ") {
				t.Fatalf("ParseSignal(%q): error %q says nothing of the input", s, err)
			}
			return
		}
		if sig < 1 || sig > 64 {
			t.Fatalf("ParseSignal(%q) = %d: not 1 to 64", s, sig)
		}
		if n, err := strconv.Atoi(s); err == nil && int(sig) != n {
			t.Fatalf("ParseSignal(%q) = %d", s, sig)
		}
		if back, err := ParseSignal(strconv.Itoa(int(sig))); err != nil || back != sig {
			t.Fatalf("ParseSignal(%q) = %d, but its number reads %d, %v", s, sig, back, err)
		}
		name := SignalName(sig)
		if strings.HasPrefix(name, "SIG") {
			if back, err := ParseSignal(name); err != nil || back != sig {
				t.Fatalf("ParseSignal(%q) = %d (%s), but its name reads %d, %v", s, sig, name, back, err)
			}
		}
	})
}

// errInput is what fuzzReader's last read fails with.
var errInput = errors.New("input failed")

// fuzzReader reads in as kind says: whole, a byte at a time, half of
// each read, with io.EOF on the last data, or failing with errInput at
// the end.
func fuzzReader(in []byte, kind byte) io.Reader {
	r := bytes.NewReader(in)
	switch kind % 5 {
	case 1:
		return iotest.OneByteReader(r)
	case 2:
		return iotest.HalfReader(r)
	case 3:
		return iotest.DataErrReader(r)
	case 4:
		return io.MultiReader(r, iotest.ErrReader(errInput))
	}
	return r
}

// scanLines is what EachLine should give of in: every line without its
// '\n' and one '\r' before it, the last one also when no '\n' ends it.
func scanLines(in []byte) [][]byte {
	var out [][]byte
	for len(in) > 0 {
		line, rest, found := bytes.Cut(in, []byte("\n"))
		out = append(out, bytes.TrimSuffix(line, []byte("\r")))
		in = rest
		if !found {
			break
		}
	}
	return out
}

// FuzzEachLine: EachLine (how fcsend and fcpub read standard input)
// gives fn every line of the input, in order, none cut, merged or
// aliased, however the input arrives; it stops at the first error of
// fn's and returns it; and an input that fails is an error wrapping the
// failure, after every line read before it.
func FuzzEachLine(f *testing.F) {
	f.Add([]byte("a\nb\n"), byte(0), -1)
	f.Add([]byte("a\r\nb"), byte(1), -1)
	f.Add([]byte("\n\n\r\n\r"), byte(2), 1)
	f.Add([]byte("one line no newline"), byte(3), 0)
	f.Add([]byte("x\ny\nz\n"), byte(4), -1)
	f.Add([]byte(""), byte(4), -1)
	f.Add([]byte("\x00\xff\n\r\r\n"), byte(1), 5)
	f.Fuzz(func(t *testing.T, in []byte, kind byte, stopAt int) {
		want := scanLines(in)
		stop := errors.New("stop")
		var got [][]byte
		ctx, cancel := context.WithCancel(context.Background())
		err := EachLine(ctx, fuzzReader(in, kind), func(line []byte) error {
			got = append(got, line)
			if len(got)-1 == stopAt {
				return stop
			}
			return nil
		})
		cancel() // the reading goroutine may wait to hand over a line
		if stopAt >= 0 && stopAt < len(want) {
			want = want[:stopAt+1]
			if err != stop {
				t.Fatalf("EachLine(%q): fn failed at line %d, EachLine returned %v", in, stopAt, err)
			}
		} else {
			switch {
			case kind%5 == 4 && !errors.Is(err, errInput):
				t.Fatalf("EachLine(%q) of an input that fails: %v", in, err)
			case kind%5 != 4 && err != nil:
				t.Fatalf("EachLine(%q): %v", in, err)
			}
		}
		if len(got) != len(want) {
			t.Fatalf("EachLine(%q, reader %d) gave %d lines %q, want %d %q", in, kind%5, len(got), got, len(want), want)
		}
		for i := range want {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("EachLine(%q, reader %d): line %d is %q, want %q", in, kind%5, i, got[i], want[i])
			}
		}
	})
}
