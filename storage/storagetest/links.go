package storagetest

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/storage"
)

// sampleLink fills every field of a link, with times in other zones than
// UTC, so that a round trip proves the backend stores all of them.
func sampleLink(platform, workspace, user string) storage.IdentityLink {
	return storage.IdentityLink{
		Platform:          platform,
		Workspace:         workspace,
		PlatformUser:      user,
		Issuer:            "https://idp.example.com",
		Subject:           "sub-" + user,
		Email:             "ada@example.com",
		Name:              "Ada Lovelace",
		PreferredUsername: "ada",
		Groups:            []string{"deployers", "sre", "Ünïcode group"},
		LinkedAt:          base.Add(-time.Hour),
		VerifiedAt:        base.In(time.FixedZone("PST", -8*3600)),
		AuthTime:          base.Add(-time.Hour - time.Second),
		ACR:               "urn:example:acr:mfa",
		AMR:               []string{"pwd", "otp"},
		// Not valid UTF-8 on purpose: the store keeps bytes, not text.
		RefreshToken: []byte{0x00, 0x01, 0xfe, 0xff, '"', '\\', 0x00},
		Stale:        true,
		StaleReason:  "invalid_grant: refresh token revoked",
	}
}

// minimalLink is a link with only its key, subject and times set.
func minimalLink(platform, workspace, user, subject string) storage.IdentityLink {
	return storage.IdentityLink{
		Platform: platform, Workspace: workspace, PlatformUser: user,
		Issuer: "https://idp.example.com", Subject: subject,
		LinkedAt: base, VerifiedAt: base,
	}
}

// sampleAttempt fills every field of a link attempt.
func sampleAttempt(id string, expires time.Time) storage.LinkAttempt {
	return storage.LinkAttempt{
		ID:             id,
		Purpose:        "step_up",
		Platform:       "slack",
		Workspace:      "T1",
		PlatformUser:   "U1",
		RequestID:      "req-1",
		Decision:       string(storage.DecisionApprove),
		State:          "state-" + id,
		Nonce:          "nonce-" + id,
		PKCEVerifier:   "verifier-" + id,
		BrowserBinding: "sha256:binding",
		StartedAt:      base.Add(time.Second).In(time.FixedZone("IST", 5*3600+1800)),
		CreatedAt:      base,
		ExpiresAt:      expires,
	}
}

func linkName(l storage.IdentityLink) string {
	return fmt.Sprintf("%q/%q/%q", l.Platform, l.Workspace, l.PlatformUser)
}

func linkNames(ls []storage.IdentityLink) []string {
	names := []string{}
	for _, l := range ls {
		names = append(names, linkName(l))
	}
	return names
}

// compareLinks orders links by platform, workspace and platform user, as
// Links must.
func compareLinks(a, b storage.IdentityLink) int {
	return cmp.Or(
		cmp.Compare(a.Platform, b.Platform),
		cmp.Compare(a.Workspace, b.Workspace),
		cmp.Compare(a.PlatformUser, b.PlatformUser))
}

// checkLink compares got with want after converting want's times to UTC,
// and checks that every time in got is in UTC.
func checkLink(t *testing.T, got, want storage.IdentityLink) {
	t.Helper()
	times := map[string]time.Time{"LinkedAt": got.LinkedAt, "VerifiedAt": got.VerifiedAt, "AuthTime": got.AuthTime}
	checkStored(t, "link "+linkName(got), times, got, want, utcLink)
}

func utcLink(l storage.IdentityLink) storage.IdentityLink {
	l.LinkedAt, l.VerifiedAt, l.AuthTime = l.LinkedAt.UTC(), l.VerifiedAt.UTC(), l.AuthTime.UTC()
	return l
}

func checkAttempt(t *testing.T, got, want storage.LinkAttempt) {
	t.Helper()
	times := map[string]time.Time{"StartedAt": got.StartedAt, "CreatedAt": got.CreatedAt, "ExpiresAt": got.ExpiresAt}
	checkStored(t, "link attempt "+got.ID, times, got, want, utcAttempt)
}

func utcAttempt(a storage.LinkAttempt) storage.LinkAttempt {
	a.StartedAt, a.CreatedAt, a.ExpiresAt = a.StartedAt.UTC(), a.CreatedAt.UTC(), a.ExpiresAt.UTC()
	return a
}

func putLinks(t *testing.T, s storage.Store, ls ...storage.IdentityLink) {
	t.Helper()
	updateEach(t, s, storage.Tx.PutLink, ls)
}

func getLink(t *testing.T, s storage.Store, platform, workspace, user string) storage.IdentityLink {
	t.Helper()
	return viewValue(t, s, func(tx storage.ReadTx) (storage.IdentityLink, error) { return tx.Link(platform, workspace, user) })
}

