package cards

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/signoff-dev/signoff/internal/testenv"
	"github.com/signoff-dev/signoff/storage"
)

// linkAlice links a Slack account through the service, which queues a
// notice to it (and, when it replaces another account, to that one).
func (e *env) linkAlice(user string) {
	e.t.Helper()
	err := e.svc.SaveLink(context.Background(), storage.IdentityLink{
		Platform: "slack", Workspace: "T1", PlatformUser: user,
		Issuer: "https://idp.example", Subject: "sub-alice", Email: "alice@example.com",
		LinkedAt: e.clock.Now(), VerifiedAt: e.clock.Now(), MatchedBy: "email",
	}, "C1")
	if err != nil {
		e.t.Fatal(err)
	}
}

// pendingNotices counts the notices in the outbox, due or not.
func (e *env) pendingNotices() int {
	e.t.Helper()
	return len(testenv.DueOutbox(e.t, e.store, "notice."))
}

// TestNoticesReachTheAccounts: a link queues a notice to the linked
// account, and to the account it replaced; both are sent and removed.
func TestNoticesReachTheAccounts(t *testing.T) {
	e := newEnv(t)
	e.linkAlice("U1")
	e.linkAlice("U2") // the same identity in the same workspace: U1 loses its link
	e.deliver()
	if got, want := e.chat.ops(), []string{"notice U1", "notice U1", "notice U2"}; !slices.Equal(got, want) {
		t.Fatalf("calls %v, want %v", got, want)
	}
	if n := e.pendingNotices(); n != 0 {
		t.Fatalf("%d notices left in the outbox", n)
	}
}

// TestNoticeRetriedThenDropped: a failing notice is retried with backoff,
// one the platform calls gone is dropped at once, and none is retried
// forever.
func TestNoticeRetriedThenDropped(t *testing.T) {
	t.Run("retried until it goes through", func(t *testing.T) {
		e := newEnv(t)
		e.linkAlice("U1")
		e.chat.fail("notice", verdict{Failure{Kind: Retry}})
		e.deliver()
		if e.pendingNotices() != 1 {
			t.Fatal("a failed notice was not kept for a retry")
		}
		e.clock.Advance(BackoffBase)
		e.deliver()
		if got := e.chat.ops(); !slices.Equal(got, []string{"notice U1(failed)", "notice U1"}) || e.pendingNotices() != 0 {
			t.Fatalf("calls %v, %d pending", got, e.pendingNotices())
		}
	})
	t.Run("gone", func(t *testing.T) {
		e := newEnv(t)
		e.linkAlice("U1")
		e.chat.fail("notice", verdict{Failure{Kind: Gone}})
		e.deliver()
		if e.pendingNotices() != 0 || !strings.Contains(e.logs.String(), "cannot be delivered; dropping it") {
			t.Fatalf("a notice to a gone account was kept (%d pending)\n%s", e.pendingNotices(), e.logs)
		}
	})
	t.Run("attempts run out", func(t *testing.T) {
		e := newEnv(t)
		e.linkAlice("U1")
		for range MaxNoticeAttempts {
			e.chat.fail("notice", verdict{Failure{Kind: Retry}})
		}
		for i := 0; i < MaxNoticeAttempts; i++ {
			e.deliver()
			e.clock.Advance(BackoffMax)
		}
		if e.pendingNotices() != 0 {
			t.Fatalf("a notice is still retried after %d attempts", MaxNoticeAttempts)
		}
		if n := len(e.chat.ops()); n != MaxNoticeAttempts {
			t.Fatalf("%d attempts, want %d", n, MaxNoticeAttempts)
		}
	})
}
