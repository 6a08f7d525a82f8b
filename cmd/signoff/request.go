package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	randv2 "math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/signoff-dev/signoff/api"
	"github.com/signoff-dev/signoff/internal/text"
)

// Exit codes of `signoff request` for a decided (or undecided) request
// (README.md, "`signoff request`"). exitOK is approved, or created without --wait.
const (
	exitDenied    = 10
	exitExpired   = 11
	exitCancelled = 12
	exitPending   = 13
)

const (
	// defaultAudience is the aud `signoff request` asks CI for.
	defaultAudience = "signoff"
	// defaultRequestTimeout is how long --wait waits without --timeout.
	defaultRequestTimeout = time.Hour
	// pollWait is the long-poll the client asks the server for; the server
	// caps it (at a minute).
	pollWait = 30 * time.Second
	// createAttempts bounds the tries of the initial POST without --wait
	// (with --wait, it is retried until --timeout).
	createAttempts = 5
	// backoffBase and backoffMax shape the retry delays: exponential from
	// backoffBase, capped at backoffMax, with jitter.
	backoffBase = 500 * time.Millisecond
	backoffMax  = 15 * time.Second
	// callTimeout bounds one API call, beyond the long-poll wait it asks for.
	callTimeout = 30 * time.Second
	// gitLabTokenEnv is the id_tokens variable tried by default.
	gitLabTokenEnv = "SIGNOFF_ID_TOKEN"
)

type requestOptions struct {
	server   string // base URL, no trailing slash
	body     api.CreateRequest
	wait     bool
	timeout  time.Duration
	token    string
	tokenEnv string // "" unless --token-env was given
	audience string
	json     bool
	idemKey  string
	// attestationOut is --attestation-out: where to write the approved
	// request's attestation ("": nowhere).
	attestationOut string
	// attestation, when not nil, receives the approved request's
	// attestation (the step output); a failure to read it is then only
	// a warning unless attestationOut asks for the file.
	attestation *string
	// insecureHTTP is --insecure-http: send the token over plain http to
	// a server that is not on this machine.
	insecureHTTP bool
}

