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

// owned tells whether process pid may have made a file owned by uid: it
// runs as uid (its real, effective, saved or file-system uid, the last
// being the one files are made with), or uid is root's (only root makes
// root's files, and a daemon that attached as root and then dropped its
// privileges keeps its name). A process /proc does not show (hidepid, or
// /proc not mounted) is given the benefit of the doubt, as C SIMPL, which
// never checks, gives everyone. One that has exited is sys.ErrExited.
func owned(pid, uid int) (bool, error) {
	uids, err := sys.ProcessUIDs(pid)
	switch {
	case errors.Is(err, sys.ErrExited) && sys.ProcessExists(pid) && !procShows(pid):
		return true, nil // hidden, not exited
	case errors.Is(err, sys.ErrExited):
		return false, err
	case err != nil:
		return true, nil // unreadable (hidepid=1): cannot tell
	}
	u := uint32(uid)
	return uid == 0 || u == uids[0] || u == uids[1] || u == uids[2] || u == uids[3], nil
}

// procShows tells whether /proc has an entry for pid.
func procShows(pid int) bool {
	_, err := os.Stat(procDir + "/" + strconv.Itoa(pid))
	return err == nil
}

// fifo is one FIFO in the directory named STEM.PID.
type fifo struct {
	stem string
	pid  int
}

func (r *Registry) scan() (map[fifo]bool, error) {
	d, err := os.Open(r.dir)
	if err != nil {
		return nil, fmt.Errorf("simpl: reading FIFO directory: %w", err)
	}
	des, err := d.ReadDir(-1) // unsorted: a map is made of it anyway
	d.Close()
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
	if err != nil || pid <= 0 || pid > maxPID {
		return fifo{}, false
	}
	return fifo{stem: base[:i], pid: pid}, true
}

