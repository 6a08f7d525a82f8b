package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"
	"unicode"

	"github.com/spf13/cobra"

	"github.com/signoff-dev/signoff/api"
	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/bot"
	"github.com/signoff-dev/signoff/storage"
	"github.com/signoff-dev/signoff/storage/boltstore"
)

// defaultRevokeReason is audited when revoke gets no --reason;
// defaultServerRevokeReason when it revokes through --server.
const (
	defaultRevokeReason       = "revoked by an operator (signoff links revoke)"
	defaultServerRevokeReason = "revoked by an admin (signoff links revoke --server)"
)

// newLinksCommand is `signoff links`: the operator's view of which chat
// accounts are linked to which IdP identities, and revocation.
func newLinksCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "links",
		Short: "List and revoke approvers' chat-account links to IdP identities",
		Long: `An approver's click counts only through the IdP identity their chat account is
linked to. 'links list' shows the links; 'links revoke' removes one (audited as
identity.unlinked), so that person's clicks count again only after they sign in
anew. With --server URL both work on a running server through its admin API
(an admin's token: --token, $SIGNOFF_TOKEN or the sign-in of 'signoff login');
with --db FILE on the database file of a stopped server.`,
	}
	cmd.AddCommand(newLinksListCommand(), newLinksRevokeCommand())
	return cmd
}

// addLinksTargetFlags registers the flags every links subcommand uses to
// choose where the links live: --db for a stopped server's database file,
// --server for a running server (whose help names endpoint, the admin API
// route the subcommand calls) and --token for the admin's token there.
func addLinksTargetFlags(cmd *cobra.Command, db, server *string, endpoint string) {
	f := cmd.Flags()
	f.StringVar(db, "db", "", "bbolt database file of a stopped server (its storage.path)")
	f.StringVar(server, "server", "", "base URL of a running signoff server ("+endpoint+")")
	f.String("token", "", "with --server: an admin's token (default $SIGNOFF_TOKEN, then the sign-in of 'signoff login')")
}

