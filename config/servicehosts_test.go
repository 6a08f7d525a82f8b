package config_test

import (
	"slices"
	"testing"

	"github.com/signoff-dev/signoff/config"
)

const teamsBase = base + `
teams: {app_id: bot, app_password: pw, tenant_ids: [t1]`

func TestTeamsServiceURLHostsDefaultAndOverride(t *testing.T) {
	c := mustLoad(t, teamsBase+`}`, nil)
	if !slices.Equal(c.Teams.ServiceURLHosts, config.DefaultTeamsServiceURLHosts) {
		t.Errorf("default: %q", c.Teams.ServiceURLHosts)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate with the default hosts: %v", err)
	}
	for _, h := range []string{"smba.trafficmanager.net", "smba.infra.gov.teams.microsoft.us", "smba.infra.dod.teams.microsoft.us"} {
		if !slices.Contains(config.DefaultTeamsServiceURLHosts, h) {
			t.Errorf("the default does not list %s", h)
		}
	}
	// Not configuring Teams does not make it configured.
	if c := mustLoad(t, base, nil); c.Teams.Configured() {
		t.Error("the default host list makes teams configured")
	}

	c = mustLoad(t, teamsBase+`, service_url_hosts: ["*.example.com", 127.0.0.1]}`, nil)
	if !slices.Equal(c.Teams.ServiceURLHosts, []string{"*.example.com", "127.0.0.1"}) {
		t.Errorf("file: %q", c.Teams.ServiceURLHosts)
	}
	c = mustLoad(t, teamsBase+`}`, map[string]string{"SIGNOFF_TEAMS_SERVICE_URL_HOSTS": "smba.trafficmanager.net, 127.0.0.1"})
	if !slices.Equal(c.Teams.ServiceURLHosts, []string{"smba.trafficmanager.net", "127.0.0.1"}) {
		t.Errorf("env: %q", c.Teams.ServiceURLHosts)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

func TestTeamsServiceURLHostsValidated(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		key, msg   string
	}{
		{"url instead of host", `, service_url_hosts: ["https://smba.trafficmanager.net/teams/"]}`, "teams.service_url_hosts[0]", "not a host name"},
		{"bare wildcard", `, service_url_hosts: [smba.trafficmanager.net, "*"]}`, "teams.service_url_hosts[1]", `"*" is not a host name`},
		{"top-level wildcard", `, service_url_hosts: ["*.net"]}`, "teams.service_url_hosts[0]", "at least two labels"},
		{"with port", `, service_url_hosts: ["smba.trafficmanager.net:443"]}`, "teams.service_url_hosts[0]", "without scheme, port or path"},
		{"empty", `, service_url_hosts: []}`, "teams.service_url_hosts", "is empty"},
		{"service_url elsewhere", `, service_url: "https://evil.example/teams/"}`, "teams.service_url", `host "evil.example" is not in teams.service_url_hosts`},
		{"service_url loopback not listed", `, service_url: "http://127.0.0.1:3978/"}`, "teams.service_url", "teams.service_url_hosts"},
		{"service_url under a wildcard", `, service_url: "https://a.example.com/teams/", service_url_hosts: ["*.example.com"]}`, "", ""},
		{"service_url listed", `, service_url: "https://smba.trafficmanager.net/amer/"}`, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantProblem(t, mustLoad(t, teamsBase+tc.yaml, nil), tc.key, tc.msg)
		})
	}
}
