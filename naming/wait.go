package naming

import (
	"context"
	"errors"
	"time"

	"github.com/gosimpl/gosimpl/internal/sys"
)

// recheck bounds how long Wait trusts the directory's events alone: it
// looks again at least this often, in case the kernel dropped events.
const recheck = time.Second

// Wait returns the live owner of name as soon as there is one, waiting
// for the directory to change until ctx ends (then it returns ctx.Err()).
// It watches the directory (inotify) rather than polling it.
func (r *Registry) Wait(ctx context.Context, name string) (Entry, error) {
	if err := CheckLocal(name); err != nil {
		return Entry{}, err
	}
	// Watch first, then look, so an attach between the two is not missed.
	f, err := sys.WatchDir(r.dir)
	if err != nil {
		return Entry{}, err
	}
	changed := make(chan struct{}, 1)
	go func() {
		var buf [4096]byte
		for {
			if _, err := f.Read(buf[:]); err != nil {
				return // closed below
			}
			select {
			case changed <- struct{}{}:
			default:
			}
		}
	}()
	defer f.Close()
	t := time.NewTimer(recheck)
	defer t.Stop()
	for {
		ent, err := r.Lookup(name)
		if !errors.Is(err, ErrNotFound) {
			return ent, err
		}
		select {
		case <-changed:
		case <-t.C:
			t.Reset(recheck)
		case <-ctx.Done():
			return Entry{}, ctx.Err()
		}
	}
}
