package approvals

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/signoff-dev/signoff/internal/platform"
	"github.com/signoff-dev/signoff/policy"
	"github.com/signoff-dev/signoff/storage"
)

// Publishing signed checkpoints to witnesses (audit.publish; see
// docs/auditors.md, "Witnesses").
//
// When the service appends a signed checkpoint (every CheckpointEvery
// records, and the closing one in Close), the same transaction queues one
// outbox entry per witness: a Slack channel, a Teams conversation, the
// webhook. The entry's payload is the checkpoint record line exactly as
// the log stores and exports it, so what a witness keeps can be given to
// `signoff audit verify --anchor` unchanged. The entry's kind names the
// witness (PublishKind, KindPublishWebhook): each witness is its own queue.
//
// Each witness receives its checkpoints in seq order. ClaimPublications
// hands out only the oldest undelivered entry of a witness; a younger one
// waits (parked) until the oldest is delivered (CompletePublication wakes
// it) or due again. A failed delivery is rescheduled with Retry, never
// dropped. Delivery is at least once: a crash after the witness accepted a
// checkpoint but before the completion committed sends it again, so
// witnesses keep one line per seq.
//
// The closing checkpoint's entries commit with it while the delivery loops
// have already stopped: the next start delivers them.

// Outbox kinds of checkpoint publications.
const (
	// KindPublishPrefix starts the kind of every publication.
	KindPublishPrefix = "publish."
	// KindPublishWebhook publishes to the audit.publish webhook.
	KindPublishWebhook = KindPublishPrefix + "webhook"
)

// Witnesses names where signed checkpoints are published. The zero value
// publishes nowhere.
type Witnesses struct {
	// Chat names conversations by platform: Slack channel ids, Teams
	// conversation ids. A conversation on a platform whose adapter is not
	// running is still queued; configuration refuses that case.
	Chat policy.Notify
	// Webhook publishes every checkpoint to the audit.publish webhook.
	Webhook bool
}

// PublishKindPrefix is the start of the kinds of every witness on chat
// platform p ("publish.slack("): the prefix its adapter claims.
func PublishKindPrefix(p string) string {
	return KindPublishPrefix + p + "("
}

// PublishKind is the outbox kind of the witness that is conversation
// target on chat platform p: "publish.slack(C0123ABCD)". The target is
// path-escaped, which escapes every ")" in it, so no witness's kind is the
// start of another's.
func PublishKind(p, target string) string {
	return PublishKindPrefix(p) + url.PathEscape(target) + ")"
}

// PublishTarget returns the conversation a chat witness's kind names on
// platform p (PublishKind's inverse); false when kind is not one.
func PublishTarget(p, kind string) (string, bool) {
	rest, ok := strings.CutPrefix(kind, PublishKindPrefix(p))
	if !ok {
		return "", false
	}
	esc, ok := strings.CutSuffix(rest, ")")
	if !ok || esc == "" {
		return "", false
	}
	target, err := url.PathUnescape(esc)
	if err != nil || url.PathEscape(target) != esc {
		return "", false
	}
	return target, true
}

// kinds lists the kind of every witness once, in the order their entries
// are queued.
func (w Witnesses) kinds() []string {
	var out []string
	for _, p := range platform.Chat() {
		for _, t := range w.Chat.Targets(p) {
			if k := PublishKind(p, t); !slices.Contains(out, k) {
				out = append(out, k)
			}
		}
	}
	if w.Webhook {
		out = append(out, KindPublishWebhook)
	}
	return out
}

// queuePublications queues, in the checkpoint's transaction, one entry per
// witness whose payload is line, the checkpoint record as stored.
func (s *Service) queuePublications(tx storage.Tx, seq uint64, line []byte) error {
	now := s.clock.Now().UTC()
	for _, kind := range s.witnessKinds {
		if _, err := tx.Enqueue(storage.OutboxEntry{
			Kind: kind, Payload: slices.Clone(line), NextAttempt: now, CreatedAt: now,
		}); err != nil {
			return fmt.Errorf("queue checkpoint %d for %s: %w", seq, kind, err)
		}
	}
	return nil
}

// allTime is a due time after every entry's NextAttempt and LeaseUntil: a
// DueOutbox at allTime lists entries whatever their schedule or lease.
var allTime = time.Unix(1<<40, 0).UTC()

// publishScan bounds the due entries one claim looks at; the younger
// entries among them are parked, so the next claim sees others.
const publishScan = 100

