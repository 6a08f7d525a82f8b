package teamsbot

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/internal/text"
)

// maxRememberedConversations bounds conversationCache; past it the cache is
// cleared (it only saves writes).
const maxRememberedConversations = 10_000

// conversationCache remembers the conversation references stored lately,
// so that not every activity writes to the store, and the team of each
// channel seen lately.
type conversationCache struct {
	mu   sync.Mutex
	seen map[string]string // conversation id → tenant + service URL stored
	// teams maps a channel's id to its team's, as verified activities
	// from the channel said.
	teams map[string]string
}

func newConversationCache() *conversationCache {
	return &conversationCache{seen: map[string]string{}, teams: map[string]string{}}
}

// rememberTeam notes that channel belongs to team.
func (c *conversationCache) rememberTeam(channel, team string) {
	if channel == "" || team == "" || channel == team {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.teams) >= maxRememberedConversations {
		clear(c.teams)
	}
	c.teams[channel] = team
}

// teamOf returns the team of channel, or "" when no activity said.
func (c *conversationCache) teamOf(channel string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.teams[channel]
}

func (c *conversationCache) known(id, value string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.seen[id] == value
}

func (c *conversationCache) remember(id, value string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.seen) >= maxRememberedConversations {
		clear(c.seen)
	}
	c.seen[id] = value
}

// baseConversationID strips the ";messageid=…" Teams appends to a
// channel conversation's id when an activity belongs to a thread.
func baseConversationID(id string) string {
	base, _, _ := strings.Cut(id, ";")
	return base
}

// conversationRefs lists the conversations a verified activity tells us
// the service URL of: its own conversation and, in a team, the channel and
// the team (whose id is its General channel's).
func conversationRefs(act *activity, cd channelData, tenant string) []approvals.Conversation {
	var out []approvals.Conversation
	add := func(id, name string) {
		if id == "" {
			return
		}
		for i := range out {
			if out[i].ID == id {
				if out[i].Name == "" {
					out[i].Name = text.TruncateRunes(name, 200)
				}
				return
			}
		}
		out = append(out, approvals.Conversation{Platform: Platform, ID: id, ServiceURL: act.ServiceURL, TenantID: tenant, Name: text.TruncateRunes(name, 200)})
	}
	add(baseConversationID(act.Conversation.ID), firstNonEmpty(cd.Channel.Name, act.Conversation.Name))
	add(cd.Channel.ID, cd.Channel.Name)
	add(cd.Team.ID, cd.Team.Name)
	return out
}

// learn stores the conversation references a verified activity carries,
// skipping those already stored with the same service URL.
func (b *Bot) learn(ctx context.Context, act *activity, cd channelData, tenant string) error {
	b.convs.rememberTeam(cd.Channel.ID, cd.Team.ID)
	if act.ServiceURL == "" {
		return nil
	}
	var todo []approvals.Conversation
	for _, c := range conversationRefs(act, cd, tenant) {
		if !b.convs.known(c.ID, c.TenantID+"\x00"+c.ServiceURL) {
			todo = append(todo, c)
		}
	}
	if len(todo) == 0 {
		return nil
	}
	err := b.svc.RememberConversations(ctx, todo)
	if err != nil {
		return fmt.Errorf("teamsbot: remember conversations: %w", err)
	}
	for _, c := range todo {
		b.convs.remember(c.ID, c.TenantID+"\x00"+c.ServiceURL)
		b.log.Debug("learned a teams conversation", "conversation", c.ID, "service_url", c.ServiceURL, "tenant", c.TenantID)
	}
	return nil
}

// serviceURLFor returns the service URL to reach conversation through: the
// one learned from its latest activity, else the one its card was posted
// through (cardURL, for updates), else the configured teams.service_url.
// It fails with a clear error wrapping errNoServiceURL when none is known.
// A candidate whose host is not in teams.service_url_hosts (stored before
// the list changed, say) is skipped with a warning: the bot's token never
// goes there.
func (b *Bot) serviceURLFor(ctx context.Context, conversation, cardURL string) (string, error) {
	c, _, err := b.svc.Conversation(ctx, Platform, conversation)
	if err != nil {
		return "", err
	}
	refused := ""
	for _, cand := range []struct{ from, url string }{
		{"the conversation's stored reference", c.ServiceURL},
		{"the card", cardURL},
		{"teams.service_url", b.opts.ServiceURL},
	} {
		if cand.url == "" {
			continue
		}
		if _, err := b.hosts.CheckURL(cand.url); err != nil {
			b.log.Warn("a teams service URL is not used: its host is not in teams.service_url_hosts", "conversation", conversation, "from", cand.from, "service_url", text.TruncateRunes(cand.url, 200), "err", err)
			refused = " (a service URL known for it names a host that is not in teams.service_url_hosts, and is not used)"
			continue
		}
		return cand.url, nil
	}
	return "", fmt.Errorf("cannot reach Teams conversation %q: %w for it%s (signoff learns it when the app is installed in the team or chat, or from any activity there); install the signoff app there, or set teams.service_url (e.g. https://smba.trafficmanager.net/teams/)", conversation, errNoServiceURL, refused)
}

func firstNonEmpty(v ...string) string {
	for _, s := range v {
		if s != "" {
			return s
		}
	}
	return ""
}
