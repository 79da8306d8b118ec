package herald

import (
	"math"
	"strconv"
	"strings"
)

// Cursor is a position in a user's feed: the last sequence number seen of the user's own stream
// and of the broadcast stream. Its text form "<user>.<broadcast>.<epoch>" is the SSE event id, so
// a client resuming with Last-Event-ID resumes both streams exactly, in the history (the store
// epoch, see Identity) they were numbered in.
//
// Two independent gap-free sequences, rather than one global id, are what keep resumption exact
// when several writers commit concurrently: within a stream, a sequence number is assigned under
// the stream's lock in the committing transaction, so no lower number can commit later.
type Cursor struct {
	User      uint64
	Broadcast uint64
}

// String returns the cursor's wire form.
func (c Cursor) String() string {
	b := make([]byte, 0, 24)
	return string(c.Append(b))
}

// Append appends the wire form to b.
func (c Cursor) Append(b []byte) []byte {
	b = strconv.AppendUint(b, c.User, 10)
	b = append(b, '.')
	return strconv.AppendUint(b, c.Broadcast, 10)
}

// Of returns the cursor's position in stream: the broadcast part for BroadcastStream, else the
// user part.
func (c Cursor) Of(stream string) uint64 {
	if stream == BroadcastStream {
		return c.Broadcast
	}
	return c.User
}

// With returns c with stream's position set to seq.
func (c Cursor) With(stream string, seq uint64) Cursor {
	if stream == BroadcastStream {
		c.Broadcast = seq
	} else {
		c.User = seq
	}
	return c
}

// AppendIn appends the wire form with the store epoch it belongs to: "<user>.<broadcast>.<epoch>".
// This is the form the SSE ids carry, so a cursor from a replaced history is recognised.
func (c Cursor) AppendIn(b []byte, epoch string) []byte {
	b = c.Append(b)
	if epoch == "" {
		return b
	}
	b = append(b, '.')
	return append(b, epoch...)
}

// StringIn returns the wire form with its epoch (see AppendIn).
func (c Cursor) StringIn(epoch string) string {
	return string(c.AppendIn(make([]byte, 0, 48), epoch))
}

// ParseCursor parses the wire form "<user>.<broadcast>" of two decimal numbers, with no epoch.
func ParseCursor(s string) (Cursor, error) {
	c, epoch, err := ParsePosition(s)
	if err == nil && epoch != "" {
		return Cursor{}, Errorf(EINVALID, "cursor %q is not of the form <number>.<number>", truncate(s, 48))
	}
	return c, err
}

// ParsePosition parses a cursor as a client sends it back: "<user>.<broadcast>.<epoch>", or the
// older "<user>.<broadcast>" without an epoch, which is taken as the current one (epoch "").
func ParsePosition(s string) (Cursor, string, error) {
	bad := func() (Cursor, string, error) {
		return Cursor{}, "", Errorf(EINVALID, "cursor %q is not of the form <number>.<number>[.<epoch>]", truncate(s, 48))
	}
	if len(s) > 56 {
		return bad()
	}
	u, rest, ok := strings.Cut(s, ".")
	if !ok {
		return bad()
	}
	b, epoch, hasEpoch := strings.Cut(rest, ".")
	if hasEpoch && !ValidEpoch(epoch) {
		return bad()
	}
	uu, err1 := parseSeq(u)
	bb, err2 := parseSeq(b)
	if err1 != nil || err2 != nil {
		return bad()
	}
	return Cursor{User: uu, Broadcast: bb}, epoch, nil
}

// MaxSeq is the largest sequence number: stores keep them as signed 64-bit integers.
const MaxSeq = math.MaxInt64

// parseSeq accepts only plain decimal digits up to MaxSeq: no sign, no spaces, no leading zeros,
// so every cursor has exactly one spelling, and every parsed cursor can be queried.
func parseSeq(s string) (uint64, error) {
	if s == "" || len(s) > 19 || (len(s) > 1 && s[0] == '0') {
		return 0, strconv.ErrSyntax
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, strconv.ErrSyntax
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return uint64(n), err
}
