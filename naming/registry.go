package naming

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gosimpl/gosimpl/internal/sys"
)

// DefaultDir is the registry directory when $FIFO_PATH is unset; C SIMPL's
// default too.
const DefaultDir = "/var/tmp"

// MaxDirLen is the longest registry directory path C SIMPL accepts.
const MaxDirLen = 127

// Dir returns $FIFO_PATH, or DefaultDir when it is unset or empty.
func Dir() string {
	if d := os.Getenv("FIFO_PATH"); d != "" {
		return d
	}
	return DefaultDir
}

// Registry is the set of names attached in one directory. The zero value is
// not usable; call Open. Safe for concurrent use.
type Registry struct {
	dir string
}

// Open returns the registry in dir ("" means Dir()). The directory must
// exist and its path must be at most MaxDirLen bytes.
func Open(dir string) (*Registry, error) {
	if dir == "" {
		dir = Dir()
	}
	if len(dir) > MaxDirLen {
		return nil, fmt.Errorf("simpl: FIFO directory %q is longer than %d bytes", dir, MaxDirLen)
	}
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("simpl: FIFO directory: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("simpl: FIFO directory %q is not a directory", dir)
	}
	return &Registry{dir: dir}, nil
}

// Dir returns the registry's directory.
func (r *Registry) Dir() string { return r.dir }

// ReceivePath is the receive FIFO of name attached by pid.
func (r *Registry) ReceivePath(name string, pid int) string {
	return filepath.Join(r.dir, name+"."+strconv.Itoa(pid))
}

// ReplyPath is the reply FIFO of the sender identity whom in process pid.
func (r *Registry) ReplyPath(whom string, pid int) string {
	return filepath.Join(r.dir, "Y"+whom+"."+strconv.Itoa(pid))
}

// Entry is one attached name.
type Entry struct {
	Name string
	PID  int
	// Alive: the owner is running (see Alive) and runs as the user that
	// owns the receive FIFO. Only such an entry holds the name.
	Alive bool
	// Forged: process PID is running but is not the FIFO's maker: the
	// FIFO's owner is none of its real, effective or file-system uids (or
	// they cannot be read). Lookup ignores such an entry and Reap leaves
	// it; it never holds the name.
	Forged  bool
	UID     int       // the user that owns the receive FIFO
	Created time.Time // when the receive FIFO was made
	Path    string    // the receive FIFO
}

// owned tells whether process pid runs as uid: its real, effective or
// file-system uid (the last is the one files are made with). A process
// whose uids cannot be read is not uid's; one that has exited is
// sys.ErrExited.
func owned(pid, uid int) (bool, error) {
	uids, err := sys.ProcessUIDs(pid)
	if err != nil {
		return false, err
	}
	return uint32(uid) == uids[0] || uint32(uid) == uids[1] || uint32(uid) == uids[3], nil
}

// fifo is one FIFO in the directory named STEM.PID.
type fifo struct {
	stem string
	pid  int
}

func (r *Registry) scan() (map[fifo]bool, error) {
	des, err := os.ReadDir(r.dir)
	if err != nil {
		return nil, fmt.Errorf("simpl: reading FIFO directory: %w", err)
	}
	set := make(map[fifo]bool)
	for _, de := range des {
		if de.Type()&fs.ModeNamedPipe == 0 {
			continue
		}
		if f, ok := splitFIFO(de.Name()); ok {
			set[f] = true
		}
	}
	return set, nil
}

// ParseFIFO reads a FIFO's file name in the directory, "STEM.PID", as
// the registry does: the stem is a name for a receive FIFO (Y and a
// name for a reply FIFO), the pid its owner's. ok is false for a file
// name that is not a FIFO's.
func ParseFIFO(base string) (stem string, pid int, ok bool) {
	f, ok := splitFIFO(base)
	return f.stem, f.pid, ok
}

