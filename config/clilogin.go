package config

import (
	"fmt"
	"strings"
)

// validateCLIClient checks idp.cli_client_id, the public client of
// `signoff login`: it names a client at idp.issuer, so it needs one, and a
// requesters entry must not expect the same issuer and audience (a login
// token would then pass for a CI token, or the other way round).
func (c *Config) validateCLIClient(ps *problems) {
	id := c.IdP.CLIClientID
	if id == "" {
		return
	}
	if strings.TrimSpace(id) != id {
		ps.add("idp.cli_client_id", "%q has leading or trailing spaces", id)
	}
	if c.IdP.Issuer == "" {
		ps.add("idp.cli_client_id", "needs idp.issuer: signoff login signs people in at that provider with this client")
		return
	}
	for i, r := range c.Requesters {
		if r.Issuer == c.IdP.Issuer && r.Audience == id {
			ps.add(fmt.Sprintf("requesters[%d].audience", i), "%q is also idp.cli_client_id at the same issuer: a signoff login token could not be told from a CI token of requester %s; give the command line its own client at the IdP", id, r.Name)
		}
	}
}
