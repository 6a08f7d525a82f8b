// Package executor runs what an approval triggers: it claims the "execute"
// outbox entries the approvals service queues in the same transaction as an
// approval, POSTs a signed JSON Payload to the action's on_approve webhook,
// and records every attempt with approvals.Service.RecordExecution, which
// stores the request's execution state and audit record and reschedules or
// removes the outbox entry in one transaction.
//
// Delivery is at least once. Because the outbox entry is leased, not
// deleted, while a delivery is in flight, a process that crashes mid-attempt
// leaves the entry to be claimed again when the lease runs out, and a
// restart in the middle of a retry schedule resumes at the entry's
// NextAttempt. The one window that can repeat a delivery the receiver
// already accepted (a crash between its 2xx and the commit of the result)
// is covered by the request id, in the signed body and as the
// Idempotency-Key header, the same on every attempt. Receivers must
// deduplicate on it, reading it from the body (the header is not signed).
//
// Retry policy: network errors, timeouts, 5xx and 429 are retried with
// capped exponential backoff with jitter, honouring Retry-After on 429 and
// 503; a 3xx (redirects are not followed) or any other 4xx fails for good;
// after MaxAttempts attempts the execution fails for good. The errors
// recorded name the webhook's host, never its full URL, never the secret,
// and quote at most ~200 bytes of the response body.
//
// Publisher (publish.go) sends the audit log's signed checkpoints to the
// audit.publish webhook with the same signing, headers and backoff, in seq
// order, and never gives one up.
package executor

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/clock"
	"github.com/signoff-dev/signoff/policy"
	"github.com/signoff-dev/signoff/storage"
)

// Defaults for Options.
const (
	// DefaultLease is how long a claim holds an entry.
	DefaultLease = time.Minute
	// DefaultPollInterval is how long Run sleeps between passes.
	DefaultPollInterval = time.Second
	// DefaultMaxAttempts is how many attempts an execution gets.
	DefaultMaxAttempts = 10
	// DefaultBaseBackoff is the nominal delay after the first failure.
	DefaultBaseBackoff = 2 * time.Second
	// DefaultMaxBackoff caps every delay, Retry-After included.
	DefaultMaxBackoff = 5 * time.Minute
	// DefaultConcurrency is how many deliveries run at once.
	DefaultConcurrency = 4
	// DefaultWebhookTimeout bounds an attempt whose webhook sets no timeout.
	DefaultWebhookTimeout = 10 * time.Second
	// DefaultUserAgent is sent when Options.UserAgent is empty.
	DefaultUserAgent = "signoff"
)

// recordTimeout bounds how long recording an attempt interrupted by
// shutdown may take, so shutdown stays prompt.
const recordTimeout = 5 * time.Second

// Body limits: how much of a response is read for the error excerpt, how
// much of the excerpt is kept, and how much more is drained so the
// connection can be reused.
const (
	excerptRead  = 4096
	excerptKeep  = 200
	drainLimit   = 64 << 10
	maxErrorText = 1000
)

// Options configure an Executor. Zero values get the defaults above.
type Options struct {
	// HTTPClient sends the webhooks. Default: a client on
	// http.DefaultTransport that does not follow redirects (a 3xx is a
	// final failure: configure the final URL). Per-attempt timeouts come
	// from the webhook config, not from the client.
	HTTPClient *http.Client
	// Clock times leases, backoff, the poll loop and signature timestamps;
	// default the wall clock. Give it the service's clock. (The per-attempt
	// HTTP timeout always runs on the wall clock.)
	Clock clock.Clock
	// Logger receives operational logs; never secrets. Default slog.Default().
	Logger *slog.Logger
	// Lease is how long a claimed entry is held before another worker may
	// claim it again. A webhook timeout longer than 3/4 of the lease is
	// cut to that, so an attempt is recorded before its lease runs out.
	Lease time.Duration
	// PollInterval is how long Run sleeps between passes.
	PollInterval time.Duration
	// MaxAttempts is how many attempts an execution gets before it fails
	// for good.
	MaxAttempts int
	// BaseBackoff and MaxBackoff shape the retry delay: attempt n waits
	// between half and all of min(BaseBackoff·2^(n-1), MaxBackoff).
	BaseBackoff time.Duration
	MaxBackoff  time.Duration
	// Concurrency is how many deliveries run at once (and how many entries
	// one claim takes). Default 4.
	Concurrency int
	// UserAgent is sent with every delivery; default "signoff". The
	// command sets "signoff/<version>".
	UserAgent string
}