// linkMissing checks that the chat account has no link.
func linkMissing(t *testing.T, tx storage.ReadTx, platform, workspace, user string) {
	t.Helper()
	if l, err := tx.Link(platform, workspace, user); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Link(%q, %q, %q) = %s, err = %v; want ErrNotFound", platform, workspace, user, linkName(l), err)
	}
}

// checkLinksIn checks that tx holds each of wants, as stored; when (" after
// reopen", or "") tells its errors apart.
func checkLinksIn(t *testing.T, tx storage.ReadTx, when string, wants ...storage.IdentityLink) error {
	t.Helper()
	for _, want := range wants {
		got, err := tx.Link(want.Platform, want.Workspace, want.PlatformUser)
		if err != nil {
			return fmt.Errorf("Link(%s)%s: %w", linkName(want), when, err)
		}
		checkLink(t, got, want)
	}
	return nil
}

// checkLinksListed checks that Links lists exactly wants, in its order;
// when (" after reopen", or "") tells its messages apart.
func checkLinksListed(t *testing.T, tx storage.ReadTx, when string, wants []storage.IdentityLink) error {
	t.Helper()
	ls, err := tx.Links(storage.LinkFilter{})
	if err != nil {
		return err
	}
	want := slices.SortedFunc(slices.Values(wants), compareLinks)
	if len(ls) != len(want) {
		t.Fatalf("Links%s = %q, want %q", when, linkNames(ls), linkNames(want))
	}
	for i := range ls {
		checkLink(t, ls[i], want[i])
	}
	return nil
}

func listLinks(t *testing.T, s storage.Store, f storage.LinkFilter) []storage.IdentityLink {
	t.Helper()
	return viewValue(t, s, func(tx storage.ReadTx) ([]storage.IdentityLink, error) { return tx.Links(f) })
}

func createAttempts(t *testing.T, s storage.Store, as ...storage.LinkAttempt) {
	t.Helper()
	updateEach(t, s, storage.Tx.CreateLinkAttempt, as)
}

func getAttempt(t *testing.T, s storage.Store, id string) storage.LinkAttempt {
	t.Helper()
	return viewValue(t, s, func(tx storage.ReadTx) (storage.LinkAttempt, error) { return tx.LinkAttempt(id) })
}

// checkAttemptsIn checks that tx holds each of wants, as stored; when
// (" after reopen", or "") tells its errors apart.
func checkAttemptsIn(t *testing.T, tx storage.ReadTx, when string, wants ...storage.LinkAttempt) error {
	t.Helper()
	for _, want := range wants {
		got, err := tx.LinkAttempt(want.ID)
		if err != nil {
			return fmt.Errorf("LinkAttempt(%s)%s: %w", want.ID, when, err)
		}
		checkAttempt(t, got, want)
	}
	return nil
}

// attemptMissing checks that attempt id is not stored.
func attemptMissing(t *testing.T, tx storage.ReadTx, id string) {
	t.Helper()
	if _, err := tx.LinkAttempt(id); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("LinkAttempt(%q): err = %v, want ErrNotFound", id, err)
	}
}

func deleteExpired(t *testing.T, s storage.Store, before time.Time) int {
	t.Helper()
	return updateValue(t, s, func(tx storage.Tx) (int, error) { return tx.DeleteExpiredLinkAttempts(before) })
}

func testLinkEmpty(t *testing.T, s storage.Store) {
	view(t, s, func(tx storage.ReadTx) error {
		linkMissing(t, tx, "slack", "T1", "U1")
		linkMissing(t, tx, "", "", "")
		ls, err := tx.Links(storage.LinkFilter{})
		if err != nil {
			return fmt.Errorf("tx.Links on an empty store: %w", err)
		}
		checkIDs(t, "Links on an empty store", linkNames(ls))
		attemptMissing(t, tx, "missing")
		attemptMissing(t, tx, "")
		return nil
	})
	if n := deleteExpired(t, s, farFuture); n != 0 {
		t.Errorf("DeleteExpiredLinkAttempts on an empty store = %d, want 0", n)
	}
}

