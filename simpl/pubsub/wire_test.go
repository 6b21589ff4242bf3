package pubsub

import (
	"maps"
	"slices"
	"testing"

	"github.com/gosimpl/gosimpl/simpl/typed"
	"github.com/vmihailenco/msgpack/v5"
)

// The protocol is a contract with peers in any language (docs/pubsub.md):
// the Go names of its messages may change, their tags, field names and
// error codes may not.
func TestWireNames(t *testing.T) {
	for _, tc := range []struct {
		msg    typed.Tagged
		tag    string
		fields []string
	}{
		{publishRequest{}, "pubsub.Publish", []string{"data", "topic"}},
		{publishReply{}, "pubsub.PublishReply", []string{"seq", "subscribers"}},
		{subscribeRequest{}, "pubsub.Subscribe", []string{"current", "lease", "mode", "pattern", "queue"}},
		{subscribeReply{}, "pubsub.SubscribeReply", []string{"epoch", "id", "lease", "queue"}},
		{nextRequest{}, "pubsub.Next", []string{"ack", "epoch", "id", "max", "nowait"}},
		{nextReply{}, "pubsub.NextReply", []string{"batch", "dropped", "messages"}},
		{unsubscribeRequest{}, "pubsub.Unsubscribe", []string{"ack", "epoch", "id"}},
		{unsubscribeReply{}, "pubsub.UnsubscribeReply", []string{"dropped"}},
		{statsRequest{}, "pubsub.Stats", []string{}},
		{Stats{}, "pubsub.StatsReply", []string{"epoch", "retained_bytes", "subscriptions", "topics"}},
	} {
		if got := tc.msg.TypeTag(); got != tc.tag {
			t.Errorf("%T: tag %q, want %q", tc.msg, got, tc.tag)
		}
		b, err := msgpack.Marshal(tc.msg)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := msgpack.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		if got := slices.Sorted(maps.Keys(m)); !slices.Equal(got, tc.fields) {
			t.Errorf("%s: fields %q, want %q", tc.tag, got, tc.fields)
		}
	}
	codes := []typed.Code{codeBadTopic, codeNoSubscription, codeLimit, codeStopping}
	if !slices.Equal(codes, []typed.Code{110, 111, 112, 113}) {
		t.Errorf("error codes %v, want 110 bad topic, 111 no subscription, 112 limit, 113 stopping", codes)
	}
}
