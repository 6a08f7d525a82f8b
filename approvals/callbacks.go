package approvals

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/signoff-dev/signoff/approvals/audit"
	"github.com/signoff-dev/signoff/internal/text"
	"github.com/signoff-dev/signoff/storage"
)

// CallbackRejectedPerMinute caps the callback.rejected records written per
// platform and reason in one minute (on the service's clock). A flood of
// forged callbacks thus costs at most this many audit writes a minute; the
// ones left out are counted in the "dropped" member of the next record
// written for the same platform and reason.
const CallbackRejectedPerMinute = 10

// maxCallbackField bounds the strings a rejected-callback record carries;
// they may come from an unauthenticated caller.
const maxCallbackField = 128

// clip cuts such a string to maxCallbackField bytes.
func clip(s string) string { return text.Cut(s, maxCallbackField) }

// RecordRejectedCallback appends a callback.rejected audit record: a
// platform callback failed verification (bad or missing signature, stale
// timestamp) or came from a workspace or tenant that is not configured.
// platform is "slack" or "teams"; workspace the team or tenant id the
// callback claimed, if known ("" before the payload could be trusted);
// reason a short stable code ("bad_signature", "stale_timestamp",
// "wrong_workspace", …); source where it arrived (e.g. "POST
// /slack/interactions"). The record holds {platform, reason} (and the
// count of records left out, see CallbackRejectedPerMinute): never the
// body or headers of the callback.
//
// Under a flood the records are sampled: a nil error with no record
// written means the call was counted towards the next record's "dropped".
func (s *Service) RecordRejectedCallback(ctx context.Context, platform, workspace, reason, source string) error {
	platform, workspace = clip(platform), clip(workspace)
	reason, source = clip(reason), clip(source)
	// Counted whether or not a record is written: /metrics sees the whole
	// flood the sampling keeps out of the log.
	s.metrics.callbackRejected(platform, reason)
	key := platform + "\x00" + reason
	ok, dropped := s.rejected.admit(key, s.clock.Now())
	if !ok {
		return nil
	}
	data := map[string]any{"platform": platform, "reason": reason}
	if dropped > 0 {
		data["dropped"] = dropped
	}
	rec := audit.Record{Type: audit.TypeCallbackRejected, Source: source, Data: data}
	if workspace != "" {
		rec.Actor = &audit.Actor{Platform: platform, Workspace: workspace}
	}
	err := s.update(ctx, func(tx storage.Tx) error { return s.appendAudit(tx, rec) })
	if err != nil {
		// Not written: count it (and the ones it carried) for the next.
		s.rejected.giveBack(key, dropped+1)
		return fmt.Errorf("record rejected %s callback (%s): %w", platform, reason, err)
	}
	s.log.Info("callback rejected", "platform", platform, "workspace", workspace, "reason", reason, "source", source, "dropped_before", dropped)
	return nil
}

// UnverifiedVote is a click that never reached Vote because the chat
// account could not be tied to a verified identity: it is not linked, or
// its link expired or went stale.
type UnverifiedVote struct {
	RequestID string
	Source    Source
	Decision  storage.Decision
	// Reason is ReasonNotLinked or ReasonStaleIdentity.
	Reason Reason
	// Message is what the person was told.
	Message string
	// Detail optionally refines Reason (e.g. the linker's "link_expired").
	Detail string
}