func testLinkPutGetReplace(t *testing.T, s storage.Store) {
	l := sampleLink("slack", "T1", "U1")
	token := l.RefreshToken
	update(t, s, func(tx storage.Tx) error {
		l.RefreshToken = slices.Clone(token)
		err := tx.PutLink(l)
		// The caller reuses its buffer before the commit.
		for i := range l.RefreshToken {
			l.RefreshToken[i] = 'X'
		}
		return err
	})
	l.RefreshToken = token
	checkLink(t, getLink(t, s, "slack", "T1", "U1"), l)
	if l.VerifiedAt.Location() == time.UTC {
		t.Errorf("PutLink changed the caller's link")
	}

	// Linking again replaces the whole record: fields left empty are gone.
	again := minimalLink("slack", "T1", "U1", "sub-other")
	again.VerifiedAt = base.Add(time.Hour).In(time.FixedZone("X", 7200))
	again.RefreshToken = []byte{0xff}
	again.Groups = []string{"viewers"}
	putLinks(t, s, again)
	checkLink(t, getLink(t, s, "slack", "T1", "U1"), again)
	ls := listLinks(t, s, storage.LinkFilter{})
	if len(ls) != 1 {
		t.Fatalf("Links after replacing the only link = %q, want one", linkNames(ls))
	}
	checkLink(t, ls[0], again)

	// A refresh marks it stale, and another one clears that.
	stale := again
	stale.Stale, stale.StaleReason, stale.RefreshToken = true, "invalid_grant", nil
	putLinks(t, s, stale)
	checkLink(t, getLink(t, s, "slack", "T1", "U1"), stale)
	fresh := stale
	fresh.Stale, fresh.StaleReason = false, ""
	putLinks(t, s, fresh)
	checkLink(t, getLink(t, s, "slack", "T1", "U1"), fresh)
}

// testLinkTenantBoundary checks that a link is found only under the exact
// (platform, workspace, user) it was made for (docs/architecture.md,
// invariants 2 and 6), including
// accounts whose parts, run together, spell the same string.
func testLinkTenantBoundary(t *testing.T, s storage.Store) {
	putLinks(t, s, minimalLink("slack", "T1", "U1", "alice"))
	view(t, s, func(tx storage.ReadTx) error {
		linkMissing(t, tx, "slack", "T2", "U1")
		linkMissing(t, tx, "teams", "T1", "U1")
		linkMissing(t, tx, "slack", "T1", "U2")
		linkMissing(t, tx, "slack", "", "U1")
		linkMissing(t, tx, "slack", "t1", "U1")
		linkMissing(t, tx, "slack", "T1", "u1")
		linkMissing(t, tx, "slack", "T1U1", "")
		linkMissing(t, tx, "slack", "", "T1U1")
		for _, f := range []storage.LinkFilter{{Workspace: "T2"}, {Platform: "teams"}, {Platform: "slack", Workspace: "T2"}, {Platform: "teams", Workspace: "T1"}} {
			ls, err := tx.Links(f)
			if err != nil {
				return err
			}
			checkIDs(t, fmt.Sprintf("Links(%+v)", f), linkNames(ls))
		}
		return nil
	})

	// Each of these run together is "abc" (with or without a separator): a
	// backend must not mistake one account for another.
	var tricky []storage.IdentityLink
	for i, parts := range [][3]string{
		{"a", "b", "c"}, {"ab", "", "c"}, {"a", "", "bc"}, {"a", "bc", "\x00"},
		{"a", "b:c", "d"}, {"a:b", "c", "d"}, {"a", "b", "c:d"},
		{"a", "b/c", "d"}, {"a/b", "c", "d"}, {"a", "b", "c/d"},
		{"a", "b\x00c", "d"}, {"a\x00b", "c", "d"}, {"a", "b", "c\x00d"}, {"a", "b\x00", "c\x00d"},
		{"a\x00", "b", "cd"}, {"a", "\x00b", "cd"}, {"a", "b\x00\x01c", "d"}, {"a", "b", "\x00\x01c\x00\x01d"},
	} {
		tricky = append(tricky, minimalLink(parts[0], parts[1], parts[2], fmt.Sprintf("sub-%d", i)))
	}
	putLinks(t, s, tricky...)
	view(t, s, func(tx storage.ReadTx) error {
		if err := checkLinksIn(t, tx, "", tricky...); err != nil {
			return err
		}
		ls, err := tx.Links(storage.LinkFilter{Platform: "a"})
		if err != nil {
			return err
		}
		var wantA []storage.IdentityLink
		for _, l := range tricky {
			if l.Platform == "a" {
				wantA = append(wantA, l)
			}
		}
		slices.SortFunc(wantA, compareLinks)
		checkIDs(t, `Links(platform "a")`, linkNames(ls), linkNames(wantA)...)
		ls, err = tx.Links(storage.LinkFilter{Platform: "a", Workspace: "b"})
		if err != nil {
			return err
		}
		checkIDs(t, `Links(platform "a", workspace "b")`, linkNames(ls),
			`"a"/"b"/"\x00\x01c\x00\x01d"`, `"a"/"b"/"c"`, `"a"/"b"/"c\x00d"`, `"a"/"b"/"c/d"`, `"a"/"b"/"c:d"`)
		return nil
	})
	// Deleting one of them leaves the others.
	update(t, s, func(tx storage.Tx) error { return tx.DeleteLink("ab", "", "c") })
	view(t, s, func(tx storage.ReadTx) error {
		linkMissing(t, tx, "ab", "", "c")
		return checkLinksIn(t, tx, " after deleting a lookalike", tricky[0], tricky[2])
	})
}

