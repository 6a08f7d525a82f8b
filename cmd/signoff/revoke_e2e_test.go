package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/approvals/audit"
	"github.com/signoff-dev/signoff/config"
	"github.com/signoff-dev/signoff/internal/chattest"
	"github.com/signoff-dev/signoff/storage"
)

// startSlackAdminServer runs the Slack end-to-end config with an admin
// group, limits out of the way of load, and alice (U0ALICE) and bob
// (U0BOB) linked.
func startSlackAdminServer(t *testing.T, slack *slackStandIn) *testServer {
	t.Helper()
	isolateLogin(t)
	cfgPath := filepath.Join(t.TempDir(), "signoff.yaml")
	cfg := strings.ReplaceAll(slackE2EConfig, "%API%", slack.URL()) + "admins: {groups: [signoff-admins]}\n"
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ts := startServeConfig(t, cfgPath, true, func(c *config.Config) {
		c.Limits.RequestsPerMinute, c.Limits.PendingPerRequester, c.Limits.ClicksPerMinute = 1_000_000, 1_000_000, 1_000_000
	})
	ts.logOnFailure(t)
	linkSlackUser(t, ts, slack, "U0ALICE", "alice")
	linkSlackUser(t, ts, slack, "U0BOB", "bob")
	return ts
}

// slackClick sends a signed Approve click like signedPost, but returns
// its failure instead of failing the test, for use off the test goroutine.
func slackClick(client *http.Client, base, user, requestID, trigger string) error {
	body := clickPayload(user, requestID, "signoff_approve", trigger)
	req, _ := http.NewRequest(http.MethodPost, base+"/slack/interactions", strings.NewReader(body))
	req.Header = chattest.SlackHeaders(slackE2ESecret, time.Now().Unix(), body)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("click answered %d", resp.StatusCode)
	}
	return nil
}

// repliesTo counts the private replies (chat.postEphemeral) Slack was
// asked to show user: one per click, whatever its outcome.
func repliesTo(slack *slackStandIn, user string) int {
	n := 0
	for _, c := range slack.find("chat.postEphemeral", user) {
		if c.Get("user") == user {
			n++
		}
	}
	return n
}

// repliesWith returns the texts of the private replies to user that
// contain substr, oldest first.
func repliesWith(slack *slackStandIn, user, substr string) []string {
	var out []string
	for _, c := range slack.find("chat.postEphemeral", user) {
		if text := c.Get("text") + c.Get("blocks"); c.Get("user") == user && strings.Contains(text, substr) {
			out = append(out, text)
		}
	}
	return out
}

// votedBy reports whether the request holds a vote from the Slack user.
func votedBy(t *testing.T, ts *testServer, id, user string) bool {
	t.Helper()
	r, err := ts.svc.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range r.Votes {
		if v.Approver.PlatformUser == user {
			return true
		}
	}
	return false
}

// wantRevokeRecord checks the audit log for the admin's revoke of user:
// identity.unlinked whose actor is the admin and whose data names the
// chat account and the identity it was linked to.
func wantRevokeRecord(t *testing.T, ts *testServer, user, person string) {
	t.Helper()
	for _, r := range serverAudit(t, ts) {
		if r.Type != audit.TypeIdentityUnlinked || r.Actor == nil || r.Actor.Subject != "root-admin" {
			continue
		}
		link, _ := r.Data["link"].(map[string]any)
		if link["platform"] == "slack" && link["workspace"] == "T0E2E" && link["platform_user"] == user && link["subject"] == person {
			return
		}
		t.Fatalf("identity.unlinked by the admin names another link: %v", r.Data)
	}
	t.Fatalf("no identity.unlinked record by the admin for %s", user)
}

