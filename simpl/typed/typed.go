package typed

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"unicode/utf8"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/gosimpl/gosimpl/internal/errs"
	"github.com/gosimpl/gosimpl/simpl"
)

// Tagged is a type that can travel as a typed message: it names itself on
// the wire with TypeTag, which must return the same 1 to MaxTagLen bytes of
// UTF-8 for every value, the zero value included (declare it on the value
// type, not the pointer). The tag is the type's identity between peers:
// change it when the type changes incompatibly ("calc.Add/2").
type Tagged interface {
	TypeTag() string
}

// tagOf is T's tag.
func tagOf[T Tagged]() (tag string, err error) {
	defer func() {
		if r := recover(); r != nil {
			tag, err = "", fmt.Errorf("%w: %T.TypeTag panics on the zero value (declare it on the value type): %v", ErrBadTag, *new(T), r)
		}
	}()
	var zero T
	tag = zero.TypeTag()
	if !validTag(tag) {
		return "", fmt.Errorf("%w: %T.TypeTag is %q: want 1 to %d bytes of UTF-8", ErrBadTag, zero, tag, MaxTagLen)
	}
	return tag, nil
}

// codec is the reusable state of one encode or decode: buffers, a msgpack
// encoder and decoder. One goroutine at a time.
type codec struct {
	in  []byte // a copy of a received message, or Call's reply buffer
	out outBuf // the message being encoded
	enc *msgpack.Encoder
	dec *msgpack.Decoder
	rd  bytes.Reader
}

// outBuf is an append-only writer for the msgpack encoder.
type outBuf struct{ b []byte }

func (w *outBuf) Write(p []byte) (int, error) { w.b = append(w.b, p...); return len(p), nil }
func (w *outBuf) WriteByte(c byte) error      { w.b = append(w.b, c); return nil }

var codecs = sync.Pool{New: func() any {
	c := &codec{}
	c.enc = msgpack.NewEncoder(&c.out)
	c.dec = msgpack.NewDecoder(&c.rd)
	return c
}}

func getCodec() *codec { return codecs.Get().(*codec) }

// putCodec returns c to the pool unless its buffers grew past what is worth
// keeping.
func putCodec(c *codec) {
	if cap(c.in) > 4<<20 || cap(c.out.b) > 4<<20 {
		return
	}
	codecs.Put(c)
}

// encode makes c.out a message of kind k and tag holding v.
func (c *codec) encode(k kind, tag string, v any) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = errs.Errorf("typed: encoding %s %q panicked: %v", k, tag, r)
		}
	}()
	c.out.b = appendHeader(c.out.b[:0], k, tag)
	if err := c.enc.Encode(v); err != nil {
		return errs.Errorf("typed: encoding %s %q: %w", k, tag, err)
	}
	return nil
}

// decode validates payload against maxDepth and decodes it into v (a
// pointer). Errors wrap simpl.ErrBadMessage; a panic in msgpack becomes
// one too.
func (c *codec) decode(payload []byte, maxDepth int, v any) (err error) {
	if err := validate(payload, maxDepth, holdsMap(reflect.TypeOf(v))); err != nil {
		return err
	}
	defer func() {
		if r := recover(); r != nil {
			err = errs.Errorf("typed: decoding panicked: %v: %w", r, simpl.ErrBadMessage)
		}
		c.rd.Reset(nil)
	}()
	c.rd.Reset(payload)
	c.dec.ResetReader(&c.rd)
	if err := c.dec.Decode(v); err != nil {
		return errs.Errorf("typed: %w: %w", err, simpl.ErrBadMessage)
	}
	return nil
}

// holdsMap tells whether a value of type t can hold a map, where
// msgpack reads past an extension's header (see walk); remembered by
// type.
func holdsMap(t reflect.Type) bool {
	if v, ok := mapHolders.Load(t); ok {
		return v.(bool)
	}
	h := reachesMap(t, map[reflect.Type]bool{})
	mapHolders.Store(t, h)
	return h
}

var mapHolders sync.Map // reflect.Type -> bool

func reachesMap(t reflect.Type, seen map[reflect.Type]bool) bool {
	if t == nil || seen[t] {
		return false
	}
	seen[t] = true
	switch t.Kind() {
	case reflect.Map:
		return true
	case reflect.Pointer, reflect.Slice, reflect.Array:
		return reachesMap(t.Elem(), seen)
	case reflect.Struct:
		for i := range t.NumField() {
			if reachesMap(t.Field(i).Type, seen) {
				return true
			}
		}
	}
	return false
}

// CallOption configures one Call.
type CallOption func(*callConfig)

type callConfig struct{ lim Limits }

// WithReplyLimits bounds the reply: its size (the reply buffer Call
// passes to Send; DefaultMaxReply when zero) and its depth.
func WithReplyLimits(l Limits) CallOption { return func(c *callConfig) { c.lim = l } }