func newRequestCommand() *cobra.Command {
	var (
		o              requestOptions
		params, links  []string
		output         string
		server, action string
		reason         string
		breakGlass     bool
		githubOutput   string
		attestation    string
		timeout        = durationFlag{value: defaultRequestTimeout}
	)
	cmd := &cobra.Command{
		Use:   "request --server URL --action NAME [--param k=v]... [--reason TEXT] [--link TITLE=URL]... [--wait] [--timeout DUR] [--break-glass]",
		Short: "Ask for an approval (from a CI job) and optionally wait for the decision",
		Long: `Ask signoff for an approval and, with --wait, wait for the decision.

The token (an OIDC ID token for audience --audience) comes from the first of:
--token; --token-env NAME (a variable holding it); $SIGNOFF_TOKEN; GitHub
Actions (needs "permissions: id-token: write": the token is fetched from
$ACTIONS_ID_TOKEN_REQUEST_URL, and fetched again if it expires while waiting);
$SIGNOFF_ID_TOKEN (GitLab CI: "id_tokens: SIGNOFF_ID_TOKEN: {aud: signoff}").
The token is never printed.

Idempotency: the request is sent with an Idempotency-Key, so retries never
create a second request. Without --idempotency-key it is derived from the CI
run: on GitHub Actions from GITHUB_RUN_ID, GITHUB_RUN_ATTEMPT, GITHUB_JOB and
a digest of the action, params, reason and links; on GitLab CI from CI_JOB_ID
and that digest. So running the same step again within one run attempt (a
retry wrapper, a restarted runner) finds the same request, while a re-run of
the workflow (a new attempt) or different params ask anew. Outside CI the key
is random per invocation (it only protects this command's own retries).

With --wait it long-polls until the request is decided or --timeout runs out,
riding out server restarts and network errors (connection refused, 5xx, 429)
with capped exponential backoff. Progress goes to standard error; the outcome
to standard output (--output json: the request as JSON on standard output).

In a GitHub Actions step (signoff's action does this): --output github prints
progress and outcome on standard output inside a collapsible ::group:: and
then the outcome again as an annotation (::notice:: when approved, or created
without --wait; ::error:: for anything else, refusals and errors included);
--github-output FILE (pass "$GITHUB_OUTPUT") appends the step outputs
request-id, state (the request's state, or refused / error when no request
was made), approvers (emails, or subjects, of those who approved, comma-
separated) and attestation (the approved request's attestation, empty when
the server signs none; it is masked in the log with ::add-mask::).

--attestation-out FILE (with --wait) writes the approved request's
attestation, the compact JWT a deploy system verifies against the server's
published keys (signoff attest verify; docs/attestations.md), to FILE with
mode 0600. When it cannot be read (the server signs none, or does not
answer) the command fails with exit 1, though the request was approved.

signoff's own limits (429 rate_limited: too many requests in a minute, or
too many pending): with --wait the create is retried after the server's
Retry-After until --timeout; without --wait the command fails at once (exit
1) with the server's message, which says when to try again.

--break-glass (with --reason) asks for approval at once, without votes, for
an action with break_glass, by a requester whose token groups allow it: the
request is approved and runs, and a review is opened that its reviewers
approve afterwards. Until that review is approved, another --break-glass by
the same requester is refused (exit 3, review_pending).

Exit codes: 0 approved (or created, without --wait), 10 denied, 11 expired,
12 cancelled, 13 still pending when --timeout ran out, 2 usage or config
error, 3 authentication or policy refusal, 1 anything else (server
unreachable, a limit, …).`,
		Example: `  signoff request --server https://signoff.example.com --action deploy-prod \
    --param service=api --param version=1.4.2 --reason "release 1.4.2" \
    --link "CI run=$GITHUB_SERVER_URL/$GITHUB_REPOSITORY/actions/runs/$GITHUB_RUN_ID" --wait`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
			var step *githubStep
			if output == outputGitHub {
				// One stream, so the log keeps the order of progress,
				// outcome and annotation.
				step, stderr = startGitHubStep(stdout, action), stdout
			}
			v, err := func() (api.Request, error) {
				var err error
				if o.server, err = parseServerURL(server); err != nil {
					return api.Request{}, err
				}
				if strings.TrimSpace(action) == "" {
					return api.Request{}, usageErrorf("--action is required: the name of an action declared in the server's config")
				}
				if breakGlass && strings.TrimSpace(reason) == "" {
					return api.Request{}, usageErrorf("--break-glass needs --reason: say why this cannot wait for approval (the reviewers and the audit log read it)")
				}
				o.body = api.CreateRequest{Action: action, Reason: reason, BreakGlass: breakGlass}
				if o.body.Params, err = parseParams(params); err != nil {
					return api.Request{}, err
				}
				if o.body.Links, err = parseLinks(links); err != nil {
					return api.Request{}, err
				}
				switch output {
				case "text", outputGitHub:
				case "json":
					o.json = true
				default:
					return api.Request{}, usageErrorf("--output %q: use text, json or github", output)
				}
				if o.timeout, err = timeout.get(); err != nil || o.timeout <= 0 {
					return api.Request{}, usageErrorf("--timeout %q: use a positive duration such as 30m", timeout.String())
				}
				if o.audience == "" {
					return api.Request{}, usageErrorf("--audience must not be empty")
				}
				if cmd.Flags().Changed("token-env") && o.tokenEnv == "" {
					return api.Request{}, usageErrorf("--token-env needs the name of an environment variable")
				}
				if cmd.Flags().Changed("attestation-out") && (o.attestationOut == "" || !o.wait) {
					return api.Request{}, usageErrorf("--attestation-out needs a FILE and --wait: the attestation exists once the request is approved")
				}
				if githubOutput != "" {
					o.attestation = &attestation
				}
				return runRequest(cmd.Context(), o, os.Getenv, stdout, stderr)
			}()
			if step != nil && attestation != "" {
				// A credential: keep it out of the log, whatever a later
				// step prints.
				fmt.Fprintf(stdout, "::add-mask::%s\n", attestation)
			}
			if githubOutput != "" {
				if werr := writeGitHubOutputs(githubOutput, v, attestation, err); werr != nil {
					if err == nil {
						err = werr
					} else {
						fmt.Fprintf(stderr, "signoff: %v\n", werr)
					}
				}
			}
			if step != nil {
				return step.finish(v, err, o.timeout)
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&server, "server", os.Getenv("SIGNOFF_SERVER"), "base URL of the signoff server ($SIGNOFF_SERVER)")
	f.StringVar(&action, "action", "", "the action to ask approval for")
	f.StringArrayVar(&params, "param", nil, "a parameter NAME=VALUE (repeatable)")
	f.StringVar(&reason, "reason", "", "why, shown to the approvers")
	f.BoolVar(&breakGlass, "break-glass", false, "approve at once without votes, reviewed afterwards (the action's break_glass; needs --reason)")
	f.StringArrayVar(&links, "link", nil, "a link TITLE=URL shown to the approvers (repeatable)")
	f.BoolVar(&o.wait, "wait", false, "wait for the decision; the exit code tells it")
	f.Var(&timeout, "timeout", "with --wait, how long to wait for a decision (exit 13 when it runs out)")
	f.StringVar(&o.token, "token", "", "the OIDC token to present (default: $SIGNOFF_TOKEN, then GitHub Actions or GitLab CI)")
	f.StringVar(&o.tokenEnv, "token-env", "", "the environment variable holding the token (GitLab CI id_tokens; default tries "+gitLabTokenEnv+")")
	f.StringVar(&o.audience, "audience", defaultAudience, "the audience to request the GitHub Actions token for")
	f.StringVar(&output, "output", "text", "text, json, or github (workflow commands for a GitHub Actions step)")
	f.StringVar(&githubOutput, "github-output", "", "append the GitHub Actions step outputs (request-id, state, approvers, attestation) to `FILE`, e.g. \"$GITHUB_OUTPUT\"")
	f.StringVar(&o.idemKey, "idempotency-key", "", "the Idempotency-Key (default: derived from the CI run)")
	f.StringVar(&o.attestationOut, "attestation-out", "", "with --wait, write the approved request's attestation (a JWT) to `FILE`, mode 0600")
	f.BoolVar(&o.insecureHTTP, "insecure-http", false, "send the token to an http:// --server that is not on this machine (refused otherwise: it would travel unencrypted)")
	return cmd
}

// durationFlag is a duration flag checked by the command rather than while
// the flags are parsed, so that a bad value is a usage error like any other
// (with --output github: an annotation and the step outputs).
type durationFlag struct {
	value time.Duration
	raw   string // as given; "" for the default
}

// Set keeps s for get to parse.
func (d *durationFlag) Set(s string) error { d.raw = s; return nil }

// String is the value as given, or the default.
func (d *durationFlag) String() string {
	if d.raw == "" {
		return d.value.String()
	}
	return d.raw
}

// Type names the flag's kind in the help text.
func (d *durationFlag) Type() string { return "duration" }

// get parses the value given, or returns the default.
func (d *durationFlag) get() (time.Duration, error) {
	if d.raw == "" {
		return d.value, nil
	}
	return time.ParseDuration(d.raw)
}

// parseServerURL checks --server and returns it without a trailing slash.
func parseServerURL(s string) (string, error) {
	if s == "" {
		return "", usageErrorf("--server is required: the signoff server's base URL, e.g. https://signoff.example.com (or set $SIGNOFF_SERVER)")
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", usageErrorf("--server %q: use an http(s) URL without query or credentials, e.g. https://signoff.example.com", s)
	}
	return strings.TrimSuffix(u.String(), "/"), nil
}

func parseParams(args []string) (map[string]string, error) {
	if len(args) == 0 {
		return nil, nil
	}
	out := make(map[string]string, len(args))
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok || k == "" {
			return nil, usageErrorf("--param %q: use NAME=VALUE", a)
		}
		if _, dup := out[k]; dup {
			return nil, usageErrorf("--param %s is given twice", k)
		}
		out[k] = v
	}
	return out, nil
}

