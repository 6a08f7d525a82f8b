package linkflow

import (
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/signoff-dev/signoff/identity"
	"github.com/signoff-dev/signoff/oidc/internal/idtoken"
	"github.com/signoff-dev/signoff/storage"
)

// completionTimeout bounds the writes after a sign-in was verified. They
// run detached from the browser's request, so closing the tab at the
// wrong moment does not lose a verified link or vote.
const completionTimeout = 30 * time.Second

// How to retry, for the error pages.
const (
	retryNewLink = "Go back to the chat and click Approve or Deny again (or ask the bot to link your account): signoff sends you a new sign-in link. Each link works once, in one browser, for 10 minutes."
	retryLater   = "Nothing was changed. Try again in a minute; if it keeps failing, tell the people who run signoff."
)

// maxStartForm bounds the body of POST /link/start.
const maxStartForm = 4 << 10

// handleConfirm serves GET /link/start?id=…: a page that names the chat
// account the link is for (and, for a step-up, the vote) with a Continue
// button. It changes nothing, so a link preview or a checker fetching the
// URL cannot use the link up, and nobody reaches the IdP without seeing
// whose chat account they are about to vouch for.
func (l *Linker) handleConfirm(w http.ResponseWriter, r *http.Request) {
	if headOnly(w, r) {
		return
	}
	ctx := r.Context()
	id := r.URL.Query().Get("id")
	a, ok := l.startableAttempt(w, r, id)
	if !ok {
		return
	}
	if _, err := l.idp.get(ctx); err != nil {
		l.idpDownPage(w, id, err)
		return
	}
	csrf, err := idtoken.RandomToken()
	if err != nil {
		l.internalError(w, "make a form token", err)
		return
	}
	p := PlatformUser{Platform: a.Platform, Workspace: a.Workspace, UserID: a.PlatformUser, Conversation: a.Conversation}
	var acct ChatAccount
	if l.opts.LinkMatch != LinkMatchNone {
		// Best effort: the page names the account as its platform knows
		// it; the binding itself is checked afresh after the sign-in.
		acct = l.accountForDisplay(ctx, p)
	}
	label := accountLabel(p, acct)
	http.SetCookie(w, &http.Cookie{
		Name: csrfCookieName(id), Value: csrf, Path: l.cookiePath, MaxAge: int(l.opts.AttemptTTL / time.Second),
		HttpOnly: true, Secure: l.secure, SameSite: http.SameSiteStrictMode,
	})
	page := &pageError{
		status:  http.StatusOK,
		outcome: "confirm",
		title:   "Link your chat account",
		paragraphs: []string{
			fmt.Sprintf("You are linking %s to your company identity at %s.", label, l.opts.Issuer),
			"Continue only if this chat account is yours. After you sign in, its Approve and Deny clicks count as you, and signoff checks with the chat platform that the account and your sign-in belong to the same person.",
		},
		facts: []fact{{"Chat account", label}, {"Identity provider", l.opts.Issuer}},
		retry: "If this is not your chat account (someone sent you their link), close this tab: nobody can use the link to vote as you, and the person it belongs to must open it themselves.",
		form: &pageForm{
			Action: l.startURL, Button: "Continue to sign in",
			Fields: []fact{{"id", id}, {"csrf", csrf}},
		},
	}
	if a.Purpose == PurposeStepUp {
		page.title = "Confirm your vote"
		page.paragraphs = []string{
			fmt.Sprintf("You are about to %s request %s as %s. Signing in again at %s completes the vote.", a.Decision, a.RequestID, label, l.opts.Issuer),
			"Continue only if this chat account is yours and you meant to vote.",
		}
		page.facts = []fact{{"Chat account", label}, {"Request", a.RequestID}, {"Vote", a.Decision}}
		page.retry = "If you did not click this vote, close this tab: nothing is counted."
	}
	l.renderPage(w, page)
}

