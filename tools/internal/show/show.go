// Package show formats message bytes and names for the command-line
// tools: text as it is, anything else as hex; long messages cut short
// with a marker; names that are not plain printable text quoted.
package show

import (
	"encoding/hex"
	"fmt"
	"regexp"
	"strconv"
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
// would read as one of the other forms (it starts with "hex:", is
// "(empty)", or ends as Cut's marker does) is shown as hex too.
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
	if !utf8.Valid(b) || string(b) == Empty || strings.HasPrefix(string(b), HexPrefix) || marker.Match(b) {
		return false
	}
	for _, r := range string(b) {
		if !unicode.IsPrint(r) && r != '\t' {
			return false
		}
	}
	return true
}

// marker matches the end Cut gives a message it cuts short.
var marker = regexp.MustCompile(`… \(\d+ more bytes?\)$`)

// Cut is Bytes(b) when b is at most max bytes long, or max is 0 or less.
// A longer b shows as its first max bytes (text cut at a character
// boundary), as Bytes shows them, followed by "… (N more bytes)", N the
// bytes left out. Bytes never ends that way, so a message cut short is
// never taken for a whole one.
func Cut(b []byte, max int) string {
	if max <= 0 || len(b) <= max {
		return Bytes(b)
	}
	n := max
	if utf8.Valid(b) {
		for n > 0 && !utf8.RuneStart(b[n]) {
			n--
		}
		if n == 0 { // the first character is longer than max
			n = max
		}
	}
	more := len(b) - n
	unit := "bytes"
	if more == 1 {
		unit = "byte"
	}
	return fmt.Sprintf("%s… (%d more %s)", Bytes(b[:n]), more, unit)
}

// Name returns a name (of a SIMPL channel, a topic) as it is when it is
// printable UTF-8 without spaces and does not start with '"', else
// quoted as Go quotes strings: a name that holds a control character, a
// line or paragraph separator, a right-to-left override or a byte that
// is not UTF-8 cannot disguise itself or the line it is printed in, and
// two names never look the same.
func Name(s string) string {
	if s != "" && utf8.ValidString(s) && s[0] != '"' &&
		!strings.ContainsFunc(s, func(r rune) bool { return !unicode.IsPrint(r) || r == ' ' }) {
		return s
	}
	return strconv.Quote(s)
}
