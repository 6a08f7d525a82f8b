// Package loadrig starts signoff inside the calling process for the load
// driver (cmd/signoff-load) and its tests: the front door on a loopback
// listener over a bbolt store in a directory the caller owns, trusting a
// requester issuer of its own, and, for the click modes, the Slack or
// Teams adapter with its outbox running against a stand-in of the
// platform on loopback (slack-go's slacktest, teamstest's Bot Framework).
//
// The adapters resolve clicks through the link flow's Linker, as serve
// wires them. Pretend approvers are linked directly in the store, as a
// completed sign-in leaves them (groups confirmed now, the binding proved
// by email), so a click never reaches the IdP. Pending requests are
// created, and their cards posted, before the load begins. The action
// needs one approval more than there are approvers, so requests stay
// pending: every click Click builds is a vote that counts or, once each
// approver has voted on each request, the same vote again.
//
// The per-account click limit (limits.clicks_per_minute) is off: a few
// pretend approvers click far more often than people do.
//
// It is for tools and tests, never for the server: the signing secret is
// fixed and the stand-ins' keys are made in process. Nothing it starts
// listens on, or calls, anything but loopback.
package loadrig

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/slack-go/slack/slacktest"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/bot"
	"github.com/signoff-dev/signoff/bot/cards"
	"github.com/signoff-dev/signoff/bot/slackbot"
	"github.com/signoff-dev/signoff/bot/teamsbot"
	"github.com/signoff-dev/signoff/bot/teamsbot/teamstest"
	"github.com/signoff-dev/signoff/identity"
	"github.com/signoff-dev/signoff/internal/barebolt"
	"github.com/signoff-dev/signoff/oidc"
	"github.com/signoff-dev/signoff/oidc/devissuer"
	"github.com/signoff-dev/signoff/oidc/linkflow"
	"github.com/signoff-dev/signoff/policy"
	"github.com/signoff-dev/signoff/storage"
	"github.com/signoff-dev/signoff/storage/boltstore"
)

// The platforms Options.Platform names; "" starts the API alone.
const (
	Slack = slackbot.Platform
	Teams = teamsbot.Platform
)

// Action is the action the rig's requests ask for, with Params.
const Action = "deploy-prod"

// Params are the parameters of every request the rig creates, as the JSON
// object POST /v1/requests takes.
const Params = `{"service":"api","version":"1.4.2"}`

// DefaultApprovers is Options.Approvers when zero.
const DefaultApprovers = 8

const (
	requesterName = "load"
	audience      = "signoff"
	issuerPath    = "/load/oidc"
	slackSecret   = "load-signing-secret-0123456789abcdef"
	slackTeam     = "T0LOAD"
	slackChannel  = "C0LOAD"
	teamsChannel  = "19:load0channel@thread.tacv2"
	approverGroup = "sre"
	// cardsTimeout bounds the wait for the pending requests' cards.
	cardsTimeout = 2 * time.Minute
)

// Options configure Start.
type Options struct {
	// Platform is Slack, Teams or "" (the API alone, for creates).
	Platform string
	// Dir holds the store and the requester issuer's key; the caller
	// removes it.
	Dir string
	// Requests is how many pending requests Start creates for the clicks
	// (at least one when Platform is set).
	Requests int
	// Approvers is how many approvers are linked; default
	// DefaultApprovers.
	Approvers int
	// Logger receives the server's log; default: discarded.
	Logger *slog.Logger
}

// Rig is signoff running in this process. Its methods are safe for
// concurrent use.
type Rig struct {
	opts   Options
	base   string
	store  *boltstore.Store
	svc    *approvals.Service
	http   *http.Server
	served chan error
	issuer *devissuer.Issuer
	loops  context.CancelFunc
	loopWG sync.WaitGroup

	slack    *slackbot.Bot
	slackAPI *slacktest.Server
	teams    *teamsbot.Bot
	bf       *teamstest.Server
	bfToken  string
	place    teamstest.Place

	// ids are the pending requests; cardIDs their cards' message ids on
	// the platform.
	ids     []string
	cardIDs []string
}