// startableAttempt reads the attempt id names and checks it may still be
// started; otherwise it answers the request itself.
func (l *Linker) startableAttempt(w http.ResponseWriter, r *http.Request, id string) (storage.LinkAttempt, bool) {
	ctx := r.Context()
	if !idtoken.ValidToken(id) {
		l.renderPage(w, errorPage(http.StatusBadRequest, "This sign-in link is incomplete",
			"The link carries no valid id; it may have been cut short when it was copied.", retryNewLink))
		return storage.LinkAttempt{}, false
	}
	var a storage.LinkAttempt
	err := l.opts.Store.View(ctx, func(tx storage.ReadTx) error {
		var err error
		a, err = tx.LinkAttempt(id)
		return err
	})
	if errors.Is(err, storage.ErrNotFound) {
		l.renderPage(w, usedPage())
		return a, false
	}
	if err != nil {
		l.internalError(w, "read sign-in attempt", err)
		return a, false
	}
	if pe := l.checkStartable(a); pe != nil {
		if pe.status == http.StatusGone {
			l.deleteAttempt(ctx, id)
		}
		l.renderPage(w, pe)
		return a, false
	}
	return a, true
}

func (l *Linker) idpDownPage(w http.ResponseWriter, id string, err error) {
	w.Header().Set("Retry-After", "60")
	l.renderPage(w, errorPage(http.StatusServiceUnavailable, "The identity provider cannot be reached",
		fmt.Sprintf("signoff could not reach %s to start your sign-in.", l.opts.Issuer),
		"Nothing was changed and this link still works until it expires: open it again in a minute. If it keeps failing, tell the people who run signoff."))
	l.log.Warn("sign-in could not start: identity provider unavailable", "attempt", attemptRef(id), "err", err)
}

// sameOriginPost reports whether a form post comes from signoff's own page:
// Sec-Fetch-Site, when the browser sends it, says same-origin, and so does
// the Origin header when it names one ("null" is what a page with
// Referrer-Policy no-referrer sends; the SameSite=Strict form-token cookie
// still has to match).
func (l *Linker) sameOriginPost(r *http.Request) bool {
	if o := r.Header.Get("Origin"); o != "" && o != "null" && o != originOf(l.startURL) {
		return false
	}
	if s := r.Header.Get("Sec-Fetch-Site"); s != "" && s != "same-origin" {
		return false
	}
	return true
}

// handleStart serves POST /link/start (the confirmation page's Continue):
// it checks the form token, binds the attempt to this browser with a
// cookie and sends the browser to the IdP.
func (l *Linker) handleStart(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	r.Body = http.MaxBytesReader(w, r.Body, maxStartForm)
	if err := r.ParseForm(); err != nil {
		l.renderPage(w, errorPage(http.StatusBadRequest, "This form could not be read",
			"signoff expected the confirmation form of a sign-in link.", retryNewLink))
		return
	}
	id := r.PostForm.Get("id")
	var cookie string
	if idtoken.ValidToken(id) {
		if c, err := r.Cookie(csrfCookieName(id)); err == nil {
			cookie = c.Value
		}
	}
	form := r.PostForm.Get("csrf")
	if !l.sameOriginPost(r) || cookie == "" || subtle.ConstantTimeCompare([]byte(cookie), []byte(form)) != 1 {
		l.log.Info("sign-in confirmation refused: not posted from signoff's own page", "attempt", attemptRef(id))
		l.renderPage(w, errorPage(http.StatusForbidden, "This confirmation did not come from signoff's page",
			"The Continue button must be pressed on the page signoff showed for this link, in the same browser (with cookies allowed). Nothing was changed.",
			"Open the sign-in link again and press Continue there."))
		return
	}
	a, ok := l.startableAttempt(w, r, id)
	if !ok {
		return
	}

	// Everything that can fail for reasons not the person's (the IdP is
	// down, the policy cannot be read) comes before the link is used up,
	// so the same link works once the cause is gone.
	d, err := l.idp.get(ctx)
	if err != nil {
		l.idpDownPage(w, id, err)
		return
	}
	params := authParams{}
	if a.Purpose == PurposeStepUp {
		params.stepUp = true
		if l.opts.StepUpPolicy != nil {
			su, err := l.opts.StepUpPolicy(ctx, a.RequestID)
			if err != nil {
				l.internalError(w, "read the step-up rule of request "+a.RequestID, err)
				return
			}
			if su != nil {
				params.maxAge, params.acrValues = su.MaxAge, su.ACRValues
			}
		}
	}
	var secrets [3]string
	for i := range secrets {
		if secrets[i], err = idtoken.RandomToken(); err != nil {
			l.internalError(w, "make sign-in secrets", err)
			return
		}
	}
	params.state = id + "." + secrets[0]
	params.nonce = secrets[1]
	params.verifier = oauth2.GenerateVerifier()
	cookieSecret := secrets[2]

	now := l.clock.Now().UTC()
	var pe *pageError
	err = l.opts.Store.Update(ctx, func(tx storage.Tx) error {
		a, p, err := readAttempt(tx, id)
		if pe = p; pe != nil || err != nil {
			return err
		}
		if pe = l.checkStartable(a); pe != nil {
			return nil
		}
		a.State, a.Nonce, a.PKCEVerifier = params.state, params.nonce, params.verifier
		a.BrowserBinding = browserBinding(cookieSecret)
		a.StartedAt = now
		// From here the person has AttemptTTL to finish signing in.
		a.ExpiresAt = now.Add(l.opts.AttemptTTL)
		return tx.PutLinkAttempt(a)
	})
	if err != nil {
		l.internalError(w, "start sign-in attempt", err)
		return
	}
	if pe != nil {
		l.renderPage(w, pe)
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name:     cookieName(id),
		Value:    cookieSecret,
		Path:     l.cookiePath,
		MaxAge:   int(l.opts.AttemptTTL / time.Second),
		HttpOnly: true,
		Secure:   l.secure,
		SameSite: http.SameSiteLaxMode,
	})
	setPageHeaders(w)
	l.log.Info("sign-in started", "purpose", a.Purpose, "platform", a.Platform, "workspace", a.Workspace, "platform_user", a.PlatformUser, "attempt", attemptRef(id))
	http.Redirect(w, r, d.authURL(params), http.StatusFound)
}

