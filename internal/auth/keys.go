package auth

import (
	"bufio"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Key is a publisher API key as the server keeps it: a name and the SHA-256 of the key. The
// name is the publisher's identity (its idempotency keys and rate limit), so a key can be rotated
// under the same name without losing either.
type Key struct {
	Name string
	Hash [sha256.Size]byte
}

// KeyPrefix starts every generated key, so a leaked key is easy to recognise (and to scan for).
const KeyPrefix = "hk_"

// NewKey returns a new random publisher key.
func NewKey() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand panics if the system cannot supply randomness)
	return KeyPrefix + base64.RawURLEncoding.EncodeToString(b)
}

// HashKey returns the form of key to put in configuration: "sha256:<hex>".
func HashKey(key string) string {
	h := sha256.Sum256([]byte(key))
	return "sha256:" + hex.EncodeToString(h[:])
}

var keyName = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// ParseKeys reads publisher keys, one "name=sha256:<hex>" entry per line or comma-separated. With
// allowPlain (a file, which the operator protects), an entry may also be "name=<key>"; on the
// command line or in the environment only hashes are accepted, since those leak into process
// listings. A name may be left out ("sha256:<hex>"); it is then derived from the hash.
func ParseKeys(text string, allowPlain bool) ([]Key, error) {
	var keys []Key
	names := map[string]bool{}
	hashes := map[[sha256.Size]byte]bool{}
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 4096), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		text := sc.Text()
		if strings.HasPrefix(strings.TrimSpace(text), "#") {
			continue
		}
		for _, entry := range strings.Split(text, ",") {
			entry = strings.TrimSpace(entry)
			if entry == "" {
				continue
			}
			k, err := parseKey(entry, allowPlain)
			if err != nil {
				return nil, fmt.Errorf("publisher keys, line %d: %w", line, err)
			}
			if names[k.Name] {
				return nil, fmt.Errorf("publisher keys, line %d: the name %q is used twice", line, k.Name)
			}
			if hashes[k.Hash] {
				return nil, fmt.Errorf("publisher keys, line %d: the same key is configured twice", line)
			}
			names[k.Name], hashes[k.Hash] = true, true
			keys = append(keys, k)
		}
	}
	return keys, sc.Err()
}

// parseKey reads one entry. Its errors never quote the entry: it may be a key.
func parseKey(entry string, allowPlain bool) (Key, error) {
	var k Key
	// "name=value" only when the part before "=" is a name: a plain key may itself hold "="
	// (base64 padding), and must not be split into a name and the rest.
	name, value, named := strings.Cut(entry, "=")
	if !named || !keyName.MatchString(name) || value == "" {
		name, value = "", entry
	}
	if h, ok := strings.CutPrefix(value, "sha256:"); ok {
		b, err := hex.DecodeString(h)
		if err != nil || len(b) != sha256.Size {
			return k, fmt.Errorf("%s: a hash is sha256: and 64 hex digits", nameOr(name))
		}
		copy(k.Hash[:], b)
	} else {
		if !allowPlain {
			return k, fmt.Errorf("%s: give keys as name=sha256:<hex> hashes here (herald keygen prints them); plain keys only in --publisher-key-file", nameOr(name))
		}
		if len(value) < 16 || strings.ContainsAny(value, " \t.") {
			return k, fmt.Errorf("%s: a key must be at least 16 characters, without spaces or dots", nameOr(name))
		}
		k.Hash = sha256.Sum256([]byte(value))
	}
	k.Name = name
	if k.Name == "" {
		k.Name = "key-" + hex.EncodeToString(k.Hash[:4])
	}
	return k, nil
}

func nameOr(name string) string {
	if name == "" {
		return "an unnamed entry"
	}
	return strconv.Quote(name)
}

// keyring matches presented keys against the configured hashes in constant time.
type keyring struct{ keys []Key }

func newKeyring(keys []Key) *keyring { return &keyring{keys: keys} }

// match compares the presented key's hash with every configured one, without stopping at the
// first match, so the time taken says nothing about which key, or how much of one, matched.
func (k *keyring) match(presented string) (Key, bool) {
	h := sha256.Sum256([]byte(presented))
	found := -1
	for i := range k.keys {
		if subtle.ConstantTimeCompare(h[:], k.keys[i].Hash[:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return Key{}, false
	}
	return k.keys[found], true
}
