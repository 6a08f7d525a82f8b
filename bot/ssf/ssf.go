// Package ssf is signoff's Shared Signals receiver: POST /ssf/events takes
// Security Event Tokens (RFC 8417) that the company IdP pushes (RFC 8935)
// and, for CAEP session-revoked and credential-change and RISC
// account-disabled and account-purged, makes every chat account linked to
// the event's subject stale at once. The person's next click then asks
// them to sign in again, which the IdP decides.
//
// Verifying a SET is the oidc package's (oidc.SETVerifier); making links
// stale, with the audit records and the replay record of the SET's jti in
// one transaction, is approvals' (Service.MarkIdentitiesStale). This
// package reads the HTTP request and the events, and answers as RFC 8935
// asks:
//
//   - 202 Accepted, empty body: the SET was valid. Its links are stale,
//     or it named no linked identity, or its event type is not one
//     signoff acts on (ignored, counted).
//   - 400 with {"err", "description"}: refused, nothing changed. err is
//     RFC 8935's code: invalid_request (not a SET, a claim missing or out of
//     range, a replayed jti, the wrong content type, a subject signoff
//     cannot match), invalid_key (bad signature, unknown key, refused
//     algorithm), invalid_issuer, invalid_audience, authentication_failed
//     (ssf.bearer_token set and the push did not carry it).
//   - 503 with Retry-After and {"err": "temporarily_unavailable"}: the SET
//     could not be checked or recorded right now (the transmitter's keys
//     cannot be fetched, the store failed); deliver it again.
//
// Every answer is counted in /metrics (Stats).
package ssf

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/approvals/audit"
	"github.com/signoff-dev/signoff/oidc"
)

// Path is where transmitters push SETs.
const Path = "/ssf/events"

// ContentType is the media type of a pushed SET (RFC 8417 §7.2).
const ContentType = "application/secevent+jwt"

// ErrAuthenticationFailed is RFC 8935's code for a push whose transmitter
// could not be authenticated (here: the bearer token).
const ErrAuthenticationFailed oidc.SETCode = "authentication_failed"

// errUnavailable is the err of a 503 answer (not one of RFC 8935's codes:
// nothing was refused, the push is to be delivered again).
const errUnavailable oidc.SETCode = "temporarily_unavailable"

// retryAfter is what a 503 answer asks the transmitter to wait, seconds.
const retryAfter = 60

// Reasons for refusals this package decides (the oidc.SETReason… constants
// are the verifier's; both are oidc.SETReason). They are stable: /metrics
// counts by them.
const (
	ReasonContentType        oidc.SETReason = "content_type"
	ReasonTooLarge           oidc.SETReason = "too_large"
	ReasonBadBody            oidc.SETReason = "unreadable_body"
	ReasonNoToken            oidc.SETReason = "no_bearer_token"
	ReasonBadToken           oidc.SETReason = "bad_bearer_token"
	ReasonReplayed           oidc.SETReason = "replayed"
	ReasonBadEvent           oidc.SETReason = "bad_event"
	ReasonNoSubject          oidc.SETReason = "no_subject"
	ReasonUnsupportedSubject oidc.SETReason = "unsupported_subject"
	ReasonStoreFailed        oidc.SETReason = "store_failed"
)

// Outcomes of an accepted SET in /metrics; a refused one counts under its
// err code.
const (
	OutcomeStale     = "stale"     // links were made stale
	OutcomeNoMatch   = "no_match"  // no link of the subject exists
	OutcomeUnchanged = "unchanged" // its links were stale already, or signed in after the event
	OutcomeIgnored   = "ignored"   // an event type signoff does not act on
)

// Verifier verifies a SET (oidc.SETVerifier).
type Verifier interface {
	Verify(ctx context.Context, raw string) (*oidc.SET, error)
}

// Links makes the links of identities stale (approvals.Service).
type Links interface {
	MarkIdentitiesStale(ctx context.Context, sig approvals.StaleSignal) (approvals.StaleResult, error)
}

// Mux is where the receiver is mounted (the front door).
type Mux interface {
	Handle(pattern string, handler http.Handler)
}

// Options configure a Receiver. Verifier and Links are required.
type Options struct {
	Verifier Verifier
	Links    Links
	// BearerToken, when set, must come with every push as
	// "Authorization: Bearer <token>" (ssf.bearer_token).
	BearerToken string
	// IdPIssuer is idp.issuer, the issuer of the approvers' sign-ins: an
	// iss_sub subject of another issuer can match no link, which is
	// logged as a likely misconfiguration.
	IdPIssuer string
	// MaxSkew is the clock skew allowed between the transmitter and
	// signoff when judging whether a link's sign-in came after the event.
	// Zero means oidc.DefaultMaxSkew.
	MaxSkew time.Duration
	// Logger receives one line per SET (never the token). Default
	// slog.Default().
	Logger *slog.Logger
}