// headOnly answers a HEAD request (link checkers, previews) without
// touching the attempt, so that it cannot use a sign-in link up.
func headOnly(w http.ResponseWriter, r *http.Request) bool {
	if r.Method != http.MethodHead {
		return false
	}
	setPageHeaders(w)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	return true
}

// checkStartable refuses an attempt that is expired or already opened.
func (l *Linker) checkStartable(a storage.LinkAttempt) *pageError {
	if !l.clock.Now().Before(a.ExpiresAt) {
		return expiredPage()
	}
	if !a.StartedAt.IsZero() {
		return errorPage(http.StatusConflict, "This sign-in link was already opened",
			"It was opened before, in this browser or another one. A link works once, in one browser, so that nobody else can complete your sign-in.", retryNewLink)
	}
	return nil
}

// handleCallback serves GET /link/callback: the IdP's answer.
func (l *Linker) handleCallback(w http.ResponseWriter, r *http.Request) {
	if headOnly(w, r) {
		return
	}
	ctx := r.Context()
	q := r.URL.Query()
	state := q.Get("state")
	id, _, _ := strings.Cut(state, ".")
	if !idtoken.ValidToken(id) {
		id = ""
	}
	if idpErr := q.Get("error"); idpErr != "" {
		if id != "" {
			// The answer ends this sign-in, if it is really this browser's.
			if _, _, used, _ := l.consume(ctx, r, id, state); used {
				clearCookie(w, id, l.cookiePath, l.secure)
			}
		}
		l.renderPage(w, idpErrorPage(idpErr, q.Get("error_description")))
		l.log.Info("identity provider answered a sign-in with an error", "error", idtoken.Quote(idpErr), "attempt", attemptRef(id))
		return
	}
	code := q.Get("code")
	if id == "" || code == "" {
		l.renderPage(w, errorPage(http.StatusBadRequest, "This sign-in answer is incomplete",
			"The address lacks the state or code the identity provider sends back, so it cannot belong to a sign-in signoff started.", retryNewLink))
		return
	}
	a, pe, used, err := l.consume(ctx, r, id, state)
	if used {
		clearCookie(w, id, l.cookiePath, l.secure)
	}
	if err != nil {
		l.internalError(w, "use up sign-in attempt", err)
		return
	}
	if pe != nil {
		l.log.Info("sign-in answer refused", "attempt", attemptRef(id), "status", pe.status, "why", pe.title)
		l.renderPage(w, pe)
		return
	}

	// The attempt is used up; what follows must finish even if the
	// browser goes away.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), completionTimeout)
	defer cancel()
	log := l.log.With("purpose", a.Purpose, "platform", a.Platform, "workspace", a.Workspace, "platform_user", a.PlatformUser, "attempt", attemptRef(id))
	d, err := l.idp.get(ctx)
	if err == nil {
		var res *signInResult
		res, err = l.idp.exchange(ctx, d, code, a.PKCEVerifier, a.Nonce)
		if err == nil {
			switch a.Purpose {
			case PurposeStepUp:
				l.completeStepUp(ctx, w, a, res)
			default:
				l.completeLink(ctx, w, a, res)
			}
			return
		}
	}
	var refused *idpRefusal
	if a.Purpose != PurposeStepUp {
		if errors.As(err, &refused) {
			l.counters.linkOutcome(LinkOutcomeIdPRefused)
		} else {
			l.counters.linkOutcome(LinkOutcomeIdPUnavailable)
		}
	}
	if errors.As(err, &refused) {
		log.Warn("sign-in refused: the identity provider's answer did not verify", "why", refused.reason)
		l.renderPage(w, errorPage(http.StatusForbidden, "Your sign-in could not be verified",
			"signoff refused the identity provider's answer: "+refused.reason+". Nothing was linked or counted.", retryNewLink))
		return
	}
	log.Warn("sign-in failed: identity provider unavailable", "err", err)
	l.renderPage(w, errorPage(http.StatusBadGateway, "The identity provider did not answer",
		fmt.Sprintf("signoff could not complete your sign-in at %s. Nothing was linked or counted.", l.opts.Issuer),
		"Wait a minute, then go back to the chat and click again for a new sign-in link. If it keeps failing, tell the people who run signoff."))
}

