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
	"os"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/signoff-dev/signoff"
	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/approvals/audit"
	"github.com/signoff-dev/signoff/bot"
	"github.com/signoff-dev/signoff/config"
	"github.com/signoff-dev/signoff/storage/boltstore"
)

// shutdownGrace bounds a graceful stop (DESIGN invariant 10: within 10 s).
const shutdownGrace = 8 * time.Second

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
loads config.example.yaml. SIGTERM or Ctrl-C stops it gracefully.`,
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
	cfg, err := config.Load(config.LoadOptions{Path: path, Data: data, LookupEnv: os.LookupEnv})
	if err != nil {
		return nil, withCode(exitUsage, err)
	}
	if err := cfg.Validate(); err != nil {
		return nil, withCode(exitUsage, fmt.Errorf("config %s has problems:\n%w", path, err))
	}
	return cfg, nil
}

type serveOptions struct {
	dev    bool
	stdout io.Writer
	stderr io.Writer
	// ready, when set, receives the listener's address once serving.
	ready chan<- string
}

// serve runs the server until ctx ends, then stops within shutdownGrace:
// no new connections, in-flight requests and commits finish, a closing
// checkpoint is signed, the store is closed.
func serve(ctx context.Context, cfg *config.Config, o serveOptions) error {
	logger := newLogger(cfg, o.stderr)
	if o.dev {
		if err := checkLoopback(cfg.Listen); err != nil {
			return withCode(exitUsage, err)
		}
	}
	if cfg.Storage.Driver != "" && cfg.Storage.Driver != "bolt" {
		return withCode(exitUsage, fmt.Errorf("storage.driver: %q is not available in this build; use bolt", cfg.Storage.Driver))
	}
	pol, err := cfg.Policy()
	if err != nil {
		return withCode(exitUsage, err)
	}
	var signingKey ed25519.PrivateKey
	if cfg.Audit.SigningKey.IsSet() {
		// Load already read audit.signing_key_file into SigningKey.
		if signingKey, err = audit.ParsePrivateKeyPEM([]byte(cfg.Audit.SigningKey.Reveal())); err != nil {
			return withCode(exitUsage, fmt.Errorf("audit.signing_key: %w", err))
		}
	}
	store, err := boltstore.Open(cfg.Storage.Path, boltstore.Options{LockTimeout: time.Second})
	if err != nil {
		return err
	}
	defer store.Close()
	svc := approvals.New(store, pol, approvals.Options{
		Logger:          logger,
		GroupsMaxAge:    cfg.IdP.GroupsMaxAge,
		SigningKey:      signingKey,
		CheckpointEvery: cfg.Audit.CheckpointEvery,
	})
	front := bot.New(bot.Options{Service: svc, Store: store, Logger: logger, Version: version})

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return withCode(exitUsage, fmt.Errorf("listen: cannot listen on %s: %w", cfg.Listen, err))
	}
	httpSrv := &http.Server{
		Handler:           front,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		// Long enough for a ?wait= long-poll of up to a minute.
		WriteTimeout: 90 * time.Second,
		IdleTimeout:  120 * time.Second,
		ErrorLog:     slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	loopCtx, stopLoops := context.WithCancel(context.Background())
	var loops sync.WaitGroup
	loops.Add(1)
	go func() {
		defer loops.Done()
		if err := svc.RunExpiry(loopCtx); err != nil && !errors.Is(err, context.Canceled) {
			logger.Error("expiry loop stopped", "err", err)
		}
	}()
	serveErr := make(chan error, 1)
	go func() { serveErr <- httpSrv.Serve(ln) }()

	addr := ln.Addr().String()
	logger.Info("signoff listening", "addr", addr, "store", cfg.Storage.Path, "actions", len(pol.Actions), "dev", o.dev, "version", version)
	if o.dev {
		fmt.Fprintf(o.stdout, "signoff (dev mode) is running on http://%s\n  database: %s\n  health:   http://%s/healthz\nPress Ctrl-C to stop.\n", addr, cfg.Storage.Path, addr)
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
	shutCtx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := httpSrv.Shutdown(shutCtx); err != nil {
		logger.Warn("http shutdown incomplete", "err", err)
		_ = httpSrv.Close()
	}
	stopLoops()
	loops.Wait()
	if err := svc.Close(shutCtx); err != nil {
		logger.Error("closing checkpoint failed", "err", err)
	}
	if err := store.Close(); err != nil {
		return fmt.Errorf("close store: %w", err)
	}
	logger.Info("stopped")
	return runErr
}

// checkLoopback refuses a dev-mode listen address that is not loopback.
func checkLoopback(listen string) error {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return fmt.Errorf("listen: %q is not host:port: %w", listen, err)
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
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