// parseLinks reads TITLE=URL; the split is at the "=" before http:// or
// https:// when there is one, so titles and URLs may both hold "=".
func parseLinks(args []string) ([]api.Link, error) {
	var out []api.Link
	for _, a := range args {
		i := strings.Index(a, "=https://")
		if i < 0 {
			i = strings.Index(a, "=http://")
		}
		if i < 0 {
			i = strings.Index(a, "=")
		}
		if i <= 0 || i == len(a)-1 {
			return nil, usageErrorf("--link %q: use TITLE=URL", a)
		}
		out = append(out, api.Link{Title: a[:i], URL: a[i+1:]})
	}
	return out, nil
}

// runRequest creates the request and, with --wait, waits for its decision.
// It returns the request as last seen (the zero Request when none was
// created) and the error whose exit code tells the outcome.
func runRequest(ctx context.Context, o requestOptions, getenv func(string) string, stdout, stderr io.Writer) (api.Request, error) {
	start := time.Now()
	deadline := start.Add(o.timeout)
	httpc := newHTTPClient()
	if u, _ := url.Parse(o.server); u.Scheme == "http" && !loopbackHost(u.Host) {
		// The CI token is a credential any signoff trusting this CI
		// system accepts while it lasts: never sent in the clear unless
		// asked for by name.
		if !o.insecureHTTP {
			return api.Request{}, withCode(exitUsage, fmt.Errorf("--server %s is plain http to another machine: the CI token would travel unencrypted, and anyone on the way could replay it; use https (or, on a network you trust end to end, --insecure-http)", o.server))
		}
		fmt.Fprintf(stderr, "warning: %s is plain http: the token travels unencrypted (--insecure-http)\n", o.server)
	}
	tok, err := resolveToken(ctx, o, getenv, httpc)
	if err != nil {
		return api.Request{}, err
	}
	key, keyOrigin := o.idemKey, "--idempotency-key"
	if key == "" {
		key, keyOrigin = deriveIdempotencyKey(getenv, o.body)
	}
	client, err := newAPIClient(o.server, tok.current, httpc)
	if err != nil {
		return api.Request{}, err
	}
	c := &requestClient{api: client, base: o.server, tok: tok, stderr: stderr}

	attempts := createAttempts
	if o.wait {
		attempts = 0 // until the deadline
	}
	v, created, err := c.create(ctx, o.body, key, deadline, attempts)
	if err != nil {
		return api.Request{}, err
	}
	if !created {
		fmt.Fprintf(stderr, "request %s already existed for this idempotency key (%s); using it\n", v.ID, keyOrigin)
	}
	if !o.wait {
		if v.State == api.StatePending {
			if o.json {
				return v, writeViewJSON(stdout, v)
			}
			fmt.Fprintf(stdout, "created request %s (%s): %s\n", v.ID, v.Action, pendingSummary(v))
			if v.URL != "" {
				fmt.Fprintf(stdout, "  %s\n", oneLine(v.URL))
			}
			return v, nil
		}
		return v, c.finishApproved(ctx, v, o, time.Since(start), stdout, stderr)
	}
	if v.State != api.StatePending {
		return v, c.finishApproved(ctx, v, o, time.Since(start), stdout, stderr)
	}
	fmt.Fprintf(stderr, "waiting for a decision on request %s (%s), up to %s (request expires %s)\n", v.ID, v.Action, o.timeout, v.ExpiresAt.UTC().Format(time.RFC3339))
	if v.URL != "" {
		fmt.Fprintf(stderr, "  see %s\n", oneLine(v.URL))
	}
	v, err = c.wait(ctx, v, deadline)
	if err != nil {
		return v, err
	}
	return v, c.finishApproved(ctx, v, o, time.Since(start), stdout, stderr)
}

