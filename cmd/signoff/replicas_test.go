package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/approvals/audit"
	"github.com/signoff-dev/signoff/internal/testpg"
)

// replicaConfig is the replicas' config: one action, decided by one vote,
// whose approval calls the test's webhook receiver (WEBHOOK).
const replicaConfig = devRequestersYAML + `actions:
  deploy:
    description: Deploy a service
    requesters: [{issuer: dev, claims: {sub: "*"}}]
    params: {service: {required: true}}
    approvers: {groups: [sre], min_approvals: 1}
    ttl: 1h
    on_approve:
      webhook: {url: "WEBHOOK", secret: replica-test-secret, timeout: 5s}
` + quickYAML + `dev:
  approvers:
    - {name: alice, email: alice@example.com, groups: [sre]}
    - {name: bob, email: bob@example.com, groups: [sre]}
limits: {pending_per_requester: 1000}
log: {level: warn}
`

// replica is one `signoff serve` process of a replica set.
type replica struct {
	t     *testing.T
	bin   string
	env   []string
	addr  string
	cmd   *exec.Cmd
	token string
	// console is a browser session on the dev console: its cookie and
	// form token.
	console *http.Client
	csrf    string
	log     *bytes.Buffer
}

func (r *replica) base() string { return "http://" + r.addr }