// Executor delivers approved requests to their webhooks. Create it with New;
// it is safe to run several (in one process or in several replicas) over
// one store: the outbox lease makes each attempt belong to one of them.
type Executor struct {
	svc    *approvals.Service
	opts   Options
	client *http.Client
	clock  clock.Clock
	log    *slog.Logger
}

// New returns an Executor over svc. It starts nothing; call Run. It logs a
// warning for every webhook whose timeout the lease forces it to shorten.
func New(svc *approvals.Service, opts Options) *Executor {
	e := newExecutor(svc, opts)
	if pol := svc.Policy(); pol != nil {
		for name, a := range pol.Actions {
			if wh := webhookOf(a); wh != nil && wh.Timeout > e.maxTimeout() {
				e.log.Warn("webhook timeout exceeds 3/4 of the executor lease; attempts will time out sooner",
					"action", name, "timeout", wh.Timeout, "effective_timeout", e.maxTimeout(), "lease", e.opts.Lease)
			}
		}
	}
	return e
}

// newExecutor returns an Executor over svc with opts' zero values set to
// their defaults.
func newExecutor(svc *approvals.Service, opts Options) *Executor {
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	opts.Logger = cmp.Or(opts.Logger, slog.Default())
	if opts.Lease <= 0 {
		opts.Lease = DefaultLease
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = DefaultPollInterval
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = DefaultMaxAttempts
	}
	if opts.BaseBackoff <= 0 {
		opts.BaseBackoff = DefaultBaseBackoff
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = DefaultMaxBackoff
	}
	opts.MaxBackoff = max(opts.MaxBackoff, opts.BaseBackoff)
	if opts.Concurrency <= 0 {
		opts.Concurrency = DefaultConcurrency
	}
	if opts.UserAgent == "" {
		opts.UserAgent = DefaultUserAgent
	}
	return &Executor{svc: svc, opts: opts, client: opts.HTTPClient, clock: opts.Clock, log: opts.Logger}
}

// Run delivers due executions until ctx ends, then returns ctx's error. It
// sleeps PollInterval on the clock between passes; a failed pass (the store
// unreachable, say) is logged and retried at the next one. In-flight
// deliveries finish (or are cut short and rescheduled) before Run returns.
func (e *Executor) Run(ctx context.Context) error {
	for {
		if _, err := e.RunOnce(ctx); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			e.log.Error("execution pass failed; retrying", "err", err, "retry_in", e.opts.PollInterval)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-e.clock.After(e.opts.PollInterval):
		}
	}
}

// RunOnce claims the executions due now, up to Concurrency at a time, makes
// one attempt at each and records it, until none is left due. It returns
// how many attempts it made. An attempt's own failure is not an error here
// (it is recorded); errors are failures to claim or to record.
func (e *Executor) RunOnce(ctx context.Context) (int, error) {
	total := 0
	for {
		claimed, err := e.svc.Claim(ctx, approvals.KindExecute, e.opts.Concurrency, e.opts.Lease)
		if err != nil {
			return total, fmt.Errorf("executor: %w", err)
		}
		errs := make([]error, len(claimed))
		var wg sync.WaitGroup
		for i, entry := range claimed {
			wg.Go(func() { errs[i] = e.execute(ctx, entry) })
		}
		wg.Wait()
		total += len(claimed)
		if err := errors.Join(errs...); err != nil {
			return total, err
		}
		if len(claimed) < e.opts.Concurrency {
			return total, nil
		}
		if err := ctx.Err(); err != nil {
			return total, err
		}
	}
}

