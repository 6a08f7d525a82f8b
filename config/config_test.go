package config_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/config"
	"github.com/signoff-dev/signoff/policy"
	"go.yaml.in/yaml/v3"
)

const examplePath = "../config.example.yaml"

// load loads YAML text with the given environment (never the process's).
func load(t *testing.T, text string, env map[string]string) (*config.Config, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "signoff.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return config.Load(config.LoadOptions{Path: path, LookupEnv: config.EnvMap(env)})
}

// wantContains fails t for each of wants that got, the text named what,
// does not contain.
func wantContains(t *testing.T, what, got string, wants ...string) {
	t.Helper()
	for _, want := range wants {
		if !strings.Contains(got, want) {
			t.Errorf("%s lacks %q:\n%s", what, want, got)
		}
	}
}

func mustLoad(t *testing.T, text string, env map[string]string) *config.Config {
	t.Helper()
	c, err := load(t, text, env)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return c
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func problemsOf(t *testing.T, err error) []config.Problem {
	t.Helper()
	var ve *config.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("want *config.ValidationError, got %T: %v", err, err)
	}
	return ve.Problems
}

// wantProblem validates c: with key empty it must be valid; otherwise one
// of the problems must be at key and its message contain msg.
func wantProblem(t *testing.T, c *config.Config, key, msg string) {
	t.Helper()
	err := c.Validate()
	if key == "" {
		if err != nil {
			t.Fatalf("want valid, got:\n%v", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("valid; want %s: …%s…", key, msg)
	}
	for _, p := range problemsOf(t, err) {
		if p.Key == key && strings.Contains(p.Message, msg) {
			return
		}
	}
	t.Errorf("want %s: …%s…, got:\n%v", key, msg, err)
}

// wantProblemKeys checks that err is a validation error whose problems are
// at exactly the keys want, in order, and whose text contains every frag.
func wantProblemKeys(t *testing.T, err error, want []string, frags ...string) {
	t.Helper()
	if got := keysOf(problemsOf(t, err)); !slices.Equal(got, want) {
		t.Fatalf("keys = %q, want %q\n%v", got, want, err)
	}
	for _, frag := range frags {
		if !strings.Contains(err.Error(), frag) {
			t.Errorf("missing %q in:\n%v", frag, err)
		}
	}
}

// wantEnvKeys fails t for each key config.EnvKeys does not list.
func wantEnvKeys(t *testing.T, keys ...string) {
	t.Helper()
	for _, k := range keys {
		if !slices.Contains(config.EnvKeys(), k) {
			t.Errorf("%s has no environment override", k)
		}
	}
}

func keysOf(ps []config.Problem) []string {
	var keys []string
	for _, p := range ps {
		keys = append(keys, p.Key)
	}
	return keys
}

// rulesBase is base without its approvers: the tests of approvers rules
// and windows add their own.
const rulesBase = `
requesters:
  - {name: github, issuer: "https://token.actions.githubusercontent.com", audience: signoff, person_claim: actor}
actions:
  deploy-prod:
    requesters: [{issuer: github, claims: {repository: "acme/*"}}]
`

// a minimal valid config the tests below modify.
const base = rulesBase + `    approvers: {groups: [sre]}
`

func TestExampleLoadsAndValidatesClean(t *testing.T) {
	c, err := config.Load(config.LoadOptions{Path: examplePath, LookupEnv: config.EnvMap(nil)})
	if err != nil {
		t.Fatalf("Load(%s): %v", examplePath, err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate:\n%v", err)
	}
	if ws := c.Warnings(); len(ws) > 0 {
		t.Errorf("warnings: %v", ws)
	}
	if c.Listen != "127.0.0.1:8080" || c.Storage.Driver != "bolt" || c.Storage.Path != "./signoff-data/signoff.db" {
		t.Errorf("listen/storage = %q %+v", c.Listen, c.Storage)
	}
	if len(c.Requesters) != 1 || c.Requesters[0].Name != "dev" || c.Requesters[0].Issuer != "http://127.0.0.1:8080/dev/oidc" ||
		c.Requesters[0].Audience != "signoff" || c.Requesters[0].PersonClaim != "sub" {
		t.Errorf("requesters = %+v", c.Requesters)
	}
	if c.IdP.Configured() || c.Slack.Configured() || c.Teams.Configured() {
		t.Error("dev example must not configure idp, slack or teams")
	}
	if !slices.Equal(c.Auditors.Groups, []string{"audit"}) {
		t.Errorf("auditors = %v", c.Auditors.Groups)
	}
	var devs []string
	for _, d := range c.Dev.Approvers {
		devs = append(devs, fmt.Sprintf("%s%v", d.Name, d.Groups))
	}
	if want := []string{"alice[sre]", "bob[sre]", "carol[]"}; !slices.Equal(devs, want) {
		t.Errorf("dev approvers = %v, want %v", devs, want)
	}

	p, err := c.Policy()
	if err != nil {
		t.Fatalf("Policy: %v", err)
	}
	a, err := p.Action("deploy-prod")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.CheckRequester("dev", map[string]string{"sub": "dev-user"}); err != nil {
		t.Errorf("dev token refused: %v", err)
	}
	if err := a.CheckParams(map[string]string{"service": "api", "version": "1.4.2"}); err != nil {
		t.Errorf("good params refused: %v", err)
	}
	if err := a.CheckParams(map[string]string{"service": "api"}); err == nil {
		t.Error("missing version accepted")
	}
	if err := a.CheckParams(map[string]string{"service": "api", "version": strings.Repeat("1", 65)}); err == nil {
		t.Error("65-byte version accepted")
	}
	if a.Approvers.MinApprovals != 1 || !slices.Equal(a.Approvers.Groups, []string{"sre"}) || a.TTL != time.Hour {
		t.Errorf("deploy-prod approvers/ttl = %+v %v", a.Approvers, a.TTL)
	}
	if !a.MayApprove(policy.Person{Subject: "alice", Groups: []string{"sre"}}) || a.MayApprove(policy.Person{Subject: "carol"}) {
		t.Error("alice (sre) must be eligible and carol not")
	}
	if !p.IsAuditor([]string{"audit"}) {
		t.Error("audit group is not auditor")
	}
}

func TestExampleDocumentsEveryKey(t *testing.T) {
	// Every key of the schema appears in the example, set or in a comment.
	b, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	var walk func(reflect.Type, string)
	walk = func(tp reflect.Type, path string) {
		for tp.Kind() == reflect.Pointer || tp.Kind() == reflect.Slice || tp.Kind() == reflect.Map {
			tp = tp.Elem()
		}
		if tp.Kind() != reflect.Struct || tp == reflect.TypeFor[time.Duration]() {
			return
		}
		for i := range tp.NumField() {
			f := tp.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("mapstructure"), ",")
			if name == "" || name == "-" || !f.IsExported() {
				continue
			}
			if !strings.Contains(text, name+":") && !strings.Contains(text, name+",") && !strings.Contains(text, name+" ") {
				t.Errorf("config.example.yaml does not mention %s%s", path, name)
			}
			walk(f.Type, path+name+".")
		}
	}
	walk(reflect.TypeFor[config.Config](), "")
}

func TestEveryProblemReportedAtOnce(t *testing.T) {
	c := mustLoad(t, `
listen: localhost
public_url: /relative
storage: {driver: postgres}
requesters:
  - {name: github, issuer: "http://token.actions.githubusercontent.com", audience: signoff}
  - {name: github, issuer: "https://gitlab.com"}
idp: {issuer: "https://login.example.com"}
slack: {team_id: acme}
teams: {app_id: bot}
audit: {checkpoint_every: 0}
log: {level: verbose, format: xml}
actions:
  Deploy_Prod:
    requesters: [{issuer: gitlab, claims: {ref: main}}]
    approvers: {groups: [sre], min_approvals: 0}
  deploy-prod:
    requesters: []
    params:
      service: {pattern: "([a-z", max_length: -1}
    approvers: {users: [alice], min_approvals: 2}
    ttl: 0s
    on_approve: {webhook: {url: "ftp://deploy.example.com/hook", timeout: 0s}}
    step_up: {max_age: 0s}
  nobody:
    requesters: [{issuer: github}]
    ttl: 1000h
`, nil)
	err := c.Validate()
	ps := problemsOf(t, err)
	want := []string{
		"actions.Deploy_Prod",
		"actions.Deploy_Prod.approvers.min_approvals",
		"actions.Deploy_Prod.requesters[0].issuer",
		"actions.deploy-prod.approvers.min_approvals",
		"actions.deploy-prod.on_approve.webhook.timeout",
		"actions.deploy-prod.on_approve.webhook.url",
		"actions.deploy-prod.params.service.max_length",
		"actions.deploy-prod.params.service.pattern",
		"actions.deploy-prod.requesters",
		"actions.deploy-prod.step_up.max_age",
		"actions.deploy-prod.ttl",
		"actions.nobody.approvers",
		"actions.nobody.requesters[0].claims",
		"actions.nobody.ttl",
		"audit.checkpoint_every",
		"idp.client_id",
		"idp.token_encryption_key",
		"listen",
		"log.format",
		"log.level",
		"public_url",
		"requesters[0].issuer",
		"requesters[1].audience",
		"requesters[1].name",
		"slack.bot_token",
		"slack.signing_secret",
		"slack.team_id",
		"storage.dsn",
		"teams.app_password",
		"teams.tenant_ids",
	}
	got := keysOf(ps)
	if !slices.Equal(got, want) {
		t.Errorf("problem keys:\n got %q\nwant %q\nerror:\n%v", got, want, err)
	}
	if !slices.IsSorted(got) {
		t.Errorf("problems not sorted by key: %q", got)
	}
	if lines := strings.Split(err.Error(), "\n"); len(lines) != len(ps) {
		t.Errorf("Error() has %d lines for %d problems", len(lines), len(ps))
	}
	for _, line := range []string{
		`actions.Deploy_Prod.requesters[0].issuer: "gitlab" is not a configured requester; configured: github`,
		"actions.Deploy_Prod.approvers.min_approvals: must be >= 1, got 0",
		"actions.deploy-prod.approvers.min_approvals: is 2 but only 1 user(s) are named and no groups: requests could never be approved",
		"actions.deploy-prod.ttl: must be > 0, got 0s",
		"actions.nobody.ttl: 1000h is more than the maximum, 720h (30 days)",
		"audit.checkpoint_every: must be >= 1, got 0",
		`log.level: "verbose" is not a log level; use debug, info, warn or error`,
	} {
		if !strings.Contains(err.Error(), line+"\n") && !strings.HasSuffix(err.Error(), line) {
			t.Errorf("missing line %q in:\n%v", line, err)
		}
	}
	for _, frag := range []string{
		"actions.deploy-prod.params.service.pattern: does not compile: error parsing regexp: missing closing ]",
		"requesters[0].issuer: \"http://token.actions.githubusercontent.com\" must use https",
		`listen: "localhost" is not host:port`,
	} {
		if !strings.Contains(err.Error(), frag) {
			t.Errorf("missing %q in:\n%v", frag, err)
		}
	}
	// The webhook URL may carry a token: not echoed.
	if strings.Contains(err.Error(), "deploy.example.com/hook") {
		t.Errorf("webhook URL echoed:\n%v", err)
	}
	if _, err := c.Policy(); err == nil {
		t.Error("Policy built from an invalid config")
	}
}

func TestValidateDetails(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		key, msg   string // msg: substring; empty key = must be valid
	}{
		{"loopback http issuer ok", `
requesters: [{name: local, issuer: "http://localhost:9000/oidc", audience: signoff}]`, "", ""},
		{"ipv6 loopback ok", `
requesters: [{name: local, issuer: "http://[::1]:9000", audience: signoff}]`, "", ""},
		{"duplicate issuer+audience", `
requesters:
  - {name: a, issuer: "https://issuer.example.com", audience: signoff}
  - {name: b, issuer: "https://issuer.example.com", audience: signoff}`, "requesters[1].issuer", "same issuer and audience"},
		{"requester name format", `
requesters: [{name: GitHub, issuer: "https://x.example.com", audience: s}]`, "requesters[0].name", "must match"},
		{"issuer with query", `
requesters: [{name: a, issuer: "https://x.example.com/?a=b", audience: s}]`, "requesters[0].issuer", "query"},
		{"bolt with dsn", `
storage: {dsn: "postgres://u:pw@db/signoff"}`, "storage.driver", "set storage.driver: postgres"},
		{"unknown driver", `
storage: {driver: sqlite}`, "storage.driver", `"sqlite" is not a storage driver`},
		{"postgres ok", `
storage: {driver: postgres, dsn: "postgres://db/signoff"}`, "", ""},
		{"listen port", `
listen: "127.0.0.1:http8080"`, "listen", "port"},
		{"listen any interface ok", `
listen: ":8080"`, "", ""},
		{"public_url http non-loopback", `
public_url: "http://signoff.example.com"`, "public_url", "must use https"},
		{"idp without public_url", `
public_url: ""
idp: {issuer: "https://login.example.com", client_id: signoff, scopes: [openid], client_secret: s}`, "public_url", "required when idp is configured"},
		{"idp without openid scope", `
public_url: "https://signoff.example.com"
idp: {issuer: "https://login.example.com", client_id: signoff, scopes: [email]}`, "idp.scopes", `must include "openid"`},
		{"idp complete", `
public_url: "https://signoff.example.com"
idp: {issuer: "https://login.example.com", client_id: signoff, token_encryption_key: "0123456789abcdef0123456789abcdef"}`, "", ""},
		{"idp short key", `
public_url: "https://signoff.example.com"
idp: {issuer: "https://login.example.com", client_id: signoff, token_encryption_key: "short"}`, "idp.token_encryption_key", "too short"},
		{"slack tokens swapped", `
slack: {bot_token: xapp-1-abc, signing_secret: s, team_id: T01}`, "slack.bot_token", "app-level token"},
		{"slack api_url slash", `
slack: {bot_token: xoxb-1, signing_secret: s, team_id: T01, api_url: "http://127.0.0.1:9999/api"}`, "slack.api_url", `must end with "/"`},
		{"slack socket mode ok", `
slack: {bot_token: xoxb-1, app_token: xapp-1, team_id: T01}`, "", ""},
		{"teams complete", `
teams: {app_id: bot, app_password: pw, tenant_ids: [t1], service_url: "http://127.0.0.1:3978/", service_url_hosts: [127.0.0.1]}`, "", ""},
		{"teams http url", `
teams: {app_id: bot, app_password: pw, tenant_ids: [t1], token_url: "http://login.example.com/token"}`, "teams.token_url", "https"},
		{"dev approver duplicate", `
dev: {approvers: [{name: alice}, {name: alice}]}`, "dev.approvers[1].name", "unique"},
		{"empty group entry", `
auditors: {groups: [""]}`, "auditors.groups[0]", "is empty"},
		{"no approvers", base + `
  other:
    requesters: [{issuer: github, claims: {repository: "*"}}]`, "actions.other.approvers", "nobody could approve"},
		{"empty claim pattern", base + `
  other:
    requesters: [{issuer: github, claims: {ref: ""}}]
    approvers: {groups: [sre]}`, "actions.other.requesters[0].claims.ref", `use "*"`},
		{"bad param name", base + `
    params: {"my param": {}}`, "actions.deploy-prod.params.my param", "must match"},
		{"users with groups may exceed", base + `
  two:
    requesters: [{issuer: github, claims: {repository: "*"}}]
    approvers: {groups: [sre], users: [alice], min_approvals: 3}`, "", ""},
		{"webhook http ok", base + `
    on_approve: {webhook: {url: "http://deployer.internal/hook", secret: s}}`, "", ""},
		{"webhook not absolute", base + `
    on_approve: {webhook: {url: "deployer/hook"}}`, "actions.deploy-prod.on_approve.webhook.url", "absolute"},
		{"step_up ok", base + `
    step_up: {max_age: 5m, require_mfa: true}`, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantProblem(t, mustLoad(t, tc.yaml, nil), tc.key, tc.msg)
		})
	}
}