// maxPID is the largest pid Linux gives (PID_MAX_LIMIT on 64-bit
// systems): "backup.20240101" is no process's FIFO.
const maxPID = 1 << 22

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
		if aliveFile(readProc(f.pid), f.pid, e.Path, e.Created) {
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

// aliveFile tells whether process pid (read as pi) is the live owner of
// the registry file at path, made at created: Alive's verdict, or, where
// that rests on the start time alone, whether the process holds the file
// open (see holds).
func aliveFile(pi procInfo, pid int, path string, created time.Time) bool {
	alive, reused := pi.aliveAt(created)
	return alive || (reused && holds(pid, path))
}

// owners judges the owners of the FIFOs of one scan, reading each process
// once: a receive FIFO by its own age, a reply FIFO by its name's receive
// FIFO's where there is one (the process holds both, and a reply FIFO
// need not be open when the clocks disagree).
type owners struct {
	r       *Registry
	set     map[fifo]bool
	procs   map[int]procInfo
	verdict map[fifo]bool
}

func newOwners(r *Registry, set map[fifo]bool) *owners {
	return &owners{r: r, set: set, procs: make(map[int]procInfo), verdict: make(map[fifo]bool)}
}

func (o *owners) path(f fifo) string {
	return filepath.Join(o.r.dir, f.stem+"."+strconv.Itoa(f.pid))
}

// alive tells whether f's owner is alive and made it.
func (o *owners) alive(f fifo) bool {
	if a, ok := o.verdict[f]; ok {
		return a
	}
	if !isName(o.set, f) {
		if name, ok := o.nameOf(f); ok {
			a := o.alive(name)
			o.verdict[f] = a
			return a
		}
	}
	pi, ok := o.procs[f.pid]
	if !ok {
		pi = readProc(f.pid)
		o.procs[f.pid] = pi
	}
	path := o.path(f)
	created, err := Created(path)
	a := err == nil && aliveFile(pi, f.pid, path, created)
	o.verdict[f] = a
	return a
}

// nameOf is the receive FIFO in the scan that reply FIFO f goes with:
// "Y"+NAME's NAME, and an auxiliary "Y"+NAME#k's NAME.
func (o *owners) nameOf(f fifo) (fifo, bool) {
	if len(f.stem) < 2 || f.stem[0] != 'Y' {
		return fifo{}, false
	}
	whom := f.stem[1:]
	if i := strings.LastIndexByte(whom, '#'); i > 0 && IsAuxOf(whom, whom[:i]) {
		whom = whom[:i]
	}
	name := fifo{whom, f.pid}
	return name, o.set[name] && isName(o.set, name)
}

// simplLike tells whether f is one of the FIFOs SIMPL makes, as a sweep
// of the whole directory (which may be shared with other software, such
// as /var/tmp) may remove: a receive FIFO NAME.PID with its reply FIFO
// YNAME.PID beside it (C SIMPL and gosimpl make both at attach), that
// reply FIFO, or a gosimpl auxiliary reply FIFO YNAME#k.PID.
func (o *owners) simplLike(f fifo) bool {
	if isName(o.set, f) {
		return o.set[fifo{"Y" + f.stem, f.pid}]
	}
	if len(f.stem) < 2 || f.stem[0] != 'Y' {
		return false
	}
	whom := f.stem[1:]
	if i := strings.LastIndexByte(whom, '#'); i > 0 && IsAuxOf(whom, whom[:i]) {
		return true
	}
	return o.set[fifo{whom, f.pid}]
}

// Reap removes the FIFOs of every dead owner of name, or of every dead
// owner when name is "": receive FIFOs, their reply FIFOs and gosimpl's
// auxiliary reply FIFOs. It returns how many files it removed. FIFOs of live
// processes are never touched, nor are files this process may not remove
// (another user's, in a sticky directory such as /var/tmp): those are left
// and not counted. With name "" only FIFOs SIMPL makes go (see
// simplLike): other software's FIFOs that happen to be named X.DIGITS
// stay.
func (r *Registry) Reap(name string) (int, error) {
	set, err := r.scan()
	if err != nil {
		return 0, err
	}
	o := newOwners(r, set)
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
		path := o.path(f)
		if isName(set, f) {
			// "Y"+name alone is a reply FIFO whose name's FIFO was
			// removed before its process died.
			mine := name == "" && o.simplLike(f) || f.stem == name || f.stem == "Y"+name
			if mine && !o.alive(f) {
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
		mine := name == "" && o.simplLike(f) || f.stem[1:] == name || IsAuxOf(f.stem[1:], name)
		if f.stem[0] == 'Y' && mine && !o.alive(f) {
			remove(path)
		}
	}
	return n, errors.Join(errs...)
}

// SweepLimit is how many processes' FIFOs ReapSome checks at most: the
// bound on the work one attach spends on other names' stale FIFOs.
const SweepLimit = 32

// sweepFiles bounds the FIFOs one ReapSome looks at, however many one
// process seems to have (anyone may make files named X.PID).
const sweepFiles = 8 * SweepLimit

// ReapSome removes the FIFOs that dead processes left in the directory,
// whatever their names, checking at most max processes (picked in no fixed
// order, so that repeated calls cover the directory) other than this one,
// and at most sweepFiles FIFOs. Like Reap("") it removes only FIFOs SIMPL
// makes, never touches a live process's and leaves files it may not
// remove. It returns how many files it removed. Attach calls it so that
// the FIFOs of killed processes do not pile up.
func (r *Registry) ReapSome(max int) (int, error) {
	set, err := r.scan()
	if err != nil {
		return 0, err
	}
	o := newOwners(r, set)
	byPID := make(map[int][]fifo)
	for f := range set {
		if o.simplLike(f) {
			byPID[f.pid] = append(byPID[f.pid], f)
		}
	}
	self := os.Getpid()
	n, checked, files := 0, 0, 0
	for pid, fifos := range byPID {
		if checked >= max || files >= sweepFiles {
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
			if files++; files > sweepFiles {
				break
			}
			if o.alive(f) {
				continue
			}
			if os.Remove(o.path(f)) == nil {
				n++
			}
		}
	}
	return n, nil
}

// AuxWhom is the sender identity gosimpl uses for the k-th (k >= 1)
// concurrent Send from one attached name: the name, cut to leave room, then
// "#" and k. '#' cannot appear in a name, so these never clash with one.
// Two long names that share their first bytes are cut alike: a process
// numbers the identities of all its names from one count (the FIFO
// transport does), so that none of them share one.
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
