package main

import "time"

// C SIMPL 3.3.8's error codes (its SIMPL_ERROR enum), as _simpl_errno
// holds them; their texts are in capi.go, in C.
const (
	codeNoError              = 0
	codeNoName               = 1
	codeNoFIFOPath           = 2
	codeNameNotAvailable     = 3
	codeCannotCreateShmem    = 4
	codeCannotAttachShmem    = 6
	codeNoNameAttached       = 9
	codeFIFOCreationFailure  = 10
	codeFIFOGetFailure       = 11
	codeFIFOOpenFailure      = 12
	codeFIFOReadFailure      = 13
	codeFIFOWriteFailure     = 14
	codeNoNamedProcess       = 18
	codeReceiveTooLarge      = 19
	codeReplyTooLarge        = 20
	codeCommunicationError   = 21
	codeProtocolNotAvailable = 26
	codeImproperProxy        = 30
	codeSimplIDOutOfRange    = 32
	codeFIFOPathTooLong      = 36
)

// checkAfter is how long a request is held before Reply checks that its
// sender still lives (senderGone). Here, in a file built without cgo,
// for the tests.
const checkAfter = time.Millisecond
