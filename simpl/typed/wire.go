package typed

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/gosimpl/gosimpl/internal/errs"
	"github.com/gosimpl/gosimpl/simpl"
)

// The wire form of a typed message (docs/typed.md describes it byte by
// byte):
//
//	0    2     3      4       5          5+L
//	| GT | ver | kind | L     | tag (L)  | payload: one msgpack value
//
// The message's length is the SIMPL message's length: there is no length
// field of its own.
const (
	magic0, magic1 = 'G', 'T'

	// WireVersion is the version of the wire form this package speaks.
	WireVersion = 1

	headerLen = 5 // magic, version, kind, tag length

	// MaxTagLen is the longest type tag, in bytes.
	MaxTagLen = 64
)

// kind is the message kind byte.
type kind byte

const (
	kindRequest kind = 1 // a request: tag names the request's type
	kindReply   kind = 2 // a reply: tag names the reply's type
	kindError   kind = 3 // an error reply: empty tag, payload {"code", "message"}
)

func (k kind) String() string {
	switch k {
	case kindRequest:
		return "request"
	case kindReply:
		return "reply"
	case kindError:
		return "error reply"
	}
	return fmt.Sprintf("kind %d", byte(k))
}

// header is a decoded message header. tag aliases the message's bytes.
type header struct {
	version byte
	kind    kind
	tag     []byte
}

// appendHeader appends a version 1 header to dst.
func appendHeader(dst []byte, k kind, tag string) []byte {
	dst = append(dst, magic0, magic1, WireVersion, byte(k), byte(len(tag)))
	return append(dst, tag...)
}

// parseHeader splits a message into its header and payload. A message
// whose magic is right but whose version is not WireVersion returns the
// version it claims and an error wrapping ErrVersion; nothing after the
// version byte is read then, since another version may lay it out
// differently. Every other failure wraps simpl.ErrBadMessage.
func parseHeader(b []byte) (header, []byte, error) {
	if len(b) < 3 || b[0] != magic0 || b[1] != magic1 {
		return header{}, nil, errs.Errorf("typed: not a typed message (no %q magic): %w", "GT", simpl.ErrBadMessage)
	}
	h := header{version: b[2]}
	if h.version != WireVersion {
		return h, nil, errs.Errorf("typed: wire version %d, this side speaks %d: %w", h.version, WireVersion, ErrVersion)
	}
	if len(b) < headerLen {
		return h, nil, errs.Errorf("typed: header of %d bytes, want %d at least: %w", len(b), headerLen, simpl.ErrBadMessage)
	}
	h.kind = kind(b[3])
	n := int(b[4])
	switch {
	case h.kind != kindRequest && h.kind != kindReply && h.kind != kindError:
		return header{}, nil, errs.Errorf("typed: unknown message kind %d: %w", b[3], simpl.ErrBadMessage)
	case n > MaxTagLen:
		return header{}, nil, errs.Errorf("typed: type tag of %d bytes, the limit is %d: %w", n, MaxTagLen, simpl.ErrBadMessage)
	case len(b) < headerLen+n:
		return header{}, nil, errs.Errorf("typed: type tag of %d bytes runs past the message's end: %w", n, simpl.ErrBadMessage)
	}
	h.tag = b[headerLen : headerLen+n]
	if h.kind == kindError {
		if n != 0 {
			return header{}, nil, errs.Errorf("typed: error reply with a type tag: %w", simpl.ErrBadMessage)
		}
	} else if n == 0 || !utf8.Valid(h.tag) {
		return header{}, nil, errs.Errorf("typed: bad type tag %q: %w", h.tag, simpl.ErrBadMessage)
	}
	return h, b[headerLen+n:], nil
}

// validTag reports whether tag may be a type tag: 1 to MaxTagLen bytes of
// UTF-8.
func validTag(tag string) bool {
	return len(tag) > 0 && len(tag) <= MaxTagLen && utf8.ValidString(tag)
}

