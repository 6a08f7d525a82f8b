package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/signoff-dev/signoff/api"
	"github.com/signoff-dev/signoff/bot"
	"github.com/signoff-dev/signoff/internal/hostlist"
	"github.com/signoff-dev/signoff/oidc/devissuer"
)

// Dev tokens.
const (
	// defaultDevSubject is the sub of `signoff dev token` without --sub.
	defaultDevSubject = "dev-user"
	// defaultDevTokenTTL is a dev token's lifetime without --ttl: long
	// enough for a `signoff request --wait` of the default --timeout.
	defaultDevTokenTTL = 2 * time.Hour
	// maxDevTokenTTL bounds --ttl.
	maxDevTokenTTL = 24 * time.Hour
	// defaultDevServer is where `signoff dev token` looks for the dev
	// server (config.example.yaml's listen).
	defaultDevServer = "http://127.0.0.1:8080"
)

// devTokenRequest is the body of POST /dev/token.
type devTokenRequest struct {
	// Subject is the token's sub; defaultDevSubject when empty.
	Subject string `json:"sub,omitempty"`
	// Audience is the token's aud; the dev requester's audience when empty.
	Audience string `json:"audience,omitempty"`
	// Claims are extra claims (repository, ref, groups, …).
	Claims map[string]any `json:"claims,omitempty"`
	// TTL is the token's lifetime as a Go duration; defaultDevTokenTTL
	// when empty, at most maxDevTokenTTL.
	TTL string `json:"ttl,omitempty"`
}

// devTokenResponse is the answer of POST /dev/token.
type devTokenResponse struct {
	Token     string    `json:"token"`
	Issuer    string    `json:"issuer"`
	Subject   string    `json:"sub"`
	Audience  string    `json:"audience"`
	ExpiresAt time.Time `json:"expires_at"`
}

// devTokenHandler serves POST /dev/token, which mints a token with the dev
// issuer for `signoff dev token`. serve mounts it only in dev mode (which
// listens on loopback only), behind the loopback Host and Origin check of
// everything dev mode mounts (devRoutes: a page rebound to 127.0.0.1
// cannot make the browser read a token). On top of that it refuses
// callers that are not on loopback and bodies that are not JSON (a
// cross-site form cannot post one without a CORS preflight, which signoff
// never grants).
func devTokenHandler(iss *devissuer.Issuer, audience string, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !loopbackRemote(r.RemoteAddr) {
			bot.WriteError(w, http.StatusForbidden, api.CodeForbidden, "dev tokens are only handed out to callers on this machine, addressed as 127.0.0.1, ::1 or localhost")
			return
		}
		if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(strings.ToLower(ct), "application/json") {
			bot.WriteError(w, http.StatusBadRequest, api.CodeInvalidRequest, "send a JSON body with Content-Type: application/json")
			return
		}
		var in devTokenRequest
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&in); err != nil && !errors.Is(err, io.EOF) {
			bot.WriteError(w, http.StatusBadRequest, api.CodeInvalidRequest, "the body is not a valid token request: "+err.Error())
			return
		}
		if in.Subject == "" {
			in.Subject = defaultDevSubject
		}
		if in.Audience == "" {
			in.Audience = audience
		}
		ttl := defaultDevTokenTTL
		if in.TTL != "" {
			d, err := time.ParseDuration(in.TTL)
			if err != nil || d <= 0 || d > maxDevTokenTTL {
				bot.WriteError(w, http.StatusBadRequest, api.CodeInvalidRequest, fmt.Sprintf("ttl %q must be a duration between 1s and %s", in.TTL, maxDevTokenTTL))
				return
			}
			ttl = d
		}
		tok, err := iss.Mint(in.Subject, in.Audience, in.Claims, ttl)
		if err != nil {
			bot.WriteError(w, http.StatusBadRequest, api.CodeInvalidRequest, err.Error())
			return
		}
		logger.Info("dev token minted", "sub", in.Subject, "audience", in.Audience, "ttl", ttl)
		bot.WriteJSON(w, http.StatusOK, devTokenResponse{
			Token: tok, Issuer: iss.URL(), Subject: in.Subject, Audience: in.Audience, ExpiresAt: time.Now().Add(ttl).UTC().Truncate(time.Second),
		})
	})
}

func loopbackRemote(remote string) bool {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	return hostlist.IsLoopback(host)
}