// ClaimPublications leases up to limit due checkpoint publications whose
// kind starts with kindPrefix (PublishKindPrefix(p), or
// KindPublishWebhook), for lease, and at most one per witness: the
// witness's oldest undelivered entry. A due entry that is not its
// witness's oldest would overtake it, so it is not claimed but parked
// (rescheduled, with a note in LastError) until the oldest is due again or
// its lease ends; CompletePublication wakes it sooner. Each claim counts as
// an attempt.
//
// The oldest entry is looked up in the claim's own transaction, whatever
// its schedule or lease, so the order holds across retries, restarts and
// replicas: on PostgreSQL every write transaction takes its turn on the
// audit head first (docs/architecture.md, invariant 4), so no other claim
// holds a row this one would pass over.
func (s *Service) ClaimPublications(ctx context.Context, kindPrefix string, limit int, lease time.Duration) ([]storage.OutboxEntry, error) {
	if !strings.HasPrefix(kindPrefix, KindPublishPrefix) {
		return nil, fmt.Errorf("claim publications: %q is not a publication kind: %w", kindPrefix, ErrInvalid)
	}
	return s.claimDue(ctx, kindPrefix, publishScan, func(tx storage.Tx, now time.Time, due []storage.OutboxEntry) ([]storage.OutboxEntry, error) {
		var claimed []storage.OutboxEntry
		oldest := map[string]storage.OutboxEntry{} // by kind
		for _, e := range due {
			if len(claimed) == limit {
				break
			}
			head, ok := oldest[e.Kind]
			if !ok {
				first, err := tx.DueOutbox(allTime, e.Kind, 1)
				if err != nil {
					return nil, err
				}
				if len(first) == 0 || first[0].Kind != e.Kind {
					return nil, fmt.Errorf("outbox entry %d of %s is not listed with its kind", e.ID, e.Kind)
				}
				head = first[0]
			}
			if head.ID == e.ID {
				leased, err := leaseEntry(tx, e, now, lease)
				if err != nil {
					return nil, err
				}
				claimed = append(claimed, leased)
				oldest[e.Kind] = leased
				continue
			}
			oldest[e.Kind] = head
			e.NextAttempt = maxTime(head.NextAttempt, head.LeaseUntil, now.Add(time.Second))
			e.LastError = fmt.Sprintf("waiting for outbox entry %d, an older checkpoint for the same witness", head.ID)
			if err := tx.PutOutbox(e); err != nil {
				return nil, err
			}
		}
		return claimed, nil
	})
}

// CompletePublication removes a delivered publication (entry id of kind)
// and, in the same transaction, makes the witness's next checkpoint due at
// once. An error wraps storage.ErrNotFound when the entry is gone (another
// worker completed it after this one's lease ran out).
func (s *Service) CompletePublication(ctx context.Context, id uint64, kind string) error {
	err := s.update(ctx, func(tx storage.Tx) error {
		if err := tx.DeleteOutbox(id); err != nil {
			return err
		}
		next, err := tx.DueOutbox(allTime, kind, 1)
		if err != nil || len(next) == 0 || next[0].Kind != kind {
			return err
		}
		e, now := next[0], s.clock.Now().UTC()
		if e.LeaseUntil.After(now) || !e.NextAttempt.After(now) {
			return nil // in flight, or due already
		}
		e.NextAttempt, e.LastError = now, ""
		return tx.PutOutbox(e)
	})
	if err != nil {
		return fmt.Errorf("complete outbox entry %d: %w", id, err)
	}
	return nil
}

// Witness labels of Backlog.Unpublished: the kind of witness, never the
// conversation or the URL.
const (
	WitnessSlack   = platform.Slack
	WitnessTeams   = platform.Teams
	WitnessWebhook = "webhook"
)

// publishBacklogKinds maps the witness labels to the kind prefixes they
// count.
func publishBacklogKinds() map[string]string {
	return map[string]string{
		WitnessSlack:   PublishKindPrefix(platform.Slack),
		WitnessTeams:   PublishKindPrefix(platform.Teams),
		WitnessWebhook: KindPublishWebhook,
	}
}

// readUnpublished fills b's Unpublished and OldestUnpublished.
func readUnpublished(tx storage.ReadTx, now time.Time, b *Backlog) error {
	kinds := publishBacklogKinds()
	b.Unpublished = make(map[string]int, len(kinds))
	b.OldestUnpublished = make(map[string]time.Duration, len(kinds))
	for label, prefix := range kinds {
		all, err := tx.DueOutbox(allTime, prefix, MaxBacklogCount)
		if err != nil {
			return fmt.Errorf("count %s outbox entries: %w", prefix, err)
		}
		b.Unpublished[label] = len(all)
		var age time.Duration
		for _, e := range all {
			age = max(age, now.Sub(e.CreatedAt))
		}
		b.OldestUnpublished[label] = age
	}
	return nil
}

func maxTime(ts ...time.Time) time.Time {
	var out time.Time
	for _, t := range ts {
		if t.After(out) {
			out = t
		}
	}
	return out
}
