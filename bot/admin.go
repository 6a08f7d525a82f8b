package bot

// The admin API: online administration by members of admins.groups, with
// bearer tokens verified like every other /v1 call.
//
//	GET    /v1/links[?platform&workspace&user&email]   linked chat accounts (admins)
//	DELETE /v1/links/{platform}/{workspace}/{user}     revoke a link now (admins)
//	GET    /v1/requests[?state&action&limit]           requests, newest first (admins and auditors)
//	POST   /v1/requests/{id}/cancel  {"reason"}        an admin's cancel (see cancelRequest in api.go)
//	GET    /v1/backup                                  a consistent copy of the database (admins)
//
// A token without an admin group gets 403 forbidden, whose message names
// the admin groups configured, the claim the groups were read from and the
// groups the token holds. Every change an admin makes is an audit record
// whose actor is the admin (issuer URL, subject, name, email):
// identity.unlinked for a revoke, request.cancelled for a cancel and
// admin.backup for a backup. Listings are reads and are not audited. The
// bodies and answers are package api's types.

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/signoff-dev/signoff/api"
	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/approvals/audit"
	"github.com/signoff-dev/signoff/oidc"
	"github.com/signoff-dev/signoff/policy"
	"github.com/signoff-dev/signoff/storage"
)

// DefaultAdminRevokeReason is audited for a revoke whose body gives no
// reason.
const DefaultAdminRevokeReason = "revoked by an admin (DELETE /v1/links)"

func (s *Server) mountAdmin() {
	s.route("GET", "/v1/links", s.listLinks, "GET, HEAD")
	s.route("DELETE", "/v1/links/{platform}/{workspace}/{user}", s.revokeLink, "DELETE")
	// The 405 twin of /v1/requests is mounted with POST in api.go.
	s.mux.HandleFunc("GET /v1/requests", s.authed(s.listRequests))
	s.route("POST", "/v1/requests/{id}/lift-block", s.liftBlock, "POST")
	s.route("GET", "/v1/backup", s.backup, "GET")
}

func (s *Server) isAdmin(tok *oidc.RequesterToken) bool {
	return len(tok.Groups) > 0 && s.opts.Service.Policy().IsAdmin(tok.Groups)
}

// adminActor is the admin behind tok, as audit records name them.
func adminActor(tok *oidc.RequesterToken) audit.Actor {
	iss := tok.Issuer
	if iss == "" {
		iss = tok.IssuerName
	}
	return audit.Actor{Issuer: iss, Subject: tok.Subject, Name: tok.Name, Email: tok.Email}
}

// adminPerson is the admin behind tok for the rules that keep a person
// from ending the review of their own break-glass: the token's issuer
// entry and subject, and the names a requester's person claim is
// compared with (subject, email, preferred_username, the value of the
// entry's person_claim and, for a signoff login token, of
// idp.person_claims, the claims the no-self-approval rule reads from
// the same IdP's sign-ins).
func (s *Server) adminPerson(tok *oidc.RequesterToken) approvals.AdminPerson {
	p := policy.Person{Subject: tok.Subject, Email: tok.Email, PreferredUsername: tok.Claims["preferred_username"]}
	if tok.Person != "" {
		p.Handles = []string{tok.Person}
	}
	p.Handles = append(p.Handles, tok.Handles...)
	return approvals.AdminPerson{Issuer: tok.IssuerName, Subject: tok.Subject, Actor: adminActor(tok), Person: p}
}

// groupRole is a set of configured groups that grants something.
type groupRole struct {
	key    string // the config key, e.g. "admins.groups"
	groups []string
}

// requireRole answers 403 unless tok holds a group of one of roles; what
// names the call for the message.
func (s *Server) requireRole(w http.ResponseWriter, r *http.Request, tok *oidc.RequesterToken, what string, roles ...groupRole) bool {
	for _, role := range roles {
		for _, g := range role.groups {
			if g != "" && slices.Contains(tok.Groups, g) {
				return true
			}
		}
	}
	fail(w, r, http.StatusForbidden, api.CodeForbidden, groupsRefusal(tok, what, roles))
	return false
}

func (s *Server) adminRole() groupRole {
	return groupRole{key: "admins.groups", groups: s.opts.Service.Policy().AdminGroups}
}

func (s *Server) auditorRole() groupRole {
	return groupRole{key: "auditors.groups", groups: s.opts.Service.Policy().AuditorGroups}
}

