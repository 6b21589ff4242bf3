package simpl

const haveTSC = true

// readTSC is the processor's time-stamp counter (RDTSC).
func readTSC() int64