// consume checks that the answer belongs to a started attempt (state) and
// comes from the browser that started it (cookie), and uses the attempt
// up (used reports whether it is gone now). An answer that fails the state
// check leaves the attempt and the cookie alone (it did not come from the
// IdP for this sign-in); one with the right state but from another browser
// uses it up, since its state has leaked.
func (l *Linker) consume(ctx context.Context, r *http.Request, id, state string) (_ storage.LinkAttempt, _ *pageError, used bool, _ error) {
	var cookieValue string
	if c, err := r.Cookie(cookieName(id)); err == nil {
		cookieValue = c.Value
	}
	now := l.clock.Now()
	var (
		got storage.LinkAttempt
		pe  *pageError
	)
	err := l.opts.Store.Update(ctx, func(tx storage.Tx) error {
		got, used = storage.LinkAttempt{}, true
		a, p, err := readAttempt(tx, id)
		if pe = p; pe != nil || err != nil {
			return err
		}
		switch {
		case !now.Before(a.ExpiresAt):
			pe = expiredPage()
			return tx.DeleteLinkAttempt(id)
		case a.StartedAt.IsZero() || subtle.ConstantTimeCompare([]byte(a.State), []byte(state)) != 1:
			pe = errorPage(http.StatusBadRequest, "This sign-in answer does not match",
				"Its state does not belong to the sign-in signoff started, so it may have been forged or tampered with. Nothing was linked or counted.", retryNewLink)
			used = false
			return nil
		case cookieValue == "":
			pe = errorPage(http.StatusForbidden, "This sign-in was finished in another browser",
				"The sign-in link was opened in one browser but the identity provider's answer arrived in another (or cookies are blocked), so signoff cannot tell that it is you. Nothing was linked or counted, and this link no longer works.",
				"Go back to the chat, click again for a new sign-in link, and open it in the browser where you then sign in. Allow cookies for signoff.")
			return tx.DeleteLinkAttempt(id)
		case subtle.ConstantTimeCompare([]byte(browserBinding(cookieValue)), []byte(a.BrowserBinding)) != 1:
			pe = errorPage(http.StatusForbidden, "This sign-in belongs to another browser",
				"The identity provider's answer is for a sign-in that another browser started. Nothing was linked or counted, and this link no longer works.", retryNewLink)
			return tx.DeleteLinkAttempt(id)
		}
		got = a
		return tx.DeleteLinkAttempt(id)
	})
	if err != nil {
		return storage.LinkAttempt{}, nil, false, err
	}
	return got, pe, used, nil
}

