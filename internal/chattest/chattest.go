// Package chattest holds what the test suites of the chat adapters
// (bot/slackbot, bot/teamsbot) share: the approval policy, requester and
// identities they vote with, a fake account-link resolver, helpers around
// the approvals service and its audit log (Env, and the checks both
// adapters make of the same outcome), the headers of a signed Slack
// callback, and the setup of a fuzz target (a store kept in memory, a
// logger that only keeps panics, a transport confined to the platform's
// stand-in, the audit log verified as it grows).
//
// It is for tests only; no production code may import it.
package chattest

import (
	"context"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/approvals/audit"
	"github.com/signoff-dev/signoff/internal/testenv"
	"github.com/signoff-dev/signoff/oidc"
	"github.com/signoff-dev/signoff/policy"
	"github.com/signoff-dev/signoff/storage"
)

// T0 is the time the adapters' fake clocks start at.
var T0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// IdPIssuer is the issuer of every identity Identity returns.
const IdPIssuer = "https://idp.example"

// PublicURL is signoff's public address in the adapters' tests.
const PublicURL = "https://signoff.example.com"

// Requester is the CI job that asks for approval in the adapters' tests.
func Requester() storage.Requester {
	return storage.Requester{
		Issuer: "github", IssuerURL: "https://token.actions.githubusercontent.com",
		Subject: "repo:acme/api:ref:refs/heads/main", Person: "octocat", Name: "octocat",
		Claims: map[string]string{"repository": "acme/api", "actor": "octocat"},
	}
}

// DeployParams are valid parameters of the deploy-prod action.
func DeployParams() map[string]string {
	return map[string]string{"service": "api", "version": "1.4.2"}
}

// Identity is the identity of name at IdPIssuer, member of groups,
// verified a minute before T0.
func Identity(name string, groups ...string) oidc.Identity {
	return oidc.Identity{
		Issuer: IdPIssuer, Subject: "sub-" + name, Email: name + "@example.com", Name: name,
		PreferredUsername: name, Groups: groups, VerifiedAt: T0.Add(-time.Minute),
	}
}

// Policy returns the actions both adapters' tests use, each notifying
// where notify says:
//   - deploy-prod: service (required, [a-z-]+), version (required) and
//     note (at most 1000) parameters, two sre approvals, a webhook on
//     approval;
//   - restart: one sre approval, a reason required to deny;
//   - break-glass: one sre approval after a step-up with MFA in the last
//     five minutes.
//
// A test adds its platform's own actions to the result.
func Policy(notify func(action string) policy.Notify) *policy.Policy {
	service, err := policy.CompilePattern("[a-z-]+")
	if err != nil {
		panic(err)
	}
	return &policy.Policy{Actions: map[string]*policy.Action{
		"deploy-prod": {
			Name: "deploy-prod", Description: "Deploy a service to production",
			Requesters: []policy.RequesterRule{{Issuer: "github"}},
			Params: map[string]policy.Param{
				"service": {Required: true, Pattern: service},
				"version": {Required: true},
				"note":    {MaxLength: 1000},
			},
			Approvers: policy.Approvers{Groups: []string{"sre"}, MinApprovals: 2},
			TTL:       time.Hour,
			Notify:    notify("deploy-prod"),
			OnApprove: &policy.OnApprove{Webhook: &policy.Webhook{URL: "https://deploy.example/hook", Timeout: time.Second}},
		},
		"restart": {
			Name: "restart", Requesters: []policy.RequesterRule{{Issuer: "github"}},
			Approvers:         policy.Approvers{Groups: []string{"sre"}, MinApprovals: 1},
			TTL:               time.Hour,
			Notify:            notify("restart"),
			RequireDenyReason: true,
		},
		"break-glass": {
			Name: "break-glass", Requesters: []policy.RequesterRule{{Issuer: "github"}},
			Approvers: policy.Approvers{Groups: []string{"sre"}, MinApprovals: 1},
			TTL:       time.Hour,
			Notify:    notify("break-glass"),
			StepUp:    &policy.StepUp{MaxAge: 5 * time.Minute, RequireMFA: true},
		},
	}}
}

// Create asks svc for a new request of action by Requester, and fails the
// test unless one was created.
func Create(t testing.TB, svc *approvals.Service, action string, params map[string]string, reason string, links ...storage.Link) storage.Request {
	t.Helper()
	r, created, err := svc.Create(context.Background(), approvals.CreateInput{Requester: Requester(), Action: action, Params: params, Reason: reason, Links: links})
	if err != nil || !created {
		t.Fatalf("create %s: created=%v err=%v", action, created, err)
	}
	return r
}

// Get returns request id, failing the test on error.
func Get(t testing.TB, svc *approvals.Service, id string) storage.Request {
	t.Helper()
	r, err := svc.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// Drain runs deliverOnce (an adapter's outbox pass) until it finds nothing
// due, and fails the test if that takes more than 20 passes.
func Drain(t testing.TB, deliverOnce func(context.Context) (int, error)) {
	t.Helper()
	for range 20 {
		n, err := deliverOnce(context.Background())
		if err != nil {
			t.Fatalf("DeliverOnce: %v", err)
		}
		if n == 0 {
			return
		}
	}
	t.Fatal("outbox never drained")
}

// RecordsOf returns the audit records of type typ, in order, checking the
// chain of the whole log.
func RecordsOf(t testing.TB, st storage.Store, typ string) []audit.Record {
	t.Helper()
	var out []audit.Record
	for _, r := range testenv.AuditRecords(t, st) {
		if r.Type == typ {
			out = append(out, r)
		}
	}
	return out
}