// execute makes one attempt at a claimed entry and records its outcome,
// unless the action's windows or a freeze hold it back: then the entry
// waits, rescheduled and audited, until they allow it
// (approvals.Service.DeferExecution).
func (e *Executor) execute(ctx context.Context, entry storage.OutboxEntry) error {
	deferred, until, err := e.svc.DeferExecution(ctx, entry)
	if errors.Is(err, approvals.ErrStaleClaim) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("check the windows of request %s: %w", entry.RequestID, err)
	}
	if deferred {
		e.log.Info("execution deferred until the action's windows allow it", "request", entry.RequestID, "until", until)
		return nil
	}
	res, action := e.attempt(ctx, entry)
	recCtx := ctx
	if ctx.Err() != nil {
		// Shutting down: record the interrupted attempt anyway, so the next
		// start retries at once instead of waiting for the lease.
		var cancel context.CancelFunc
		recCtx, cancel = context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
		defer cancel()
	}
	_, err = e.svc.RecordExecution(recCtx, entry, res)
	if errors.Is(err, approvals.ErrStaleClaim) {
		e.log.Warn("execution attempt outlived its lease; another worker owns the entry now",
			"request", entry.RequestID, "action", action, "attempt", entry.Attempts)
		return nil
	}
	if err != nil {
		return fmt.Errorf("record attempt %d at request %s: %w", entry.Attempts, entry.RequestID, err)
	}
	attrs := []any{"request", entry.RequestID, "action", action, "attempt", entry.Attempts}
	if res.StatusCode != 0 {
		attrs = append(attrs, "status", res.StatusCode)
	}
	switch {
	case res.OK:
		e.log.Info("execution succeeded", attrs...)
	case res.Retry:
		e.log.Warn("execution attempt failed; will retry", append(attrs, "err", res.Error, "retry_at", res.RetryAt)...)
	default:
		e.log.Error("execution failed", append(attrs, "err", res.Error)...)
	}
	return nil
}

// attempt delivers one claimed entry and says what happened; it also
// returns the action name for logs.
func (e *Executor) attempt(ctx context.Context, entry storage.OutboxEntry) (approvals.ExecutionResult, string) {
	r, err := e.svc.Get(ctx, entry.RequestID)
	if errors.Is(err, approvals.ErrUnknownRequest) {
		return failed(0, fmt.Sprintf("request %s does not exist; nothing to execute", entry.RequestID)), ""
	}
	if err != nil {
		return e.retryable(ctx, entry, 0, 0, "", fmt.Sprintf("read request: %v", err)), ""
	}
	if r.State != storage.StateApproved {
		return failed(0, fmt.Sprintf("request %s is %s, not approved; nothing to execute", r.ID, r.State)), r.Action
	}
	pol := e.svc.Policy()
	if pol == nil {
		return failed(0, fmt.Sprintf("no policy is loaded, so approved request %s cannot run", r.ID)), r.Action
	}
	a, err := pol.Action(r.Action)
	if err != nil {
		return failed(0, fmt.Sprintf("action %q is no longer declared in the policy, so approved request %s cannot run; declare it again with an on_approve webhook to run new requests", r.Action, r.ID)), r.Action
	}
	wh := webhookOf(a)
	if wh == nil {
		return failed(0, fmt.Sprintf("action %q has no on_approve webhook configured, so approved request %s cannot run", r.Action, r.ID)), r.Action
	}
	u, err := url.Parse(wh.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		// The URL is not quoted: it may carry a token.
		return failed(0, fmt.Sprintf("the on_approve webhook URL of action %q is not an absolute http or https URL", r.Action)), r.Action
	}
	body, err := json.Marshal(NewPayload(r))
	if err != nil {
		return failed(0, fmt.Sprintf("encode webhook payload: %v", err)), r.Action
	}
	return e.post(ctx, entry, wh, u.Host, r.ID, body), r.Action
}

// post sends one signed delivery and classifies the answer.
func (e *Executor) post(ctx context.Context, entry storage.OutboxEntry, wh *policy.Webhook, host, id string, body []byte) approvals.ExecutionResult {
	a := e.send(ctx, wh, host, id, body)
	switch {
	case a.ok:
		return approvals.ExecutionResult{OK: true, StatusCode: a.status}
	case a.transient:
		return e.retryable(ctx, entry, a.status, a.retryAfter, wh.Secret, a.msg)
	default:
		return failed(a.status, sanitize(a.msg, wh.Secret, maxErrorText))
	}
}

// answer is what one signed POST came to.
type answer struct {
	ok     bool
	status int // 0 when no answer came
	// transient marks a failure that may pass: the webhook unreachable or
	// too slow, 429, 5xx, or signoff shutting down.
	transient bool
	// retryAfter is the receiver's Retry-After on a 429 or 503, or 0.
	retryAfter time.Duration
	// msg says what failed; not yet sanitized.
	msg string
}

