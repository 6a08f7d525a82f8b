package audit

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

// testKey returns a fixed Ed25519 key derived from seed.
func testKey(seed byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
}

var testEpoch = time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)

// sampleRecord returns the i-th of a rotating set of realistic records
// (roughly 350-600 bytes once sealed), unsealed.
func sampleRecord(i int) Record {
	req := fmt.Sprintf("req_01J%017d", i/6)
	requester := &Actor{
		Issuer:  "https://token.actions.githubusercontent.com",
		Subject: "repo:acme/payments-api:ref:refs/heads/main",
		Name:    "acme/payments-api",
	}
	approver := &Actor{
		Issuer:       "https://login.example.com/realms/acme",
		Subject:      fmt.Sprintf("9f1c2e7a-%04d-4d1b-8c3e-5b6a7c8d9e0f", i%97),
		Name:         "Zoë Müller",
		Email:        "zoe.muller@example.com",
		Platform:     "slack",
		Workspace:    "T024BE7LD",
		PlatformUser: "U012AB3CD",
	}
	r := Record{
		Time:      FormatTime(testEpoch.Add(time.Duration(i) * 1337 * time.Millisecond)),
		RequestID: req,
		Action:    "deploy-prod",
	}
	switch i % 6 {
	case 0:
		r.Type = TypeRequestCreated
		r.Actor = requester
		r.Source = "api"
		r.Data = map[string]any{
			"params":     map[string]any{"service": "payments-api", "version": fmt.Sprintf("1.4.%d", i)},
			"reason":     "Roll out the fix for <INC-4211> & re-enable retries",
			"links":      []any{map[string]any{"title": "PR #812", "url": "https://github.com/acme/payments-api/pull/812"}},
			"expires_at": FormatTime(testEpoch.Add(time.Hour)),
		}
	case 1, 2:
		r.Type = TypeVoteApprove
		r.Actor = approver
		r.Source = fmt.Sprintf("slack:block_actions:%d.%06d", 1710000000+i, i)
		r.Data = map[string]any{"approvals": i%2 + 1, "required": 2, "groups": []any{"sre", "payments-oncall"}}
	case 3:
		r.Type = TypeRequestApproved
		r.Data = map[string]any{"approvers": []any{"zoe.muller@example.com", "li.wei@example.com"}, "quorum": 2}
	case 4:
		r.Type = TypeExecutionSucceeded
		r.Source = "webhook"
		r.Data = map[string]any{"attempt": 1, "status": 200, "url": "https://deploy.internal.example.com/hooks/payments-api", "duration_ms": 842}
	case 5:
		r.Type = TypeVoteRejected
		r.Actor = approver
		r.Actor.Platform, r.Actor.Workspace, r.Actor.PlatformUser = "teams", "72f988bf-86f1-41af-91ab-2d7cd011db47", "29:1Abc-xYz"
		r.Source = "teams:invoke:f:3c6d2b0e"
		r.Data = map[string]any{"reason": "self_approval", "detail": "the requester cannot approve their own request"}
	}
	return r
}

// buildChain seals n sample records; with priv, a checkpoint follows every
// record whose seq is a multiple of every (as approvals.Service does).
func buildChain(tb testing.TB, n int, priv ed25519.PrivateKey, every uint64) [][]byte {
	tb.Helper()
	var lines [][]byte
	var end chainEnd
	for i := 0; len(lines) < n; i++ {
		_, line := end.seal(tb, sampleRecord(i))
		lines = append(lines, line)
		if priv != nil && end.seq%every == 0 && len(lines) < n {
			cp := NewCheckpoint(priv, end.seq, end.hash)
			cp.Time = FormatTime(testEpoch)
			_, line := end.seal(tb, cp)
			lines = append(lines, line)
		}
	}
	return lines
}

// chainEnd is the seq and hash of the last record of a chain a test
// builds; the zero value is an empty chain.
type chainEnd struct {
	seq  uint64
	hash string
}

// seal seals r as the next record after c and makes it c's last; it
// returns the sealed record and its line.
func (c *chainEnd) seal(tb testing.TB, r Record) (Record, []byte) {
	tb.Helper()
	sealed, line, err := Seal(r, c.seq, c.hash)
	if err != nil {
		tb.Fatal(err)
	}
	c.seq, c.hash = sealed.Seq, sealed.Hash
	return sealed, line
}

// jsonl joins lines into an export.
func jsonl(lines [][]byte) []byte {
	var b bytes.Buffer
	for _, l := range lines {
		b.Write(l)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// mustParse decodes a line into a generic map (numbers as json.Number).
func mustParse(tb testing.TB, line []byte) map[string]any {
	tb.Helper()
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		tb.Fatal(err)
	}
	return m
}

// copyLines deep-copies lines so a test can modify them.
func copyLines(lines [][]byte) [][]byte {
	out := make([][]byte, len(lines))
	for i, l := range lines {
		out[i] = bytes.Clone(l)
	}
	return out
}
