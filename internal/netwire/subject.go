package netwire

import (
	"fmt"
	"strings"
)

// SubjectPrefix begins every subject gosimpl serves names on. The version
// changes with any change of what the subjects carry.
const SubjectPrefix = "gosimpl.v1."

// Subject is the NATS subject the name on host is served on:
// SubjectPrefix + Token(host) + "." + Token(name).
func Subject(host, name string) string {
	return SubjectPrefix + Token(host) + "." + Token(name)
}

// HostSubjects is the wildcard of every subject of host's names: what its
// gateway subscribes to, and what its NATS user alone may subscribe to.
func HostSubjects(host string) string {
	return SubjectPrefix + Token(host) + ".>"
}

// ParseSubject splits a subject made by Subject back into host and name.
func ParseSubject(s string) (host, name string, err error) {
	rest, ok := strings.CutPrefix(s, SubjectPrefix)
	if !ok {
		return "", "", fmt.Errorf("subject %q: not under %q", s, SubjectPrefix)
	}
	h, n, ok := strings.Cut(rest, ".")
	if !ok || strings.Contains(n, ".") {
		return "", "", fmt.Errorf("subject %q: want %sHOST.NAME", s, SubjectPrefix)
	}
	if host, err = Untoken(h); err != nil {
		return "", "", fmt.Errorf("subject %q: host: %w", s, err)
	}
	if name, err = Untoken(n); err != nil {
		return "", "", fmt.Errorf("subject %q: name: %w", s, err)
	}
	return host, name, nil
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
