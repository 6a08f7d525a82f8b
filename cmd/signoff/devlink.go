package main

import (
	"fmt"
	"log/slog"
	"net/url"
	"strings"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/bot"
	"github.com/signoff-dev/signoff/bot/devconsole"
	"github.com/signoff-dev/signoff/bot/loopback"
	"github.com/signoff-dev/signoff/config"
	"github.com/signoff-dev/signoff/oidc/devissuer"
	"github.com/signoff-dev/signoff/oidc/linkflow"
	"github.com/signoff-dev/signoff/storage"
)

// devClientID is the client id of dev mode's account-link flow at the dev
// issuer. It differs from the dev requester's audience ("signoff"), so the
// dev issuer's ID tokens are not CI tokens and its CI tokens not ID tokens.
const devClientID = devissuer.DefaultClientID

// devLinkScopes are what the dev account-link flow asks for. No
// offline_access: the dev issuer issues no refresh tokens.
var devLinkScopes = []string{"openid", "email", "profile", "groups"}

// mountDevConsole mounts dev mode's console on front, with its "Chat users"
// panel driven by an account-link flow:
//
//   - Without an idp section, the dev issuer's sign-in is enabled for the
//     dev approvers and the flow links chat users there (newDevLinker). Its
//     routes (/link/start, /link/callback) are mounted here, and the Linker
//     is returned: serve runs its cleanup loop.
//   - With an idp section, the flow is the configured IdP's, built by
//     newLinker like serve's own, over the same store. serve's Linker
//     serves the link routes, completes step-up sign-ins and cleans up
//     expired attempts (for every Linker sharing the store), so nil is
//     returned. The console's Linker only ever resolves its own "dev" chat
//     accounts, so it shares no per-account state with serve's.
//
// Without dev approvers the panel is hidden and no flow is built.
func mountDevConsole(front *bot.Server, cfg *config.Config, devIss *devissuer.Issuer, addr string, store storage.Store, svc *approvals.Service, logger *slog.Logger) (*linkflow.Linker, error) {
	dev, err := devRoutes(front, addr)
	if err != nil {
		return nil, err
	}
	approvers := devApprovers(cfg)
	opts := devconsole.Options{Service: svc, Approvers: approvers, IssuerURL: devIss.URL(), Logger: logger, Clicks: front.Clicks()}
	var own *linkflow.Linker
	switch {
	case len(approvers) == 0:
	case cfg.IdP.Configured():
		linker, err := newLinker(cfg, store, svc, logger)
		if err != nil {
			return nil, err
		}
		linker.SetDirectory(devconsole.ChatPlatform, devconsole.NewAccounts(approvers))
		opts.Linker = linker
	default:
		linker, err := newDevLinker(cfg, devIss, addr, store, svc, logger)
		if err != nil {
			return nil, err
		}
		if u, _ := url.Parse(devIss.URL()); strings.TrimSuffix(u.Path, "/") == "" {
			// newFrontDoor mounted only discovery and keys for an issuer
			// without a path.
			dev.Handle(devissuer.AuthorizePath, devIss.Handler())
			dev.Handle(devissuer.TokenPath, devIss.Handler())
		}
		linker.SetDirectory(devconsole.ChatPlatform, devconsole.NewAccounts(approvers))
		linker.Register(dev)
		opts.Linker, own = linker, linker
	}
	devconsole.New(opts).Register(dev)
	return own, nil
}

// devRoutes is where everything dev mode serves is mounted on front: the
// dev issuer, /dev/token, the console with its webhook receiver and, when
// the console links chat users at the dev issuer, /link/start and
// /link/callback. Each answers only requests whose Host is a loopback name
// or address with the listening port (addr, the address bound), and whose
// Origin, when sent, is such a page too; anything else gets a page saying
// why (DNS rebinding). serve puts the whole of front behind the same
// guard in dev mode (the CI API and the probes too, as the contract says
// of everything dev mode serves); the guard here keeps the dev routes
// guarded wherever front is served.
func devRoutes(front *bot.Server, addr string) (loopback.Mux, error) {
	g, err := loopback.NewGuard(addr)
	if err != nil {
		return nil, withCode(exitUsage, fmt.Errorf("dev mode: %w", err))
	}
	return g.Mux(front), nil
}

// newDevLinker enables the dev issuer's sign-in (authorization code with
// PKCE) with cfg's dev approvers as the people to sign in as, and returns
// an account-link flow against it: client id devClientID (a public
// client), redirect URL http://<addr>/link/callback on the address signoff
// bound, the idp section's link_max_age and groups_max_age (their
// defaults when unset), no refresh tokens (so no token key), and step-up
// sign-ins completing votes through svc. Only for dev mode.
func newDevLinker(cfg *config.Config, devIss *devissuer.Issuer, addr string, store storage.Store, svc *approvals.Service, logger *slog.Logger) (*linkflow.Linker, error) {
	redirect := "http://" + addr + linkflow.CallbackPath
	people := make([]devissuer.Person, 0, len(cfg.Dev.Approvers))
	for _, a := range cfg.Dev.Approvers {
		people = append(people, devissuer.Person{Name: a.Name, Email: a.Email, Groups: a.Groups})
	}
	if err := devIss.EnableLogin(devissuer.LoginOptions{ClientID: devClientID, RedirectURL: redirect, People: people}); err != nil {
		return nil, withCode(exitUsage, fmt.Errorf("dev issuer sign-in: %w", err))
	}
	groupsMaxAge := cfg.IdP.GroupsMaxAge
	if groupsMaxAge == 0 {
		groupsMaxAge = linkflow.DefaultGroupsMaxAge
	}
	opts := sharedLinkerOptions(cfg, store, svc, logger)
	opts.Issuer = devIss.URL()
	opts.ClientID = devClientID
	opts.Scopes = devLinkScopes
	opts.RedirectURL = redirect
	opts.GroupsMaxAge = groupsMaxAge
	linker, err := linkflow.NewLinker(opts)
	if err != nil {
		return nil, withCode(exitUsage, fmt.Errorf("dev account links: %w", err))
	}
	return linker, nil
}

// devApprovers are cfg's dev approvers as the dev console knows them.
func devApprovers(cfg *config.Config) []devconsole.Approver {
	out := make([]devconsole.Approver, 0, len(cfg.Dev.Approvers))
	for _, a := range cfg.Dev.Approvers {
		out = append(out, devconsole.Approver{Name: a.Name, Email: a.Email, Groups: a.Groups})
	}
	return out
}