func TestUnknownKeysRefused(t *testing.T) {
	_, err := load(t, `
listn: 127.0.0.1:8080
slack:
  signing_secrett: x
requesters:
  - {name: github, issuer: "https://token.actions.githubusercontent.com", audience: signoff, persn_claim: actor}
actions:
  deploy-prod:
    requesters: [{issuer: github, claims: {repository: "acme/*"}}]
    approvers: {groups: [sre], min_aprovals: 2}
    params:
      service: {requird: true}
    totally_new: 1
`, nil)
	wantProblemKeys(t, err, []string{
		"actions.deploy-prod.approvers.min_aprovals",
		"actions.deploy-prod.params.service.requird",
		"actions.deploy-prod.totally_new",
		"listn",
		"requesters[0].persn_claim",
		"slack.signing_secrett",
	},
		`actions.deploy-prod.approvers.min_aprovals: unknown key; did you mean "min_approvals"?`,
		`listn: unknown key; did you mean "listen"?`,
		`slack.signing_secrett: unknown key; did you mean "signing_secret"?`,
	)
	if !strings.Contains(err.Error(), "actions.deploy-prod.totally_new: unknown key; known keys here: approvers, attestation, break_glass, description") {
		t.Errorf("far-off key should list the known keys:\n%v", err)
	}
}