// finishApproved is finish, followed for an approved request by reading
// its attestation when --attestation-out or a step output wants it
// (attestation.go).
func (c *requestClient) finishApproved(ctx context.Context, v api.Request, o requestOptions, waited time.Duration, stdout, stderr io.Writer) error {
	if err := finish(v, o, waited, stdout, stderr); err != nil {
		return err
	}
	return c.deliverAttestation(ctx, v, o)
}

// finish reports the request's final (or, at --timeout, pending) state and
// returns the matching exit code.
func finish(v api.Request, o requestOptions, waited time.Duration, stdout, stderr io.Writer) error {
	code, line := outcome(v, o.timeout)
	if o.json {
		fmt.Fprintln(stderr, line)
		if err := writeViewJSON(stdout, v); err != nil {
			return err
		}
	} else {
		fmt.Fprintln(stdout, line)
	}
	if code == exitOK {
		return nil
	}
	return &exitError{code: code, err: errors.New(line), quiet: true}
}

func writeViewJSON(w io.Writer, v api.Request) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write JSON: %w", err)
	}
	return nil
}

// outcome maps a request's state to the exit code and a line saying it.
func outcome(v api.Request, timeout time.Duration) (int, string) {
	what := fmt.Sprintf("request %s (%s)", v.ID, v.Action)
	switch v.State {
	case api.StateApproved:
		if v.DecidedBy == api.DecidedByBreakGlass {
			line := fmt.Sprintf("approved by BREAK-GLASS: %s, without votes", what)
			if bg := v.BreakGlass; bg != nil && bg.Review != "" {
				line += fmt.Sprintf("; review %s must be approved by %s, and until then you cannot break glass again", bg.Review, bg.Due.UTC().Format(time.RFC3339))
			}
			return exitOK, line
		}
		return exitOK, fmt.Sprintf("approved: %s by %s", what, voters(v, api.DecisionApprove))
	case api.StateDenied:
		line := fmt.Sprintf("denied: %s by %s", what, voters(v, api.DecisionDeny))
		for _, vote := range v.Votes {
			if vote.Decision == api.DecisionDeny && vote.Reason != "" {
				line += ": " + oneLine(vote.Reason)
				break
			}
		}
		return exitDenied, line
	case api.StateExpired:
		return exitExpired, fmt.Sprintf("expired: %s was not decided by %s (%d of %d approvals)", what, v.ExpiresAt.UTC().Format(time.RFC3339), v.Approvals, v.MinApprovals)
	case api.StateCancelled:
		if v.DecidedBy == api.DecidedByAdmin {
			return exitCancelled, fmt.Sprintf("cancelled: %s was cancelled by a signoff admin (the audit log has who and why)", what)
		}
		return exitCancelled, fmt.Sprintf("cancelled: %s was cancelled by its requester", what)
	case api.StatePending:
		return exitPending, fmt.Sprintf("still pending: %s after waiting %s: %s", what, timeout, pendingSummary(v))
	}
	return exitFailure, fmt.Sprintf("%s is in an unknown state %q", what, v.State)
}

func voters(v api.Request, d api.Decision) string {
	var names []string
	for _, vote := range v.Votes {
		if vote.Decision == d {
			names = append(names, voterName(vote))
		}
	}
	if len(names) == 0 {
		return "nobody recorded"
	}
	return strings.Join(names, ", ")
}

