package api

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Limits on what Client reads of an answer.
const (
	// maxAnswer bounds a JSON answer (a listing of MaxRequestsLimit
	// requests fits many times over).
	maxAnswer = 64 << 20
	// maxErrorAnswer bounds what is read of an error answer.
	maxErrorAnswer = 64 << 10
)

// TokenFunc returns the bearer token for one call. Client calls it before
// every call, so it may hand out a renewed token; it should be quick.
type TokenFunc func(ctx context.Context) (string, error)

// StaticToken is a TokenFunc that always returns tok.
func StaticToken(tok string) TokenFunc {
	return func(context.Context) (string, error) { return tok, nil }
}

// ClientOptions configure a Client. The zero value is usable.
type ClientOptions struct {
	// HTTPClient makes the calls. nil: a client of its own that never
	// follows a redirect, which would carry the token elsewhere or turn a
	// POST into a GET; a redirect is returned as an *Error with the
	// answer's Location.
	HTTPClient *http.Client
	// UserAgent is sent with every call when set.
	UserAgent string
}

// Client calls a signoff server's API. Each method makes one HTTP call and
// retries nothing: whether and when to retry is the caller's (see Error
// and its RetryAfter). It bounds no call in time either: give each a
// context with a deadline, longer than the wait of a long poll.
//
// Errors: an answer other than the expected success is an *Error; a
// success whose body is not what the API sends is an *AnswerError; a
// failure to reach the server is net/http's error (a *url.Error) as it
// is. A Client is safe for concurrent use.
type Client struct {
	base      string
	token     TokenFunc
	http      *http.Client
	userAgent string
}