func TestLoadReportsAllKindsTogether(t *testing.T) {
	_, err := load(t, `
requesters: [{name: github, issuer: "https://token.actions.githubusercontent.com", audience: signoff}]
actions:
  deploy-prod:
    requesters: [{issuer: github, claims: {repository: "*"}}]
    ttl: soon
    on_approve: {webhook: {url: "https://x.example.com", secret_file: /nonexistent/hook}}
    approvers: {groups: [sre], min_aprovals: 2}
lisen: 1
audit: {checkpoint_every: x}
`, nil)
	wantProblemKeys(t, err, []string{
		"actions.deploy-prod.approvers.min_aprovals",
		"actions.deploy-prod.on_approve.webhook.secret_file",
		"actions.deploy-prod.ttl",
		"audit.checkpoint_every",
		"lisen",
	})
}

func TestLoadErrors(t *testing.T) {
	t.Run("missing file", func(t *testing.T) {
		_, err := config.Load(config.LoadOptions{Path: filepath.Join(t.TempDir(), "nope.yaml"), LookupEnv: config.EnvMap(nil)})
		if !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("want fs.ErrNotExist, got %v", err)
		}
	})
	for _, tc := range []struct{ name, yaml, want string }{
		{"yaml syntax", "listen: [\n", "parsing"},
		{"duplicate yaml key", "listen: a\nlisten: b\n", "already defined"},
		{"not a mapping", "- a\n- b\n", "not a mapping"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := load(t, tc.yaml, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v", err)
			}
		})
	}
	t.Run("empty file gives defaults", func(t *testing.T) {
		c := mustLoad(t, "", nil)
		if c.Listen != config.DefaultListen || c.Audit.CheckpointEvery != 1000 || c.IdP.LinkMaxAge != 720*time.Hour ||
			c.IdP.GroupsMaxAge != 24*time.Hour || c.Log.Level != "info" || c.Log.Format != "text" {
			t.Errorf("defaults not applied: %+v", c)
		}
		if err := c.Validate(); err != nil {
			t.Errorf("defaults do not validate: %v", err)
		}
	})
	t.Run("no path", func(t *testing.T) {
		c, err := config.Load(config.LoadOptions{LookupEnv: config.EnvMap(map[string]string{"SIGNOFF_LISTEN": "127.0.0.1:1"})})
		if err != nil || c.Listen != "127.0.0.1:1" {
			t.Fatalf("got %v, %v", c, err)
		}
	})
	t.Run("data", func(t *testing.T) {
		c, err := config.Load(config.LoadOptions{Path: "embedded.yaml", Data: []byte("listen: 127.0.0.1:2\n"), LookupEnv: config.EnvMap(nil)})
		if err != nil || c.Listen != "127.0.0.1:2" || c.Source() != "embedded.yaml" {
			t.Fatalf("got %v, %v", c, err)
		}
	})
	t.Run("types", func(t *testing.T) {
		_, err := load(t, `
requesters: [{name: github, issuer: "https://token.actions.githubusercontent.com", audience: signoff}]
actions:
  deploy-prod:
    requesters: [{issuer: github, claims: {repository: "*"}}]
    ttl: 3600
    approvers: {groups: [sre], min_approvals: two}
  other:
    requesters: [{issuer: github, claims: {repository: "*"}}]
    approvers: {groups: [sre]}
    ttl: 1 hour
    params: {p: {required: maybe}}
audit: {checkpoint_every: many}
`, nil)
		wantProblemKeys(t, err, []string{
			"actions.deploy-prod.approvers.min_approvals",
			"actions.deploy-prod.ttl",
			"actions.other.params.p.required",
			"actions.other.ttl",
			"audit.checkpoint_every",
		},
			`actions.deploy-prod.ttl: 3600 has no unit; write a Go duration such as "90s", "10m" or "1h"`,
			`actions.other.ttl: "1 hour" is not a duration`,
			`actions.deploy-prod.approvers.min_approvals: "two" is not a whole number`,
			`audit.checkpoint_every: "many" is not a whole number`,
		)
	})
}

