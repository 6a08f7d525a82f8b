package policy

import "time"

// Remind reminds the conversations a pending request's card was posted to
// (its Notify targets), in the card's thread: the first reminder Every
// after the request was created, then every Every, at most Max in all.
type Remind struct {
	Every time.Duration
	Max   int
}

// At returns when reminder n (1-based) of a request created at created is
// due.
func (r Remind) At(created time.Time, n int) time.Time {
	return created.Add(time.Duration(n) * r.Every)
}

// Escalate posts a pending request's card to Notify's conversations too,
// After the request was created.
type Escalate struct {
	After  time.Duration
	Notify Notify
}

// Escalated returns the conversations on chat platform p a request created
// at created is escalated to by now: Escalate's targets once After has
// passed, none before (and none without an Escalate).
func (a *Action) Escalated(p string, created, now time.Time) []string {
	if a.Escalate == nil || now.Before(created.Add(a.Escalate.After)) {
		return nil
	}
	return a.Escalate.Notify.Targets(p)
}
