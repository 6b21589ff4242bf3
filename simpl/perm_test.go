package simpl_test

import "github.com/gosimpl/gosimpl/simpl/simpltest"

// permRoles are the helper roles of the permission tests.
var permRoles = map[string]simpltest.Role{}
