package naming

import (
	"fmt"
	"strings"
)

// MaxNameLen is the longest SIMPL name in bytes (C SIMPL's limit).
const MaxNameLen = 31

// The longest protocol and host fields of a remote name, in bytes (C
// SIMPL's limits: 24- and 52-byte fields with their NUL).
const (
	MaxProtocolLen = 23
	MaxHostLen     = 51
)

// DefaultProtocol is the protocol of a remote name that gives none
// ("host:NAME", or "::NAME"'s empty field): C SIMPL's router then picks
// the first protocol registered.
const DefaultProtocol = "_simplDefault"

// Name is a parsed SIMPL name. Protocol and Host are empty for a local name.
type Name struct {
	Protocol string // e.g. "_simplTCP"; empty for DefaultProtocol
	Host     string // empty for a local name
	Name     string // the name proper, 1..31 bytes
}

// Local reports whether n names a process on this host without asking
// which host this is: it has no host part. A name whose host is this
// host's own name is local too (see IsLocalHost), which only a lookup can
// tell.
func (n Name) Local() bool { return n.Host == "" }

// Proto is n's protocol, DefaultProtocol when it names none.
func (n Name) Proto() string {
	if n.Protocol == "" {
		return DefaultProtocol
	}
	return n.Protocol
}

// String returns n in the form Parse accepts.
func (n Name) String() string {
	switch {
	case n.Host == "":
		return n.Name
	case n.Protocol != "":
		return n.Protocol + ":" + n.Host + ":" + n.Name
	}
	return n.Host + ":" + n.Name
}

// Parse splits s into protocol, host and name as C SIMPL's name_locate
// does, counting the colons in the whole string:
//
//   - none: "NAME", a local name;
//   - one: "HOST:NAME", with the default protocol;
//   - two: "PROTOCOL:HOST:NAME"; an empty protocol is the default one;
//   - more: ErrBadName.
//
// An empty host ("::NAME", ":NAME") is a local name, as in C SIMPL; an
// empty name is ErrBadName. Where C SIMPL silently truncates a field that
// is too long (a protocol to 23 bytes, a host to 51, a name to 31), Parse
// refuses it with ErrBadName, saying so; ParseC truncates as C SIMPL does,
// for callers that must behave exactly like it. A protocol named
// DefaultProtocol is left empty, as if not given.
func Parse(s string) (Name, error) {
	return parse(s, false)
}

// ParseC is Parse with C SIMPL's truncation of long fields (a protocol to
// 23 bytes, a host to 51, a name to 31), for the C SIMPL library's
// name_locate. Every other rule is Parse's.
func ParseC(s string) (Name, error) {
	return parse(s, true)
}

func parse(s string, truncate bool) (Name, error) {
	parts := strings.Split(s, ":")
	var n Name
	switch len(parts) {
	case 1:
		n.Name = parts[0]
	case 2:
		n.Host, n.Name = parts[0], parts[1]
	case 3:
		n.Protocol, n.Host, n.Name = parts[0], parts[1], parts[2]
	default:
		return Name{}, fmt.Errorf("%w: %q: more than two colons", ErrBadName, s)
	}
	fields := []struct {
		what string
		v    *string
		max  int
	}{{"protocol", &n.Protocol, MaxProtocolLen}, {"host", &n.Host, MaxHostLen}, {"name", &n.Name, MaxNameLen}}
	for _, f := range fields {
		if len(*f.v) <= f.max {
			continue
		}
		if !truncate {
			return Name{}, fmt.Errorf("%w: %q: the %s is %d bytes, at most %d (C SIMPL would cut it to %q)", ErrBadName, s, f.what, len(*f.v), f.max, (*f.v)[:f.max])
		}
		*f.v = (*f.v)[:f.max]
	}
	if n.Host == "" || n.Protocol == DefaultProtocol {
		n.Protocol = ""
	}
	if n.Name == "" {
		return Name{}, fmt.Errorf("%w: %q: empty name", ErrBadName, s)
	}
	if err := CheckLocal(n.Name); err != nil {
		return Name{}, err
	}
	for _, f := range fields[:2] {
		if err := checkChars(*f.v); err != nil {
			return Name{}, fmt.Errorf("%w: %s %q: %s", ErrBadName, f.what, *f.v, err)
		}
	}
	return n, nil
}

// CheckLocal reports whether s can be attached as a local name: 1 to 31
// bytes, none of them '/', ':', '#', a control byte, or a space. ('#' is
// reserved for gosimpl's auxiliary reply FIFOs.) Longer names are an error,
// never silently truncated as C SIMPL does.
func CheckLocal(s string) error {
	if s == "" {
		return fmt.Errorf("%w: empty name", ErrBadName)
	}
	if len(s) > MaxNameLen {
		return fmt.Errorf("%w: %q is %d bytes, at most %d", ErrBadName, s, len(s), MaxNameLen)
	}
	if s == "." || s == ".." {
		return fmt.Errorf("%w: %q", ErrBadName, s)
	}
	if err := checkChars(s); err != nil {
		return fmt.Errorf("%w: %q: %s", ErrBadName, s, err)
	}
	if strings.ContainsAny(s, ":#") {
		return fmt.Errorf("%w: %q: ':' and '#' are not allowed in a name", ErrBadName, s)
	}
	return nil
}

func checkChars(s string) error {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c == 0x7f || c == '/' {
			return fmt.Errorf("byte %#x at %d is not allowed", c, i)
		}
	}
	return nil
}