// Call sends req to the receiver behind conn as a typed request and waits
// for its typed reply (the receiver runs a Mux, or speaks the wire form in
// docs/typed.md). Errors:
//
//   - *Error when the server answered with an error reply (errors.Is
//     matches ErrRemote, simpl.ErrRejected and the code's sentinel:
//     ErrUnknownType, ErrVersion, ErrInternal, simpl.ErrBadMessage,
//     simpl.ErrTooLarge);
//   - Send's errors (ctx.Err(), simpl.ErrPeerGone, simpl.ErrRejected from
//     a receiver that answered ReplyError, simpl.ErrReplyTooLarge for a
//     reply over Limits.MaxSize, ...);
//   - simpl.ErrBadMessage for a reply that does not decode, or whose tag is
//     not Rep's; ErrVersion for a reply in another wire version;
//   - ErrBadTag when Req or Rep has no usable tag.
//
// Call reuses its buffers between calls and is safe to call from many
// goroutines at once on one Conn.
func Call[Req, Rep Tagged](ctx context.Context, conn *simpl.Conn, req Req, opts ...CallOption) (Rep, error) {
	var rep Rep
	reqTag, err := tagOf[Req]()
	if err != nil {
		return rep, err
	}
	repTag, err := tagOf[Rep]()
	if err != nil {
		return rep, err
	}
	var cfg callConfig
	for _, o := range opts {
		o(&cfg)
	}
	lim := cfg.lim.withDefaults(DefaultMaxReply)

	c := getCodec()
	if err := c.encode(kindRequest, reqTag, req); err != nil {
		putCodec(c)
		return rep, err
	}
	if cap(c.in) < lim.MaxSize {
		c.in = make([]byte, lim.MaxSize)
	}
	n, err := conn.Send(ctx, c.out.b, c.in[:lim.MaxSize])
	if err != nil {
		// Not returned to the pool: a reply buffer is never reused after
		// a Send that did not end normally.
		return rep, errs.Errorf("typed: call %q: %w", reqTag, err)
	}
	err = decodeReply(c, c.in[:n], repTag, lim.MaxDepth, &rep)
	putCodec(c)
	if err != nil {
		var zero Rep
		return zero, err
	}
	return rep, nil
}

// decodeReply decodes a reply message into rep, or its error reply into an
// *Error.
func decodeReply(c *codec, msg []byte, repTag string, maxDepth int, rep any) error {
	h, payload, err := parseHeader(msg)
	if err != nil {
		return errs.Errorf("typed: reply: %w", err)
	}
	switch h.kind {
	case kindReply:
		if string(h.tag) != repTag {
			return errs.Errorf("typed: reply of type %q, want %q: %w", h.tag, repTag, simpl.ErrBadMessage)
		}
		if err := c.decode(payload, maxDepth, rep); err != nil {
			return errs.Errorf("typed: reply %q: %w", repTag, err)
		}
		return nil
	case kindError:
		e := new(Error)
		if err := c.decode(payload, maxDepth, e); err != nil {
			return errs.Errorf("typed: error reply: %w", err)
		}
		return e
	}
	return errs.Errorf("typed: answered with a %s: %w", h.kind, simpl.ErrBadMessage)
}

// Reply answers m, a typed request, with rep: how a handler that returned
// ErrDeferred answers later, from any goroutine. Its errors are
// Message.Reply's (simpl.ErrReplied for a message already answered,
// simpl.ErrReplyTooLarge for a reply over the sender's limit, which the
// sender sees too, ...), plus ErrBadTag and encoding failures; when rep
// does not encode, m is answered with CodeInternal.
func Reply[Rep Tagged](m simpl.Message, rep Rep) error {
	tag, err := tagOf[Rep]()
	if err != nil {
		ReplyError(m, &Error{Code: CodeInternal, Message: "reply type has no tag"})
		return err
	}
	c := getCodec()
	defer putCodec(c)
	if err := c.encode(kindReply, tag, rep); err != nil {
		c.replyError(m, &Error{Code: CodeInternal, Message: fmt.Sprintf("reply %q did not encode", tag)})
		return err
	}
	return m.Reply(c.out.b)
}

// ReplyError answers m, a typed request, with an error reply: err's code
// and text when it is an *Error, CodeFailed and err.Error() otherwise.
// Texts are cut to 1024 bytes, and shorter when the sender's reply buffer
// is smaller. Its errors are Message.Reply's.
func ReplyError(m simpl.Message, err error) error {
	c := getCodec()
	defer putCodec(c)
	return c.replyError(m, err)
}

func (c *codec) replyError(m simpl.Message, err error) error {
	if err := c.encodeError(err, m.MaxReply()); err != nil {
		return err
	}
	return m.Reply(c.out.b)
}

// encodeError makes c.out the error reply for err, its text cut further if
// need be to fit in maxReply bytes.
func (c *codec) encodeError(err error, maxReply int) error {
	e := toError(err)
	if err := c.encode(kindError, "", e); err != nil {
		return err
	}
	if over := len(c.out.b) - maxReply; over > 0 && e.Message != "" {
		e = &Error{Code: e.Code, Message: truncate(e.Message, max(len(e.Message)-over, 0))}
		return c.encode(kindError, "", e)
	}
	return nil
}

// toError is the *Error err is sent as.
func toError(err error) *Error {
	var e *Error
	switch {
	case err == nil:
		e = &Error{Code: CodeFailed, Message: "ReplyError with a nil error"}
	case !errors.As(err, &e):
		e = &Error{Code: CodeFailed, Message: err.Error()}
	case e == nil:
		e = &Error{Code: CodeFailed, Message: "a nil *typed.Error"}
	}
	if len(e.Message) > maxErrorText {
		e = &Error{Code: e.Code, Message: truncate(e.Message, maxErrorText)}
	}
	return e
}

// truncate cuts s to at most n bytes on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
