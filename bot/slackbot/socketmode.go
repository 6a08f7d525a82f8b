package slackbot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"
)

// socketSource names Socket Mode in callback.rejected records.
const socketSource = "socket_mode"

// acker acknowledges a Socket Mode envelope; *socketmode.Client is one.
type acker interface {
	Ack(req socketmode.Request, payload ...any) error
}

// RunSocketMode receives interactions and slash commands over Slack's
// Socket Mode websocket (authenticated by the app-level token, so no
// inbound HTTP is needed) until ctx ends, routing them through the same
// handling as the HTTP callbacks. Every envelope is acknowledged at once;
// the work follows. It needs Options.AppToken.
func (b *Bot) RunSocketMode(ctx context.Context) error {
	if b.opts.AppToken == "" {
		return errors.New("slackbot: Socket Mode needs slack.app_token (an xapp-… token with connections:write)")
	}
	client := socketmode.New(b.api, socketmode.OptionLog(slog.NewLogLogger(b.log.Handler(), slog.LevelDebug)))
	h := socketmode.NewSocketmodeHandler(client)
	b.registerSocketHandlers(h)
	err := h.RunEventLoopContext(ctx)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("slackbot: socket mode: %w", err)
}

// registerSocketHandlers routes Socket Mode events to handleSocketEvent.
func (b *Bot) registerSocketHandlers(h *socketmode.SocketmodeHandler) {
	route := func(evt *socketmode.Event, c *socketmode.Client) { b.handleSocketEvent(evt, c) }
	h.Handle(socketmode.EventTypeInteractive, route)
	h.Handle(socketmode.EventTypeSlashCommand, route)
	h.Handle(socketmode.EventTypeEventsAPI, route)
	h.Handle(socketmode.EventTypeInvalidAuth, func(*socketmode.Event, *socketmode.Client) {
		b.log.Error("slack refused the app-level token for Socket Mode; check slack.app_token")
	})
	h.Handle(socketmode.EventTypeConnectionError, func(evt *socketmode.Event, _ *socketmode.Client) {
		b.log.Warn("slack socket mode connection failed; the client reconnects", "err", fmt.Sprint(evt.Data))
	})
	h.HandleDefault(route)
}

// handleSocketEvent acknowledges the event's envelope and hands
// interactions and slash commands to the same code the HTTP callbacks
// use, after the same tenant check.
func (b *Bot) handleSocketEvent(evt *socketmode.Event, ack acker) {
	var envelope *socketmode.Request
	if evt.Request != nil && evt.Request.EnvelopeID != "" {
		envelope = evt.Request
	}
	ackWith := func(payload ...any) {
		if envelope == nil {
			return
		}
		if err := ack.Ack(*envelope, payload...); err != nil {
			b.log.Warn("could not acknowledge a socket mode envelope", "envelope", envelope.EnvelopeID, "err", err)
		}
	}
	// Slack redelivers an envelope it did not see acknowledged in time.
	redelivered := envelope != nil && b.replays.replayed("envelope:"+envelope.EnvelopeID, b.clock.Now())

	switch evt.Type {
	case socketmode.EventTypeInteractive:
		ackWith()
		cb, ok := evt.Data.(slack.InteractionCallback)
		if !ok || redelivered {
			return
		}
		if why := b.tenantProblem(cb.Team.ID, cb.Enterprise.ID); why != "" {
			b.rejectCallback(b.work.Context(), cb.Team.ID, why, socketSource)
			return
		}
		b.acceptInteraction(cb, socketSource)
	case socketmode.EventTypeSlashCommand:
		cmd, ok := evt.Data.(slack.SlashCommand)
		if !ok || redelivered {
			ackWith()
			return
		}
		if why := b.tenantProblem(cmd.TeamID, cmd.EnterpriseID); why != "" {
			ackWith()
			b.rejectCallback(b.work.Context(), cmd.TeamID, why, socketSource)
			return
		}
		if immediate := b.acceptCommand(cmd, socketSource); immediate != "" {
			ackWith(map[string]string{"response_type": slack.ResponseTypeEphemeral, "text": immediate})
			return
		}
		ackWith()
	default:
		ackWith()
	}
}
