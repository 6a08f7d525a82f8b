package approvals

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/signoff-dev/signoff/internal/counts"
	"github.com/signoff-dev/signoff/internal/platform"
	"github.com/signoff-dev/signoff/storage"
)

// Metrics is a snapshot of the service's event counters since it started
// (they live in memory: a restart starts them at 0, as Prometheus counters
// expect). The maps are copies the caller owns. A counter moves only after
// the transaction that made the change committed, never inside it, so a
// transaction run twice (a retried compare-and-swap, a group commit run
// again) counts once and a failed one not at all.
type Metrics struct {
	// RequestsCreated counts requests created, by action name. Every action
	// the policy declares is present (0 until used); an idempotent retry
	// that returned an earlier request does not count.
	RequestsCreated map[string]uint64
	// VotesCounted counts votes that were added to a request, by decision
	// ("approve", "deny"). Duplicate clicks do not count.
	VotesCounted map[string]uint64
	// VotesRefused counts refused votes by refusal reason (Reason…
	// constants, e.g. "not_eligible", "not_pending"): those refused in a
	// committed transaction (which wrote vote.rejected) and those refused
	// as malformed before any ("invalid_request").
	VotesRefused map[string]uint64
	// Decisions counts requests leaving pending, by the state they reached:
	// "approved", "denied", "expired", "cancelled" (all always present).
	// Expired counts both the expiry loop and a vote that arrived after the
	// deadline and expired the request itself.
	Decisions map[string]uint64
	// ExecutionsFinished counts executions that reached a final status:
	// "succeeded" or "failed" (both always present).
	ExecutionsFinished map[string]uint64
	// ExecutionAttempts counts every recorded execution attempt, including
	// failed attempts that will be retried.
	ExecutionAttempts uint64
	// CallbacksRejected counts platform callbacks that failed verification
	// or came from a workspace or tenant not configured, by platform and
	// reason: every RecordRejectedCallback call, including those whose
	// callback.rejected record was sampled away.
	CallbacksRejected map[CallbackRejection]uint64
	// AdminActions counts the actions admins took through the admin API,
	// by AdminAction… name (CountAdminAction). Every known action is
	// present (0 until used).
	AdminActions map[string]uint64
}

// CallbackRejection is the key of Metrics.CallbacksRejected.
type CallbackRejection struct {
	Platform, Reason string
}

// Admin actions (CountAdminAction, Metrics.AdminActions): one per admin
// API operation.
const (
	AdminActionLinksList     = "links_list"
	AdminActionLinkRevoke    = "link_revoke"
	AdminActionRequestsList  = "requests_list"
	AdminActionRequestCancel = "request_cancel"
	AdminActionBlockLift     = "block_lift"
	AdminActionBackup        = "backup"
	// AdminActionOther stands for any name not listed above, so that the
	// label keeps a fixed set of values.
	AdminActionOther = "other"
)

var adminActions = []string{AdminActionLinksList, AdminActionLinkRevoke, AdminActionRequestsList, AdminActionRequestCancel, AdminActionBlockLift, AdminActionBackup}

// CountAdminAction counts one action an admin took through the admin API
// (an AdminAction… name; others count as AdminActionOther), for
// signoff_admin_actions_total. Call it once the action succeeded (after its
// audit record committed). Safe for concurrent use.
func (s *Service) CountAdminAction(action string) {
	if !slices.Contains(adminActions, action) {
		action = AdminActionOther
	}
	s.metrics.inc(&s.metrics.admin, action, 1)
}

// counters hold the service's event counts. The zero value is ready to use
// and it is safe for concurrent use. Its methods are called only after a
// commit succeeded, never from inside an Update function (which may run
// more than once).
type counters struct {
	mu         sync.Mutex
	created    map[string]uint64
	votes      map[string]uint64
	refused    map[string]uint64
	decisions  map[string]uint64
	executions map[string]uint64
	attempts   uint64
	callbacks  map[CallbackRejection]uint64
	admin      map[string]uint64
}

func (c *counters) inc(m *map[string]uint64, key string, n uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	counts.Add(m, key, n)
}

func (c *counters) requestCreated(action string) { c.inc(&c.created, action, 1) }

func (c *counters) voteCounted(d storage.Decision) { c.inc(&c.votes, string(d), 1) }

func (c *counters) voteRefused(reason Reason) { c.inc(&c.refused, string(reason), 1) }

func (c *counters) callbackRejected(platform, reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.callbacks == nil {
		c.callbacks = make(map[CallbackRejection]uint64)
	}
	c.callbacks[CallbackRejection{Platform: platform, Reason: reason}]++
}

// decided counts n requests that reached state.
func (c *counters) decided(state storage.State, n int) {
	if n > 0 {
		c.inc(&c.decisions, string(state), uint64(n))
	}
}

