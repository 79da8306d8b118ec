package config

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"time"
)

// DefaultPushHosts are the push services of the browsers in use: Chrome and Chromium-based
// browsers (FCM), Firefox (Mozilla autopush), Safari (Apple) and Edge (WNS).
const DefaultPushHosts = "fcm.googleapis.com,updates.push.services.mozilla.com,web.push.apple.com,*.notify.windows.com"

// PushConfig are the settings of Web Push (issue 18). Push is off unless a VAPID private key
// is given.
type PushConfig struct {
	// VAPIDPrivateKey is the VAPID private key (base64url, as herald vapid prints it); prefer
	// VAPIDPrivateKeyFile or the environment. The public key is derived from it.
	VAPIDPrivateKey     string
	VAPIDPrivateKeyFile string
	// VAPIDSubject is the contact push services see: mailto:… or https://….
	VAPIDSubject string
	// PushDelay is how long a notification waits, unread and unseen, before it is pushed to a
	// user who had no stream open since it was committed.
	PushDelay time.Duration
	// PushTTL drops a push not sent this long after its notification's commit.
	PushTTL time.Duration
	// PushLease is how long a node's claim on a push holds (another node sends it after).
	PushLease time.Duration
	// PushRetry is the first delay after a failed attempt; it doubles up to 10 minutes.
	PushRetry time.Duration
	// PushWorkers bounds the pushes one node sends at once.
	PushWorkers int
	// PushMaxSubscriptions bounds one user's subscriptions (browsers).
	PushMaxSubscriptions int
	// PushHosts are the push services accepted in subscriptions (comma-separated; *.domain).
	PushHosts string
	// PushAllowLoopback also accepts endpoints on loopback addresses, over http too (tests).
	PushAllowLoopback bool
}

func defaultPush() PushConfig {
	return PushConfig{
		PushDelay:            30 * time.Second,
		PushTTL:              4 * time.Hour,
		PushLease:            time.Minute,
		PushRetry:            5 * time.Second,
		PushWorkers:          16,
		PushMaxSubscriptions: 10,
		PushHosts:            DefaultPushHosts,
	}
}

func (c *Config) pushFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.VAPIDPrivateKey, "vapid-private-key", c.VAPIDPrivateKey, "VAPID private key of Web Push, as herald vapid prints it; setting it turns push on (prefer HERALD_VAPID_PRIVATE_KEY or --vapid-private-key-file: flags show in process lists)")
	fs.StringVar(&c.VAPIDPrivateKeyFile, "vapid-private-key-file", c.VAPIDPrivateKeyFile, "file holding the VAPID private key (herald vapid -o FILE writes one)")
	fs.StringVar(&c.VAPIDSubject, "vapid-subject", c.VAPIDSubject, "contact given to push services with every push: mailto:you@example.com or an https URL (required with push)")
	fs.DurationVar(&c.PushDelay, "push-delay", c.PushDelay, "a notification still unread and unseen this long after its commit is pushed to its user, if they had no stream open on any node since")
	fs.DurationVar(&c.PushTTL, "push-ttl", c.PushTTL, "a push not delivered this long after its notification's commit is dropped (and counted)")
	fs.DurationVar(&c.PushLease, "push-lease", c.PushLease, "how long a node's claim on a push holds; a node killed while sending lets another send it after this")
	fs.DurationVar(&c.PushRetry, "push-retry", c.PushRetry, "first delay after a failed push (5xx, network); it doubles each attempt, up to 10m")
	fs.IntVar(&c.PushWorkers, "push-workers", c.PushWorkers, "pushes one node sends at once")
	fs.IntVar(&c.PushMaxSubscriptions, "push-max-subscriptions", c.PushMaxSubscriptions, "push subscriptions (browsers) one user may register")
	fs.StringVar(&c.PushHosts, "push-hosts", c.PushHosts, "comma-separated push service hosts accepted in subscriptions (*.domain for any name under it); Herald POSTs only to these")
	fs.BoolVar(&c.PushAllowLoopback, "push-allow-loopback", c.PushAllowLoopback, "also accept push endpoints on loopback addresses, over http too (tests, a local push service)")
}

// PushEnabled reports whether Web Push is configured.
func (c *Config) PushEnabled() bool { return c.VAPIDPrivateKey != "" || c.VAPIDPrivateKeyFile != "" }

// ReadVAPIDPrivateKey returns the VAPID private key, from --vapid-private-key or the file
// --vapid-private-key-file names; "" when push is off.
func (c *Config) ReadVAPIDPrivateKey() (string, error) {
	if c.VAPIDPrivateKeyFile == "" {
		return c.VAPIDPrivateKey, nil
	}
	b, err := os.ReadFile(c.VAPIDPrivateKeyFile)
	if err != nil {
		return "", fmt.Errorf("vapid-private-key-file: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

func (c *Config) validatePush(bad func(string, ...any)) {
	if c.VAPIDPrivateKey != "" && c.VAPIDPrivateKeyFile != "" {
		bad("vapid-private-key and vapid-private-key-file are two ways of giving one key; use one")
	}
	if c.PushEnabled() {
		s := c.VAPIDSubject
		if !(strings.HasPrefix(s, "mailto:") && strings.Contains(s, "@") || strings.HasPrefix(s, "https://") && len(s) > 8) || strings.ContainsAny(s, " \t\r\n") {
			bad("vapid-subject must be a mailto: address or an https URL where push services can reach you (as in mailto:ops@example.com), not %q", s)
		}
	}
	for name, d := range map[string]time.Duration{"push-delay": c.PushDelay, "push-ttl": c.PushTTL, "push-lease": c.PushLease, "push-retry": c.PushRetry} {
		if d <= 0 {
			bad("%s must be positive, not %s", name, d)
		}
	}
	if c.PushTTL > 0 && c.PushTTL <= c.PushDelay {
		bad("push-ttl (%s) must be longer than push-delay (%s): every fallback push would be dropped", c.PushTTL, c.PushDelay)
	}
	if c.PushWorkers < 1 || c.PushWorkers > 1024 {
		bad("push-workers must be 1-1024, not %d", c.PushWorkers)
	}
	if c.PushMaxSubscriptions < 1 {
		bad("push-max-subscriptions must be at least 1, not %d", c.PushMaxSubscriptions)
	}
	for _, h := range splitComma(c.PushHosts) {
		name := strings.TrimPrefix(strings.ToLower(h), "*.")
		if !hostNamePattern.MatchString(name) || !strings.Contains(name, ".") {
			bad("push-hosts: %q is not a host name or *.domain", h)
		}
	}
}
