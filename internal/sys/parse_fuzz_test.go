package sys

import (
	"bytes"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

// FuzzParseDirEvents: whatever an inotify read gives, ParseDirEvents does
// not panic, decodes no more records than fit, and gives names without
// their NUL padding; records as the kernel writes them come back
// exactly, followed by whatever the fuzzer appends, with a truncated
// record ending the list.
func FuzzParseDirEvents(f *testing.F) {
	f.Add(inotifyRecord(unix.IN_CREATE, "ALPHA.12", 16), []byte("a/b/c"), uint32(unix.IN_DELETE))
	f.Add(inotifyRecord(unix.IN_DELETE_SELF, "", 0), []byte(""), uint32(unix.IN_IGNORED))
	f.Add([]byte{1, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 255, 255, 255, 255, 'x'}, []byte("//"), uint32(unix.IN_MOVE_SELF))
	f.Add([]byte("short"), []byte("x\x00y"), uint32(0))
	f.Fuzz(func(t *testing.T, raw, names []byte, mask uint32) {
		evs := ParseDirEvents(raw)
		if len(evs) > len(raw)/unix.SizeofInotifyEvent {
			t.Fatalf("%d bytes gave %d events", len(raw), len(evs))
		}
		for _, ev := range evs {
			if len(ev.Name) > len(raw) || (ev.Name != "" && ev.Name[len(ev.Name)-1] == 0) {
				t.Fatalf("ParseDirEvents(%x): name %q", raw, ev.Name)
			}
		}

		// Records as the kernel writes them: names of no NUL, padded
		// with NULs, one at least, to a multiple of 16 bytes.
		var buf []byte
		var want []DirEvent
		lastStart := 0
		for i, name := range bytes.Split(bytes.ReplaceAll(names, []byte{0}, nil), []byte("/")) {
			m := mask
			if i%2 == 1 {
				m = unix.IN_CREATE
			}
			pad := 0
			if len(name) > 0 {
				pad = (len(name) + 16) &^ 15
			}
			lastStart = len(buf)
			buf = append(buf, inotifyRecord(m, string(name), pad)...)
			want = append(want, DirEvent{Name: string(name), Gone: m&(unix.IN_DELETE_SELF|unix.IN_MOVE_SELF|unix.IN_IGNORED) != 0,
				Removed: m&(unix.IN_DELETE|unix.IN_MOVED_FROM) != 0})
		}
		whole := len(buf)
		buf = append(buf, raw...)
		got := ParseDirEvents(buf)
		if len(got) < len(want) || !slices.Equal(got[:len(want)], want) {
			t.Fatalf("ParseDirEvents of %d records then %x: %+v, want %+v first", len(want), raw, got, want)
		}
		if !slices.Equal(got[len(want):], evs) {
			t.Fatalf("ParseDirEvents of %x after %d whole records: %+v, alone %+v", raw, len(want), got[len(want):], evs)
		}
		// Cut within the last record: it is dropped, the others stay.
		if len(want) > 0 {
			for _, n := range []int{lastStart + 1, whole - 1} {
				if n <= lastStart || n >= whole {
					continue
				}
				if got := ParseDirEvents(buf[:n]); !slices.Equal(got, want[:len(want)-1]) {
					t.Fatalf("ParseDirEvents cut to %d of %d bytes: %+v, want %+v", n, whole, got, want[:len(want)-1])
				}
			}
		}
	})
}

// FuzzParseRights: whatever control message recvmsg gives, ParseRights
// does not panic and gives no more descriptors than the bytes hold (it
// opens nothing: they are only numbers here, none closed); the
// descriptors of an SCM_RIGHTS message come back exactly, in order, with
// other control messages around them skipped.
func FuzzParseRights(f *testing.F) {
	f.Add(unix.UnixRights(3, 4), int32(5), int32(6), true)
	f.Add([]byte{}, int32(0), int32(1), false)
	f.Add([]byte{16, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0}, int32(-1), int32(1<<30), true)
	f.Add([]byte{255, 255, 255, 255, 255, 255, 255, 127, 1, 0, 0, 0, 1, 0, 0, 0}, int32(7), int32(8), false)
	f.Fuzz(func(t *testing.T, oob []byte, a, b int32, creds bool) {
		fds, err := ParseRights(oob)
		if err != nil && fds != nil {
			t.Fatalf("ParseRights(%x) = %v with error %v", oob, fds, err)
		}
		if len(fds) > len(oob)/4 {
			t.Fatalf("ParseRights(%x): %d descriptors from %d bytes", oob, len(fds), len(oob))
		}

		var msg []byte
		if creds {
			msg = unix.UnixCredentials(&unix.Ucred{Pid: a, Uid: uint32(b), Gid: 1})
		}
		msg = append(msg, unix.UnixRights(int(a), int(b))...)
		if creds {
			msg = append(msg, unix.UnixCredentials(&unix.Ucred{Pid: b})...)
		}
		msg = append(msg, unix.UnixRights(int(b))...)
		got, err := ParseRights(msg)
		if want := []int{int(a), int(b), int(b)}; err != nil || !slices.Equal(got, want) {
			t.Fatalf("ParseRights(%x) = %v, %v; want %v", msg, got, err, want)
		}
	})
}
