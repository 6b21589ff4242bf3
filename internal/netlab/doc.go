// Package netlab builds small networks of hosts on one Linux machine, for
// tests that must cross a real network: each host is a network namespace
// with its own address, its own /etc/hosts naming every host of the lab,
// its own host name (HOSTNAME, /etc/hostname, gethostname) and its own FIFO_PATH
// directory. It is test support: it imports testing and nothing here is
// meant for programs.
//
// A test builds a lab and runs commands on its hosts:
//
//	lab := netlab.New(t, "a", "b", "c")
//	srv := lab.Host("a").Start(t, "echo-server") // a proctest role, inside host a
//	cli := lab.Host("b").StartCmd(t, "fcsend", "-r", "a:ECHO")
//
// # Topology
//
// Every host has one interface, eth0, with address 10.77.0.N/24 (N = 1 for
// the first host named, 2 for the second, ...), the other end of which is
// a port of a bridge living in a namespace of its own (the lab's switch).
// So all hosts share one L2 segment, and no interface, route or address
// of the machine's own (root) namespace is touched: the hosts cannot
// reach the machine's network nor the machine theirs. Each lab is a
// segment of its own; labs of concurrent tests do not see each other.
//
// # Names
//
// Namespaces are named gsl<pid>-<n> (the switch) and gsl<pid>-<n>-<host>,
// where pid is the process that built the lab and n counts the labs it
// built. /etc/netns/<namespace>/hosts and .../hostname hold each host's
// view of names; `ip netns exec` (see Host.Command) mounts them over
// /etc/hosts and /etc/hostname for the command it runs, so both Go's
// resolver and the C library's resolve every host of the lab by name.
// Each host also has a UTS namespace of its own, kept by a bind mount on
// /run/gsl-uts/<namespace>, so gethostname(2) (uname, os.Hostname)
// answers the host's name.
//
// # Cleaning up
//
// New registers a cleanup with the test that kills every process running
// in the lab's namespaces (whoever started it), deletes the namespaces
// (which removes their links), the /etc/netns directories and the FIFO
// directories. It runs when the test fails or panics too. For when it
// cannot run — the test binary killed, or ended by -test.timeout, which
// exits without running cleanups — each lab has a guard: a small shell
// process in a session of its own, started before anything is built,
// which removes the lab when the test process's end of a pipe closes
// without the word that the lab is gone. The commands a lab started also
// die with the test binary (PR_SET_PDEATHSIG). Should even the guard be
// killed, what is left is named with a pid that is no longer alive, and
// Sweep, which every New calls, removes it. Leftovers lists what is
// there, for leak checks.
package netlab
