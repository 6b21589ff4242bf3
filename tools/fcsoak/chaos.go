package main

// fcsoak's side of the chaos options: starting, restarting and stopping
// the attackers, sampling the receiver's memory, and removing what the
// squatter forged.

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gosimpl/gosimpl/tools/internal/cli"
)

// rssEvery is how often fcsoak samples the receiver's resident set.
const rssEvery = 20 * time.Millisecond

// defaultMaxRSS is -max-rss's default with -big, what a receiver that
// bounds its read-ahead in bytes and gives memory back needs at most:
// 64 MiB for its runtime and its own buffers; the lane or segment of each
// big sender, which it reads in place (bigSenders big requests); the big
// request in hand and the two the FIFO reader may hold ahead of Receive,
// twice over for the garbage collector (GOGC=100 lets the heap grow to
// twice what is live: 6 big requests); and for each sender two of its
// largest requests (its lane or segment, and the reply buffer). With the
// defaults (8 senders of 64 KiB, 4 big senders of 8 MiB) that is 145 MiB.
func defaultMaxRSS(bigSize, bigSenders, senders, maxSize int) int64 {
	return 64<<20 + int64(bigSenders+6)*int64(bigSize) + 2*int64(senders)*int64(maxSize)
}

// args are the attack settings as flags, for every child.
func (o attackOptions) args() []string {
	return []string{
		"-stray-every", o.strayEvery.String(),
		"-flood-conns", strconv.Itoa(o.floodConns),
		"-lanes-max", strconv.Itoa(o.lanesMax),
		"-big-size", strconv.Itoa(o.bigSize),
		"-big-senders", strconv.Itoa(o.bigSenders),
		"-big-delay", o.bigDelay.String(),
	}
}

// needsReceiver are the attacks that reach the receiver itself, so that
// attackers of another user need it to attach with mode 0666.
var needsReceiver = []string{"stray", "flood", "lanes", "big"}

// setupChaos decides who the attackers run as: nobody when fcsoak runs as
// root, else fcsoak's own user; the receiver attaches with mode 0666 when
// the attackers are nobody and any attack needs to reach it.
func (s *soak) setupChaos() {
	s.asNobody = os.Geteuid() == 0
	s.r.AttackUID = os.Geteuid()
	if s.asNobody {
		s.r.AttackUID = nobodyUID
		for _, k := range s.attacks {
			if slices.Contains(needsReceiver, k) {
				s.opts.open = true
				s.r.ReceiverPerm = "0666"
			}
		}
	}
}

// shareWithNobody opens the FIFO directory to every user, as /var/tmp is
// (anyone may create files, nobody may remove another user's), and runs
// the children from a copy of fcsoak that nobody may execute (the binary
// may sit in a private directory, as go test's and go run's do). cleanup
// removes the copy.
func (s *soak) shareWithNobody() (cleanup func(), err error) {
	if err := os.Chmod(s.dir, 0o777|os.ModeSticky); err != nil {
		return nil, err
	}
	for p := filepath.Dir(s.dir); ; p = filepath.Dir(p) {
		st, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if st.Mode().Perm()&0o001 == 0 {
			return nil, fmt.Errorf("the attackers run as nobody, who cannot reach %s (not searchable by other users): set TMPDIR to a directory they can reach", p)
		}
		if p == filepath.Dir(p) {
			break
		}
	}
	// Named for this process, so that a later fcsoak removes it if this
	// one is killed before it can (cli.PrivateDir).
	bin, err := cli.PrivateDir("fcsoak-bin")
	if err != nil {
		return nil, err
	}
	cleanup = func() { os.RemoveAll(bin) }
	fail := func(err error) (func(), error) {
		cleanup()
		return nil, fmt.Errorf("a copy of fcsoak for nobody: %w", err)
	}
	if err := os.Chmod(bin, 0o755); err != nil {
		return fail(err)
	}
	src, err := os.Open(s.self)
	if err != nil {
		return fail(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(filepath.Join(bin, "fcsoak"), os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o755)
	if err != nil {
		return fail(err)
	}
	_, err = io.Copy(dst, src)
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fail(err)
	}
	s.self = dst.Name()
	return cleanup, nil
}

// spawnAttacker starts an attacker of kind.
func (s *soak) spawnAttacker(kind string) (*proc, error) {
	s.spawns++
	seed := s.opts.seed*1_000_003 + uint64(s.spawns)
	return s.start(&proc{id: -2, attack: kind, first: make(chan struct{})}, []string{"-role", "attack", "-attack", kind}, seed)
}

// restartAttacker starts p's successor (p crashed: the crash is counted).
func (s *soak) restartAttacker(p *proc) error {
	q, err := s.spawnAttacker(p.attack)
	if err != nil {
		return err
	}
	for i, a := range s.attack {
		if a == p {
			s.attack[i] = q
		}
	}
	return nil
}

// stopAttackers asks every attacker to stop and waits for them, restarting
// the receiver and senders that exit meanwhile (their last kill).
func (s *soak) stopAttackers() error {
	n := 0
	for _, p := range s.attack {
		if !p.gone {
			s.term(p)
			n++
		}
	}
	timeout := time.After(stopTimeout)
	for n > 0 {
		select {
		case p := <-s.exited:
			s.account(p)
			if p.attack != "" {
				s.stopped(p)
				n--
				continue
			}
			if !p.killed {
				s.crashed(p)
			}
			if err := s.restart(p); err != nil {
				return err
			}
		case <-timeout:
			for _, p := range s.attack {
				if !p.gone && !p.killed {
					s.hung(p)
				}
			}
			timeout = nil
		}
	}
	return nil
}

// sampleRSS samples the receiver's resident set every rssEvery until the
// returned stop is called, keeping the largest.
func (s *soak) sampleRSS() (stop func()) {
	done, quit := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(rssEvery)
		defer t.Stop()
		for {
			if rss := rssOf(int(s.recvPID.Load())); rss > s.maxRSS.Load() {
				s.maxRSS.Store(rss)
			}
			select {
			case <-quit:
				return
			case <-t.C:
			}
		}
	}()
	return func() {
		close(quit)
		<-done
		s.r.MaxRSS = s.maxRSS.Load()
	}
}

// removeForged removes, once every child is gone, the FIFOs the squatter
// forged: owned by the attackers' user and naming a pid that is none of
// fcsoak's children (what the children leave is a leak, not forged). It
// returns how many it removed.
func (s *soak) removeForged() int {
	if !slices.Contains(s.attacks, "squat") {
		return 0
	}
	des, err := os.ReadDir(s.dir)
	if err != nil {
		return 0
	}
	n := 0
	for _, de := range des {
		i := strings.LastIndexByte(de.Name(), '.')
		pid, err := strconv.Atoi(de.Name()[i+1:])
		if i < 0 || err != nil || s.pids[pid] {
			continue
		}
		path := filepath.Join(s.dir, de.Name())
		fi, err := os.Lstat(path)
		if err != nil || fi.Mode().Type() != os.ModeNamedPipe || int(fi.Sys().(*syscall.Stat_t).Uid) != s.r.AttackUID {
			continue
		}
		if os.Remove(path) == nil {
			n++
		}
	}
	return n
}
