package cli

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/gosimpl/gosimpl/naming"
)

// Exit reports err, when it is not nil, as the one line "TOOL: MESSAGE"
// on stderr (see Message) and exits 1. Every command's main ends with it,
// so that all their failures read alike.
func Exit(tool string, err error) {
	if err == nil {
		return
	}
	// A stderr nobody reads (a pipe to a stopped reader, the one stdout
	// was stuck on) does not hold the exit up for more than a second.
	done := make(chan struct{})
	go func() {
		Report(os.Stderr, tool, err)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(time.Second):
	}
	os.Exit(1)
}

// Report writes err as the one line "TOOL: MESSAGE" to w.
func Report(w io.Writer, tool string, err error) {
	fmt.Fprintf(w, "%s: %s\n", tool, Message(tool, err))
}

// packagePrefixes start the library's error texts. A command's own prefix
// says where a failure comes from, so they add nothing in its report; and
// wrapped inside each other they repeat ("pubsub: broker ...: simpl: ...").
var packagePrefixes = []string{"simpl: ", "pubsub: "}

// Message is err's text as a command reports it: one line (line breaks
// become spaces), without the library's "simpl: " and "pubsub: "
// prefixes wherever they start a part of it, and without a leading
// "TOOL: ".
func Message(tool string, err error) string {
	s := strings.Join(strings.Fields(err.Error()), " ")
	for {
		t := strings.TrimPrefix(s, tool+": ")
		for _, p := range packagePrefixes {
			t = strings.TrimPrefix(t, p)
			t = strings.ReplaceAll(t, ": "+p, ": ")
			t = strings.ReplaceAll(t, "("+p, "(")
		}
		if t == s {
			return s
		}
		s = t
	}
}

// CheckFIFODir checks the FIFO directory the command's names live in:
// $FIFO_PATH, or /var/tmp when it is unset. Its error names FIFO_PATH, the
// thing to change.
func CheckFIFODir() error {
	dir := naming.Dir()
	var why string
	if len(dir) > naming.MaxDirLen {
		why = fmt.Sprintf("%d bytes long, more than the %d that C SIMPL allows", len(dir), naming.MaxDirLen)
	} else if st, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		why = "no such directory"
	} else if err != nil {
		why = err.Error()
	} else if !st.IsDir() {
		why = "not a directory"
	} else if _, err := naming.Open(dir); err != nil {
		why = Message("", err)
	} else {
		return nil
	}
	if !fifoPathSet() {
		return fmt.Errorf("FIFO directory %s: %s (it is the default: FIFO_PATH is unset; set FIFO_PATH to a directory to use another)", dir, why)
	}
	return fmt.Errorf("FIFO_PATH=%s: %s (FIFO_PATH names the FIFO directory; unset, it is %s)", dir, why, naming.DefaultDir)
}

func fifoPathSet() bool { return os.Getenv("FIFO_PATH") != "" }
