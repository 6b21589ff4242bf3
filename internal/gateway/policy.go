package gateway

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/gosimpl/gosimpl/naming"
)

// A Policy says which senders on other hosts may reach which of this
// host's names. It is read from a small text file, one rule per line:
//
//	# comments and blank lines are ignored
//	allow HOST[:PROGRAM] NAME...
//	deny  HOST[:PROGRAM] NAME...
//
// HOST is the sending host as NATS vouches for it (the subject a request
// is published on ends in it, and a host's NATS user may publish only its
// own: netwire.Permissions), or "*" for any host. PROGRAM is the sending
// program's SIMPL name as its host's gateway reports it, or "*" (the
// same as leaving it out). A NAME is one of this host's SIMPL names,
// "PREFIX*" for every name that begins with PREFIX, or "*" for all.
//
// The first rule whose sender and name match decides; a request no rule
// matches is denied. So a policy file denies by default: a gateway
// given one serves only what it allows. A gateway given none serves
// every host that can reach it (the hosts NATS admits: the cluster's own,
// or the deployment's users allowed to publish requests).
//
// A Policy is read-only once made and safe for concurrent use.
type Policy struct {
	rules []rule
}

type rule struct {
	allow   bool
	host    string // "" for any
	program string // "" for any
	names   []pattern
	line    int
}

// pattern is a name, or a prefix of names when prefix is set.
type pattern struct {
	s      string
	prefix bool
}

func (p pattern) match(name string) bool {
	if p.prefix {
		return strings.HasPrefix(name, p.s)
	}
	return name == p.s
}

// ErrPolicy is what ParsePolicy returns for a file it cannot take.
var ErrPolicy = errors.New("bad policy")

// maxPolicy bounds a policy file: it is read whole.
const maxPolicy = 1 << 20

// ReadPolicy reads the policy file at path.
func ReadPolicy(path string) (*Policy, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxPolicy+1))
	if err != nil {
		return nil, fmt.Errorf("policy %s: %w", path, err)
	}
	p, err := ParsePolicy(b)
	if err != nil {
		return nil, fmt.Errorf("policy %s: %w", path, err)
	}
	return p, nil
}

// ParsePolicy reads a policy (see Policy) from its text. An error names
// the line and what is wrong with it.
func ParsePolicy(b []byte) (*Policy, error) {
	if len(b) > maxPolicy {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrPolicy, len(b), maxPolicy)
	}
	p := &Policy{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), maxPolicy)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		r, err := parseRule(f)
		if err != nil {
			return nil, fmt.Errorf("%w: line %d: %v", ErrPolicy, n, err)
		}
		r.line = n
		p.rules = append(p.rules, r)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrPolicy, err)
	}
	return p, nil
}

func parseRule(f []string) (rule, error) {
	var r rule
	switch f[0] {
	case "allow":
		r.allow = true
	case "deny":
	default:
		return r, fmt.Errorf("%q: want allow or deny", f[0])
	}
	if len(f) < 3 {
		return r, fmt.Errorf("%s: want %s HOST[:PROGRAM] NAME...", f[0], f[0])
	}
	host, program, _ := strings.Cut(f[1], ":")
	switch {
	case host == "":
		return r, fmt.Errorf("sender %q: no host (\"*\" for any)", f[1])
	case host != "*" && (len(host) > naming.MaxHostLen || strings.ContainsAny(host, "*:")):
		return r, fmt.Errorf("host %q: want a host name of at most %d bytes, or \"*\"", host, naming.MaxHostLen)
	case host != "*":
		r.host = host
	}
	switch {
	case program == "" || program == "*":
	case strings.Contains(program, "*"):
		return r, fmt.Errorf("program %q: want a SIMPL name or \"*\"", program)
	default:
		if err := naming.CheckLocal(program); err != nil {
			return r, fmt.Errorf("program %q: %v", program, err)
		}
		r.program = program
	}
	for _, name := range f[2:] {
		pat := pattern{s: name}
		if s, ok := strings.CutSuffix(name, "*"); ok {
			pat = pattern{s: s, prefix: true}
		}
		if strings.Contains(pat.s, "*") {
			return r, fmt.Errorf("name %q: a \"*\" may only end it", name)
		}
		if pat.s != "" {
			// A prefix need not be a whole name, but its bytes must be
			// a name's.
			if err := naming.CheckLocal(pat.s); err != nil {
				return r, fmt.Errorf("name %q: %v", name, err)
			}
		}
		r.names = append(r.names, pat)
	}
	return r, nil
}

// Rules is how many rules p has.
func (p *Policy) Rules() int {
	if p == nil {
		return 0
	}
	return len(p.rules)
}

// Allows reports whether program on host may reach name, and the line of
// the rule that decided (0: no rule matched, so denied). A nil Policy
// allows everything.
func (p *Policy) Allows(host, program, name string) (bool, int) {
	if p == nil {
		return true, 0
	}
	// A concurrent Send of a program shows as NAME#k: the program is
	// NAME.
	program, _, _ = strings.Cut(program, "#")
	for _, r := range p.rules {
		if r.host != "" && r.host != host || r.program != "" && r.program != program {
			continue
		}
		for _, pat := range r.names {
			if pat.match(name) {
				return r.allow, r.line
			}
		}
	}
	return false, 0
}
