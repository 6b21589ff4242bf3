package transport

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
)

// Origin is the sender of a request that came from another host, as the
// host's gateway, which makes the local Send on its behalf, tells it: the
// sending host (as the network vouches for it), the sending program's
// SIMPL name and its pid there (as that host's gateway reports them).
type Origin struct {
	Host string
	Name string
	PID  int
}

type originKey struct{}

// WithOrigin is ctx carrying o: a Send made with it tells a transport
// that can carry it (shared memory) that the request comes from o. Only
// the host's gateway has reason to; the receiver believes it only of the
// process holding the gateway's name.
func WithOrigin(ctx context.Context, o *Origin) context.Context {
	return context.WithValue(ctx, originKey{}, o)
}

// OriginFrom is the Origin ctx carries, or nil.
func OriginFrom(ctx context.Context) *Origin {
	o, _ := ctx.Value(originKey{}).(*Origin)
	return o
}

// MaxOrigin is the most bytes an encoded Origin takes: a host name of up
// to 51 bytes, a program name (NAME#k) of up to 43, their two lengths and
// a 32-bit pid.
const MaxOrigin = 1 + 51 + 1 + 43 + 4

// ErrBadOrigin is what DecodeOrigin returns for bytes it cannot take.
var ErrBadOrigin = errors.New("simpl: bad request origin")

// AppendOrigin appends o's encoding to b: the host's length (a byte),
// the host, the name's length, the name, and the pid (32 bits,
// little-endian). Fields too long for MaxOrigin are an error.
func AppendOrigin(b []byte, o *Origin) ([]byte, error) {
	if len(o.Host) == 0 || len(o.Host) > 51 || len(o.Name) > 43 || o.PID < 0 || int64(o.PID) > 1<<31-1 {
		return b, fmt.Errorf("%w: host of %d bytes (1 to 51), name of %d (at most 43), pid %d", ErrBadOrigin, len(o.Host), len(o.Name), o.PID)
	}
	b = append(b, byte(len(o.Host)))
	b = append(b, o.Host...)
	b = append(b, byte(len(o.Name)))
	b = append(b, o.Name...)
	return binary.LittleEndian.AppendUint32(b, uint32(o.PID)), nil
}

// DecodeOrigin reads an Origin AppendOrigin wrote, trusting no length:
// the whole of b must be one, its names printable.
func DecodeOrigin(b []byte) (Origin, error) {
	var o Origin
	str := func(what string, max int) (string, error) {
		if len(b) < 1 || int(b[0]) > max || len(b) < 1+int(b[0]) {
			return "", fmt.Errorf("%w: %s length in %d bytes", ErrBadOrigin, what, len(b))
		}
		s := b[1 : 1+int(b[0])]
		for i, c := range s {
			if c <= ' ' || c >= 0x7f {
				return "", fmt.Errorf("%w: %s: byte %#x at %d", ErrBadOrigin, what, c, i)
			}
		}
		b = b[1+len(s):]
		return string(s), nil
	}
	var err error
	if o.Host, err = str("host", 51); err != nil {
		return Origin{}, err
	}
	if o.Host == "" {
		return Origin{}, fmt.Errorf("%w: no host", ErrBadOrigin)
	}
	if o.Name, err = str("name", 43); err != nil {
		return Origin{}, err
	}
	if len(b) != 4 {
		return Origin{}, fmt.Errorf("%w: %d bytes for the pid, want 4", ErrBadOrigin, len(b))
	}
	pid := binary.LittleEndian.Uint32(b)
	if pid > 1<<31-1 {
		return Origin{}, fmt.Errorf("%w: pid %d", ErrBadOrigin, pid)
	}
	o.PID = int(pid)
	return o, nil
}
