package bot

import (
	"maps"
	"slices"

	"github.com/signoff-dev/signoff/oidc/linkflow"
)

// LinkerMetricsSource is what IdentityMetrics reads: *linkflow.Linker.
type LinkerMetricsSource interface {
	Metrics() linkflow.LinkerMetrics
}

// IdentityMetrics returns a metric source for Server.AddMetrics with the
// approver identity families of linker (see metrics.go and
// docs/operations.md for what each means and the alerts worth setting):
//
//	signoff_link_attempts_total                    counter, sign-in links handed out to link a chat account
//	signoff_links_total{outcome}                   counter, sign-ins for a link by outcome: linked, a refusal reason, idp_refused, idp_unavailable
//	signoff_idp_refresh_failures_total{reason}     counter (unavailable, refused, token_unreadable)
//	signoff_idp_refreshes_total{trigger}           counter, refreshes that succeeded (click, sweep)
//	signoff_links_marked_stale_total{reason}       counter (refresh_refused, binding_mismatch)
//	signoff_link_sweeps_total{result}              counter (completed, idp_unavailable, chat_unavailable, failed)
//	signoff_links_need_sign_in                     gauge, at the last sweep: links due for a refresh that hold no usable refresh token
func IdentityMetrics(linker LinkerMetricsSource) func() []Metric {
	return func() []Metric {
		m := linker.Metrics()
		out := []Metric{
			{Name: "signoff_link_attempts_total", Type: "counter",
				Help:    "Sign-in links handed out to link a chat account to an IdP identity (step-up links excluded).",
				Samples: []MetricSample{{Value: float64(m.LinkAttempts)}}},
			labelled("signoff_links_total", "Sign-ins for a link that came back from the IdP, by outcome: linked, a refusal reason (identity_mismatch, no_idp_email, email_unverified, no_chat_email, lookup_failed, unknown_account, no_directory), idp_refused, idp_unavailable.", "outcome", m.Links),
			labelled("signoff_idp_refresh_failures_total", "Refreshes of a link's groups at the IdP that failed, by reason: unavailable (nothing changed), refused (the link was marked stale), token_unreadable.", "reason", m.RefreshFailures),
			labelled("signoff_idp_refreshes_total", "Refreshes of a link's groups at the IdP that succeeded, by trigger: click or sweep.", "trigger", m.Refreshes),
			labelled("signoff_links_marked_stale_total", "Links marked stale by signoff's own checks, by reason: refresh_refused, binding_mismatch.", "reason", m.MarkedStale),
			labelled("signoff_link_sweeps_total", "Background sweep passes that refresh links whose groups are older than idp.groups_max_age, by result: completed, idp_unavailable, chat_unavailable, failed.", "result", m.Sweeps),
		}
		if m.Swept {
			out = append(out, Metric{Name: "signoff_links_need_sign_in", Type: "gauge",
				Help:    "At the last sweep pass: links whose groups are older than idp.groups_max_age and that hold no usable refresh token; their next click asks for a sign-in.",
				Samples: []MetricSample{{Value: float64(m.NeedSignIn)}}})
		}
		return out
	}
}

// labelled is a counter family with one label, a sample per key in order.
func labelled(name, help, label string, m map[string]uint64) Metric {
	f := Metric{Name: name, Type: "counter", Help: help}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		f.Samples = append(f.Samples, MetricSample{Labels: []string{label, k}, Value: float64(m[k])})
	}
	return f
}
