package slackbot

import (
	"context"
	"errors"
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
//
// It never gives up while ctx lasts. slack-go's client ends for good when
// apps.connections.open answers invalid_auth (a wrong or revoked app
// token, or a one-off error), and retries other failures on its own timer;
// RunSocketMode instead ends each failed attempt and retries it itself,
// on the bot's clock, after a wait that doubles from one second up to two
// minutes (or what a 429 asked for) and starts over once a connection was
// up. Every failure is logged, an auth failure as an error naming
// slack.app_token. SocketModeStatus and SocketModeReady report the
// connection's state (for /metrics and /readyz).
func (b *Bot) RunSocketMode(ctx context.Context) error {
	if b.opts.AppToken == "" {
		return errors.New("slackbot: Socket Mode needs slack.app_token (an xapp-… token with connections:write)")
	}
	b.socket.start(b.clock.Now())
	defer func() { b.socket.stop(b.clock.Now()) }()
	inARow := 0
	for {
		res := b.socketAttempt(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if res.connected {
			inARow = 0
		}
		if res.err == nil {
			continue // the connection ended without a failed attempt: reconnect at once
		}
		inARow++
		wait := socketBackoff(inARow, retryAfterOf(res.err))
		auth := isSocketAuthError(res.err)
		b.socket.failed(res.err, auth)
		if auth {
			b.log.Error("slack refused the app-level token for Socket Mode, so no click or slash command reaches signoff: fix slack.app_token (an xapp-… token with the connections:write scope); retrying",
				"err", res.err.Error(), "attempt", inARow, "retry_in", wait)
		} else {
			b.log.Warn("slack socket mode connection failed; retrying",
				"err", res.err.Error(), "attempt", inARow, "retry_in", wait)
		}
		select {
		case <-b.clock.After(wait):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// socketResult is how one Socket Mode attempt ended.
type socketResult struct {
	// connected reports whether a websocket was up during the attempt.
	connected bool
	// err is why a connection could not be opened; nil when the attempt
	// ended otherwise (ctx ended).
	err error
}

// socketAttempt runs one slack-go Socket Mode client until a connection
// cannot be opened or ctx ends, dispatching what arrives. The client's
// connection events are handled here, in order: "connected" marks the
// websocket up; "connecting" after that marks it down (the client
// reconnects after a drop or a disconnect request); "connection_error"
// ends the attempt (the client would retry on its own timer); a refused
// token ends the client itself (RunContext returns the error).
func (b *Bot) socketAttempt(ctx context.Context) socketResult {
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	client := socketmode.New(b.api, socketmode.OptionLog(slog.NewLogLogger(b.log.Handler(), slog.LevelDebug)))
	h := socketmode.NewSocketmodeHandler(client)
	b.registerSocketHandlers(h)
	done := make(chan error, 1)
	go func() { done <- client.RunContext(actx) }()
	var res socketResult
	for {
		select {
		case err := <-done:
			if b.socket.down(b.clock.Now()) {
				b.log.Warn("slack socket mode connection lost")
			}
			if res.err == nil && ctx.Err() == nil {
				res.err = err
				if err == nil {
					res.err = errors.New("the socket mode client stopped")
				}
			}
			return res
		case evt := <-client.Events:
			switch evt.Type {
			case socketmode.EventTypeConnecting:
				if b.socket.down(b.clock.Now()) {
					b.log.Warn("slack socket mode connection lost; reconnecting")
				}
			case socketmode.EventTypeConnected:
				res.connected = true
				b.socket.up(b.clock.Now())
				b.log.Info("slack socket mode connected")
			case socketmode.EventTypeConnectionError:
				if res.err == nil {
					res.err = errors.New("connection failed")
					if ce, ok := evt.Data.(*slack.ConnectionErrorEvent); ok && ce.ErrorObj != nil {
						res.err = ce.ErrorObj
					}
				}
				cancel() // retry on the bot's clock, not the client's
			case socketmode.EventTypeInvalidAuth:
				// RunContext returns the error next.
			default:
				h.DispatchEvent(evt)
			}
		}
	}
}

// registerSocketHandlers routes Socket Mode events to handleSocketEvent.
// Connection events are socketAttempt's.
func (b *Bot) registerSocketHandlers(h *socketmode.SocketmodeHandler) {
	route := func(evt *socketmode.Event, c *socketmode.Client) { b.handleSocketEvent(evt, c) }
	h.Handle(socketmode.EventTypeInteractive, route)
	h.Handle(socketmode.EventTypeSlashCommand, route)
	h.Handle(socketmode.EventTypeEventsAPI, route)
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
		cb, ok := evt.Data.(slack.InteractionCallback)
		if !ok || redelivered {
			ackWith()
			return
		}
		if why := b.tenantProblem(cb.Team.ID, cb.Enterprise.ID); why != "" {
			ackWith()
			b.rejectCallback(b.work.Context(), cb.Team.ID, why, socketSource)
			return
		}
		if resp := b.acceptInteraction(cb, socketSource); resp != nil {
			ackWith(resp)
			return
		}
		ackWith()
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
