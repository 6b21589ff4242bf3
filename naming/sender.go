package naming

import (
	"fmt"
	"strings"
)

// CheckSender checks a sender identity as it arrives from another process,
// on any transport: an attachable name (CheckLocal), or one of its
// auxiliary identities NAME#k (AuxWhom). It is the one rule for what
// Message.Sender can return, so a receiver never sees control bytes, a
// path, or an empty name there.
func CheckSender(whom string) error {
	base, _, aux := strings.Cut(whom, "#")
	if err := CheckLocal(base); err != nil {
		return fmt.Errorf("sender %w", err)
	}
	if aux && !IsAuxOf(whom, base) {
		return fmt.Errorf("%w: sender %q is not NAME#k", ErrBadName, whom)
	}
	return nil
}