func newLinksListCommand() *cobra.Command {
	var db, server, platform, workspace, user, email, output string
	cmd := &cobra.Command{
		Use:   "list (--server URL | --db FILE) [--platform P] [--workspace W] [--user U] [--email E] [--output text|json]",
		Short: "Show linked chat accounts, their identity, groups and freshness",
		Long: `Show every chat account linked to an IdP identity: platform, workspace, chat
user, the IdP subject and email, the groups last confirmed by the IdP, how long
ago they were confirmed (verified), and whether the link is stale (the IdP
refused to confirm it; the person must link again).

--output json prints the links as GET /v1/links answers, with --server and
--db alike (same exit codes as the text form):

  {"links": [{
    "platform": "slack", "workspace": "T0123ABCD", "user": "U0456EFGH",
    "issuer": "https://login.example.com", "subject": "00u1abcd",
    "email": "alice@example.com", "name": "Alice",   // left out when unknown
    "groups": ["sre"],
    "verified_at": "2026-03-01T12:00:00Z", "linked_at": "2026-02-01T09:00:00Z",
    "stale": false, "stale_reason": "…",             // stale_reason only when stale
    "matched_by": "email"                            // email, oid or none; left out
  }]}                                                //   for a link not yet proved

"links" is [] when none match. Never a refresh token.

--server URL asks a running server (GET /v1/links) with an admin's token.
--db FILE opens a database file read-only; a running server holds it, so use
--server then, or stop the server first.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (db == "") == (server == "") {
				return usageErrorf("links list needs either --server URL (a running server) or --db FILE (a stopped server's storage.path), not both")
			}
			if output != "text" && output != "json" {
				return usageErrorf("--output %q: use text or json", output)
			}
			links := []api.LinkedAccount{}
			if server != "" {
				c, err := newAdminClient(cmd, server)
				if err != nil {
					return err
				}
				views, err := c.listLinks(cmd.Context(), api.LinkQuery{Platform: platform, Workspace: workspace, User: user, Email: email})
				if err != nil {
					return err
				}
				links = append(links, views...)
			} else {
				st, err := openLinksDB(db, true)
				if err != nil {
					return err
				}
				defer st.Close()
				var stored []storage.IdentityLink
				err = st.View(cmd.Context(), func(tx storage.ReadTx) error {
					var err error
					stored, err = tx.Links(storage.LinkFilter{Platform: platform, Workspace: workspace})
					return err
				})
				if err != nil {
					return fmt.Errorf("list links in %s: %w", db, err)
				}
				for _, l := range stored {
					if (user == "" || l.PlatformUser == user) && (email == "" || strings.EqualFold(l.Email, email)) {
						links = append(links, bot.APILinkedAccount(l))
					}
				}
			}
			if output == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(api.LinkedAccounts{Links: links})
			}
			return writeLinksTable(cmd.OutOrStdout(), links, time.Now())
		},
	}
	addLinksTargetFlags(cmd, &db, &server, "reads GET /v1/links")
	f := cmd.Flags()
	f.StringVar(&platform, "platform", "", "only links of this chat platform (slack, teams, dev)")
	f.StringVar(&workspace, "workspace", "", "only links in this Slack team id or Teams tenant id")
	f.StringVar(&user, "user", "", "only the link of this Slack user id or Teams aadObjectId")
	f.StringVar(&email, "email", "", "only links whose identity has this email")
	addOutputFlag(cmd, &output)
	return cmd
}

// writeLinksTable prints links as an aligned table.
func writeLinksTable(w io.Writer, links []api.LinkedAccount, now time.Time) error {
	const header = "PLATFORM\tWORKSPACE\tUSER\tSUBJECT\tEMAIL\tGROUPS\tVERIFIED\tPROVED\tSTALE"
	return writeTable(w, links, "no linked chat accounts", header, "links", func(tw io.Writer, l api.LinkedAccount) {
		groups := "-"
		if len(l.Groups) > 0 {
			groups = strings.Join(l.Groups, ",")
		}
		stale := "no"
		if l.Stale {
			stale = "yes"
			if l.StaleReason != "" {
				stale += ": " + l.StaleReason
			}
		}
		// PROVED: how the chat account was shown to be the identity's
		// ("email", "oid", "none"); "pending" for a link made before
		// signoff checked it, which is checked at its next click.
		proved := l.MatchedBy
		if proved == "" {
			proved = "pending"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			termSafe(l.Platform), termSafe(orDash(l.Workspace)), termSafe(l.User), termSafe(l.Subject),
			termSafe(orDash(l.Email)), termSafe(groups), ageText(now, l.VerifiedAt), termSafe(proved), termSafe(stale))
	})
}

// ageText renders how long ago t was, coarsely: "45s ago", "3h12m ago",
// "4d2h ago".
func ageText(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t)
	if d < 0 {
		return "in the future (" + t.UTC().Format(time.RFC3339) + ")"
	}
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%dm ago", int(d/time.Hour), int(d%time.Hour/time.Minute))
	}
	return fmt.Sprintf("%dd%dh ago", int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// termSafe keeps values from chat platforms and the IdP from moving the
// cursor or recolouring the terminal, and from breaking the table.
func termSafe(s string) string {
	if strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) || r == '\t' }) < 0 {
		return s
	}
	q := fmt.Sprintf("%q", s)
	return q[1 : len(q)-1]
}

func newLinksRevokeCommand() *cobra.Command {
	var db, server, platform, workspace, user, reason string
	cmd := &cobra.Command{
		Use:   "revoke (--server URL | --db FILE) --platform P --workspace W --user U [--reason TEXT]",
		Short: "Remove a chat account's link (audited as identity.unlinked)",
		Long: `Remove the link of one chat account, so that clicks from it count again only
after the person signs in at the IdP anew. The removal is written to the audit
log as identity.unlinked with --reason.

--server URL revokes on a running server (DELETE /v1/links/…) with an admin's
token: the link stops counting at that account's very next click, and the
audit record names you as its actor. --db FILE opens the database file for
writing, which a running signoff server prevents: use --server then, or stop
the server first.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if db != "" && server != "" {
				return usageErrorf("links revoke takes --server URL (a running server) or --db FILE (a stopped server's storage.path), not both")
			}
			var missing []string
			for _, f := range []struct{ name, v string }{{"--server or --db", server + db}, {"--platform", platform}, {"--workspace", workspace}, {"--user", user}} {
				if f.v == "" {
					missing = append(missing, f.name)
				}
			}
			if len(missing) > 0 {
				return usageErrorf("links revoke needs %s (see 'signoff links list' for the values)", strings.Join(missing, ", "))
			}
			if server != "" {
				c, err := newAdminClient(cmd, server)
				if err != nil {
					return err
				}
				if reason == "" {
					reason = defaultServerRevokeReason
				}
				return c.revokeLink(cmd.Context(), cmd.OutOrStdout(), platform, workspace, user, reason)
			}
			if reason == "" {
				reason = defaultRevokeReason
			}
			st, err := openLinksDB(db, false)
			if err != nil {
				return err
			}
			defer st.Close()
			return revokeLink(cmd.Context(), st, cmd.OutOrStdout(), platform, workspace, user, reason)
		},
	}
	addLinksTargetFlags(cmd, &db, &server, "DELETE /v1/links/…")
	f := cmd.Flags()
	f.StringVar(&platform, "platform", "", "chat platform of the account (slack, teams, dev)")
	f.StringVar(&workspace, "workspace", "", "Slack team id or Teams tenant id of the account")
	f.StringVar(&user, "user", "", "the Slack user id or Teams aadObjectId")
	f.StringVar(&reason, "reason", "", "why, for the audit log (default: \""+defaultRevokeReason+"\")")
	return cmd
}

