package pubsub

import (
	"errors"
	"time"

	"github.com/gosimpl/gosimpl/simpl"
	"github.com/gosimpl/gosimpl/simpl/typed"
)

// DefaultBroker is the name the broker (fcbroker) attaches unless told
// otherwise.
const DefaultBroker = "FCBROKER"

// Sentinel errors. Errors also wrap simpl's sentinels where one applies:
// simpl.ErrTooLarge for data over the broker's limit, simpl.ErrPeerGone
// when the broker went away, simpl.ErrClosed once closed here.
var (
	// ErrBadTopic: a topic or pattern that CheckTopic or CheckPattern
	// refuses (error code 110 on the wire).
	ErrBadTopic = errors.New("simpl: pubsub: bad topic")
	// ErrEnded: the subscription is over. The broker went away (the
	// error matches simpl.ErrPeerGone too), is stopping, or no longer
	// knows it: its lease ran out, or this is another broker instance
	// (error code 111). Subscribe again to go on.
	ErrEnded = errors.New("simpl: pubsub: subscription ended")
	// ErrLimit: the broker holds as many topics or subscriptions as it
	// is allowed (error code 112).
	ErrLimit = errors.New("simpl: pubsub: broker limit reached")
)

// Error codes of the broker's error replies (typed.Error), besides
// typed's own (typed.CodeTooLarge for data over the limit).
const (
	codeBadTopic       typed.Code = 110 // a bad topic or pattern (ErrBadTopic)
	codeNoSubscription typed.Code = 111 // no such subscription for this process (ErrEnded)
	codeLimit          typed.Code = 112 // too many topics or subscriptions (ErrLimit)
	codeStopping       typed.Code = 113 // the broker is stopping (ErrEnded, simpl.ErrPeerGone)
)

// Mode is how a subscription's queue keeps messages.
type Mode string

const (
	// Queue keeps every message, in publish order per topic, up to the
	// queue's size; when it is full the oldest message is dropped and
	// counted.
	Queue Mode = "queue"
	// Latest keeps only the newest message of each topic (conflation):
	// a new one replaces the one queued for its topic, in that one's
	// place, and the replaced one counts as dropped. For state, such as
	// a control loop's set points, where only the current value matters.
	Latest Mode = "latest"
)

// Message is one published message as a subscriber receives it.
type Message struct {
	Topic string    `msgpack:"topic"`
	Seq   uint64    `msgpack:"seq"`  // the topic's sequence number, from 1, per broker instance
	Data  []byte    `msgpack:"data"` // the subscriber's own copy
	Time  time.Time `msgpack:"time"` // when the broker took it in
}

// The broker's requests and replies, as typed messages (docs/typed.md for
// the wire form, docs/pubsub.md for the protocol).
type (
	// publishRequest publishes Data on Topic.
	publishRequest struct {
		Topic string `msgpack:"topic"`
		Data  []byte `msgpack:"data"`
	}
	// publishReply: the message's sequence number in its topic, and how
	// many subscriptions it was queued for. It is sent once the message
	// is queued for every one of them.
	publishReply struct {
		Seq         uint64 `msgpack:"seq"`
		Subscribers int    `msgpack:"subscribers"`
	}
	// subscribeRequest opens a subscription for the sending process.
	// Queue is the queue's size in messages (0: the broker's default);
	// Lease is how long the broker keeps it while no Next is waiting (0:
	// the broker's default); Current asks for the newest message of every
	// matching topic first.
	subscribeRequest struct {
		Pattern string        `msgpack:"pattern"`
		Mode    Mode          `msgpack:"mode"`
		Queue   int           `msgpack:"queue"`
		Lease   time.Duration `msgpack:"lease"`
		Current bool          `msgpack:"current"`
	}
	// subscribeReply names the subscription, and says what the broker
	// granted.
	subscribeReply struct {
		ID    uint64        `msgpack:"id"`
		Epoch uint64        `msgpack:"epoch"`
		Queue int           `msgpack:"queue"`
		Lease time.Duration `msgpack:"lease"`
	}
	// nextRequest asks for the next batch of subscription ID, at most
	// Max messages (0: the broker's default). Ack is the number of the
	// last batch received (0 before the first): the broker keeps a batch
	// until it is acknowledged, and sends it again when it was not.
	// The broker holds the request until a message is queued, unless
	// NoWait.
	nextRequest struct {
		ID     uint64 `msgpack:"id"`
		Epoch  uint64 `msgpack:"epoch"`
		Ack    uint64 `msgpack:"ack"`
		Max    int    `msgpack:"max"`
		NoWait bool   `msgpack:"nowait"`
	}
	// nextReply is a batch: its number (0 for an empty one, which needs no
	// acknowledgement), its messages in order, and how many messages this
	// subscription has lost so far (overflow, conflation, or too large
	// for the reply).
	nextReply struct {
		Batch    uint64    `msgpack:"batch"`
		Messages []Message `msgpack:"messages"`
		Dropped  uint64    `msgpack:"dropped"`
	}
	// unsubscribeRequest ends subscription ID, acknowledging batch Ack.
	unsubscribeRequest struct {
		ID    uint64 `msgpack:"id"`
		Epoch uint64 `msgpack:"epoch"`
		Ack   uint64 `msgpack:"ack"`
	}
	// unsubscribeReply: the final count of messages lost.
	unsubscribeReply struct {
		Dropped uint64 `msgpack:"dropped"`
	}
	// statsRequest asks for the broker's state.
	statsRequest struct{}
)

