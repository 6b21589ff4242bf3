// Package sys holds the system calls that more than one part of gosimpl
// makes, behind types that own their descriptors: pidfds (Pidfd), which
// transport/fifo and simpl/locator watch processes with, and inotify on a
// directory (WatchDir), which simpl/locator follows the FIFO directory
// with. It is internal: its API changes with its users.
package sys
