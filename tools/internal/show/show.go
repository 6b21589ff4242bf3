// Package show formats message bytes for the command-line tools: text as
// it is, anything else as hex.
package show

import (
	"encoding/hex"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Empty is how Bytes shows an empty message.
const Empty = "(empty)"

// HexPrefix starts the hex form Bytes uses for anything that is not text.
const HexPrefix = "hex:"

// Bytes returns b as text when it is printable UTF-8 (tabs allowed), else
// "hex:" and its hex digits. An empty message is "(empty)". The result is
// always one line, and different inputs never look the same: text that
// would read as one of the other forms (it starts with "hex:" or is
// "(empty)") is shown as hex too.
func Bytes(b []byte) string {
	if len(b) == 0 {
		return Empty
	}
	if isText(b) {
		return string(b)
	}
	return HexPrefix + hex.EncodeToString(b)
}

func isText(b []byte) bool {
	if !utf8.Valid(b) || string(b) == Empty || strings.HasPrefix(string(b), HexPrefix) {
		return false
	}
	for _, r := range string(b) {
		if !unicode.IsPrint(r) && r != '\t' {
			return false
		}
	}
	return true
}
