package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/approvals/audit"
	"github.com/signoff-dev/signoff/storage"
	"github.com/signoff-dev/signoff/storage/boltstore"
)

// linksCmd runs `signoff links …` through run, as the binary would.
func linksCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), append([]string{"links"}, args...), strings.NewReader(""), &out, &errOut)
	return code, out.String(), errOut.String()
}

// linksDB makes a database with three links: alice (slack T1 U1, sre,
// verified 2h ago), bob (slack T2 U2, stale), carol (teams tenant-a).
func linksDB(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "signoff.db")
	st, err := boltstore.Open(path, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	svc := approvals.New(st, nil, approvals.Options{Logger: slog.New(slog.DiscardHandler)})
	now := time.Now().UTC()
	ctx := context.Background()
	for _, l := range []storage.IdentityLink{
		{Platform: "slack", Workspace: "T1", PlatformUser: "U1", Issuer: "https://idp.example", Subject: "sub-alice", Email: "alice@example.com",
			Groups: []string{"sre", "deploy"}, LinkedAt: now.Add(-48 * time.Hour), VerifiedAt: now.Add(-2*time.Hour - 5*time.Minute), RefreshToken: []byte{1, 2, 3}},
		{Platform: "slack", Workspace: "T2", PlatformUser: "U2", Issuer: "https://idp.example", Subject: "sub-bob", Email: "bob@example.com",
			Groups: []string{"sre"}, LinkedAt: now.Add(-100 * time.Hour), VerifiedAt: now.Add(-100 * time.Hour)},
		{Platform: "teams", Workspace: "tenant-a", PlatformUser: "aad-carol", Issuer: "https://idp.example", Subject: "sub-carol\x1b[31m",
			LinkedAt: now, VerifiedAt: now},
	} {
		if err := svc.SaveLink(ctx, l, ""); err != nil {
			t.Fatal(err)
		}
	}
	if err := svc.MarkLinkStale(ctx, "slack", "T2", "U2", "the identity provider refused the refresh: invalid_grant"); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLinksList(t *testing.T) {
	db := linksDB(t)
	code, out, errOut := linksCmd(t, "list", "--db", db)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 {
		t.Fatalf("want a header and 3 rows:\n%s", out)
	}
	for _, h := range []string{"PLATFORM", "WORKSPACE", "USER", "SUBJECT", "EMAIL", "GROUPS", "VERIFIED", "PROVED", "STALE"} {
		if !strings.Contains(lines[0], h) {
			t.Errorf("header lacks %s: %q", h, lines[0])
		}
	}
	alice := rowOf(t, lines, "U1")
	for _, want := range []string{"slack", "T1", "sub-alice", "alice@example.com", "sre,deploy", "2h5m ago", "pending", " no"} {
		if !strings.Contains(alice, want) {
			t.Errorf("alice's row lacks %q: %q", want, alice)
		}
	}
	bob := rowOf(t, lines, "U2")
	if !strings.Contains(bob, "yes: the identity provider refused the refresh: invalid_grant") || !strings.Contains(bob, "4d4h ago") {
		t.Errorf("bob's row: %q", bob)
	}
	carol := rowOf(t, lines, "aad-carol")
	if strings.Contains(carol, "\x1b") || !strings.Contains(carol, `sub-carol\x1b[31m`) {
		t.Errorf("carol's row lets a control character through: %q", carol)
	}
	if strings.Contains(out, "\x01\x02\x03") {
		t.Error("list printed the sealed refresh token")
	}

	code, out, _ = linksCmd(t, "list", "--db", db, "--platform", "slack", "--workspace", "T1")
	if code != 0 || strings.Count(strings.TrimSpace(out), "\n") != 1 || !strings.Contains(out, "U1") {
		t.Fatalf("filtered list (exit %d):\n%s", code, out)
	}
	code, out, _ = linksCmd(t, "list", "--db", db, "--platform", "dev")
	if code != 0 || !strings.Contains(out, "no linked chat accounts") {
		t.Fatalf("empty list (exit %d):\n%s", code, out)
	}
}

func rowOf(t *testing.T, lines []string, user string) string {
	t.Helper()
	for _, l := range lines[1:] {
		if strings.Contains(l, " "+user+" ") {
			return l
		}
	}
	t.Fatalf("no row for %s in\n%s", user, strings.Join(lines, "\n"))
	return ""
}

func TestLinksRevoke(t *testing.T) {
	db := linksDB(t)
	code, out, errOut := linksCmd(t, "revoke", "--db", db, "--platform", "slack", "--workspace", "T1", "--user", "U1", "--reason", "left the company")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, "revoked the link of slack user U1 in T1 to sub-alice (alice@example.com)") {
		t.Fatalf("output: %q", out)
	}

	st, err := boltstore.Open(db, boltstore.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	var rest []storage.IdentityLink
	_ = st.View(context.Background(), func(tx storage.ReadTx) error {
		rest, err = tx.Links(storage.LinkFilter{})
		return err
	})
	var last audit.Record
	v := audit.NewVerifier(audit.VerifyOptions{})
	aerr := st.AuditRecords(context.Background(), 1, func(_ uint64, line []byte) error {
		if err := v.Add(line); err != nil {
			return err
		}
		return json.Unmarshal(line, &last)
	})
	_ = st.Close()
	if err != nil || aerr != nil {
		t.Fatal(err, aerr)
	}
	if len(rest) != 2 {
		t.Fatalf("%d links left, want 2", len(rest))
	}
	if last.Type != "identity.unlinked" || last.Actor.Subject != "sub-alice" || last.Actor.PlatformUser != "U1" || last.Data["reason"] != "left the company" {
		t.Fatalf("last audit record = %+v", last)
	}

	// Again: nothing to revoke.
	code, _, errOut = linksCmd(t, "revoke", "--db", db, "--platform", "slack", "--workspace", "T1", "--user", "U1")
	if code != exitFailure || !strings.Contains(errOut, "not linked") {
		t.Fatalf("second revoke: exit %d, %q", code, errOut)
	}
}

func TestLinksUsageAndLockedStore(t *testing.T) {
	db := linksDB(t)
	for _, args := range [][]string{
		{"list"},
		{"revoke", "--db", db, "--platform", "slack"},
		{"revoke", "--platform", "slack", "--workspace", "T1", "--user", "U1"},
		{"list", "--db", filepath.Join(t.TempDir(), "missing.db")},
		{"revoke", "--db", filepath.Join(t.TempDir(), "missing.db"), "--platform", "slack", "--workspace", "T1", "--user", "U1"},
	} {
		code, _, errOut := linksCmd(t, args...)
		if code != exitUsage || errOut == "" {
			t.Errorf("links %v: exit %d (%q), want %d", args, code, errOut, exitUsage)
		}
	}
	if code, _, errOut := linksCmd(t, "revoke", "--db", db, "--platform", "slack"); !strings.Contains(errOut, "--workspace, --user") {
		t.Errorf("missing flags message (exit %d): %q", code, errOut)
	}

	// A running server holds the database.
	st, err := boltstore.Open(db, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, args := range [][]string{
		{"revoke", "--db", db, "--platform", "slack", "--workspace", "T1", "--user", "U1"},
		{"list", "--db", db},
	} {
		code, _, errOut := linksCmd(t, args...)
		if code != exitFailure || !strings.Contains(errOut, "running signoff server holds the database") {
			t.Errorf("links %v on a held database: exit %d, %q", args, code, errOut)
		}
	}
}