// loopbackHost reports whether hostport (host or host:port) names a
// loopback host.
func loopbackHost(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	return hostlist.IsLoopback(host)
}

func newDevCommand() *cobra.Command {
	return commandGroup("dev", "Tools for dev mode (signoff serve --dev)", newDevTokenCommand())
}

func newDevTokenCommand() *cobra.Command {
	var (
		server, sub, audience string
		claims                []string
		ttl                   time.Duration
	)
	cmd := &cobra.Command{
		Use:   "token [--server URL] [--sub NAME] [--claim k=v]... [--audience A] [--ttl D]",
		Short: "Print a CI token minted by a running dev-mode server",
		Long: `Print a token minted by the dev issuer of a running 'signoff serve --dev', for
'signoff request --token'. The subject is dev-user unless --sub says otherwise.
--claim adds a claim; a value that is a JSON list (groups=["audit","sre"]) is
sent as a list, anything else as a string (groups=audit also works: a single
group). Tokens from the dev issuer are accepted only by that dev server.`,
		Example: `  signoff request --server http://127.0.0.1:8080 --action deploy-prod \
    --param service=api --param version=1.4.2 --token "$(signoff dev token)" --wait
  signoff dev token --sub auditor --claim groups=audit`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			base, err := parseServerURL(server)
			if err != nil {
				return err
			}
			extra := map[string]any{}
			for _, c := range claims {
				k, v, ok := strings.Cut(c, "=")
				if !ok || k == "" {
					return usageErrorf("--claim %q: use NAME=VALUE", c)
				}
				if _, dup := extra[k]; dup {
					return usageErrorf("--claim %s is given twice", k)
				}
				var list []any
				if strings.HasPrefix(v, "[") && json.Unmarshal([]byte(v), &list) == nil {
					extra[k] = list
				} else {
					extra[k] = v
				}
			}
			if ttl < 0 || ttl > maxDevTokenTTL {
				return usageErrorf("--ttl %s: use a duration up to %s", ttl, maxDevTokenTTL)
			}
			in := devTokenRequest{Subject: sub, Audience: audience, Claims: extra}
			if ttl > 0 {
				in.TTL = ttl.String()
			}
			tok, err := fetchDevToken(cmd.Context(), base, in)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), tok)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&server, "server", envOr("SIGNOFF_SERVER", defaultDevServer), "URL of the dev-mode server ($SIGNOFF_SERVER)")
	f.StringVar(&sub, "sub", defaultDevSubject, "the token's subject")
	f.StringArrayVar(&claims, "claim", nil, "extra claim NAME=VALUE (repeatable)")
	f.StringVar(&audience, "audience", "", "the token's audience (default: the dev requester's, signoff)")
	f.DurationVar(&ttl, "ttl", defaultDevTokenTTL, "how long the token is valid")
	return cmd
}

// fetchDevToken asks the dev server's POST /dev/token for a token.
func fetchDevToken(ctx context.Context, base string, in devTokenRequest) (string, error) {
	body, err := json.Marshal(in)
	if err != nil {
		return "", fmt.Errorf("encode token request: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/dev/token", bytes.NewReader(body))
	if err != nil {
		return "", withCode(exitUsage, fmt.Errorf("--server %s: %w", base, err))
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := newHTTPClient().Do(req)
	if err != nil {
		return "", fmt.Errorf("cannot reach the dev server at %s: %w (is `signoff serve --dev` running there?)", base, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", fmt.Errorf("read the dev server's answer: %w", err)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed:
		return "", fmt.Errorf("%s has no dev token endpoint (%s): only `signoff serve --dev` mints dev tokens", base, resp.Status)
	case resp.StatusCode == http.StatusMisdirectedRequest:
		return "", withCode(exitUsage, fmt.Errorf("the dev server refused %s (%s): dev mode answers only when addressed as localhost, 127.0.0.1 or [::1] with its port; use --server http://127.0.0.1:PORT", base, resp.Status))
	case resp.StatusCode != http.StatusOK:
		return "", withCode(exitRefused, fmt.Errorf("the dev server refused: %s", apiErrorText(api.ParseError(resp.StatusCode, resp.Header, data))))
	}
	var out devTokenResponse
	if err := json.Unmarshal(data, &out); err != nil || out.Token == "" {
		return "", fmt.Errorf("the answer of %s/dev/token holds no token", base)
	}
	return out.Token, nil
}