// splitFIFO parses "STEM.PID"; the pid is the digits after the last dot.
func splitFIFO(base string) (fifo, bool) {
	i := strings.LastIndexByte(base, '.')
	if i <= 0 || i == len(base)-1 || len(base)-i-1 > 10 {
		return fifo{}, false
	}
	digits := base[i+1:]
	for j := 0; j < len(digits); j++ {
		if digits[j] < '0' || digits[j] > '9' {
			return fifo{}, false
		}
	}
	pid, err := strconv.Atoi(digits)
	if err != nil || pid <= 0 {
		return fifo{}, false
	}
	return fifo{stem: base[:i], pid: pid}, true
}

// isName tells whether the FIFO f is a receive FIFO (a name) rather than a
// reply FIFO: reply FIFOs are "Y"+whom and whom's receive FIFO or a "#"
// marks them. A process that attached both "X" and "YX" is read as having
// attached "X" only; that is C SIMPL's own ambiguity.
func isName(set map[fifo]bool, f fifo) bool {
	if strings.ContainsRune(f.stem, '#') || CheckLocal(f.stem) != nil {
		return false
	}
	if len(f.stem) > 1 && f.stem[0] == 'Y' && set[fifo{f.stem[1:], f.pid}] && !set[fifo{"Y" + f.stem, f.pid}] {
		return false
	}
	return true
}

// List returns every attached name, live, stale or forged, sorted by name
// and pid.
func (r *Registry) List() ([]Entry, error) { return r.list("") }

// list returns the entries of name, or of every name when name is "".
func (r *Registry) list(name string) ([]Entry, error) {
	set, err := r.scan()
	if err != nil {
		return nil, err
	}
	var out []Entry
	for f := range set {
		if (name != "" && f.stem != name) || !isName(set, f) {
			continue
		}
		e := Entry{Name: f.stem, PID: f.pid, Path: r.ReceivePath(f.stem, f.pid)}
		created, err := Created(e.Path)
		if err != nil {
			continue // removed while we looked
		}
		e.Created = created
		uid, err := sys.Owner(e.Path)
		if err != nil {
			continue // removed while we looked
		}
		e.UID = uid
		if Alive(f.pid, e.Created) {
			// A name belongs to its owner: anyone may make NAME.PID in a
			// shared directory, only PID's user can make it as that user.
			switch ok, err := owned(f.pid, uid); {
			case errors.Is(err, sys.ErrExited): // died meanwhile: stale
			case ok:
				e.Alive = true
			default:
				e.Forged = true
			}
		}
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].PID < out[j].PID
	})
	return out, nil
}

// Entries returns every entry, live or stale, for name.
func (r *Registry) Entries(name string) ([]Entry, error) {
	if err := CheckLocal(name); err != nil {
		return nil, err
	}
	return r.list(name)
}

// Lookup returns the live owner of name; forged entries (see Entry) are
// ignored. When two live processes hold it
// (a race between C SIMPL attachers) the earliest attach wins.
func (r *Registry) Lookup(name string) (Entry, error) {
	if err := CheckLocal(name); err != nil {
		return Entry{}, err
	}
	all, err := r.list(name)
	if err != nil {
		return Entry{}, err
	}
	var best Entry
	found := false
	for _, e := range all {
		if !e.Alive {
			continue
		}
		if !found || Earlier(e, best) {
			best, found = e, true
		}
	}
	if !found {
		return Entry{}, fmt.Errorf("%w: %q in %s", ErrNotFound, name, r.dir)
	}
	return best, nil
}

// Earlier orders two claims on one name: the older receive FIFO wins, and
// the lower pid breaks a tie.
func Earlier(a, b Entry) bool {
	if !a.Created.Equal(b.Created) {
		return a.Created.Before(b.Created)
	}
	return a.PID < b.PID
}