func testLinksFilter(t *testing.T, s storage.Store) {
	all := []storage.IdentityLink{
		minimalLink("slack", "T1", "U2", "alice"),
		minimalLink("slack", "T1", "U10", "bob"), // "U10" sorts before "U2"
		minimalLink("slack", "T1", "U1", "carol"),
		minimalLink("slack", "T1", "U1\x00x", "erin"),
		minimalLink("slack", "T10", "U1", "alice"),
		minimalLink("slack", "T9", "U1", "carol"), // "T10" sorts before "T9"
		minimalLink("slackx", "T1", "U1", "alice"),
		minimalLink("slack\x00x", "T1", "U1", "zed"),
		minimalLink("teams", "T1", "U1", "alice"), // the same workspace id on another platform
		minimalLink("teams", "tenant-b", "U1", "bob"),
		minimalLink("dev", "dev", "ada", "alice"),
		minimalLink("dev", "", "x", "dave"),
	}
	all[0] = sampleLink("slack", "T1", "U2")
	all[0].Subject = "alice"
	// Two commits, neither in order.
	putLinks(t, s, all[6:]...)
	for i := len(all[:6]) - 1; i >= 0; i-- {
		putLinks(t, s, all[i])
	}
	sorted := slices.Clone(all)
	slices.SortFunc(sorted, compareLinks)

	match := func(f storage.LinkFilter) []string {
		var out []storage.IdentityLink
		for _, l := range sorted {
			if (f.Platform == "" || l.Platform == f.Platform) &&
				(f.Workspace == "" || l.Workspace == f.Workspace) &&
				(f.Subject == "" || l.Subject == f.Subject) {
				out = append(out, l)
			}
		}
		return linkNames(out)
	}
	for _, tc := range []struct {
		f    storage.LinkFilter
		want int
	}{
		{storage.LinkFilter{}, len(all)},
		{storage.LinkFilter{Platform: "slack"}, 6},
		{storage.LinkFilter{Platform: "slack", Workspace: "T1"}, 4},
		{storage.LinkFilter{Workspace: "T1"}, 7},
		{storage.LinkFilter{Subject: "alice"}, 5},
		{storage.LinkFilter{Platform: "slack", Subject: "alice"}, 2},
		{storage.LinkFilter{Workspace: "T1", Subject: "alice"}, 3},
		{storage.LinkFilter{Platform: "slack", Workspace: "T1", Subject: "bob"}, 1},
		{storage.LinkFilter{Platform: "teams"}, 2},
		{storage.LinkFilter{Platform: "dev"}, 2},
		{storage.LinkFilter{Platform: "slac"}, 0},
		{storage.LinkFilter{Platform: "slack", Workspace: "T"}, 0},
		{storage.LinkFilter{Workspace: "T"}, 0},
		{storage.LinkFilter{Subject: "ali"}, 0},
		{storage.LinkFilter{Platform: "nope"}, 0},
	} {
		got := linkNames(listLinks(t, s, tc.f))
		want := match(tc.f)
		if len(want) != tc.want {
			t.Fatalf("the suite expects %d links for %+v, but its own filter finds %d", tc.want, tc.f, len(want))
		}
		checkIDs(t, fmt.Sprintf("Links(%+v)", tc.f), got, want...)
	}
	// Spelled out once, in case the suite's sort and the backend agree on
	// something wrong.
	checkIDs(t, "Links(slack, T1)", linkNames(listLinks(t, s, storage.LinkFilter{Platform: "slack", Workspace: "T1"})),
		`"slack"/"T1"/"U1"`, `"slack"/"T1"/"U1\x00x"`, `"slack"/"T1"/"U10"`, `"slack"/"T1"/"U2"`)
	checkIDs(t, "Links(platform slack)", linkNames(listLinks(t, s, storage.LinkFilter{Platform: "slack"})),
		`"slack"/"T1"/"U1"`, `"slack"/"T1"/"U1\x00x"`, `"slack"/"T1"/"U10"`, `"slack"/"T1"/"U2"`, `"slack"/"T10"/"U1"`, `"slack"/"T9"/"U1"`)
	checkIDs(t, "Links(workspace T1, subject alice)", linkNames(listLinks(t, s, storage.LinkFilter{Workspace: "T1", Subject: "alice"})),
		`"slack"/"T1"/"U2"`, `"slackx"/"T1"/"U1"`, `"teams"/"T1"/"U1"`)

	// Full records come back, not just keys.
	got := listLinks(t, s, storage.LinkFilter{})
	if len(got) != len(sorted) {
		t.Fatalf("Links() = %q, want %q", linkNames(got), linkNames(sorted))
	}
	for i := range got {
		checkLink(t, got[i], sorted[i])
	}
}

