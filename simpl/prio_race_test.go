//go:build race

package simpl_test

import "github.com/gosimpl/gosimpl/simpl/simpltest"

// The priority tests hand off through futexes in shared memory and do not
// run under the race detector (prio_test.go); their roles are not needed.
var prioRoles = map[string]simpltest.Role{}
