// Package sys is gosimpl's one system-call layer: every system call the
// module's non-test code makes beyond the standard library's (through
// golang.org/x/sys/unix), every unsafe conversion and every shared mapping
// is made here, behind types that own what they hold. It imports nothing of
// gosimpl, so any package may use it. By area:
//
//   - fd.go: FD, an owned descriptor (closed once, never a reused number);
//     the error tests every writer needs.
//   - fifo.go: FIFOs (make, open for writing, doorbell reads and writes).
//   - ioctl.go: what waits in a FIFO (FIONREAD); descriptor shortages
//     and a descriptor held in reserve for them.
//   - sysv.go: System V shared memory (gosimpl's key space, create,
//     attach, stat, list, remove).
//   - memfd.go, mmap.go, futex.go: sealed memfds, their shared mappings
//     with bounds-checked atomic words, and futex waits and wakes.
//   - socket.go, pipe.go: Unix-socket peer credentials, descriptor
//     passing, non-blocking sends, and the nudge pipes.
//   - pidfd.go, proc.go: processes, by pidfd or pid (/proc).
//   - inotify.go, file.go: directory watches, what stat tells, terminals.
//
// It is internal: its API changes with its users.
package sys
