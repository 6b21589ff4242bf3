package sys

import (
	"fmt"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Mapping is a read-write mapping: of a whole memfd, shared (Map), or of
// private memory (NewPrivate). Its accessors
// check bounds and alignment and panic on a programming error; they never
// touch memory outside the mapping. Unmap is idempotent but not safe to
// call concurrently with other methods.
type Mapping struct {
	mem []byte
}

// Map maps size bytes of fd shared and read-write. The mapping does not
// hold fd: the caller may close it at once.
func Map(fd, size int) (*Mapping, error) {
	mem, err := unix.Mmap(fd, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("mmap %d bytes: %w", size, err)
	}
	return &Mapping{mem: mem}, nil
}

// Len is the mapping's size.
func (m *Mapping) Len() int { return len(m.mem) }

// Bytes returns the mapping's bytes [off, off+n).
func (m *Mapping) Bytes(off, n int) []byte {
	return m.mem[off : off+n : off+n]
}

// Uint32 returns the aligned 32-bit word at off as an atomic.
func (m *Mapping) Uint32(off int) *atomic.Uint32 {
	return (*atomic.Uint32)(word(m.mem, off, 4))
}

// Int32 returns the aligned 32-bit word at off as a signed atomic.
func (m *Mapping) Int32(off int) *atomic.Int32 {
	return (*atomic.Int32)(word(m.mem, off, 4))
}

// Uint64 returns the aligned 64-bit word at off as an atomic.
func (m *Mapping) Uint64(off int) *atomic.Uint64 {
	return (*atomic.Uint64)(word(m.mem, off, 8))
}

// Unmap releases the mapping. Words and slices taken from it must not be
// used afterwards.
func (m *Mapping) Unmap() error {
	if m.mem == nil {
		return nil
	}
	err := unix.Munmap(m.mem)
	m.mem = nil
	return err
}

// Privatize replaces the mapping, in place, by private memory holding a
// copy of its first keep bytes (the rest reads as zeros), and so lets go
// of the shared file: words and slices taken from it stay valid, and no
// longer reach the peer. Unmap frees the copy. Readers see the shared
// bytes until the copy takes their place in one step.
func (m *Mapping) Privatize(keep int) error {
	n := len(m.mem)
	p, err := unix.MmapPtr(-1, 0, nil, uintptr(n), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return fmt.Errorf("mmap %d private bytes: %w", n, err)
	}
	copy(unsafe.Slice((*byte)(p), n), m.mem[:min(max(keep, 0), n)])
	if _, err := unix.MremapPtr(p, uintptr(n), unsafe.Pointer(&m.mem[0]), uintptr(n), unix.MREMAP_MAYMOVE|unix.MREMAP_FIXED); err != nil {
		unix.MunmapPtr(p, uintptr(n))
		return fmt.Errorf("mremap: %w", err)
	}
	return nil
}

// Uint64At is the 8-byte word at off in mem (a System V segment's
// mapping, from ShmCreate or ShmAttach), for atomic access. off must be a
// multiple of 8 from the mapping's (page-aligned) start.
func Uint64At(mem []byte, off int) *uint64 {
	return (*uint64)(word(mem, off, 8))
}

// word is the size-byte word at off in mem, which must lie within mem and
// be aligned to size, both from mem's start and in memory: 32-bit ARM
// faults (or tears) on a 64-bit atomic that is not 8-byte aligned, and a
// mapping starts on a page, so a word aligned from its start is aligned in
// memory; a slice of one that is not is refused here. Every shared word
// this package hands out comes from here.
func word(mem []byte, off, size int) unsafe.Pointer {
	if off < 0 || off%size != 0 || off > len(mem)-size {
		panic(fmt.Sprintf("sys: %d-byte word at %d outside a %d-byte mapping or unaligned", size, off, len(mem)))
	}
	p := unsafe.Pointer(&mem[off])
	if uintptr(p)%uintptr(size) != 0 {
		panic(fmt.Sprintf("sys: %d-byte word at %d of a mapping at %p: address not aligned", size, off, &mem[0]))
	}
	return p
}

// NewPrivate maps n bytes of private anonymous memory (zeroed), for a
// buffer whose memory must go back to the system as soon as it is
// unmapped rather than stay in the Go heap.
func NewPrivate(n int) (*Mapping, error) {
	mem, err := unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return nil, fmt.Errorf("mmap %d private bytes: %w", n, err)
	}
	return &Mapping{mem: mem}, nil
}
