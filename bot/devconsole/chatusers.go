package devconsole

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/bot/chatflow"
	"github.com/signoff-dev/signoff/internal/platform"
	"github.com/signoff-dev/signoff/oidc"
	"github.com/signoff-dev/signoff/oidc/linkflow"
	"github.com/signoff-dev/signoff/storage"
)

// The chat accounts of the "Chat users" panel live on this platform and
// workspace; their user id is the dev approver's name.
const (
	ChatPlatform  = platform.Dev
	ChatWorkspace = "dev"
)

// Linker is the approver account-link flow the "Chat users" panel drives,
// the way the Slack and Teams adapters do; *linkflow.Linker implements it.
type Linker interface {
	// Begin returns a single-use sign-in link for the chat account.
	Begin(ctx context.Context, p linkflow.PlatformUser) (string, error)
	// Resolve returns the identity a vote from the chat account counts
	// under, or a *linkflow.LinkRequiredError with a sign-in link.
	Resolve(ctx context.Context, p linkflow.PlatformUser) (oidc.Identity, error)
	// BeginStepUp returns a sign-in link that casts decision on
	// requestID once the person signed in again.
	BeginStepUp(ctx context.Context, p linkflow.PlatformUser, requestID, decision string) (string, error)
}

// chatUserView is one row of the "Chat users" panel.
type chatUserView struct {
	Name   string
	Linked bool
	// Problem replaces the status when the link could not be read.
	Problem string
	Link    storage.IdentityLink
	// Who names the linked identity (email, else name, else subject).
	Who         string
	VerifiedAgo string
}

// chatUser is the chat account of the dev approver name.
func chatUser(name string) linkflow.PlatformUser {
	return linkflow.PlatformUser{Platform: ChatPlatform, Workspace: ChatWorkspace, UserID: name}
}