// revokeLink unlinks one chat account through approvals, which writes the
// audit record in the same transaction.
func revokeLink(ctx context.Context, st storage.Store, w io.Writer, platform, workspace, user, reason string) error {
	svc := approvals.New(st, nil, approvals.Options{Logger: slog.New(slog.DiscardHandler)})
	l, err := svc.Link(ctx, platform, workspace, user)
	if errors.Is(err, approvals.ErrNotLinked) {
		return fmt.Errorf("%s user %s in %s is not linked; nothing to revoke (see 'signoff links list')", platform, user, workspace)
	}
	if err != nil {
		return err
	}
	if err := svc.Unlink(ctx, platform, workspace, user, reason); err != nil {
		return fmt.Errorf("revoke: %w", err)
	}
	printRevoked(w, platform, workspace, user, l.Subject, l.Email, "identity.unlinked")
	return nil
}

// printRevoked tells that the link of a chat account to the identity
// subject (with its email, if any) is gone, and how that was audited.
func printRevoked(w io.Writer, platform, workspace, user, subject, email, audited string) {
	who := subject
	if email != "" {
		who += " (" + email + ")"
	}
	fmt.Fprintf(w, "revoked the link of %s user %s in %s to %s; audited as %s\n",
		termSafe(platform), termSafe(user), termSafe(workspace), termSafe(who), audited)
}

// openLinksDB opens an existing bbolt store (never creating one), with the
// message an operator needs when a running server holds it.
func openLinksDB(path string, readOnly bool) (*boltstore.Store, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, withCode(exitUsage, fmt.Errorf("database %s: %w; pass the storage.path of your signoff server with --db", path, err))
	}
	st, err := boltstore.Open(path, boltstore.Options{ReadOnly: readOnly, LockTimeout: 2 * time.Second})
	if errors.Is(err, storage.ErrLocked) {
		return nil, withCode(exitFailure, fmt.Errorf("%w\n(a running signoff server holds the database; run this command against it with --server URL and an admin's token instead, or stop it and run this command again)", err))
	}
	if err != nil {
		return nil, withCode(exitFailure, err)
	}
	return st, nil
}