// executionRecorded counts one recorded attempt and, when it ended the
// execution, its final status.
func (c *counters) executionRecorded(res ExecutionResult) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.attempts++
	switch {
	case res.OK:
		counts.Add(&c.executions, string(storage.ExecutionSucceeded), 1)
	case !res.Retry:
		counts.Add(&c.executions, string(storage.ExecutionFailed), 1)
	}
}

// Metrics returns a snapshot of the service's counters. Safe for concurrent
// use.
func (s *Service) Metrics() Metrics {
	c := &s.metrics
	c.mu.Lock()
	m := Metrics{
		RequestsCreated:    maps.Clone(c.created),
		VotesCounted:       maps.Clone(c.votes),
		VotesRefused:       maps.Clone(c.refused),
		Decisions:          maps.Clone(c.decisions),
		ExecutionsFinished: maps.Clone(c.executions),
		ExecutionAttempts:  c.attempts,
		CallbacksRejected:  maps.Clone(c.callbacks),
		AdminActions:       maps.Clone(c.admin),
	}
	c.mu.Unlock()
	// Known label values are present from the start, so a rate over them
	// works from the first event on.
	var actions []string
	if s.policy != nil {
		actions = make([]string, 0, len(s.policy.Actions))
		for name := range s.policy.Actions {
			actions = append(actions, name)
		}
	}
	counts.WithKeys(&m.RequestsCreated, actions...)
	counts.WithKeys(&m.VotesCounted, string(storage.DecisionApprove), string(storage.DecisionDeny))
	counts.WithKeys(&m.VotesRefused)
	counts.WithKeys(&m.Decisions, string(storage.StateApproved), string(storage.StateDenied), string(storage.StateExpired), string(storage.StateCancelled))
	counts.WithKeys(&m.ExecutionsFinished, string(storage.ExecutionSucceeded), string(storage.ExecutionFailed))
	counts.WithKeys(&m.AdminActions, adminActions...)
	if m.CallbacksRejected == nil {
		m.CallbacksRejected = map[CallbackRejection]uint64{}
	}
	return m
}

// MaxBacklogCount caps each count Backlog reports: a scrape never decodes
// more than this many pending requests, nor more than this many outbox
// entries of one kind, however large the backlog. A count equal to it means
// "at least this many".
const MaxBacklogCount = 10_000

// Backlog is the work waiting in the store at one instant.
type Backlog struct {
	// Pending counts requests still pending (also those past their deadline
	// that the expiry loop has not reached yet), at most MaxBacklogCount.
	Pending int
	// OutboxDue counts outbox entries due now (next attempt reached, not
	// leased by a worker), by kind prefix: KindExecute, "notify.slack",
	// "notify.teams", "notice.slack" and "notice.teams", always all five.
	// Each at most MaxBacklogCount.
	OutboxDue map[string]int
	// Unpublished counts the signed checkpoints not yet delivered to a
	// witness (publish.go), by kind of witness: WitnessSlack, WitnessTeams
	// and WitnessWebhook, always all three; each at most MaxBacklogCount.
	// Unlike OutboxDue it counts entries waiting out a backoff, or behind
	// an older checkpoint, too.
	Unpublished map[string]int
	// OldestUnpublished is, by the same keys, how long the oldest of them
	// has waited; 0 when there is none.
	OldestUnpublished map[string]time.Duration
}

// backlogKinds returns the outbox kind prefixes Backlog counts:
// KindExecute, then the notify and the notice kind of every chat platform.
func backlogKinds() []string {
	kinds := []string{KindExecute}
	for _, prefix := range []string{KindNotifyPrefix, KindNoticePrefix} {
		for _, p := range platform.Chat() {
			kinds = append(kinds, prefix+p)
		}
	}
	return kinds
}

// Backlog counts pending requests and due outbox entries in one read
// transaction, each count stopping at MaxBacklogCount. The cap bounds what
// is decoded and held; finding due entries still walks the outbox (the
// store keeps no index by due time), which stays small while the workers
// keep up.
func (s *Service) Backlog(ctx context.Context) (Backlog, error) {
	kinds := backlogKinds()
	b := Backlog{OutboxDue: make(map[string]int, len(kinds))}
	err := s.store.View(ctx, func(tx storage.ReadTx) error {
		now := s.clock.Now().UTC()
		pending, err := tx.PendingExpiring(time.Unix(1<<40, 0), MaxBacklogCount)
		if err != nil {
			return fmt.Errorf("count pending requests: %w", err)
		}
		b.Pending = len(pending)
		for _, kind := range kinds {
			due, err := tx.DueOutbox(now, kind, MaxBacklogCount)
			if err != nil {
				return fmt.Errorf("count due %s outbox entries: %w", kind, err)
			}
			b.OutboxDue[kind] = len(due)
		}
		return readUnpublished(tx, now, &b)
	})
	if err != nil {
		return Backlog{}, fmt.Errorf("read backlog: %w", err)
	}
	return b, nil
}