// completeLink stores the link a verified sign-in made, once the chat
// platform confirmed that the account and the sign-in belong to the same
// person (checkBinding); otherwise it records the refusal and links
// nothing.
func (l *Linker) completeLink(ctx context.Context, w http.ResponseWriter, a storage.LinkAttempt, res *signInResult) {
	now := l.clock.Now().UTC()
	c := res.claims
	p := PlatformUser{Platform: a.Platform, Workspace: a.Workspace, UserID: a.PlatformUser, Conversation: a.Conversation}
	matchedBy, acct, refusal := l.checkBinding(ctx, p, c)
	if refusal != nil {
		l.refuseBinding(ctx, w, p, acct, c, refusal)
		return
	}
	link := identity.NewLink(p.Account(), c.asIdentity(now, l.opts.AssumeEmailVerified), now)
	link.MatchedBy = matchedBy
	if l.sealer != nil && res.refreshToken != "" {
		sealed, err := l.sealer.seal(res.refreshToken, link)
		if err != nil {
			l.internalError(w, "seal refresh token", err)
			return
		}
		link.RefreshToken = sealed
	}
	if err := l.opts.Links.SaveLink(ctx, link, a.Conversation); err != nil {
		l.internalError(w, "save link", err)
		return
	}
	l.counters.linkOutcome(LinkOutcomeLinked)
	var noRefresh string
	if l.sealer != nil && res.refreshToken == "" {
		// Refresh tokens were asked for (offline_access) but none came.
		l.log.Warn("the identity provider issued no refresh token for a new link: groups cannot be re-checked in the background, so the approver signs in again whenever they are older than idp.groups_max_age; check that the client may use offline_access and refresh tokens at the identity provider",
			"platform", a.Platform, "workspace", a.Workspace, "platform_user", a.PlatformUser, "subject", c.Subject)
		noRefresh = fmt.Sprintf("The identity provider did not let signoff keep your sign-in fresh (no refresh token), so you will be asked to sign in again once your groups are older than %s.", l.opts.GroupsMaxAge)
	}
	paragraphs := []string{
		fmt.Sprintf("Your %s is now linked to %s, as signed in at %s.", accountLabel(p, acct), displayOf(c), c.Issuer),
		"Your clicks on Approve and Deny from that chat account now count as yours. You can close this tab, go back to the chat and click again.",
	}
	if noRefresh != "" {
		paragraphs = append(paragraphs, noRefresh)
	}
	l.renderPage(w, &pageError{
		status:     http.StatusOK,
		outcome:    "linked",
		title:      "Account linked",
		paragraphs: paragraphs,
		facts: []fact{
			{"Chat platform", a.Platform},
			{"Workspace", a.Workspace},
			{"Chat user", a.PlatformUser},
			{"Signed in as", displayOf(c)},
			{"Subject", c.Subject},
			{"Groups", groupsText(c.Groups)},
			{"Proved by", matchedByText(matchedBy)},
			{"Linked at", idtoken.FormatTime(now)},
		},
	})
}

// refuseBinding records a refused binding and explains it: which chat
// account the link was for, who signed in, why they do not match and what
// to do.
func (l *Linker) refuseBinding(ctx context.Context, w http.ResponseWriter, p PlatformUser, acct ChatAccount, c idClaims, r *identity.LinkRefusal) {
	// Counted whether or not the audit record can be written.
	l.counters.linkOutcome(string(r.Reason))
	if err := l.opts.Links.RefuseLink(ctx, *r); err != nil {
		l.log.Error("could not record a refused link", "platform", p.Platform, "platform_user", p.UserID, "err", err)
	}
	status, title := http.StatusForbidden, "This chat account was not linked to you"
	what := "Sign-in links work only for the person who owns the chat account they were sent to: send the link back unused, and if someone asked you to open theirs, tell the people who run signoff."
	switch r.Reason {
	case RefusalLookupFailed:
		status, title = http.StatusServiceUnavailable, "signoff could not confirm whose chat account this is"
		what = "Nothing was linked. Wait a minute, go back to the chat and click again for a new sign-in link. If it keeps failing, tell the people who run signoff."
		w.Header().Set("Retry-After", "60")
	case RefusalNoChatEmail, RefusalNoIdPEmail, RefusalEmailUnverif, RefusalNoDirectory:
		what = "Nothing was linked. signoff links a chat account only when the chat platform and the identity provider name the same verified email; ask the people who run signoff to fix the missing email (or the link settings)."
	}
	l.renderPage(w, &pageError{
		status:  status,
		outcome: "refused",
		title:   title,
		paragraphs: []string{
			fmt.Sprintf("This sign-in link was for %s, but the sign-in was %s: %s.", accountLabel(p, acct), displayOf(c), r.Message),
			"Nothing was linked, and the owner of the chat account was told.",
		},
		facts: []fact{
			{"Link was for", accountLabel(p, acct)},
			{"Chat account's email", cmp.Or(r.AccountEmail, "(none)")},
			{"Signed in as", displayOf(c)},
			{"Why", r.Message},
		},
		retry: what,
	})
}

