package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/signoff-dev/signoff/oidc"
)

// loginRenewMargin: a cached login token this close to its expiry is
// renewed first, so it does not run out on its way to the server.
const loginRenewMargin = 30 * time.Second

// personToken returns the bearer token a person (an auditor, an admin)
// presents to the signoff server at server, from the first of:
//
//  1. --token, when cmd has that flag and it is set;
//  2. $SIGNOFF_TOKEN;
//  3. the sign-in `signoff login --server` cached for that server, renewed
//     with its refresh token when its ID token has expired.
//
// Every command that talks to a server as a person uses it. `signoff
// request` does not: CI has its own sources (resolveToken) and never the
// login cache.
func personToken(cmd *cobra.Command, server string) (string, error) {
	if f := cmd.Flags().Lookup("token"); f != nil {
		if t := strings.TrimSpace(f.Value.String()); t != "" {
			return t, nil
		}
	}
	if t := strings.TrimSpace(os.Getenv("SIGNOFF_TOKEN")); t != "" {
		return t, nil
	}
	return cachedLoginToken(cmd.Context(), cmd.CommandPath(), server, cmd.ErrOrStderr())
}

// cachedLoginToken returns the cached login token for server, renewing it
// when it has expired. command names the caller in messages.
func cachedLoginToken(ctx context.Context, command, server string, stderr io.Writer) (string, error) {
	path, err := loginCachePath()
	if err != nil {
		return "", err
	}
	c, err := readLoginCache(path)
	if err != nil {
		return "", err
	}
	key := loginKey(server)
	e := c.Logins[key]
	if e == nil {
		return "", usageErrorf("%s needs a token for %s: sign in with 'signoff login --server %s' (or pass --token, or set $SIGNOFF_TOKEN)", command, server, server)
	}
	if time.Now().Add(loginRenewMargin).Before(e.Expiry) {
		return e.IDToken, nil
	}
	again := fmt.Sprintf("run 'signoff login --server %s' again", server)
	if e.RefreshToken == "" {
		return "", withCode(exitRefused, fmt.Errorf("your signoff login for %s expired at %s and the identity provider gave no refresh token to renew it: %s", server, e.Expiry.Local().Format(time.RFC3339), again))
	}
	client := &oidc.CLIClient{Issuer: e.Issuer, ClientID: e.ClientID, Scopes: e.Scopes, GroupsClaim: e.GroupsClaim}
	toks, err := client.Refresh(ctx, e.RefreshToken, e.Subject)
	if err != nil {
		// Another signoff command may have renewed it meanwhile (and
		// spent the refresh token, if the provider rotates them).
		if c2, rerr := readLoginCache(path); rerr == nil {
			if e2 := c2.Logins[key]; e2 != nil && e2.IDToken != e.IDToken && time.Now().Add(loginRenewMargin).Before(e2.Expiry) {
				return e2.IDToken, nil
			}
		}
		return "", withCode(exitRefused, fmt.Errorf("your signoff login for %s expired at %s and could not be renewed (%v): %s", server, e.Expiry.Local().Format(time.RFC3339), err, again))
	}
	err = updateLoginCache(path, func(c *loginCache) {
		n := *e
		n.IDToken, n.Expiry, n.Email = toks.IDToken, toks.Expiry, toks.Email
		if toks.RefreshToken != "" {
			n.RefreshToken = toks.RefreshToken
		}
		c.Logins[key] = &n
	})
	if err != nil {
		fmt.Fprintf(stderr, "warning: the renewed signoff login could not be saved (%v); the next command may ask you to sign in again\n", err)
	}
	return toks.IDToken, nil
}
