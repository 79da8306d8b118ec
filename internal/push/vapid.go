package push

import (
	"crypto/ecdh"
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/SherClockHolmes/webpush-go"
)

// Keys are a VAPID key pair (RFC 8292) in the form browsers and push services take them:
// base64url without padding, the public key an uncompressed P-256 point.
type Keys struct {
	Public  string
	Private string
}

// GenerateKeys makes a new VAPID key pair.
func GenerateKeys() (Keys, error) {
	priv, pub, err := webpush.GenerateVAPIDKeys()
	if err != nil {
		return Keys{}, fmt.Errorf("generate VAPID keys: %w", err)
	}
	return Keys{Public: pub, Private: priv}, nil
}

// ParsePrivateKey checks a VAPID private key (base64url, with or without padding, of a 32-byte
// P-256 scalar) and returns the pair with its public key derived from it, so that the two can
// never disagree. Errors never quote the key.
func ParsePrivateKey(s string) (Keys, error) {
	s = strings.TrimSpace(s)
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil {
		return Keys{}, fmt.Errorf("the VAPID private key is not base64url (herald vapid makes one)")
	}
	priv, err := ecdh.P256().NewPrivateKey(raw)
	if err != nil {
		return Keys{}, fmt.Errorf("the VAPID private key is not a P-256 private key (herald vapid makes one)")
	}
	return Keys{
		Public:  base64.RawURLEncoding.EncodeToString(priv.PublicKey().Bytes()),
		Private: base64.RawURLEncoding.EncodeToString(raw),
	}, nil
}
