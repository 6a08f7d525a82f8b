package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/signoff-dev/signoff/approvals/audit"
)

// jsonDoc decodes a command's standard output as one JSON object and
// checks that it holds exactly the members want names.
func jsonDoc(t *testing.T, what, out string, want ...string) map[string]any {
	t.Helper()
	var doc map[string]any
	dec := json.NewDecoder(strings.NewReader(out))
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("%s: standard output is not one JSON object: %v\n%s", what, err, out)
	}
	if dec.More() {
		t.Fatalf("%s: more than one JSON document on standard output:\n%s", what, out)
	}
	var got []string
	for k := range doc {
		got = append(got, k)
	}
	slices.Sort(got)
	want = slices.Clone(want)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("%s: members %v, want %v\n%s", what, got, want, out)
	}
	return doc
}

// keysOf returns the sorted member names of a JSON object.
func keysOf(t *testing.T, v any) []string {
	t.Helper()
	m, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("%v is not a JSON object", v)
	}
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

var configReportMembers = []string{"valid", "config", "checked_for", "problems", "warnings", "env_overrides", "requesters", "actions"}

// TestConfigCheckJSON: --output json gives the documented document for a
// valid and an invalid file, with the exit codes of the text form, and
// prints no secret; the text form is unchanged.
func TestConfigCheckJSON(t *testing.T) {
	code, out, stderr := runCmd(t, "config", "check", "--dev", "--config", exampleConfig, "--output", "json")
	if code != 0 || stderr != "" {
		t.Fatalf("config check --output json of the example: exit %d\n%s", code, stderr)
	}
	doc := jsonDoc(t, "valid config", out, configReportMembers...)
	if doc["valid"] != true || doc["config"] != exampleConfig || doc["checked_for"] != "dev" {
		t.Errorf("valid, config, checked_for = %v, %v, %v", doc["valid"], doc["config"], doc["checked_for"])
	}
	for _, k := range []string{"problems", "warnings"} {
		if l, ok := doc[k].([]any); !ok || len(l) != 0 {
			t.Errorf("%s = %#v, want []", k, doc[k])
		}
	}
	if m, ok := doc["env_overrides"].(map[string]any); !ok || len(m) != 0 {
		t.Errorf("env_overrides = %#v, want {}", doc["env_overrides"])
	}
	reqs := doc["requesters"].([]any)
	if len(reqs) != 1 || !reflect.DeepEqual(keysOf(t, reqs[0]), []string{"audience", "issuer", "name", "person_claim"}) {
		t.Errorf("requesters = %#v", reqs)
	}
	actions := doc["actions"].([]any)
	if len(actions) != 2 {
		t.Fatalf("actions = %#v", actions)
	}
	wantAction := []string{"approvers", "attestation", "break_glass", "description", "escalate", "freeze", "name", "notify", "params", "remind", "requesters", "require_approve_reason", "require_deny_reason", "step_up", "ttl_seconds", "webhook", "windows"}
	for _, a := range actions {
		if got := keysOf(t, a); !slices.Equal(got, wantAction) {
			t.Errorf("action members %v, want %v", got, wantAction)
		}
	}
	migrate, deploy := actions[0].(map[string]any), actions[1].(map[string]any)
	if migrate["name"] != "db-migrate" || deploy["name"] != "deploy-prod" {
		t.Errorf("actions are not sorted by name: %v, %v", migrate["name"], deploy["name"])
	}
	if migrate["webhook"] != nil || migrate["step_up"] != nil || migrate["ttl_seconds"] != float64(1800) {
		t.Errorf("db-migrate: webhook %v, step_up %v, ttl_seconds %v", migrate["webhook"], migrate["step_up"], migrate["ttl_seconds"])
	}
	ap := migrate["approvers"].(map[string]any)
	if !reflect.DeepEqual(ap["groups"], []any{"sre", "dba"}) || !reflect.DeepEqual(ap["users"], []any{}) || ap["min_approvals"] != float64(2) || ap["allow_self_approval"] != false {
		t.Errorf("db-migrate approvers = %#v", ap)
	}
	if p := migrate["params"].(map[string]any)["target"].(map[string]any); p["required"] != false || p["max_length"] != float64(64) || p["pattern"] != "" {
		t.Errorf("db-migrate params.target = %#v", p)
	}
	wh := deploy["webhook"].(map[string]any)
	if wh["url"] != "http://127.0.0.1:8080/…" || wh["signed"] != true || wh["timeout_seconds"] != float64(10) {
		t.Errorf("deploy-prod webhook = %#v", wh)
	}
	rule := deploy["requesters"].([]any)[0].(map[string]any)
	if rule["issuer"] != "dev" || !reflect.DeepEqual(rule["claims"], map[string]any{"sub": "*"}) {
		t.Errorf("deploy-prod requesters[0] = %#v", rule)
	}
	if strings.Contains(out, "dev-mode-only-not-a-secret") || strings.Contains(out, "/dev/webhook") {
		t.Errorf("the report shows the webhook secret or path:\n%s", out)
	}

	// An environment override is named by key.
	t.Setenv("SIGNOFF_LOG_LEVEL", "debug")
	_, out, _ = runCmd(t, "config", "check", "--dev", "--config", exampleConfig, "--output", "json")
	doc = jsonDoc(t, "valid config with an override", out, configReportMembers...)
	if !reflect.DeepEqual(doc["env_overrides"], map[string]any{"log.level": "SIGNOFF_LOG_LEVEL"}) {
		t.Errorf("env_overrides = %#v", doc["env_overrides"])
	}
	os.Unsetenv("SIGNOFF_LOG_LEVEL")

	// Invalid: exit 2 as in text, every problem by key, the message on
	// standard error too.
	bad := writeConfig(t, "listen: 127.0.0.1:8080\nactions:\n  deploy:\n    approvers: {min_approvals: 0}\n    ttl: -1h\n    bogus: 1\n")
	code, out, stderr = runCmd(t, "config", "check", "--config", bad, "--output", "json")
	if code != exitUsage || !strings.Contains(stderr, "actions.deploy.bogus") {
		t.Fatalf("invalid config: exit %d, stderr %q", code, stderr)
	}
	doc = jsonDoc(t, "invalid config", out, configReportMembers...)
	if doc["valid"] != false || doc["checked_for"] != "production" || len(doc["actions"].([]any)) != 0 || len(doc["warnings"].([]any)) != 0 {
		t.Errorf("invalid config report: %s", out)
	}
	var keys []string
	for _, p := range doc["problems"].([]any) {
		if got := keysOf(t, p); !slices.Equal(got, []string{"key", "message"}) {
			t.Errorf("problem members %v", got)
		}
		keys = append(keys, p.(map[string]any)["key"].(string))
	}
	for _, want := range []string{"actions.deploy.bogus", "actions.deploy.ttl", "actions.deploy.approvers"} {
		if !slices.Contains(keys, want) {
			t.Errorf("problems name %v, not %s", keys, want)
		}
	}

	// The example checked for a production start: its dev requester.
	code, out, _ = runCmd(t, "config", "check", "--config", exampleConfig, "--output", "json")
	doc = jsonDoc(t, "example for production", out, configReportMembers...)
	if p := doc["problems"].([]any); code != exitUsage || len(p) != 1 || p[0].(map[string]any)["key"] != "requesters[0].issuer" {
		t.Errorf("example for production: exit %d, problems %#v", code, doc["problems"])
	}
	// --dev on a non-loopback address names the listen key.
	t.Setenv("SIGNOFF_LISTEN", "0.0.0.0:8080")
	code, out, _ = runCmd(t, "config", "check", "--dev", "--config", exampleConfig, "--output", "json")
	doc = jsonDoc(t, "dev on 0.0.0.0", out, configReportMembers...)
	if p := doc["problems"].([]any); code != exitUsage || len(p) != 1 || p[0].(map[string]any)["key"] != "listen" || !strings.HasPrefix(p[0].(map[string]any)["message"].(string), "dev mode only listens on loopback") {
		t.Errorf("dev on 0.0.0.0: exit %d, problems %#v", code, doc["problems"])
	}
	os.Unsetenv("SIGNOFF_LISTEN")
	// A file that does not exist is a problem of the whole file.
	code, out, _ = runCmd(t, "config", "check", "--config", filepath.Join(t.TempDir(), "missing.yaml"), "--output", "json")
	doc = jsonDoc(t, "missing file", out, configReportMembers...)
	if p := doc["problems"].([]any); code != exitUsage || len(p) != 1 || p[0].(map[string]any)["key"] != "" {
		t.Errorf("missing file: exit %d, problems %#v", code, doc["problems"])
	}
	// A usage error prints no document.
	if code, out, stderr := runCmd(t, "config", "check", "--config", exampleConfig, "--output", "yaml"); code != exitUsage || out != "" || !strings.Contains(stderr, "--output") {
		t.Errorf("--output yaml: exit %d, %q, %q", code, out, stderr)
	}

	// The text form is what it was: the file's name and its summary.
	cfg, err := loadConfig(exampleConfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{}, {"--output", "text"}} {
		code, out, stderr = runCmd(t, append([]string{"config", "check", "--dev", "--config", exampleConfig}, args...)...)
		if want := exampleConfig + " is valid.\n\n" + cfg.Summary(); code != 0 || out != want {
			t.Errorf("text output (%v): exit %d\n%s\nwant\n%s%s", args, code, out, want, stderr)
		}
	}
}

