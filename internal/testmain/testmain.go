// Package testmain checks, once after all the tests of a package have run,
// that they left nothing behind: no descriptor, file or FIFO, /dev/shm
// entry, System V segment or mapping, child process or goroutine that was
// not there before them. A package wires it up in TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(testmain.Run(m)) }
//
// (internal/proctest.Main does it for the packages that run helper
// processes). What leaked is listed on stderr and fails the package, with
// what each descriptor refers to and each goroutine's stack. It reads /proc
// and imports nothing of gosimpl, so that every package's tests can use it.
package testmain

import (
	"flag"
	"fmt"
	"github.com/gosimpl/gosimpl/internal/procfs"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// settle bounds the wait for what the tests start to release to go (a
// helper that exits detaches its segments, a goroutine returns after a
// Close, a file dropped without Close is finalized). Most packages are
// clean at the first look.
const settle = 10 * time.Second

// pollEvery is how often the state is looked at again while it settles.
const pollEvery = 20 * time.Millisecond

var (
	mu      sync.Mutex
	tracked = map[int]bool{}
)

// Track makes process pid, which a test started, part of the check: the
// System V segments and FIFOs it creates count as this package's.
// (Every child process must be gone and reaped by the end, tracked or
// not.) internal/proctest tracks the helpers it starts.
func Track(pid int) {
	mu.Lock()
	tracked[pid] = true
	mu.Unlock()
}

// Run runs the tests, then checks that they left nothing behind, and
// returns the status for os.Exit: m.Run's, or 1 if that was 0 and
// something leaked. The tests run with $TMPDIR set to a directory of
// their own, which must be empty once they are done; Run removes it.
//
// A fuzzing run (-test.fuzz, and the fuzzing engine's workers) and a
// listing (-test.list) are not checked.
func Run(m *testing.M) int {
	if !flag.Parsed() {
		flag.Parse()
	}
	if skip() {
		return m.Run()
	}
	before, err := snapshot()
	if err != nil {
		fmt.Fprintf(os.Stderr, "testmain: %v\n", err)
		return 2
	}
	defer before.cleanup()
	code := m.Run()
	leaks := before.settle(time.Now().Add(settle))
	if len(leaks) == 0 {
		return code
	}
	fmt.Fprintf(os.Stderr, "testmain: the tests of %s left behind:\n", filepath.Base(os.Args[0]))
	for _, l := range leaks {
		fmt.Fprintf(os.Stderr, "  %s\n", strings.ReplaceAll(strings.TrimSpace(l), "\n", "\n    "))
	}
	fmt.Fprintln(os.Stderr, "FAIL: leak check")
	if code == 0 {
		code = 1
	}
	return code
}

func skip() bool {
	for _, name := range []string{"test.fuzz", "test.fuzzworker", "test.list"} {
		if f := flag.Lookup(name); f != nil && f.Value.String() != "" && f.Value.String() != "false" {
			return true
		}
	}
	return false
}

// state is what the check compares: taken before the tests as the
// baseline, and after them.
type state struct {
	tmp        string          // the tests' $TMPDIR
	oldTmp     string          // $TMPDIR before, restored by cleanup
	hadTmp     bool            // whether $TMPDIR was set
	fifoDir    string          // the FIFO registry directory
	fds        map[int]string  // open descriptor -> what it refers to
	fifos      map[string]bool // FIFOs in fifoDir
	devShm     map[string]bool // entries of /dev/shm
	segments   map[int]bool    // System V segment ids
	maps       map[string]bool // shared-memory mappings of this process
	goroutines map[int64]bool  // goroutine ids
}

func snapshot() (*state, error) {
	// The runtime opens its poller's descriptors the first time a file
	// is polled, and keeps them: open them now, before the baseline.
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	r.Close()
	w.Close()

	s := &state{fifoDir: fifoDir()}
	s.oldTmp, s.hadTmp = os.LookupEnv("TMPDIR")
	if s.tmp, err = os.MkdirTemp("", "gosimpl-testmain-"); err != nil {
		return nil, err
	}
	// Like /tmp: helpers that run as other users make files there too.
	if err := os.Chmod(s.tmp, 0o777|os.ModeSticky); err != nil {
		os.Remove(s.tmp)
		return nil, err
	}
	os.Setenv("TMPDIR", s.tmp)
	if s.fds, err = descriptors(); err != nil {
		s.cleanup()
		return nil, err
	}
	s.fifos = fifos(s.fifoDir)
	s.devShm = names("/dev/shm")
	s.segments = map[int]bool{}
	segs, _ := readSegments()
	for _, seg := range segs {
		s.segments[seg.ID] = true
	}
	s.maps = sharedMaps()
	s.goroutines = map[int64]bool{}
	for id := range goroutines() {
		s.goroutines[id] = true
	}
	return s, nil
}

func (s *state) cleanup() {
	if s.hadTmp {
		os.Setenv("TMPDIR", s.oldTmp)
	} else {
		os.Unsetenv("TMPDIR")
	}
	os.RemoveAll(s.tmp)
}

// settle looks for leaks until there are none or deadline passes; it runs
// the garbage collector between looks, so that what a finalizer or
// cleanup closes is not reported.
func (s *state) settle(deadline time.Time) []string {
	for {
		leaks := s.leaks()
		if len(leaks) == 0 || time.Now().After(deadline) {
			return leaks
		}
		runtime.GC()
		time.Sleep(pollEvery)
	}
}

// leaks lists what is there now and was not before the tests.
func (s *state) leaks() []string {
	var out []string
	self := os.Getpid()
	kids := procfs.Children(self)
	mu.Lock()
	pids := map[int]bool{self: true}
	for pid := range tracked {
		pids[pid] = true
	}
	mu.Unlock()
	for _, k := range kids {
		pids[k.PID] = true
		out = append(out, fmt.Sprintf("child process %d (state %s): not reaped", k.PID, k.State))
	}

	fds, err := descriptors()
	if err != nil {
		out = append(out, err.Error())
	}
	for _, fd := range slices.Sorted(maps.Keys(fds)) {
		if link, ok := s.fds[fd]; !ok || link != fds[fd] {
			out = append(out, fmt.Sprintf("descriptor %d -> %s", fd, fds[fd]))
		}
	}

	filepath.WalkDir(s.tmp, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == s.tmp {
			return nil
		}
		what := "file"
		switch {
		case d.IsDir():
			what = "directory"
		case d.Type()&fs.ModeNamedPipe != 0:
			what = "FIFO"
		}
		out = append(out, fmt.Sprintf("%s %s", what, path))
		if d.IsDir() {
			return filepath.SkipDir // its contents are its test's; one line will do
		}
		return nil
	})

	for name := range fifos(s.fifoDir) {
		if !s.fifos[name] && pids[fifoPID(name)] {
			out = append(out, "FIFO "+filepath.Join(s.fifoDir, name))
		}
	}

	for name := range names("/dev/shm") {
		if !s.devShm[name] && mentions(name, pids) {
			out = append(out, "/dev/shm/"+name)
		}
	}

	segs, _ := readSegments()
	for _, seg := range segs {
		if !s.segments[seg.ID] && pids[seg.CreatorPID] {
			out = append(out, fmt.Sprintf("System V segment %d (key %#x) created by pid %d, %d attached",
				seg.ID, uint32(seg.Key), seg.CreatorPID, seg.Attached))
		}
	}

	for line := range sharedMaps() {
		if !s.maps[line] {
			out = append(out, "mapping "+line)
		}
	}

	gs := goroutines()
	for _, id := range slices.Sorted(maps.Keys(gs)) {
		if !s.goroutines[id] {
			out = append(out, gs[id])
		}
	}
	return out
}