// groupsRefusal says why tok may not do what: the groups it would need
// (which config key, which groups), the claim its groups were read from
// and the groups it holds.
func groupsRefusal(tok *oidc.RequesterToken, what string, roles []groupRole) string {
	var need []string
	configured := false
	for _, role := range roles {
		if len(role.groups) > 0 {
			configured = true
		}
		need = append(need, fmt.Sprintf("%s %s", role.key, quotedList(role.groups, "(none configured)")))
	}
	// Where the claim is configured: the requester entry's groups_claim,
	// or idp.groups_claim for a signoff login token.
	source := fmt.Sprintf("groups_claim of requester %s", tok.IssuerName)
	if tok.Login {
		source = "idp.groups_claim"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s needs a token with one of %s", what, strings.Join(need, " or "))
	switch {
	case tok.GroupsClaim == "" && len(tok.Groups) == 0:
		fmt.Fprintf(&b, "; requester %s reads no groups from its tokens: its requesters entry needs groups_claim (the claim that lists a person's groups)", tok.IssuerName)
	case len(tok.Groups) == 0:
		fmt.Fprintf(&b, "; this token's %q claim (%s) holds no groups", tok.GroupsClaim, source)
	default:
		fmt.Fprintf(&b, "; this token's %q claim (%s) holds %s, none of them", cmp.Or(tok.GroupsClaim, "groups"), source, quotedList(tok.Groups, ""))
	}
	if !configured {
		b.WriteString("; no such group is configured, so nobody may: add one to the config")
	}
	return b.String()
}

// quotedList renders groups for a message, at most 20 of them, each cut
// to 60 bytes.
func quotedList(groups []string, empty string) string {
	if len(groups) == 0 {
		return empty
	}
	const most = 20
	parts := make([]string, 0, min(len(groups), most)+1)
	for i, g := range groups {
		if i == most {
			parts = append(parts, fmt.Sprintf("… (%d more)", len(groups)-most))
			break
		}
		parts = append(parts, strconv.Quote(truncate(g, 60)))
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// contextWithDrain is r's context, also ended when the server begins to
// shut down (Drain), so a long download does not hold up a shutdown.
func contextWithDrain(r *http.Request, drain context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(r.Context())
	stop := context.AfterFunc(drain, cancel)
	return ctx, func() { stop(); cancel() }
}

// queryParams checks that q holds only the allowed parameters, each at
// most once; otherwise it returns the problem.
func queryParams(q url.Values, allowed ...string) string {
	for k, v := range q {
		if !slices.Contains(allowed, k) {
			return fmt.Sprintf("unknown query parameter %q; accepted: %s", truncate(k, 40), strings.Join(allowed, ", "))
		}
		if len(v) > 1 {
			return fmt.Sprintf("query parameter %q is given more than once", k)
		}
	}
	return ""
}

func (s *Server) listLinks(w http.ResponseWriter, r *http.Request, tok *oidc.RequesterToken) {
	if !s.requireRole(w, r, tok, "listing links", s.adminRole()) {
		return
	}
	q := r.URL.Query()
	if problem := queryParams(q, "platform", "workspace", "user", "email"); problem != "" {
		fail(w, r, http.StatusBadRequest, api.CodeInvalidRequest, problem)
		return
	}
	links, err := s.opts.Service.Links(r.Context(), storage.LinkFilter{Platform: q.Get("platform"), Workspace: q.Get("workspace")})
	if err != nil {
		s.serviceError(w, r, err)
		return
	}
	user, email := q.Get("user"), asciiLower(strings.TrimSpace(q.Get("email")))
	out := api.LinkedAccounts{Links: []api.LinkedAccount{}}
	for _, l := range links {
		if user != "" && l.PlatformUser != user {
			continue
		}
		if email != "" && asciiLower(l.Email) != email {
			continue
		}
		out.Links = append(out.Links, APILinkedAccount(l))
	}
	s.opts.Service.CountAdminAction(approvals.AdminActionLinksList)
	WriteJSON(w, http.StatusOK, out)
}

// asciiLower lower-cases ASCII letters only, as signoff compares emails
// (Unicode case mapping would equate addresses the IdP keeps apart).
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

func (s *Server) revokeLink(w http.ResponseWriter, r *http.Request, tok *oidc.RequesterToken) {
	if !s.requireRole(w, r, tok, "revoking a link", s.adminRole()) {
		return
	}
	platform, workspace, user := r.PathValue("platform"), r.PathValue("workspace"), r.PathValue("user")
	body, status, msg := readReason(w, r)
	if status != 0 {
		fail(w, r, status, api.CodeInvalidRequest, msg)
		return
	}
	reason := strings.TrimSpace(body.Reason)
	if reason == "" {
		reason = DefaultAdminRevokeReason
	}
	if len(reason) > approvals.MaxReasonBytes {
		fail(w, r, http.StatusBadRequest, api.CodeInvalidRequest, fmt.Sprintf("the reason is %d bytes; at most %d allowed", len(reason), approvals.MaxReasonBytes))
		return
	}
	actor := adminActor(tok)
	removed, err := s.opts.Service.UnlinkBy(r.Context(), platform, workspace, user, reason, &actor)
	if errors.Is(err, approvals.ErrNotLinked) {
		fail(w, r, http.StatusNotFound, api.CodeNotFound, fmt.Sprintf("no link of %s user %q in workspace %q: nothing to revoke (GET /v1/links lists the links)",
			truncate(platform, 40), truncate(user, 100), truncate(workspace, 100)))
		return
	}
	if err != nil {
		s.serviceError(w, r, err)
		return
	}
	s.opts.Service.CountAdminAction(approvals.AdminActionLinkRevoke)
	WriteJSON(w, http.StatusOK, api.Revoked{Revoked: APILinkedAccount(removed)})
}

// readReason decodes an optional {"reason": "…"} body: an empty body is no
// reason. On failure it returns the status and message to answer with.
func readReason(w http.ResponseWriter, r *http.Request) (api.ReasonBody, int, string) {
	var body api.ReasonBody
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxRequestBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return body, http.StatusRequestEntityTooLarge, fmt.Sprintf("the body is larger than %d KiB", MaxRequestBody>>10)
		}
		return body, http.StatusBadRequest, "the body could not be read"
	}
	if strings.TrimSpace(string(data)) == "" {
		return body, 0, ""
	}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		return body, http.StatusBadRequest, `the body is not valid: send {"reason": "<why>"} and nothing else`
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return body, http.StatusBadRequest, `the body is not valid: send one JSON object, {"reason": "<why>"}`
	}
	return body, 0, ""
}