// matchedByText says how a binding was proved, for the linked page.
func matchedByText(by string) string {
	switch by {
	case MatchedByEmail:
		return "the chat account's email equals your verified email"
	case MatchedByOID:
		return "the chat account's Microsoft Entra object id equals your oid"
	}
	return "not checked (idp.link_match: none)"
}

// completeStepUp casts the vote a step-up sign-in was for.
// stepUpClockSkew is how far the IdP's clock may be behind signoff's
// when a step-up sign-in's auth_time is compared with the start of the
// step-up.
const stepUpClockSkew = time.Minute

func (l *Linker) completeStepUp(ctx context.Context, w http.ResponseWriter, a storage.LinkAttempt, res *signInResult) {
	p := PlatformUser{Platform: a.Platform, Workspace: a.Workspace, UserID: a.PlatformUser, Conversation: a.Conversation}
	c := res.claims
	var link storage.IdentityLink
	err := l.opts.Store.View(ctx, func(tx storage.ReadTx) error {
		var err error
		link, err = tx.Link(p.Platform, p.Workspace, p.UserID)
		return err
	})
	notLinked := errors.Is(err, storage.ErrNotFound)
	if err != nil && !notLinked {
		l.internalError(w, "read link for step-up", err)
		return
	}
	now := l.clock.Now()
	signedIn := c.asIdentity(now.UTC(), l.opts.AssumeEmailVerified)
	// An unproven link (re-checked at BeginStepUp, but the check may have
	// been skipped or the link changed since) cannot carry a vote either.
	if notLinked || link.Stale || link.Issuer != c.Issuer || now.Sub(link.LinkedAt) > l.opts.LinkMaxAge || l.unproven(link) {
		msg := "your chat account is no longer linked to a valid sign-in, so this sign-in cannot stand in for it"
		l.refuseStepUp(ctx, identity.StepUpRefusal{Attempt: a, Identity: signedIn, Reason: StepUpRefusalLinkStale, Message: msg, Audit: true})
		l.renderPage(w, errorPage(http.StatusForbidden, "Your vote was not counted", upperFirst(msg)+".",
			"Go back to the chat and click again: signoff sends you a link to link your account first."))
		return
	}
	if link.Subject != c.Subject {
		l.log.Warn("step-up sign-in by another identity than the linked one refused", "platform", p.Platform, "workspace", p.Workspace, "platform_user", p.UserID, "linked_subject", link.Subject, "signed_in_subject", c.Subject)
		msg := fmt.Sprintf("the sign-in was %s, but this chat account is linked to another identity; a vote counts only for the person the chat account is linked to", displayOf(c))
		l.refuseStepUp(ctx, identity.StepUpRefusal{Attempt: a, Identity: signedIn, Reason: StepUpRefusalIdentityMismatch, Message: msg, Audit: true})
		l.renderPage(w, errorPage(http.StatusForbidden, "Your vote was not counted", upperFirst(msg)+".",
			"Go back to the chat, click again for a new link, and sign in with the account your chat account is linked to."))
		return
	}
	// A step-up is a sign-in made for it: an IdP that ignores
	// prompt=login answers from the session it already has, and its
	// auth_time says so. (Without auth_time approvals refuses the vote.)
	if !c.AuthTime.IsZero() && !a.StartedAt.IsZero() && c.AuthTime.Before(a.StartedAt.Add(-stepUpClockSkew)) {
		msg := fmt.Sprintf("the identity provider answered from your sign-in of %s (%s ago) instead of asking you to sign in again; a step-up vote needs a fresh sign-in",
			c.AuthTime.UTC().Format(time.RFC3339), now.Sub(c.AuthTime).Round(time.Second))
		l.refuseStepUp(ctx, identity.StepUpRefusal{Attempt: a, Identity: signedIn, Reason: StepUpRefusalNotFresh, Message: msg, Audit: true})
		l.renderPage(w, errorPage(http.StatusForbidden, "Your vote was not counted", upperFirst(msg)+".",
			"Sign out at your identity provider, then go back to the chat and click again. If this keeps happening, tell the people who run signoff: the identity provider ignores prompt=login."))
		return
	}
	// The sign-in is the linked person's; the chat account the vote comes
	// from must still be theirs too (recheckBinding), or this step-up
	// would count a vote from an account handed to someone else and push
	// the next check a groups_max_age away.
	if err := l.recheckBinding(ctx, p, link, "step-up"); err != nil {
		var refused *refreshRefusedError
		if !errors.As(err, &refused) || refused.markErr != nil {
			l.log.Warn("step-up refused for now: the chat account could not be checked", "platform", p.Platform, "workspace", p.Workspace, "platform_user", p.UserID, "err", err)
			w.Header().Set("Retry-After", "60")
			l.renderPage(w, errorPage(http.StatusServiceUnavailable, "Your vote was not counted yet",
				"signoff could not ask the chat platform whether this chat account is still yours, so it did not count the vote.",
				"Go back to the chat and click again in a minute."))
			return
		}
		l.refuseStepUp(ctx, identity.StepUpRefusal{Attempt: a, Identity: signedIn, Reason: StepUpRefusalLinkStale, Message: bindingChangedMessage, Audit: true})
		l.renderPage(w, errorPage(http.StatusForbidden, "Your vote was not counted", upperFirst(bindingChangedMessage)+".",
			"Go back to the chat and click again: signoff sends you a link to link your account first."))
		return
	}
	updated := link
	updated.Groups = c.Groups
	updated.Email, updated.EmailUnverified = l.keptEmail(link, c)
	updated.Name = cmp.Or(c.Name, link.Name)
	updated.PreferredUsername = cmp.Or(c.PreferredUsername, link.PreferredUsername)
	if len(c.PersonClaims) > 0 {
		updated.PersonClaims = c.PersonClaims
	}
	updated.VerifiedAt = now.UTC()
	updated.AuthTime, updated.ACR, updated.AMR = c.AuthTime, c.ACR, c.AMR
	if l.sealer != nil && res.refreshToken != "" {
		if updated.RefreshToken, err = l.sealer.seal(res.refreshToken, updated); err != nil {
			l.internalError(w, "seal refresh token", err)
			return
		}
	}
	if err := l.opts.Links.RefreshLink(ctx, updated); err != nil {
		l.internalError(w, "store step-up sign-in", err)
		return
	}
	msg, err := l.opts.OnStepUp(ctx, a, identity.FromLink(updated))
	if err != nil {
		if msg == "" {
			l.internalError(w, "record step-up vote on "+a.RequestID, err)
			return
		}
		l.log.Info("step-up vote refused", "platform", p.Platform, "workspace", p.Workspace, "platform_user", p.UserID, "request", a.RequestID, "err", err)
		// approvals audited the refusal; the chat account is told too.
		l.refuseStepUp(ctx, identity.StepUpRefusal{Attempt: a, Identity: identity.FromLink(updated), Reason: StepUpRefusalVoteRefused, Message: msg})
		l.renderPage(w, errorPage(http.StatusForbidden, "Your vote was not counted", msg,
			"If the message says what to change, do so, then go back to the chat and click again for a new sign-in link."))
		return
	}
	l.log.Info("step-up vote recorded", "platform", p.Platform, "workspace", p.Workspace, "platform_user", p.UserID, "request", a.RequestID, "decision", a.Decision)
	l.renderPage(w, &pageError{
		status:     http.StatusOK,
		outcome:    "voted",
		title:      "Vote recorded",
		paragraphs: []string{msg, "You can close this tab and go back to the chat."},
		facts: []fact{
			{"Request", a.RequestID},
			{"Your vote", a.Decision},
			{"Signed in as", displayOf(c)},
			{"Signed in at", idtoken.FormatTime(c.AuthTime)},
		},
	})
}

