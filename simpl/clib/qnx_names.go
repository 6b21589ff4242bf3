//go:build cgo

package main

import (
	"sync"

	"github.com/gosimpl/gosimpl/simpl/qnx"
)

// names are the channels name_attach made, by chid, so that name_detach
// takes only those (a chid from ChannelCreate, or a stale one, is EINVAL).
var names = struct {
	sync.Mutex
	attached map[int]*qnx.NameAttachT
}{attached: make(map[int]*qnx.NameAttachT)}
