package simpl_test

import "github.com/gosimpl/gosimpl/naming"

func reapAll(dir string) error {
	reg, err := naming.Open(dir)
	if err != nil {
		return err
	}
	_, err = reg.Reap("")
	return err
}