// RecordUnverifiedVote appends a vote.rejected audit record for a click
// from a chat account without a usable link. The actor is the chat account
// (platform, workspace, platform user); there is no IdP identity to name.
// The request's action is filled in when the request exists.
//
// Any workspace member can click, so these records are sampled like
// rejected callbacks: at most CallbackRejectedPerMinute a minute per
// platform and reason, the ones left out counted in the next record's
// "dropped". A nil error with no record written means the click was
// counted that way.
func (s *Service) RecordUnverifiedVote(ctx context.Context, in UnverifiedVote) error {
	key := sampleKey(in.Source.Platform, in.Reason)
	ok, dropped := s.rejected.admit(key, s.clock.Now())
	if !ok {
		return nil
	}
	err := s.update(ctx, func(tx storage.Tx) error {
		now := s.clock.Now().UTC()
		data := map[string]any{"reason": string(in.Reason), "message": in.Message, "decision": string(in.Decision)}
		if in.Detail != "" {
			data["detail"] = in.Detail
		}
		if dropped > 0 {
			data["dropped"] = dropped
		}
		rec := audit.Record{
			Time: audit.FormatTime(now), Type: audit.TypeVoteRejected, RequestID: in.RequestID,
			Actor:  &audit.Actor{Platform: in.Source.Platform, Workspace: in.Source.Workspace, PlatformUser: in.Source.PlatformUser},
			Source: in.Source.CallbackID, Data: data,
		}
		return s.appendNamingAction(tx, rec)
	})
	if err != nil {
		s.rejected.giveBack(key, dropped+1)
		return fmt.Errorf("record unverified vote on %s: %w", in.RequestID, err)
	}
	s.log.Info("vote refused", "request", in.RequestID, "platform", in.Source.Platform, "platform_user", in.Source.PlatformUser, "reason", in.Reason)
	return nil
}

// appendNamingAction appends rec, a record about request rec.RequestID,
// naming the request's action when the request exists: a refused vote may
// name an id no request has.
func (s *Service) appendNamingAction(tx storage.Tx, rec audit.Record) error {
	r, err := tx.Request(rec.RequestID)
	switch {
	case err == nil:
		rec.Action = r.Action
	case !errors.Is(err, storage.ErrNotFound):
		return err
	}
	return s.appendAudit(tx, rec)
}

// callbackSampler admits at most CallbackRejectedPerMinute records per key
// in each one-minute window and counts the rest. The zero value is ready to
// use; each Service has its own (Service.rejected).
type callbackSampler struct {
	mu      sync.Mutex
	windows map[string]*sampleWindow
}

type sampleWindow struct {
	start   time.Time
	written int
	dropped int
}

// maxSampleKeys bounds the sampler's memory; keys are platform+reason
// pairs the adapters choose from a small set, so this is never reached in
// practice.
const maxSampleKeys = 1024

// admit reports whether a record may be written now for key and, if so,
// how many were left out before it (which the caller reports). One it
// refuses is counted as left out.
func (c *callbackSampler) admit(key string, now time.Time) (ok bool, dropped int) {
	return c.take(key, now, true)
}

// take is admit; with count false a record it refuses is not counted yet:
// the caller counts it (leftOut) once it knows the record was due.
func (c *callbackSampler) take(key string, now time.Time, count bool) (ok bool, dropped int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := c.window(key, now)
	if now.Sub(w.start) >= time.Minute || now.Before(w.start) {
		w.start, w.written = now, 0
	}
	if w.written >= CallbackRejectedPerMinute {
		if count {
			w.dropped++
		}
		return false, 0
	}
	w.written++
	dropped, w.dropped = w.dropped, 0
	return true, dropped
}

// leftOut counts n records of key as left out.
func (c *callbackSampler) leftOut(key string, now time.Time, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.window(key, now).dropped += n
}

// window returns key's window, made (starting at now) if there is none.
func (c *callbackSampler) window(key string, now time.Time) *sampleWindow {
	w := c.windows[key]
	if w == nil {
		if c.windows == nil {
			c.windows = map[string]*sampleWindow{}
		}
		if len(c.windows) >= maxSampleKeys {
			clear(c.windows)
		}
		w = &sampleWindow{start: now}
		c.windows[key] = w
	}
	return w
}

// giveBack counts n records as left out after a failed write.
func (c *callbackSampler) giveBack(key string, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if w := c.windows[key]; w != nil {
		w.dropped += n
		if w.written > 0 {
			w.written--
		}
	}
}