// send POSTs body to wh, signed with its secret, with key as the
// Idempotency-Key, within the webhook's timeout (at most maxTimeout), and
// says what came of it. Redirects are not followed (the client's
// CheckRedirect); host names the webhook in messages.
func (e *Executor) send(ctx context.Context, wh *policy.Webhook, host, key string, body []byte) answer {
	secret := wh.Secret
	timeout := wh.Timeout
	if timeout <= 0 {
		timeout = DefaultWebhookTimeout
	}
	timeout = min(timeout, e.maxTimeout())
	actx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	req, err := http.NewRequestWithContext(actx, http.MethodPost, wh.URL, bytes.NewReader(body))
	if err != nil {
		return answer{msg: fmt.Sprintf("build request to webhook at %s: %v", host, err)}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", e.opts.UserAgent)
	req.Header.Set(HeaderIdempotencyKey, key)
	if secret != "" {
		req.Header.Set(HeaderSignature, Sign([]byte(secret), e.clock.Now(), body))
	}

	resp, err := e.client.Do(req)
	if err != nil {
		var msg string
		switch {
		case ctx.Err() != nil:
			msg = fmt.Sprintf("delivery to webhook at %s interrupted: signoff is shutting down", host)
		case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
			msg = fmt.Sprintf("webhook at %s did not answer within %s", host, timeout)
		default:
			// url.Error repeats the whole URL; keep only its cause.
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err
			}
			msg = fmt.Sprintf("webhook at %s unreachable: %v", host, err)
		}
		return answer{transient: true, msg: msg}
	}
	defer resp.Body.Close()
	head, readErr := io.ReadAll(io.LimitReader(resp.Body, excerptRead))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, drainLimit))

	code := resp.StatusCode
	if code >= 200 && code < 300 {
		return answer{ok: true, status: code}
	}
	msg := fmt.Sprintf("webhook at %s answered %s", host, statusText(code))
	if code >= 300 && code < 400 {
		msg += " (redirects are not followed; configure the final URL)"
	}
	if ex := sanitize(string(head), secret, excerptKeep); ex != "" {
		msg += ": " + ex
	} else if readErr != nil && ctx.Err() == nil {
		msg += " (body unreadable)"
	}
	a := answer{status: code, msg: msg}
	if code == http.StatusTooManyRequests || code >= 500 {
		a.transient = true
		if code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable {
			if d, ok := parseRetryAfter(resp.Header.Get("Retry-After"), e.clock.Now()); ok {
				a.retryAfter = d
			}
		}
	}
	return a
}

// retryable turns a failure that may pass into a retry, or a final failure
// once the attempts are used up. retryAfter > 0 is the receiver's wish.
func (e *Executor) retryable(ctx context.Context, entry storage.OutboxEntry, code int, retryAfter time.Duration, secret, msg string) approvals.ExecutionResult {
	msg = sanitize(msg, secret, maxErrorText)
	now := e.clock.Now()
	if ctx.Err() != nil {
		// Interrupted by shutdown: not the receiver's fault; due at once.
		return approvals.ExecutionResult{Retry: true, RetryAt: now, StatusCode: code, Error: msg}
	}
	if entry.Attempts >= e.opts.MaxAttempts {
		return failed(code, fmt.Sprintf("giving up after %d attempts: %s", entry.Attempts, msg))
	}
	delay := min(max(backoff(entry.Attempts, e.opts.BaseBackoff, e.opts.MaxBackoff), retryAfter), e.opts.MaxBackoff)
	return approvals.ExecutionResult{Retry: true, RetryAt: now.Add(delay), StatusCode: code, Error: msg}
}

func failed(code int, msg string) approvals.ExecutionResult {
	return approvals.ExecutionResult{StatusCode: code, Error: msg}
}

// maxTimeout is the longest an attempt may take: 3/4 of the lease, so the
// result is recorded while the claim is still ours.
func (e *Executor) maxTimeout() time.Duration { return e.opts.Lease * 3 / 4 }

func webhookOf(a *policy.Action) *policy.Webhook {
	if a == nil || a.OnApprove == nil || a.OnApprove.Webhook == nil || a.OnApprove.Webhook.URL == "" {
		return nil
	}
	return a.OnApprove.Webhook
}

func isTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout()
}

func statusText(code int) string {
	if t := http.StatusText(code); t != "" {
		return fmt.Sprintf("%d %s", code, t)
	}
	return fmt.Sprintf("%d", code)
}
