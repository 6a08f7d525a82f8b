package approvals

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/signoff-dev/signoff/approvals/audit"
	"github.com/signoff-dev/signoff/storage"
)

// Limits on requester-supplied text, so a card always renders and the audit
// log stays small.
const (
	MaxReasonBytes         = 4000
	MaxLinks               = 10
	MaxLinkTitleBytes      = 200
	MaxLinkURLBytes        = 2000
	MaxIdempotencyKeyBytes = 200
)

// CreateInput is a verified requester's ask.
type CreateInput struct {
	// Requester must come from a verified token (the HTTP layer checks it).
	Requester storage.Requester
	Action    string
	Params    map[string]string
	Reason    string
	Links     []storage.Link
	// IdempotencyKey, when set, makes a retry with the same requester and
	// key return the first request instead of creating another.
	IdempotencyKey string
	// BreakGlass asks for the request to be approved at once and reviewed
	// afterwards (breakglass.go). Groups are the groups of the
	// requester's verified token, read from the claim GroupsClaim names
	// ("" when its requesters entry names none); only break-glass reads
	// them.
	BreakGlass  bool
	Groups      []string
	GroupsClaim string
}

// Create checks the ask against policy and stores a pending request with its
// request.created audit record and announcement outbox entries, all in one
// transaction. created is false when an idempotent retry returned the
// request made earlier. Refusals are *policy.RefusalError (unknown action,
// requester not allowed, bad params, outside the action's windows or in a
// freeze) or *RefusalError (bad input,
// idempotency conflict, ErrTooManyPending when the requester already has
// Options.PendingPerRequester requests pending).
func (s *Service) Create(ctx context.Context, in CreateInput) (req storage.Request, created bool, err error) {
	action, err := s.policy.Action(in.Action)
	if err != nil {
		return storage.Request{}, false, err
	}
	if in.BreakGlass {
		// Branches off before anything below: break-glass is not bound
		// by windows or freezes (breakglass.go).
		return s.createBreakGlass(ctx, in, action)
	}
	if err := action.CheckRequester(in.Requester.Issuer, in.Requester.Claims); err != nil {
		return storage.Request{}, false, err
	}
	if err := action.CheckParams(in.Params); err != nil {
		return storage.Request{}, false, err
	}
	// Windows and freezes (windows.go): the one check a break-glass
	// request skips.
	if err := action.CheckWindow(s.clock.Now()); err != nil {
		return storage.Request{}, false, err
	}
	if err := checkInput(in); err != nil {
		return storage.Request{}, false, err
	}
	if in.Requester.Subject == "" {
		return storage.Request{}, false, refusal(ErrInvalid, ReasonInvalid, "the requester has no subject; the token must carry a sub claim")
	}
	fp := fingerprint(in)
	scope := ""
	if in.IdempotencyKey != "" {
		scope = idempotencyScope(in.Requester, in.IdempotencyKey)
	}
	now := s.clock.Now().UTC()
	fresh := storage.Request{
		ID:               s.opts.NewID(),
		Action:           action.Name,
		Params:           in.Params,
		Reason:           in.Reason,
		Links:            in.Links,
		Requester:        in.Requester,
		IdempotencyScope: scope,
		Fingerprint:      fp,
		State:            storage.StatePending,
		MinApprovals:     max(action.Approvers.MinApprovals, 1),
		CreatedAt:        now,
		ExpiresAt:        now.Add(action.TTL),
	}
	// Canonicalize the audit record now, outside the serialized commit.
	createdRec, err := audit.Prepare(createdRecord(fresh))
	if err != nil {
		return storage.Request{}, false, err
	}
	req, created, err = s.createOnce(ctx, in, scope, fp, "create request for action", func(tx storage.Tx) (storage.Request, error) {
		// Counted in the transaction that creates, so concurrent
		// creates cannot together exceed the cap. An idempotent
		// retry (answered in createOnce) is answered even at the cap:
		// it creates nothing.
		if err := s.checkPending(tx, in.Requester, now); err != nil {
			return storage.Request{}, err
		}
		if err := tx.CreateRequest(fresh); err != nil {
			return storage.Request{}, fmt.Errorf("create request %s: %w", fresh.ID, err)
		}
		fresh.Version = 1
		if err := s.appendPrepared(tx, createdRec); err != nil {
			return storage.Request{}, err
		}
		if err := s.queueNotify(tx, action, fresh, EventCreated); err != nil {
			return storage.Request{}, err
		}
		if err := s.queueTimers(tx, action, fresh); err != nil {
			return storage.Request{}, err
		}
		return fresh, nil
	})
	if err != nil {
		return storage.Request{}, false, err
	}
	if created {
		s.metrics.requestCreated(req.Action)
		s.log.Info("request created", "request", req.ID, "action", req.Action, "requester", req.Requester.Subject, "expires_at", req.ExpiresAt)
		s.wakeExpiry()
	}
	return req, created, nil
}