func voterName(v api.Vote) string {
	switch {
	case v.Name != "":
		return oneLine(v.Name)
	case v.Email != "":
		return oneLine(v.Email)
	}
	return oneLine(v.Subject)
}

// oneLine keeps server-supplied text on one line of the CI log, with
// nothing a terminal or the CI runner would interpret: white space folds
// into single spaces, and text holding any other character that is not
// printable (an escape sequence, a direction control, a line separator)
// is shown quoted (termSafe).
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = text.Cut(s, 300) + "…"
	}
	return termSafe(s)
}

// pendingSummary says how far a pending request has come.
func pendingSummary(v api.Request) string {
	s := fmt.Sprintf("%d of %d approvals, %d more needed", v.Approvals, v.MinApprovals, v.Remaining)
	if rules := rulesNeeded(v.Rules); rules != "" {
		s += "; " + rules
	}
	if len(v.Votes) > 0 {
		s += "; approved by " + voters(v, api.DecisionApprove)
	}
	return s
}

// requestClient makes the API calls of `signoff request` through an
// api.Client, with the retries, token renewals and progress notes of a CI
// step.
type requestClient struct {
	api    *api.Client
	base   string
	tok    *tokenSource
	stderr io.Writer
	// lastNote avoids repeating the same retry message.
	lastNote string
}

// transientStatus is an answer worth retrying: the server (or a proxy in
// front of it) is restarting, overloaded or failing for now.
func transientStatus(status int) bool {
	return status >= 500 || status == http.StatusTooManyRequests || status == http.StatusRequestTimeout
}

// permanentTransportError is a transport error retrying cannot fix.
func permanentTransportError(err error) bool {
	var certErr *tls.CertificateVerificationError
	var unknownCA x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	return errors.As(err, &certErr) || errors.As(err, &unknownCA) || errors.As(err, &hostErr)
}

// refusal turns an error answer that is not worth retrying into an error
// with the exit code README.md ("`signoff request`") gives it.
func (c *requestClient) refusal(e *api.Error, what string) error {
	text := apiErrorText(e)
	switch e.Status {
	case http.StatusUnauthorized:
		return withCode(exitRefused, fmt.Errorf("the server at %s refused the token (from %s): %s", c.base, c.tok.origin, text))
	case http.StatusForbidden, http.StatusBadRequest, http.StatusConflict, http.StatusRequestEntityTooLarge:
		return withCode(exitRefused, fmt.Errorf("the server refused to %s: %s", what, text))
	}
	if e.Status >= 300 && e.Status < 400 {
		return fmt.Errorf("%s answered with a redirect (%d) to %q: use the final URL as --server", c.base, e.Status, e.Header.Get("Location"))
	}
	if e.Status == http.StatusNotFound && e.Code == "" {
		return fmt.Errorf("%s does not serve the signoff API (404 for /v1/requests): check --server", c.base)
	}
	return fmt.Errorf("could not %s: %s", what, text)
}

// rateLimitedDelay is how long to wait before retrying a create that
// signoff refused with 429 rate_limited: its Retry-After in full (a
// shorter wait would only be refused again), else the next backoff.
//
// Over limits.requests_per_minute the wait is seconds; over
// limits.pending_per_requester it is a minute at a time, until one of the
// requester's pending requests is decided, cancelled or expires. Only
// --wait retries (until --timeout): without it the command fails at once
// (exit 1) with the server's message, which says when to try again.
func rateLimitedDelay(h http.Header, bo *backoff) time.Duration {
	if s, err := strconv.Atoi(h.Get("Retry-After")); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	return bo.next(nil)
}

// note prints a progress or retry message unless it repeats the last one.
func (c *requestClient) note(msg string) {
	if msg == c.lastNote {
		return
	}
	c.lastNote = msg
	// Notes quote the server (its error answers, transport errors): one
	// line, nothing the terminal or the CI runner would interpret.
	fmt.Fprintln(c.stderr, termSafe(strings.Join(strings.Fields(msg), " ")))
}

