package main

import (
	"slices"
	"testing"

	"github.com/signoff-dev/signoff/bot/teamsbot"
	"github.com/signoff-dev/signoff/config"
)

// The default of teams.service_url_hosts is the Teams adapter's own.
func TestTeamsServiceURLHostsDefaultsAgree(t *testing.T) {
	if !slices.Equal(config.DefaultTeamsServiceURLHosts, teamsbot.DefaultServiceURLHosts) {
		t.Errorf("config default %q, teamsbot default %q", config.DefaultTeamsServiceURLHosts, teamsbot.DefaultServiceURLHosts)
	}
}