// chatUsers reads the link of each dev approver's chat account.
func (c *Console) chatUsers(ctx context.Context) []chatUserView {
	now := c.opts.Clock.Now()
	out := make([]chatUserView, 0, len(c.opts.Approvers))
	for _, a := range c.opts.Approvers {
		v := chatUserView{Name: a.Name}
		l, err := c.opts.Service.Link(ctx, ChatPlatform, ChatWorkspace, a.Name)
		switch {
		case errors.Is(err, approvals.ErrNotLinked):
		case err != nil:
			c.opts.Logger.Error("dev console: read link", "chat_user", a.Name, "err", err)
			v.Problem = "the link could not be read; see the server log"
		default:
			v.Linked, v.Link = true, l
			v.Who = firstNonEmpty(l.Email, l.PreferredUsername, l.Name, l.Subject)
			v.VerifiedAgo = now.Sub(l.VerifiedAt).Round(time.Second).String()
		}
		out = append(out, v)
	}
	return out
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

// startLink serves POST /dev/link: it creates a sign-in link for a chat
// user and sends the browser there.
func (c *Console) startLink(w http.ResponseWriter, r *http.Request) {
	if !c.checkForm(w, r) {
		return
	}
	name := r.PostForm.Get("chat_user")
	if _, ok := c.approver(name); !ok {
		http.Error(w, "choose one of the chat users listed in the console", http.StatusBadRequest)
		return
	}
	link, err := c.opts.Linker.Begin(r.Context(), chatUser(name))
	if err == nil {
		if u, perr := url.Parse(link); perr != nil || (u.Scheme != "http" && u.Scheme != "https") {
			err = fmt.Errorf("the sign-in link %q is not an http(s) URL", link)
		}
	}
	if err != nil {
		c.opts.Logger.Error("dev console: begin link", "chat_user", name, "err", err)
		c.flash(w, r, "no sign-in link could be made for chat:"+name+"; see the server log", "err", "", "chat-users")
		return
	}
	// A page that moves on by itself rather than a redirect: a redirect
	// answering a form post must stay within the console's CSP form-action,
	// and the sign-in may lead to an IdP on another origin.
	var buf bytes.Buffer
	if err := continueTemplate.Execute(&buf, map[string]string{"URL": link, "User": "chat:" + name}); err != nil {
		c.opts.Logger.Error("dev console: render", "err", err)
		http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
		return
	}
	setConsoleHeaders(w, "'none'")
	_, _ = w.Write(buf.Bytes())
}

// chatVote serves POST /dev/chat-vote: a vote from a chat user, counted
// under the identity its link vouches for.
func (c *Console) chatVote(w http.ResponseWriter, r *http.Request) {
	id, decision, ok := c.voteForm(w, r)
	if !ok {
		return
	}
	name := r.PostForm.Get("chat_user")
	if _, ok := c.approver(name); !ok {
		http.Error(w, "choose one of the chat users listed in the console", http.StatusBadRequest)
		return
	}
	p, label := chatUser(name), "chat:"+name
	if msg := c.opts.Clicks.Allow(p.Platform, p.Workspace, p.UserID); msg != "" {
		c.flash(w, r, fmt.Sprintf("%s's vote was not counted: %s", label, msg), "err", "", id)
		return
	}
	o := c.flow.Click(r.Context(), chatflow.Click{
		Account:   p,
		Source:    approvals.Source{Platform: ChatPlatform, Workspace: ChatWorkspace, PlatformUser: name, CallbackID: "dev-" + randomID()},
		RequestID: id,
		Decision:  decision,
		Reason:    strings.TrimSpace(r.PostForm.Get("reason")),
	})
	who := o.Approver
	as := fmt.Sprintf("%s (%s)", label, firstNonEmpty(who.Email, who.PreferredUsername, who.Name, who.Subject))
	switch o.Kind {
	case chatflow.SignInNeeded:
		c.flash(w, r, fmt.Sprintf("%s's vote was not counted: %s", label, o.Message), "err", o.SignInURL, id)
	case chatflow.IdentityUnavailable:
		switch {
		case o.Refusal != nil:
			c.opts.Logger.Error("dev console: begin step-up", "request", id, "chat_user", name, "err", o.Err)
			c.flash(w, r, fmt.Sprintf("%s's vote was not counted: %s, and no sign-in link could be made; see the server log", label, o.Refusal), "err", "", id)
		case errors.Is(o.Err, linkflow.ErrIdPUnavailable):
			c.opts.Logger.Warn("dev console: identity provider unavailable", "chat_user", name, "err", o.Err)
			c.flash(w, r, fmt.Sprintf("%s's vote was not counted: the identity provider cannot be reached; try again in a minute", label), "err", "", id)
		default:
			c.opts.Logger.Error("dev console: resolve chat user", "chat_user", name, "err", o.Err)
			c.flash(w, r, fmt.Sprintf("%s's vote was not counted: its link could not be checked; see the server log", label), "err", "", id)
		}
	case chatflow.StepUpNeeded:
		c.flash(w, r, fmt.Sprintf("%s's vote needs a fresh sign-in: %s. Open the sign-in link; the vote counts once you have signed in.", label, o.Refusal), "err", o.SignInURL, id)
	case chatflow.Refused:
		c.flash(w, r, fmt.Sprintf("%s's vote was not counted: %s", as, o.Refusal.Message), "err", "", id)
	case chatflow.Duplicate:
		c.flash(w, r, fmt.Sprintf("%s had already voted %s on %s", as, decision, id), "ok", "", id)
	case chatflow.Counted:
		c.flash(w, r, fmt.Sprintf("%s voted %s on %s; it is now %s", as, decision, id, o.Request.State), "ok", "", id)
	default: // Failed; the console asks for neither a reason dialog nor a step-up first
		c.opts.Logger.Error("dev console: chat vote", "request", id, "chat_user", name, "kind", o.Kind, "err", o.Err)
		c.flash(w, r, "the vote could not be stored; see the server log", "err", "", id)
	}
}

// flash redirects to the console with a message, an optional sign-in link
// (signed, so only links the console made are shown) and an anchor.
func (c *Console) flash(w http.ResponseWriter, r *http.Request, msg, kind, link, anchor string) {
	q := url.Values{"msg": {msg}, "kind": {kind}}
	if link != "" {
		q.Set("link", link)
		q.Set("lsig", c.linkSig(link))
	}
	http.Redirect(w, r, "/dev?"+q.Encode()+"#"+url.PathEscape(anchor), http.StatusSeeOther)
}

// flashLink returns the flash's sign-in link when its signature holds.
func (c *Console) flashLink(q url.Values) string {
	link := q.Get("link")
	if link == "" || !hmac.Equal([]byte(q.Get("lsig")), []byte(c.linkSig(link))) {
		return ""
	}
	return link
}

func (c *Console) linkSig(link string) string {
	m := hmac.New(sha256.New, c.secret)
	m.Write([]byte("signoff dev console flash link\x00" + link))
	return hex.EncodeToString(m.Sum(nil))
}

// setConsoleHeaders sets the console pages' security headers; formAction
// is the CSP form-action source list.
func setConsoleHeaders(w http.ResponseWriter, formAction string) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action "+formAction+"; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
}

// continueTemplate moves the browser on to a sign-in link.
var continueTemplate = template.Must(template.New("continue").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="referrer" content="no-referrer">
<meta http-equiv="refresh" content="0; url={{.URL}}">
<title>Signing in {{.User}} · signoff dev console</title>
</head>
<body style="font: 15px/1.45 system-ui, sans-serif; margin: 40px">
<p>Opening the sign-in link for <strong>{{.User}}</strong>…</p>
<p><a id="continue" href="{{.URL}}" rel="noreferrer">Continue to sign in</a></p>
</body>
</html>
`))
