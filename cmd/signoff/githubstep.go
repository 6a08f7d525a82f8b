package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/signoff-dev/signoff/api"
)

// outputGitHub is `signoff request --output github`: the text output as
// GitHub Actions workflow commands (docs/ci.md).
const outputGitHub = "github"

// States the step output "state" takes when no request was made.
const (
	// githubStateRefused: signoff refused to create the request (exit 3:
	// the token, the action or its params).
	githubStateRefused = "refused"
	// githubStateError: anything else kept the request from being made
	// (usage errors, an unreachable server).
	githubStateError = "error"
)

// githubStep prints `signoff request --output github`: everything the
// command says inside a collapsible group, then the outcome as an
// annotation, which GitHub also lists on the run's summary page.
//
// Only the group title, the annotations and the lines the command already
// prints reach the log, and every one of those lines begins with text of
// signoff's own, so nothing a requester or approver wrote can start a line
// and be read as a workflow command (the runner reads commands only at the
// start of a line). Text inside a command is escaped as GitHub's toolkit
// escapes it (escapeCommandData).
type githubStep struct {
	w io.Writer
}

// startGitHubStep opens the group that holds the progress of a request for
// action.
func startGitHubStep(w io.Writer, action string) *githubStep {
	fmt.Fprintf(w, "::group::%s\n", escapeCommandData("signoff: approval for "+oneLine(action)))
	return &githubStep{w: w}
}

// finish closes the group and reports the outcome as an annotation:
// ::notice:: for success (approved, or created without --wait), ::error::
// otherwise. It returns err with its exit code kept and its message
// already printed, in the annotation.
func (s *githubStep) finish(v api.Request, err error, timeout time.Duration) error {
	fmt.Fprintln(s.w, "::endgroup::")
	if err == nil {
		line := ""
		if v.State == api.StatePending {
			line = fmt.Sprintf("created request %s (%s), not waiting for its decision: %s", v.ID, v.Action, pendingSummary(v))
		} else {
			_, line = outcome(v, timeout)
		}
		fmt.Fprintf(s.w, "::notice title=signoff::%s\n", escapeCommandData(line))
		return nil
	}
	fmt.Fprintf(s.w, "::error title=signoff::%s\n", escapeCommandData(err.Error()))
	return &exitError{code: exitCodeOf(err), err: err, quiet: true}
}

// exitCodeOf is the exit code run gives err.
func exitCodeOf(err error) int {
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return exitFailure
}

// escapeCommandData escapes the message of a workflow command the way
// GitHub's runner unescapes it, so a message stays one line and says
// exactly what it says.
func escapeCommandData(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A").Replace(s)
}

// writeGitHubOutputs appends the step outputs of a `signoff request` to the
// file GitHub Actions reads them from ($GITHUB_OUTPUT): request-id, state
// (the request's state as last seen; githubStateRefused or githubStateError
// when no request was made), approvers (who approved, comma-separated) and
// attestation (the approved request's attestation; empty when there is
// none).
//
// Each value is written in GitHub's multi-line form, name<<DELIMITER, with
// a random delimiter that the value does not contain, so no value can end
// early and set another output.
func writeGitHubOutputs(path string, v api.Request, attestation string, runErr error) error {
	state := string(v.State)
	if v.ID == "" {
		state = githubStateError
		if exitCodeOf(runErr) == exitRefused {
			state = githubStateRefused
		}
	}
	var b strings.Builder
	for _, out := range []struct{ name, value string }{
		{"request-id", v.ID},
		{"state", state},
		{"approvers", approverList(v)},
		{"attestation", attestation},
	} {
		delim, err := outputDelimiter(out.value)
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s<<%s\n%s\n%s\n", out.name, delim, out.value, delim)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("--github-output: cannot open the step outputs file: %w (pass the path in $GITHUB_OUTPUT)", err)
	}
	if _, err := io.WriteString(f, b.String()); err != nil {
		f.Close()
		return fmt.Errorf("--github-output: writing the step outputs: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("--github-output: writing the step outputs: %w", err)
	}
	return nil
}

// outputDelimiter returns a random heredoc delimiter that value does not
// contain.
func outputDelimiter(value string) (string, error) {
	for range 8 {
		var b [16]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", fmt.Errorf("--github-output: no randomness for a delimiter: %w", err)
		}
		d := "ghadelimiter_" + hex.EncodeToString(b[:])
		if !strings.Contains(value, d) {
			return d, nil
		}
	}
	return "", errors.New("--github-output: every random delimiter occurred in an output value")
}

// approverList names who approved v, comma-separated: each approver's
// email, else their subject at the identity provider.
func approverList(v api.Request) string {
	var names []string
	for _, vote := range v.Votes {
		if vote.Decision != api.DecisionApprove {
			continue
		}
		name := vote.Email
		if name == "" {
			name = vote.Subject
		}
		names = append(names, oneLine(name))
	}
	return strings.Join(names, ",")
}