var verifyReportMembers = []string{"intact", "records", "last_seq", "last_hash", "signatures_checked", "checkpoints_verified", "checkpoints_unchecked",
	"signed_through", "last_checkpoint", "unsigned_tail", "strict", "anchors_checked", "recanonicalized", "problem"}

// TestAuditVerifyJSON: the report of an intact log, of an unsigned tail
// under --strict and of a changed record, with the exit codes of the text
// form; the text form says the same numbers.
func TestAuditVerifyJSON(t *testing.T) {
	l := newAuditLog(t)
	l.write(6, false) // checkpoints every 4 records, an unsigned tail
	pub := l.key + ".pub"
	running, lines := l.export("running.jsonl")
	anchors := writeLines(t, l.dir, "anchors.jsonl", checkpoints(lines))

	code, out, stderr := runCmd(t, "audit", "verify", "--db", l.db, "--pubkey", pub, "--anchor", anchors, "--output", "json")
	if code != 0 || stderr != "" {
		t.Fatalf("verify --output json: exit %d: %s", code, stderr)
	}
	doc := jsonDoc(t, "intact log", out, verifyReportMembers...)
	n := float64(len(lines))
	lastCP := float64(seqOf(t, checkpoints(lines)[len(checkpoints(lines))-1]))
	last, err := audit.ParseRecord([]byte(lines[len(lines)-1]))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"intact": true, "records": n, "last_seq": n, "last_hash": last.Hash, "signatures_checked": true,
		"checkpoints_verified": float64(len(checkpoints(lines))), "checkpoints_unchecked": float64(0),
		"signed_through": lastCP - 1, "last_checkpoint": lastCP, "unsigned_tail": n - lastCP,
		"strict": false, "anchors_checked": float64(len(checkpoints(lines))), "recanonicalized": float64(0), "problem": nil,
	}
	if !reflect.DeepEqual(doc, want) {
		t.Errorf("report\n%#v\nwant\n%#v", doc, want)
	}

	// The text form says the same.
	code, text, _ := runCmd(t, "audit", "verify", "--db", l.db, "--pubkey", pub, "--anchor", anchors)
	wantText := fmt.Sprintf("audit log intact: %d records, last seq %d, last hash %s, %d signed checkpoints verified, signed through seq %d (the %d records after the last checkpoint, seq %d, are chained but not yet covered by a signature), %d anchors found unchanged\n",
		len(lines), len(lines), last.Hash, len(checkpoints(lines)), int(lastCP)-1, len(lines)-int(lastCP), int(lastCP), len(checkpoints(lines)))
	if code != 0 || text != wantText {
		t.Errorf("text output:\n%q\nwant\n%q", text, wantText)
	}

	// Without --pubkey, checkpoints are seen but not checked.
	_, out, _ = runCmd(t, "audit", "verify", running, "--output", "json")
	doc = jsonDoc(t, "without --pubkey", out, verifyReportMembers...)
	if doc["signatures_checked"] != false || doc["checkpoints_unchecked"] != float64(len(checkpoints(lines))) || doc["unsigned_tail"] != n || doc["last_checkpoint"] != float64(0) {
		t.Errorf("without --pubkey: %s", out)
	}

	// --strict refuses the unsigned tail: exit 1, the reason in problem.
	code, out, stderr = runCmd(t, "audit", "verify", "--db", l.db, "--pubkey", pub, "--strict", "--output", "json")
	if code != exitBadChain || !strings.Contains(stderr, "NOT intact") {
		t.Fatalf("--strict: exit %d, %s", code, stderr)
	}
	doc = jsonDoc(t, "--strict", out, verifyReportMembers...)
	p, _ := doc["problem"].(map[string]any)
	if doc["intact"] != false || doc["strict"] != true || p == nil || p["kind"] != "unsigned_tail" || p["seq"] != lastCP+1 ||
		!reflect.DeepEqual(keysOf(t, p), []string{"kind", "line", "message", "seq"}) {
		t.Errorf("--strict report: %s", out)
	}

	// A changed record: kind record, its seq and line, and how far the
	// chain verified.
	changed := slices.Clone(lines)
	changed[2] = strings.Replace(changed[2], "release", "relaese", 1)
	tampered := writeLines(t, l.dir, "changed.jsonl", changed)
	code, out, stderr = runCmd(t, "audit", "verify", tampered, "--output", "json")
	if code != exitBadChain || !strings.Contains(stderr, "seq 3") {
		t.Fatalf("changed record: exit %d, %s", code, stderr)
	}
	doc = jsonDoc(t, "changed record", out, verifyReportMembers...)
	p, _ = doc["problem"].(map[string]any)
	if doc["intact"] != false || doc["records"] != float64(2) || doc["last_seq"] != float64(2) || p == nil || p["kind"] != "record" || p["seq"] != float64(3) || p["line"] != float64(3) {
		t.Errorf("changed record report: %s", out)
	}

	// Usage errors print no document.
	for _, args := range [][]string{
		{"audit", "verify", running, "--output", "yaml"},
		{"audit", "verify", running, "--strict", "--output", "json"},
	} {
		if code, out, _ := runCmd(t, args...); code != exitUsage || out != "" {
			t.Errorf("%v: exit %d, stdout %q", args, code, out)
		}
	}
}