func TestCaseOfNamesPreserved(t *testing.T) {
	c := mustLoad(t, base+`
    params: {Version: {required: true}}
  other:
    requesters: [{issuer: github, claims: {Job_Workflow_Ref: "acme/*"}}]
    approvers: {groups: [sre]}
`, nil)
	if _, ok := c.Actions["deploy-prod"].Params["Version"]; !ok {
		t.Errorf("param name case lost: %v", c.Actions["deploy-prod"].Params)
	}
	if _, ok := c.Actions["other"].Requesters[0].Claims["Job_Workflow_Ref"]; !ok {
		t.Errorf("claim name case lost: %v", c.Actions["other"].Requesters[0].Claims)
	}
}

func TestSecretFiles(t *testing.T) {
	dir := t.TempDir()
	signing := filepath.Join(dir, "signing")
	hook := filepath.Join(dir, "hook")
	dsn := filepath.Join(dir, "dsn")
	for path, content := range map[string]string{
		signing: "sl4ck-s1gning\n",
		hook:    "h00k-secret \t\r\n\n",
		dsn:     "postgres://u:pw@db/signoff\n",
	} {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	c := mustLoad(t, base+`
    on_approve: {webhook: {url: "https://deploy.example.com/hook", secret_file: "`+hook+`"}}
slack: {bot_token: xoxb-1, signing_secret_file: "`+signing+`", team_id: T01}
storage: {driver: postgres, dsn_file: "`+dsn+`"}
`, nil)
	if got := c.Slack.SigningSecret.Reveal(); got != "sl4ck-s1gning" {
		t.Errorf("signing secret = %q", got)
	}
	if got := c.Actions["deploy-prod"].OnApprove.Webhook.Secret.Reveal(); got != "h00k-secret" {
		t.Errorf("webhook secret = %q", got)
	}
	if got := c.Storage.DSN.Reveal(); got != "postgres://u:pw@db/signoff" {
		t.Errorf("dsn = %q", got)
	}
	if c.Slack.SigningSecretFile != signing {
		t.Errorf("file path not kept: %q", c.Slack.SigningSecretFile)
	}
	if got := c.Actions["deploy-prod"].OnApprove.Webhook.Timeout; got != 10*time.Second {
		t.Errorf("webhook timeout default = %v", got)
	}

	t.Run("both set", func(t *testing.T) {
		_, err := load(t, `slack: {signing_secret: inline-v4lue, signing_secret_file: "`+signing+`"}`, nil)
		ps := problemsOf(t, err)
		if len(ps) != 1 || ps[0].Key != "slack.signing_secret" ||
			!strings.Contains(ps[0].Message, "slack.signing_secret and slack.signing_secret_file") {
			t.Fatalf("got %v", err)
		}
		if strings.Contains(err.Error(), "inline-v4lue") || strings.Contains(err.Error(), "sl4ck-s1gning") {
			t.Errorf("error leaks a secret: %v", err)
		}
	})
	t.Run("both set in an action", func(t *testing.T) {
		_, err := load(t, base+`
    on_approve: {webhook: {url: "https://x.example.com", secret: abc, secret_file: "`+hook+`"}}`, nil)
		if ps := problemsOf(t, err); len(ps) != 1 || ps[0].Key != "actions.deploy-prod.on_approve.webhook.secret" {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("missing file", func(t *testing.T) {
		missing := filepath.Join(dir, "no-such-file")
		_, err := load(t, `idp: {client_secret_file: "`+missing+`"}`, nil)
		ps := problemsOf(t, err)
		if len(ps) != 1 || ps[0].Key != "idp.client_secret_file" || !strings.Contains(ps[0].Message, missing) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("unreadable is a directory", func(t *testing.T) {
		_, err := load(t, `teams: {app_password_file: "`+dir+`"}`, nil)
		ps := problemsOf(t, err)
		if len(ps) != 1 || ps[0].Key != "teams.app_password_file" || !strings.Contains(ps[0].Message, dir) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("empty file", func(t *testing.T) {
		empty := writeFile(t, "empty", "\n")
		_, err := load(t, `audit: {signing_key_file: "`+empty+`"}`, nil)
		ps := problemsOf(t, err)
		if len(ps) != 1 || ps[0].Key != "audit.signing_key_file" || !strings.Contains(ps[0].Message, "empty") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("all problems together", func(t *testing.T) {
		_, err := load(t, `
slack: {bot_token_file: "/nonexistent/a", app_token_file: "/nonexistent/b"}
storage: {dsn: x, dsn_file: "`+dsn+`"}`, nil)
		wantProblemKeys(t, err, []string{"slack.app_token_file", "slack.bot_token_file", "storage.dsn"})
		if strings.Contains(err.Error(), "postgres://") {
			t.Errorf("error leaks file content: %v", err)
		}
	})
}

func TestEveryPlainSecretHasAFileTwin(t *testing.T) {
	secretType := reflect.TypeFor[config.Secret]()
	seen := map[reflect.Type]bool{}
	var walk func(reflect.Type)
	walk = func(tp reflect.Type) {
		for tp.Kind() == reflect.Pointer || tp.Kind() == reflect.Slice || tp.Kind() == reflect.Map {
			tp = tp.Elem()
		}
		if tp.Kind() != reflect.Struct || seen[tp] {
			return
		}
		seen[tp] = true
		tags := map[string]reflect.Type{}
		for i := range tp.NumField() {
			f := tp.Field(i)
			if f.IsExported() {
				tags[f.Tag.Get("mapstructure")] = f.Type
			}
		}
		for name, ft := range tags {
			if ft == secretType {
				if twin, ok := tags[name+"_file"]; !ok || twin.Kind() != reflect.String {
					t.Errorf("%s.%s has no %s_file twin", tp.Name(), name, name)
				}
			}
			if base, ok := strings.CutSuffix(name, "_file"); ok && tags[base] != secretType {
				t.Errorf("%s.%s has no plain Secret twin %s", tp.Name(), name, base)
			}
			walk(ft)
		}
	}
	walk(reflect.TypeFor[config.Config]())
}

// fmt does not call the methods of values behind a nested pointer when the
// verb does not fit the pointer (e.g. %s of a struct holding one), so a
// Secret must never be reachable through a pointer.
func TestNoSecretBehindAPointer(t *testing.T) {
	secretType := reflect.TypeFor[config.Secret]()
	var walk func(tp reflect.Type, path string, behindPointer bool, seen map[reflect.Type]bool)
	walk = func(tp reflect.Type, path string, behindPointer bool, seen map[reflect.Type]bool) {
		if tp == secretType && behindPointer {
			t.Errorf("%s is a Secret behind a pointer", path)
		}
		switch tp.Kind() {
		case reflect.Pointer, reflect.Interface:
			if tp.Kind() == reflect.Interface {
				t.Errorf("%s is an interface; a Secret could hide behind it", path)
				return
			}
			walk(tp.Elem(), path, true, seen)
		case reflect.Slice, reflect.Map:
			walk(tp.Elem(), path+"[]", behindPointer, seen)
		case reflect.Struct:
			if seen[tp] {
				return
			}
			seen[tp] = true
			for i := range tp.NumField() {
				if f := tp.Field(i); f.IsExported() {
					walk(f.Type, path+"."+f.Name, behindPointer, seen)
				}
			}
		}
	}
	walk(reflect.TypeFor[config.Config](), "Config", false, map[reflect.Type]bool{})
}

func TestEnvOverrides(t *testing.T) {
	secretFile := writeFile(t, "sec", "from-file\n")
	env := map[string]string{
		"SIGNOFF_LISTEN":                 "0.0.0.0:9090",
		"SIGNOFF_STORAGE_PATH":           "/data/signoff.db",
		"SIGNOFF_SLACK_SIGNING_SECRET":   "env-s3cret",
		"SIGNOFF_SLACK_BOT_TOKEN_FILE":   secretFile,
		"SIGNOFF_SLACK_TEAM_ID":          "T0ENV",
		"SIGNOFF_TEAMS_TENANT_IDS":       " t1, t2 ,,",
		"SIGNOFF_AUDIT_CHECKPOINT_EVERY": "50",
		"SIGNOFF_IDP_GROUPS_MAX_AGE":     "90m",
		"SIGNOFF_LOG_FORMAT":             "", // empty: ignored
		"SIGNOFF_ACTIONS":                "ignored: actions come from the file only",
	}
	c := mustLoad(t, base+`
listen: 127.0.0.1:8080
storage: {path: ./x.db}
log: {format: json}
`, env)
	if c.Listen != "0.0.0.0:9090" {
		t.Errorf("listen = %q", c.Listen)
	}
	if c.Storage.Path != "/data/signoff.db" || c.Storage.Driver != "bolt" {
		t.Errorf("storage = %+v", c.Storage)
	}
	if c.Slack.SigningSecret.Reveal() != "env-s3cret" || c.Slack.BotToken.Reveal() != "from-file" || c.Slack.TeamID != "T0ENV" {
		t.Errorf("slack = %#v", c.Slack)
	}
	if !slices.Equal(c.Teams.TenantIDs, []string{"t1", "t2"}) {
		t.Errorf("tenant ids = %q", c.Teams.TenantIDs)
	}
	if c.Audit.CheckpointEvery != 50 || c.IdP.GroupsMaxAge != 90*time.Minute {
		t.Errorf("checkpoint_every = %d, groups_max_age = %v", c.Audit.CheckpointEvery, c.IdP.GroupsMaxAge)
	}
	if c.Log.Format != "json" {
		t.Errorf("empty env var overrode log.format: %q", c.Log.Format)
	}
	if c.EnvSource("listen") != "SIGNOFF_LISTEN" || c.EnvSource("log.format") != "" {
		t.Errorf("EnvSource wrong")
	}
	if _, ok := c.Actions["deploy-prod"]; !ok || len(c.Actions) != 1 {
		t.Errorf("actions = %v", c.Actions)
	}

	t.Run("env and file twin both set", func(t *testing.T) {
		_, err := load(t, `slack: {signing_secret_file: "`+secretFile+`"}`, map[string]string{"SIGNOFF_SLACK_SIGNING_SECRET": "env-s3cret"})
		if err == nil || !strings.Contains(err.Error(), "slack.signing_secret (from $SIGNOFF_SLACK_SIGNING_SECRET) and slack.signing_secret_file") {
			t.Fatalf("got %v", err)
		}
		if strings.Contains(err.Error(), "env-s3cret") {
			t.Errorf("error leaks the secret: %v", err)
		}
	})
	t.Run("bad env value names key and variable", func(t *testing.T) {
		_, err := load(t, "", map[string]string{"SIGNOFF_AUDIT_CHECKPOINT_EVERY": "lots", "SIGNOFF_IDP_LINK_MAX_AGE": "30"})
		for _, frag := range []string{
			`audit.checkpoint_every: "lots" is not a whole number (from $SIGNOFF_AUDIT_CHECKPOINT_EVERY)`,
			`idp.link_max_age: "30" is not a duration`,
		} {
			if err == nil || !strings.Contains(err.Error(), frag) {
				t.Errorf("missing %q in %v", frag, err)
			}
		}
	})
	t.Run("process environment untouched by injected lookup", func(t *testing.T) {
		t.Setenv("SIGNOFF_LISTEN", "127.0.0.1:7777")
		c := mustLoad(t, "", nil)
		if c.Listen != config.DefaultListen {
			t.Errorf("injected empty env, got listen %q", c.Listen)
		}
		c, err := config.Load(config.LoadOptions{}) // nil LookupEnv: process environment
		if err != nil || c.Listen != "127.0.0.1:7777" {
			t.Errorf("process env not used: %v %v", c, err)
		}
	})
}

func TestEnvKeys(t *testing.T) {
	keys := config.EnvKeys()
	for _, k := range []string{
		"listen", "public_url", "storage.driver", "storage.path", "storage.dsn", "storage.dsn_file",
		"slack.signing_secret", "slack.signing_secret_file", "slack.bot_token", "slack.app_token_file",
		"idp.client_secret", "idp.scopes", "idp.link_max_age", "teams.app_password", "teams.tenant_ids",
		"audit.signing_key_file", "audit.checkpoint_every", "auditors.groups", "log.level",
	} {
		if !slices.Contains(keys, k) {
			t.Errorf("EnvKeys lacks %s", k)
		}
	}
	for _, k := range keys {
		if strings.HasPrefix(k, "actions") || strings.HasPrefix(k, "requesters") || strings.HasPrefix(k, "dev") {
			t.Errorf("EnvKeys has %s, which comes from the file only", k)
		}
	}
	if got := config.EnvVar("slack.signing_secret_file"); got != "SIGNOFF_SLACK_SIGNING_SECRET_FILE" {
		t.Errorf("EnvVar = %q", got)
	}
	if got := config.EnvVar("public_url"); got != "SIGNOFF_PUBLIC_URL" {
		t.Errorf("EnvVar = %q", got)
	}
}

func TestSecretNeverPrinted(t *testing.T) {
	const value = "hunter2-very-secret"
	s := config.Secret(value)
	for _, format := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%10s", "%T %v"} {
		if out := fmt.Sprintf(format, s); strings.Contains(out, value) || strings.Contains(out, fmt.Sprintf("%x", value)) {
			t.Errorf("%s printed %q", format, out)
		}
	}
	if s.String() != config.Redacted || s.GoString() != `"[redacted]"` || fmt.Sprint(config.Secret("")) != "" {
		t.Errorf("String/GoString/empty: %q %q %q", s.String(), s.GoString(), fmt.Sprint(config.Secret("")))
	}
	if s.Reveal() != value {
		t.Error("Reveal")
	}

	c := mustLoad(t, base+`
    on_approve: {webhook: {url: "https://x.example.com/hook", secret: "`+value+`"}}
slack: {bot_token: "`+value+`", signing_secret: "`+value+`", team_id: T01}
storage: {driver: postgres, dsn: "`+value+`"}
idp: {client_secret: "`+value+`", token_encryption_key: "`+value+value+`"}
teams: {app_password: "`+value+`"}
audit: {signing_key: "`+value+`"}
`, nil)
	var outputs []string
	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		outputs = append(outputs, fmt.Sprintf(format, c), fmt.Sprintf(format, *c), fmt.Sprintf(format, c.Actions))
	}
	j, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	outputs = append(outputs, string(j))
	y, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	outputs = append(outputs, string(y))
	for _, h := range []func(*bytes.Buffer) slog.Handler{
		func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
		func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
	} {
		var buf bytes.Buffer
		log := slog.New(h(&buf))
		log.Info("cfg", "secret", s, "slack", c.Slack, "config", c, "group", slog.GroupValue(slog.Any("k", s)))
		outputs = append(outputs, buf.String())
	}
	outputs = append(outputs, c.Summary())
	for i, out := range outputs {
		if strings.Contains(out, value) {
			t.Errorf("output %d leaks the secret: %s", i, out)
		}
	}
	if !strings.Contains(string(j), `"[redacted]"`) {
		t.Errorf("JSON does not show [redacted]: %s", j)
	}
}

func TestPolicyBuilt(t *testing.T) {
	c := mustLoad(t, `
requesters:
  - {name: github, issuer: "https://token.actions.githubusercontent.com", audience: signoff, person_claim: actor}
  - {name: gitlab, issuer: "https://gitlab.com", audience: signoff}
auditors: {groups: [audit, security]}
actions:
  deploy-prod:
    description: Deploy
    requesters:
      - {issuer: github, claims: {repository: "acme/*", ref: refs/heads/main}}
      - {issuer: gitlab, claims: {project_path: "acme/*"}}
    params:
      service: {required: true, pattern: "[a-z-]+"}
      version: {max_length: 64, pattern: "^v[0-9]+$"}
    approvers: {groups: [sre], users: [boss@example.com], min_approvals: 2, allow_self_approval: true}
    ttl: 90m
    notify: {slack: [C0123ABCD], teams: ["19:abc@thread.tacv2"]}
    on_approve: {webhook: {url: "https://deploy.example.com/hook", secret: whs, timeout: 30s}}
    step_up: {max_age: 5m, acr_values: [mfa], require_mfa: true}
    require_approve_reason: true
  minimal:
    requesters: [{issuer: gitlab, claims: {sub: "*"}}]
    approvers: {users: [alice]}
    on_approve: {webhook: {url: "https://x.example.com"}}
`, nil)
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	p, err := c.Policy()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p.AuditorGroups, []string{"audit", "security"}) || len(p.Actions) != 2 {
		t.Fatalf("policy = %+v", p)
	}
	if c.Requesters[1].PersonClaim != "sub" {
		t.Errorf("person_claim default = %q", c.Requesters[1].PersonClaim)
	}

	a := p.Actions["deploy-prod"]
	if a.Name != "deploy-prod" || a.Description != "Deploy" || a.TTL != 90*time.Minute || !a.RequireApproveReason || a.RequireDenyReason {
		t.Errorf("action = %+v", a)
	}
	if len(a.Requesters) != 2 || a.Requesters[1].Issuer != "gitlab" || a.Requesters[0].Claims["ref"] != "refs/heads/main" {
		t.Errorf("requesters = %+v", a.Requesters)
	}
	if err := a.CheckRequester("github", map[string]string{"repository": "acme/api", "ref": "refs/heads/main"}); err != nil {
		t.Error(err)
	}
	if err := a.CheckRequester("github", map[string]string{"repository": "evil/api", "ref": "refs/heads/main"}); err == nil {
		t.Error("evil/api accepted")
	}
	// Patterns are anchored whether or not the author wrote ^…$.
	for _, tc := range []struct {
		params map[string]string
		ok     bool
	}{
		{map[string]string{"service": "api"}, true},
		{map[string]string{"service": "api; rm -rf /"}, false},
		{map[string]string{"service": "API"}, false},
		{map[string]string{"service": "api", "version": "v12"}, true},
		{map[string]string{"service": "api", "version": "v12-evil"}, false},
	} {
		if err := a.CheckParams(tc.params); (err == nil) != tc.ok {
			t.Errorf("CheckParams(%v) = %v, want ok=%v", tc.params, err, tc.ok)
		}
	}
	if a.Params["version"].MaxLength != 64 || a.Params["service"].MaxLength != 0 || !a.Params["service"].Required {
		t.Errorf("params = %+v", a.Params)
	}
	if a.Approvers.MinApprovals != 2 || !a.Approvers.AllowSelfApproval || !slices.Equal(a.Approvers.Users, []string{"boss@example.com"}) {
		t.Errorf("approvers = %+v", a.Approvers)
	}
	if !slices.Equal(a.Notify.Slack, []string{"C0123ABCD"}) || !slices.Equal(a.Notify.Teams, []string{"19:abc@thread.tacv2"}) {
		t.Errorf("notify = %+v", a.Notify)
	}
	if w := a.OnApprove.Webhook; w.URL != "https://deploy.example.com/hook" || w.Secret != "whs" || w.Timeout != 30*time.Second {
		t.Errorf("webhook = %+v", w)
	}
	if s := a.StepUp; s == nil || s.MaxAge != 5*time.Minute || !s.RequireMFA || !slices.Equal(s.ACRValues, []string{"mfa"}) {
		t.Errorf("step_up = %+v", s)
	}

	m := p.Actions["minimal"]
	if m.TTL != config.DefaultActionTTL || m.Approvers.MinApprovals != 1 || m.StepUp != nil || m.Params == nil ||
		m.OnApprove.Webhook.Timeout != config.DefaultWebhookTimeout {
		t.Errorf("defaults not applied: %+v", m)
	}
	if err := m.CheckParams(map[string]string{"x": "y"}); err == nil {
		t.Error("undeclared param accepted")
	}

	// The policy shares no memory with the config.
	c.Actions["deploy-prod"].Approvers.Groups[0] = "changed"
	if a.Approvers.Groups[0] != "sre" {
		t.Error("policy aliases config slices")
	}
}

func TestPolicyRefusesInvalidPolicy(t *testing.T) {
	c := mustLoad(t, base+`
    params: {service: {pattern: "(["}}
listen: "not an address"
`, nil)
	_, err := c.Policy()
	ps := problemsOf(t, err)
	if len(ps) != 1 || ps[0].Key != "actions.deploy-prod.params.service.pattern" {
		t.Fatalf("Policy error should list only the policy's problems: %v", err)
	}
}

func TestSummary(t *testing.T) {
	secretFile := writeFile(t, "bot", "xoxb-s3cr3t-token\n")
	c := mustLoad(t, `
listen: 127.0.0.1:8080
public_url: https://signoff.example.com
requesters:
  - {name: github, issuer: "https://token.actions.githubusercontent.com", audience: signoff, person_claim: actor}
idp: {issuer: "https://login.example.com", client_id: signoff, client_secret: idp-s3cr3t, token_encryption_key: "0123456789abcdef0123456789abcdef-s3cr3t"}
slack: {bot_token_file: "`+secretFile+`", signing_secret: slack-s3cr3t, team_id: T0123ABCD}
auditors: {groups: [audit]}
actions:
  deploy-prod:
    description: Deploy a service to production
    requesters: [{issuer: github, claims: {repository: "acme/*", ref: refs/heads/main}}]
    params:
      service: {required: true, pattern: "^[a-z-]+$"}
      version: {required: true, max_length: 64}
    approvers: {groups: [sre], min_approvals: 2}
    ttl: 1h
    notify: {slack: [C0123ABCD]}
    on_approve: {webhook: {url: "https://hooks.example.com/services/T0/B0/tok3n-in-path?k=q", secret: hook-s3cr3t}}
    step_up: {max_age: 5m, require_mfa: true}
    require_deny_reason: true
`, nil)
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	sum := c.Summary()
	wantContains(t, "summary", sum,
		"  listen         127.0.0.1:8080\n",
		"  storage        bolt, file ./signoff-data/signoff.db\n",
		"  github         https://token.actions.githubusercontent.com, audience signoff, person claim actor\n",
		"  idp            configured: https://login.example.com, client signoff, client secret set inline\n",
		"  slack          configured: workspace T0123ABCD, HTTP callbacks (signing secret set inline), bot token from file "+secretFile+"\n",
		"  teams          not configured\n",
		"Action deploy-prod: Deploy a service to production\n",
		"  requested by   github with ref=refs/heads/main, repository=acme/*\n",
		"  params         service: required, pattern ^[a-z-]+$, at most 256 bytes\n",
		"                 version: required, at most 64 bytes\n",
		"  approved by    2 approvals from groups sre; self-approval not allowed\n",
		"  expires        after 1h\n",
		"  notifies       slack C0123ABCD\n",
		"  on approve     webhook https://hooks.example.com/… (timeout 10s, signed, secret set inline)\n",
		"  step-up        approvers must have signed in within 5m, with MFA\n",
		"  reason         required to deny\n",
	)
	for _, secret := range []string{"s3cr3t", "tok3n", "k=q"} {
		if strings.Contains(sum, secret) {
			t.Errorf("summary leaks %q:\n%s", secret, sum)
		}
	}
}

func TestWarnings(t *testing.T) {
	c := mustLoad(t, base+`
    notify: {slack: [C0123ABCD]}
    on_approve: {webhook: {url: "https://x.example.com"}}
dev: {approvers: [{name: carol}]}
`, nil)
	want := []string{
		"actions.deploy-prod.approvers",
		"actions.deploy-prod.notify.slack",
		"actions.deploy-prod.on_approve.webhook.secret",
	}
	if got := keysOf(c.Warnings()); !slices.Equal(got, want) {
		t.Errorf("warnings %q, want %q", got, want)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("warnings are not problems: %v", err)
	}
	if !strings.Contains(c.Summary(), "\nWarnings\n  actions.deploy-prod.approvers: in dev mode only 0 of the dev approvers may approve") ||
		!strings.Contains(c.Summary(), "\n  actions.deploy-prod.notify.slack: slack is not configured") {
		t.Errorf("summary lacks warnings:\n%s", c.Summary())
	}
}

func TestLogConfig(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(config.LogConfig{Level: "warn", Format: "json"}.Handler(&buf))
	log.Info("hidden")
	log.Warn("shown")
	if strings.Contains(buf.String(), "hidden") || !strings.Contains(buf.String(), `"msg":"shown"`) {
		t.Errorf("log output %q", buf.String())
	}
}

// TestIdentityBindingKeys: idp.link_match and idp.person_claims, their
// defaults, env overrides, validation and warnings.
func TestIdentityBindingKeys(t *testing.T) {
	const idp = `
public_url: "https://signoff.example.com"
idp: {issuer: "https://login.example.com", client_id: signoff, scopes: [openid, email]`
	c := mustLoad(t, base+idp+"}\n", nil)
	if c.IdP.LinkMatch != config.LinkMatchEmail || !slices.Equal(c.IdP.PersonClaims, []string{"preferred_username"}) {
		t.Errorf("defaults: link_match %q, person_claims %q", c.IdP.LinkMatch, c.IdP.PersonClaims)
	}
	if slices.Contains(keysOf(c.Warnings()), "idp.link_match") {
		t.Error("a warning about link_match with the default")
	}

	c = mustLoad(t, base+idp+"}\n", map[string]string{"SIGNOFF_IDP_LINK_MATCH": "none", "SIGNOFF_IDP_PERSON_CLAIMS": "github_login, preferred_username"})
	if c.IdP.LinkMatch != config.LinkMatchNone || !slices.Equal(c.IdP.PersonClaims, []string{"github_login", "preferred_username"}) {
		t.Errorf("env: link_match %q, person_claims %q", c.IdP.LinkMatch, c.IdP.PersonClaims)
	}
	var warned bool
	for _, w := range c.Warnings() {
		if w.Key == "idp.link_match" && strings.Contains(w.Message, "vote as another") {
			warned = true
		}
	}
	if !warned {
		t.Errorf("no loud warning for link_match: none: %v", c.Warnings())
	}

	err := mustLoad(t, base+idp+", link_match: emial}\n", nil).Validate()
	if err == nil || !strings.Contains(err.Error(), "idp.link_match") || !strings.Contains(err.Error(), `"emial"`) {
		t.Errorf("a misspelt link_match: %v", err)
	}
}

// TestSelfApprovalBlindSpotWarnings: config check says when a GitHub or
// GitLab requester could approve their own request unnoticed.
func TestSelfApprovalBlindSpotWarnings(t *testing.T) {
	const cfg = `
public_url: "https://signoff.example.com"
requesters:
  - {name: github, issuer: "https://token.actions.githubusercontent.com", audience: signoff, person_claim: %CLAIM%}
idp: {issuer: "https://login.example.com", client_id: signoff, scopes: [openid], person_claims: %PC%}
`
	for _, tc := range []struct {
		claim, pc, want string
	}{
		{"actor", "[preferred_username]", ""},
		{"actor", "[]", "idp.person_claims"},
		{"sub", "[preferred_username]", "requesters[0].person_claim"},
	} {
		c := mustLoad(t, strings.NewReplacer("%CLAIM%", tc.claim, "%PC%", tc.pc).Replace(cfg), nil)
		var got []string
		for _, k := range keysOf(c.Warnings()) {
			if k == "idp.person_claims" || strings.HasPrefix(k, "requesters[") {
				got = append(got, k)
			}
		}
		if (tc.want == "" && len(got) > 0) || (tc.want != "" && !slices.Equal(got, []string{tc.want})) {
			t.Errorf("person_claim %s, person_claims %s: warnings %q, want %q", tc.claim, tc.pc, got, tc.want)
		}
	}
}

// TestLoadAndValidateReportsEverything: an unknown key or a mistyped
// value does not hide the other problems of the file.
func TestLoadAndValidateReportsEverything(t *testing.T) {
	path := filepath.Join(t.TempDir(), "signoff.yaml")
	text := base + `
slak: {team_id: T1}
listen: "127.0.0.1:http8080"
audit: {checkpoint_every: lots}
`
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := config.LoadAndValidate(config.LoadOptions{Path: path, LookupEnv: func(string) (string, bool) { return "", false }})
	var ve *config.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("err = %v", err)
	}
	got := keysOf(ve.Problems)
	for _, want := range []string{"slak", "listen", "audit.checkpoint_every"} {
		if !slices.Contains(got, want) {
			t.Errorf("problems %q lack %s", got, want)
		}
	}
	// A mistyped value is reported once, not again by validation.
	n := 0
	for _, k := range got {
		if k == "audit.checkpoint_every" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("audit.checkpoint_every reported %d times: %v", n, ve.Problems)
	}
}

// TestBooleanClaimRuleMeansItsText: `ref_protected: true` in a claim rule is
// the text "true" a token carries, not the "1" a weakly typed decode makes
// of it (a rule that could never match).
func TestBooleanClaimRuleMeansItsText(t *testing.T) {
	c := mustLoad(t, `actions:
  deploy:
    requesters: [{issuer: github, claims: {ref_protected: true, fork: false, run_attempt: 1}}]
    approvers: {groups: [sre]}
`, nil)
	got := c.Actions["deploy"].Requesters[0].Claims
	want := map[string]string{"ref_protected": "true", "fork": "false", "run_attempt": "1"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("claims[%s] = %q, want %q", k, got[k], v)
		}
	}
}
