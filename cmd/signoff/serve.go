package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/signoff-dev/signoff"
	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/approvals/audit"
	"github.com/signoff-dev/signoff/attest"
	"github.com/signoff-dev/signoff/bot"
	"github.com/signoff-dev/signoff/bot/chatlimit"
	"github.com/signoff-dev/signoff/bot/devconsole"
	"github.com/signoff-dev/signoff/bot/loopback"
	"github.com/signoff-dev/signoff/bot/slackbot"
	"github.com/signoff-dev/signoff/bot/teamsbot"
	"github.com/signoff-dev/signoff/config"
	"github.com/signoff-dev/signoff/executor"
	"github.com/signoff-dev/signoff/internal/hostlist"
	"github.com/signoff-dev/signoff/oidc"
	"github.com/signoff-dev/signoff/oidc/devissuer"
	"github.com/signoff-dev/signoff/oidc/linkflow"
	"github.com/signoff-dev/signoff/policy"
	"github.com/signoff-dev/signoff/storage"
)

// shutdownGrace bounds a graceful stop (docs/architecture.md, invariant 10:
// within 10 s).
const shutdownGrace = 8 * time.Second

// slackCheckTimeout bounds the check of the Slack bot token at start.
const slackCheckTimeout = 10 * time.Second

func newServeCommand() *cobra.Command {
	var (
		cfgPath string
		dev     bool
	)
	cmd := &cobra.Command{
		Use:   "serve [--config FILE] [--dev]",
		Short: "Run the signoff server",
		Long: `Run the signoff server: the HTTP front door, the expiry loop and the store.
--dev runs a local trial with no Slack, Teams or IdP account: it listens on
loopback only, keeps its database under ./signoff-data/ and, without --config,
loads config.example.yaml. It adds a built-in OpenID issuer, trusted as the
requester named dev (mint its tokens with 'signoff dev token'), and the dev
console at /dev, where you approve or deny as a configured dev approver.
SIGTERM or Ctrl-C stops it gracefully: long-polls in flight answer at once.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var data []byte
			if cfgPath == "" {
				if !dev {
					return usageErrorf("serve needs --config FILE (or --dev to try signoff locally with config.example.yaml)")
				}
				cfgPath = "config.example.yaml"
				if _, err := os.Stat(cfgPath); err != nil {
					// Outside a checkout: the copy built into the binary.
					data = signoff.ExampleConfig
				}
			}
			cfg, err := loadConfigData(cfgPath, data)
			if err != nil {
				return err
			}
			return serve(cmd.Context(), cfg, serveOptions{dev: dev, stdout: cmd.OutOrStdout(), stderr: cmd.ErrOrStderr()})
		},
	}
	cmd.Flags().StringVar(&cfgPath, "config", "", "config file (YAML); SIGNOFF_* environment variables override its keys")
	cmd.Flags().BoolVar(&dev, "dev", false, "local trial mode: loopback only, no external accounts needed")
	return cmd
}

// loadConfig loads and validates a config file; every problem is reported
// with its key and exit code 2.
func loadConfig(path string) (*config.Config, error) { return loadConfigData(path, nil) }

// loadConfigData is loadConfig for YAML already in memory (data) when not
// nil; path then only names it in messages.
func loadConfigData(path string, data []byte) (*config.Config, error) {
	// Every problem at once: an unknown key does not hide the rest.
	cfg, err := config.LoadAndValidate(config.LoadOptions{Path: path, Data: data, LookupEnv: os.LookupEnv})
	if data == nil && errors.Is(err, os.ErrNotExist) {
		return nil, withCode(exitUsage, fmt.Errorf("config file %s does not exist: write one there (config.example.yaml documents every key) or, in a container, mount yours at that path", path))
	}
	var problems *config.ValidationError
	if errors.As(err, &problems) {
		return nil, withCode(exitUsage, fmt.Errorf("config %s has problems:\n%w", path, err))
	}
	if err != nil {
		return nil, withCode(exitUsage, err)
	}
	return cfg, nil
}

type serveOptions struct {
	dev    bool
	stdout io.Writer
	stderr io.Writer
	// ready, when set, receives the listener's address once serving.
	ready chan<- string
	// onService, when set, is called with the approvals service before
	// the server starts serving. Tests vote through it: they cannot open
	// the store while serve holds it.
	onService func(*approvals.Service)
	// replicaPoll, when set, replaces approvals.DefaultReplicaPoll: tests
	// make it long to prove that another replica's decision wakes a
	// waiter through the store's change feed, not the periodic re-read.
	replicaPoll time.Duration
}

// serve runs the server until ctx ends, then stops within shutdownGrace:
// no new connections, in-flight requests and commits finish, a closing
// checkpoint is signed, the store is closed. Its steps, in order: check
// the mode, open the store and the service, listen, build the front door,
// start the components (startComponents), serve, and stop (shutdown).
func serve(ctx context.Context, cfg *config.Config, o serveOptions) error {
	logger := newLogger(cfg, o.stderr)
	if err := checkServeMode(cfg, o.dev); err != nil {
		return err
	}
	pol, err := cfg.Policy()
	if err != nil {
		return withCode(exitUsage, err)
	}
	signingKey, err := auditSigningKey(cfg)
	if err != nil {
		return err
	}
	store, storeName, err := openServeStore(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer store.Close()

	// Listen first: in dev mode the dev issuer's URL, and the issuer of
	// attestations, follow the address actually bound (listen:
	// 127.0.0.1:0 picks a free port).
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return withCode(exitUsage, fmt.Errorf("listen: cannot listen on %s: %w", cfg.Listen, err))
	}
	addr := ln.Addr().String()
	attester, err := attestSigner(cfg, o.dev, addr, logger) // attest.go
	if err != nil {
		ln.Close()
		return err
	}
	svc := newService(cfg, store, pol, signingKey, attester, logger, o.replicaPoll)
	if o.onService != nil {
		o.onService(svc)
	}
	if o.dev {
		followListenAddress(pol, addr, logger)
	}
	front, devIss, err := newFrontDoor(cfg, o.dev, addr, svc, store, attester, logger)
	if err != nil {
		ln.Close()
		return err
	}
	var handler http.Handler = front
	if o.dev {
		// Everything dev mode serves, the CI API and the probes included,
		// answers only requests addressed to this machine (devRoutes).
		g, err := loopback.NewGuard(addr)
		if err != nil {
			ln.Close()
			return withCode(exitUsage, fmt.Errorf("dev mode: %w", err))
		}
		handler = g.Wrap(front)
	}
	httpSrv := newHTTPServer(front, handler, logger)
	p := &serveParts{cfg: cfg, dev: o.dev, addr: addr, logger: logger, store: store, svc: svc,
		front: front, devIss: devIss, loops: newLoopGroup(logger)}
	if err := p.startComponents(ctx); err != nil {
		p.loops.stop()
		ln.Close()
		return err
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- httpSrv.Serve(ln) }()

	logger.Info("signoff listening", "addr", addr, "store", storeName, "actions", len(pol.Actions), "dev", o.dev, "version", version)
	if o.dev {
		printDevBanner(o.stdout, cfg, pol, addr, devIss)
	}
	if o.ready != nil {
		o.ready <- addr
	}

	var runErr error
	select {
	case <-ctx.Done():
		logger.Info("shutting down")
	case err := <-serveErr:
		runErr = fmt.Errorf("http server: %w", err)
	}
	if err := p.shutdown(httpSrv); err != nil {
		return err
	}
	logger.Info("stopped")
	return runErr
}

// checkServeMode refuses what the mode forbids: dev mode off loopback, a
// dev-mode issuer trusted outside dev mode.
func checkServeMode(cfg *config.Config, dev bool) error {
	if dev {
		if err := checkLoopback(cfg.Listen); err != nil {
			return withCode(exitUsage, err)
		}
	} else if err := refuseDevTrust(cfg); err != nil {
		return withCode(exitUsage, err)
	}
	return nil
}

// auditSigningKey returns the checkpoint signing key, or nil when none is
// configured.
func auditSigningKey(cfg *config.Config) (ed25519.PrivateKey, error) {
	if !cfg.Audit.SigningKey.IsSet() {
		return nil, nil
	}
	// Load already read audit.signing_key_file into SigningKey.
	key, err := audit.ParsePrivateKeyPEM([]byte(cfg.Audit.SigningKey.Reveal()))
	if err != nil {
		return nil, withCode(exitUsage, fmt.Errorf("audit.signing_key: %w", err))
	}
	return key, nil
}

// newService is the approvals service over store, as the config sets it.
func newService(cfg *config.Config, store storage.Store, pol *policy.Policy, signingKey ed25519.PrivateKey, attester *attest.Signer, logger *slog.Logger, replicaPoll time.Duration) *approvals.Service {
	var signer approvals.Attester // a nil *attest.Signer must stay a nil interface
	if attester != nil {
		signer = attester
	}
	return approvals.New(store, pol, approvals.Options{
		Logger:          logger,
		Platforms:       chatPlatforms(cfg),
		GroupsMaxAge:    cfg.IdP.GroupsMaxAge,
		SigningKey:      signingKey,
		CheckpointEvery: cfg.Audit.CheckpointEvery,
		// Every signed checkpoint is queued for these (audit.publish).
		Witnesses: approvals.Witnesses{Chat: cfg.Audit.Publish.Chat(), Webhook: cfg.Audit.Publish.Webhook.Configured()},
		// Counted in the create transaction; the API answers 429.
		PendingPerRequester: cfg.Limits.PendingPerRequester,
		ReplicaPoll:         replicaPoll,
		// Signs each approval in its transaction (attest.go).
		Attester: signer,
	})
}

// newHTTPServer serves handler (front, or front behind dev mode's
// loopback guard) with timeouts that fit its longest answer.
func newHTTPServer(front *bot.Server, handler http.Handler, logger *slog.Logger) *http.Server {
	httpSrv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		// Must exceed the longest ?wait= long-poll (bot.MaxWait, a minute).
		WriteTimeout: bot.MaxWait + 30*time.Second,
		IdleTimeout:  120 * time.Second,
		ErrorLog:     slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	// Shutdown waits for in-flight requests; long-polls and audit streams
	// end as soon as it starts instead of running out their wait.
	httpSrv.RegisterOnShutdown(front.Drain)
	return httpSrv
}

// loopGroup runs serve's background loops until stop, which serve calls
// after the HTTP server has drained and before the store closes.
type loopGroup struct {
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	logger *slog.Logger
}

func newLoopGroup(logger *slog.Logger) *loopGroup {
	ctx, cancel := context.WithCancel(context.Background())
	return &loopGroup{ctx: ctx, cancel: cancel, logger: logger}
}

// start runs run in the background until stop; an error other than the
// cancellation is logged under name.
func (g *loopGroup) start(name string, run func(context.Context) error) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		if err := run(g.ctx); err != nil && !errors.Is(err, context.Canceled) {
			g.logger.Error(name+" stopped", "err", err)
		}
	}()
}

// stop cancels every loop and waits for them to return.
func (g *loopGroup) stop() {
	g.cancel()
	g.wg.Wait()
}

// serveParts is what serve has built before it starts the components, and
// the components its steps start.
type serveParts struct {
	cfg    *config.Config
	dev    bool
	addr   string
	logger *slog.Logger
	store  storage.Store
	svc    *approvals.Service
	front  *bot.Server
	devIss *devissuer.Issuer
	loops  *loopGroup

	// linker is where chat accounts link to an identity: the company IdP
	// when idp is configured, else in dev mode the dev issuer; nil when
	// neither.
	linker *linkflow.Linker
	slack  *slackbot.Bot
	teams  *teamsbot.Bot
}

// startComponents starts everything behind the front door: the expiry
// loop, the link flow, the chat adapters, the Shared Signals receiver and
// the executor. On an error the caller stops the loops already started.
func (p *serveParts) startComponents(ctx context.Context) error {
	p.loops.start("expiry loop", p.svc.RunExpiry)
	// On PostgreSQL, other replicas' decisions wake this one's waiters.
	p.loops.start("replica changes", p.svc.RelayChanges)
	if err := p.startLinker(); err != nil {
		return err
	}
	if err := p.startSlack(ctx); err != nil {
		return err
	}
	if err := p.startTeams(); err != nil {
		return err
	}
	p.setAccountDirectories()
	if err := p.startSSF(); err != nil {
		return err
	}
	// Approved actions run through the outbox; the executor stops with the
	// other loops, before the store closes.
	runner := executor.New(p.svc, executor.Options{Logger: p.logger, UserAgent: "signoff/" + version})
	p.loops.start("executor", runner.Run)
	// Signed checkpoints go to the audit.publish webhook the same way; the
	// chat witnesses' are posted by the adapters' outbox loops.
	if hook := p.cfg.Audit.Publish.PolicyWebhook(); hook != nil {
		publisher := executor.NewPublisher(p.svc, *hook, executor.Options{Logger: p.logger, UserAgent: "signoff/" + version})
		p.loops.start("checkpoint publisher", publisher.Run)
	}
	return nil
}

// startLinker mounts the approver link flow (the company IdP's, and in
// dev mode the dev console with its own) and starts its cleanup and sweep.
func (p *serveParts) startLinker() error {
	if p.cfg.IdP.Configured() {
		linker, err := newLinker(p.cfg, p.store, p.svc, p.logger)
		if err != nil {
			return err
		}
		linker.Register(p.front)
		p.loops.start("link cleanup", func(ctx context.Context) error { linker.RunCleanup(ctx); return nil })
		// Freshness without clicks: links whose groups are older than
		// idp.groups_max_age are refreshed in the background, so a person
		// removed at the IdP shows as stale before anyone clicks. Without
		// kept refresh tokens there is nothing to refresh with.
		if linker.KeepsRefreshTokens() {
			p.loops.start("link sweep", func(ctx context.Context) error { linker.RunSweep(ctx); return nil })
			p.logger.Info("link sweep on: links are refreshed at the identity provider once their groups are older than idp.groups_max_age",
				"every", linker.SweepInterval(), "concurrency", linkflow.DefaultSweepConcurrency)
		}
		p.linker = linker
	}
	if p.dev {
		// The dev console; its chat users link at the dev issuer (devlink.go).
		devLinker, err := mountDevConsole(p.front, p.cfg, p.devIss, p.addr, p.store, p.svc, p.logger)
		if err != nil {
			return err
		}
		if devLinker != nil {
			p.loops.start("dev link cleanup", func(ctx context.Context) error { devLinker.RunCleanup(ctx); return nil })
			if p.linker == nil {
				p.linker = devLinker
			}
		}
	}
	if p.linker != nil {
		// Identity signals on /metrics: link outcomes, IdP refreshes, the
		// sweep (docs/operations.md).
		p.front.AddMetrics(bot.IdentityMetrics(p.linker))
	}
	return nil
}

// needLinker refuses to start the chat platform of config section
// section when no IdP is configured to link approvers' identities.
func (p *serveParts) needLinker(section string) error {
	if p.linker == nil {
		return withCode(exitUsage, fmt.Errorf("%s: approvers vote through an identity linked at the company IdP; configure the idp section (or try it with --dev, which links at the dev issuer)", section))
	}
	return nil
}

// startSlack checks the Slack bot token, mounts the Slack adapter and
// starts its outbox and, with an app token, Socket Mode.
func (p *serveParts) startSlack(ctx context.Context) error {
	if !p.cfg.Slack.Configured() {
		return nil
	}
	if err := p.needLinker("slack"); err != nil {
		return err
	}
	slack, err := newSlackBot(p.cfg, p.svc, p.linker, p.front.Clicks(), p.logger)
	if err != nil {
		return err
	}
	// The bot token must carry the scopes signoff needs, users:read.email
	// among them (the identity binding reads profile emails). A refused
	// token or a missing scope stops the start; Slack being unreachable
	// does not (the check is then only logged).
	checkCtx, cancelCheck := context.WithTimeout(ctx, slackCheckTimeout)
	err = slack.CheckToken(checkCtx, slackbot.RequiredScopes(p.linker.LinkMatch()))
	cancelCheck()
	var tokenErr *slackbot.TokenError
	switch {
	case errors.As(err, &tokenErr):
		return withCode(exitUsage, fmt.Errorf("slack.bot_token: %w", err))
	case err != nil:
		p.logger.Warn("slack: could not check the bot token at start; continuing", "err", err)
	}
	slack.Register(p.front)
	p.loops.start("slack outbox", slack.RunOutbox)
	if p.cfg.Slack.AppToken.IsSet() {
		watchSlackSocketMode(p.front, slack)
		p.loops.start("slack socket mode", func(ctx context.Context) error { return slack.RunSocketMode(ctx) })
	}
	p.slack = slack
	return nil
}

// startTeams mounts the Teams adapter and starts its outbox and the early
// fetch of the Bot Framework signing keys.
func (p *serveParts) startTeams() error {
	if !p.cfg.Teams.Configured() {
		return nil
	}
	if err := p.needLinker("teams"); err != nil {
		return err
	}
	teams, err := newTeamsBot(p.cfg, p.svc, p.linker, p.front.Clicks(), p.logger)
	if err != nil {
		return err
	}
	teams.Register(p.front)
	p.loops.start("teams outbox", teams.RunOutbox)
	// Fetch the Bot Framework signing keys early, so a problem shows in
	// the log before the first click (verification retries anyway).
	p.loops.start("teams key discovery", func(ctx context.Context) error {
		if err := teams.Discover(ctx); err != nil && ctx.Err() == nil {
			p.logger.Warn("teams: cannot fetch the Bot Framework signing keys yet; clicks are refused until they load", "err", err)
		}
		return nil
	})
	p.teams = teams
	return nil
}

// setAccountDirectories gives the Linker that completes sign-ins the
// directory of every platform that links accounts: before a link is saved,
// the chat platform says who owns the account (idp.link_match).
func (p *serveParts) setAccountDirectories() {
	if p.linker == nil {
		return
	}
	if p.slack != nil {
		p.linker.SetDirectory(slackbot.Platform, p.slack)
	}
	if p.teams != nil {
		p.linker.SetDirectory(teamsbot.Platform, p.teams)
	}
	if p.dev {
		p.linker.SetDirectory(devconsole.ChatPlatform, devconsole.NewAccounts(devApprovers(p.cfg)))
	}
}

// startSSF mounts the Shared Signals receiver (ssf section), through which
// the IdP's security events make links stale at once (ssf.go), and starts
// the early fetch of the transmitter's keys.
func (p *serveParts) startSSF() error {
	discoverSSF, err := newSSFReceiver(p.front, p.cfg, p.svc, p.logger)
	if err != nil {
		return err
	}
	if discoverSSF != nil {
		p.loops.start("ssf key discovery", func(ctx context.Context) error {
			if err := discoverSSF(ctx); err != nil && ctx.Err() == nil {
				p.logger.Warn("ssf: cannot fetch the transmitter's signing keys yet; SETs are answered 503 until they load", "err", err)
			}
			return nil
		})
	}
	return nil
}

// printDevBanner tells the newcomer where dev mode runs and how to ask for
// a first approval.
func printDevBanner(w io.Writer, cfg *config.Config, pol *policy.Policy, addr string, devIss *devissuer.Issuer) {
	base := "http://" + addr
	fmt.Fprintf(w, "signoff (dev mode) is running on %s\n  database:   %s\n  console:    %s/dev\n  dev issuer: %s\n  health:     %s/healthz\n",
		base, cfg.Storage.Path, base, devIss.URL(), base)
	fmt.Fprintf(w, "Ask for an approval (then approve it in the console):\n  %s\nPress Ctrl-C to stop.\n", exampleRequestCommand(pol, base))
}

// shutdown stops within shutdownGrace (docs/architecture.md, invariant 10):
// the HTTP server drains, clicks already acknowledged to a chat platform
// finish their vote, the loops stop, the closing checkpoint is signed and
// the store is closed.
func (p *serveParts) shutdown(httpSrv *http.Server) error {
	shutCtx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := httpSrv.Shutdown(shutCtx); err != nil {
		p.logger.Warn("http shutdown incomplete", "err", err)
		_ = httpSrv.Close()
	}
	if p.slack != nil {
		// Clicks already acknowledged to Slack finish their vote.
		if err := p.slack.Shutdown(shutCtx); err != nil {
			p.logger.Warn("slack shutdown incomplete", "err", err)
		}
	}
	if p.teams != nil {
		if err := p.teams.Shutdown(shutCtx); err != nil {
			p.logger.Warn("teams shutdown incomplete", "err", err)
		}
	}
	p.loops.stop()
	if err := p.svc.Close(shutCtx); err != nil {
		p.logger.Error("closing checkpoint failed", "err", err)
	}
	if err := p.store.Close(); err != nil {
		return fmt.Errorf("close store: %w", err)
	}
	return nil
}

// checkLoopback refuses a dev-mode listen address that is not loopback.
func checkLoopback(listen string) error {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return fmt.Errorf("listen: %q is not host:port: %w", listen, err)
	}
	if !hostlist.IsLoopback(host) {
		return fmt.Errorf("listen: dev mode only listens on loopback (127.0.0.1 or ::1), not %q: its tokens and console are for local trials; drop --dev to serve on other addresses", listen)
	}
	return nil
}

func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Log.Level))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// newFrontDoor builds the HTTP front door: the CI API with a verifier for
// the configured requester issuers and, in dev mode, the dev issuer and its
// token endpoint. devIss is nil outside dev mode.
func newFrontDoor(cfg *config.Config, dev bool, addr string, svc *approvals.Service, store storage.Store, attester *attest.Signer, logger *slog.Logger) (front *bot.Server, devIss *devissuer.Issuer, err error) {
	issuers, devIss, err := requesterIssuers(cfg, dev, addr)
	if err != nil {
		return nil, nil, err
	}
	// signoff login's ID tokens (idp.cli_client_id), for admin and
	// auditor endpoints only (login.go).
	issuers = append(issuers, loginIssuers(cfg)...)
	if !dev {
		for _, ti := range issuers {
			if u, err := url.Parse(ti.Issuer); err == nil && u.Scheme == "http" {
				logger.Warn("a requester issuer is trusted over plain http on a loopback address; outside dev mode this only works if something on this machine serves it", "requester", ti.Name, "issuer", ti.Issuer)
			}
		}
	}
	var verifier bot.TokenVerifier
	if len(issuers) > 0 {
		v, err := oidc.NewRequesterVerifier(issuers, oidc.VerifierOptions{Logger: logger})
		if err != nil {
			return nil, nil, withCode(exitUsage, fmt.Errorf("requesters: %w", err))
		}
		verifier = v
	} else {
		logger.Warn("no requesters configured: every CI API call is refused until a requesters entry is added")
	}
	opts := bot.Options{Service: svc, Store: store, Logger: logger, Version: version, Verifier: verifier}
	opts.Login = loginConfig(cfg)
	// The attestation keys at /.well-known (bot/attestation.go).
	opts.Attestations = attester
	// The limits: creates per requester here; clicks per chat account in
	// one limiter the chat adapters and the dev console share
	// (front.Clicks()), so /metrics counts all of its refusals.
	opts.RequestsPerMinute = cfg.Limits.RequestsPerMinute
	opts.Clicks = chatlimit.New(cfg.Limits.ClicksPerMinute, nil)
	if dev {
		consoleURL := "http://" + addr + "/dev"
		opts.RequestURL = func(string) string { return consoleURL }
	}
	front = bot.New(opts)
	if !dev {
		return front, nil, nil
	}
	// The dev issuer, on this listener at its issuer URL's path, behind
	// the loopback Host check like everything dev mode mounts (devRoutes).
	devMux, err := devRoutes(front, addr)
	if err != nil {
		return nil, nil, err
	}
	u, _ := url.Parse(devIss.URL()) // requesterIssuers built it
	p := strings.TrimSuffix(u.Path, "/")
	if p == "" {
		// The root's discovery document is signoff's own, the issuer of
		// attestations (bot/attestation.go).
		return nil, nil, withCode(exitUsage, fmt.Errorf("requesters: the %s requester's issuer %s needs a path, e.g. %s: the root's /.well-known/openid-configuration publishes signoff's attestation keys", devRequesterName, devIss.URL(), defaultDevIssuerPath))
	}
	devMux.Handle(p+"/", devIss.Handler())
	devMux.Handle("POST /dev/token", devTokenHandler(devIss, devAudience(issuers), logger))
	// serve mounts the dev console (mountDevConsole, devlink.go).
	return front, devIss, nil
}

// devRequesterName is the requester entry dev mode's built-in issuer
// stands in for (README.md, "Try it: dev mode").
const devRequesterName = "dev"

// defaultDevIssuerPath is the dev issuer's path when the config has no
// requester named dev.
const defaultDevIssuerPath = "/dev/oidc"

// requesterIssuers turns cfg.Requesters into the verifier's trusted
// issuers.
//
// In dev mode it also creates the dev issuer, whose signing key lives next
// to the database (dev-issuer-key.pem). The requester named "dev" is
// trusted as that issuer: its issuer URL keeps its path but takes the host
// and port signoff actually listens on (so listen: 127.0.0.1:0, or another
// port than the example's 8080, still verifies), and it is added (audience
// signoff, person claim sub) when the config has no such entry. When it
// names no groups_claim, dev mode reads groups from "groups", so
// `signoff dev token --claim groups=audit` makes an auditor token.
//
// Outside dev mode nothing is rewritten or added, and serve has already
// refused a config that trusts a dev-mode issuer URL (refuseDevTrust).
func requesterIssuers(cfg *config.Config, dev bool, addr string) ([]oidc.TrustedIssuer, *devissuer.Issuer, error) {
	out := make([]oidc.TrustedIssuer, 0, len(cfg.Requesters)+1)
	devIdx := -1
	for _, r := range cfg.Requesters {
		if r.Name == devRequesterName {
			devIdx = len(out)
		}
		out = append(out, oidc.TrustedIssuer{
			Name: r.Name, Issuer: r.Issuer, Audience: r.Audience,
			PersonClaim: r.PersonClaim, NameClaim: r.NameClaim, EmailClaim: r.EmailClaim, GroupsClaim: r.GroupsClaim,
		})
	}
	if !dev {
		return out, nil, nil
	}
	if devIdx < 0 {
		out = append(out, oidc.TrustedIssuer{Name: devRequesterName, Issuer: "http://127.0.0.1" + defaultDevIssuerPath, Audience: "signoff", PersonClaim: "sub"})
		devIdx = len(out) - 1
	}
	entry := &out[devIdx]
	u, err := url.Parse(entry.Issuer)
	if err != nil {
		return nil, nil, withCode(exitUsage, fmt.Errorf("requesters: %s: issuer %q: %w", devRequesterName, entry.Issuer, err))
	}
	u.Scheme, u.Host = "http", addr
	entry.Issuer = u.String()
	if entry.GroupsClaim == "" {
		entry.GroupsClaim = "groups"
	}
	keyFile := filepath.Join(filepath.Dir(cfg.Storage.Path), "dev-issuer-key.pem")
	devIss, err := devissuer.New(entry.Issuer, keyFile)
	if err != nil {
		return nil, nil, withCode(exitUsage, fmt.Errorf("dev issuer: %w", err))
	}
	return out, devIss, nil
}

// devAudience is the audience the dev requester entry expects.
func devAudience(issuers []oidc.TrustedIssuer) string {
	for _, ti := range issuers {
		if ti.Name == devRequesterName {
			return ti.Audience
		}
	}
	return defaultAudience
}

// exampleRequestCommand is the ready-to-paste `signoff request` command
// dev mode prints: the first action the dev issuer may request (deploy-prod
// when it exists), with a value for each required parameter.
func exampleRequestCommand(pol *policy.Policy, base string) string {
	names := make([]string, 0, len(pol.Actions))
	for name, a := range pol.Actions {
		for _, r := range a.Requesters {
			if r.Issuer == devRequesterName {
				names = append(names, name)
				break
			}
		}
	}
	if len(names) == 0 {
		return fmt.Sprintf("(no action lets the %q requester ask; add {issuer: dev, claims: {sub: \"*\"}} to an action's requesters)", devRequesterName)
	}
	sort.Strings(names)
	name := names[0]
	if slices.Contains(names, "deploy-prod") {
		name = "deploy-prod"
	}
	a := pol.Actions[name]
	var b strings.Builder
	self := selfCommand()
	fmt.Fprintf(&b, "%s request --server %s --action %s", self, base, name)
	params := make([]string, 0, len(a.Params))
	for p, decl := range a.Params {
		if decl.Required {
			params = append(params, p)
		}
	}
	sort.Strings(params)
	for _, p := range params {
		fmt.Fprintf(&b, " --param %s=%s", p, exampleValue(p, a.Params[p]))
	}
	fmt.Fprintf(&b, ` --reason "trying signoff" --token "$(%s dev token --server %s)" --wait`, self, base)
	return b.String()
}

func exampleValue(name string, p policy.Param) string {
	candidates := []string{"api", "example", "main", "1"}
	if strings.Contains(name, "version") {
		candidates = append([]string{"1.4.2"}, candidates...)
	}
	for _, c := range candidates {
		if p.Pattern == nil || p.Pattern.MatchString(c) {
			return c
		}
	}
	return "VALUE"
}

// selfCommand is how the printed commands should invoke signoff: "signoff"
// when that is on PATH and is this binary, "go run ./cmd/signoff" when this
// process was started by go run (its binary is a temporary build), else
// this binary's absolute path.
func selfCommand() string {
	exe, err := os.Executable()
	if err != nil {
		return "signoff"
	}
	exe, _ = filepath.EvalSymlinks(exe)
	if onPath, err := exec.LookPath("signoff"); err == nil {
		if p, _ := filepath.EvalSymlinks(onPath); p == exe {
			return "signoff"
		}
	}
	if strings.Contains(exe, string(filepath.Separator)+"go-build") {
		return "go run ./cmd/signoff"
	}
	return exe
}

// followListenAddress points dev-mode webhooks aimed at the dev console's
// built-in receiver (path /dev/webhook on a loopback host) at the address
// signoff actually bound, so a port override (SIGNOFF_LISTEN, listen:
// 127.0.0.1:0) keeps the example's on_approve working.
func followListenAddress(pol *policy.Policy, bound string, logger *slog.Logger) {
	for name, a := range pol.Actions {
		if a.OnApprove == nil || a.OnApprove.Webhook == nil {
			continue
		}
		u, err := url.Parse(a.OnApprove.Webhook.URL)
		if err != nil || u.Path != "/dev/webhook" || u.Host == bound {
			continue
		}
		if !hostlist.IsLoopback(u.Hostname()) {
			continue
		}
		u.Scheme, u.Host = "http", bound
		a.OnApprove.Webhook.URL = u.String()
		logger.Info("dev mode: webhook to the built-in receiver follows the bound address", "action", name, "url", u.String())
	}
}

// newLinker builds the approver account-link flow from the idp section:
// the redirect URL is public_url + /link/callback; refresh tokens are kept
// (sealed) only when idp.token_encryption_key is set.
func newLinker(cfg *config.Config, store storage.Store, svc *approvals.Service, logger *slog.Logger) (*linkflow.Linker, error) {
	var tokenKey []byte
	if cfg.IdP.TokenEncryptionKey.IsSet() {
		tokenKey = []byte(cfg.IdP.TokenEncryptionKey.Reveal())
	}
	opts := sharedLinkerOptions(cfg, store, svc, logger)
	opts.Issuer = cfg.IdP.Issuer
	opts.ClientID = cfg.IdP.ClientID
	opts.ClientSecret = cfg.IdP.ClientSecret.Reveal()
	opts.Scopes = cfg.IdP.Scopes
	opts.GroupsClaim = cfg.IdP.GroupsClaim
	opts.RedirectURL = strings.TrimSuffix(cfg.PublicURL, "/") + linkflow.CallbackPath
	opts.GroupsMaxAge = cfg.IdP.GroupsMaxAge
	opts.TokenKey = tokenKey
	linker, err := linkflow.NewLinker(opts)
	if err != nil {
		return nil, withCode(exitUsage, fmt.Errorf("idp: %w", err))
	}
	return linker, nil
}

// sharedLinkerOptions are the LinkerOptions of every account-link flow,
// the idp section's and dev mode's alike: the idp section's link matching,
// person claims and link_max_age, links kept in store and made through
// svc, and step-up sign-ins completing votes through svc.
func sharedLinkerOptions(cfg *config.Config, store storage.Store, svc *approvals.Service, logger *slog.Logger) linkflow.LinkerOptions {
	return linkflow.LinkerOptions{
		LinkMatch:           cfg.IdP.LinkMatch,
		AssumeEmailVerified: cfg.IdP.EmailVerified == config.EmailVerifiedAssumed,
		PersonClaims:        cfg.IdP.PersonClaims,
		LinkMaxAge:          cfg.IdP.LinkMaxAge,
		Store:               store,
		Links:               svc,
		Logger:              logger,
		OnStepUp:            svc.StepUpVote(),
		StepUpPolicy:        svc.StepUpPolicy(),
	}
}

// chatPlatforms lists the chat adapters the config turns on; the lifecycle
// queues card posts and updates for each.
func chatPlatforms(cfg *config.Config) []string {
	var out []string
	if cfg.Slack.Configured() {
		out = append(out, "slack")
	}
	if cfg.Teams.Configured() {
		out = append(out, "teams")
	}
	return out
}

// newSlackBot builds the Slack adapter from the slack section; votes go
// through linker's identities; clicks limits each Slack account.
func newSlackBot(cfg *config.Config, svc *approvals.Service, linker *linkflow.Linker, clicks *chatlimit.Limiter, logger *slog.Logger) (*slackbot.Bot, error) {
	sb, err := slackbot.New(slackbot.Options{
		Service:       svc,
		Resolver:      linker,
		BotToken:      cfg.Slack.BotToken.Reveal(),
		SigningSecret: cfg.Slack.SigningSecret.Reveal(),
		AppToken:      cfg.Slack.AppToken.Reveal(),
		TeamID:        cfg.Slack.TeamID,
		EnterpriseID:  cfg.Slack.EnterpriseID,
		APIURL:        cfg.Slack.APIURL,
		PublicURL:     cfg.PublicURL,
		Logger:        logger,
		Clicks:        clicks,
	})
	if err != nil {
		return nil, withCode(exitUsage, fmt.Errorf("slack: %w", err))
	}
	return sb, nil
}

// newTeamsBot builds the Teams adapter from the teams section; votes go
// through linker's identities; clicks limits each Teams account.
func newTeamsBot(cfg *config.Config, svc *approvals.Service, linker *linkflow.Linker, clicks *chatlimit.Limiter, logger *slog.Logger) (*teamsbot.Bot, error) {
	tb, err := teamsbot.New(teamsbot.Options{
		Service:           svc,
		Resolver:          linker,
		AppID:             cfg.Teams.AppID,
		AppPassword:       cfg.Teams.AppPassword.Reveal(),
		TenantIDs:         cfg.Teams.TenantIDs,
		OpenIDMetadataURL: cfg.Teams.OpenIDMetadataURL,
		TokenURL:          cfg.Teams.TokenURL,
		ServiceURL:        cfg.Teams.ServiceURL,
		ServiceURLHosts:   cfg.Teams.ServiceURLHosts,
		ChannelService:    cfg.Teams.ChannelService,
		PublicURL:         cfg.PublicURL,
		Logger:            logger,
		Clicks:            clicks,
	})
	if err != nil {
		return nil, withCode(exitUsage, fmt.Errorf("teams: %w", err))
	}
	return tb, nil
}
