package store

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/heraldhq/herald"
)

// EpochIDGap is how far a new epoch moves the next notification id past the last one given
// before it. The history a restore replaced gave ids after that point that clients may still
// hold (in links, read marks, page positions); beyond the gap they name nothing. 2^32 ids is more
// than any history gives between a backup and its restore, and leaves room for two billion
// restores.
const EpochIDGap = 1 << 32

// NewEpoch returns a fresh random epoch: 8 lowercase hex digits.
func NewEpoch() string {
	b := make([]byte, 4)
	rand.Read(b) // never fails (crypto/rand panics rather than return an error)
	return hex.EncodeToString(b)
}

// IdentityOf makes an Identity from a store's meta rows, checking each, so that a damaged or
// hand-edited row stops the store at open rather than puts odd bytes into every cursor.
func IdentityOf(meta map[string]string) (herald.Identity, error) {
	id := herald.Identity{ID: meta["store_id"], Epoch: meta["epoch"]}
	if len(id.ID) < 16 || len(id.ID) > 64 || !isHex(id.ID) {
		return id, fmt.Errorf("store identity: store_id %q is not 16-64 hex digits", id.ID)
	}
	if !herald.ValidEpoch(id.Epoch) {
		return id, fmt.Errorf("store identity: epoch %q is not 1-16 hex digits", id.Epoch)
	}
	since, err := strconv.ParseInt(meta["epoch_since"], 10, 64)
	if err != nil || since < 0 {
		return id, fmt.Errorf("store identity: epoch_since %q is not an id", meta["epoch_since"])
	}
	id.Since = since
	return id, nil
}

func isHex(s string) bool {
	_, err := hex.DecodeString(s)
	return err == nil && s == strings.ToLower(s)
}

// EpochStart is herald.Store.EpochStart for a store whose epoch began after the id since, given
// start, which finds where the epoch begins in one stream (user id or BroadcastStream).
func EpochStart(user string, since int64, start func(stream string) (uint64, error)) (herald.Cursor, error) {
	var c herald.Cursor
	if since == 0 {
		return c, nil // the first epoch: every stream is wholly of it
	}
	for _, stream := range []string{user, herald.BroadcastStream} {
		seq, err := start(stream)
		if err != nil {
			return herald.Cursor{}, err
		}
		c = c.With(stream, seq)
	}
	return c, nil
}
