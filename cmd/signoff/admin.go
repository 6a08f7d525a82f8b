package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/signoff-dev/signoff/api"
	"github.com/signoff-dev/signoff/storage"
	"github.com/signoff-dev/signoff/storage/boltstore"
)

// adminCallTimeout bounds one admin API call (not a backup download, which
// takes as long as the copy needs).
const adminCallTimeout = time.Minute

// adminClient calls a running server's admin API as a person (an admin or
// an auditor), with the token personToken finds.
type adminClient struct {
	base string
	api  *api.Client
}

// newAdminClient checks --server and finds the token for it.
func newAdminClient(cmd *cobra.Command, server string) (*adminClient, error) {
	base, err := parseServerURL(server)
	if err != nil {
		return nil, err
	}
	tok, err := personToken(cmd, base)
	if err != nil {
		return nil, err
	}
	c, err := newAPIClient(base, api.StaticToken(tok), newHTTPClient())
	if err != nil {
		return nil, err
	}
	return &adminClient{base: base, api: c}, nil
}

// failed turns the error of a call (what: its method and path) into an
// error with its exit code: 3 for a refused token (401, 403), 1 otherwise.
func (c *adminClient) failed(err error, what string) error {
	var answer *api.Error
	var bad *api.AnswerError
	switch {
	case errors.As(err, &bad):
		return fmt.Errorf("%s: the answer is not what signoff sends (%v); is --server a signoff server?", what, bad.Err)
	case !errors.As(err, &answer):
		return fmt.Errorf("cannot reach signoff at %s: %w", c.base, redactURLError(err))
	case answer.Status == http.StatusUnauthorized:
		return withCode(exitRefused, fmt.Errorf("%s: the server at %s refused the token: %s", what, c.base, apiErrorText(answer)))
	case answer.Status == http.StatusForbidden:
		return withCode(exitRefused, fmt.Errorf("%s: %s", what, apiErrorText(answer)))
	case answer.Status >= 300 && answer.Status < 400:
		return fmt.Errorf("%s answered with a redirect (%d) to %q: use the final URL as --server", c.base, answer.Status, answer.Header.Get("Location"))
	case answer.Status == http.StatusNotFound && answer.Code == "":
		return fmt.Errorf("%s does not serve the signoff admin API (404 for %s): check --server", c.base, what)
	}
	return fmt.Errorf("%s: %s", what, apiErrorText(answer))
}

// listLinks reads GET /v1/links with the filters that are set.
func (c *adminClient) listLinks(ctx context.Context, q api.LinkQuery) ([]api.LinkedAccount, error) {
	ctx, cancel := context.WithTimeout(ctx, adminCallTimeout)
	defer cancel()
	links, err := c.api.Links(ctx, q)
	if err != nil {
		return nil, c.failed(err, "GET /v1/links")
	}
	return links, nil
}

// revokeLink revokes a link with DELETE /v1/links/….
func (c *adminClient) revokeLink(ctx context.Context, w io.Writer, platform, workspace, user, reason string) error {
	ctx, cancel := context.WithTimeout(ctx, adminCallTimeout)
	defer cancel()
	revoked, err := c.api.RevokeLink(ctx, platform, workspace, user, reason)
	if err != nil {
		return c.failed(err, "DELETE /v1/links/"+url.PathEscape(platform)+"/"+url.PathEscape(workspace)+"/"+url.PathEscape(user))
	}
	printRevoked(w, platform, workspace, user, revoked.Subject, revoked.Email, "identity.unlinked with you as the actor")
	return nil
}

// listRequests reads GET /v1/requests.
func (c *adminClient) listRequests(ctx context.Context, q api.RequestQuery) (api.RequestList, error) {
	ctx, cancel := context.WithTimeout(ctx, adminCallTimeout)
	defer cancel()
	out, err := c.api.Requests(ctx, q)
	if err != nil {
		return api.RequestList{}, c.failed(err, "GET /v1/requests")
	}
	return out, nil
}

// commandGroup is a command that only holds its subcommands.
func commandGroup(use, short string, subcommands ...*cobra.Command) *cobra.Command {
	cmd := &cobra.Command{Use: use, Short: short}
	cmd.AddCommand(subcommands...)
	return cmd
}

