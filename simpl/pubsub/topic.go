package pubsub

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxTopicLen is the longest topic or pattern, in bytes.
const MaxTopicLen = 256

// CheckTopic reports whether topic may be published to: 1 to MaxTopicLen
// bytes of UTF-8, levels separated by '/', and none of '+', '#',
// whitespace or control characters. Levels may be empty ("a//b"). The
// error wraps ErrBadTopic.
func CheckTopic(topic string) error {
	if err := checkChars(topic, "topic"); err != nil {
		return err
	}
	if i := strings.IndexAny(topic, "+#"); i >= 0 {
		return errorf("%w: topic %q: %q is a wildcard, for patterns only", ErrBadTopic, topic, topic[i])
	}
	return nil
}

// CheckPattern reports whether pattern may be subscribed to: a topic in
// which a level may also be "+" (any one level) or, as the last level
// only, "#" (any number of levels, none included: "a/#" matches "a",
// "a/b" and "a/b/c"). A level holding a wildcard holds nothing else. The
// error wraps ErrBadTopic.
func CheckPattern(pattern string) error {
	if err := checkChars(pattern, "pattern"); err != nil {
		return err
	}
	rest := pattern
	for {
		level, tail, more := strings.Cut(rest, "/")
		switch {
		case level == "#" && more:
			return errorf("%w: pattern %q: '#' must be the last level", ErrBadTopic, pattern)
		case level != "+" && level != "#" && strings.ContainsAny(level, "+#"):
			return errorf("%w: pattern %q: a wildcard must be a whole level", ErrBadTopic, pattern)
		}
		if !more {
			return nil
		}
		rest = tail
	}
}

func checkChars(s, what string) error {
	switch {
	case s == "":
		return errorf("%w: empty %s", ErrBadTopic, what)
	case len(s) > MaxTopicLen:
		return errorf("%w: %s of %d bytes, the limit is %d", ErrBadTopic, what, len(s), MaxTopicLen)
	case !utf8.ValidString(s):
		return errorf("%w: %s %q is not UTF-8", ErrBadTopic, what, s)
	}
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) || r == utf8.RuneError {
			return errorf("%w: %s %q holds %q (no whitespace or control characters)", ErrBadTopic, what, s, r)
		}
	}
	return nil
}

// Match reports whether topic matches pattern (see CheckPattern), both
// assumed valid: '+' matches exactly one level, a last "#" any number of
// levels, itself included or not, and every other level itself.
func Match(pattern, topic string) bool {
	for {
		plevel, prest, pmore := strings.Cut(pattern, "/")
		if plevel == "#" {
			return true
		}
		tlevel, trest, tmore := strings.Cut(topic, "/")
		if plevel != "+" && plevel != tlevel {
			return false
		}
		switch {
		case !pmore && !tmore:
			return true
		case !tmore:
			// The topic ends: only "/#" may follow ("a/#" matches "a").
			return prest == "#"
		case !pmore:
			return false
		}
		pattern, topic = prest, trest
	}
}

// trie holds the subscriptions by pattern, one level per node, so that a
// publish finds the matching ones by walking the topic's levels instead of
// testing every pattern.
type trie struct {
	root node
}

type node struct {
	children map[string]*node // by level; "+" is the one-level wildcard
	exact    []*sub           // patterns that end here
	rest     []*sub           // patterns that end here with "/#" (or are "#")
}

// add inserts s under its pattern.
func (t *trie) add(s *sub) {
	n := &t.root
	levels := s.pattern
	for {
		level, tail, more := strings.Cut(levels, "/")
		if level == "#" {
			n.rest = append(n.rest, s)
			return
		}
		child := n.children[level]
		if child == nil {
			if n.children == nil {
				n.children = make(map[string]*node)
			}
			child = &node{}
			n.children[level] = child
		}
		n = child
		if !more {
			n.exact = append(n.exact, s)
			return
		}
		levels = tail
	}
}

// remove takes s out and prunes the nodes left empty.
func (t *trie) remove(s *sub) {
	removeFrom(&t.root, s.pattern, s)
}

// removeFrom removes s from below n, levels being what remains of its
// pattern, and reports whether n is left empty.
func removeFrom(n *node, levels string, s *sub) bool {
	level, tail, more := strings.Cut(levels, "/")
	switch {
	case level == "#":
		n.rest = without(n.rest, s)
	default:
		child := n.children[level]
		if child == nil {
			return false
		}
		var empty bool
		if more {
			empty = removeFrom(child, tail, s)
		} else {
			child.exact = without(child.exact, s)
			empty = len(child.exact) == 0 && len(child.rest) == 0 && len(child.children) == 0
		}
		if empty {
			delete(n.children, level)
		}
	}
	return len(n.exact) == 0 && len(n.rest) == 0 && len(n.children) == 0
}

func without(list []*sub, s *sub) []*sub {
	for i, x := range list {
		if x == s {
			last := len(list) - 1
			list[i] = list[last]
			list[last] = nil
			return list[:last]
		}
	}
	return list
}

// match appends to dst every subscription whose pattern matches topic,
// each once.
func (t *trie) match(dst []*sub, topic string) []*sub {
	return matchFrom(dst, &t.root, topic, true)
}

// matchFrom matches what remains of a topic (levels; more says whether
// there is a level left at all, since "" is an empty level) below n.
// Each node is reached by one path only, so nothing is appended twice;
// the work is bounded by the number of nodes.
func matchFrom(dst []*sub, n *node, levels string, more bool) []*sub {
	dst = append(dst, n.rest...)
	if !more {
		return append(dst, n.exact...)
	}
	if len(n.children) == 0 {
		return dst
	}
	level, tail, next := strings.Cut(levels, "/")
	if child := n.children[level]; child != nil {
		dst = matchFrom(dst, child, tail, next)
	}
	if level != "+" { // a topic holds no '+', but never follow one twice
		if child := n.children["+"]; child != nil {
			dst = matchFrom(dst, child, tail, next)
		}
	}
	return dst
}