// Reap removes the FIFOs of every dead owner of name, or of every dead
// owner when name is "": receive FIFOs, their reply FIFOs and gosimpl's
// auxiliary reply FIFOs. It returns how many files it removed. FIFOs of live
// processes are never touched, nor are files this process may not remove
// (another user's, in a sticky directory such as /var/tmp): those are left
// and not counted.
func (r *Registry) Reap(name string) (int, error) {
	set, err := r.scan()
	if err != nil {
		return 0, err
	}
	alive := make(map[int]bool)
	isAlive := func(f fifo, path string) bool {
		if a, ok := alive[f.pid]; ok {
			return a
		}
		created, err := Created(path)
		a := err == nil && Alive(f.pid, created)
		alive[f.pid] = a
		return a
	}
	n := 0
	var errs []error
	remove := func(p string) {
		if err := os.Remove(p); err == nil {
			n++
		} else if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, fs.ErrPermission) {
			errs = append(errs, err)
		}
	}
	for f := range set {
		path := filepath.Join(r.dir, f.stem+"."+strconv.Itoa(f.pid))
		if isName(set, f) {
			// "Y"+name alone is a reply FIFO whose name's FIFO was
			// removed before its process died.
			if (name == "" || f.stem == name || f.stem == "Y"+name) && !isAlive(f, path) {
				// The reply FIFO first: if this process dies between the
				// two, the name's FIFO still marks what to reap.
				remove(r.ReplyPath(f.stem, f.pid))
				remove(path)
			}
			continue
		}
		// A reply FIFO: reap it when reaping everything, or when it
		// belongs to the name being reaped (left alone by a process that
		// died while reaping, or an auxiliary one, NAME#k).
		if f.stem[0] == 'Y' && (name == "" || f.stem[1:] == name || IsAuxOf(f.stem[1:], name)) && !isAlive(f, path) {
			remove(path)
		}
	}
	return n, errors.Join(errs...)
}

// SweepLimit is how many processes' FIFOs ReapSome checks at most: the
// bound on the work one attach spends on other names' stale FIFOs.
const SweepLimit = 32

// ReapSome removes the FIFOs that dead processes left in the directory,
// whatever their names, checking at most max processes (picked in no fixed
// order, so that repeated calls cover the directory) other than this one.
// Like Reap it never touches a live process's FIFOs and leaves files it may
// not remove. It returns how many files it removed. Attach calls it so
// that the FIFOs of killed processes do not pile up.
func (r *Registry) ReapSome(max int) (int, error) {
	set, err := r.scan()
	if err != nil {
		return 0, err
	}
	byPID := make(map[int][]fifo)
	for f := range set {
		byPID[f.pid] = append(byPID[f.pid], f)
	}
	self := os.Getpid()
	n, checked := 0, 0
	for pid, fifos := range byPID {
		if checked >= max {
			break
		}
		if pid == self {
			continue
		}
		checked++
		// Reply FIFOs first: if this process dies in between, the name's
		// FIFO still marks what to reap.
		sort.Slice(fifos, func(i, j int) bool { return !isName(set, fifos[i]) && isName(set, fifos[j]) })
		for _, f := range fifos {
			path := filepath.Join(r.dir, f.stem+"."+strconv.Itoa(f.pid))
			created, err := Created(path)
			if err != nil || Alive(pid, created) {
				continue
			}
			if os.Remove(path) == nil {
				n++
			}
		}
	}
	return n, nil
}

// AuxWhom is the sender identity gosimpl uses for the k-th (k >= 1)
// concurrent Send from one attached name: the name, cut to leave room, then
// "#" and k. '#' cannot appear in a name, so these never clash with one.
func AuxWhom(name string, k int) string {
	suffix := "#" + strconv.Itoa(k)
	if len(name)+len(suffix) > MaxNameLen {
		name = name[:MaxNameLen-len(suffix)]
	}
	return name + suffix
}

// IsAuxOf reports whether whom is one of name's auxiliary identities, that
// is AuxWhom(name, k) for some k >= 1. It allocates nothing: receivers call
// it for every request.
func IsAuxOf(whom, name string) bool {
	i := strings.LastIndexByte(whom, '#')
	digits := whom[i+1:]
	// AuxWhom writes k >= 1 in decimal: no sign, no leading zero.
	if i < 0 || name == "" || digits == "" || digits[0] == '0' || len(digits) > 18 {
		return false
	}
	for j := 0; j < len(digits); j++ {
		if digits[j] < '0' || digits[j] > '9' {
			return false
		}
	}
	if n := MaxNameLen - (len(whom) - i); len(name) > n {
		if n < 0 {
			return false
		}
		name = name[:n] // AuxWhom shortens the name to make room
	}
	return whom[:i] == name
}
