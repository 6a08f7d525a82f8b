package executor

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/approvals/audit"
	"github.com/signoff-dev/signoff/policy"
	"github.com/signoff-dev/signoff/storage"
)

// Publisher sends the audit log's signed checkpoints to the audit.publish
// webhook, a witness that keeps them (docs/auditors.md, "Witnesses"). It
// claims the "publish.webhook" outbox entries the approvals service queues
// in each checkpoint's transaction (approvals.KindPublishWebhook) and
// POSTs each checkpoint exactly as an on_approve webhook is POSTed:
//
//   - the body is the checkpoint record line exactly as the audit log holds
//     it (one JSON object, no trailing newline; Content-Type
//     application/json), so the witness can append it to an anchor file
//     for `signoff audit verify --anchor` as it is;
//   - Signoff-Signature signs it with the webhook's secret (Sign; a
//     receiver checks it with Verify);
//   - Idempotency-Key is "checkpoint-<seq>", the same on every attempt.
//
// Checkpoints go out one at a time, in seq order: a later one is sent only
// once the earlier one was accepted (approvals.Service.ClaimPublications).
// Any failure (network, timeout, any status other than 2xx, redirects
// included) is retried with the executor's capped exponential backoff,
// honouring Retry-After on 429 and 503, and never given up: a witness must
// not miss a checkpoint. Delivery is at least once, so the receiver keeps
// one line per seq; a second, different line for a seq it holds is evidence
// that the log was rewritten (keep both, and alert).
type Publisher struct {
	e    *Executor
	hook policy.Webhook
	host string
}

// NewPublisher returns a Publisher to hook over svc, tuned by opts like an
// Executor (MaxAttempts and Concurrency do not apply: it never gives up
// and sends one checkpoint at a time). It starts nothing; call Run. It
// logs a warning when the lease forces it to shorten the hook's timeout.
func NewPublisher(svc *approvals.Service, hook policy.Webhook, opts Options) *Publisher {
	p := &Publisher{e: newExecutor(svc, opts), hook: hook}
	if u, err := url.Parse(hook.URL); err == nil {
		p.host = u.Host
	}
	if hook.Timeout > p.e.maxTimeout() {
		p.e.log.Warn("audit.publish.webhook timeout exceeds 3/4 of the lease; attempts will time out sooner",
			"timeout", hook.Timeout, "effective_timeout", p.e.maxTimeout(), "lease", p.e.opts.Lease)
	}
	return p
}

// Run publishes due checkpoints until ctx ends, then returns ctx's error.
// It sleeps PollInterval on the clock between passes; a failed pass is
// logged and retried at the next one.
func (p *Publisher) Run(ctx context.Context) error {
	for {
		if _, err := p.RunOnce(ctx); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			p.e.log.Error("checkpoint publishing pass failed; retrying", "err", err, "retry_in", p.e.opts.PollInterval)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-p.e.clock.After(p.e.opts.PollInterval):
		}
	}
}

// RunOnce sends the checkpoints due now, oldest first, until none is due
// or one fails, and returns how many attempts it made. A failed attempt is
// not an error here (it is recorded on the entry and retried); errors are
// failures to claim.
func (p *Publisher) RunOnce(ctx context.Context) (int, error) {
	total := 0
	for {
		claimed, err := p.e.svc.ClaimPublications(ctx, approvals.KindPublishWebhook, 1, p.e.opts.Lease)
		if err != nil {
			return total, fmt.Errorf("publish checkpoints: %w", err)
		}
		if len(claimed) == 0 {
			return total, nil
		}
		total++
		if !p.publish(ctx, claimed[0]) {
			return total, ctx.Err()
		}
	}
}

// publish makes one attempt at a claimed checkpoint and records what came
// of it: completed (which wakes the next checkpoint) or rescheduled. It
// reports whether the checkpoint is done with.
func (p *Publisher) publish(ctx context.Context, entry storage.OutboxEntry) bool {
	anchor, err := audit.ParseAnchor(entry.Payload)
	if err != nil {
		// Not something any attempt could deliver: our own queue holds it.
		p.e.log.Error("checkpoint publication is unreadable; removing it", "entry", entry.ID, "err", err)
		return p.complete(ctx, entry, 0)
	}
	seq := anchor.Seq
	var a answer
	if u, err := url.Parse(p.hook.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		// The URL is not quoted: it may carry a token.
		a = answer{msg: "audit.publish.webhook.url is not an absolute http or https URL"}
	} else {
		a = p.e.send(ctx, &p.hook, p.host, "checkpoint-"+strconv.FormatUint(seq, 10), entry.Payload)
	}
	if a.ok {
		p.e.log.Info("checkpoint published to the webhook witness", "seq", seq, "attempt", entry.Attempts, "status", a.status)
		return p.complete(ctx, entry, seq)
	}

	msg := sanitize(a.msg, p.hook.Secret, maxErrorText)
	now := p.e.clock.Now()
	next := now
	recCtx := ctx
	if ctx.Err() != nil {
		// Shutting down: not the witness's fault; due at once at the next
		// start.
		var cancel context.CancelFunc
		recCtx, cancel = context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
		defer cancel()
	} else {
		next = now.Add(min(max(backoff(entry.Attempts, p.e.opts.BaseBackoff, p.e.opts.MaxBackoff), a.retryAfter), p.e.opts.MaxBackoff))
	}
	if err := p.e.svc.Retry(recCtx, entry.ID, next, fmt.Errorf("checkpoint seq %d: %s", seq, msg)); err != nil {
		// The lease runs out on its own; the entry is retried then.
		p.e.log.Error("could not reschedule a checkpoint for the webhook witness", "entry", entry.ID, "seq", seq, "err", err)
	}
	attrs := []any{"seq", seq, "attempt", entry.Attempts, "retry_at", next, "err", msg}
	if a.status != 0 {
		attrs = append(attrs, "status", a.status)
	}
	if a.transient {
		p.e.log.Warn("checkpoint not yet published to the webhook witness; will retry", attrs...)
	} else {
		p.e.log.Error("the webhook witness refuses checkpoints; fix the receiver or audit.publish.webhook, signoff keeps retrying", attrs...)
	}
	return false
}

// complete removes a delivered (or undeliverable) checkpoint entry. An
// entry another worker completed already counts as done.
func (p *Publisher) complete(ctx context.Context, entry storage.OutboxEntry, seq uint64) bool {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	err := p.e.svc.CompletePublication(cctx, entry.ID, entry.Kind)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		// The next attempt sends it again; the witness keeps one line
		// per seq.
		p.e.log.Error("a published checkpoint could not be completed; it will be sent again", "entry", entry.ID, "seq", seq, "err", err)
		return false
	}
	return true
}