// Limits bound what a decoder accepts. A zero field takes its default.
// Every msgpack string, binary, extension, array and map must also fit in
// the bytes that remain (an array or map of n entries needs n, or 2n,
// bytes at least), so a declared length cannot make the decoder allocate
// more than the message could hold; see docs/typed.md for what that bound
// means for slices of large Go types.
type Limits struct {
	// MaxSize is the largest message, header included. Serve answers a
	// larger request with CodeTooLarge; Call's reply buffer is MaxSize
	// bytes, so a larger reply fails with simpl.ErrReplyTooLarge.
	MaxSize int
	// MaxDepth is how deeply arrays and maps may nest: a struct holding
	// a slice of structs is 3 deep. At most HardMaxDepth.
	MaxDepth int
}

// Defaults and bounds for Limits.
const (
	DefaultMaxRequest = 1 << 20  // Serve's Limits.MaxSize
	DefaultMaxReply   = 64 << 10 // Call's Limits.MaxSize
	DefaultMaxDepth   = 32
	HardMaxDepth      = 256
)

func (l Limits) withDefaults(size int) Limits {
	if l.MaxSize <= 0 {
		l.MaxSize = size
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = DefaultMaxDepth
	}
	l.MaxDepth = min(l.MaxDepth, HardMaxDepth)
	return l
}

// validate checks that b is exactly one well-formed msgpack value nested
// at most maxDepth deep, every length of which fits in b. Only a value
// that passes is handed to msgpack, which trusts declared lengths and
// recurses without bound. It never reads outside b and allocates nothing
// for depths up to 64.
//
// With extMaps (the Go type decoded into holds a map somewhere), an
// extension whose payload starts as a map is also walked leniently: see
// walk.
func validate(b []byte, maxDepth int, extMaps bool) error {
	end, err := walk(b, 0, maxDepth, 0, false, extMaps)
	if err != nil {
		return err
	}
	if end != len(b) {
		return errs.Errorf("typed: payload byte %d: %d bytes after the value: %w", end, len(b)-end, simpl.ErrBadMessage)
	}
	return nil
}

// errQuietStop ends a lenient walk where msgpack would fail harmlessly.
var errQuietStop = errors.New("simpl: typed: quiet stop")

// maxQuietEntries: in a lenient walk (see walk), a container of up to
// this many entries (any with a 16-bit length) that the bytes left cannot
// hold is not an error: what msgpack allocates for it is bounded (a few
// MiB), and it fails on it soon after.
const maxQuietEntries = 1<<16 - 1

