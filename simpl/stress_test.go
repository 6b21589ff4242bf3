package simpl_test

import "github.com/gosimpl/gosimpl/simpl/simpltest"

// stressRoles are the helper roles of the stress test.
var stressRoles = map[string]simpltest.Role{}
