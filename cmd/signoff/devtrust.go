package main

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/signoff-dev/signoff/config"
	"github.com/signoff-dev/signoff/internal/hostlist"
)

// isDevIssuerURL reports whether a requester entry's issuer is a dev-mode
// issuer URL: one whose tokens a `signoff serve --dev` on this machine
// could mint.
//
// Dev mode names its issuer http://<the loopback address it binds><path>,
// where path is the issuer path of the requester named dev, or /dev/oidc
// (defaultDevIssuerPath) when the config has none; anyone on the machine
// can start one, on any free port. So the rule is: the issuer's host is a
// loopback name or address (localhost, 127.0.0.0/8, ::1; any port, any
// scheme), and either its path is /dev/oidc (a trailing slash aside),
// whatever the entry is called, or the entry is the one named dev. A
// non-loopback issuer is never one: its keys come from that host, out of
// reach of a dev server here. Other loopback issuers (an IdP run next to
// signoff) are not either; serve only warns that they are plain http.
func isDevIssuerURL(r config.RequesterConfig) (bool, string) {
	u, err := url.Parse(r.Issuer)
	if err != nil || u.Host == "" || !hostlist.IsLoopback(u.Hostname()) {
		return false, ""
	}
	if strings.TrimSuffix(u.Path, "/") == defaultDevIssuerPath {
		return true, "a loopback host with the dev issuer's path " + defaultDevIssuerPath
	}
	if r.Name == devRequesterName {
		return true, "the requester named " + devRequesterName + " on a loopback host"
	}
	return false, ""
}

// devTrustProblems lists the requesters a server started without --dev
// must not trust (isDevIssuerURL), each under its requesters[N].issuer key.
func devTrustProblems(cfg *config.Config) []config.Problem {
	var out []config.Problem
	for i, r := range cfg.Requesters {
		ok, why := isDevIssuerURL(r)
		if !ok {
			continue
		}
		out = append(out, config.Problem{
			Key: fmt.Sprintf("requesters[%d].issuer", i),
			Message: fmt.Sprintf("%q is a dev-mode issuer URL (%s): without --dev, signoff would accept the tokens any `signoff serve --dev` on this machine mints. "+
				"For production, remove this requester (%q) and the action rules that name it, and list your CI's issuers instead; "+
				"to try signoff locally, run `signoff serve --dev` (config.example.yaml lists this requester for dev mode)",
				r.Issuer, why, r.Name),
		})
	}
	return out
}

// refuseDevTrust is serve's check without --dev: an error naming each
// requester whose issuer is a dev-mode issuer URL, or nil.
func refuseDevTrust(cfg *config.Config) error {
	ps := devTrustProblems(cfg)
	if len(ps) == 0 {
		return nil
	}
	return fmt.Errorf("signoff without --dev does not start with a dev-mode issuer among its requesters:\n%w", &config.ValidationError{Problems: ps})
}

// checkStartMode reports what serve would refuse at start in that mode
// beyond the config's own validation: without --dev a requester whose
// issuer is a dev-mode issuer URL, with --dev a listen address that is not
// loopback.
func checkStartMode(cfg *config.Config, dev bool) error {
	if !dev {
		if ps := devTrustProblems(cfg); len(ps) > 0 {
			return fmt.Errorf("%w\n(checked for a production start; add --dev to check it for `signoff serve --dev`)", &config.ValidationError{Problems: ps})
		}
		return nil
	}
	return checkLoopback(cfg.Listen)
}