func testLinkDelete(t *testing.T, s storage.Store) {
	a := minimalLink("slack", "T1", "U1", "alice")
	b := minimalLink("slack", "T1", "U2", "bob")
	c := minimalLink("teams", "tenant", "U1", "alice")
	putLinks(t, s, a, b, c)
	update(t, s, func(tx storage.Tx) error { return tx.DeleteLink("slack", "T1", "U2") })
	view(t, s, func(tx storage.ReadTx) error {
		linkMissing(t, tx, "slack", "T1", "U2")
		ls, err := tx.Links(storage.LinkFilter{})
		if err != nil {
			return err
		}
		checkIDs(t, "Links after DeleteLink", linkNames(ls), linkName(a), linkName(c))
		ls, err = tx.Links(storage.LinkFilter{Subject: "bob"})
		if err != nil {
			return err
		}
		checkIDs(t, "Links(subject bob) after DeleteLink", linkNames(ls))
		return nil
	})
	for _, k := range [][3]string{
		{"slack", "T1", "U2"},     // deleted already
		{"slack", "T2", "U1"},     // exists in T1 only
		{"teams", "T1", "U1"},     // exists on slack only
		{"slack", "T1", "U1\x00"}, // a lookalike
		{"dev", "dev", "nobody"},  // never linked
	} {
		err := s.Update(t.Context(), func(tx storage.Tx) error { return tx.DeleteLink(k[0], k[1], k[2]) })
		if !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("DeleteLink(%q): err = %v, want ErrNotFound", k, err)
		}
	}
	checkLink(t, getLink(t, s, "slack", "T1", "U1"), a)
	checkLink(t, getLink(t, s, "teams", "tenant", "U1"), c)

	// The account can link again.
	b.Subject = "bob-again"
	putLinks(t, s, b)
	checkLink(t, getLink(t, s, "slack", "T1", "U2"), b)
}

func testLinkAttempts(t *testing.T, s storage.Store) {
	a := sampleAttempt("att-1", base.Add(10*time.Minute))
	createAttempts(t, s, a)
	checkAttempt(t, getAttempt(t, s, a.ID), a)
	if a.StartedAt.Location() == time.UTC {
		t.Errorf("CreateLinkAttempt changed the caller's attempt")
	}

	// The id is taken: the stored attempt is left alone.
	dup := sampleAttempt(a.ID, base.Add(time.Hour))
	dup.Purpose, dup.PlatformUser = "link", "U-intruder"
	err := s.Update(t.Context(), func(tx storage.Tx) error { return tx.CreateLinkAttempt(dup) })
	if !errors.Is(err, storage.ErrAlreadyExists) {
		t.Fatalf("CreateLinkAttempt with a taken id: err = %v, want ErrAlreadyExists", err)
	}
	checkAttempt(t, getAttempt(t, s, a.ID), a)

	// The browser starts the flow.
	started := a
	started.State, started.Nonce, started.PKCEVerifier = "state-2", "nonce-2", "verifier-2"
	started.BrowserBinding = "sha256:other"
	started.StartedAt = base.Add(time.Minute).In(time.FixedZone("Y", -3600))
	started.ExpiresAt = base.Add(5 * time.Minute)
	update(t, s, func(tx storage.Tx) error { return tx.PutLinkAttempt(started) })
	checkAttempt(t, getAttempt(t, s, a.ID), started)

	// Put does not create.
	ghost := sampleAttempt("att-ghost", base.Add(time.Hour))
	err = s.Update(t.Context(), func(tx storage.Tx) error { return tx.PutLinkAttempt(ghost) })
	if !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("PutLinkAttempt of a missing attempt: err = %v, want ErrNotFound", err)
	}
	view(t, s, func(tx storage.ReadTx) error {
		attemptMissing(t, tx, ghost.ID)
		return nil
	})

	// A second attempt, then the first is used up, once.
	b := sampleAttempt("att-2", base.Add(time.Hour))
	b.Purpose, b.RequestID, b.Decision = "link", "", ""
	b.StartedAt = time.Time{}
	createAttempts(t, s, b)
	update(t, s, func(tx storage.Tx) error { return tx.DeleteLinkAttempt(a.ID) })
	err = s.Update(t.Context(), func(tx storage.Tx) error { return tx.DeleteLinkAttempt(a.ID) })
	if !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("DeleteLinkAttempt twice: err = %v, want ErrNotFound", err)
	}
	err = s.Update(t.Context(), func(tx storage.Tx) error { return tx.PutLinkAttempt(started) })
	if !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("PutLinkAttempt of a deleted attempt: err = %v, want ErrNotFound", err)
	}
	err = s.Update(t.Context(), func(tx storage.Tx) error { return tx.DeleteLinkAttempt("never-created") })
	if !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("DeleteLinkAttempt(never-created): err = %v, want ErrNotFound", err)
	}
	view(t, s, func(tx storage.ReadTx) error {
		attemptMissing(t, tx, a.ID)
		got, err := tx.LinkAttempt(b.ID)
		if err != nil {
			return err
		}
		checkAttempt(t, got, b)
		return nil
	})
	// Only b is left to expire: the put moved a's expiry, the delete removed
	// it, and neither left a trace behind.
	if n := deleteExpired(t, s, farFuture); n != 1 {
		t.Errorf("DeleteExpiredLinkAttempts(far future) with one attempt left = %d, want 1", n)
	}
}

