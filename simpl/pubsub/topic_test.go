package pubsub

import (
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func TestCheckTopic(t *testing.T) {
	for _, ok := range []string{"a", "plant/boiler/temp", "a//b", "/a", "a/", "/", "ünï/cödé", "a:b", "$SYS/x", strings.Repeat("x", MaxTopicLen)} {
		if err := CheckTopic(ok); err != nil {
			t.Errorf("CheckTopic(%q): %v", ok, err)
		}
		if err := CheckPattern(ok); err != nil {
			t.Errorf("CheckPattern(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "a+", "a/+", "#", "a/#", "a b", "a\tb", "a\nb", "\x00", "\x7f", "a\xffb", "\ufffd", strings.Repeat("x", MaxTopicLen+1), "a\u00a0b"} {
		if err := CheckTopic(bad); !errors.Is(err, ErrBadTopic) {
			t.Errorf("CheckTopic(%q) = %v, want ErrBadTopic", bad, err)
		}
	}
}

func TestCheckPattern(t *testing.T) {
	for _, ok := range []string{"#", "+", "+/+", "a/+/c", "a/#", "+/#", "a//#", "/+", "+/", "a/+/#"} {
		if err := CheckPattern(ok); err != nil {
			t.Errorf("CheckPattern(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "#/a", "a/#/b", "a#", "a/b+", "+a", "a/+b/c", "##", "++", "a b/#", "a/#/"} {
		if err := CheckPattern(bad); !errors.Is(err, ErrBadTopic) {
			t.Errorf("CheckPattern(%q) = %v, want ErrBadTopic", bad, err)
		}
	}
}

var matchCases = []struct {
	pattern, topic string
	want           bool
}{
	{"a", "a", true},
	{"a", "b", false},
	{"a", "a/b", false},
	{"a/b", "a", false},
	{"+", "a", true},
	{"+", "a/b", false},
	{"+", "", true}, // not a valid topic, but an empty level
	{"#", "a", true},
	{"#", "a/b/c", true},
	{"a/#", "a", true},
	{"a/#", "a/b", true},
	{"a/#", "a/b/c", true},
	{"a/#", "b/a", false},
	{"a/#", "ab", false},
	{"a/+", "a", false},
	{"a/+", "a/", true}, // an empty last level
	{"a/+", "a/b", true},
	{"a/+", "a/b/c", false},
	{"+/b", "a/b", true},
	{"+/b", "a/c", false},
	{"+/+/c", "a/b/c", true},
	{"+/#", "a", true},
	{"+/#", "a/b/c", true},
	{"a//b", "a//b", true},
	{"a/+/b", "a//b", true},
	{"plant/+/temp", "plant/boiler/temp", true},
	{"plant/+/temp", "plant/boiler/pressure", false},
	{"plant/#", "plant", true},
	{"plant/#", "plants", false},
}

func TestMatch(t *testing.T) {
	for _, c := range matchCases {
		if got := Match(c.pattern, c.topic); got != c.want {
			t.Errorf("Match(%q, %q) = %v, want %v", c.pattern, c.topic, got, c.want)
		}
	}
}

// trieMatch asks a trie holding patterns which of them match topic.
func trieMatch(patterns []string, topic string) []string {
	var tr trie
	for _, p := range patterns {
		tr.add(&sub{pattern: p})
	}
	var got []string
	for _, s := range tr.match(nil, topic) {
		got = append(got, s.pattern)
	}
	slices.Sort(got)
	return got
}

func TestTrie(t *testing.T) {
	for _, c := range matchCases {
		if c.topic == "" {
			continue
		}
		got := trieMatch([]string{c.pattern}, c.topic)
		if (len(got) == 1) != c.want || len(got) > 1 {
			t.Errorf("trie of %q matches %q: %v, want %v", c.pattern, c.topic, got, c.want)
		}
	}
	// Many patterns at once, against the reference, and removal prunes
	// the tree back to nothing.
	rng := rand.New(rand.NewPCG(1, 2))
	levels := []string{"a", "b", "", "+", "#"}
	randPattern := func() string {
		n := 1 + rng.IntN(4)
		var ls []string
		for i := range n {
			l := levels[rng.IntN(len(levels))]
			if l == "#" && i != n-1 {
				l = "+"
			}
			ls = append(ls, l)
		}
		return strings.Join(ls, "/")
	}
	randTopic := func() string {
		n := 1 + rng.IntN(4)
		var ls []string
		for range n {
			ls = append(ls, levels[rng.IntN(3)])
		}
		return strings.Join(ls, "/")
	}
	for range 200 {
		var tr trie
		var subs []*sub
		for range 1 + rng.IntN(30) {
			p := randPattern()
			if CheckPattern(p) != nil {
				continue
			}
			s := &sub{pattern: p}
			subs = append(subs, s)
			tr.add(s)
		}
		for range 20 {
			topic := randTopic()
			var want, got []*sub
			for _, s := range subs {
				if Match(s.pattern, topic) {
					want = append(want, s)
				}
			}
			got = tr.match(nil, topic)
			if !sameSubs(got, want) {
				t.Fatalf("topic %q: trie matched %v, want %v", topic, patterns(got), patterns(want))
			}
		}
		for _, s := range subs {
			tr.remove(s)
		}
		if len(tr.root.children) != 0 || len(tr.root.rest) != 0 || len(tr.root.exact) != 0 {
			t.Fatalf("trie not empty after removing everything: %+v", tr.root)
		}
	}
}

func sameSubs(a, b []*sub) bool {
	if len(a) != len(b) {
		return false
	}
	seen := make(map[*sub]int)
	for _, s := range a {
		seen[s]++
	}
	for _, s := range b {
		seen[s]--
	}
	for _, n := range seen {
		if n != 0 {
			return false
		}
	}
	return true
}

func patterns(subs []*sub) []string {
	var out []string
	for _, s := range subs {
		out = append(out, s.pattern)
	}
	return out
}

// FuzzMatch: CheckTopic, CheckPattern and Match never panic; a valid
// topic is a valid pattern that matches itself; "#" matches every topic;
// and the trie agrees with Match.
func FuzzMatch(f *testing.F) {
	for _, c := range matchCases {
		f.Add(c.pattern, c.topic)
	}
	f.Add("a/+/#", "a/b/c")
	f.Add("\xff", "a\x00")
	f.Fuzz(func(t *testing.T, pattern, topic string) {
		perr, terr := CheckPattern(pattern), CheckTopic(topic)
		if terr != nil {
			return
		}
		if err := CheckPattern(topic); err != nil {
			t.Fatalf("topic %q is not a valid pattern: %v", topic, err)
		}
		if !Match(topic, topic) || !Match("#", topic) {
			t.Fatalf("%q does not match itself or #", topic)
		}
		if perr != nil {
			return
		}
		want := Match(pattern, topic)
		got := trieMatch([]string{pattern, "#", topic}, topic)
		wantList := []string{"#", topic}
		if want {
			wantList = append(wantList, pattern)
		}
		slices.Sort(wantList)
		if !slices.Equal(got, wantList) {
			t.Fatalf("trie of %q, # and the topic matches %q: %q, want %q", pattern, topic, got, wantList)
		}
	})
}
