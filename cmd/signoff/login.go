package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/signoff-dev/signoff/api"
	"github.com/signoff-dev/signoff/config"
	"github.com/signoff-dev/signoff/oidc"
)

// loginIssuerName names signoff login's tokens among the trusted issuers
// (RequesterToken.IssuerName, the access log). It cannot clash with a
// requesters entry: their names hold no colon.
const loginIssuerName = "idp:login"

// defaultLoginTimeout bounds the wait for the browser sign-in.
const defaultLoginTimeout = 5 * time.Minute

// loginIssuers is the trusted issuer entry for signoff login's ID tokens
// (idp.issuer, audience idp.cli_client_id, groups from idp.groups_claim),
// or none when idp.cli_client_id is not set. Its tokens are marked Login:
// the API takes them on admin and auditor endpoints only.
func loginIssuers(cfg *config.Config) []oidc.TrustedIssuer {
	if cfg.IdP.CLIClientID == "" || cfg.IdP.Issuer == "" {
		return nil
	}
	return []oidc.TrustedIssuer{{
		Name:        loginIssuerName,
		Issuer:      cfg.IdP.Issuer,
		Audience:    cfg.IdP.CLIClientID,
		PersonClaim: "sub",
		NameClaim:   "name",
		EmailClaim:  "email",
		GroupsClaim: cfg.IdP.GroupsClaim,
		Login:       true,
		// The no-self-review rule reads the person's names from an
		// admin's sign-in as the no-self-approval rule reads them from
		// an approver's.
		HandleClaims: cfg.IdP.PersonClaims,
	}}
}

// loginConfig is what GET /v1/login-config tells signoff login, or nil
// when idp.cli_client_id is not set.
func loginConfig(cfg *config.Config) *api.LoginConfig {
	if cfg.IdP.CLIClientID == "" || cfg.IdP.Issuer == "" {
		return nil
	}
	return &api.LoginConfig{
		Issuer:      cfg.IdP.Issuer,
		ClientID:    cfg.IdP.CLIClientID,
		Scopes:      slices.Clone(cfg.IdP.Scopes),
		GroupsClaim: cfg.IdP.GroupsClaim,
	}
}

