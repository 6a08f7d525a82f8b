package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/api"
	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/approvals/audit"
	"github.com/signoff-dev/signoff/config"
	"github.com/signoff-dev/signoff/storage"
	"github.com/signoff-dev/signoff/storage/boltstore"
)

// adminTestConfig is the request tests' config with an admin group.
const adminTestConfig = requestTestConfig + "admins: {groups: [signoff-admins]}\n"

// isolateLogin keeps the tests away from a signoff login cached on the
// machine that runs them.
func isolateLogin(t *testing.T) {
	t.Helper()
	clearCIEnv(t)
	dir := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", dir)
	t.Setenv("HOME", dir)
}

// startAdminServer runs dev mode with adminTestConfig on db, with the
// request limits raised out of the way of load tests.
func startAdminServer(t *testing.T, db string) *testServer {
	t.Helper()
	cfgPath := writeConfig(t, adminTestConfig)
	return startServeConfig(t, cfgPath, true, func(c *config.Config) {
		c.Storage.Path = db
		c.Limits.RequestsPerMinute, c.Limits.PendingPerRequester, c.Limits.ClicksPerMinute = 1_000_000, 1_000_000, 1_000_000
	})
}

func adminDevToken(t *testing.T, ts *testServer) string {
	return devToken(t, ts, "--sub", "root-admin", "--claim", `groups=["signoff-admins"]`)
}

// apiCreate POSTs a deploy request and returns its id, or "" when it was
// not acknowledged with 201.
func apiCreate(client *http.Client, base, token, reason string) string {
	req, _ := http.NewRequest(http.MethodPost, base+"/v1/requests", strings.NewReader(`{"action":"deploy","params":{"service":"api"},"reason":"`+reason+`"}`))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var v struct {
		ID string `json:"id"`
	}
	if resp.StatusCode != http.StatusCreated || json.NewDecoder(resp.Body).Decode(&v) != nil {
		return ""
	}
	return v.ID
}