// refuseStepUp records a step-up whose vote was not cast; a failure to
// record is logged (the page still tells the person).
func (l *Linker) refuseStepUp(ctx context.Context, r identity.StepUpRefusal) {
	if err := l.opts.Links.RefuseStepUp(ctx, r); err != nil {
		l.log.Error("could not record a refused step-up", "platform", r.Attempt.Platform, "platform_user", r.Attempt.PlatformUser, "request", r.Attempt.RequestID, "err", err)
	}
}

// upperFirst capitalizes the first letter of an ASCII sentence.
func upperFirst(s string) string {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}

func (l *Linker) deleteAttempt(ctx context.Context, id string) {
	err := l.opts.Store.Update(ctx, func(tx storage.Tx) error {
		if err := tx.DeleteLinkAttempt(id); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return err
		}
		return nil
	})
	if err != nil {
		l.log.Warn("removing an expired sign-in attempt failed", "attempt", attemptRef(id), "err", err)
	}
}

func (l *Linker) internalError(w http.ResponseWriter, what string, err error) {
	l.log.Error("account-link flow failed", "step", what, "err", err)
	l.renderPage(w, errorPage(http.StatusInternalServerError, "Something went wrong on signoff's side",
		"signoff could not finish this step because of an internal error; the details are in its log.",
		"Go back to the chat and click again for a new sign-in link. If it keeps failing, tell the people who run signoff."))
}

