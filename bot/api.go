package bot

// The CI API: JSON over HTTP under /v1, authenticated by OIDC bearer tokens.
//
//	POST /v1/requests                  create (201), or the same request again on an idempotent retry (200)
//	GET  /v1/requests/{id}[?wait=30s]  read, optionally long-polling until the request leaves pending
//	POST /v1/requests/{id}/cancel      cancel a pending request (its requester only)
//	GET  /v1/audit[?since&until&request]  the audit log as JSON lines (auditors only)
//
// Every error is {"error":{"code","message"}} with one of the api.Code…
// constants; the bodies and answers are package api's types. The bearer
// token is verified before anything else about the call (its body, its id)
// is looked at; a refused token is a 401 whose message says what is wrong
// with it, never the token itself.
//
// Who may read a request: the requester (same configured issuer name and
// subject as the token that created it) and auditors (a token whose groups
// include one of auditors.groups). Anyone else gets 404 not_found, exactly as
// for an id that does not exist, so request ids cannot be probed. An auditor
// who is not the requester may read a request but not cancel it (403).
//
// Creates are limited per requester (limits.requests_per_minute and
// limits.pending_per_requester): beyond either the answer is 429
// rate_limited with Retry-After (see limits.go).

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"reflect"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/signoff-dev/signoff/api"
	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/approvals/audit"
	"github.com/signoff-dev/signoff/internal/ratelimit"
	"github.com/signoff-dev/signoff/internal/strictjson"
	"github.com/signoff-dev/signoff/oidc"
	"github.com/signoff-dev/signoff/policy"
	"github.com/signoff-dev/signoff/storage"
)

// TokenVerifier verifies a CI bearer token (the value after "Bearer ").
// *oidc.RequesterVerifier implements it. A refusal should be an
// *oidc.TokenError, whose message the API returns to the caller.
type TokenVerifier interface {
	Verify(ctx context.Context, raw string) (*oidc.RequesterToken, error)
}

// Limits of the CI API.
const (
	// MaxRequestBody is the largest POST /v1/requests body accepted (413
	// payload_too_large beyond it).
	MaxRequestBody = 64 << 10
	// MaxWait caps ?wait= on GET /v1/requests/{id}; longer waits are
	// shortened to it. The server's WriteTimeout must exceed it.
	MaxWait = 60 * time.Second
	// auditFlushEvery is how often an audit stream is flushed to the
	// client (and its write deadline extended) while records flow.
	auditFlushEvery = 500 * time.Millisecond
	// auditWriteWindow is how long the client of an audit stream has to
	// take each flushed chunk.
	auditWriteWindow = 30 * time.Second
)

func (s *Server) mountAPI() {
	// Method-less twins of each route answer other methods with a JSON 405
	// (the method patterns are more specific, so they win for their
	// method); "/v1/" answers unknown paths with a JSON 404.
	s.route("POST", "/v1/requests", s.createRequest, "GET, HEAD, POST")
	s.route("GET", "/v1/requests/{id}", s.getRequest, "GET, HEAD")
	s.route("POST", "/v1/requests/{id}/cancel", s.cancelRequest, "POST")
	s.route("GET", "/v1/audit", s.auditLog, "GET, HEAD")
	s.mountAdmin() // admin.go
	s.mux.HandleFunc("/v1/", func(w http.ResponseWriter, r *http.Request) {
		fail(w, r, http.StatusNotFound, api.CodeNotFound, "no API endpoint at "+truncate(r.URL.Path, 100)+"; see POST /v1/requests, GET /v1/requests/{id}, POST /v1/requests/{id}/cancel, GET /v1/audit, and GET "+api.OpenAPIPath+" for every endpoint")
	})
}

// route mounts h, behind the token check, at method and path, and its
// method-less twin answering the path's other methods with a 405 that
// names allow.
func (s *Server) route(method, path string, h apiHandler, allow string) {
	s.mux.HandleFunc(method+" "+path, s.authed(h))
	s.mux.HandleFunc(path, methodNotAllowed(allow))
}