// Receiver handles POST /ssf/events. It is safe for concurrent use.
type Receiver struct {
	opts        Options
	tokenDigest [sha256.Size]byte
	stats       counters
}

// New returns a Receiver.
func New(opts Options) (*Receiver, error) {
	if opts.Verifier == nil || opts.Links == nil {
		return nil, errors.New("ssf: a Verifier and Links are required")
	}
	if opts.MaxSkew <= 0 {
		opts.MaxSkew = oidc.DefaultMaxSkew
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	r := &Receiver{opts: opts}
	if opts.BearerToken != "" {
		r.tokenDigest = sha256.Sum256([]byte(opts.BearerToken))
	}
	return r, nil
}

// Register mounts POST /ssf/events on mux.
func (r *Receiver) Register(mux Mux) {
	mux.Handle("POST "+Path, r)
}

// refusal is a refused push: its RFC 8935 code, a reason for /metrics and a
// description for the transmitter. unavailable marks a 503.
type refusal struct {
	code        oidc.SETCode
	reason      oidc.SETReason
	message     string
	unavailable bool
}

func refuse(code oidc.SETCode, reason oidc.SETReason, format string, args ...any) *refusal {
	return &refusal{code: code, reason: reason, message: fmt.Sprintf(format, args...)}
}

// ServeHTTP handles one push.
func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	label, outcome, res, ref := r.handle(req)
	if ref != nil {
		r.stats.refused(label, ref)
		r.opts.Logger.Warn("shared signals: SET refused", "err", ref.code, "reason", ref.reason, "type", label, "description", ref.message)
		writeRefusal(w, ref)
		return
	}
	r.stats.accepted(label, outcome, len(res.Marked))
	w.WriteHeader(http.StatusAccepted)
}

// handle checks and applies one push: the type label and outcome for
// /metrics and what was changed, or why it was refused.
func (r *Receiver) handle(req *http.Request) (label, outcome string, res approvals.StaleResult, ref *refusal) {
	label = labelUnverified
	if ref := r.authenticate(req); ref != nil {
		return label, "", res, ref
	}
	if ref := checkContentType(req.Header.Get("Content-Type")); ref != nil {
		return label, "", res, ref
	}
	raw, ref := readBody(req)
	if ref != nil {
		return label, "", res, ref
	}
	set, err := r.opts.Verifier.Verify(req.Context(), raw)
	if err != nil {
		return label, "", res, verifyRefusal(err)
	}
	p, ref := planFor(set)
	label = p.label
	if ref != nil {
		return label, "", res, ref
	}

	sig := approvals.StaleSignal{
		Scope:         "ssf " + set.Issuer,
		ID:            set.ID,
		RememberUntil: set.AcceptUntil,
	}
	if p.event != nil {
		sig.Subjects = p.subjects
		sig.SignedInBefore = p.eventTime.Add(r.opts.MaxSkew)
		sig.Reason = p.event.reason
		sig.Data = auditData(set, p)
	}
	res, err = r.opts.Links.MarkIdentitiesStale(req.Context(), sig)
	switch {
	case errors.Is(err, approvals.ErrReplayed):
		return label, "", res, refuse(oidc.SETErrInvalidRequest, ReasonReplayed, "a SET with jti %s from %s was received before; each SET is accepted once", shown(set.ID), shown(set.Issuer))
	case err != nil:
		r.opts.Logger.Error("shared signals: recording a SET failed", "jti", set.ID, "err", err)
		ref := refuse(errUnavailable, ReasonStoreFailed, "signoff could not record the SET; deliver it again later")
		ref.unavailable = true
		return label, "", res, ref
	}

	switch {
	case p.event == nil:
		outcome = OutcomeIgnored
		r.opts.Logger.Info("shared signals: SET of an event type signoff does not act on; ignored", "jti", set.ID, "types", eventTypes(set))
	case len(res.Marked) > 0:
		outcome = OutcomeStale
	case res.AlreadyStale > 0 || res.SignedInAfter > 0:
		outcome = OutcomeUnchanged
	default:
		outcome = OutcomeNoMatch
		r.warnForeignIssuer(set, p)
	}
	if p.event != nil {
		r.opts.Logger.Info("shared signals: SET applied", "jti", set.ID, "event", p.event.label, "outcome", outcome,
			"links_stale", len(res.Marked), "already_stale", res.AlreadyStale, "signed_in_after", res.SignedInAfter)
	}
	return label, outcome, res, nil
}

