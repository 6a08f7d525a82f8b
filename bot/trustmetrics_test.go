package bot_test

import (
	"strings"
	"testing"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/bot"
	"github.com/signoff-dev/signoff/oidc/linkflow"
)

// TestMetricsCountEveryRejectedCallback: a flood of rejected callbacks is
// sampled in the audit log but counted in full on /metrics, by platform
// and reason.
func TestMetricsCountEveryRejectedCallback(t *testing.T) {
	f := newAPIFixture(t)
	if body := strings.Join(f.scrape(), "\n"); strings.Contains(body, "signoff_callback_rejected_total") {
		t.Fatalf("callback family before any rejection:\n%s", body)
	}
	flood := approvals.CallbackRejectedPerMinute + 7
	for range flood {
		if err := f.svc.RecordRejectedCallback(t.Context(), "slack", "", "bad_signature", "POST /slack/interactions"); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		if err := f.svc.RecordRejectedCallback(t.Context(), "teams", "tenant-x", "wrong_tenant", "POST /teams/messages"); err != nil {
			t.Fatal(err)
		}
	}
	wantLines(t, f.scrape(),
		`# TYPE signoff_callback_rejected_total counter`,
		`signoff_callback_rejected_total{platform="slack",reason="bad_signature"} 17`,
		`signoff_callback_rejected_total{platform="teams",reason="wrong_tenant"} 2`,
	)
	var written int
	err := f.store.AuditRecords(t.Context(), 1, func(_ uint64, line []byte) error {
		if strings.Contains(string(line), `"callback.rejected"`) {
			written++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if written != approvals.CallbackRejectedPerMinute+2 {
		t.Fatalf("callback.rejected records: %d, want %d (sampled)", written, approvals.CallbackRejectedPerMinute+2)
	}
}

// TestMetricsCountAdminActions: CountAdminAction moves
// signoff_admin_actions_total; every known action is present from the
// start, an unknown name counts as other.
func TestMetricsCountAdminActions(t *testing.T) {
	f := newAPIFixture(t)
	wantLines(t, f.scrape(),
		`# TYPE signoff_admin_actions_total counter`,
		`signoff_admin_actions_total{action="link_revoke"} 0`,
		`signoff_admin_actions_total{action="backup"} 0`,
	)
	f.svc.CountAdminAction(approvals.AdminActionLinkRevoke)
	f.svc.CountAdminAction(approvals.AdminActionLinkRevoke)
	f.svc.CountAdminAction(approvals.AdminActionBackup)
	f.svc.CountAdminAction("drop everything\n")
	wantLines(t, f.scrape(),
		`signoff_admin_actions_total{action="link_revoke"} 2`,
		`signoff_admin_actions_total{action="backup"} 1`,
		`signoff_admin_actions_total{action="requests_list"} 0`,
		`signoff_admin_actions_total{action="other"} 1`,
	)
}

type linkerMetrics linkflow.LinkerMetrics

func (m *linkerMetrics) Metrics() linkflow.LinkerMetrics { return linkflow.LinkerMetrics(*m) }

// TestIdentityMetrics: the Linker's counters appear on /metrics through
// AddMetrics with their labels; the sweep gauge only once a pass ran.
func TestIdentityMetrics(t *testing.T) {
	f := newAPIFixture(t)
	src := &linkerMetrics{
		LinkAttempts:    7,
		Links:           map[string]uint64{linkflow.LinkOutcomeLinked: 4, string(linkflow.RefusalMismatch): 2, string(linkflow.RefusalLookupFailed): 0},
		RefreshFailures: map[string]uint64{linkflow.RefreshFailureUnavailable: 3, linkflow.RefreshFailureRefused: 1},
		Refreshes:       map[string]uint64{"click": 5, "sweep": 9},
		MarkedStale:     map[string]uint64{linkflow.StaleRefreshRefused: 1},
		Sweeps:          map[string]uint64{linkflow.SweepCompleted: 2, linkflow.SweepIdPUnavailable: 1},
	}
	f.front.AddMetrics(bot.IdentityMetrics(src))
	lines := f.scrape()
	wantLines(t, lines,
		`# TYPE signoff_link_attempts_total counter`,
		`signoff_link_attempts_total 7`,
		`signoff_links_total{outcome="linked"} 4`,
		`signoff_links_total{outcome="identity_mismatch"} 2`,
		`signoff_links_total{outcome="lookup_failed"} 0`,
		`signoff_idp_refresh_failures_total{reason="unavailable"} 3`,
		`signoff_idp_refresh_failures_total{reason="refused"} 1`,
		`signoff_idp_refreshes_total{trigger="sweep"} 9`,
		`signoff_links_marked_stale_total{reason="refresh_refused"} 1`,
		`signoff_link_sweeps_total{result="idp_unavailable"} 1`,
	)
	if strings.Contains(strings.Join(lines, "\n"), "signoff_links_need_sign_in") {
		t.Error("sweep gauge before any pass")
	}
	src.Swept, src.NeedSignIn = true, 3
	wantLines(t, f.scrape(), `# TYPE signoff_links_need_sign_in gauge`, `signoff_links_need_sign_in 3`)
}
