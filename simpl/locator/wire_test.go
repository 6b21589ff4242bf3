package locator

import (
	"maps"
	"slices"
	"testing"

	"github.com/gosimpl/gosimpl/simpl/typed"
	"github.com/vmihailenco/msgpack/v5"
)

// The protocol is a contract with peers in any language (docs/locator.md):
// the Go names of its messages may change, their tags, field names and
// error codes may not.
func TestWireNames(t *testing.T) {
	for _, tc := range []struct {
		msg    typed.Tagged
		tag    string
		fields []string
	}{
		{locateRequest{}, "locator.Locate", []string{"name"}},
		{locateReply{}, "locator.LocateReply", []string{"info"}},
		{listRequest{}, "locator.List", []string{"pattern"}},
		{listReply{}, "locator.ListReply", []string{"epoch", "infos", "seq"}},
		{watchRequest{}, "locator.Watch", []string{"after", "epoch", "max", "pattern", "wait"}},
		{watchReply{}, "locator.WatchReply", []string{"epoch", "events", "next", "reset", "snapshot"}},
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
	if codeNotFound != 100 || codeBadRequest != 101 {
		t.Errorf("error codes %d and %d, want 100 (not found) and 101 (bad request)", codeNotFound, codeBadRequest)
	}
}