// TestAdminCommandsRefuse: usage errors, missing and insufficient tokens,
// and an unknown link, each with its exit code and a message saying what
// to do.
func TestAdminCommandsRefuse(t *testing.T) {
	isolateLogin(t)
	db := filepath.Join(t.TempDir(), "data", "signoff.db")
	ts := startAdminServer(t, db)
	dev := devToken(t, ts, "--claim", `groups=["dev"]`)
	auditor := devToken(t, ts, "--sub", "auditor", "--claim", `groups=["audit"]`)
	admin := adminDevToken(t, ts)
	out := filepath.Join(t.TempDir(), "backup.db")

	for _, c := range []struct {
		args []string
		code int
		want []string
	}{
		{[]string{"links", "list"}, exitUsage, []string{"--server URL", "--db FILE"}},
		{[]string{"links", "list", "--server", ts.base, "--db", db}, exitUsage, []string{"not both"}},
		{[]string{"links", "revoke", "--server", ts.base, "--db", db, "--platform", "slack", "--workspace", "T1", "--user", "U1"}, exitUsage, []string{"not both"}},
		{[]string{"links", "revoke", "--platform", "slack", "--workspace", "T1", "--user", "U1"}, exitUsage, []string{"--server or --db"}},
		{[]string{"backup", "-o", out}, exitUsage, []string{"--server URL", "--db FILE"}},
		{[]string{"backup", "--server", ts.base, "--token", admin}, exitUsage, []string{"-o FILE"}},
		{[]string{"requests", "list", "--server", "ftp://example.com", "--token", admin}, exitUsage, []string{"http(s) URL"}},
		{[]string{"requests", "list", "--server", ts.base, "--state", "pending", "--output", "yaml", "--token", admin}, exitUsage, []string{"--output"}},
		// No token anywhere: say where one comes from.
		{[]string{"requests", "list", "--server", ts.base}, exitUsage, []string{"--token", "SIGNOFF_TOKEN", "signoff login"}},
		{[]string{"backup", "--server", ts.base, "-o", out}, exitUsage, []string{"--token"}},
		// A token without an admin group: 403 names the groups.
		{[]string{"requests", "list", "--server", ts.base, "--token", dev}, exitRefused, []string{"403 forbidden", "admins.groups", "signoff-admins", "auditors.groups", `"dev"`}},
		{[]string{"links", "list", "--server", ts.base, "--token", auditor}, exitRefused, []string{"403 forbidden", "admins.groups", `"audit"`}},
		{[]string{"links", "revoke", "--server", ts.base, "--token", auditor, "--platform", "slack", "--workspace", "T1", "--user", "U1"}, exitRefused, []string{"403 forbidden"}},
		{[]string{"backup", "--server", ts.base, "--token", auditor, "-o", out}, exitRefused, []string{"403 forbidden", "admins.groups"}},
		{[]string{"requests", "list", "--server", ts.base, "--token", "not-a-jwt"}, exitRefused, []string{"refused the token"}},
		// An admin revoking a link that does not exist.
		{[]string{"links", "revoke", "--server", ts.base, "--token", admin, "--platform", "slack", "--workspace", "T1", "--user", "U1"}, exitFailure, []string{"404 not_found", "nothing to revoke"}},
		{[]string{"requests", "list", "--server", ts.base, "--token", admin, "--state", "bogus"}, exitFailure, []string{"400 invalid_request", "pending, approved"}},
	} {
		code, _, stderr := runCmd(t, c.args...)
		if code != c.code {
			t.Errorf("%v: exit %d, want %d: %s", c.args, code, c.code, stderr)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(stderr, w) {
				t.Errorf("%v: stderr does not say %q: %s", c.args, w, stderr)
			}
		}
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("a refused backup left %s behind: %v", out, err)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(out), ".*partial*")); len(left) > 0 {
		t.Errorf("a refused backup left temporary files: %v", left)
	}

	// The auditor lists requests; $SIGNOFF_TOKEN works like --token.
	id := apiCreate(http.DefaultClient, ts.base, devToken(t, ts), "listed")
	t.Setenv("SIGNOFF_TOKEN", auditor)
	code, stdout, stderr := runCmd(t, "requests", "list", "--server", ts.base, "--state", "pending")
	if code != 0 || !strings.Contains(stdout, id) || !strings.Contains(stdout, "ACTION") || !strings.Contains(stdout, "listed") {
		t.Errorf("auditor's requests list: exit %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, stderr = runCmd(t, "requests", "list", "--server", ts.base, "--state", "approved")
	if code != 0 || !strings.Contains(stdout, "no requests") {
		t.Errorf("an empty listing: exit %d\n%s%s", code, stdout, stderr)
	}
}

// TestBackupWhileCreatingThenRestore: clients keep creating requests
// while an admin takes a backup over the API. The copy verifies (signoff
// audit verify), holds every request acknowledged (201) before the backup
// began and the admin.backup record naming the admin; --db refuses the
// file the server holds and points at --server. Then the restore the README
// describes: stop, copy the backup to storage.path, start; the restored
// server serves exactly the requests the copy holds.
func TestBackupWhileCreatingThenRestore(t *testing.T) {
	isolateLogin(t)
	dir := t.TempDir()
	db := filepath.Join(dir, "data", "signoff.db")
	ts := startAdminServer(t, db)
	creator := devToken(t, ts)
	admin := adminDevToken(t, ts)

	const clients, perClient = 8, 60
	var (
		mu    sync.Mutex
		acked []string
		wg    sync.WaitGroup
	)
	stop := make(chan struct{})
	client := &http.Client{Timeout: 10 * time.Second}
	for c := range clients {
		wg.Go(func() {
			for i := range perClient {
				select {
				case <-stop:
					return
				default:
				}
				if id := apiCreate(client, ts.base, creator, fmt.Sprintf("load-%d-%d", c, i)); id != "" {
					mu.Lock()
					acked = append(acked, id)
					mu.Unlock()
				}
			}
		})
	}
	ackedNow := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), acked...)
	}
	waitFor(t, 30*time.Second, "the first acknowledged creates", func() bool { return len(ackedNow()) >= 40 })

	before := ackedNow() // acknowledged before the backup began
	copyPath := filepath.Join(dir, "backups", "signoff-backup.db")
	if err := os.MkdirAll(filepath.Dir(copyPath), 0o700); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCmd(t, "backup", "--server", ts.base, "--token", admin, "-o", copyPath)
	if code != 0 {
		t.Fatalf("backup --server: exit %d: %s", code, stderr)
	}
	during := len(ackedNow()) - len(before)

	// While the server holds the file, --db refuses and says what to use.
	code, _, stderr = runCmd(t, "backup", "--db", db, "-o", filepath.Join(dir, "offline.db"))
	if code != exitFailure || !strings.Contains(stderr, "running signoff server holds the database") || !strings.Contains(stderr, "--server") {
		t.Errorf("backup --db of a served file: exit %d: %s", code, stderr)
	}
	close(stop)
	wg.Wait()
	total := len(ackedNow())
	t.Logf("%d creates acknowledged before the backup, %d while it ran, %d in all", len(before), during, total)

	if info, err := os.Stat(copyPath); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v %v", info, err)
	}
	if code, out, errOut := runCmd(t, "audit", "verify", "--db", copyPath); code != 0 {
		t.Fatalf("audit verify of the backup: exit %d\n%s%s", code, out, errOut)
	}
	inCopy := requestIDs(t, copyPath)
	for _, id := range before {
		if !inCopy[id] {
			t.Fatalf("request %s was acknowledged before the backup began but is not in the copy", id)
		}
	}
	last := lastRecordOfType(t, copyPath, approvals.TypeAdminBackup)
	if last == nil || last.Actor == nil || last.Actor.Subject != "root-admin" || !strings.HasPrefix(last.Actor.Issuer, "http://127.0.0.1") {
		t.Fatalf("the copy's admin.backup record: %+v", last)
	}

	// Restore: stop, copy the file back, start.
	if err := ts.stop(); err != nil {
		t.Fatal(err)
	}
	// A stopped server's file copies offline, consistently.
	offline := filepath.Join(dir, "offline.db")
	if code, _, errOut := runCmd(t, "backup", "--db", db, "-o", offline); code != 0 {
		t.Fatalf("backup --db of a stopped server's file: exit %d: %s", code, errOut)
	}
	if code, _, errOut := runCmd(t, "audit", "verify", "--db", offline); code != 0 {
		t.Fatalf("audit verify of the offline copy: %s", errOut)
	}
	if n := len(requestIDs(t, offline)); n != total {
		t.Errorf("the offline copy holds %d requests, %d were acknowledged", n, total)
	}
	if code, _, errOut := runCmd(t, "backup", "--db", db, "-o", db); code != exitUsage {
		t.Errorf("backup onto the database itself: exit %d: %s", code, errOut)
	}
	data, err := os.ReadFile(copyPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(db, data, 0o600); err != nil {
		t.Fatal(err)
	}
	restored := startAdminServer(t, db)
	admin = adminDevToken(t, restored)
	code, stdout, errOut := runCmd(t, "requests", "list", "--server", restored.base, "--token", admin, "--state", "pending", "--limit", "1000", "--output", "json")
	if code != 0 {
		t.Fatalf("requests list on the restored server: exit %d: %s", code, errOut)
	}
	var listed api.RequestList
	if err := json.Unmarshal([]byte(stdout), &listed); err != nil {
		t.Fatal(err)
	}
	served := map[string]bool{}
	for _, r := range listed.Requests {
		served[r.ID] = true
	}
	if len(served) != len(inCopy) {
		t.Errorf("the restored server lists %d pending requests, the backup holds %d", len(served), len(inCopy))
	}
	for _, id := range before {
		if !served[id] {
			t.Fatalf("the restored server does not list %s", id)
		}
	}
	// And it goes on serving: a requester reads one back and a new one is
	// created on the restored file.
	creator = devToken(t, restored)
	if status, _ := bearerCall(t, http.MethodGet, restored.base+"/v1/requests/"+before[0], creator, ""); status != http.StatusOK {
		t.Errorf("GET a restored request: %d", status)
	}
	if apiCreate(http.DefaultClient, restored.base, creator, "after-restore") == "" {
		t.Error("the restored server does not take new requests")
	}
}

