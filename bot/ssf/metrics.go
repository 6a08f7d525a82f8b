package ssf

import (
	"maps"
	"sync"

	"github.com/signoff-dev/signoff/oidc"
)

// EventKey labels a count of SETs: the event type (session-revoked,
// credential-change, account-disabled, account-purged, verification,
// other, or unverified for a SET refused before its events could be
// trusted) and the outcome (an Outcome… constant, or the err code of a
// refusal).
type EventKey struct {
	Type, Outcome string
}

// RefusalKey labels a count of refused SETs: the err code answered and the
// finer reason (oidc.SETReason… or this package's Reason… constants).
type RefusalKey struct {
	Err    oidc.SETCode
	Reason oidc.SETReason
}

// Stats are the receiver's counters since it started. Every label value
// comes from a fixed set in the code, never from a SET.
type Stats struct {
	// Events counts every push, accepted or refused.
	Events map[EventKey]uint64
	// Refusals counts refused pushes by err and reason.
	Refusals map[RefusalKey]uint64
	// LinksStale counts links made stale by SETs.
	LinksStale uint64
}

// counters hold Stats; the zero value is ready to use.
type counters struct {
	mu       sync.Mutex
	events   map[EventKey]uint64
	refusals map[RefusalKey]uint64
	stale    uint64
}

func (c *counters) accepted(label, outcome string, stale int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.events == nil {
		c.events = map[EventKey]uint64{}
	}
	c.events[EventKey{label, outcome}]++
	c.stale += uint64(stale)
}

func (c *counters) refused(label string, ref *refusal) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.events == nil {
		c.events = map[EventKey]uint64{}
	}
	if c.refusals == nil {
		c.refusals = map[RefusalKey]uint64{}
	}
	c.events[EventKey{label, string(ref.code)}]++
	c.refusals[RefusalKey{ref.code, ref.reason}]++
}

// Stats returns a copy of the counters.
func (r *Receiver) Stats() Stats {
	c := &r.stats
	c.mu.Lock()
	defer c.mu.Unlock()
	return Stats{Events: maps.Clone(c.events), Refusals: maps.Clone(c.refusals), LinksStale: c.stale}
}
