package linkflow

import (
	"maps"
	"sync"

	"github.com/signoff-dev/signoff/internal/counts"
)

// Outcomes of a sign-in that came back from the IdP to make a link
// (LinkerMetrics.Links), besides the Refusal… codes of a refused binding.
const (
	// LinkOutcomeLinked: the link was saved.
	LinkOutcomeLinked = "linked"
	// LinkOutcomeIdPRefused: the IdP's answer did not verify (signature,
	// issuer, audience, nonce, expiry) or the code was refused.
	LinkOutcomeIdPRefused = "idp_refused"
	// LinkOutcomeIdPUnavailable: the IdP could not be reached to redeem
	// the code.
	LinkOutcomeIdPUnavailable = "idp_unavailable"
)

// Reasons a refresh at the IdP failed (LinkerMetrics.RefreshFailures).
const (
	// RefreshFailureUnavailable: the IdP could not be reached (network,
	// 5xx, 429, or signoff's client credentials refused); nothing changed.
	RefreshFailureUnavailable = "unavailable"
	// RefreshFailureRefused: the IdP refused the refresh token (user
	// disabled, consent or token revoked); the link was marked stale.
	RefreshFailureRefused = "refused"
	// RefreshFailureTokenUnreadable: the stored refresh token did not open
	// (idp.token_encryption_key changed); the person must sign in again.
	RefreshFailureTokenUnreadable = "token_unreadable"
)

// Reasons the Linker marked a link stale (LinkerMetrics.MarkedStale).
const (
	// StaleRefreshRefused: the IdP refused a refresh.
	StaleRefreshRefused = "refresh_refused"
	// StaleBindingMismatch: the chat account no longer matches the link:
	// a link made before the binding check, at its first click, or a link
	// proved by email, at a refresh or a step-up sign-in.
	StaleBindingMismatch = "binding_mismatch"
)

// Results of a sweep pass (LinkerMetrics.Sweeps).
const (
	// SweepCompleted: every due link was tried.
	SweepCompleted = "completed"
	// SweepIdPUnavailable: the IdP could not be reached; the pass stopped
	// and the next one waits with backoff.
	SweepIdPUnavailable = "idp_unavailable"
	// SweepChatUnavailable: the chat platform could not be asked whether
	// a link's chat account is still its person's (the binding check
	// before a refresh); the pass stopped and the next one backs off.
	SweepChatUnavailable = "chat_unavailable"
	// SweepFailed: the links could not be read from the store.
	SweepFailed = "failed"
)

// LinkerMetrics is a snapshot of a Linker's identity events since it
// started (in memory: a restart starts them at 0, as Prometheus counters
// expect). Every event counts, whether or not an audit record was written
// for it. The maps are copies the caller owns; their known keys are always
// present.
type LinkerMetrics struct {
	// LinkAttempts counts the sign-in links handed out to link a chat
	// account (Begin, including those a click that needs a link gets);
	// step-up links are not counted.
	LinkAttempts uint64
	// Links counts the sign-ins for a link that came back from the IdP,
	// by outcome: LinkOutcomeLinked, a Refusal… code (the binding was
	// refused), LinkOutcomeIdPRefused or LinkOutcomeIdPUnavailable.
	Links map[string]uint64
	// RefreshFailures counts refreshes at the IdP (by a click or the
	// sweep) that failed, by RefreshFailure… reason.
	RefreshFailures map[string]uint64
	// Refreshes counts refreshes at the IdP that succeeded, by trigger:
	// "click" or "sweep".
	Refreshes map[string]uint64
	// MarkedStale counts links this Linker marked stale, by Stale…
	// reason. (Links made stale by Shared Signals events are counted by
	// the receiver.)
	MarkedStale map[string]uint64
	// Sweeps counts sweep passes by Sweep… result.
	Sweeps map[string]uint64
	// Swept reports whether a sweep pass has finished; NeedSignIn is then
	// what it found: links whose groups were older than GroupsMaxAge and
	// that hold no usable refresh token, so their next click asks for a
	// sign-in.
	Swept      bool
	NeedSignIn int
}

// linkOutcomes are the known keys of LinkerMetrics.Links.
var linkOutcomes = []string{
	LinkOutcomeLinked, string(RefusalMismatch), string(RefusalNoIdPEmail), string(RefusalEmailUnverif), string(RefusalNoChatEmail),
	string(RefusalLookupFailed), string(RefusalUnknownAccount), string(RefusalNoDirectory), LinkOutcomeIdPRefused, LinkOutcomeIdPUnavailable,
}

// linkerCounters hold a Linker's event counts. The zero value is ready to
// use; safe for concurrent use.
type linkerCounters struct {
	mu              sync.Mutex
	linkAttempts    uint64
	links           map[string]uint64
	refreshFailures map[string]uint64
	refreshes       map[string]uint64
	markedStale     map[string]uint64
	sweeps          map[string]uint64
	swept           bool
	needSignIn      int
}

func (c *linkerCounters) inc(m *map[string]uint64, key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	counts.Add(m, key, 1)
}

func (c *linkerCounters) linkAttempt() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.linkAttempts++
}

func (c *linkerCounters) linkOutcome(outcome string) { c.inc(&c.links, outcome) }

func (c *linkerCounters) refreshFailed(reason string) { c.inc(&c.refreshFailures, reason) }

func (c *linkerCounters) refreshed(trigger string) { c.inc(&c.refreshes, trigger) }

func (c *linkerCounters) markStale(reason string) { c.inc(&c.markedStale, reason) }

// sweepDone counts a finished pass and what it found.
func (c *linkerCounters) sweepDone(result string, needSignIn int) {
	c.inc(&c.sweeps, result)
	if result == SweepFailed {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.swept, c.needSignIn = true, needSignIn
}

// Metrics returns a snapshot of the Linker's counters. Safe for
// concurrent use.
func (l *Linker) Metrics() LinkerMetrics {
	c := &l.counters
	c.mu.Lock()
	m := LinkerMetrics{
		LinkAttempts:    c.linkAttempts,
		Links:           maps.Clone(c.links),
		RefreshFailures: maps.Clone(c.refreshFailures),
		Refreshes:       maps.Clone(c.refreshes),
		MarkedStale:     maps.Clone(c.markedStale),
		Sweeps:          maps.Clone(c.sweeps),
		Swept:           c.swept,
		NeedSignIn:      c.needSignIn,
	}
	c.mu.Unlock()
	// Known label values are present from the start, so that a rate over
	// them works from the first event on.
	counts.WithKeys(&m.Links, linkOutcomes...)
	counts.WithKeys(&m.RefreshFailures, RefreshFailureUnavailable, RefreshFailureRefused, RefreshFailureTokenUnreadable)
	counts.WithKeys(&m.Refreshes, refreshByClick, refreshBySweep)
	counts.WithKeys(&m.MarkedStale, StaleRefreshRefused, StaleBindingMismatch)
	counts.WithKeys(&m.Sweeps, SweepCompleted, SweepIdPUnavailable, SweepChatUnavailable, SweepFailed)
	return m
}