// requestIDs opens a database copy read-only and returns its request ids.
func requestIDs(t *testing.T, path string) map[string]bool {
	t.Helper()
	st, err := boltstore.Open(path, boltstore.Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer st.Close()
	ids := map[string]bool{}
	err = st.View(t.Context(), func(tx storage.ReadTx) error {
		rs, err := tx.Requests(storage.RequestFilter{})
		for _, r := range rs {
			ids[r.ID] = true
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// lastRecordOfType returns the last audit record of typ in a database
// file, or nil.
func lastRecordOfType(t *testing.T, path, typ string) *audit.Record {
	t.Helper()
	st, err := boltstore.Open(path, boltstore.Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer st.Close()
	var last *audit.Record
	err = st.AuditRecords(t.Context(), 1, func(_ uint64, line []byte) error {
		r, err := audit.ParseRecord(line)
		if err != nil {
			return err
		}
		if r.Type == typ {
			last = &r
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return last
}

// TestRequestOutcomeNamesAdminCancel: `signoff request --wait` says who
// cancelled (exit 12 either way).
func TestRequestOutcomeNamesAdminCancel(t *testing.T) {
	v := api.Request{ID: "req_1", Action: "deploy", State: api.StateCancelled, DecidedBy: "admin"}
	if code, line := outcome(v, time.Minute); code != exitCancelled || !strings.Contains(line, "by a signoff admin") {
		t.Errorf("admin's cancel: %d %q", code, line)
	}
	v.DecidedBy = "requester"
	if code, line := outcome(v, time.Minute); code != exitCancelled || !strings.Contains(line, "by its requester") {
		t.Errorf("requester's cancel: %d %q", code, line)
	}
}