// requiredReason reads the reason an admin action must give (readReason)
// and returns it trimmed. A body readReason refuses is answered as it
// says, a blank reason with a 400 whose message is missing; either way ok
// is false.
func requiredReason(w http.ResponseWriter, r *http.Request, missing string) (reason string, ok bool) {
	body, status, msg := readReason(w, r)
	if status != 0 {
		fail(w, r, status, api.CodeInvalidRequest, msg)
		return "", false
	}
	reason = strings.TrimSpace(body.Reason)
	if reason == "" {
		fail(w, r, http.StatusBadRequest, api.CodeInvalidRequest, missing)
		return "", false
	}
	return reason, true
}

// adminCancel cancels req on an admin's word; the body must give a reason.
func (s *Server) adminCancel(w http.ResponseWriter, r *http.Request, tok *oidc.RequesterToken, req storage.Request) {
	reason, ok := requiredReason(w, r, fmt.Sprintf(`an admin's cancel needs a reason, for the audit log: send {"reason": "<why>"} (%s is not your request)`, req.ID))
	if !ok {
		return
	}
	admin := s.adminPerson(tok)
	out, err := s.opts.Service.Cancel(r.Context(), req.ID, approvals.Canceller{Issuer: tok.IssuerName, Subject: tok.Subject, Admin: &admin, Reason: reason})
	if err != nil {
		s.serviceError(w, r, err)
		return
	}
	s.opts.Service.CountAdminAction(approvals.AdminActionRequestCancel)
	WriteJSON(w, http.StatusOK, s.view(out))
}

// liftBlock lifts, on an admin's word and with a reason, the block a
// break-glass review that ended without approval holds on its requester's
// next break-glass
// (POST /v1/requests/{id}/lift-block).
func (s *Server) liftBlock(w http.ResponseWriter, r *http.Request, tok *oidc.RequesterToken) {
	id := r.PathValue("id")
	setRequestID(r, id)
	if !s.requireRole(w, r, tok, "lifting a break-glass block", s.adminRole()) {
		return
	}
	reason, ok := requiredReason(w, r, `lifting a break-glass block needs a reason, for the audit log: send {"reason": "<why>"}`)
	if !ok {
		return
	}
	out, err := s.opts.Service.LiftBlock(r.Context(), id, s.adminPerson(tok), reason)
	if err != nil {
		s.serviceError(w, r, err)
		return
	}
	s.opts.Service.CountAdminAction(approvals.AdminActionBlockLift)
	WriteJSON(w, http.StatusOK, s.view(out))
}