func newLoginCommand() *cobra.Command {
	var (
		server    string
		noBrowser bool
		timeout   time.Duration
	)
	cmd := &cobra.Command{
		Use:   "login --server URL [--no-browser] [--timeout DUR]",
		Short: "Sign in at your identity provider for the admin and auditor commands",
		Long: `Sign in, in a browser, at the identity provider the signoff server at --server
trusts, and keep the sign-in for the commands that talk to that server as you
(audit export --server, links --server, requests list, backup --server): they
use it when neither --token nor $SIGNOFF_TOKEN is given.

The server says where to sign in (GET /v1/login-config: idp.issuer,
idp.cli_client_id and the scopes). signoff login listens on 127.0.0.1 at a
free port, prints the sign-in URL, opens a browser there (--no-browser only
prints it) and waits for the browser to come back: the authorization code
flow with PKCE of a native app (RFC 8252). The ID token is verified (issuer,
audience, signature, expiry, nonce) and kept with its refresh token, one
sign-in per server, in signoff/logins.json under your config directory
(mode 0600). An expired ID token is renewed with the refresh token; when it
cannot be, you are asked to sign in again.

signoff accepts these tokens on admin and auditor endpoints only, with the
groups the identity provider lists in idp.groups_claim. CI keeps using its
own OIDC tokens: 'signoff request' never reads this sign-in.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			base, err := parseServerURL(server)
			if err != nil {
				return err
			}
			if timeout <= 0 {
				return usageErrorf("--timeout must be positive, e.g. 5m")
			}
			return runLogin(cmd.Context(), base, noBrowser, timeout, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.StringVar(&server, "server", os.Getenv("SIGNOFF_SERVER"), "base URL of the signoff server ($SIGNOFF_SERVER)")
	f.BoolVar(&noBrowser, "no-browser", false, "only print the sign-in URL; do not try to open a browser")
	f.DurationVar(&timeout, "timeout", defaultLoginTimeout, "how long to wait for the sign-in in the browser")
	return cmd
}

// runLogin signs in for the server at base and caches the result.
func runLogin(ctx context.Context, base string, noBrowser bool, timeout time.Duration, stdout, stderr io.Writer) error {
	if u, _ := url.Parse(base); u.Scheme == "http" && !loopbackHost(u.Host) {
		fmt.Fprintf(stderr, "warning: %s is plain http: anyone on the way could point this sign-in elsewhere, and your token would travel unencrypted; use https\n", base)
	}
	path, err := loginCachePath()
	if err != nil {
		return err
	}
	// A cache that cannot be read (or is readable by others) is reported
	// before anyone signs in.
	if _, err := readLoginCache(path); err != nil {
		return err
	}
	lc, err := fetchLoginConfig(ctx, base)
	if err != nil {
		return err
	}
	client := &oidc.CLIClient{Issuer: lc.Issuer, ClientID: lc.ClientID, Scopes: lc.Scopes, GroupsClaim: lc.GroupsClaim}
	lctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	toks, err := client.Login(lctx, oidc.CLILoginOptions{
		ShowURL: func(authURL string) {
			fmt.Fprintf(stderr, "Sign in to signoff at %s with your identity provider (%s):\n\n  %s\n\n", base, lc.Issuer, authURL)
			if !noBrowser {
				if err := openBrowser(authURL); err != nil {
					fmt.Fprintf(stderr, "Could not open a browser (%v): open the URL above yourself.\n", err)
				}
			}
			fmt.Fprintln(stderr, "Waiting for the sign-in to complete in the browser (Ctrl-C to cancel)...")
		},
		Warn: func(msg string) { fmt.Fprintln(stderr, "warning: "+msg) },
	})
	switch {
	case err != nil && errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
		return fmt.Errorf("no sign-in completed within %s: run signoff login again (--timeout waits longer)", timeout)
	case err != nil && ctx.Err() != nil:
		return fmt.Errorf("signoff login cancelled: %w", ctx.Err())
	case err != nil:
		return withCode(exitRefused, fmt.Errorf("signoff login failed: %w", err))
	}
	entry := &loginEntry{
		Server:       loginKey(base),
		Issuer:       lc.Issuer,
		ClientID:     lc.ClientID,
		Scopes:       slices.Clone(lc.Scopes),
		GroupsClaim:  lc.GroupsClaim,
		Subject:      toks.Subject,
		Email:        toks.Email,
		IDToken:      toks.IDToken,
		Expiry:       toks.Expiry,
		RefreshToken: toks.RefreshToken,
	}
	if err := updateLoginCache(path, func(c *loginCache) { c.Logins[entry.Server] = entry }); err != nil {
		return err
	}
	who := toks.Subject
	if toks.Email != "" {
		who = toks.Email
	}
	fmt.Fprintf(stdout, "Signed in to %s as %s", base, who)
	if lc.GroupsClaim != "" {
		if len(toks.Groups) > 0 {
			fmt.Fprintf(stdout, " (groups: %s)", strings.Join(toks.Groups, ", "))
		} else {
			fmt.Fprintf(stdout, " (no groups in claim %q)", lc.GroupsClaim)
		}
	}
	renew := "then sign in again"
	if toks.RefreshToken != "" {
		renew = "then it is renewed with the refresh token"
	}
	fmt.Fprintf(stdout, ".\nThe sign-in is kept in %s; its token expires at %s, %s.\n", path, toks.Expiry.Local().Format(time.RFC3339), renew)
	return nil
}

// fetchLoginConfig asks the server where its people sign in.
func fetchLoginConfig(ctx context.Context, base string) (*api.LoginConfig, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	c, err := newAPIClient(base, nil, newHTTPClient())
	if err != nil {
		return nil, err
	}
	lc, err := c.LoginConfig(ctx)
	var answer *api.Error
	var bad *api.AnswerError
	switch {
	case errors.As(err, &bad):
		return nil, fmt.Errorf("GET %s at %s did not answer with an issuer and a client id: is it a signoff server?", api.LoginConfigPath, base)
	case errors.As(err, &answer) && answer.Status == http.StatusNotFound:
		return nil, withCode(exitUsage, fmt.Errorf("%s does not offer signoff login: %s", base, apiErrorText(answer)))
	case errors.As(err, &answer):
		return nil, fmt.Errorf("GET %s at %s: %s", api.LoginConfigPath, base, apiErrorText(answer))
	case err != nil:
		return nil, fmt.Errorf("cannot reach signoff at %s: %w", base, err)
	}
	return &lc, nil
}

// openBrowser asks the desktop to open u, without waiting for it.
func openBrowser(u string) error {
	var c *exec.Cmd
	switch runtime.GOOS {
	case "darwin":
		c = exec.Command("open", u)
	case "windows":
		c = exec.Command("rundll32", "url.dll,FileProtocolHandler", u)
	default:
		c = exec.Command("xdg-open", u)
	}
	if err := c.Start(); err != nil {
		return err
	}
	go func() { _ = c.Wait() }()
	return nil
}