// start starts the process and waits until it is ready.
func (r *replica) start() {
	t := r.t
	t.Helper()
	r.log = &bytes.Buffer{}
	r.cmd = exec.Command(r.bin, "serve", "--dev", "--config", r.env[0])
	r.cmd.Env = append(os.Environ(), r.env[1:]...)
	r.cmd.Stdout, r.cmd.Stderr = io.Discard, r.log
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	cmd := r.cmd
	t.Cleanup(func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() })
	waitFor(t, 60*time.Second, "replica "+r.addr+" to answer /readyz", func() bool {
		resp, err := http.Get(r.base() + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	out, err := exec.Command(r.bin, "dev", "token", "--server", r.base()).Output()
	if err != nil {
		t.Fatalf("dev token from %s: %v", r.addr, err)
	}
	r.token = strings.TrimSpace(string(out))
	jar, _ := cookiejar.New(nil)
	r.console = &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := r.console.Get(r.base() + "/dev")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindSubmatch(page)
	if m == nil {
		t.Fatalf("no form token on %s/dev", r.addr)
	}
	r.csrf = string(m[1])
}

// kill SIGKILLs the process.
func (r *replica) kill() {
	_ = r.cmd.Process.Kill()
	_, _ = r.cmd.Process.Wait()
}

// create asks for a deploy; it returns the id if the replica acknowledged
// it (201).
func (r *replica) create(client *http.Client, key string) (string, bool) {
	id, status := r.post(client, key)
	return id, status == http.StatusCreated && id != ""
}

// post asks for a deploy under an idempotency key and returns the request
// id answered and the status.
func (r *replica) post(client *http.Client, key string) (string, int) {
	return r.postBody(client, key, `{"action":"deploy","params":{"service":"api"},"reason":"`+key+`"}`)
}

// postBody sends POST /v1/requests with body under an idempotency key.
func (r *replica) postBody(client *http.Client, key, body string) (string, int) {
	req, _ := http.NewRequest(http.MethodPost, r.base()+"/v1/requests", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+r.token)
	req.Header.Set("Idempotency-Key", key)
	resp, err := client.Do(req)
	if err != nil {
		return "", 0
	}
	defer resp.Body.Close()
	var v struct {
		ID string `json:"id"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&v)
	return v.ID, resp.StatusCode
}

// vote votes through the dev console as approver; it reports whether the
// replica answered (the vote may still have been refused).
func (r *replica) vote(id, approver, decision string) bool {
	form := url.Values{"csrf": {r.csrf}, "request": {id}, "approver": {approver}, "decision": {decision}}
	resp, err := r.console.PostForm(r.base()+"/dev/vote", form)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusSeeOther
}

// webhookReceiver counts the on_approve calls per request.
type webhookReceiver struct {
	mu    sync.Mutex
	calls map[string]int
}

func (w *webhookReceiver) ServeHTTP(rw http.ResponseWriter, req *http.Request) {
	var p struct {
		ID string `json:"id"`
	}
	if err := json.NewDecoder(req.Body).Decode(&p); err != nil || p.ID == "" {
		http.Error(rw, "bad payload", http.StatusBadRequest)
		return
	}
	w.mu.Lock()
	w.calls[p.ID]++
	w.mu.Unlock()
}

func (w *webhookReceiver) count(id string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.calls[id]
}

// TestReplicasOnPostgres runs three signoff processes on one PostgreSQL
// database: requests created through all of them at once, an approve and a
// deny for each request sent to two different replicas at the same instant,
// and one replica SIGKILLed in the middle and started again. Afterwards each
// acknowledged request was created once, decided exactly once, an approved
// one executed once (its webhook called at least once, at most twice: a
// crash may repeat one delivery), and the audit chain, written by all three,
// is one gap-free chain that `signoff audit verify` accepts.
func TestReplicasOnPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs three servers")
	}
	dsn, _ := testpg.Schema(t)
	bin := buildSignoff(t)
	receiver := &webhookReceiver{calls: map[string]int{}}
	hook := httptest.NewServer(receiver)
	defer hook.Close()

	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "signoff.yaml")
	if err := os.WriteFile(cfgPath, []byte(strings.Replace(replicaConfig, "WEBHOOK", hook.URL, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	dsnFile := writeDSNFile(t, dsn)
	replicas := make([]*replica, 3)
	for i := range replicas {
		replicas[i] = &replica{t: t, bin: bin, addr: freeLoopbackAddr(t), env: []string{cfgPath,
			"SIGNOFF_STORAGE_DRIVER=postgres", "SIGNOFF_STORAGE_DSN_FILE=" + dsnFile,
			"SIGNOFF_STORAGE_PATH=" + filepath.Join(dir, fmt.Sprintf("replica-%d", i), "signoff.db")}}
		replicas[i].env = append(replicas[i].env, "SIGNOFF_LISTEN="+replicas[i].addr)
	}
	var starting sync.WaitGroup
	for _, r := range replicas {
		starting.Go(r.start) // at once: they migrate one at a time
	}
	starting.Wait()
	if t.Failed() {
		return
	}
	defer func() {
		if t.Failed() {
			for _, r := range replicas {
				t.Logf("replica %s log:\n%s", r.addr, r.log)
			}
		}
	}()

	// Creates through every replica at once.
	const perClient = 12
	client := &http.Client{Timeout: 10 * time.Second}
	var (
		mu    sync.Mutex
		acked []string
		wg    sync.WaitGroup
	)
	for i, r := range replicas {
		for c := range 2 {
			wg.Go(func() {
				for n := range perClient {
					if id, ok := r.create(client, fmt.Sprintf("r%d-c%d-%d", i, c, n)); ok {
						mu.Lock()
						acked = append(acked, id)
						mu.Unlock()
					}
				}
			})
		}
	}
	wg.Wait()
	if len(acked) != len(replicas)*2*perClient {
		t.Fatalf("%d of %d creates acknowledged with every replica up", len(acked), len(replicas)*2*perClient)
	}

	// One idempotency key sent to every replica at once (the dev tokens
	// of all replicas name one requester): one request, created once.
	type answer struct {
		id     string
		status int
	}
	answers := make(chan answer, len(replicas))
	same := make(chan struct{})
	for _, r := range replicas {
		wg.Go(func() {
			<-same
			id, status := r.post(client, "same-key-everywhere")
			answers <- answer{id, status}
		})
	}
	close(same)
	wg.Wait()
	close(answers)
	var firstID string
	createdOnce := 0
	for a := range answers {
		if a.status == http.StatusCreated {
			createdOnce++
		} else if a.status != http.StatusOK {
			t.Errorf("a replica answered %d to a retried idempotency key", a.status)
		}
		if firstID == "" {
			firstID = a.id
		} else if a.id != firstID {
			t.Errorf("one idempotency key gave requests %s and %s on different replicas", firstID, a.id)
		}
	}
	if createdOnce != 1 {
		t.Fatalf("%d replicas created the request of one idempotency key, want exactly 1", createdOnce)
	}
	acked = append(acked, firstID)

	// For each request an approve and a deny at the same instant, on two
	// different replicas; replica 2 is killed a third of the way through.
	start := make(chan struct{})
	for n, id := range acked {
		a, b := replicas[n%3], replicas[(n+1)%3]
		wg.Go(func() { <-start; a.vote(id, "alice", "approve") })
		wg.Go(func() { <-start; b.vote(id, "bob", "deny") })
		if n == len(acked)/3 {
			wg.Go(func() { <-start; replicas[2].kill() })
		}
	}
	close(start)
	wg.Wait()
	replicas[2].start()
	// Votes that went to the killed replica may be lost (not
	// acknowledged): vote again through a live one until every request is
	// decided.
	decided := func() map[string]string {
		out := map[string]string{}
		for _, rec := range exportAuditRecords(t, bin, dsnFile) {
			if rec.Type == audit.TypeRequestApproved || rec.Type == audit.TypeRequestDenied {
				if prev, ok := out[rec.RequestID]; ok {
					t.Fatalf("request %s decided twice: %s, then %s", rec.RequestID, prev, rec.Type)
				}
				out[rec.RequestID] = rec.Type
			}
		}
		return out
	}
	waitFor(t, 60*time.Second, "every request decided", func() bool {
		got := decided()
		for n, id := range acked {
			if _, ok := got[id]; !ok {
				replicas[n%2].vote(id, "alice", "approve")
			}
		}
		return len(got) == len(acked)
	})

	// Each approved request executes once; its webhook may be called a
	// second time only because of the crash.
	outcome := decided()
	waitFor(t, 90*time.Second, "every approved request executed", func() bool {
		executed := map[string]int{}
		for _, rec := range exportAuditRecords(t, bin, dsnFile) {
			if rec.Type == audit.TypeExecutionSucceeded {
				executed[rec.RequestID]++
			}
		}
		for id, how := range outcome {
			want := 0
			if how == audit.TypeRequestApproved {
				want = 1
			}
			if executed[id] > want {
				t.Fatalf("request %s (%s) has %d execution.succeeded records, want %d", id, how, executed[id], want)
			}
			if executed[id] < want {
				return false
			}
		}
		return true
	})
	approved := 0
	for id, how := range outcome {
		calls := receiver.count(id)
		if how != audit.TypeRequestApproved {
			if calls != 0 {
				t.Errorf("denied request %s called the webhook %d times", id, calls)
			}
			continue
		}
		approved++
		if calls < 1 || calls > 2 {
			t.Errorf("approved request %s called the webhook %d times, want once (twice at most, after a crash)", id, calls)
		}
	}
	created := map[string]int{}
	for _, rec := range exportAuditRecords(t, bin, dsnFile) {
		if rec.Type == audit.TypeRequestCreated {
			created[rec.RequestID]++
		}
	}
	for _, id := range acked {
		if created[id] != 1 {
			t.Errorf("acknowledged request %s has %d request.created records, want 1", id, created[id])
		}
	}
	if out, err := exec.Command(bin, "audit", "verify", "--dsn-file", dsnFile).CombinedOutput(); err != nil {
		t.Fatalf("audit verify of the chain three replicas wrote: %v\n%s", err, out)
	}
	t.Logf("%d requests through 3 replicas: %d approved, %d denied", len(acked), approved, len(acked)-approved)

	// Every replica runs the expiry loop: a request that nobody decides
	// expires exactly once all the same.
	var quick []string
	for i, r := range replicas {
		id, status := r.postBody(client, fmt.Sprintf("quick-%d", i), `{"action":"quick"}`)
		if status != http.StatusCreated {
			t.Fatalf("create a quick request through %s: %d", r.addr, status)
		}
		quick = append(quick, id)
	}
	waitFor(t, 60*time.Second, "the quick requests to expire", func() bool {
		expired := map[string]int{}
		for _, rec := range exportAuditRecords(t, bin, dsnFile) {
			if rec.Type == audit.TypeRequestExpired {
				expired[rec.RequestID]++
			}
		}
		done := true
		for _, id := range quick {
			if expired[id] > 1 {
				t.Fatalf("request %s expired %d times", id, expired[id])
			}
			done = done && expired[id] == 1
		}
		return done
	})
}

// exportAuditRecords reads the whole audit log with `signoff audit export`.
func exportAuditRecords(t *testing.T, bin, dsnFile string) []audit.Record {
	t.Helper()
	out, err := exec.Command(bin, "audit", "export", "--dsn-file", dsnFile).Output()
	if err != nil {
		t.Fatalf("audit export: %v", err)
	}
	var recs []audit.Record
	for _, line := range bytes.Split(bytes.TrimSpace(out), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		rec, err := audit.ParseRecord(line)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, rec)
	}
	return recs
}