// testLinkAttemptSingleUse races Updates that each read an attempt and then
// use it up (and one more that uses it up without reading it first): for
// every attempt exactly one wins, and the others see it gone.
func testLinkAttemptSingleUse(t *testing.T, s storage.Store) {
	const attempts, racers = 48, 3
	var all []storage.LinkAttempt
	for i := range attempts {
		all = append(all, sampleAttempt(fmt.Sprintf("single-%02d", i), base.Add(time.Hour)))
	}
	createAttempts(t, s, all...)

	type result struct {
		attempt int
		err     error
	}
	results := make(chan result, attempts*racers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, a := range all {
		for r := range racers {
			wg.Go(func() {
				<-start
				err := s.Update(t.Context(), func(tx storage.Tx) error {
					if r == racers-1 {
						return tx.DeleteLinkAttempt(a.ID)
					}
					got, err := tx.LinkAttempt(a.ID)
					if err != nil {
						return err
					}
					if got.ID != a.ID {
						return fmt.Errorf("LinkAttempt(%q) returned %q", a.ID, got.ID)
					}
					return tx.DeleteLinkAttempt(a.ID)
				})
				results <- result{i, err}
			})
		}
	}
	close(start)
	wg.Wait()
	close(results)
	won := make([]int, attempts)
	for r := range results {
		switch {
		case r.err == nil:
			won[r.attempt]++
		case errors.Is(r.err, storage.ErrNotFound):
		default:
			t.Errorf("attempt %d: %v", r.attempt, r.err)
		}
	}
	for i, n := range won {
		if n != 1 {
			t.Errorf("attempt %d was used %d times by %d racers, want exactly once", i, n, racers)
		}
	}
	view(t, s, func(tx storage.ReadTx) error {
		for _, a := range all {
			attemptMissing(t, tx, a.ID)
		}
		return nil
	})
	if n := deleteExpired(t, s, farFuture); n != 0 {
		t.Errorf("DeleteExpiredLinkAttempts after every attempt was used = %d, want 0", n)
	}
}

func testDeleteExpiredLinkAttempts(t *testing.T, s storage.Store) {
	at := base
	expiring := map[string]time.Time{
		"past-1969":   time.Date(1969, 7, 20, 20, 17, 0, 0, time.UTC),
		"past-hour":   at.Add(-time.Hour).In(time.FixedZone("W", -5*3600)),
		"past-ns":     at.Add(-time.Nanosecond),
		"now":         at, // not before at: kept
		"now-zoned":   at.In(time.FixedZone("E", 9*3600)),
		"future-ns":   at.Add(time.Nanosecond),
		"future-hour": at.Add(time.Hour).In(time.FixedZone("W", -5*3600)),
	}
	attempts := map[string]storage.LinkAttempt{}
	var ids []string
	for id, exp := range expiring {
		attempts[id] = sampleAttempt(id, exp)
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		createAttempts(t, s, attempts[id])
	}
	check := func(what string, gone ...string) {
		t.Helper()
		view(t, s, func(tx storage.ReadTx) error {
			for id, want := range attempts {
				got, err := tx.LinkAttempt(id)
				switch {
				case slices.Contains(gone, id):
					if !errors.Is(err, storage.ErrNotFound) {
						t.Errorf("%s: LinkAttempt(%s): err = %v, want ErrNotFound", what, id, err)
					}
				case err != nil:
					t.Errorf("%s: LinkAttempt(%s): %v", what, id, err)
				default:
					checkAttempt(t, got, want)
				}
			}
			return nil
		})
	}

	if n := deleteExpired(t, s, time.Date(1969, 1, 1, 0, 0, 0, 0, time.UTC)); n != 0 {
		t.Errorf("DeleteExpiredLinkAttempts(1969-01-01) = %d, want 0", n)
	}
	check("nothing expired yet")
	if n := deleteExpired(t, s, at); n != 3 {
		t.Errorf("DeleteExpiredLinkAttempts(at) = %d, want 3 (strictly before at)", n)
	}
	check("after DeleteExpiredLinkAttempts(at)", "past-1969", "past-hour", "past-ns")
	if n := deleteExpired(t, s, at); n != 0 {
		t.Errorf("DeleteExpiredLinkAttempts(at) again = %d, want 0", n)
	}

	// Expiry follows PutLinkAttempt.
	sooner := attempts["future-hour"]
	sooner.ExpiresAt = at.Add(-time.Minute)
	later := attempts["now"]
	later.ExpiresAt = at.Add(2 * time.Hour)
	update(t, s, func(tx storage.Tx) error {
		if err := tx.PutLinkAttempt(sooner); err != nil {
			return err
		}
		return tx.PutLinkAttempt(later)
	})
	attempts["future-hour"], attempts["now"] = sooner, later
	if n := deleteExpired(t, s, at.Add(time.Nanosecond)); n != 2 {
		t.Errorf("DeleteExpiredLinkAttempts(at+1ns) after moving expiries = %d, want 2 (now-zoned and the one moved sooner)", n)
	}
	check("after moving expiries", "past-1969", "past-hour", "past-ns", "now-zoned", "future-hour")

	// A used-up attempt is not counted; one created in the same transaction is.
	update(t, s, func(tx storage.Tx) error { return tx.DeleteLinkAttempt("future-ns") })
	var n int
	update(t, s, func(tx storage.Tx) error {
		if err := tx.CreateLinkAttempt(sampleAttempt("fresh-but-expired", at.Add(-time.Hour))); err != nil {
			return err
		}
		var err error
		n, err = tx.DeleteExpiredLinkAttempts(farFuture)
		if err != nil {
			return err
		}
		if _, err := tx.LinkAttempt("now"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("LinkAttempt(now) after DeleteExpiredLinkAttempts in the same tx: err = %v, want ErrNotFound", err)
		}
		return nil
	})
	if n != 2 {
		t.Errorf("DeleteExpiredLinkAttempts(far future) = %d, want 2 (now, fresh-but-expired)", n)
	}
	check("at the end", ids...)
}

// testLinkTxSeesOwnWrites checks that link writes are visible to the same
// transaction.
func testLinkTxSeesOwnWrites(t *testing.T, s storage.Store) {
	update(t, s, func(tx storage.Tx) error {
		l := sampleLink("teams", "tenant", "aad-1")
		if err := tx.PutLink(l); err != nil {
			return err
		}
		got, err := tx.Link(l.Platform, l.Workspace, l.PlatformUser)
		if err != nil {
			return fmt.Errorf("tx.Link after PutLink in the same tx: %w", err)
		}
		checkLink(t, got, l)
		ls, err := tx.Links(storage.LinkFilter{Subject: l.Subject})
		if err != nil {
			return err
		}
		checkIDs(t, "Links in the same tx", linkNames(ls), linkName(l))
		if err := tx.DeleteLink(l.Platform, l.Workspace, l.PlatformUser); err != nil {
			return fmt.Errorf("DeleteLink in the same tx: %w", err)
		}
		linkMissing(t, tx, l.Platform, l.Workspace, l.PlatformUser)
		if err := tx.PutLink(l); err != nil {
			return err
		}

		a := sampleAttempt("own", base.Add(time.Hour))
		if err := tx.CreateLinkAttempt(a); err != nil {
			return err
		}
		if err := tx.CreateLinkAttempt(a); !errors.Is(err, storage.ErrAlreadyExists) {
			t.Errorf("second CreateLinkAttempt in the same tx: err = %v, want ErrAlreadyExists", err)
		}
		a.State = "started"
		if err := tx.PutLinkAttempt(a); err != nil {
			return fmt.Errorf("PutLinkAttempt in the same tx: %w", err)
		}
		gotA, err := tx.LinkAttempt(a.ID)
		if err != nil {
			return err
		}
		checkAttempt(t, gotA, a)
		return nil
	})
	view(t, s, func(tx storage.ReadTx) error {
		if _, err := tx.Link("teams", "tenant", "aad-1"); err != nil {
			return err
		}
		a, err := tx.LinkAttempt("own")
		if err != nil {
			return err
		}
		if a.State != "started" {
			t.Errorf("attempt state after commit = %q, want started", a.State)
		}
		return nil
	})
}

// Records seed writes besides its request and outbox entry.
var (
	seedLinks = []storage.IdentityLink{
		sampleLink("slack", "T1", "U1"),
		minimalLink("teams", "tenant", "aad-9", "sub-9"),
	}
	seedAttempts = []storage.LinkAttempt{
		sampleAttempt("seed-a1", base.Add(10*time.Minute)),
		sampleAttempt("seed-a2", base.Add(-time.Minute)),
		sampleAttempt("seed-a3", base.Add(5*time.Minute)),
	}
)

// putLinkRecords stores links and creates attempts in tx.
func putLinkRecords(tx storage.Tx, links []storage.IdentityLink, attempts []storage.LinkAttempt) error {
	for _, l := range links {
		if err := tx.PutLink(l); err != nil {
			return err
		}
	}
	for _, a := range attempts {
		if err := tx.CreateLinkAttempt(a); err != nil {
			return err
		}
	}
	return nil
}

// writeLinkRecords changes every kind of link record that seed wrote
// (seedLinks, seedAttempts), for writeEverything.
func writeLinkRecords(tx storage.Tx) error {
	if err := tx.PutLink(sampleLink("slack", "T1", "U-doomed")); err != nil {
		return err
	}
	l := seedLinks[0]
	l.Stale, l.StaleReason = false, ""
	if err := tx.PutLink(l); err != nil {
		return err
	}
	gone := seedLinks[1]
	if err := tx.DeleteLink(gone.Platform, gone.Workspace, gone.PlatformUser); err != nil {
		return err
	}
	if err := tx.CreateLinkAttempt(sampleAttempt("doomed-attempt", base.Add(-time.Hour))); err != nil {
		return err
	}
	a := seedAttempts[0]
	a.State, a.ExpiresAt = "changed", base.Add(-time.Second)
	if err := tx.PutLinkAttempt(a); err != nil {
		return err
	}
	// seed-a2, seed-a1 as changed and doomed-attempt.
	if n, err := tx.DeleteExpiredLinkAttempts(base); err != nil || n != 3 {
		return fmt.Errorf("DeleteExpiredLinkAttempts = (%d, %v), want 3", n, err)
	}
	return tx.DeleteLinkAttempt(seedAttempts[2].ID)
}

// checkOnlySeedLinks checks that the links and attempts are those seed
// wrote (seedLinks, seedAttempts).
func checkOnlySeedLinks(t *testing.T, tx storage.ReadTx) error {
	t.Helper()
	linkMissing(t, tx, "slack", "T1", "U-doomed")
	if err := checkLinksListed(t, tx, "", seedLinks); err != nil {
		return err
	}
	attemptMissing(t, tx, "doomed-attempt")
	return checkAttemptsIn(t, tx, "", seedAttempts...)
}

// testConversations: references round-trip, are replaced, and one
// platform's id never answers for another's.
func testConversations(t *testing.T, s storage.Store) {
	c := storage.Conversation{Platform: "teams", ID: "19:abc@thread.tacv2", ServiceURL: "https://smba.example/teams/", TenantID: "tenant-a", Name: "deploys", UpdatedAt: base}
	update(t, s, func(tx storage.Tx) error { return tx.PutConversation(c) })
	view(t, s, func(tx storage.ReadTx) error {
		got, err := tx.Conversation("teams", c.ID)
		if err != nil {
			return err
		}
		if got.ServiceURL != c.ServiceURL || got.TenantID != c.TenantID || got.Name != c.Name || !got.UpdatedAt.Equal(base) {
			t.Errorf("conversation round trip: %+v, want %+v", got, c)
		}
		if _, err := tx.Conversation("slack", c.ID); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("another platform's conversation: %v, want ErrNotFound", err)
		}
		return nil
	})
	c.ServiceURL = "https://smba.example/other/"
	update(t, s, func(tx storage.Tx) error { return tx.PutConversation(c) })
	view(t, s, func(tx storage.ReadTx) error {
		got, err := tx.Conversation("teams", c.ID)
		if err != nil || got.ServiceURL != c.ServiceURL {
			t.Errorf("replaced conversation: %+v %v", got, err)
		}
		return nil
	})

	// Listing: by platform, in (platform, id) order; a platform name that
	// is a prefix of another selects only its own.
	more := []storage.Conversation{
		{Platform: "teams", ID: "19:aaa", UpdatedAt: base},
		{Platform: "teamsx", ID: "19:000", UpdatedAt: base},
		{Platform: "slack", ID: "C1", UpdatedAt: base},
	}
	updateEach(t, s, storage.Tx.PutConversation, more)
	ids := func(platform string) []string {
		t.Helper()
		var out []string
		for _, c := range viewValue(t, s, func(tx storage.ReadTx) ([]storage.Conversation, error) { return tx.Conversations(platform) }) {
			out = append(out, c.Platform+"/"+c.ID)
		}
		return out
	}
	checkIDs(t, "Conversations(teams)", ids("teams"), "teams/19:aaa", "teams/19:abc@thread.tacv2")
	checkIDs(t, "Conversations()", ids(""), "slack/C1", "teams/19:aaa", "teams/19:abc@thread.tacv2", "teamsx/19:000")
	checkIDs(t, "Conversations(none)", ids("none"))
	if got := viewValue(t, s, func(tx storage.ReadTx) ([]storage.Conversation, error) { return tx.Conversations("teams") }); len(got) == 2 && got[1].ServiceURL != c.ServiceURL {
		t.Errorf("listed conversation %+v, want the stored one", got[1])
	}
}