// NewClient returns a client of the server at baseURL (e.g.
// https://signoff.example.com). token is nil for the public endpoints
// only (LoginConfig).
func NewClient(baseURL string, token TokenFunc, opts ClientOptions) (*Client, error) {
	if _, err := url.Parse(baseURL); err != nil {
		return nil, err
	}
	hc := opts.HTTPClient
	if hc == nil {
		hc = &http.Client{
			Transport:     http.DefaultTransport.(*http.Transport).Clone(),
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	return &Client{base: strings.TrimSuffix(baseURL, "/"), token: token, http: hc, userAgent: opts.UserAgent}, nil
}

// BaseURL is the server's base URL, without a trailing slash.
func (c *Client) BaseURL() string { return c.base }

// Create asks for an approval (POST /v1/requests). With an idempotency key
// (the Idempotency-Key header; "" sends none) a retry of the same body
// returns the request the first call made. created is false for such a
// retry (200) and true for a new request (201).
func (c *Client) Create(ctx context.Context, body CreateRequest, idempotencyKey string) (r Request, created bool, err error) {
	a, err := c.callJSON(ctx, call{method: http.MethodPost, path: "/v1/requests", body: body, idempotencyKey: idempotencyKey, created: true}, &r)
	if err != nil {
		return Request{}, false, err
	}
	if r.ID == "" {
		return Request{}, false, a.wrong(errors.New("the answer names no request id"))
	}
	if !plainName(r.ID) {
		return Request{}, false, a.wrong(fmt.Errorf("the answer's request id %q is not a name signoff makes", truncateName(r.ID)))
	}
	if err := checkNames(r); err != nil {
		return Request{}, false, a.wrong(err)
	}
	return r, a.status == http.StatusCreated, nil
}

// checkNames refuses a request view whose action, state or break-glass
// review id is neither empty nor a plain name: printable ASCII without
// spaces, at most 200 bytes. Those are the names signoff makes (ids from
// base32, actions matching the config's name pattern, the five states);
// callers print them in CI logs, where a line break from a hostile or
// broken server could start a line the CI system reads as a command (a
// GitHub workflow command, say). The request id is checked by the caller:
// Create wants a plain one, Get the one it asked for.
func checkNames(r Request) error {
	names := []struct{ what, value string }{{"action", r.Action}, {"state", string(r.State)}}
	if r.BreakGlass != nil {
		names = append(names, struct{ what, value string }{"break-glass review id", r.BreakGlass.Review})
	}
	for _, n := range names {
		if n.value != "" && !plainName(n.value) {
			return fmt.Errorf("the answer's %s %q is not a name signoff makes", n.what, truncateName(n.value))
		}
	}
	return nil
}

// plainName reports whether s is 1 to 200 bytes of printable ASCII other
// than the space.
func plainName(s string) bool {
	if s == "" || len(s) > 200 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// truncateName shortens a refused name for the error that quotes it.
func truncateName(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// Get reads request id (GET /v1/requests/{id}). With wait > 0 the server
// holds the call until the request leaves pending or the wait ends (at
// most a minute) and answers with the request as it then stands, pending
// or not: a long poll. Give ctx a deadline beyond wait.
func (c *Client) Get(ctx context.Context, id string, wait time.Duration) (Request, error) {
	k := call{method: http.MethodGet, path: "/v1/requests/" + url.PathEscape(id)}
	if wait > 0 {
		k.query = url.Values{"wait": {wait.String()}}
	}
	return c.requestCall(ctx, k, id)
}

// Cancel cancels a pending request (POST /v1/requests/{id}/cancel): its
// requester's, with reason "", or any as an admin, with a reason for the
// audit log.
func (c *Client) Cancel(ctx context.Context, id, reason string) (Request, error) {
	k := call{method: http.MethodPost, path: "/v1/requests/" + url.PathEscape(id) + "/cancel"}
	if reason != "" {
		k.body = ReasonBody{Reason: reason}
	}
	return c.requestCall(ctx, k, id)
}

// LiftBlock lifts, as an admin and for reason (required), the block the
// break-glass review id, ended without approval, holds on its requester's
// next break-glass
// (POST /v1/requests/{id}/lift-block). It returns the review.
func (c *Client) LiftBlock(ctx context.Context, id, reason string) (Request, error) {
	k := call{method: http.MethodPost, path: "/v1/requests/" + url.PathEscape(id) + "/lift-block", body: ReasonBody{Reason: reason}}
	return c.requestCall(ctx, k, id)
}

// requestCall makes call k, whose answer is request id: an answer naming
// another request, or names that are not plain (checkNames), is an
// *AnswerError.
func (c *Client) requestCall(ctx context.Context, k call, id string) (Request, error) {
	var r Request
	a, err := c.callJSON(ctx, k, &r)
	if err != nil {
		return Request{}, err
	}
	if r.ID != id {
		return Request{}, a.wrong(fmt.Errorf("the answer is not request %q", id))
	}
	if err := checkNames(r); err != nil {
		return Request{}, a.wrong(err)
	}
	return r, nil
}

// Attestation reads the attestation of approved request id (GET
// /v1/requests/{id}/attestation), as its requester or an auditor. A
// request that is not approved is an *Error with CodeNotApproved (409); a
// request approved without one (the server signs none) is CodeNotFound.
func (c *Client) Attestation(ctx context.Context, id string) (string, error) {
	var out Attestation
	a, err := c.callJSON(ctx, call{method: http.MethodGet, path: "/v1/requests/" + url.PathEscape(id) + "/attestation"}, &out)
	if err != nil {
		return "", err
	}
	if !compactJWT(out.Attestation) {
		return "", a.wrong(errors.New("the answer holds no attestation (a compact JWT)"))
	}
	return out.Attestation, nil
}

// compactJWT reports whether s has the form of a compact JWT: three
// non-empty base64url segments joined by dots. Nothing else may pass: the
// token is printed in CI logs (as a secret to mask) and written to files,
// where a newline or other text from a server would be read as more than
// a token.
func compactJWT(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return false
	}
	for _, p := range parts {
		if p == "" {
			return false
		}
		for i := range len(p) {
			c := p[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// AuditQuery filters GET /v1/audit; zero fields filter nothing.
type AuditQuery struct {
	// Since (inclusive) and Until (exclusive) bound the records' times.
	Since, Until time.Time
	// Request keeps one request's records.
	Request string
}

// Audit streams the audit log (GET /v1/audit, auditors only) as JSON
// lines, one canonical record a line, oldest first. The caller reads and
// closes it; a stream the server cut off ends in a read error, never in a
// clean end.
func (c *Client) Audit(ctx context.Context, q AuditQuery) (io.ReadCloser, error) {
	v := url.Values{}
	if !q.Since.IsZero() {
		v.Set("since", q.Since.Format(time.RFC3339Nano))
	}
	if !q.Until.IsZero() {
		v.Set("until", q.Until.Format(time.RFC3339Nano))
	}
	if q.Request != "" {
		v.Set("request", q.Request)
	}
	resp, err := c.open(ctx, call{method: http.MethodGet, path: "/v1/audit", query: v, accept: "application/x-ndjson"})
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// LinkQuery filters GET /v1/links; empty fields filter nothing.
type LinkQuery struct {
	Platform, Workspace, User, Email string
}

// Links lists the linked chat accounts (GET /v1/links, admins only).
func (c *Client) Links(ctx context.Context, q LinkQuery) ([]LinkedAccount, error) {
	v := url.Values{}
	for k, val := range map[string]string{"platform": q.Platform, "workspace": q.Workspace, "user": q.User, "email": q.Email} {
		if val != "" {
			v.Set(k, val)
		}
	}
	var out LinkedAccounts
	if _, err := c.callJSON(ctx, call{method: http.MethodGet, path: "/v1/links", query: v}, &out); err != nil {
		return nil, err
	}
	return out.Links, nil
}

// RevokeLink removes the link of one chat account now (DELETE
// /v1/links/{platform}/{workspace}/{user}, admins only) and returns the
// link removed. reason goes to the audit log ("": the server's default).
func (c *Client) RevokeLink(ctx context.Context, platform, workspace, user, reason string) (LinkedAccount, error) {
	path := "/v1/links/" + url.PathEscape(platform) + "/" + url.PathEscape(workspace) + "/" + url.PathEscape(user)
	var out Revoked
	if _, err := c.callJSON(ctx, call{method: http.MethodDelete, path: path, body: ReasonBody{Reason: reason}}, &out); err != nil {
		return LinkedAccount{}, err
	}
	return out.Revoked, nil
}

// RequestQuery filters GET /v1/requests; zero fields filter nothing.
type RequestQuery struct {
	// States keeps requests in any of these states.
	States []State
	Action string
	// Limit caps the listing (0: DefaultRequestsLimit; at most
	// MaxRequestsLimit).
	Limit int
}

// Requests lists requests, newest first (GET /v1/requests, admins and
// auditors).
func (c *Client) Requests(ctx context.Context, q RequestQuery) (RequestList, error) {
	v := url.Values{}
	if q.Limit != 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if len(q.States) > 0 {
		states := make([]string, len(q.States))
		for i, s := range q.States {
			states[i] = string(s)
		}
		v.Set("state", strings.Join(states, ","))
	}
	if q.Action != "" {
		v.Set("action", q.Action)
	}
	var out RequestList
	if _, err := c.callJSON(ctx, call{method: http.MethodGet, path: "/v1/requests", query: v}, &out); err != nil {
		return RequestList{}, err
	}
	return out, nil
}

// Download is a copy of the database the server is sending.
type Download struct {
	// Body streams the copy; the caller closes it.
	Body io.ReadCloser
	// Size is the copy's exact length, -1 when the server did not say: a
	// copy shorter than Size was cut off.
	Size int64
}

// Backup starts a download of a consistent copy of the server's database
// (GET /v1/backup, admins only). The server audits it (admin.backup)
// before it sends a byte.
func (c *Client) Backup(ctx context.Context) (*Download, error) {
	resp, err := c.open(ctx, call{method: http.MethodGet, path: "/v1/backup", accept: "application/octet-stream"})
	if err != nil {
		return nil, err
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/octet-stream" {
		resp.Body.Close()
		return nil, &AnswerError{Status: resp.StatusCode, ContentType: ct, Err: errors.New("not a database copy")}
	}
	return &Download{Body: resp.Body, Size: resp.ContentLength}, nil
}

// LoginConfig asks where the server's people sign in (GET
// /v1/login-config, public). A server without idp.cli_client_id answers
// 404 not_found.
func (c *Client) LoginConfig(ctx context.Context) (LoginConfig, error) {
	var lc LoginConfig
	a, err := c.callJSON(ctx, call{method: http.MethodGet, path: LoginConfigPath}, &lc)
	if err != nil {
		return LoginConfig{}, err
	}
	if lc.Issuer == "" || lc.ClientID == "" {
		return LoginConfig{}, a.wrong(errors.New("the answer names no issuer or client id"))
	}
	return lc, nil
}

// call is one HTTP call of the API.
type call struct {
	method, path string
	query        url.Values
	// body is sent as JSON when not nil.
	body           any
	idempotencyKey string
	// accept is the Accept header; default application/json.
	accept string
	// created accepts 201 Created beside 200 OK.
	created bool
}

// open makes the call and returns the answer when its status is the
// success expected; the caller closes its body. Any other answer is an
// *Error.
func (c *Client) open(ctx context.Context, k call) (*http.Response, error) {
	var body io.Reader
	if k.body != nil {
		data, err := json.Marshal(k.body)
		if err != nil {
			return nil, fmt.Errorf("encode the body of %s %s: %w", k.method, k.path, err)
		}
		body = bytes.NewReader(data)
	}
	u := c.base + k.path
	if len(k.query) > 0 {
		u += "?" + k.query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, k.method, u, body)
	if err != nil {
		return nil, err
	}
	if c.token != nil {
		tok, err := c.token(ctx)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	req.Header.Set("Accept", cmp.Or(k.accept, "application/json"))
	if c.userAgent != "" {
		req.Header.Set("User-Agent", c.userAgent)
	}
	if k.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if k.idempotencyKey != "" {
		req.Header.Set("Idempotency-Key", k.idempotencyKey)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusOK || (k.created && resp.StatusCode == http.StatusCreated) {
		return resp, nil
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorAnswer))
	return nil, ParseError(resp.StatusCode, resp.Header, data)
}

// answer is what callJSON saw of a success: the status, and where the
// answer turns out not to be what was expected, the error to return.
type answer struct {
	status      int
	contentType string
}

// wrong is an *AnswerError about this answer.
func (a answer) wrong(err error) error {
	return &AnswerError{Status: a.status, ContentType: a.contentType, Err: err}
}

// callJSON makes the call and decodes its answer into out.
func (c *Client) callJSON(ctx context.Context, k call, out any) (answer, error) {
	resp, err := c.open(ctx, k)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	a := answer{status: resp.StatusCode, contentType: resp.Header.Get("Content-Type")}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return a, fmt.Errorf("reading the answer: %w", err)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return a, a.wrong(err)
	}
	return a, nil
}