// create POSTs the request, retrying transient failures (safe: the
// Idempotency-Key makes a repeat return the same request) up to attempts
// times (0: until deadline). A refusal by signoff's limits (429
// rate_limited) is retried after its Retry-After only when attempts is 0
// (--wait), and fails at once otherwise.
func (c *requestClient) create(ctx context.Context, body api.CreateRequest, key string, deadline time.Time, attempts int) (api.Request, bool, error) {
	bo := newBackoff()
	refreshed := false
	for attempt := 1; ; attempt++ {
		callCtx, cancel := context.WithTimeout(ctx, callTimeout)
		v, created, err := c.api.Create(callCtx, body, key)
		cancel()
		if err == nil {
			return v, created, nil
		}
		var answer *api.Error
		var bad *api.AnswerError
		var header http.Header
		var problem string
		switch {
		case errors.As(err, &bad):
			return api.Request{}, false, fmt.Errorf("the server at %s answered %d with something that is not a request", c.base, bad.Status)
		case errors.As(err, &answer):
			header = answer.Header
			renewed, renewErr := c.renewTokenAfter(ctx, answer, &refreshed)
			if renewErr != nil {
				return api.Request{}, false, renewErr
			}
			if renewed {
				continue
			}
			switch {
			case answer.Status == http.StatusTooManyRequests && answer.Code == api.CodeRateLimited:
				// signoff's own limits (see rateLimitedDelay).
				problem = fmt.Sprintf("the server at %s answered %s", c.base, apiErrorText(answer))
				if attempts > 0 {
					return api.Request{}, false, withCode(exitFailure, fmt.Errorf("%s; not retried without --wait: run again later, or use --wait to wait it out", problem))
				}
				delay := rateLimitedDelay(answer.Header, bo)
				if time.Now().Add(delay).After(deadline) {
					return api.Request{}, false, withCode(exitFailure, fmt.Errorf("%s; --timeout runs out before the retry it asks for (in %s)", problem, delay))
				}
				c.note(fmt.Sprintf("%s; retrying in %s", problem, delay))
				if err := sleep(ctx, delay); err != nil {
					return api.Request{}, false, fmt.Errorf("interrupted before the request was created: %w", err)
				}
				continue
			case transientStatus(answer.Status):
				problem = fmt.Sprintf("the server at %s answered %s", c.base, apiErrorText(answer))
			default:
				return api.Request{}, false, c.refusal(answer, "create the request")
			}
		case ctx.Err() != nil:
			return api.Request{}, false, fmt.Errorf("interrupted before the request was created: %w", ctx.Err())
		case permanentTransportError(err):
			return api.Request{}, false, fmt.Errorf("cannot reach signoff at %s: %w", c.base, err)
		default:
			problem = fmt.Sprintf("cannot reach signoff at %s: %v", c.base, redactURLError(err))
		}
		delay := bo.next(header)
		if (attempts > 0 && attempt >= attempts) || time.Now().Add(delay).After(deadline) {
			return api.Request{}, false, fmt.Errorf("%s; gave up after %d attempts", problem, attempt)
		}
		c.note(fmt.Sprintf("%s; retrying", problem))
		if err := sleep(ctx, delay); err != nil {
			return api.Request{}, false, fmt.Errorf("interrupted before the request was created: %w", err)
		}
	}
}

// wait long-polls the request until it leaves pending or the deadline
// passes, and returns it as last seen. Transient failures (the server
// restarting, network errors) are retried with backoff until the deadline.
func (c *requestClient) wait(ctx context.Context, v api.Request, deadline time.Time) (api.Request, error) {
	bo := newBackoff()
	lastProgress := pendingSummary(v)
	lost := ""
	refreshed := false
	for {
		wait := min(time.Until(deadline), pollWait).Truncate(time.Millisecond)
		if wait < 100*time.Millisecond {
			return v, nil
		}
		callCtx, cancel := context.WithTimeout(ctx, wait+callTimeout)
		got, err := c.api.Get(callCtx, v.ID, wait)
		cancel()
		var answer *api.Error
		var bad *api.AnswerError
		var header http.Header
		var problem string
		switch {
		case err == nil:
			v, refreshed = got, false
			bo.reset()
			if lost != "" {
				fmt.Fprintf(c.stderr, "reached signoff at %s again\n", c.base)
				lost, c.lastNote = "", ""
			}
			if v.State != api.StatePending {
				return v, nil
			}
			if p := pendingSummary(v); p != lastProgress {
				lastProgress = p
				fmt.Fprintf(c.stderr, "request %s: %s\n", v.ID, p)
			}
			continue
		case errors.As(err, &bad):
			problem = fmt.Sprintf("the server at %s answered with something that is not request %s", c.base, v.ID)
		case errors.As(err, &answer):
			header = answer.Header
			renewed, renewErr := c.renewTokenAfter(ctx, answer, &refreshed)
			if renewErr != nil {
				return v, renewErr
			}
			if renewed {
				continue
			}
			switch {
			case answer.Status == http.StatusUnauthorized:
				return v, withCode(exitRefused, fmt.Errorf("the server at %s no longer accepts the token (from %s) while waiting for %s: %s; the token may have expired: use a longer-lived token or a shorter --timeout",
					c.base, c.tok.origin, v.ID, apiErrorText(answer)))
			case answer.Status == http.StatusNotFound:
				return v, fmt.Errorf("the server at %s no longer knows request %s (%s): was its database replaced?", c.base, v.ID, apiErrorText(answer))
			case transientStatus(answer.Status):
				problem = fmt.Sprintf("the server at %s answered %s", c.base, apiErrorText(answer))
			default:
				return v, c.refusal(answer, "read request "+v.ID)
			}
		case ctx.Err() != nil:
			return v, fmt.Errorf("interrupted while waiting; request %s is still %s: %w", v.ID, v.State, ctx.Err())
		default:
			problem = fmt.Sprintf("cannot reach signoff at %s: %v", c.base, redactURLError(err))
		}
		if lost == "" {
			lost = problem
		}
		delay := bo.next(header)
		c.note(fmt.Sprintf("%s; retrying (request %s was last seen %s)", problem, v.ID, v.State))
		if until := time.Until(deadline); delay > until {
			delay = until
		}
		if err := sleep(ctx, delay); err != nil {
			return v, fmt.Errorf("interrupted while waiting; request %s is still %s: %w", v.ID, v.State, err)
		}
	}
}

