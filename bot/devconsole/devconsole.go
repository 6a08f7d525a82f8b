// Package devconsole is dev mode's stand-in for Slack and Teams: a small
// server-rendered page (no external assets, no JavaScript framework) that
// lists requests as cards and lets you Approve or Deny as one of the
// configured dev approvers. Votes go through the same approvals API and
// audit log as the chat adapters' votes, with platform "dev".
//
// It also plays the deploy system: POST /dev/webhook receives on_approve
// webhook calls, checks their signature like a real receiver, and lists
// them on the page.
//
// With a Linker it also has a "Chat users" panel: one pretend chat account
// (platform and workspace "dev") per dev approver, which can be linked
// through the real account-link flow (at the dev issuer, or at the
// configured IdP) and then vote the way a Slack or Teams click does: the
// vote counts under the identity the link vouches for, or the console
// shows the sign-in link the chat adapters would send.
//
// It exists only in `signoff serve --dev`, which listens on loopback only
// and mounts it behind the loopback Host and Origin check of package
// loopback, so a page rebound to 127.0.0.1 (DNS rebinding) cannot read it.
// Its form posts carry a CSRF token bound to a cookie, so another site open
// in the same browser cannot vote through it.
package devconsole

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/bot/chatflow"
	"github.com/signoff-dev/signoff/bot/chatlimit"
	"github.com/signoff-dev/signoff/clock"
	"github.com/signoff-dev/signoff/internal/platform"
	"github.com/signoff-dev/signoff/oidc"
	"github.com/signoff-dev/signoff/storage"
)

// Approver is a pretend person of dev mode.
type Approver struct {
	Name   string
	Email  string
	Groups []string
}

// Options configure the console.
type Options struct {
	Service   *approvals.Service
	Approvers []Approver
	// IssuerURL is the dev issuer the pretend approvers' identities carry.
	IssuerURL string
	Clock     clock.Clock
	Logger    *slog.Logger
	// MaxRequests caps how many requests the page lists (default 50).
	MaxRequests int
	// Linker, when set, adds the "Chat users" panel and the "as chat
	// user" votes (see Linker). nil hides them.
	Linker Linker
	// Clicks limits the "as chat user" votes per chat user, as the
	// Slack and Teams adapters limit clicks (limits.clicks_per_minute).
	// nil: no limit.
	Clicks *chatlimit.Limiter
}

// Console serves the dev console.
type Console struct {
	opts     Options
	secret   []byte
	page     *template.Template
	webhooks webhookLog
	// flow takes a chat user's vote to its outcome, as a Slack or Teams
	// click (bot/chatflow); nil without a Linker.
	flow *chatflow.Flow
}

const csrfCookie = "signoff_dev_csrf"

// New returns a console.
func New(opts Options) *Console {
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.MaxRequests <= 0 {
		opts.MaxRequests = 50
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		panic(fmt.Sprintf("read random bytes: %v", err))
	}
	c := &Console{opts: opts, secret: secret, page: template.Must(template.New("page").Funcs(funcs).Parse(pageHTML))}
	if opts.Linker != nil {
		// The vote is tried first; a step-up link only when Vote asks for
		// a fresh sign-in. The reason comes with the form.
		c.flow = chatflow.New(chatflow.Options{Service: opts.Service, Resolver: opts.Linker, Logger: opts.Logger})
	}
	return c
}

// Register mounts the console's routes on mux: GET /dev (the page),
// POST /dev/vote, and the built-in webhook receiver POST /dev/webhook (GET
// lists the calls it got, as JSON). With a Linker, also POST /dev/link
// (start linking a chat user) and POST /dev/chat-vote (vote as one).
func (c *Console) Register(mux interface {
	HandleFunc(string, func(http.ResponseWriter, *http.Request))
}) {
	mux.HandleFunc("GET /dev", c.index)
	mux.HandleFunc("GET /dev/{$}", c.index)
	mux.HandleFunc("POST /dev/vote", c.vote)
	mux.HandleFunc("POST /dev/webhook", c.receiveWebhook)
	mux.HandleFunc("GET /dev/webhook", c.listWebhooks)
	if c.opts.Linker != nil {
		mux.HandleFunc("POST /dev/link", c.startLink)
		mux.HandleFunc("POST /dev/chat-vote", c.chatVote)
	}
}

// Handler returns the console as a standalone handler (for tests).
func (c *Console) Handler() http.Handler {
	mux := http.NewServeMux()
	c.Register(mux)
	return mux
}

type cardView struct {
	storage.Request
	Approvals int
	Remaining int
	Pending   bool
}

type pageData struct {
	Cards     []cardView
	Approvers []Approver
	ChatUsers []chatUserView
	CSRF      string
	Flash     string
	FlashKind string
	// FlashLink is a sign-in link the flash message refers to.
	FlashLink string
	Now       time.Time
	Webhooks  []WebhookCall
}

