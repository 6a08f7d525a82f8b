package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/approvals/audit"
)

const crashConfig = devRequestersYAML + `actions:
  deploy:
    description: Deploy a service
    requesters: [{issuer: dev, claims: {sub: "*"}}]
    params: {service: {required: true}}
    approvers: {groups: [sre]}
    ttl: 1h
dev:
  approvers: [{name: alice, email: alice@example.com, groups: [sre]}]
log: {level: warn}
`

// TestCrashLosesNothingAcknowledged is invariant 3 (docs/architecture.md) under a real
// kill: 16 clients create requests as fast as they can, the server is
// SIGKILLed mid-stream, and afterwards every request the API acknowledged
// (201) is in the database with its audit record, no request was created
// twice, the audit chain verifies, and the server starts again on the
// same file. The request loops are bounded in count and time.
func TestCrashLosesNothingAcknowledged(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and kills it")
	}
	bin := buildSignoff(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "signoff.yaml")
	if err := os.WriteFile(cfgPath, []byte(crashConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, "data", "signoff.db")
	addr := freeLoopbackAddr(t)
	start := func() *exec.Cmd {
		cmd := exec.Command(bin, "serve", "--dev", "--config", cfgPath)
		cmd.Env = append(os.Environ(), "SIGNOFF_LISTEN="+addr, "SIGNOFF_STORAGE_PATH="+db)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() })
		waitFor(t, 30*time.Second, "the server to answer /readyz", func() bool {
			resp, err := http.Get("http://" + addr + "/readyz")
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		})
		return cmd
	}
	server := start()
	tokOut, err := exec.Command(bin, "dev", "token", "--server", "http://"+addr).Output()
	if err != nil {
		t.Fatalf("dev token: %v", err)
	}
	token := strings.TrimSpace(string(tokOut))

	const clients, perClient = 16, 200
	var (
		mu    sync.Mutex
		acked = map[string]string{} // idempotency key -> request id
		wg    sync.WaitGroup
	)
	stop := make(chan struct{})
	client := &http.Client{Timeout: 5 * time.Second}
	for c := 0; c < clients; c++ {
		wg.Go(func() {
			for i := 0; i < perClient; i++ {
				select {
				case <-stop:
					return
				default:
				}
				key := fmt.Sprintf("crash-%d-%d", c, i)
				req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/v1/requests",
					strings.NewReader(`{"action":"deploy","params":{"service":"api"},"reason":"`+key+`"}`))
				req.Header.Set("Authorization", "Bearer "+token)
				req.Header.Set("Idempotency-Key", key)
				resp, err := client.Do(req)
				if err != nil {
					return // the server is gone
				}
				var v struct {
					ID string `json:"id"`
				}
				_ = json.NewDecoder(resp.Body).Decode(&v)
				resp.Body.Close()
				if resp.StatusCode == http.StatusCreated && v.ID != "" {
					mu.Lock()
					acked[key] = v.ID
					mu.Unlock()
				}
			}
		})
	}
	// Kill once a good number of creates were acknowledged (or after 10 s).
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 300 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := server.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_, _ = server.Process.Wait()
	close(stop)
	wg.Wait()
	if len(acked) == 0 {
		t.Fatal("no create was acknowledged before the kill")
	}

	// Offline: the chain verifies and holds every acknowledged request once.
	if out, err := exec.Command(bin, "audit", "verify", "--db", db).CombinedOutput(); err != nil {
		t.Fatalf("audit verify after the kill: %v\n%s", err, out)
	}
	export, err := exec.Command(bin, "audit", "export", "--db", db).Output()
	if err != nil {
		t.Fatal(err)
	}
	created := map[string]int{}
	for _, line := range bytes.Split(bytes.TrimSpace(export), []byte("\n")) {
		r, err := audit.ParseRecord(line)
		if err != nil {
			t.Fatal(err)
		}
		if r.Type == audit.TypeRequestCreated {
			created[r.RequestID]++
		}
	}
	for key, id := range acked {
		if created[id] != 1 {
			t.Fatalf("acknowledged request %s (key %s) has %d request.created records after the crash", id, key, created[id])
		}
	}
	t.Logf("%d creates acknowledged before the kill, %d committed", len(acked), len(created))

	// The same file serves again, and an acknowledged request is there.
	start()
	var anyID string
	for _, id := range acked {
		anyID = id
		break
	}
	if status, _ := bearerCall(t, http.MethodGet, "http://"+addr+"/v1/requests/"+anyID, token, ""); status != http.StatusOK {
		t.Fatalf("GET an acknowledged request after restart: %d", status)
	}
}
