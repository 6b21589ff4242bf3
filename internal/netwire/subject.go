package netwire

import (
	"fmt"
	"strings"
)

// SubjectPrefix begins every subject gosimpl serves names on. The version
// changes with any change of what the subjects carry.
const SubjectPrefix = "gosimpl.v3."

// InboxPrefix begins every subject answers come back on: a host's
// gateway and programs take answers under Inbox(host) only, so NATS
// permissions can keep one host from reading another's answers.
const InboxPrefix = "_GS_INBOX."

// RawPrefix begins subjects any client of a gateway's embedded server may
// use for itself (fcbench's raw NATS request/reply, say): nothing of
// gosimpl's is carried on them.
const RawPrefix = "_GS_RAW."

// Subject is the NATS subject a request from host from to the name on
// host to is published on: SubjectPrefix + Token(to) + "." + Token(name)
// + "." + Token(from). The sending host is in the subject, not only in a
// header, so that NATS publish permissions can bind it: a host's user may
// publish only subjects ending in its own host (Permissions), and the
// receiving gateway takes the subject's word for who sent the request.
func Subject(to, name, from string) string {
	return SubjectPrefix + Token(to) + "." + Token(name) + "." + Token(from)
}

// HostSubjects is the wildcard of every request to host's names: what its
// gateway subscribes to, and what its NATS user alone may subscribe to.
func HostSubjects(host string) string {
	return SubjectPrefix + Token(host) + ".*.*"
}

// FromSubjects is the wildcard of every request host may send: what its
// NATS user alone may publish to.
func FromSubjects(host string) string {
	return SubjectPrefix + "*.*." + Token(host)
}

// Inbox is the prefix of host's answer subjects, for
// nats.CustomInboxPrefix.
func Inbox(host string) string { return InboxPrefix + Token(host) }

// Permissions are the NATS subject permissions of a host's gateway, as a
// deployment's authorization block or a gateway's embedded server gives
// them: it may publish requests from its own host and answers to any
// host's inbox, and subscribe to requests to its own host's names and to
// its own host's answers. With them a host can neither answer for
// another host, nor send as another, nor read another's answers.
//
// For names across hosts it may publish its own host's name events and
// ask any host's gateway for its list, and subscribe to every host's
// events and to the list requests for its own.
func Permissions(host string) (publish, subscribe []string) {
	return []string{FromSubjects(host), InboxPrefix + ">", RawPrefix + ">", NamesSubject(host), NamesPrefix + "*.list.*"},
		[]string{HostSubjects(host), Inbox(host) + ".>", RawPrefix + ">", NamesAllSubjects, NamesPrefix + Token(host) + ".list.*"}
}

// ParseSubject splits a subject made by Subject back into its hosts and
// name.
func ParseSubject(s string) (to, name, from string, err error) {
	rest, ok := strings.CutPrefix(s, SubjectPrefix)
	if !ok {
		return "", "", "", fmt.Errorf("subject %q: not under %q", s, SubjectPrefix)
	}
	parts := strings.Split(rest, ".")
	if len(parts) != 3 {
		return "", "", "", fmt.Errorf("subject %q: want %sTO.NAME.FROM", s, SubjectPrefix)
	}
	if to, err = Untoken(parts[0]); err != nil {
		return "", "", "", fmt.Errorf("subject %q: host: %w", s, err)
	}
	if name, err = Untoken(parts[1]); err != nil {
		return "", "", "", fmt.Errorf("subject %q: name: %w", s, err)
	}
	if from, err = Untoken(parts[2]); err != nil {
		return "", "", "", fmt.Errorf("subject %q: sending host: %w", s, err)
	}
	return to, name, from, nil
}

// Token makes s one NATS subject token: letters, digits, '-' and '_' stay,
// every other byte (the '.' of a host name or a SIMPL name, '*', '>',
// white space and control bytes NATS gives meaning to or refuses) becomes
// '~' and two upper-case hex digits. An empty s is "~". Untoken reverses it.
func Token(s string) string {
	if s == "" {
		return "~"
	}
	plain := true
	for i := 0; i < len(s); i++ {
		if !tokenByte(s[i]) {
			plain = false
			break
		}
	}
	if plain {
		return s
	}
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if tokenByte(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('~')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

func tokenByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_'
}

// Untoken reverses Token, accepting only what Token makes.
func Untoken(t string) (string, error) {
	if t == "~" {
		return "", nil
	}
	if t == "" {
		return "", fmt.Errorf("empty token")
	}
	var b strings.Builder
	for i := 0; i < len(t); i++ {
		c := t[i]
		switch {
		case tokenByte(c):
			b.WriteByte(c)
		case c == '~' && i+2 < len(t):
			v, ok := unhex(t[i+1], t[i+2])
			if !ok || tokenByte(v) {
				return "", fmt.Errorf("token %q: bad escape at %d", t, i)
			}
			b.WriteByte(v)
			i += 2
		default:
			return "", fmt.Errorf("token %q: byte %#x at %d", t, c, i)
		}
	}
	return b.String(), nil
}

func unhex(hi, lo byte) (byte, bool) {
	h, ok1 := hexVal(hi)
	l, ok2 := hexVal(lo)
	return h<<4 | l, ok1 && ok2
}

func hexVal(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
