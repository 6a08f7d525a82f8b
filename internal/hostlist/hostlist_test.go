package hostlist

import (
	"strings"
	"testing"
)

func TestAllowsExactAndWildcardOnly(t *testing.T) {
	l, err := Parse([]string{"smba.trafficmanager.net", "SMBA.infra.gov.teams.microsoft.us.", "*.example.com", "127.0.0.1", "[::1]"})
	if err != nil {
		t.Fatal(err)
	}
	for host, want := range map[string]bool{
		"smba.trafficmanager.net":                true,
		"SMBA.TrafficManager.NET":                true,
		"smba.trafficmanager.net.":               true,
		"smba.infra.gov.teams.microsoft.us":      true,
		"a.example.com":                          true,
		"a.b.example.com":                        true,
		"127.0.0.1":                              true,
		"::1":                                    true,
		"[::1]":                                  true,
		"example.com":                            false, // a wildcard does not match its own domain
		"evilexample.com":                        false,
		"smba.trafficmanager.net.evil.example":   false,
		"evilsmba.trafficmanager.net":            false,
		"x.smba.trafficmanager.net":              false, // exact entries match exactly
		"trafficmanager.net":                     false,
		"127.0.0.2":                              false,
		"localhost":                              false,
		"":                                       false,
		"smba.infra.gov.teams.microsoft.us.evil": false,
	} {
		if got := l.Allows(host); got != want {
			t.Errorf("Allows(%q) = %v, want %v", host, got, want)
		}
	}
}

func TestParseRefusesWhatIsNotAHost(t *testing.T) {
	for _, bad := range []string{
		"", "*", "*.com", "*example.com", "a.*.example.com", "https://smba.trafficmanager.net",
		"smba.trafficmanager.net/teams", "smba.trafficmanager.net:443", "user@smba.trafficmanager.net",
		"-bad.example.com", "exa mple.com",
	} {
		if err := CheckEntry(bad); err == nil {
			t.Errorf("CheckEntry(%q) accepted it", bad)
		}
	}
	_, err := Parse([]string{"ok.example.com", "https://x", "*"})
	if err == nil || !strings.Contains(err.Error(), `"https://x"`) || !strings.Contains(err.Error(), `"*"`) {
		t.Errorf("Parse names every bad entry: %v", err)
	}
	var zero List
	if zero.Allows("smba.trafficmanager.net") || !zero.Empty() {
		t.Error("the zero List allows something")
	}
}

func TestCheckURL(t *testing.T) {
	l, _ := Parse([]string{"smba.trafficmanager.net", "127.0.0.1", "localhost"})
	for raw, ok := range map[string]bool{
		"http://127.0.0.1:8080/teams/": true, // a stand-in on this machine
		"http://localhost/teams/":      true,
	} {
		if _, err := l.CheckURL(raw); (err == nil) != ok {
			t.Errorf("CheckURL(%q) err = %v, want ok=%v", raw, err, ok)
		}
	}
	l, _ = Parse([]string{"smba.trafficmanager.net"})
	for raw, ok := range map[string]bool{
		"https://smba.trafficmanager.net/teams/":                   true,
		"https://smba.trafficmanager.net:8443/amer/":               true,
		"http://smba.trafficmanager.net/teams/":                    false, // a token would travel in the clear
		"https://smba.trafficmanager.net@evil.example/teams/":      false,
		"https://evil.example/smba.trafficmanager.net/":            false,
		"https://evil.example/?h=smba.trafficmanager.net":          false,
		"https://smba.trafficmanager.net.evil.example/teams/":      false,
		"ftp://smba.trafficmanager.net/":                           false,
		"smba.trafficmanager.net/teams":                            false,
		"https://user:pw@smba.trafficmanager.net/teams/":           false,
		"https://evil.example#@smba.trafficmanager.net/":           false,
		"https://evil.example\\@smba.trafficmanager.net/":          false,
		"https://smba.trafficmanager.net%2eevil.example/teams/":    false,
		"https://[::1]/teams/":                                     false,
		"https://smba.trafficmanager.net./teams/":                  true,
		"HTTPS://SMBA.TRAFFICMANAGER.NET/teams/":                   true,
		"https://smba.trafficmanager.net/v3/conversations/a%2Fb/x": true,
	} {
		if _, err := l.CheckURL(raw); (err == nil) != ok {
			t.Errorf("CheckURL(%q) err = %v, want ok=%v", raw, err, ok)
		}
	}
}

func TestIsLoopback(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost": true, "LOCALHOST": true, "127.0.0.1": true, "127.1.2.3": true, "::1": true, "[::1]": true,
		"::ffff:127.0.0.1": true,
		"":                 false, "localhost.": false, "localhost.evil.example": false, "evil.localhost.example": false,
		"127.0.0.1.evil.example": false, "127.1": false, "2130706433": false, "0x7f000001": false,
		"0.0.0.0": false, "::": false, "10.0.0.1": false, "[::1%25lo]": false, "[::2]": false,
	} {
		if got := IsLoopback(host); got != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", host, got, want)
		}
	}
}
