package app

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/config"
	"github.com/heraldhq/herald/internal/httpapi"
	"github.com/heraldhq/herald/internal/metrics"
	"github.com/heraldhq/herald/internal/push"
)

// webPush is a node's part of Web Push (docs/push.md): the presence it records for the
// senders of every node, and its sender of the outbox. Both run from Run until shutdown,
// stopped before the store closes.
type webPush struct {
	presence *push.Presence
	sender   *push.Sender
	api      *httpapi.PushOptions
}

// presenceInterval is how often a node records the users with streams open on it: often
// enough that a user online throughout a push's delay is seen online (a third of it), and at
// most every 10 seconds.
func presenceInterval(delay time.Duration) time.Duration {
	return max(10*time.Millisecond, min(10*time.Second, delay/3))
}

// newWebPush builds Web Push from cfg; nil when push is off. The VAPID private key is read
// here and never logged.
func newWebPush(cfg config.Config, store herald.Store, m *metrics.Metrics, log *slog.Logger) (*webPush, error) {
	if !cfg.PushEnabled() {
		return nil, nil
	}
	raw, err := cfg.ReadVAPIDPrivateKey()
	if err != nil {
		return nil, err
	}
	keys, err := push.ParsePrivateKey(raw)
	if err != nil {
		return nil, fmt.Errorf("vapid private key: %w", err)
	}
	hosts, err := push.ParseHosts(cfg.PushHosts)
	if err != nil {
		return nil, err
	}
	endpoints := push.Endpoints{Hosts: hosts, Loopback: cfg.PushAllowLoopback}
	presence := push.NewPresence(store, presenceInterval(cfg.PushDelay), log)
	sender, err := push.New(push.Options{
		Store:      store,
		Keys:       keys,
		Subject:    cfg.VAPIDSubject,
		Delay:      cfg.PushDelay,
		TTL:        cfg.PushTTL,
		Lease:      cfg.PushLease,
		Retry:      cfg.PushRetry,
		Workers:    cfg.PushWorkers,
		Presence:   presence,
		Muter:      pushMutes{store},
		Logger:     log,
		Registerer: m.Registry,
	})
	if err != nil {
		return nil, err
	}
	return &webPush{presence: presence, sender: sender, api: &httpapi.PushOptions{
		PublicKey:        keys.Public,
		CheckEndpoint:    endpoints.Check,
		MaxSubscriptions: cfg.PushMaxSubscriptions,
	}}, nil
}

func (p *webPush) start(cfg config.Config, log *slog.Logger) {
	if p != nil {
		// The public key only: the private key is never logged.
		log.Info("web push on", "public_key", p.api.PublicKey, "delay", cfg.PushDelay, "ttl", cfg.PushTTL, "hosts", cfg.PushHosts,
			"loopback_endpoints", cfg.PushAllowLoopback)
		p.presence.Start()
		p.sender.Start()
	}
}

func (p *webPush) stop() {
	if p != nil {
		p.sender.Close()
		p.presence.Close()
	}
}

// hubPresence is the hub's Presence hook; nil when push is off.
func (p *webPush) hubPresence() func(string, bool) {
	if p == nil {
		return nil
	}
	return p.presence.Changed
}

// apiOptions are the API's push options; nil when push is off.
func (p *webPush) apiOptions() *httpapi.PushOptions {
	if p == nil {
		return nil
	}
	return p.api
}

// pushMutes is the push sender's view of preferences: the user's rules of the push channel,
// read from the store when a push is about to be sent (so a rule set after the publish holds).
type pushMutes struct{ store herald.Store }

func (m pushMutes) MutedPush(ctx context.Context, user, typ, topic string) (bool, error) {
	p, err := m.store.Preferences(ctx, user)
	if err != nil {
		return false, err
	}
	return p.Muted(herald.ChannelPush, typ, topic), nil
}