// walk parses the one value at b[from:], depth containers deep already,
// and returns where it ends.
//
// Lenient is for an extension's payload whose first byte opens a map,
// where the Go type holds a map (extMaps): msgpack, decoding into a map,
// skips an extension's header and reads the map that follows
// (DecodeMapLen), from the payload on and past it, outside the value
// structure checked here, and a peer could hide there what the strict
// walk refuses. Only what could make msgpack then allocate or recurse
// without bound is an error (a container with a 32-bit length the bytes
// left cannot hold, nesting past maxDepth); anything else ends the walk
// quietly, as msgpack fails on it. A timestamp (the one extension Go's
// time.Time is) whose payload happens to start with a map code passes
// unless a 32-bit length follows where the walk reads one: a payload
// starting 0xdf, a timestamp of 935,329,792 to 939,524,095 ns past its
// second, is refused where the type holds a map too (docs/typed.md).
func walk(b []byte, from, maxDepth, depth int, lenient, extMaps bool) (int, error) {
	var stackArr [64]int
	stack := stackArr[:0] // the items still owed by each open container
	left := 1             // items still owed at this level: one value in all
	pos := from
	stop := errQuietStop
	bad := func(what string) error {
		if lenient {
			return stop
		}
		return errs.Errorf("typed: payload byte %d: %s: %w", pos, what, simpl.ErrBadMessage)
	}
	fatal := func(what string) error {
		return errs.Errorf("typed: payload byte %d: %s: %w", pos, what, simpl.ErrBadMessage)
	}
	// ext looks, for an extension whose payload starts at p and is n
	// bytes, at what msgpack would read there as a map.
	ext := func(p int, n int64) error {
		if !extMaps || n < 1 || p >= len(b) {
			return nil
		}
		if c := b[p]; (c < 0x80 || c > 0x8f) && c != 0xde && c != 0xdf {
			return nil
		}
		_, err := walk(b, p, maxDepth, depth+len(stack)+1, true, true)
		return err
	}
	for {
		if left == 0 {
			if len(stack) == 0 {
				break
			}
			left = stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			continue
		}
		left--
		if pos >= len(b) {
			if err := bad("ends inside a value"); err == stop {
				return pos, nil
			} else {
				return pos, err
			}
		}
		c := b[pos]
		rest := int64(len(b) - pos - 1)
		var (
			skip  int64      // bytes after the code byte to step over
			items int64 = -1 // entries of a container, -1 for none
			count int64      // a container's declared length (a map's pairs)
			err   error
		)
		switch {
		case c <= 0x7f || c >= 0xe0: // positive and negative fixint
		case c <= 0x8f: // fixmap
			items = 2 * int64(c&0x0f)
		case c <= 0x9f: // fixarray
			items = int64(c & 0x0f)
		case c <= 0xbf: // fixstr
			skip = int64(c & 0x1f)
		default:
			switch c {
			case 0xc0, 0xc2, 0xc3: // nil, false, true
			case 0xc1:
				err = bad("code 0xc1 is never used")
			case 0xc4, 0xc5, 0xc6, 0xd9, 0xda, 0xdb: // bin 8/16/32, str 8/16/32
				w := lenWidth(c)
				if rest < int64(w) {
					err = bad("ends inside a length")
					break
				}
				skip = int64(w) + int64(readLen(b[pos+1:], w))
			case 0xc7, 0xc8, 0xc9: // ext 8/16/32: length, type, data
				w := 1 << (c - 0xc7)
				if rest < int64(w) {
					err = bad("ends inside a length")
					break
				}
				n := int64(readLen(b[pos+1:], w))
				skip = int64(w) + 1 + n
				if skip <= rest {
					err = ext(pos+1+w+1, n)
				}
			case 0xca, 0xce, 0xd2: // float32, uint32, int32
				skip = 4
			case 0xcb, 0xcf, 0xd3: // float64, uint64, int64
				skip = 8
			case 0xcc, 0xd0: // uint8, int8
				skip = 1
			case 0xcd, 0xd1: // uint16, int16
				skip = 2
			case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext 1/2/4/8/16: type, data
				n := int64(1) << (c - 0xd4)
				skip = 1 + n
				if skip <= rest {
					err = ext(pos+2, n)
				}
			case 0xdc, 0xdd, 0xde, 0xdf: // array 16/32, map 16/32
				w := 2 << ((c - 0xdc) & 1)
				if rest < int64(w) {
					err = bad("ends inside a length")
					break
				}
				items = int64(readLen(b[pos+1:], w))
				count = items
				if c >= 0xde {
					items *= 2
				}
				pos += w
				rest -= int64(w)
			}
		}
		if err == nil && skip > rest {
			err = bad(fmt.Sprintf("a value of %d bytes in the %d left", skip, rest))
		}
		if err == stop {
			return pos, nil
		}
		if err != nil {
			return pos, err
		}
		pos += 1 + int(skip)
		if items < 0 {
			continue
		}
		if depth+len(stack) >= maxDepth {
			return pos, fatal(fmt.Sprintf("nested deeper than %d", maxDepth))
		}
		if items > int64(len(b)-pos) {
			if lenient && count <= maxQuietEntries {
				return pos, nil
			}
			return pos, fatal(fmt.Sprintf("%d entries in the %d bytes left", items, len(b)-pos))
		}
		stack = append(stack, left)
		left = int(items)
	}
	return pos, nil
}

// lenWidth is the width of the length field of bin and str codes.
func lenWidth(c byte) int {
	switch c {
	case 0xc4, 0xd9:
		return 1
	case 0xc5, 0xda:
		return 2
	}
	return 4
}

// readLen reads a big-endian length of w (1, 2 or 4) bytes.
func readLen(b []byte, w int) uint32 {
	switch w {
	case 1:
		return uint32(b[0])
	case 2:
		return uint32(binary.BigEndian.Uint16(b))
	}
	return binary.BigEndian.Uint32(b)
}
