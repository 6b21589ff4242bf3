//go:build !amd64

package simpl

const haveTSC = false

func readTSC() int64 { panic("simpl: no time-stamp counter") }