// renewTokenAfter fetches a fresh CI token when answer is a 401, the
// token can be fetched anew and *refreshed says it was not already since
// the last good answer (CI tokens are short-lived: a fresh one lets the
// client carry on). It reports whether it did, so the call is tried
// again, and then sets *refreshed.
func (c *requestClient) renewTokenAfter(ctx context.Context, answer *api.Error, refreshed *bool) (bool, error) {
	if answer.Status != http.StatusUnauthorized || c.tok.refresh == nil || *refreshed {
		return false, nil
	}
	*refreshed = true
	if err := c.tok.renew(ctx); err != nil {
		return false, err
	}
	return true, nil
}

// backoff is capped exponential backoff with jitter.
type backoff struct{ n int }

func newBackoff() *backoff { return &backoff{} }

func (b *backoff) reset() { b.n = 0 }

// next returns the delay before the next try: Retry-After when the server
// sent one (capped), else base·2ⁿ capped at backoffMax, with jitter
// (between half and all of it).
func (b *backoff) next(h http.Header) time.Duration {
	if h != nil {
		if s, err := strconv.Atoi(h.Get("Retry-After")); err == nil && s >= 0 {
			b.n++
			return min(time.Duration(s)*time.Second, backoffMax)
		}
	}
	d := backoffBase << min(b.n, 10)
	d = min(d, backoffMax)
	b.n++
	return d/2 + randv2.N(d/2+1)
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// tokenSource is where the bearer token came from, and how to get a fresh
// one when it can be renewed (GitHub Actions).
type tokenSource struct {
	origin  string
	value   string
	refresh func(ctx context.Context) (string, error)
}

// current returns the token as it stands (an api.TokenFunc).
func (t *tokenSource) current(context.Context) (string, error) { return t.value, nil }

func (t *tokenSource) renew(ctx context.Context) error {
	v, err := t.refresh(ctx)
	if err != nil {
		return err
	}
	t.value = v
	return nil
}

// resolveToken finds the token: --token, --token-env, $SIGNOFF_TOKEN,
// GitHub Actions, $SIGNOFF_ID_TOKEN (GitLab CI), in that order.
func resolveToken(ctx context.Context, o requestOptions, getenv func(string) string, httpc *http.Client) (*tokenSource, error) {
	if t := strings.TrimSpace(o.token); t != "" {
		return &tokenSource{origin: "--token", value: t}, nil
	}
	if o.tokenEnv != "" {
		t := strings.TrimSpace(getenv(o.tokenEnv))
		if t == "" {
			return nil, usageErrorf("--token-env %s: the variable is not set or empty; on GitLab CI declare it under id_tokens: with aud: %s", o.tokenEnv, o.audience)
		}
		return &tokenSource{origin: "$" + o.tokenEnv, value: t}, nil
	}
	if t := strings.TrimSpace(getenv("SIGNOFF_TOKEN")); t != "" {
		return &tokenSource{origin: "$SIGNOFF_TOKEN", value: t}, nil
	}
	if reqURL, reqTok := getenv("ACTIONS_ID_TOKEN_REQUEST_URL"), getenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN"); reqURL != "" && reqTok != "" {
		fetch := func(ctx context.Context) (string, error) {
			return fetchGitHubToken(ctx, httpc, reqURL, reqTok, o.audience)
		}
		t, err := fetch(ctx)
		if err != nil {
			return nil, err
		}
		return &tokenSource{origin: "GitHub Actions", value: t, refresh: fetch}, nil
	}
	if t := strings.TrimSpace(getenv(gitLabTokenEnv)); t != "" {
		return &tokenSource{origin: "$" + gitLabTokenEnv, value: t}, nil
	}
	hint := ""
	if getenv("GITHUB_ACTIONS") == "true" {
		hint = "\nThis is GitHub Actions, but ACTIONS_ID_TOKEN_REQUEST_URL is not set: give the job `permissions: id-token: write`."
	}
	return nil, usageErrorf(`no token to authenticate with; give one of:
  --token TOKEN, or $SIGNOFF_TOKEN
  GitHub Actions: run with "permissions: id-token: write" (the token is fetched for audience %s)
  GitLab CI: "id_tokens: %s: {aud: %s}" (or name another variable with --token-env NAME)
  dev mode: --token "$(signoff dev token --server URL)"%s`, o.audience, gitLabTokenEnv, o.audience, hint)
}