func newRequestsCommand() *cobra.Command {
	return commandGroup("requests", "List a running server's requests (admins and auditors); lift a break-glass block (admins)", newRequestsListCommand(), newRequestsLiftBlockCommand())
}

func newRequestsListCommand() *cobra.Command {
	var server, state, action, output string
	var limit int
	cmd := &cobra.Command{
		Use:   "list --server URL [--state pending] [--action NAME] [--limit N] [--output text|json]",
		Short: "List requests, newest first",
		Long: `List the requests of a running signoff server, newest first, with GET
/v1/requests: id, action, state, requester, approvals so far and when it was
created and decided (or expires). --state takes pending, approved, denied,
expired or cancelled (several separated by commas); without it every state is
listed.

--output json prints the server's answer (same exit codes as the text form):

  {"requests": [{
     "id": "req_…", "action": "deploy-prod", "state": "pending",
     "params": {"service": "api"}, "reason": "…", "links": [{"title", "url"}],
     "requester": {"issuer": "github", "subject": "repo:acme/api:…", "person": "octocat"},
     "min_approvals": 2, "approvals": 1, "remaining": 1,
     "votes": [{"decision": "approve", "name", "email", "subject", "platform", "time", "reason"}],
     "created_at": "…", "expires_at": "…", "decided_at": "…", "decided_by": "quorum",
     "execution": {"status", "attempts", "last_error"}, "url": "…"
   }],
   "truncated": true}

each entry exactly as GET /v1/requests/{id} shows it, newest first (members
that are empty, such as params, votes, decided_at or execution, are left out);
"requests" is [] when none match, and "truncated" is present, true, only when
more requests match than --limit.

The token (--token, $SIGNOFF_TOKEN, or the sign-in of 'signoff login') must
hold one of admins.groups or auditors.groups.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "text" && output != "json" {
				return usageErrorf("--output %q: use text or json", output)
			}
			if limit < 1 || limit > api.MaxRequestsLimit {
				return usageErrorf("--limit %d: use 1 to %d", limit, api.MaxRequestsLimit)
			}
			if server == "" {
				server = os.Getenv("SIGNOFF_SERVER")
			}
			c, err := newAdminClient(cmd, server)
			if err != nil {
				return err
			}
			q := api.RequestQuery{Action: action, Limit: limit}
			if state != "" {
				for _, st := range strings.Split(state, ",") {
					q.States = append(q.States, api.State(st))
				}
			}
			out, err := c.listRequests(cmd.Context(), q)
			if err != nil {
				return err
			}
			if output == "json" {
				if out.Requests == nil {
					out.Requests = []api.Request{}
				}
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(out)
			}
			if err := writeRequestsTable(cmd.OutOrStdout(), out.Requests, time.Now()); err != nil {
				return err
			}
			if out.Truncated {
				fmt.Fprintf(cmd.ErrOrStderr(), "more requests match than --limit %d shows: narrow the listing (--state, --action) or raise --limit\n", limit)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&server, "server", "", "base URL of the signoff server (default $SIGNOFF_SERVER)")
	f.String("token", "", "an admin's or auditor's token (default $SIGNOFF_TOKEN, then the sign-in of 'signoff login')")
	f.StringVar(&state, "state", "", "only requests in this state: pending, approved, denied, expired, cancelled (comma-separated)")
	f.StringVar(&action, "action", "", "only requests of this action")
	f.IntVar(&limit, "limit", api.DefaultRequestsLimit, "list at most this many")
	addOutputFlag(cmd, &output)
	return cmd
}

func newRequestsLiftBlockCommand() *cobra.Command {
	var server, reason string
	cmd := &cobra.Command{
		Use:   "lift-block REVIEW_ID --reason TEXT --server URL",
		Short: "Let the requester of a break-glass review that ended without approval break glass again",
		Long: `A break-glass review that ended without approval (denied: the finding that
the break-glass was not justified; or cancelled by an admin) keeps its
requester's next --break-glass refused (403 review_pending, naming the review)
until an admin lifts that block. lift-block lifts it, with POST
/v1/requests/{id}/lift-block; --reason is required and is written to the audit
log (break_glass.lifted, you as the actor).

Only admins (admins.groups) may, and not for a review of their own
break-glass. A pending review is decided by its reviewers (or cancelled by an
admin first); an approved review holds no block. Find such reviews with
'signoff requests list --state denied,cancelled --action ACTION:review'.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if strings.TrimSpace(reason) == "" {
				return usageErrorf("requests lift-block needs --reason TEXT, for the audit log")
			}
			if server == "" {
				server = os.Getenv("SIGNOFF_SERVER")
			}
			c, err := newAdminClient(cmd, server)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), adminCallTimeout)
			defer cancel()
			id := args[0]
			r, err := c.api.LiftBlock(ctx, id, reason)
			if err != nil {
				return c.failed(err, "POST /v1/requests/"+url.PathEscape(id)+"/lift-block")
			}
			fmt.Fprintln(cmd.OutOrStdout(), liftedText(r))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&server, "server", "", "base URL of the signoff server (default $SIGNOFF_SERVER)")
	f.String("token", "", "an admin's token (default $SIGNOFF_TOKEN, then the sign-in of 'signoff login')")
	f.StringVar(&reason, "reason", "", "why the block is lifted, for the audit log (required)")
	return cmd
}