// createOnce runs create in one transaction unless scope names an
// idempotency key already used: then the request made earlier is returned
// (created false), or an idempotency conflict when fp, the fingerprint of
// in, differs from that request's. create returns the request it stored.
// Refusals come back as they are; other errors are wrapped with what and
// in's action.
func (s *Service) createOnce(ctx context.Context, in CreateInput, scope, fp, what string, create func(tx storage.Tx) (storage.Request, error)) (req storage.Request, created bool, err error) {
	for attempt := 0; attempt < 2; attempt++ {
		err = s.update(ctx, func(tx storage.Tx) error {
			req, created = storage.Request{}, false
			if scope != "" {
				prev, err := tx.RequestByIdempotencyScope(scope)
				switch {
				case err == nil:
					if prev.Fingerprint != fp {
						return refusal(ErrIdempotencyConflict, ReasonIdempotencyConf,
							"idempotency key %q was already used for request %s with a different body; use a new key for a new request", in.IdempotencyKey, prev.ID)
					}
					req = prev
					return nil
				case !errors.Is(err, storage.ErrNotFound):
					return fmt.Errorf("look up idempotency key: %w", err)
				}
			}
			r, err := create(tx)
			if err != nil {
				return err
			}
			req, created = r, true
			return nil
		})
		// Two first tries with one key can race on a store shared by
		// replicas: the loser sees ErrAlreadyExists and, on the second
		// pass, finds the winner's request.
		if scope == "" || !errors.Is(err, storage.ErrAlreadyExists) {
			break
		}
	}
	if err != nil {
		var r *RefusalError
		if errors.As(err, &r) {
			return storage.Request{}, false, r
		}
		return storage.Request{}, false, fmt.Errorf("%s %s: %w", what, in.Action, err)
	}
	return req, created, nil
}

func checkInput(in CreateInput) error {
	var problems []string
	if len(in.Reason) > MaxReasonBytes {
		problems = append(problems, fmt.Sprintf("reason is %d bytes; at most %d allowed", len(in.Reason), MaxReasonBytes))
	}
	if !utf8.ValidString(in.Reason) {
		problems = append(problems, "reason is not valid UTF-8")
	}
	problems = appendDirectionControl(problems, "reason", in.Reason)
	if len(in.Links) > MaxLinks {
		problems = append(problems, fmt.Sprintf("%d links given; at most %d allowed", len(in.Links), MaxLinks))
	}
	for i, l := range in.Links {
		if len(l.Title) > MaxLinkTitleBytes {
			problems = append(problems, fmt.Sprintf("links[%d].title is longer than %d bytes", i, MaxLinkTitleBytes))
		}
		if len(l.URL) > MaxLinkURLBytes {
			problems = append(problems, fmt.Sprintf("links[%d].url is longer than %d bytes", i, MaxLinkURLBytes))
			continue
		}
		u, err := url.Parse(l.URL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			problems = append(problems, fmt.Sprintf("links[%d].url %q must be an absolute http or https URL", i, l.URL))
		}
		problems = appendDirectionControl(problems, fmt.Sprintf("links[%d].title", i), l.Title)
		problems = appendDirectionControl(problems, fmt.Sprintf("links[%d].url", i), l.URL)
	}
	for _, k := range slices.Sorted(maps.Keys(in.Params)) {
		v := in.Params[k]
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			problems = append(problems, fmt.Sprintf("param %q is not valid UTF-8", k))
			continue
		}
		problems = appendDirectionControl(problems, fmt.Sprintf("param %q", k), k+v)
	}
	if len(in.IdempotencyKey) > MaxIdempotencyKeyBytes {
		problems = append(problems, fmt.Sprintf("idempotency key is longer than %d bytes", MaxIdempotencyKeyBytes))
	}
	if len(problems) > 0 {
		return refusal(ErrInvalid, ReasonInvalid, "%s", strings.Join(problems, "; "))
	}
	return nil
}

// appendDirectionControl adds a problem when s, the requester's text
// named what, holds a Unicode direction control (Bidi_Control: U+202E
// RIGHT-TO-LEFT OVERRIDE, the isolates, the marks). Cards show the text
// reordered by it, so approvers would not read what they approve: "1.4.2"
// followed by an override shows the rest of the line backwards. Requests
// are machine-written; nothing legitimate needs one.
func appendDirectionControl(problems []string, what, s string) []string {
	i := strings.IndexFunc(s, func(r rune) bool { return unicode.Is(unicode.Bidi_Control, r) })
	if i < 0 {
		return problems
	}
	r, _ := utf8.DecodeRuneInString(s[i:])
	return append(problems, fmt.Sprintf("%s holds U+%04X, an invisible control that changes the order text is shown in, so approvers would not see what they approve: remove it", what, r))
}

