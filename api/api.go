// Package api is signoff's HTTP API as data: the JSON the server answers
// and takes under /v1, its stable error codes, and a Client that calls it.
//
// The server (package bot) serves these types; the command line (signoff
// request, audit export --server, links --server, requests list, backup
// --server, login) calls a server only through Client, and so can a CI
// integration or a test. The package imports nothing but the standard
// library, so that the contract is the JSON itself and not the server's
// storage types: a field name, a state or a code here is part of the API
// and stays stable across releases (docs/architecture.md, "The HTTP API").
//
// Every error answer is {"error":{"code","message"}} (ErrorBody) with one
// of the Code constants; Client returns it as an *Error, found with
// errors.As.
package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Code is the stable code of an error answer: what went wrong, for a
// program to act on. The message beside it is for people.
type Code string

// The error codes of the API.
const (
	// CodeUnauthenticated: no bearer token, or one signoff refused (401).
	CodeUnauthenticated Code = "unauthenticated"
	// CodeForbidden: the token may not do this (403).
	CodeForbidden Code = "forbidden"
	// CodeOutsideWindow: the action may be requested only in its
	// windows and none is open; the message says when the next opens
	// (403).
	CodeOutsideWindow Code = "outside_window"
	// CodeFrozen: a freeze of the action is in force; the message says
	// when it ends (403).
	CodeFrozen Code = "frozen"
	// CodeReviewPending: the requester broke glass before and that
	// break-glass review is not approved yet; the message names it (403).
	CodeReviewPending Code = "review_pending"
	// CodeUnknownAction: the config declares no such action (400).
	CodeUnknownAction Code = "unknown_action"
	// CodeInvalidParams: the params do not match the action's (400).
	CodeInvalidParams Code = "invalid_params"
	// CodeInvalidRequest: the call is malformed: its body, a query
	// parameter (400).
	CodeInvalidRequest Code = "invalid_request"
	// CodeNotFound: no such request (or none this token may see), link or
	// endpoint (404).
	CodeNotFound Code = "not_found"
	// CodeConflict: the Idempotency-Key was used before with another
	// body (409).
	CodeConflict Code = "conflict"
	// CodeNotPending: the request was already decided, cancelled or
	// expired (409).
	CodeNotPending Code = "not_pending"
	// CodeNotApproved: the request is not approved (pending, denied,
	// expired or cancelled), so it has no attestation (409).
	CodeNotApproved Code = "not_approved"
	// CodePayloadTooLarge: the body is over the server's limit (413).
	CodePayloadTooLarge Code = "payload_too_large"
	// CodeMethodNotAllowed: the endpoint does not take this method (405).
	CodeMethodNotAllowed Code = "method_not_allowed"
	// CodeRateLimited: one of signoff's own limits refused the call
	// (429, with Retry-After).
	CodeRateLimited Code = "rate_limited"
	// CodeNotImplemented: the server's storage backend cannot do this,
	// e.g. GET /v1/backup on PostgreSQL (501).
	CodeNotImplemented Code = "not_implemented"
	// CodeNotReady: GET /readyz found a part of the server unavailable,
	// or a call met a database that cannot be reached right now; nothing
	// was changed and it may be retried (503, with Retry-After).
	CodeNotReady Code = "not_ready"
	// CodeInternal: a fault on the server's side; its log has the
	// reference the message names (500).
	CodeInternal Code = "internal"
)

// ErrorBody is the JSON of every error answer.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail carries a stable code and a message that says what to do.
type ErrorDetail struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
}

// Error is an answer other than the success a call expects, as Client
// returns it. Code and Message are empty when the answer is not a signoff
// error (a proxy's page, another server, a redirect).
type Error struct {
	// Status is the HTTP status.
	Status  int
	Code    Code
	Message string
	// RetryAfter is the wait the answer asked for (Retry-After, in
	// seconds); 0 when it asked for none.
	RetryAfter time.Duration
	// Header holds the answer's headers (a redirect's Location, …).
	Header http.Header
}

// Error renders the answer as "403 forbidden: message", or "404 Not Found"
// when it is not a signoff error.
func (e *Error) Error() string {
	if e.Code != "" {
		return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message)
	}
	return fmt.Sprintf("%d %s", e.Status, http.StatusText(e.Status))
}

// ParseError reads an error answer: its status, headers and body (of which
// only an ErrorBody is read). For callers that make an HTTP call
// themselves; Client does this for its own.
func ParseError(status int, header http.Header, body []byte) *Error {
	e := &Error{Status: status, Header: header}
	var eb ErrorBody
	if json.Unmarshal(body, &eb) == nil && isCode(eb.Error.Code) {
		e.Code, e.Message = eb.Error.Code, eb.Error.Message
	}
	if s, err := strconv.Atoi(header.Get("Retry-After")); err == nil && s > 0 {
		e.RetryAfter = time.Duration(s) * time.Second
	}
	return e
}

// isCode reports whether c has the shape of an error code (lower-case
// letters, digits and "_", at most 64): the client prints codes as they
// come, so an answer whose code has another shape (a line break and a
// GitHub workflow command after it, an escape sequence) is taken as not
// signoff's.
func isCode(c Code) bool {
	if c == "" || len(c) > 64 {
		return false
	}
	for _, r := range c {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '_' {
			return false
		}
	}
	return true
}

// AnswerError is a success status whose answer is not what the API sends
// (not JSON of the expected shape, another content type): the base URL is
// probably not a signoff server.
type AnswerError struct {
	Status      int
	ContentType string
	// Err says what is wrong with the answer.
	Err error
}

func (e *AnswerError) Error() string {
	return fmt.Sprintf("the answer (%d, %q) is not what signoff sends: %v", e.Status, e.ContentType, e.Err)
}

func (e *AnswerError) Unwrap() error { return e.Err }