// descriptors returns this process's open descriptors and what each
// refers to (a path, "pipe:[inode]", "anon_inode:[pidfd]", ...).
func descriptors() (map[int]string, error) {
	des, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return nil, err
	}
	out := make(map[int]string, len(des))
	for _, de := range des {
		fd, err := strconv.Atoi(de.Name())
		if err != nil {
			continue
		}
		link, err := os.Readlink("/proc/self/fd/" + de.Name())
		if err != nil {
			continue // the directory ReadDir read, closed since
		}
		out[fd] = link
	}
	return out, nil
}

// fifoDir is the FIFO registry directory as naming.Dir finds it.
func fifoDir() string {
	if d := os.Getenv("FIFO_PATH"); d != "" {
		return d
	}
	return "/var/tmp"
}

// fifos lists the FIFOs in dir.
func fifos(dir string) map[string]bool {
	des, _ := os.ReadDir(dir)
	out := map[string]bool{}
	for _, de := range des {
		if de.Type()&fs.ModeNamedPipe != 0 {
			out[de.Name()] = true
		}
	}
	return out
}

// fifoPID is the pid a registry FIFO's name ends with (NAME.PID), or 0.
func fifoPID(name string) int {
	i := strings.LastIndexByte(name, '.')
	if i < 0 {
		return 0
	}
	pid, _ := strconv.Atoi(name[i+1:])
	return pid
}