// authenticate checks the bearer token when one is configured.
func (r *Receiver) authenticate(req *http.Request) *refusal {
	if r.opts.BearerToken == "" {
		return nil
	}
	scheme, token, ok := strings.Cut(req.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return refuse(ErrAuthenticationFailed, ReasonNoToken, "the push carries no bearer token; set the stream's delivery authorization header to \"Bearer\" and the token configured as ssf.bearer_token")
	}
	// Digests of equal length: the comparison takes the same time whatever
	// the token's length.
	got := sha256.Sum256([]byte(strings.TrimSpace(token)))
	if subtle.ConstantTimeCompare(got[:], r.tokenDigest[:]) != 1 {
		return refuse(ErrAuthenticationFailed, ReasonBadToken, "the push's bearer token is not the one configured as ssf.bearer_token")
	}
	return nil
}

// checkContentType accepts application/secevent+jwt (with parameters, in
// any case).
func checkContentType(ct string) *refusal {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || mt != ContentType {
		if ct == "" {
			ct = "none"
		}
		return refuse(oidc.SETErrInvalidRequest, ReasonContentType, "the push's Content-Type is %s; a SET is pushed as %s (RFC 8935)", shown(ct), ContentType)
	}
	return nil
}

// readBody reads the SET, at most oidc.MaxSETBytes plus a line end.
func readBody(req *http.Request) (string, *refusal) {
	b, err := io.ReadAll(http.MaxBytesReader(nil, req.Body, oidc.MaxSETBytes+2))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return "", refuse(oidc.SETErrInvalidRequest, ReasonTooLarge, "the body is larger than %d bytes; a SET is a few KiB", oidc.MaxSETBytes)
	case err != nil:
		return "", refuse(oidc.SETErrInvalidRequest, ReasonBadBody, "the body could not be read")
	}
	return strings.TrimSpace(string(b)), nil
}

// verifyRefusal turns a verifier error into a refusal.
func verifyRefusal(err error) *refusal {
	var serr *oidc.SETError
	if errors.As(err, &serr) {
		if serr.Temporary {
			return &refusal{code: errUnavailable, reason: serr.Reason, message: serr.Message, unavailable: true}
		}
		return &refusal{code: serr.Code, reason: serr.Reason, message: serr.Message}
	}
	// The request ended while keys were being fetched.
	return &refusal{code: errUnavailable, reason: oidc.SETReasonKeysUnavailable, message: "the SET could not be checked in time; deliver it again", unavailable: true}
}

// auditData is what each identity.stale record says about the SET.
func auditData(set *oidc.SET, p plan) map[string]any {
	formats := make([]any, len(p.formats))
	for i, f := range p.formats {
		formats[i] = f
	}
	d := map[string]any{
		"jti":             set.ID,
		"event":           p.event.uri,
		"ssf_issuer":      set.Issuer,
		"set_issued_at":   audit.FormatTime(set.IssuedAt),
		"event_time":      audit.FormatTime(p.eventTime),
		"subject_formats": formats,
	}
	if set.TXN != "" {
		d["txn"] = set.TXN
	}
	return d
}

// warnForeignIssuer logs when a SET's iss_sub subjects name an issuer
// other than idp.issuer: links carry idp.issuer, so such a subject never
// matches, which is usually a misconfigured stream or idp.issuer.
func (r *Receiver) warnForeignIssuer(set *oidc.SET, p plan) {
	if r.opts.IdPIssuer == "" {
		return
	}
	for _, m := range p.subjects {
		if m.Subject != "" && m.Issuer != r.opts.IdPIssuer {
			r.opts.Logger.Warn("shared signals: the SET names a subject of another issuer than idp.issuer, so no link can match it; check that idp.issuer is the issuer whose subjects the transmitter sends (e.g. the Okta org authorization server), or have the stream send email subjects",
				"jti", set.ID, "subject_issuer", m.Issuer, "idp_issuer", r.opts.IdPIssuer)
			return
		}
	}
}

func eventTypes(set *oidc.SET) []string {
	out := make([]string, 0, len(set.Events))
	for t := range set.Events {
		out = append(out, t)
	}
	return out
}

// writeRefusal writes a 400 (or 503) answer: {"err", "description"}.
func writeRefusal(w http.ResponseWriter, ref *refusal) {
	status := http.StatusBadRequest
	if ref.unavailable {
		status = http.StatusServiceUnavailable
		w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(struct {
		Err         string `json:"err"`
		Description string `json:"description"`
	}{string(ref.code), ref.message})
}
