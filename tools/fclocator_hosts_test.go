package tools_test

import "testing"

// fclocator -hosts goes with -list and -watch only, and with no gateway
// running says, in one line, to start one. (Names across hosts with
// gateways running are tested in tools/fcgate, on two hosts.)
func TestFclocatorHostsFlags(t *testing.T) {
	e := newEnv(t)
	e.run("", "fclocator", "-hosts").failed(t, "fclocator", "-hosts is for -list and -watch", "usage")
	e.run("", "fclocator", "-hosts", "-locate", "SRV").failed(t, "fclocator", "-hosts is for -list and -watch")
	e.run("", "fclocator", "-hosts", "-list").failed(t, "fclocator", "no gateway runs on this host (start fcgate)", "_gosimpl_gw")
	e.run("", "fclocator", "-hosts", "-list", "[").failed(t, "fclocator", "pattern", `"["`)
}