// liftedText says whose block a lift released. The requester's names come
// from their CI token, so they are made safe for a terminal.
func liftedText(r api.Request) string {
	reviewed := ""
	if r.BreakGlass != nil {
		reviewed = " (it reviewed break-glass request " + r.BreakGlass.Reviews + ")"
	}
	who := termSafe(r.Requester.Issuer + ":" + cmp.Or(r.Requester.Person, r.Requester.Subject))
	return fmt.Sprintf("lifted the block of %s review %s%s: %s may break glass again; audited as break_glass.lifted with you as the actor", r.State, r.ID, reviewed, who)
}

// writeRequestsTable prints requests as an aligned table.
func writeRequestsTable(w io.Writer, reqs []api.Request, now time.Time) error {
	const header = "ID\tACTION\tSTATE\tREQUESTER\tAPPROVALS\tCREATED\tDECIDED/EXPIRES\tREASON"
	return writeTable(w, reqs, "no requests", header, "requests", func(tw io.Writer, r api.Request) {
		requester := r.Requester.Issuer + ":" + r.Requester.Subject
		if r.Requester.Person != "" {
			requester = r.Requester.Issuer + ":" + r.Requester.Person
		}
		when := "expires " + r.ExpiresAt.UTC().Format(time.RFC3339)
		if r.DecidedAt != nil {
			when = r.DecidedAt.UTC().Format(time.RFC3339)
		}
		reason := oneLine(r.Reason)
		if len(reason) > 60 {
			reason = reason[:60] + "…"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d/%d\t%s\t%s\t%s\n",
			termSafe(r.ID), termSafe(r.Action), termSafe(string(r.State)), termSafe(requester), r.Approvals, r.MinApprovals,
			ageText(now, r.CreatedAt), when, termSafe(orDash(reason)))
	})
}

