package main

import (
	"github.com/signoff-dev/signoff/bot"
	"github.com/signoff-dev/signoff/bot/slackbot"
)

// watchSlackSocketMode reports the Slack Socket Mode connection on the
// front door: /readyz fails while no websocket has been up for longer than
// slackbot.DefaultSocketModeGrace (after start or a drop), and /metrics
// shows the connection and its failed attempts.
func watchSlackSocketMode(front *bot.Server, slack *slackbot.Bot) {
	front.AddReadinessCheck("slack_socket_mode", slack.SocketModeReady)
	front.AddMetrics(func() []bot.Metric { return slackSocketMetrics(slack.SocketModeStatus()) })
}

// slackSocketMetrics are the Socket Mode families of /metrics (listed in
// bot/metrics.go).
func slackSocketMetrics(st slackbot.SocketModeStatus) []bot.Metric {
	connected := 0.0
	if st.Connected {
		connected = 1
	}
	return []bot.Metric{
		{
			Name: "signoff_slack_socket_connected", Type: "gauge",
			Help:    "1 while a Slack Socket Mode websocket is up, else 0 (no click or slash command reaches signoff).",
			Samples: []bot.MetricSample{{Value: connected}},
		},
		{
			Name: "signoff_slack_socket_connection_failures_total", Type: "counter",
			Help:    "Failed attempts to open a Slack Socket Mode connection (apps.connections.open refused or failing, or the websocket not opening).",
			Samples: []bot.MetricSample{{Value: float64(st.Failures)}},
		},
	}
}
