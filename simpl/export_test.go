package simpl

// Waiting counts the requests waiting for c in polled transports (shared
// memory), so that tests can wait for senders to have posted.
func Waiting(c *Channel) int {
	n := 0
	for _, ep := range c.eps {
		if w, ok := ep.(interface{ Waiting() int }); ok {
			n += w.Waiting()
		}
	}
	return n
}
