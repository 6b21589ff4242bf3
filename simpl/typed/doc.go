// Package typed sends Go values as SIMPL messages: a client calls with a
// typed request and gets a typed reply or an error; a server registers a
// handler per request type and serves them on a bounded pool of
// goroutines. Underneath, each call is one simpl Send and one Reply, and
// raw-byte Sends keep working beside it, unchanged and at no extra cost.
//
//	type Add struct{ A, B int }
//	func (Add) TypeTag() string { return "calc.Add" }
//	type Sum struct{ N int }
//	func (Sum) TypeTag() string { return "calc.Sum" }
//
//	// server
//	mux := typed.NewMux()
//	typed.Handle(mux, func(ctx context.Context, req Add, m simpl.Message) (Sum, error) {
//		return Sum{req.A + req.B}, nil
//	})
//	err := mux.Serve(ctx, ch, typed.WithWorkers(8))
//
//	// client
//	sum, err := typed.Call[Add, Sum](ctx, conn, Add{2, 3})
//
// # Types and tags
//
// A type travels under its tag, which its TypeTag method returns: 1 to 64
// bytes of UTF-8 that both sides agree on. Values are encoded with
// msgpack (github.com/vmihailenco/msgpack/v5): a struct is a map from
// field names (or `msgpack:"name"` tags) to values, so a field added on
// one side is ignored by an older peer and left zero for a newer one.
// There is no per-type version number: change the tag ("calc.Add/2") when
// a type changes incompatibly, and serve both for as long as old clients
// live.
//
// # Wire form
//
// Every message is a 5-byte header, the tag, then one msgpack value:
// "GT", the wire version (1), the kind (1 request, 2 reply, 3 error
// reply), the tag's length and the tag. An error reply has no tag and
// carries {"code": int, "message": string}. docs/typed.md describes it
// byte by byte for C and Python peers.
//
// # Errors
//
// An error reply reaches the client as an *Error with its Code and
// Message; errors.Is matches it against ErrRemote, simpl.ErrRejected and
// the sentinel of its code (ErrUnknownType, ErrVersion, ErrInternal,
// simpl.ErrBadMessage, simpl.ErrTooLarge). A handler chooses the code by
// returning an *Error; applications use codes from 100. Local failures
// wrap this package's and simpl's sentinels.
//
// # Hostile bytes
//
// Nothing a peer sends can crash a client or server here, or make it
// allocate beyond a bound set by the message's size (docs/typed.md gives
// it). Before msgpack
// sees a payload, a scanner checks that it is
// exactly one well-formed value, nested at most Limits.MaxDepth deep (32
// by default), whose every declared length fits in the bytes that remain;
// the message as a whole must fit in Limits.MaxSize. The server decodes a
// private copy of each request, never the sender's shared memory. A panic
// in msgpack or in a handler becomes an error reply.
//
// # Deferred replies
//
// Serve's workers answer as their handlers finish, so replies go out of
// order. A handler that returns ErrDeferred keeps its message without
// holding a worker, and answers it later, from any goroutine, with Reply
// or ReplyError: a server can hold many clients blocked at once.
//
// # Concurrency
//
// Mux is safe for concurrent use; Call may be called from many goroutines
// on one simpl.Conn; Reply and ReplyError may be called from any
// goroutine (a message is answered once: later answers fail with
// simpl.ErrReplied).
package typed
