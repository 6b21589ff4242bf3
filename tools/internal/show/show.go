// Package show formats message bytes for the command-line tools: text as
// it is, anything else as hex.
package show

import (
	"encoding/hex"
	"unicode"
	"unicode/utf8"
)

// Bytes returns b as text when it is printable UTF-8, else "hex:" and its
// hex digits. An empty message is "(empty)".
func Bytes(b []byte) string {
	if len(b) == 0 {
		return "(empty)"
	}
	if utf8.Valid(b) {
		ok := true
		for _, r := range string(b) {
			if !unicode.IsPrint(r) && r != '\t' {
				ok = false
				break
			}
		}
		if ok {
			return string(b)
		}
	}
	return "hex:" + hex.EncodeToString(b)
}
