package approvals

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/signoff-dev/signoff/approvals/audit"
	"github.com/signoff-dev/signoff/storage"
)

// ErrStaleClaim means an outbox entry was claimed again (its lease ran out)
// since this worker claimed it; the newer claim owns the result.
var ErrStaleClaim = errors.New("outbox entry was claimed again by another worker")

// ExecutionResult is the outcome of one attempt to run an approved
// request's action.
type ExecutionResult struct {
	// OK: the action ran (the receiver accepted it).
	OK bool
	// Retry: the attempt failed but may succeed later, at RetryAt. When
	// neither OK nor Retry, the execution failed for good.
	Retry   bool
	RetryAt time.Time
	// StatusCode is the receiver's HTTP status, 0 when there was none.
	StatusCode int
	// Error says what went wrong, for the audit log and the requester.
	Error string
}

// stillClaimed reads the outbox entry claimed, as it is now: ErrStaleClaim
// when it is gone or no longer carries that claim (its attempt count
// moved on).
func stillClaimed(tx storage.Tx, claimed storage.OutboxEntry) (storage.OutboxEntry, error) {
	e, err := tx.Outbox(claimed.ID)
	if errors.Is(err, storage.ErrNotFound) {
		return storage.OutboxEntry{}, ErrStaleClaim
	}
	if err != nil {
		return storage.OutboxEntry{}, err
	}
	if e.Attempts != claimed.Attempts {
		return storage.OutboxEntry{}, ErrStaleClaim
	}
	return e, nil
}

// RecordExecution stores the outcome of one attempt of a claimed "execute"
// outbox entry, in one transaction: the request's execution state, an
// audit record (execution.attempt for a failure that will be retried,
// execution.succeeded or execution.failed at the end), and the outbox entry
// rescheduled or removed. The entry must still carry this worker's claim
// (same attempt count); otherwise ErrStaleClaim.
func (s *Service) RecordExecution(ctx context.Context, claimed storage.OutboxEntry, res ExecutionResult) (storage.Request, error) {
	var out storage.Request
	err := s.update(ctx, func(tx storage.Tx) error {
		out = storage.Request{}
		e, err := stillClaimed(tx, claimed)
		if err != nil {
			return err
		}
		r, err := tx.Request(e.RequestID)
		if err != nil {
			return fmt.Errorf("read request %s: %w", e.RequestID, err)
		}
		now := s.clock.Now().UTC()
		exec := storage.Execution{Status: storage.ExecutionPending, Attempts: e.Attempts, LastError: res.Error, UpdatedAt: now}
		data := map[string]any{"attempt": e.Attempts}
		if res.StatusCode != 0 {
			data["status_code"] = res.StatusCode
		}
		if res.Error != "" {
			data["error"] = res.Error
		}
		rec := audit.Record{Time: audit.FormatTime(now), RequestID: r.ID, Action: r.Action, Source: fmt.Sprintf("outbox:%d", e.ID), Data: data}
		switch {
		case res.OK:
			exec.Status, exec.LastError = storage.ExecutionSucceeded, ""
			rec.Type = audit.TypeExecutionSucceeded
		case res.Retry:
			rec.Type = audit.TypeExecutionAttempt
			data["retry_at"] = audit.FormatTime(res.RetryAt)
		default:
			exec.Status = storage.ExecutionFailed
			rec.Type = audit.TypeExecutionFailed
		}
		r.Execution = &exec
		if err := tx.UpdateRequest(r); err != nil {
			return fmt.Errorf("store execution of %s: %w", r.ID, err)
		}
		r.Version++
		if err := s.appendAudit(tx, rec); err != nil {
			return err
		}
		if res.Retry && !res.OK {
			e.NextAttempt, e.LeaseUntil, e.LastError = res.RetryAt.UTC(), time.Time{}, res.Error
			if err := tx.PutOutbox(e); err != nil {
				return err
			}
		} else {
			if err := tx.DeleteOutbox(e.ID); err != nil {
				return err
			}
			if err := s.notifyAction(tx, r, EventExecuted); err != nil {
				return err
			}
		}
		out = r
		return nil
	})
	if err != nil {
		return storage.Request{}, fmt.Errorf("record execution of outbox entry %d: %w", claimed.ID, err)
	}
	s.metrics.executionRecorded(res)
	s.watchers.notify(out.ID)
	return out, nil
}
