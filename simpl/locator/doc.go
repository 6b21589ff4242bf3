// Package locator is gosimpl's name-locator service: a Watcher that follows
// a FIFO directory and numbers every name that appears or disappears (an
// owner killed with SIGKILL included), a Server that answers locate, list
// and watch requests with Send/Reply like any other gosimpl receiver, and
// a Client for it.
//
// The directory stays the source of truth, and naming.Registry works with no
// locator running; the locator adds watching, metadata (pid, uid, transport,
// since when). Names on every host come from the host's gateway (fcgate)
// instead: Client.ListHosts and Client.WatchHosts ask it, with the same
// protocol, served from a Table. With no locator running, a
// Client's Locate and List read the directory themselves (LocateDir,
// ScanDir) and give the same answers; LocateFrom and ListFrom say which
// source answered. A Client's Watch needs the locator: it survives its
// restarts, and says when it cannot reach it, once per outage, with a Lost
// event, then Restored and Resync events when it can again.
//
// See docs/locator.md.
package locator