// TestLinksListJSON: the links as GET /v1/links shows them, from a
// database file; [] when none match.
func TestLinksListJSON(t *testing.T) {
	db := linksDB(t)
	code, out, stderr := linksCmd(t, "list", "--db", db, "--output", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	doc := jsonDoc(t, "links list", out, "links")
	links := doc["links"].([]any)
	if len(links) != 3 {
		t.Fatalf("%d links, want 3:\n%s", len(links), out)
	}
	byUser := map[string]map[string]any{}
	for _, l := range links {
		m := l.(map[string]any)
		byUser[m["user"].(string)] = m
	}
	always := []string{"groups", "issuer", "linked_at", "platform", "stale", "subject", "user", "verified_at", "workspace"}
	if got := keysOf(t, byUser["U1"]); !slices.Equal(got, []string{"email", "groups", "issuer", "linked_at", "platform", "stale", "subject", "user", "verified_at", "workspace"}) {
		t.Errorf("alice's members: %v", got)
	}
	if got := byUser["U2"]; got["stale"] != true || got["stale_reason"] != "the identity provider refused the refresh: invalid_grant" {
		t.Errorf("bob: %#v", got)
	}
	if got := keysOf(t, byUser["aad-carol"]); !slices.Equal(got, always) {
		t.Errorf("carol's members: %v, want %v", got, always)
	}
	if !reflect.DeepEqual(byUser["U1"]["groups"], []any{"sre", "deploy"}) || byUser["aad-carol"]["subject"] != "sub-carol\x1b[31m" {
		t.Errorf("values: %#v %#v", byUser["U1"]["groups"], byUser["aad-carol"]["subject"])
	}
	if strings.Contains(out, "refresh_token") || strings.Contains(out, "AQID") {
		t.Error("the listing shows the sealed refresh token")
	}
	code, out, _ = linksCmd(t, "list", "--db", db, "--platform", "dev", "--output", "json")
	if code != 0 || out != "{\n  \"links\": []\n}\n" {
		t.Errorf("empty listing: exit %d %q", code, out)
	}
	if code, out, _ := linksCmd(t, "list", "--db", db, "--output", "yaml"); code != exitUsage || out != "" {
		t.Errorf("--output yaml: exit %d %q", code, out)
	}
}

// TestRequestsListJSON: the server's listing, [] when nothing matches,
// truncated when --limit cuts it; the text form stays a table.
func TestRequestsListJSON(t *testing.T) {
	isolateLogin(t)
	ts := startAdminServer(t, filepath.Join(t.TempDir(), "signoff.db"))
	admin := adminDevToken(t, ts)
	creator := devToken(t, ts)
	var ids []string
	for _, reason := range []string{"first", "second"} {
		id := apiCreate(http.DefaultClient, ts.base, creator, reason)
		if id == "" {
			t.Fatal("create refused")
		}
		ids = append(ids, id)
	}

	code, out, stderr := runCmd(t, "requests", "list", "--server", ts.base, "--token", admin, "--output", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	doc := jsonDoc(t, "requests list", out, "requests")
	reqs := doc["requests"].([]any)
	if len(reqs) != 2 || reqs[0].(map[string]any)["id"] != ids[1] || reqs[1].(map[string]any)["id"] != ids[0] {
		t.Fatalf("want both requests, newest first:\n%s", out)
	}
	first := reqs[1].(map[string]any)
	for _, k := range []string{"id", "action", "state", "requester", "min_approvals", "approvals", "remaining", "created_at", "expires_at", "params", "reason"} {
		if _, ok := first[k]; !ok {
			t.Errorf("an entry lacks %s: %v", k, keysOf(t, first))
		}
	}
	if first["state"] != "pending" || first["reason"] != "first" || !reflect.DeepEqual(first["params"], map[string]any{"service": "api"}) {
		t.Errorf("entry: %#v", first)
	}

	_, out, stderr = runCmd(t, "requests", "list", "--server", ts.base, "--token", admin, "--limit", "1", "--output", "json")
	doc = jsonDoc(t, "truncated listing", out, "requests", "truncated")
	if doc["truncated"] != true || len(doc["requests"].([]any)) != 1 || stderr != "" {
		t.Errorf("--limit 1: %s\nstderr %q", out, stderr)
	}
	code, out, _ = runCmd(t, "requests", "list", "--server", ts.base, "--token", admin, "--state", "approved", "--output", "json")
	if code != 0 || out != "{\n  \"requests\": []\n}\n" {
		t.Errorf("empty listing: exit %d %q", code, out)
	}

	// Text: the table, its header first, the truncation note on stderr.
	code, out, stderr = runCmd(t, "requests", "list", "--server", ts.base, "--token", admin, "--limit", "1")
	if code != 0 || !strings.HasPrefix(out, "ID ") || !strings.Contains(out, ids[1]) || strings.Contains(out, ids[0]) || !strings.Contains(stderr, "more requests match than --limit 1 shows") {
		t.Errorf("text listing: exit %d\n%s\n%s", code, out, stderr)
	}
}

// TestShellCompletion: cobra's completion command writes a script for
// each shell it supports, and --output completes to text and json.
func TestShellCompletion(t *testing.T) {
	for shell, marker := range map[string]string{
		"bash":       "__start_signoff",
		"zsh":        "#compdef signoff",
		"fish":       "complete -c signoff",
		"powershell": "Register-ArgumentCompleter",
	} {
		code, out, stderr := runCmd(t, "completion", shell)
		if code != 0 || stderr != "" || !strings.Contains(out, marker) {
			t.Errorf("completion %s: exit %d, %d bytes, stderr %q; want %q in the script", shell, code, len(out), stderr, marker)
		}
	}
	code, out, _ := runCmd(t, "__complete", "audit", "verify", "--output", "")
	if code != 0 || !strings.Contains(out, "text\n") || !strings.Contains(out, "json\n") {
		t.Errorf("completing --output: exit %d\n%s", code, out)
	}
	code, out, _ = runCmd(t, "__complete", "")
	for _, sub := range []string{"serve", "request", "audit", "config", "links", "requests", "completion"} {
		if code != 0 || !strings.Contains(out, sub+"\t") {
			t.Errorf("completing a command does not offer %s:\n%s", sub, out)
		}
	}
}