func methodNotAllowed(allow string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		fail(w, r, http.StatusMethodNotAllowed, api.CodeMethodNotAllowed, fmt.Sprintf("%s is not allowed here; use %s", truncate(r.Method, 20), allow))
	}
}

// apiHandler is an API handler that runs after the caller's token was
// verified.
type apiHandler func(w http.ResponseWriter, r *http.Request, tok *oidc.RequesterToken)

// authed verifies the bearer token before h sees the request (and before
// anything reads its body).
func (s *Server) authed(h apiHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tok, ok := s.authenticate(w, r)
		if !ok {
			return
		}
		if info := infoFrom(r); info != nil {
			info.issuer = tok.IssuerName
		}
		h(w, r, tok)
	}
}

// authenticate answers 401 itself when the token is missing or refused.
// An issuer that cannot be reached also gives 401 (fail closed): the caller
// sent a token signoff cannot verify, and a 5xx would invite endless retries
// for what is often a token from an issuer that is not really there.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) (*oidc.RequesterToken, bool) {
	raw, problem := bearerToken(r.Header)
	if problem != "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="signoff"`)
		fail(w, r, http.StatusUnauthorized, api.CodeUnauthenticated, problem)
		return nil, false
	}
	refuse := func(msg string) (*oidc.RequesterToken, bool) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="signoff", error="invalid_token"`)
		fail(w, r, http.StatusUnauthorized, api.CodeUnauthenticated, msg)
		return nil, false
	}
	if s.opts.Verifier == nil {
		return refuse("this signoff server trusts no token issuer: its operator must add a requesters entry to the config")
	}
	tok, err := s.opts.Verifier.Verify(r.Context(), raw)
	if err != nil {
		var te *oidc.TokenError
		switch {
		case errors.As(err, &te):
			level := slog.LevelInfo
			if te.Reason == oidc.ReasonIssuerUnavailable {
				level = slog.LevelWarn
			}
			// The reason and message never contain the token.
			s.opts.Logger.Log(r.Context(), level, "bearer token refused", "path", r.URL.Path, "reason", te.Reason, "detail", te.Message)
			return refuse("the bearer token was refused: " + te.Message)
		case r.Context().Err() != nil:
			return refuse("the token's verification was interrupted")
		default:
			s.opts.Logger.Error("bearer token verification failed", "path", r.URL.Path, "err", err)
			return refuse("the bearer token could not be verified")
		}
	}
	if tok == nil || tok.IssuerName == "" || tok.Subject == "" {
		return refuse("the bearer token names no issuer or subject")
	}
	return tok, true
}

// bearerToken extracts the token of an "Authorization: Bearer …" header,
// or says what is wrong with the header.
func bearerToken(h http.Header) (token, problem string) {
	values := h.Values("Authorization")
	switch {
	case len(values) == 0:
		return "", "no Authorization header: send the CI job's OIDC token as \"Authorization: Bearer <token>\""
	case len(values) > 1:
		return "", "more than one Authorization header: send exactly one, \"Authorization: Bearer <token>\""
	}
	scheme, tok, found := strings.Cut(strings.TrimSpace(values[0]), " ")
	if !strings.EqualFold(scheme, "Bearer") {
		if len(scheme) > 20 || !isToken(scheme) {
			return "", "the Authorization header is not \"Bearer <token>\""
		}
		return "", fmt.Sprintf("the Authorization header uses the %q scheme; signoff accepts only \"Bearer <token>\" with an OIDC token", scheme)
	}
	tok = strings.TrimSpace(tok)
	if !found || tok == "" {
		return "", "the Authorization header has no token after \"Bearer\""
	}
	return tok, ""
}

func isToken(s string) bool {
	for _, c := range s {
		if c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return s != ""
}

// requesterOf maps a verified token to the requester stored with a request.
func requesterOf(tok *oidc.RequesterToken) storage.Requester {
	return storage.Requester{
		Issuer:    tok.IssuerName,
		IssuerURL: tok.Issuer,
		Subject:   tok.Subject,
		Person:    tok.Person,
		Name:      tok.Name,
		Email:     tok.Email,
		Claims:    tok.Claims,
	}
}

func isRequester(tok *oidc.RequesterToken, r storage.Request) bool {
	// A signoff login token is a person at the IdP, never a CI requester
	// (login.go).
	return !tok.Login && tok.IssuerName == r.Requester.Issuer && tok.Subject == r.Requester.Subject
}

func (s *Server) isAuditor(tok *oidc.RequesterToken) bool {
	return len(tok.Groups) > 0 && s.opts.Service.Policy().IsAuditor(tok.Groups)
}

func (s *Server) mayRead(tok *oidc.RequesterToken, r storage.Request) bool {
	return isRequester(tok, r) || s.isAuditor(tok) || s.isAdmin(tok)
}

func (s *Server) view(r storage.Request) api.Request {
	link := ""
	if s.opts.RequestURL != nil {
		link = s.opts.RequestURL(r.ID)
	}
	v := APIRequest(r, link)
	if a, err := s.opts.Service.Policy().Action(r.Action); err == nil {
		withRules(&v, a, r)
	}
	return v
}

func (s *Server) createRequest(w http.ResponseWriter, r *http.Request, tok *oidc.RequesterToken) {
	if refuseLoginToken(w, r, tok) {
		return
	}
	var body api.CreateRequest
	if status, code, msg := readJSON(w, r, &body); status != 0 {
		fail(w, r, status, code, msg)
		return
	}
	if strings.TrimSpace(body.Action) == "" {
		fail(w, r, http.StatusBadRequest, api.CodeInvalidRequest, `the body names no action: send {"action": "<name>", "params": {…}}`)
		return
	}
	keys := r.Header.Values("Idempotency-Key")
	if len(keys) > 1 {
		fail(w, r, http.StatusBadRequest, api.CodeInvalidRequest, "more than one Idempotency-Key header; send at most one")
		return
	}
	key := ""
	if len(keys) == 1 {
		key = strings.TrimSpace(keys[0])
	}
	in := approvals.CreateInput{
		Requester:      requesterOf(tok),
		Action:         body.Action,
		Params:         body.Params,
		Reason:         body.Reason,
		Links:          storageLinks(body.Links),
		IdempotencyKey: key,
		// Only break-glass reads the token's groups (approvals/breakglass.go).
		BreakGlass:  body.BreakGlass,
		Groups:      tok.Groups,
		GroupsClaim: tok.GroupsClaim,
	}
	if wait, ok := s.requests.Allow(requesterKey(tok)); !ok {
		// Over the limit, a faithful retry of a request already made is
		// still answered (see limits.go): it creates nothing.
		prev, found, err := s.opts.Service.Replay(r.Context(), in)
		switch {
		case err != nil:
			s.serviceError(w, r, err)
		case found:
			setRequestID(r, prev.ID)
			WriteJSON(w, http.StatusOK, s.view(prev))
		default:
			s.rateLimited(w, r, LimitRequestsPerMinute, wait, s.requestsLimitMessage(tok, wait))
		}
		return
	}
	req, created, err := s.opts.Service.Create(r.Context(), in)
	if err != nil {
		s.serviceError(w, r, err)
		return
	}
	setRequestID(r, req.ID)
	status := http.StatusOK
	if created {
		status = http.StatusCreated
		w.Header().Set("Location", "/v1/requests/"+req.ID)
	}
	WriteJSON(w, status, s.view(req))
}

func (s *Server) getRequest(w http.ResponseWriter, r *http.Request, tok *oidc.RequesterToken) {
	id := r.PathValue("id")
	setRequestID(r, id)
	wait, problem := parseWait(r.URL.Query())
	if problem != "" {
		fail(w, r, http.StatusBadRequest, api.CodeInvalidRequest, problem)
		return
	}
	req, ok := s.readable(w, r, tok, id)
	if !ok {
		return
	}
	if wait > 0 && req.State == storage.StatePending {
		key := requesterKey(tok)
		if !s.polls.enter(key) {
			s.rateLimited(w, r, LimitLongPolls, longPollRetryAfter, fmt.Sprintf(
				"this requester (issuer %s, subject %s) already holds %d long polls (?wait=) open; poll again in %d seconds (Retry-After), or wait on fewer requests at once",
				tok.IssuerName, truncate(tok.Subject, 200), MaxLongPollsPerRequester, ratelimit.Seconds(longPollRetryAfter)))
			return
		}
		defer s.polls.leave(key)
		req = s.longPoll(r.Context(), req, wait)
	}
	WriteJSON(w, http.StatusOK, s.view(req))
}

// longPoll waits up to wait for req to leave pending, and returns it as it
// stands when the wait ends: decided, or still pending when the time is up,
// the client went away or the server began to shut down.
func (s *Server) longPoll(ctx context.Context, req storage.Request, wait time.Duration) storage.Request {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	stop := context.AfterFunc(s.drain, cancel)
	defer stop()
	latest, err := s.opts.Service.Wait(ctx, req.ID)
	if latest.ID != "" {
		req = latest
	}
	if err != nil && ctx.Err() == nil {
		// The store failed mid-wait; answer with what we know: the client
		// polls again.
		s.opts.Logger.Warn("long-poll ended early", "request", req.ID, "err", err)
	}
	return req
}

// parseWait reads ?wait= (a Go duration such as "30s", or whole seconds);
// waits beyond MaxWait are shortened to it.
func parseWait(q url.Values) (time.Duration, string) {
	vals := q["wait"]
	if len(vals) > 1 {
		// Proxies and clients disagree about which of several values
		// wins; refuse rather than guess.
		return 0, "wait is given more than once: give it once, e.g. wait=30s"
	}
	if len(vals) == 0 || vals[0] == "" {
		return 0, ""
	}
	v := vals[0]
	d, err := time.ParseDuration(v)
	if err != nil {
		n, nerr := strconv.ParseUint(v, 10, 32)
		if nerr != nil {
			return 0, fmt.Sprintf("wait=%q is not a duration: use e.g. wait=30s (at most %s)", truncate(v, 40), MaxWait)
		}
		d = time.Duration(n) * time.Second
	}
	if d < 0 {
		return 0, fmt.Sprintf("wait=%q is negative: use e.g. wait=30s (at most %s)", truncate(v, 40), MaxWait)
	}
	return min(d, MaxWait), ""
}

// readable loads the request and checks that tok may see it; otherwise it
// answers 404, the same as for an unknown id.
func (s *Server) readable(w http.ResponseWriter, r *http.Request, tok *oidc.RequesterToken, id string) (storage.Request, bool) {
	req, err := s.opts.Service.Get(r.Context(), id)
	if err != nil {
		s.serviceError(w, r, err)
		return storage.Request{}, false
	}
	if !s.mayRead(tok, req) {
		notFound(w, r, id)
		return storage.Request{}, false
	}
	return req, true
}

func notFound(w http.ResponseWriter, r *http.Request, id string) {
	fail(w, r, http.StatusNotFound, api.CodeNotFound, fmt.Sprintf("no request %q that this token may see: only its requester (same issuer and subject), auditors and admins can read it", truncate(id, 100)))
}

func (s *Server) cancelRequest(w http.ResponseWriter, r *http.Request, tok *oidc.RequesterToken) {
	id := r.PathValue("id")
	setRequestID(r, id)
	req, ok := s.readable(w, r, tok, id)
	if !ok {
		return
	}
	if !isRequester(tok, req) {
		if s.isAdmin(tok) {
			s.adminCancel(w, r, tok, req) // admin.go: with a reason, audited as the admin
			return
		}
		fail(w, r, http.StatusForbidden, api.CodeForbidden, fmt.Sprintf("only the requester of %s, or an admin (admins.groups) with a reason, may cancel it", req.ID))
		return
	}
	out, err := s.opts.Service.Cancel(r.Context(), id, approvals.Canceller{Issuer: tok.IssuerName, Subject: tok.Subject})
	if err != nil {
		s.serviceError(w, r, err)
		return
	}
	WriteJSON(w, http.StatusOK, s.view(out))
}

// auditLog streams the audit log as JSON lines, in constant memory: records
// are read from the store in short transactions, filtered, and flushed to
// the client as they go. A store failure once the stream has begun aborts
// the connection, so a client never mistakes a cut-off stream for a
// complete one.
func (s *Server) auditLog(w http.ResponseWriter, r *http.Request, tok *oidc.RequesterToken) {
	if !s.isAuditor(tok) {
		fail(w, r, http.StatusForbidden, api.CodeForbidden, "only auditors may read the audit log: the token carries none of the auditor groups (auditors.groups in the config; the requester entry's groups_claim, or idp.groups_claim for a signoff login token, names the claim read)")
		return
	}
	filter, problem := parseAuditFilter(r.URL.Query())
	if problem != "" {
		fail(w, r, http.StatusBadRequest, api.CodeInvalidRequest, problem)
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := context.AfterFunc(s.drain, cancel)
	defer stop()

	rc := http.NewResponseController(w)
	bw := bufio.NewWriterSize(w, 32<<10)
	started := false
	start := func() {
		if started {
			return
		}
		started = true
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(http.StatusOK)
	}
	lastFlush := time.Now()
	flush := func() error {
		if err := bw.Flush(); err != nil {
			return err
		}
		_ = rc.SetWriteDeadline(time.Now().Add(auditWriteWindow))
		if err := rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
			return err
		}
		lastFlush = time.Now()
		return nil
	}
	n := 0
	err := s.opts.Store.AuditRecords(ctx, 1, func(seq uint64, line []byte) error {
		ok, err := filter.Match(line)
		if err != nil {
			return fmt.Errorf("audit record %d: %w", seq, err)
		}
		if ok {
			start()
			if err := audit.ExportJSONL(bw, line); err != nil {
				return err
			}
			n++
		}
		if time.Since(lastFlush) >= auditFlushEvery {
			if !started {
				// Keep the write deadline ahead of a long, silent scan.
				_ = rc.SetWriteDeadline(time.Now().Add(auditWriteWindow))
				lastFlush = time.Now()
				return nil
			}
			return flush()
		}
		return nil
	})
	if err == nil {
		start()
		err = flush()
		if err == nil {
			return
		}
	}
	if !started && r.Context().Err() == nil && s.drain.Err() == nil {
		s.internalError(w, r, fmt.Errorf("read audit log: %w", err))
		return
	}
	s.opts.Logger.Warn("audit stream aborted", "records_sent", n, "err", err)
	panic(http.ErrAbortHandler)
}

var auditParams = map[string]bool{"since": true, "until": true, "request": true}

func parseAuditFilter(q url.Values) (audit.Filter, string) {
	var f audit.Filter
	for k, v := range q {
		if !auditParams[k] {
			return f, fmt.Sprintf("unknown query parameter %q; accepted: since, until (RFC 3339 times) and request (a request id)", truncate(k, 40))
		}
		if len(v) > 1 {
			return f, fmt.Sprintf("query parameter %q is given more than once", k)
		}
	}
	parse := func(name string) (time.Time, string) {
		v := q.Get(name)
		if v == "" {
			return time.Time{}, ""
		}
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return time.Time{}, fmt.Sprintf("%s=%q is not an RFC 3339 time (e.g. 2026-01-31T00:00:00Z)", name, truncate(v, 60))
		}
		return t, ""
	}
	var problem string
	if f.Since, problem = parse("since"); problem != "" {
		return f, problem
	}
	if f.Until, problem = parse("until"); problem != "" {
		return f, problem
	}
	f.RequestID = q.Get("request")
	return f, ""
}

// readJSON decodes the request body, at most MaxRequestBody bytes of one
// JSON object with no unknown fields, into v. On failure it returns the
// status, code and message to answer with.
func readJSON(w http.ResponseWriter, r *http.Request, v any) (status int, code api.Code, msg string) {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxRequestBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return http.StatusRequestEntityTooLarge, api.CodePayloadTooLarge, fmt.Sprintf("the body is larger than %d KiB; shorten the reason or send fewer params or links", MaxRequestBody>>10)
		}
		return http.StatusBadRequest, api.CodeInvalidRequest, "the body could not be read"
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return http.StatusBadRequest, api.CodeInvalidRequest, `the body is empty: send a JSON object such as {"action": "deploy-prod", "params": {"service": "api"}}`
	}
	// Read only what every reader reads alike: no invalid UTF-8, no key
	// twice, no key that names a field only when case is ignored.
	if serr := strictjson.Check(data, reflect.TypeOf(v)); serr != nil {
		msg := "the body is not valid: " + serr.Msg
		if serr.Offset > 0 {
			line, col := position(data, serr.Offset)
			msg += fmt.Sprintf(" (line %d, column %d)", line, col)
		}
		return http.StatusBadRequest, api.CodeInvalidRequest, msg
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return http.StatusBadRequest, api.CodeInvalidRequest, "the body is not valid: " + describeJSONError(data, err, reflect.TypeOf(v))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		line, col := position(data, dec.InputOffset())
		return http.StatusBadRequest, api.CodeInvalidRequest, fmt.Sprintf("the body is not valid: unexpected data after the JSON object at line %d, column %d", line, col)
	}
	return 0, "", ""
}

// describeJSONError says what is wrong with a JSON body that a strict
// decoder into a target of type t refused, and where, without repeating
// more than a field name from it.
func describeJSONError(data []byte, err error, t reflect.Type) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		line, col := position(data, syn.Offset)
		return fmt.Sprintf("malformed JSON at line %d, column %d: %s", line, col, strings.TrimPrefix(syn.Error(), "json: "))
	case errors.As(err, &typ):
		line, col := position(data, typ.Offset)
		field := typ.Field
		if field == "" {
			return fmt.Sprintf("the body must be a JSON object, not %s (line %d, column %d)", typ.Value, line, col)
		}
		if field == "params" && typ.Type.Kind() == reflect.String {
			return fmt.Sprintf("every value in \"params\" must be a string, not %s (line %d, column %d); quote numbers and booleans", typ.Value, line, col)
		}
		return fmt.Sprintf("field %q must be %s, not %s (line %d, column %d)", truncate(field, 60), jsonKind(typ.Type), typ.Value, line, col)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "the JSON ends too early"
	}
	// What else a strict decoder refuses is a key the target has no field
	// for (jsonfields.go finds it).
	if name, ok := unknownField(data, t); ok {
		return fmt.Sprintf("%s; accepted fields: action, params, reason, links (each link: title, url)", truncate(fmt.Sprintf("unknown field %q", name), 100))
	}
	return truncate(strings.TrimPrefix(err.Error(), "json: "), 200)
}

// jsonKind names the JSON a value of Go type t is written as.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Map:
		return "an object of strings"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Struct:
		return "an object"
	}
	return t.String()
}

// position turns a byte offset into a 1-based line and column.
func position(data []byte, off int64) (line, col int) {
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	if off < 0 {
		off = 0
	}
	before := data[:off]
	line = bytes.Count(before, []byte{'\n'}) + 1
	col = int(off) - (bytes.LastIndexByte(before, '\n') + 1) + 1
	return line, col
}

// serviceError answers a refusal from approvals or policy with its stable
// code, and anything else as an internal error. Every approvals.Reason has
// its own case (TestEveryApprovalsReasonHasACode); the default only catches
// a reason added without one.
func (s *Server) serviceError(w http.ResponseWriter, r *http.Request, err error) {
	var pr *policy.RefusalError
	var ar *approvals.RefusalError
	switch {
	case errors.As(err, &pr):
		switch pr.Code {
		case policy.CodeForbidden:
			fail(w, r, http.StatusForbidden, api.CodeForbidden, pr.Message)
		case policy.CodeOutsideWindow:
			fail(w, r, http.StatusForbidden, api.CodeOutsideWindow, pr.Message)
		case policy.CodeFrozen:
			fail(w, r, http.StatusForbidden, api.CodeFrozen, pr.Message)
		case policy.CodeUnknownAction:
			fail(w, r, http.StatusBadRequest, api.CodeUnknownAction, pr.Message)
		case policy.CodeInvalidParams:
			fail(w, r, http.StatusBadRequest, api.CodeInvalidParams, pr.Message)
		default:
			fail(w, r, http.StatusBadRequest, api.CodeInvalidRequest, pr.Message)
		}
	case errors.As(err, &ar):
		switch ar.Reason {
		case approvals.ReasonUnknownRequest:
			notFound(w, r, r.PathValue("id"))
		case approvals.ReasonNotPending:
			fail(w, r, http.StatusConflict, api.CodeNotPending, ar.Message)
		case approvals.ReasonForbidden:
			fail(w, r, http.StatusForbidden, api.CodeForbidden, ar.Message)
		case approvals.ReasonReviewPending:
			fail(w, r, http.StatusForbidden, api.CodeReviewPending, ar.Message)
		case approvals.ReasonIdempotencyConf:
			fail(w, r, http.StatusConflict, api.CodeConflict, ar.Message)
		case approvals.ReasonTooManyPending:
			s.rateLimited(w, r, LimitPendingPerRequester, pendingRetryAfter, ar.Message)
		case approvals.ReasonInvalid, approvals.ReasonNotEligible, approvals.ReasonSelfApproval,
			approvals.ReasonStaleIdentity, approvals.ReasonVoteChanged, approvals.ReasonReasonRequired,
			approvals.ReasonStepUpRequired, approvals.ReasonNotLinked:
			fail(w, r, http.StatusBadRequest, api.CodeInvalidRequest, ar.Message)
		default:
			fail(w, r, http.StatusBadRequest, api.CodeInvalidRequest, ar.Message)
		}
	case errors.Is(err, storage.ErrUnavailable):
		// The database cannot be reached (PostgreSQL restarting, say):
		// nothing was written, and the same call may succeed shortly.
		s.opts.Logger.Warn("database unavailable", "method", r.Method, "path", r.URL.Path, "err", err)
		w.Header().Set("Retry-After", "5")
		fail(w, r, http.StatusServiceUnavailable, api.CodeNotReady, "signoff cannot reach its database right now; nothing was changed, retry in a few seconds")
	case r.Context().Err() != nil:
		// The client went away; nobody reads the answer.
		s.opts.Logger.Debug("client gone", "path", r.URL.Path, "err", err)
	default:
		s.internalError(w, r, err)
	}
}

// internalError logs err with a reference and answers 500 with only the
// reference, so nothing of the server's internals reaches the client.
func (s *Server) internalError(w http.ResponseWriter, r *http.Request, err error) {
	ref := newRef()
	s.opts.Logger.Error("internal error", "ref", ref, "method", r.Method, "path", r.URL.Path, "err", err)
	fail(w, r, http.StatusInternalServerError, api.CodeInternal, "signoff could not complete this because of a fault on its side (reference "+ref+" in the server log); retry later")
}

func newRef() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// fail writes an API error and records its code for the access log.
func fail(w http.ResponseWriter, r *http.Request, status int, code api.Code, msg string) {
	if info := infoFrom(r); info != nil {
		info.code = code
	}
	WriteError(w, status, code, msg)
}

// truncate shortens s to at most n bytes (on a rune boundary) for a
// message, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// requestInfo collects what a handler learns for the access log line.
type requestInfo struct {
	requestID string
	issuer    string
	code      api.Code
}

type infoKey struct{}

func infoFrom(r *http.Request) *requestInfo {
	info, _ := r.Context().Value(infoKey{}).(*requestInfo)
	return info
}

func setRequestID(r *http.Request, id string) {
	if info := infoFrom(r); info != nil {
		info.requestID = truncate(id, 100)
	}
}

// statusRecorder remembers the status a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int64
	// body is the request's body while it may be unread (HTTP/1 with a
	// body); nil otherwise.
	body *watchedBody
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
		s.closeIfUnread()
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
		s.closeIfUnread()
	}
	n, err := s.ResponseWriter.Write(b)
	s.bytes += int64(n)
	return n, err
}

// closeIfUnread makes an answer sent before the request's body was read
// to its end the connection's last. Otherwise net/http, once the handler
// returns, reads (up to 256 KiB of) the rest of the body before it sends
// the answer, so whoever is refused without their body being read (an
// unknown path, a method the path does not take, a missing token, a
// webhook whose credentials are refused) and never finishes a chunked
// body, or sends less than its Content-Length, would hold the connection
// and get no answer until the server's ReadTimeout.
func (s *statusRecorder) closeIfUnread() {
	if s.body != nil && !s.body.done.Load() {
		s.ResponseWriter.Header().Set("Connection", "close")
	}
}

// watchedBody is a request body that notes when it was read to its end.
type watchedBody struct {
	io.ReadCloser
	done atomic.Bool
}

func (b *watchedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if errors.Is(err, io.EOF) {
		b.done.Store(true)
	}
	return n, err
}

// Flush lets handlers stream through the recorder.
func (s *statusRecorder) Flush() {
	if s.status == 0 {
		s.closeIfUnread()
	}
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// quietPaths are logged at debug level: probes would flood the log.
var quietPaths = map[string]bool{"/healthz": true, "/readyz": true, "/metrics": true}

// serveLogged runs the router behind a recover middleware and writes one
// access log line per request: method, path, status, duration, bytes and
// the request id and error code when there are any. Never headers (which
// hold tokens), query strings or bodies. It also counts the request for
// /metrics under the pattern the router matched (r.Pattern, which the
// router sets on r), never the raw path.
func (s *Server) serveLogged(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &statusRecorder{ResponseWriter: w}
	info := &requestInfo{}
	r = r.WithContext(context.WithValue(r.Context(), infoKey{}, info))
	if r.ProtoMajor == 1 && r.ContentLength != 0 && r.Body != nil && r.Body != http.NoBody {
		rec.body = &watchedBody{ReadCloser: r.Body}
		r.Body = rec.body
	}
	aborted := false
	defer func() {
		v := recover()
		if v != nil {
			if v != http.ErrAbortHandler {
				s.opts.Logger.Error("panic while serving a request", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			}
			if rec.status == 0 && v != http.ErrAbortHandler {
				info.code = api.CodeInternal
				WriteError(rec, http.StatusInternalServerError, api.CodeInternal, "signoff failed while handling this request (the server log has the details); retry later")
			} else {
				aborted = true
			}
		}
		s.logAccess(r, rec, info, start, aborted)
		s.metrics.observe(r.Pattern, r.Method, responseStatus(r, rec), time.Since(start))
		if aborted {
			// Headers are out: abort the connection so the client sees the
			// response is incomplete.
			panic(http.ErrAbortHandler)
		}
	}()
	s.mux.ServeHTTP(rec, r)
}

// responseStatus is the status the handler sent, 499 when it sent nothing
// because the client went away first.
func responseStatus(r *http.Request, rec *statusRecorder) int {
	switch {
	case rec.status != 0:
		return rec.status
	case r.Context().Err() != nil:
		return 499 // the client closed the connection first
	default:
		return http.StatusOK
	}
}

func (s *Server) logAccess(r *http.Request, rec *statusRecorder, info *requestInfo, start time.Time, aborted bool) {
	status := responseStatus(r, rec)
	level := slog.LevelInfo
	if quietPaths[r.URL.Path] {
		level = slog.LevelDebug
	}
	if !s.opts.Logger.Enabled(r.Context(), level) {
		return
	}
	attrs := []slog.Attr{
		slog.String("method", r.Method),
		slog.String("path", truncate(r.URL.Path, 200)),
		slog.Int("status", status),
		slog.Duration("duration", time.Since(start)),
		slog.Int64("bytes", rec.bytes),
	}
	if info.requestID != "" {
		attrs = append(attrs, slog.String("request", info.requestID))
	}
	if info.issuer != "" {
		attrs = append(attrs, slog.String("issuer", info.issuer))
	}
	if info.code != "" {
		attrs = append(attrs, slog.String("code", string(info.code)))
	}
	if aborted {
		attrs = append(attrs, slog.Bool("aborted", true))
	}
	s.opts.Logger.LogAttrs(context.WithoutCancel(r.Context()), level, "http request", attrs...)
}
