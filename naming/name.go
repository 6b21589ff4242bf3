package naming

import (
	"fmt"
	"strings"
)

// MaxNameLen is the longest SIMPL name in bytes (C SIMPL's limit).
const MaxNameLen = 31

// Name is a parsed SIMPL name. Protocol and Host are empty for a local name.
type Name struct {
	Protocol string // e.g. "_simplTCP"; empty unless given
	Host     string // empty for a local name
	Name     string // the name proper, 1..31 bytes
}

// Local reports whether n names a process on this host.
func (n Name) Local() bool { return n.Host == "" && n.Protocol == "" }

// String returns n in the form Parse accepts.
func (n Name) String() string {
	switch {
	case n.Protocol != "":
		return n.Protocol + ":" + n.Host + ":" + n.Name
	case n.Host != "":
		return n.Host + ":" + n.Name
	}
	return n.Name
}

// Parse splits s into protocol, host and name and checks every part.
// "name", "host:name" and "protocol:host:name" are accepted; more than two
// colons, an empty part, or a bad name is ErrBadName.
func Parse(s string) (Name, error) {
	parts := strings.Split(s, ":")
	var n Name
	switch len(parts) {
	case 1:
		n.Name = parts[0]
	case 2:
		n.Host, n.Name = parts[0], parts[1]
	case 3:
		n.Protocol, n.Host, n.Name = parts[0], parts[1], parts[2]
		if n.Protocol == "" {
			return Name{}, fmt.Errorf("%w: %q: empty protocol", ErrBadName, s)
		}
	default:
		return Name{}, fmt.Errorf("%w: %q: more than two colons", ErrBadName, s)
	}
	if len(parts) > 1 && n.Host == "" {
		return Name{}, fmt.Errorf("%w: %q: empty host", ErrBadName, s)
	}
	if err := CheckLocal(n.Name); err != nil {
		return Name{}, err
	}
	if n.Host != "" {
		if err := checkChars(n.Host); err != nil {
			return Name{}, fmt.Errorf("%w: host %q: %s", ErrBadName, n.Host, err)
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
