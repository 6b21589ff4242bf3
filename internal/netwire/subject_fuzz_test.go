package netwire

import (
	"errors"
	"strings"
	"testing"

	"github.com/gosimpl/gosimpl/naming"
)

// FuzzParseSubject: a subject ParseSubject accepts is exactly the one
// Subject makes of what it returns (nothing is lost or read two ways); a
// refused one gets an error that quotes it; and whatever three strings
// Subject is given, ParseSubject gives them back.
func FuzzParseSubject(f *testing.F) {
	for _, s := range []string{
		Subject("vm", "SRV", "a"),
		Subject("plant-7.example.com", "dots.are.ok", "b.c"),
		Subject("", "x", ""),
		SubjectPrefix + "a.b",
		SubjectPrefix + "a.b.c.d",
		SubjectPrefix + "a..c",
		SubjectPrefix + "a~2e.b.c",
		SubjectPrefix + "a~41.b.c",
		SubjectPrefix + "a~2.b.c",
		"gosimpl.v2.a.b.c",
		"",
	} {
		f.Add(s, "h", "n", "f")
	}
	f.Add("", "", "", "")
	f.Add("", "a.b*c>", "\x00\xff", "~")
	f.Fuzz(func(t *testing.T, s, to, name, from string) {
		gotTo, gotName, gotFrom, err := ParseSubject(s)
		if err != nil {
			if gotTo != "" || gotName != "" || gotFrom != "" {
				t.Fatalf("ParseSubject(%q) = %q, %q, %q with error %v", s, gotTo, gotName, gotFrom, err)
			}
			if !strings.Contains(err.Error(), "subject ") {
				t.Fatalf("ParseSubject(%q): error %q does not say it is the subject", s, err)
			}
		} else if back := Subject(gotTo, gotName, gotFrom); back != s {
			t.Fatalf("ParseSubject(%q) = %q, %q, %q, which Subject makes %q", s, gotTo, gotName, gotFrom, back)
		}

		subj := Subject(to, name, from)
		if !strings.HasPrefix(subj, SubjectPrefix) || strings.Count(subj, ".") != strings.Count(SubjectPrefix, ".")+2 {
			t.Fatalf("Subject(%q, %q, %q) = %q: not three tokens under %q", to, name, from, subj, SubjectPrefix)
		}
		if strings.ContainsAny(subj[len(SubjectPrefix):], "*> \t\r\n\x00") {
			t.Fatalf("Subject(%q, %q, %q) = %q: holds a byte NATS gives meaning to", to, name, from, subj)
		}
		gotTo, gotName, gotFrom, err = ParseSubject(subj)
		if err != nil || gotTo != to || gotName != name || gotFrom != from {
			t.Fatalf("ParseSubject(Subject(%q, %q, %q) = %q) = %q, %q, %q, %v", to, name, from, subj, gotTo, gotName, gotFrom, err)
		}
	})
}

// FuzzParseStatus: ParseStatus accepts exactly the names String writes
// (so String gives the input back), and its error wraps ErrBadEnvelope.
func FuzzParseStatus(f *testing.F) {
	for _, s := range []string{"ok", "rejected", "full", "busy", "OK", "ok ", "status(14)", "status(0)", "", "not_found\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		st, err := ParseStatus(s)
		if err != nil {
			if !errors.Is(err, ErrBadEnvelope) {
				t.Fatalf("ParseStatus(%q): error %v does not wrap ErrBadEnvelope", s, err)
			}
			if st != 0 {
				t.Fatalf("ParseStatus(%q) = %v with error %v", s, st, err)
			}
			return
		}
		if int(st) >= len(statusNames) {
			t.Fatalf("ParseStatus(%q) = %d: no such status", s, st)
		}
		if st.String() != s {
			t.Fatalf("ParseStatus(%q) = %v, which String writes %q", s, st, st.String())
		}
		// The status goes back through a reply header unchanged.
		got, detail, rest, err := DecodeReply(AppendReplyHeader(nil, st, 7))
		if err != nil || got != st || detail != 7 || len(rest) != 0 {
			t.Fatalf("reply header of %v: %v, %d, %q, %v", st, got, detail, rest, err)
		}
	})
}

// FuzzParseNamesSubject: ParseNamesSubject accepts exactly the subjects
// NamesSubject makes of a host of 1 to naming.MaxHostLen bytes, and gives
// that host back.
func FuzzParseNamesSubject(f *testing.F) {
	for _, s := range []string{
		NamesSubject("vm"),
		NamesSubject("plant-7.example.com"),
		NamesSubject(""),
		NamesSubject(strings.Repeat("h", naming.MaxHostLen+1)),
		NamesPrefix + "a.b.events",
		NamesPrefix + "a.events.events",
		NamesPrefix + ".events",
		NamesPrefix + "a~2e.events",
		NamesPrefix + "a.list.1",
		NamesPrefix + "events",
		"",
	} {
		f.Add(s, "host")
	}
	f.Add("", "a.b*c>\x00")
	f.Fuzz(func(t *testing.T, s, host string) {
		got, err := ParseNamesSubject(s)
		if err != nil {
			if got != "" {
				t.Fatalf("ParseNamesSubject(%q) = %q with error %v", s, got, err)
			}
		} else {
			if got == "" || len(got) > naming.MaxHostLen {
				t.Fatalf("ParseNamesSubject(%q) = %q: want 1 to %d bytes", s, got, naming.MaxHostLen)
			}
			if back := NamesSubject(got); back != s {
				t.Fatalf("ParseNamesSubject(%q) = %q, which NamesSubject makes %q", s, got, back)
			}
		}

		got, err = ParseNamesSubject(NamesSubject(host))
		valid := host != "" && len(host) <= naming.MaxHostLen
		switch {
		case valid && (err != nil || got != host):
			t.Fatalf("ParseNamesSubject(NamesSubject(%q)) = %q, %v", host, got, err)
		case !valid && err == nil:
			t.Fatalf("ParseNamesSubject(NamesSubject(%q)) = %q: a host of %d bytes accepted", host, got, len(host))
		}
	})
}
