package approvals

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/signoff-dev/signoff/approvals/audit"
	"github.com/signoff-dev/signoff/policy"
	"github.com/signoff-dev/signoff/storage"
)

// An action's windows and freezes (policy.Action.CheckWindow) bind twice:
// Create refuses a request outside them, and DeferExecution holds an
// approved request's execution until they allow it, so an approval that
// lands after its window closed runs when the next one opens, never
// outside one and never dropped. Only requests approved by their
// approvers' votes (DecidedBy "quorum") wait; an execution signoff
// queued for any other reason (break-glass) is not bound by windows.

// DeferExecution checks, before an attempt, whether the claimed "execute"
// entry may run now. When the action's windows are closed or a freeze is
// in force it reschedules the entry to the next instant they allow
// (policy.Action.NextAllowed), gives back the attempt the claim counted,
// and writes an execution.deferred record with the reason and that time,
// in one transaction; deferred is true and until says when. When the
// action may run (or the request is not one windows bind), it changes
// nothing. The entry must still carry this worker's claim; otherwise
// ErrStaleClaim.
func (s *Service) DeferExecution(ctx context.Context, claimed storage.OutboxEntry) (deferred bool, until time.Time, err error) {
	err = s.update(ctx, func(tx storage.Tx) error {
		deferred, until = false, time.Time{}
		e, err := stillClaimed(tx, claimed)
		if err != nil {
			return err
		}
		r, err := tx.Request(e.RequestID)
		if errors.Is(err, storage.ErrNotFound) {
			return nil // the executor reports a missing request
		}
		if err != nil {
			return fmt.Errorf("read request %s: %w", e.RequestID, err)
		}
		if r.State != storage.StateApproved || r.DecidedBy != "quorum" {
			return nil
		}
		action, err := s.policy.Action(r.Action)
		if err != nil {
			return nil // the executor reports an undeclared action
		}
		now := s.clock.Now().UTC()
		why := action.CheckWindow(now)
		if why == nil {
			return nil
		}
		var refused *policy.RefusalError
		reason := ""
		if errors.As(why, &refused) {
			reason = string(refused.Code)
		}
		until = action.NextAllowed(now).UTC()
		e.Attempts = max(e.Attempts-1, 0)
		e.NextAttempt, e.LeaseUntil = until, time.Time{}
		if err := tx.PutOutbox(e); err != nil {
			return fmt.Errorf("reschedule execution of %s: %w", r.ID, err)
		}
		deferred = true
		return s.appendAudit(tx, audit.Record{
			Time: audit.FormatTime(now), Type: audit.TypeExecutionDeferred, RequestID: r.ID, Action: r.Action,
			Source: fmt.Sprintf("outbox:%d", e.ID),
			Data:   map[string]any{"reason": reason, "message": why.Error(), "until": audit.FormatTime(until)},
		})
	})
	if err != nil {
		return false, time.Time{}, fmt.Errorf("check the windows of outbox entry %d: %w", claimed.ID, err)
	}
	if deferred {
		s.log.Info("execution deferred", "request", claimed.RequestID, "until", until)
	}
	return deferred, until, nil
}