// TestRevokeWhileServingSlack: an admin revokes bob's link with `signoff
// links revoke --server` while the server runs; bob's very next click is
// answered with a fresh sign-in link and counts nothing, alice's still
// counts, and the audit log names the admin as the one who revoked.
func TestRevokeWhileServingSlack(t *testing.T) {
	slack := newSlackStandIn(t)
	ts := startSlackAdminServer(t, slack)
	admin := adminDevToken(t, ts)
	id := apiCreate(http.DefaultClient, ts.base, devToken(t, ts), "revoke-test")
	if id == "" {
		t.Fatal("create failed")
	}

	code, stdout, stderr := runCmd(t, "links", "list", "--server", ts.base, "--token", admin, "--platform", "slack")
	if code != 0 || !strings.Contains(stdout, "U0BOB") || !strings.Contains(stdout, "bob@example.com") || !strings.Contains(stdout, "U0ALICE") {
		t.Fatalf("links list --server: exit %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, stderr = runCmd(t, "links", "list", "--server", ts.base, "--token", admin, "--email", "BOB@example.com", "--output", "json")
	if code != 0 || !strings.Contains(stdout, `"user": "U0BOB"`) || strings.Contains(stdout, "U0ALICE") || strings.Contains(stdout, "refresh") {
		t.Fatalf("links list --server --email --output json: exit %d\n%s%s", code, stdout, stderr)
	}

	linksBefore := len(repliesWith(slack, "U0BOB", "/link/start?id="))
	code, stdout, stderr = runCmd(t, "links", "revoke", "--server", ts.base, "--token", admin,
		"--platform", "slack", "--workspace", "T0E2E", "--user", "U0BOB", "--reason", "left the company")
	if code != 0 || !strings.Contains(stdout, "revoked the link of slack user U0BOB") {
		t.Fatalf("links revoke --server: exit %d\n%s%s", code, stdout, stderr)
	}

	signedPost(t, ts.base, "/slack/interactions", clickPayload("U0BOB", id, "signoff_approve", "901"))
	var reply string
	waitFor(t, 20*time.Second, "the reply to bob's click", func() bool {
		replies := repliesWith(slack, "U0BOB", "/link/start?id=")
		if len(replies) > linksBefore {
			reply = replies[len(replies)-1]
		}
		return reply != ""
	})
	if !linkURLRE.MatchString(reply) || !strings.Contains(reply, "Nothing was counted") {
		t.Fatalf("bob's click after the revoke was answered %q, want a fresh sign-in link", reply)
	}
	if votedBy(t, ts, id, "U0BOB") {
		t.Fatal("bob's click counted after his link was revoked")
	}
	signedPost(t, ts.base, "/slack/interactions", clickPayload("U0ALICE", id, "signoff_approve", "902"))
	waitFor(t, 20*time.Second, "alice's vote", func() bool { return votedBy(t, ts, id, "U0ALICE") })
	if r, _ := ts.svc.Get(context.Background(), id); r.State != storage.StatePending || len(r.Votes) != 1 {
		t.Fatalf("after alice's vote: %s with %d votes", r.State, len(r.Votes))
	}
	wantRevokeRecord(t, ts, "U0BOB", "bob")

	// The listing no longer shows bob.
	_, stdout, _ = runCmd(t, "links", "list", "--server", ts.base, "--token", admin)
	if strings.Contains(stdout, "U0BOB") {
		t.Errorf("bob still listed after the revoke:\n%s", stdout)
	}
}

// TestRevokeUnderLoadSlack: requests keep being created and alice and bob
// keep approving them by signed Slack clicks while an admin revokes bob.
// The revoke lands while the load runs; from the moment it returns, no
// click of bob counts, on any request; alice's clicks go on counting; the
// audit chain verifies.
func TestRevokeUnderLoadSlack(t *testing.T) {
	slack := newSlackStandIn(t)
	ts := startSlackAdminServer(t, slack)
	admin := adminDevToken(t, ts)
	creator := devToken(t, ts)
	baseReplies := map[string]int{"U0ALICE": repliesTo(slack, "U0ALICE"), "U0BOB": repliesTo(slack, "U0BOB")}

	var (
		revoked   atomic.Bool
		mu        sync.Mutex
		voted     []string // requests both clicked on
		bobAfter  []string // requests bob clicked on after the revoke returned
		clicks    = map[string]int{}
		loadErr   error
		trigger   atomic.Int64
		wg        sync.WaitGroup
		stop      = make(chan struct{})
		requestCh = make(chan string, 64)
	)
	client := &http.Client{Timeout: 10 * time.Second}
	fail := func(err error) {
		mu.Lock()
		if loadErr == nil {
			loadErr = err
		}
		mu.Unlock()
	}
	// Creators.
	for c := range 3 {
		wg.Go(func() {
			defer func() {
				if c == 0 {
					close(requestCh)
				}
			}()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := apiCreate(client, ts.base, creator, fmt.Sprintf("load-%d-%d", c, i))
				if id == "" {
					fail(fmt.Errorf("a create was not acknowledged"))
					return
				}
				if c == 0 {
					select {
					case requestCh <- id:
					case <-stop:
						return
					}
				}
			}
		})
	}
	// Voters: alice and bob click Approve on each request of creator 0.
	wg.Go(func() {
		for id := range requestCh {
			var inner sync.WaitGroup
			for _, user := range []string{"U0ALICE", "U0BOB"} {
				inner.Add(1)
				go func() {
					defer inner.Done()
					after := revoked.Load() // read before the click is sent
					if err := slackClick(client, ts.base, user, id, strconv.FormatInt(trigger.Add(1), 10)); err != nil {
						fail(err)
						return
					}
					mu.Lock()
					clicks[user]++
					if user == "U0BOB" && after {
						bobAfter = append(bobAfter, id)
					}
					mu.Unlock()
				}()
			}
			inner.Wait()
			mu.Lock()
			voted = append(voted, id)
			mu.Unlock()
		}
	})
	count := func(list *[]string) int {
		mu.Lock()
		defer mu.Unlock()
		return len(*list)
	}
	waitFor(t, 60*time.Second, "load before the revoke", func() bool { return count(&voted) >= 10 })

	code, _, stderr := runCmd(t, "links", "revoke", "--server", ts.base, "--token", admin,
		"--platform", "slack", "--workspace", "T0E2E", "--user", "U0BOB", "--reason", "compromised account")
	if code != 0 {
		close(stop)
		wg.Wait()
		t.Fatalf("revoke under load: exit %d: %s", code, stderr)
	}
	revoked.Store(true)
	waitFor(t, 60*time.Second, "load after the revoke", func() bool { return count(&bobAfter) >= 10 })
	close(stop)
	wg.Wait()
	if loadErr != nil {
		t.Fatalf("load: %v", loadErr)
	}

	// Every click is answered privately once processed: wait for all of
	// them, so that no vote is still on its way.
	for user, base := range baseReplies {
		waitFor(t, 60*time.Second, "the replies to "+user+"'s clicks", func() bool { return repliesTo(slack, user)-base >= clicks[user] })
	}
	for _, id := range bobAfter {
		if votedBy(t, ts, id, "U0BOB") {
			t.Fatalf("bob's click on %s, sent after the revoke returned, counted", id)
		}
		if !votedBy(t, ts, id, "U0ALICE") {
			t.Fatalf("alice's click on %s did not count", id)
		}
	}
	var bobBefore int
	for _, id := range voted[:10] {
		if votedBy(t, ts, id, "U0BOB") {
			bobBefore++
		}
	}
	if bobBefore == 0 {
		t.Fatal("none of bob's clicks before the revoke counted: the load did not exercise his link")
	}
	t.Logf("%d requests clicked, bob's clicks counted on %d of the first 10, on 0 of the %d after the revoke", len(voted), bobBefore, len(bobAfter))

	// A fresh request: bob's next click is refused too.
	id := apiCreate(http.DefaultClient, ts.base, creator, "after-load")
	signedPost(t, ts.base, "/slack/interactions", clickPayload("U0BOB", id, "signoff_approve", "999999"))
	waitFor(t, 20*time.Second, "the reply to bob's last click", func() bool {
		return repliesTo(slack, "U0BOB")-baseReplies["U0BOB"] > clicks["U0BOB"]
	})
	if votedBy(t, ts, id, "U0BOB") {
		t.Fatal("bob's click after the load counted")
	}
	wantRevokeRecord(t, ts, "U0BOB", "bob")

	// The log verifies end to end.
	auditor := devToken(t, ts, "--sub", "auditor", "--claim", `groups=["audit"]`)
	export := filepath.Join(t.TempDir(), "audit.jsonl")
	if code, _, errOut := runCmd(t, "audit", "export", "--server", ts.base, "--token", auditor, "-o", export); code != 0 {
		t.Fatalf("audit export: %s", errOut)
	}
	if code, out, errOut := runCmd(t, "audit", "verify", export); code != 0 {
		t.Fatalf("audit verify: exit %d\n%s%s", code, out, errOut)
	}
}