func names(dir string) map[string]bool {
	des, _ := os.ReadDir(dir)
	out := map[string]bool{}
	for _, de := range des {
		out[de.Name()] = true
	}
	return out
}

// mentions tells whether a /dev/shm name could be this package's: other
// packages' tests run at the same time, and the machine may be shared, so
// only names that hold one of pids count. (gosimpl's own shared memory is
// memfds and System V segments, which have no name there.)
func mentions(name string, pids map[int]bool) bool {
	for _, f := range strings.FieldsFunc(name, func(r rune) bool { return r < '0' || r > '9' }) {
		if pid, err := strconv.Atoi(f); err == nil && pids[pid] {
			return true
		}
	}
	return false
}

// Segment is one System V shared memory segment as /proc reports it.
type Segment struct {
	ID, Key, CreatorPID, Attached int
}

// Segments returns the System V segments created by any of pids.
func Segments(pids ...int) ([]Segment, error) {
	all, err := readSegments()
	if err != nil {
		return nil, err
	}
	var out []Segment
	for _, s := range all {
		if slices.Contains(pids, s.CreatorPID) {
			out = append(out, s)
		}
	}
	return out, nil
}

// readSegments reads /proc/sysvipc/shm.
func readSegments() ([]Segment, error) {
	all, err := procfs.Segments()
	if err != nil {
		return nil, err
	}
	out := make([]Segment, len(all))
	for i, s := range all {
		out[i] = Segment{ID: s.ID, Key: s.Key, CreatorPID: s.CPID, Attached: s.Attached}
	}
	return out, nil
}

// sharedMaps lists this process's mappings of System V segments and
// memfds, as /proc/self/maps shows them.
func sharedMaps() map[string]bool {
	b, _ := os.ReadFile("/proc/self/maps")
	out := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, "/SYSV") || strings.Contains(line, "/memfd:") {
			out[line] = true
		}
	}
	return out
}

// goroutines returns the stack of every goroutine but the caller's and
// those os/signal keeps for good once a signal is asked for, by id.
func goroutines() map[int64]string {
	buf := make([]byte, 1<<16)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	out := map[int64]string{}
	for i, g := range strings.Split(string(buf), "\n\n") {
		if i == 0 {
			continue // the caller, which runtime.Stack lists first
		}
		if strings.Contains(g, "os/signal.") || strings.Contains(g, "runtime.ensureSigM") {
			continue
		}
		rest, ok := strings.CutPrefix(g, "goroutine ")
		if !ok {
			continue
		}
		id, _, _ := strings.Cut(rest, " ")
		n, err := strconv.ParseInt(id, 10, 64)
		if err != nil {
			continue
		}
		out[n] = g
	}
	return out
}