// csrfCookieName is the per-attempt cookie that the confirmation form's
// token must match (SameSite=Strict: a cross-site post never carries it).
func csrfCookieName(id string) string {
	sum := sha256.Sum256([]byte("signoff-link-csrf\x00" + id))
	return "signoff_confirm_" + hex.EncodeToString(sum[:8])
}

// originOf is the scheme://host of an absolute URL; "" when it has none.
func originOf(u string) string {
	p, err := url.Parse(u)
	if err != nil || p.Scheme == "" || p.Host == "" {
		return ""
	}
	return p.Scheme + "://" + p.Host
}

// cookieName is the per-attempt cookie, so that two sign-ins in one
// browser (a link and a step-up) do not disturb each other.
func cookieName(id string) string {
	sum := sha256.Sum256([]byte("signoff-link-cookie\x00" + id))
	return "signoff_link_" + hex.EncodeToString(sum[:8])
}

// browserBinding is what the store keeps of the cookie: its digest.
func browserBinding(cookieValue string) string {
	sum := sha256.Sum256([]byte("signoff-browser-binding\x00" + cookieValue))
	return hex.EncodeToString(sum[:])
}

func clearCookie(w http.ResponseWriter, id, path string, secure bool) {
	http.SetCookie(w, &http.Cookie{Name: cookieName(id), Value: "", Path: path, MaxAge: -1, HttpOnly: true, Secure: secure, SameSite: http.SameSiteLaxMode})
}

func displayOf(c idClaims) string {
	switch {
	case c.Email != "":
		return c.Email
	case c.PreferredUsername != "":
		return c.PreferredUsername
	case c.Name != "":
		return c.Name
	}
	return c.Subject
}

func groupsText(g []string) string {
	if len(g) == 0 {
		return "(none)"
	}
	return strings.Join(g, ", ")
}

// readAttempt reads the link attempt id names. A missing one (used up, or
// never made) is no error but the page usedPage says.
func readAttempt(tx storage.ReadTx, id string) (storage.LinkAttempt, *pageError, error) {
	a, err := tx.LinkAttempt(id)
	if errors.Is(err, storage.ErrNotFound) {
		return a, usedPage(), nil
	}
	return a, nil, err
}

func usedPage() *pageError {
	return errorPage(http.StatusNotFound, "This sign-in link is not valid any more",
		"It was already used, or it never existed. Each sign-in link works once.", retryNewLink)
}

func expiredPage() *pageError {
	return errorPage(http.StatusGone, "This sign-in link has expired",
		"Sign-in links work for a short time only (10 minutes by default), so that an old link found later cannot be used.", retryNewLink)
}

// idpErrorPage explains an error answer (RFC 6749 §4.1.2.1) from the IdP.
// Whatever the error, the status is 4xx: the answer arrives through the
// browser, which anyone can send, so it is never treated as signoff's or
// the IdP's failure.
func idpErrorPage(code, desc string) *pageError {
	what := "The identity provider did not sign you in; it answered " + idtoken.Quote(code)
	if desc != "" {
		what += " (" + idtoken.Quote(desc) + ")"
	}
	what += ". Nothing was linked or counted."
	switch {
	case code == "access_denied":
		return errorPage(http.StatusForbidden, "Sign-in cancelled or refused", what,
			"If you cancelled by mistake, go back to the chat and click again for a new sign-in link. If the identity provider refused you, ask its administrators whether you may use signoff.")
	case strings.HasSuffix(code, "_required"):
		return errorPage(http.StatusForbidden, "The identity provider did not sign you in", what, retryNewLink)
	case code == "server_error" || code == "temporarily_unavailable":
		return errorPage(http.StatusBadRequest, "The identity provider had a problem", what,
			"Wait a minute, then go back to the chat and click again for a new sign-in link. If it keeps failing, tell the people who run signoff.")
	}
	return errorPage(http.StatusBadRequest, "The identity provider did not sign you in", what,
		retryNewLink+" If it keeps failing, tell the people who run signoff: the identity provider may not accept signoff's settings.")
}