// idempotencyScope ties a key to the requester that sent it, so two
// requesters can never collide on a key.
func idempotencyScope(r storage.Requester, key string) string {
	sum := sha256.Sum256([]byte(r.Issuer + "\x00" + r.Subject + "\x00" + key))
	return hex.EncodeToString(sum[:])
}

// fingerprint digests the body of an ask, to tell a faithful retry from a
// different request under a reused key.
func fingerprint(in CreateInput) string {
	body, _ := json.Marshal(struct {
		Action string            `json:"action"`
		Params map[string]string `json:"params"`
		Reason string            `json:"reason"`
		Links  []storage.Link    `json:"links"`
		// Only when set, so the fingerprints of other requests stay as
		// they were.
		BreakGlass bool `json:"break_glass,omitempty"`
	}{in.Action, in.Params, in.Reason, in.Links, in.BreakGlass})
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:])
}

func requesterActor(r storage.Requester) *audit.Actor {
	iss := r.IssuerURL
	if iss == "" {
		iss = r.Issuer
	}
	return &audit.Actor{Issuer: iss, Subject: r.Subject, Name: r.Name, Email: r.Email}
}

func createdRecord(r storage.Request) audit.Record {
	data := map[string]any{
		"requester_issuer": r.Requester.Issuer,
		"min_approvals":    r.MinApprovals,
		"expires_at":       audit.FormatTime(r.ExpiresAt),
	}
	if r.Requester.Person != "" {
		data["requester_person"] = r.Requester.Person
	}
	if len(r.Params) > 0 {
		data["params"] = r.Params
	}
	if r.Reason != "" {
		data["reason"] = r.Reason
	}
	if len(r.Links) > 0 {
		links := make([]any, 0, len(r.Links))
		for _, l := range r.Links {
			links = append(links, map[string]any{"title": l.Title, "url": l.URL})
		}
		data["links"] = links
	}
	if len(r.Requester.Claims) > 0 {
		data["claims"] = r.Requester.Claims
	}
	return audit.Record{
		Time:      audit.FormatTime(r.CreatedAt),
		Type:      audit.TypeRequestCreated,
		RequestID: r.ID,
		Action:    r.Action,
		Actor:     requesterActor(r.Requester),
		Data:      data,
	}
}

// checkPending refuses a new request when the requester (issuer and
// subject) already has Options.PendingPerRequester requests pending. A
// request past its expiry that the expiry loop has not reached yet no
// longer counts.
func (s *Service) checkPending(tx storage.Tx, r storage.Requester, now time.Time) error {
	limit := s.opts.PendingPerRequester
	if limit <= 0 {
		return nil
	}
	// The store's per-requester index: the cost follows this requester's
	// pending requests, not everyone's.
	pending, err := tx.PendingOf(r.Issuer, r.Subject)
	if err != nil {
		return fmt.Errorf("count pending requests: %w", err)
	}
	n, oldest := 0, storage.Request{}
	for _, p := range pending {
		if !p.ExpiresAt.After(now) || IsBreakGlassReview(p) {
			// A break-glass review is its reviewers' to decide, not
			// the requester's (breakglass.go).
			continue
		}
		if n == 0 || p.CreatedAt.Before(oldest.CreatedAt) {
			oldest = p
		}
		n++
	}
	if n < limit {
		return nil
	}
	requests := "requests"
	if n == 1 {
		requests = "request"
	}
	return refusal(ErrTooManyPending, ReasonTooManyPending,
		"this requester (issuer %s, subject %s) has %d %s pending, the most one requester may have (limits.pending_per_requester); cancel one (POST /v1/requests/{id}/cancel; the oldest is %s) or wait until one is decided or expires, then ask again",
		r.Issuer, r.Subject, n, requests, oldest.ID)
}

// Replay returns the request an earlier Create made for the same requester
// and idempotency key, without creating anything: found is false when in
// carries no key or nothing was created with it. A key used before with a
// different body is refused as Create refuses it (ErrIdempotencyConflict).
// A front door that refuses new requests (a rate limit) uses it to still
// answer a faithful retry, which costs nothing.
func (s *Service) Replay(ctx context.Context, in CreateInput) (req storage.Request, found bool, err error) {
	if in.IdempotencyKey == "" || in.Requester.Subject == "" {
		return storage.Request{}, false, nil
	}
	scope := idempotencyScope(in.Requester, in.IdempotencyKey)
	req, err = viewValue(ctx, s.store, func(tx storage.ReadTx) (storage.Request, error) {
		return tx.RequestByIdempotencyScope(scope)
	})
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return storage.Request{}, false, nil
	case err != nil:
		return storage.Request{}, false, fmt.Errorf("look up idempotency key: %w", err)
	case req.Fingerprint != fingerprint(in):
		return storage.Request{}, false, refusal(ErrIdempotencyConflict, ReasonIdempotencyConf,
			"idempotency key %q was already used for request %s with a different body; use a new key for a new request", in.IdempotencyKey, req.ID)
	}
	return req, true, nil
}