func newBackupCommand() *cobra.Command {
	var server, db, out string
	cmd := &cobra.Command{
		Use:   "backup (--server URL | --db FILE) -o FILE",
		Short: "Copy the bbolt database consistently: from a running server, or a stopped one's file",
		Long: `Write a consistent copy of signoff's bbolt database to FILE.

--server URL asks a running server (GET /v1/backup) with an admin's token
(--token, $SIGNOFF_TOKEN, or the sign-in of 'signoff login'; it must hold one
of admins.groups). The server copies the database from one read transaction
while it keeps serving, writes an admin.backup audit record first (so the copy
holds it), and streams the copy. A server on PostgreSQL answers 501: back that
up with pg_dump.

--db FILE copies a database file no server holds (the same way, from a
read-only open). While a server runs on the file, bbolt's lock refuses: use
--server then.

The copy is written next to FILE under a temporary name, checked to open as a
signoff database, and then renamed to FILE, so FILE is either the old content
or a complete copy. Restore: stop signoff, copy the backup to storage.path,
start signoff.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (db == "") == (server == "") {
				return usageErrorf("backup needs either --server URL (a running server) or --db FILE (a stopped server's storage.path), not both")
			}
			if out == "" || out == "-" {
				return usageErrorf("backup needs -o FILE: where to write the copy")
			}
			if db != "" {
				if same, _ := sameFile(db, out); same {
					return usageErrorf("-o %s is the database itself: write the copy somewhere else", out)
				}
				n, err := backupFile(cmd.Context(), db, out)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "wrote %d bytes to %s: a consistent copy of %s\n", n, out, db)
				return nil
			}
			c, err := newAdminClient(cmd, server)
			if err != nil {
				return err
			}
			n, err := backupFromServer(cmd.Context(), c, out)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "wrote %d bytes to %s: a consistent copy of the database of %s\n", n, out, c.base)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&server, "server", "", "base URL of a running signoff server (reads GET /v1/backup)")
	f.StringVar(&db, "db", "", "bbolt database file no server holds (a stopped server's storage.path)")
	f.String("token", "", "with --server: an admin's token (default $SIGNOFF_TOKEN, then the sign-in of 'signoff login')")
	f.StringVarP(&out, "output", "o", "", "write the copy to FILE")
	return cmd
}

// sameFile reports whether a and b name one existing file.
func sameFile(a, b string) (bool, error) {
	ai, err := os.Stat(a)
	if err != nil {
		return false, err
	}
	bi, err := os.Stat(b)
	if err != nil {
		return false, err
	}
	return os.SameFile(ai, bi), nil
}

// backupFile copies the database at db, which no server may hold, to out.
func backupFile(ctx context.Context, db, out string) (int64, error) {
	if _, err := os.Stat(db); err != nil {
		return 0, withCode(exitUsage, fmt.Errorf("database %s: %w; pass the storage.path of a stopped signoff server with --db", db, err))
	}
	st, err := boltstore.Open(db, boltstore.Options{ReadOnly: true, LockTimeout: 2 * time.Second})
	if errors.Is(err, storage.ErrLocked) {
		return 0, withCode(exitFailure, fmt.Errorf("%w\n(a running signoff server holds the database: take the backup from it while it serves, with 'signoff backup --server URL -o %s' and an admin's token)", err, out))
	}
	if err != nil {
		return 0, withCode(exitFailure, err)
	}
	defer st.Close()
	var n int64
	err = writeAtomically(out, func(f *os.File) error {
		return st.Snapshot(ctx, func(img storage.BackupImage) error {
			var err error
			n, err = img.WriteTo(f)
			if err == nil && n != img.Size() {
				err = fmt.Errorf("wrote %d bytes of a %d-byte copy", n, img.Size())
			}
			return err
		})
	})
	return n, err
}

// backupFromServer downloads GET /v1/backup to out, refusing a copy
// shorter than the Content-Length the server announced.
func backupFromServer(ctx context.Context, c *adminClient, out string) (int64, error) {
	dl, err := c.api.Backup(ctx)
	var bad *api.AnswerError
	if errors.As(err, &bad) {
		return 0, fmt.Errorf("GET /v1/backup answered with %q, not a database copy: is --server a signoff server?", bad.ContentType)
	}
	if err != nil {
		return 0, c.failed(err, "GET /v1/backup")
	}
	defer dl.Body.Close()
	var n int64
	err = writeAtomically(out, func(f *os.File) error {
		var err error
		n, err = io.Copy(f, dl.Body)
		if err != nil {
			return fmt.Errorf("the copy was cut off after %d bytes (the server stopped, or the connection broke): %w; take it again", n, err)
		}
		if dl.Size >= 0 && n != dl.Size {
			return fmt.Errorf("the copy was cut off after %d of %d bytes; take it again", n, dl.Size)
		}
		return nil
	})
	return n, err
}

// writeAtomically has write fill a temporary file next to path, checks
// that the result opens as a signoff database, and renames it to path.
// On any failure path is left as it was.
func writeAtomically(path string, write func(*os.File) error) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".partial-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := write(f); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	check, err := boltstore.Open(tmp, boltstore.Options{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("the copy does not open as a signoff database, so %s was not written: %w", path, err)
	}
	if err := check.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if d, derr := os.Open(dir); derr == nil {
		_ = d.Sync() // make the rename durable where the platform allows
		d.Close()
	}
	return nil
}