// fetchGitHubToken gets an OIDC token for audience from GitHub Actions'
// token endpoint, retrying network errors and 5xx a few times.
func fetchGitHubToken(ctx context.Context, httpc *http.Client, reqURL, reqToken, audience string) (string, error) {
	u, err := url.Parse(reqURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "", usageErrorf("ACTIONS_ID_TOKEN_REQUEST_URL is not an http(s) URL")
	}
	q := u.Query()
	q.Set("audience", audience)
	u.RawQuery = q.Encode()
	bo := newBackoff()
	const attempts = 4
	for attempt := 1; ; attempt++ {
		tok, retry, err := githubTokenOnce(ctx, httpc, u.String(), reqToken)
		if err == nil || !retry || attempt == attempts {
			return tok, err
		}
		if err := sleep(ctx, bo.next(nil)); err != nil {
			return "", fmt.Errorf("fetching the GitHub Actions OIDC token: %w", err)
		}
	}
}

func githubTokenOnce(ctx context.Context, httpc *http.Client, reqURL, reqToken string) (tok string, retry bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, reqURL, nil)
	if err != nil {
		return "", false, fmt.Errorf("fetching the GitHub Actions OIDC token: %w", err)
	}
	req.Header.Set("Authorization", "bearer "+reqToken)
	req.Header.Set("Accept", "application/json")
	resp, err := httpc.Do(req)
	if err != nil {
		return "", ctx.Err() == nil, fmt.Errorf("cannot reach GitHub's OIDC token endpoint: %w", redactURLError(err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", true, fmt.Errorf("reading GitHub's OIDC token: %w", err)
	}
	switch {
	case transientStatus(resp.StatusCode):
		return "", true, fmt.Errorf("GitHub's OIDC token endpoint answered %s", resp.Status)
	case resp.StatusCode != http.StatusOK:
		return "", false, withCode(exitRefused, fmt.Errorf("GitHub refused to issue an OIDC token (%s): does the job have `permissions: id-token: write`?", resp.Status))
	}
	var out struct {
		Value string `json:"value"`
	}
	if err := json.Unmarshal(data, &out); err != nil || out.Value == "" {
		return "", false, errors.New("GitHub's OIDC token endpoint answered without a token (no \"value\")")
	}
	return out.Value, false, nil
}

// redactURLError drops the URL from a transport error: the caller names
// the server already, and GitHub's token URL may carry per-job material.
func redactURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// deriveIdempotencyKey returns the Idempotency-Key for a request when
// --idempotency-key is not given, and says where it came from.
//
// GitHub Actions: run id + run attempt + a digest of (job, action, params,
// reason, links). GitLab CI: job id (a retried job gets a new one) + a
// digest of (action, params, reason, links). The same step run again in
// the same attempt (a retry wrapper, a restarted runner) reuses the
// request; a new attempt or a different ask creates a new one, and matrix
// legs asking for different params do not collide. Outside CI: a random
// key, which only makes this command's own retries safe.
func deriveIdempotencyKey(getenv func(string) string, body api.CreateRequest) (key, origin string) {
	digest := func(parts ...string) string {
		h := sha256.New()
		for _, p := range parts {
			h.Write([]byte(p))
			h.Write([]byte{0})
		}
		b, _ := json.Marshal(body)
		h.Write(b)
		return hex.EncodeToString(h.Sum(nil))[:32]
	}
	if getenv("GITHUB_ACTIONS") == "true" && getenv("GITHUB_RUN_ID") != "" {
		attempt := getenv("GITHUB_RUN_ATTEMPT")
		if attempt == "" {
			attempt = "1"
		}
		return fmt.Sprintf("github-%s-%s-%s", safeKeyPart(getenv("GITHUB_RUN_ID")), safeKeyPart(attempt), digest(getenv("GITHUB_JOB"))),
			"derived from the GitHub Actions run"
	}
	if getenv("GITLAB_CI") == "true" && getenv("CI_JOB_ID") != "" {
		return fmt.Sprintf("gitlab-%s-%s", safeKeyPart(getenv("CI_JOB_ID")), digest()), "derived from the GitLab CI job"
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	return "cli-" + hex.EncodeToString(b[:]), "random for this invocation"
}

// safeKeyPart keeps an environment value short and printable inside a key.
func safeKeyPart(s string) string {
	var b strings.Builder
	for _, r := range s {
		if b.Len() >= 40 {
			break
		}
		if r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '_' || r == '.' {
			b.WriteRune(r)
		}
	}
	return b.String()
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