func (s *Server) listRequests(w http.ResponseWriter, r *http.Request, tok *oidc.RequesterToken) {
	if !s.requireRole(w, r, tok, "listing requests", s.adminRole(), s.auditorRole()) {
		return
	}
	q := r.URL.Query()
	if problem := queryParams(q, "state", "action", "limit"); problem != "" {
		fail(w, r, http.StatusBadRequest, api.CodeInvalidRequest, problem)
		return
	}
	var f storage.RequestFilter
	if v := q.Get("state"); v != "" {
		for _, part := range strings.Split(v, ",") {
			st := storage.State(strings.TrimSpace(part))
			switch st {
			case storage.StatePending, storage.StateApproved, storage.StateDenied, storage.StateExpired, storage.StateCancelled:
				f.States = append(f.States, st)
			default:
				fail(w, r, http.StatusBadRequest, api.CodeInvalidRequest, fmt.Sprintf("state=%q: use pending, approved, denied, expired or cancelled (several separated by commas)", truncate(string(st), 40)))
				return
			}
		}
	}
	f.Action = q.Get("action")
	limit := api.DefaultRequestsLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > api.MaxRequestsLimit {
			fail(w, r, http.StatusBadRequest, api.CodeInvalidRequest, fmt.Sprintf("limit=%q: use a whole number from 1 to %d", truncate(v, 40), api.MaxRequestsLimit))
			return
		}
		limit = n
	}
	f.Limit = limit + 1 // one more, to tell whether the list was cut
	reqs, err := s.opts.Service.List(r.Context(), f)
	if err != nil {
		s.serviceError(w, r, err)
		return
	}
	out := api.RequestList{Requests: []api.Request{}}
	if len(reqs) > limit {
		reqs, out.Truncated = reqs[:limit], true
	}
	for _, req := range reqs {
		out.Requests = append(out.Requests, s.view(req))
	}
	s.opts.Service.CountAdminAction(approvals.AdminActionRequestsList)
	WriteJSON(w, http.StatusOK, out)
}

// backup streams a consistent copy of the database (a hot backup; see
// storage.Backuper): Content-Length is the copy's exact size, so a client
// can tell a complete copy from a cut one. The admin.backup audit record is
// committed first, so the copy holds it. A failure once bytes are out
// aborts the connection.
func (s *Server) backup(w http.ResponseWriter, r *http.Request, tok *oidc.RequesterToken) {
	if r.Method == http.MethodHead {
		// A HEAD would take a snapshot only to throw it away.
		methodNotAllowed("GET")(w, r)
		return
	}
	if !s.requireRole(w, r, tok, "a backup", s.adminRole()) {
		return
	}
	b, ok := s.opts.Store.(storage.Backuper)
	if !ok {
		fail(w, r, http.StatusNotImplemented, api.CodeNotImplemented,
			"this server's storage backend cannot copy itself over the API (GET /v1/backup copies the embedded bbolt store, storage.driver: bolt); back up a PostgreSQL database with its own tools, e.g. pg_dump --format=custom --file signoff.dump \"$DSN\", and restore it with pg_restore")
		return
	}
	if err := s.opts.Service.RecordBackup(r.Context(), adminActor(tok), nil); err != nil {
		s.serviceError(w, r, err)
		return
	}
	s.opts.Service.CountAdminAction(approvals.AdminActionBackup)
	ctx, cancel := contextWithDrain(r, s.drain)
	defer cancel()
	// The snapshot goes to a local file first and the read transaction
	// ends before the download starts: a bbolt commit that must grow the
	// file's memory map waits for every read transaction, so streaming
	// straight from the snapshot would let a slow client hold up votes.
	tmp, err := os.CreateTemp("", "signoff-backup-*.db")
	if err != nil {
		s.internalError(w, r, fmt.Errorf("take backup: make a temporary file (the system's temporary directory must have room for a copy of the database): %w", err))
		return
	}
	defer func() {
		_ = tmp.Close()
		_ = os.Remove(tmp.Name())
	}()
	var size int64
	err = b.Snapshot(ctx, func(img storage.BackupImage) error {
		var err error
		size, err = img.WriteTo(tmp)
		return err
	})
	if err == nil {
		_, err = tmp.Seek(0, io.SeekStart)
	}
	if err != nil {
		if r.Context().Err() != nil || s.drain.Err() != nil {
			panic(http.ErrAbortHandler)
		}
		s.internalError(w, r, fmt.Errorf("take backup: %w", err))
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Length", strconv.FormatInt(size, 10))
	h.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="signoff-%s.db"`, time.Now().UTC().Format("20060102T150405Z")))
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	sent, err := io.Copy(&deadlineWriter{w: w, rc: http.NewResponseController(w)}, io.LimitReader(tmp, size))
	if err == nil && ctx.Err() == nil {
		s.opts.Logger.Info("backup sent", "bytes", sent)
		return
	}
	s.opts.Logger.Warn("backup stream aborted", "bytes_sent", sent, "err", cmpErr(err, ctx.Err()))
	panic(http.ErrAbortHandler)
}

// cmpErr is the first non-nil error.
func cmpErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// deadlineWriter keeps the connection's write deadline ahead of a long
// download: the client has auditWriteWindow to take each chunk.
type deadlineWriter struct {
	w    io.Writer
	rc   *http.ResponseController
	next time.Time
}

func (d *deadlineWriter) Write(p []byte) (int, error) {
	if now := time.Now(); !now.Before(d.next) {
		_ = d.rc.SetWriteDeadline(now.Add(auditWriteWindow))
		d.next = now.Add(auditFlushEvery)
	}
	return d.w.Write(p)
}