func (c *Console) index(w http.ResponseWriter, r *http.Request) {
	cookie := c.ensureCookie(w, r)
	reqs, err := c.opts.Service.List(r.Context(), storage.RequestFilter{Limit: c.opts.MaxRequests})
	if err != nil {
		c.opts.Logger.Error("dev console: list requests", "err", err)
		http.Error(w, "the store could not be read; see the server log", http.StatusServiceUnavailable)
		return
	}
	// Pending first (soonest deadline first), then decided (newest first).
	sort.SliceStable(reqs, func(i, j int) bool {
		pi, pj := reqs[i].State == storage.StatePending, reqs[j].State == storage.StatePending
		if pi != pj {
			return pi
		}
		if pi {
			return reqs[i].ExpiresAt.Before(reqs[j].ExpiresAt)
		}
		return false
	})
	data := pageData{Approvers: c.opts.Approvers, CSRF: c.csrfToken(cookie), Now: c.opts.Clock.Now(), Webhooks: c.webhooks.list(),
		Flash: r.URL.Query().Get("msg"), FlashKind: r.URL.Query().Get("kind")}
	if data.FlashKind != "ok" {
		data.FlashKind = "err"
	}
	data.FlashLink = c.flashLink(r.URL.Query())
	if c.opts.Linker != nil {
		data.ChatUsers = c.chatUsers(r.Context())
	}
	for _, req := range reqs {
		cv := cardView{Request: req, Pending: req.State == storage.StatePending}
		for _, v := range req.Votes {
			if v.Decision == storage.DecisionApprove {
				cv.Approvals++
			}
		}
		if cv.Pending {
			cv.Remaining = max(req.MinApprovals-cv.Approvals, 0)
		}
		data.Cards = append(data.Cards, cv)
	}
	setConsoleHeaders(w, "'self'")
	if err := c.page.Execute(w, data); err != nil {
		c.opts.Logger.Error("dev console: render", "err", err)
	}
}

func (c *Console) vote(w http.ResponseWriter, r *http.Request) {
	id, decision, ok := c.voteForm(w, r)
	if !ok {
		return
	}
	who, ok := c.approver(r.PostForm.Get("approver"))
	if !ok {
		http.Error(w, "choose one of the dev approvers listed in the config's dev.approvers", http.StatusBadRequest)
		return
	}
	res, err := c.opts.Service.Vote(r.Context(), approvals.VoteInput{
		RequestID: id,
		Approver: oidc.Identity{
			Issuer: c.opts.IssuerURL, Subject: who.Name, Email: who.Email, Name: who.Name,
			PreferredUsername: who.Name, Groups: who.Groups, VerifiedAt: c.opts.Clock.Now(),
		},
		Source:   approvals.Source{Platform: platform.Dev, Workspace: "dev", PlatformUser: who.Name, CallbackID: "dev-" + randomID()},
		Decision: decision,
		Reason:   strings.TrimSpace(r.PostForm.Get("reason")),
	})
	msg, kind := "", "ok"
	var refused *approvals.RefusalError
	switch {
	case errors.As(err, &refused):
		msg, kind = fmt.Sprintf("%s's vote was not counted: %s", who.Name, refused.Message), "err"
	case err != nil:
		c.opts.Logger.Error("dev console: vote", "request", id, "err", err)
		msg, kind = "the vote could not be stored; see the server log", "err"
	case res.Duplicate:
		msg = fmt.Sprintf("%s had already voted %s on %s", who.Name, decision, id)
	default:
		msg = fmt.Sprintf("%s voted %s on %s; it is now %s", who.Name, decision, id, res.Request.State)
	}
	http.Redirect(w, r, "/dev?"+url.Values{"msg": {msg}, "kind": {kind}}.Encode()+"#"+id, http.StatusSeeOther)
}

// checkForm reads a console form and checks its CSRF token against the
// browser's cookie; on failure it has answered.
func (c *Console) checkForm(w http.ResponseWriter, r *http.Request) bool {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "the form could not be read: "+err.Error(), http.StatusBadRequest)
		return false
	}
	cookie, err := r.Cookie(csrfCookie)
	if err != nil || !hmac.Equal([]byte(r.PostForm.Get("csrf")), []byte(c.csrfToken(cookie.Value))) {
		http.Error(w, "this form has expired or did not come from the dev console; reload the console and try again", http.StatusForbidden)
		return false
	}
	return true
}

// voteForm reads a console vote form (checkForm): the request it votes on
// and its decision field; on failure it has answered.
func (c *Console) voteForm(w http.ResponseWriter, r *http.Request) (string, storage.Decision, bool) {
	if !c.checkForm(w, r) {
		return "", "", false
	}
	id := r.PostForm.Get("request")
	switch r.PostForm.Get("decision") {
	case "approve":
		return id, storage.DecisionApprove, true
	case "deny":
		return id, storage.DecisionDeny, true
	}
	http.Error(w, "decision must be approve or deny", http.StatusBadRequest)
	return "", "", false
}

func (c *Console) approver(name string) (Approver, bool) {
	for _, a := range c.opts.Approvers {
		if a.Name == name {
			return a, true
		}
	}
	return Approver{}, false
}

// ensureCookie returns the browser's CSRF cookie value, setting a new one
// when it has none.
func (c *Console) ensureCookie(w http.ResponseWriter, r *http.Request) string {
	if ck, err := r.Cookie(csrfCookie); err == nil && len(ck.Value) >= 32 {
		return ck.Value
	}
	v := randomID()
	http.SetCookie(w, &http.Cookie{Name: csrfCookie, Value: v, Path: "/dev", HttpOnly: true, SameSite: http.SameSiteStrictMode})
	return v
}

func (c *Console) csrfToken(cookie string) string {
	m := hmac.New(sha256.New, c.secret)
	m.Write([]byte(cookie))
	return hex.EncodeToString(m.Sum(nil))
}

func randomID() string {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("read random bytes: %v", err))
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

var funcs = template.FuncMap{
	"since": func(now, t time.Time) string {
		d := t.Sub(now).Round(time.Second)
		if d >= 0 {
			return "in " + d.String()
		}
		return (-d).String() + " ago"
	},
	"fmtTime": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
	"join":    strings.Join,
	"sortedParams": func(m map[string]string) [][2]string {
		var out [][2]string
		for _, k := range slices.Sorted(maps.Keys(m)) {
			out = append(out, [2]string{k, m[k]})
		}
		return out
	},
	"safeURL": func(s string) template.URL {
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
			return template.URL("about:blank")
		}
		return template.URL(u.String())
	},
}