// Start builds and starts the server, links the approvers, creates the
// pending requests and waits until their cards are posted. On error
// everything started is stopped.
func Start(ctx context.Context, opts Options) (_ *Rig, err error) {
	if opts.Approvers <= 0 {
		opts.Approvers = DefaultApprovers
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	switch opts.Platform {
	case "", Slack, Teams:
	default:
		return nil, fmt.Errorf("loadrig: unknown platform %q", opts.Platform)
	}
	if opts.Platform != "" && opts.Requests < 1 {
		return nil, errors.New("loadrig: the click modes need at least one pending request")
	}
	r := &Rig{opts: opts, served: make(chan error, 1)}
	defer func() {
		if err != nil {
			_, _ = r.Stop(context.Background())
		}
	}()
	if r.store, err = boltstore.Open(filepath.Join(opts.Dir, "signoff.db"), boltstore.Options{}); err != nil {
		return nil, fmt.Errorf("loadrig: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("loadrig: %w", err)
	}
	r.base = "http://" + ln.Addr().String()
	r.http = &http.Server{ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(opts.Logger.Handler(), slog.LevelWarn)}
	r.svc = approvals.New(r.store, r.policy(), approvals.Options{Logger: opts.Logger, Platforms: platforms(opts.Platform)})
	front, err := r.frontDoor()
	if err != nil {
		ln.Close()
		return nil, err
	}
	r.http.Handler = front
	loopCtx, cancel := context.WithCancel(context.Background())
	r.loops = cancel
	if err := r.startAdapter(ctx, front, loopCtx); err != nil {
		ln.Close()
		return nil, err
	}
	go func() { r.served <- r.http.Serve(ln) }()
	if opts.Platform == "" {
		return r, nil
	}
	if err := r.linkApprovers(ctx); err != nil {
		return nil, err
	}
	if err := r.createPending(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

// platforms lists the chat platforms the service queues cards for.
func platforms(p string) []string {
	if p == "" {
		return nil
	}
	return []string{p}
}

// policy is the one action: requested by the rig's issuer, approved by
// one approval more than there are approvers, announced on the platform.
func (r *Rig) policy() *policy.Policy {
	service, err := policy.CompilePattern("[a-z-]+")
	if err != nil {
		panic(err) // a constant pattern
	}
	var notify policy.Notify
	switch r.opts.Platform {
	case Slack:
		notify.Slack = []string{slackChannel}
	case Teams:
		notify.Teams = []string{teamsChannel}
	}
	return &policy.Policy{Actions: map[string]*policy.Action{Action: {
		Name: Action, Description: "Deploy a service to production",
		Requesters: []policy.RequesterRule{{Issuer: requesterName}},
		Params: map[string]policy.Param{
			"service": {Required: true, Pattern: service},
			"version": {Required: true},
		},
		Approvers: policy.Approvers{Groups: []string{approverGroup}, MinApprovals: r.opts.Approvers + 1},
		TTL:       24 * time.Hour,
		Notify:    notify,
	}}}
}

// frontDoor is the HTTP front door trusting the rig's requester issuer,
// which it serves at issuerPath.
func (r *Rig) frontDoor() (*bot.Server, error) {
	iss, err := devissuer.New(r.base+issuerPath, filepath.Join(r.opts.Dir, "issuer-key.pem"))
	if err != nil {
		return nil, fmt.Errorf("loadrig: %w", err)
	}
	r.issuer = iss
	verifier, err := oidc.NewRequesterVerifier([]oidc.TrustedIssuer{iss.TrustedIssuer(requesterName, audience)}, oidc.VerifierOptions{Logger: r.opts.Logger})
	if err != nil {
		return nil, fmt.Errorf("loadrig: %w", err)
	}
	front := bot.New(bot.Options{Service: r.svc, Store: r.store, Logger: r.opts.Logger, Verifier: verifier})
	front.Handle(issuerPath+"/", iss.Handler())
	return front, nil
}

// startAdapter mounts the platform's adapter on front, resolving clicks
// through a Linker over the store, and starts its outbox on loopCtx.
func (r *Rig) startAdapter(ctx context.Context, front *bot.Server, loopCtx context.Context) error {
	if r.opts.Platform == "" {
		return nil
	}
	// The IdP is never asked (the links are fresh and proved); its
	// address is the rig's own, so nothing would leave loopback if it were.
	linker, err := linkflow.NewLinker(linkflow.LinkerOptions{
		Issuer: r.base + "/idp", ClientID: "signoff", RedirectURL: r.base + linkflow.CallbackPath,
		Store: r.store, Links: r.svc, Logger: r.opts.Logger,
		OnStepUp: r.svc.StepUpVote(), StepUpPolicy: r.svc.StepUpPolicy(),
	})
	if err != nil {
		return fmt.Errorf("loadrig: %w", err)
	}
	var run func(context.Context) error
	switch r.opts.Platform {
	case Slack:
		r.slackAPI = newSlackStandIn()
		r.slack, err = slackbot.New(slackbot.Options{
			Service: r.svc, Resolver: linker, BotToken: "xoxb-load", SigningSecret: slackSecret, TeamID: slackTeam,
			APIURL: r.slackAPI.GetAPIURL(), PublicURL: r.base, Logger: r.opts.Logger,
		})
		if err != nil {
			return fmt.Errorf("loadrig: %w", err)
		}
		r.slack.Register(front)
		run = r.slack.RunOutbox
	case Teams:
		// Like the Slack stand-in's handlers, the connector keeps no
		// activity bodies: thousands of decoded cards would otherwise
		// grow the heap the server under load collects.
		r.bf = teamstest.NewServer(teamstest.Options{DiscardBodies: true})
		r.teams, err = teamsbot.New(teamsbot.Options{
			Service: r.svc, Resolver: linker, AppID: r.bf.AppID(), AppPassword: r.bf.AppPassword(),
			TenantIDs: []string{r.bf.TenantID()}, OpenIDMetadataURL: r.bf.OpenIDMetadataURL(), TokenURL: r.bf.TokenURL(),
			ServiceURLHosts: []string{r.bf.ServiceHost()}, PublicURL: r.base, Logger: r.opts.Logger,
		})
		if err != nil {
			return fmt.Errorf("loadrig: %w", err)
		}
		r.teams.Register(front)
		if err := r.teams.Discover(ctx); err != nil {
			return fmt.Errorf("loadrig: %w", err)
		}
		run = r.teams.RunOutbox
		r.place = teamstest.Place{Conversation: teamsChannel, TeamID: "19:load0team@thread.tacv2", TeamName: "Platform", ChannelName: "deploys"}
		// The Bot Connector keeps one token per service URL for an hour.
		r.bfToken = r.bf.Authorization(map[string]any{"serviceUrl": r.bf.ServiceURL()})
	}
	r.loopWG.Add(1)
	go func() {
		defer r.loopWG.Done()
		if err := run(loopCtx); err != nil && !errors.Is(err, context.Canceled) {
			r.opts.Logger.Error("outbox stopped", "err", err)
		}
	}()
	return nil
}

// newSlackStandIn is slacktest's server answering the Web API calls the
// adapter makes.
func newSlackStandIn() *slacktest.Server {
	var mu sync.Mutex
	seq := 0
	srv := slacktest.NewTestServer(func(c slacktest.Customize) {
		for _, m := range []string{"chat.postMessage", "chat.update", "chat.postEphemeral", "users.info", "auth.test"} {
			c.Handle("/"+m, func(w http.ResponseWriter, req *http.Request) {
				body, _ := io.ReadAll(req.Body)
				form, _ := url.ParseQuery(string(body))
				mu.Lock()
				seq++
				ts := fmt.Sprintf("1772366400.%06d", seq)
				mu.Unlock()
				w.Header().Set("Content-Type", "application/json")
				switch m {
				case "auth.test":
					fmt.Fprintf(w, `{"ok":true,"team":"Load","team_id":%q,"user":"signoff","user_id":"U0SIGNOFF","bot_id":"B0SIGNOFF"}`, slackTeam)
				case "users.info":
					fmt.Fprint(w, `{"ok":false,"error":"user_not_found"}`)
				case "chat.postEphemeral":
					fmt.Fprintf(w, `{"ok":true,"message_ts":%q}`, ts)
				default:
					if t := form.Get("ts"); t != "" {
						ts = t
					}
					fmt.Fprintf(w, `{"ok":true,"channel":%q,"ts":%q}`, form.Get("channel"), ts)
				}
			})
		}
	})
	srv.Start()
	return srv
}

// account is approver i's chat account and the person behind it.
func (r *Rig) account(i int) (identity.Account, identity.Identity) {
	name := fmt.Sprintf("approver%03d", i)
	id := identity.Identity{
		Issuer: r.base + "/idp", Subject: "sub-" + name, Email: name + "@example.com", Name: name,
		PreferredUsername: name, Groups: []string{approverGroup}, VerifiedAt: time.Now(),
	}
	switch r.opts.Platform {
	case Slack:
		return identity.Account{Platform: Slack, Workspace: slackTeam, User: strings.ToUpper("U0" + name)}, id
	default:
		return identity.Account{Platform: Teams, Workspace: r.bf.TenantID(), User: teamstest.NewUser(name).AADObjectID}, id
	}
}

// linkApprovers stores each approver's link as a completed sign-in
// started in the channel leaves it (the link's notice goes there). On
// Teams the bot is installed in the team first, which tells it the
// channel's service URL.
func (r *Rig) linkApprovers(ctx context.Context) error {
	channel := slackChannel
	if r.opts.Platform == Teams {
		channel = teamsChannel
		resp, err := r.sendActivity(ctx, r.bf.BotAdded(r.place, teamstest.NewUser("admin")))
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("loadrig: installing the Teams bot answered %d", resp.StatusCode)
		}
	}
	for i := range r.opts.Approvers {
		acct, id := r.account(i)
		link := identity.NewLink(acct, id, time.Now())
		link.MatchedBy = linkflow.MatchedByEmail
		if err := r.svc.SaveLink(ctx, link, channel); err != nil {
			return fmt.Errorf("loadrig: link %s: %w", id.Name, err)
		}
	}
	return nil
}

// createPending creates the pending requests and waits until each card
// is posted on the platform.
func (r *Rig) createPending(ctx context.Context) error {
	var params map[string]string
	if err := json.Unmarshal([]byte(Params), &params); err != nil {
		return err
	}
	requester := storage.Requester{Issuer: requesterName, IssuerURL: r.issuer.URL(), Subject: "load", Person: "load", Name: "load"}
	for range r.opts.Requests {
		req, _, err := r.svc.Create(ctx, approvals.CreateInput{Requester: requester, Action: Action, Params: params, Reason: "load test"})
		if err != nil {
			return fmt.Errorf("loadrig: create: %w", err)
		}
		r.ids = append(r.ids, req.ID)
	}
	channel := slackChannel
	if r.opts.Platform == Teams {
		channel = teamsChannel
	}
	r.cardIDs = make([]string, len(r.ids))
	deadline := time.Now().Add(cardsTimeout)
	for i, id := range r.ids {
		for {
			req, err := r.svc.Get(ctx, id)
			if err != nil {
				return fmt.Errorf("loadrig: %w", err)
			}
			if c, ok := cards.Find(req, r.opts.Platform, channel); ok && c.MessageID != "" {
				r.cardIDs[i] = c.MessageID
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("loadrig: the card of %s was not posted within %s", id, cardsTimeout)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	return nil
}

// URL is the server's base URL, on loopback.
func (r *Rig) URL() string { return r.base }

// Token returns a bearer token of the requester the action trusts, for
// POST /v1/requests, valid for ttl.
func (r *Rig) Token(ttl time.Duration) (string, error) {
	return r.issuer.Mint("load", audience, nil, ttl)
}

// Click returns the signed click number i, as the platform would send it:
// the Approve button of pending request i mod Requests pressed by
// approver (i div Requests) mod Approvers. Clicks 0 to
// Requests×Approvers−1 are votes that count; later ones repeat them.
func (r *Rig) Click(ctx context.Context, i int) (*http.Request, error) {
	n := len(r.ids)
	if n == 0 {
		return nil, errors.New("loadrig: no pending requests to click on")
	}
	req, approver := i%n, (i/n)%r.opts.Approvers
	switch r.opts.Platform {
	case Slack:
		return r.slackClick(ctx, i, req, approver)
	default:
		_, id := r.account(approver)
		act := r.bf.Invoke(teamstest.Click{Place: r.place, User: teamstest.NewUser(id.Name), ReplyToID: r.cardIDs[req], Verb: "approve",
			Data: map[string]any{"signoff": "signoff.vote", "requestId": r.ids[req], "decision": "approve"}})
		return r.activityRequest(ctx, act)
	}
}

// slackClick is a block_actions payload shaped like Slack's, signed now
// as Slack signs: v0, an HMAC-SHA256 over "v0:{timestamp}:{body}".
func (r *Rig) slackClick(ctx context.Context, seq, req, approver int) (*http.Request, error) {
	acct, id := r.account(approver)
	payload, err := json.Marshal(map[string]any{
		"type":       "block_actions",
		"user":       map[string]any{"id": acct.User, "username": id.Name, "name": id.Name, "team_id": slackTeam},
		"api_app_id": "A0SIGNOFF",
		"container":  map[string]any{"type": "message", "message_ts": r.cardIDs[req], "channel_id": slackChannel, "is_ephemeral": false},
		"trigger_id": fmt.Sprintf("%d.4744562912.%032x", 7000000000+seq, seq),
		"team":       map[string]any{"id": slackTeam, "domain": "load"},
		"channel":    map[string]any{"id": slackChannel, "name": "deploys"},
		"message":    map[string]any{"type": "message", "ts": r.cardIDs[req], "bot_id": "B0SIGNOFF", "text": "Approval requested"},
		"actions": []any{map[string]any{
			"action_id": slackbot.ActionApprove, "block_id": "actions", "type": "button", "style": "primary", "value": r.ids[req],
			"text":      map[string]any{"type": "plain_text", "text": "Approve", "emoji": true},
			"action_ts": fmt.Sprintf("1772366400.%06d", seq),
		}},
	})
	if err != nil {
		return nil, err
	}
	body := url.Values{"payload": {string(payload)}}.Encode()
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, r.base+slackbot.InteractionsPath, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	ts := time.Now().Unix()
	hreq.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	hreq.Header.Set("X-Slack-Request-Timestamp", strconv.FormatInt(ts, 10))
	mac := hmac.New(sha256.New, []byte(slackSecret))
	fmt.Fprintf(mac, "v0:%d:%s", ts, body)
	hreq.Header.Set("X-Slack-Signature", "v0="+hex.EncodeToString(mac.Sum(nil)))
	return hreq, nil
}

// activityRequest is act posted to the Teams endpoint with the Bot
// Connector's token.
func (r *Rig) activityRequest(ctx context.Context, act map[string]any) (*http.Request, error) {
	body, err := json.Marshal(act)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.base+teamsbot.MessagesPath, strings.NewReader(string(body)))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("Authorization", r.bfToken)
	return req, nil
}

// sendActivity posts act to the Teams endpoint.
func (r *Rig) sendActivity(ctx context.Context, act map[string]any) (*http.Response, error) {
	req, err := r.activityRequest(ctx, act)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("loadrig: %w", err)
	}
	return resp, nil
}

// ExpectedVotes is how many votes the first clicks clicks count.
func (r *Rig) ExpectedVotes(clicks int) int {
	return min(clicks, len(r.ids)*r.opts.Approvers)
}

// Stop stops the server as serve does (no new connections, the clicks
// already answered finish their vote, the outbox stops), then counts the
// votes on the pending requests, closes the store and the stand-ins.
func (r *Rig) Stop(ctx context.Context) (votes int, err error) {
	if r.http != nil {
		if e := r.http.Shutdown(ctx); e != nil {
			err = errors.Join(err, e)
		}
	}
	if r.slack != nil {
		err = errors.Join(err, r.slack.Shutdown(ctx))
	}
	if r.teams != nil {
		err = errors.Join(err, r.teams.Shutdown(ctx))
	}
	if r.loops != nil {
		r.loops()
		r.loopWG.Wait()
	}
	if r.store != nil {
		for _, id := range r.ids {
			req, e := r.svc.Get(ctx, id)
			if e != nil {
				err = errors.Join(err, e)
				break
			}
			votes += len(req.Votes)
		}
		err = errors.Join(err, r.svc.Close(ctx), r.store.Close())
	}
	if r.slackAPI != nil {
		r.slackAPI.Stop()
	}
	if r.bf != nil {
		r.bf.Close()
	}
	return votes, err
}

// BareCommits times n bare bbolt commits in a new file under dir, each
// one put of 512 bytes and an fsync, by a single writer: the floor the
// disk sets (internal/barebolt's loop, which approvals'
// BenchmarkBareBoltPutFsync also runs). It returns each commit's duration, in order, and removes the file.
func BareCommits(dir string, n int) ([]time.Duration, error) {
	path := filepath.Join(dir, "bare.db")
	f, err := barebolt.Open(path, 512)
	if err != nil {
		return nil, fmt.Errorf("loadrig: %w", err)
	}
	defer os.Remove(path)
	defer f.Close()
	out := make([]time.Duration, 0, n)
	for i := range n {
		t0 := time.Now()
		if err := f.Commit(uint64(i)); err != nil {
			return nil, fmt.Errorf("loadrig: bare commit: %w", err)
		}
		out = append(out, time.Since(t0))
	}
	return out, nil
}
