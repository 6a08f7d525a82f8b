package config_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/signoff-dev/signoff/config"
)

// TestLimitsKeys: limits.* defaults, file values, environment overrides
// and validation (> 0, naming the key).
func TestLimitsKeys(t *testing.T) {
	c := mustLoad(t, base, nil)
	if got := c.Limits; got != (config.LimitsConfig{RequestsPerMinute: 60, PendingPerRequester: 20, ClicksPerMinute: 30}) {
		t.Errorf("defaults: %+v", got)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("defaults do not validate: %v", err)
	}

	c = mustLoad(t, base+"limits: {requests_per_minute: 5, pending_per_requester: 2, clicks_per_minute: 7}\n", nil)
	if got := c.Limits; got != (config.LimitsConfig{RequestsPerMinute: 5, PendingPerRequester: 2, ClicksPerMinute: 7}) {
		t.Errorf("from the file: %+v", got)
	}

	c = mustLoad(t, base+"limits: {requests_per_minute: 5}\n", map[string]string{
		"SIGNOFF_LIMITS_REQUESTS_PER_MINUTE":   "9",
		"SIGNOFF_LIMITS_PENDING_PER_REQUESTER": "3",
		"SIGNOFF_LIMITS_CLICKS_PER_MINUTE":     "11",
	})
	if got := c.Limits; got != (config.LimitsConfig{RequestsPerMinute: 9, PendingPerRequester: 3, ClicksPerMinute: 11}) {
		t.Errorf("from the environment: %+v", got)
	}
	wantEnvKeys(t, "limits.requests_per_minute", "limits.pending_per_requester", "limits.clicks_per_minute")

	err := mustLoad(t, base+"limits: {requests_per_minute: 0, pending_per_requester: -1, clicks_per_minute: 0}\n", nil).Validate()
	keys := keysOf(problemsOf(t, err))
	for _, k := range []string{"limits.requests_per_minute", "limits.pending_per_requester", "limits.clicks_per_minute"} {
		if !slices.Contains(keys, k) {
			t.Errorf("no problem named %s in %v", k, err)
		}
	}
	if !strings.Contains(err.Error(), "must be > 0, got 0") || !strings.Contains(err.Error(), "got -1") {
		t.Errorf("problems do not say what is wrong: %v", err)
	}

	if _, err := load(t, base, map[string]string{"SIGNOFF_LIMITS_CLICKS_PER_MINUTE": "lots"}); err == nil || !strings.Contains(err.Error(), "limits.clicks_per_minute") {
		t.Errorf("a non-number from the environment: %v", err)
	}
}