func (publishRequest) TypeTag() string     { return "pubsub.Publish" }
func (publishReply) TypeTag() string       { return "pubsub.PublishReply" }
func (subscribeRequest) TypeTag() string   { return "pubsub.Subscribe" }
func (subscribeReply) TypeTag() string     { return "pubsub.SubscribeReply" }
func (nextRequest) TypeTag() string        { return "pubsub.Next" }
func (nextReply) TypeTag() string          { return "pubsub.NextReply" }
func (unsubscribeRequest) TypeTag() string { return "pubsub.Unsubscribe" }
func (unsubscribeReply) TypeTag() string   { return "pubsub.UnsubscribeReply" }
func (statsRequest) TypeTag() string       { return "pubsub.Stats" }
func (Stats) TypeTag() string              { return "pubsub.StatsReply" }

// Stats is a snapshot of a broker.
type Stats struct {
	Epoch         uint64             `msgpack:"epoch"`
	Topics        int                `msgpack:"topics"`
	RetainedBytes int64              `msgpack:"retained_bytes"`
	Subscriptions []SubscriptionInfo `msgpack:"subscriptions"` // by ID
}

// SubscriptionInfo describes one subscription.
type SubscriptionInfo struct {
	ID        uint64 `msgpack:"id"`
	Pattern   string `msgpack:"pattern"`
	Mode      Mode   `msgpack:"mode"`
	PID       int    `msgpack:"pid"`                // the local subscriber's; 0 for a remote one
	Host      string `msgpack:"host,omitempty"`     // a remote subscriber's host; "" for a local one
	HostPID   int    `msgpack:"host_pid,omitempty"` // a remote subscriber's pid on its host
	Size      int    `msgpack:"size"`               // the queue's size
	Queued    int    `msgpack:"queued"`             // messages waiting, in flight included
	Delivered uint64 `msgpack:"delivered"`          // messages acknowledged
	Dropped   uint64 `msgpack:"dropped"`            // messages lost
	Waiting   bool   `msgpack:"waiting"`            // a Next is held
}

func codeErr(code typed.Code, err error) error {
	return &typed.Error{Code: code, Message: err.Error()}
}

// fromRemote maps the broker's error replies to this package's sentinels.
func fromRemote(err error) error {
	var e *typed.Error
	if !errors.As(err, &e) {
		return err
	}
	switch e.Code {
	case codeBadTopic:
		return errorf("%w (%s)", ErrBadTopic, e.Message)
	case codeNoSubscription:
		return errorf("%w (%s)", ErrEnded, e.Message)
	case codeLimit:
		return errorf("%w (%s)", ErrLimit, e.Message)
	case codeStopping:
		return errorf("%w: %w (the broker is stopping)", ErrEnded, simpl.ErrPeerGone)
	}
	return err
}
