package main

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/bot"
	"github.com/signoff-dev/signoff/bot/ssf"
	"github.com/signoff-dev/signoff/config"
	"github.com/signoff-dev/signoff/oidc"
)

// newSSFReceiver builds the Shared Signals receiver from the ssf section
// (nil when it is not configured), mounts POST /ssf/events on the front
// door and adds its families to /metrics. discover fetches the
// transmitter's keys once, so that a wrong ssf.jwks_url shows in the log at
// start; SETs are verified whether or not it succeeded.
func newSSFReceiver(front *bot.Server, cfg *config.Config, svc *approvals.Service, logger *slog.Logger) (discover func(context.Context) error, err error) {
	if !cfg.SSF.Configured() {
		return nil, nil
	}
	v, err := oidc.NewSETVerifier(oidc.SETVerifierOptions{
		Issuer:   cfg.SSF.Issuer,
		JWKSURL:  cfg.SSF.JWKSURL,
		Audience: cfg.SSF.Audience,
		Logger:   logger,
	})
	if err != nil {
		return nil, withCode(exitUsage, fmt.Errorf("ssf: %w", err))
	}
	r, err := ssf.New(ssf.Options{
		Verifier:    v,
		Links:       svc,
		BearerToken: cfg.SSF.BearerToken.Reveal(),
		IdPIssuer:   cfg.IdP.Issuer,
		Logger:      logger,
	})
	if err != nil {
		return nil, withCode(exitUsage, fmt.Errorf("ssf: %w", err))
	}
	r.Register(front)
	front.AddMetrics(func() []bot.Metric { return ssfMetrics(r.Stats()) })
	if !cfg.SSF.BearerToken.IsSet() {
		logger.Info("ssf: SETs are accepted from any client that presents one signed by the transmitter; set ssf.bearer_token_file to also require the stream's authorization header")
	}
	logger.Info("ssf: receiving Shared Signals", "path", ssf.Path, "issuer", cfg.SSF.Issuer, "jwks_url", cfg.SSF.JWKSURL, "audience", cfg.SSF.Audience)
	return v.Discover, nil
}

// ssfMetrics are the Shared Signals families of /metrics (listed in
// bot/metrics.go).
func ssfMetrics(st ssf.Stats) []bot.Metric {
	events := ssfCounter("signoff_ssf_events_total",
		"Security Event Tokens pushed to /ssf/events, by event type (session-revoked, credential-change, account-disabled, account-purged, verification, other; unverified when refused before its events could be trusted) and outcome (stale, no_match, unchanged, ignored, or the err code of a refusal).",
		st.Events, func(a, b ssf.EventKey) int {
			return cmp.Or(cmp.Compare(a.Type, b.Type), cmp.Compare(a.Outcome, b.Outcome))
		}, func(k ssf.EventKey) []string { return []string{"type", k.Type, "outcome", k.Outcome} })
	refusals := ssfCounter("signoff_ssf_refusals_total",
		"Refused Security Event Tokens, by the err code answered (RFC 8935, or temporarily_unavailable) and reason; nothing was changed.",
		st.Refusals, func(a, b ssf.RefusalKey) int {
			return cmp.Or(cmp.Compare(a.Err, b.Err), cmp.Compare(a.Reason, b.Reason))
		}, func(k ssf.RefusalKey) []string { return []string{"err", string(k.Err), "reason", string(k.Reason)} })
	stale := bot.Metric{
		Name: "signoff_ssf_links_stale_total", Type: "counter",
		Help:    "Approver links made stale by Security Event Tokens.",
		Samples: []bot.MetricSample{{Value: float64(st.LinksStale)}},
	}
	return []bot.Metric{events, refusals, stale}
}

// ssfCounter is a counter family with a sample per key of counts, in the
// order compare sorts them; labels are a key's label names and values.
func ssfCounter[K comparable](name, help string, counts map[K]uint64, compare func(a, b K) int, labels func(K) []string) bot.Metric {
	m := bot.Metric{Name: name, Type: "counter", Help: help}
	for _, k := range sortedSSFKeys(counts, compare) {
		m.Samples = append(m.Samples, bot.MetricSample{Labels: labels(k), Value: float64(counts[k])})
	}
	return m
}

func sortedSSFKeys[K comparable, V any](m map[K]V, compare func(a, b K) int) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, compare)
	return keys
}
