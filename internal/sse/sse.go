// Package sse encodes the Server-Sent Events wire format
// (https://html.spec.whatwg.org/multipage/server-sent-events.html).
//
// The functions append to a byte slice so the caller controls buffering: a frame shared by many
// connections is encoded once, and a connection writes a batch of frames with one flush.
package sse

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
)

// ErrField is returned for an id or event type that would break the framing: a line break lets
// the value inject fields of its own, and a NUL makes browsers ignore an id.
var ErrField = errors.New("sse: id and event type must not contain CR, LF or NUL")

// ValidField reports whether s can be an id or event type.
func ValidField(s string) bool {
	return !strings.ContainsAny(s, "\r\n\x00")
}

// AppendEvent appends one event. id and typ may be empty (omitted). data is split at every line
// break (CRLF, LF or CR) into several data lines, which the client joins back with LF.
func AppendEvent(dst []byte, id, typ string, data []byte) ([]byte, error) {
	if !ValidField(id) || !ValidField(typ) {
		return dst, ErrField
	}
	if id != "" {
		dst = AppendID(dst, id)
	}
	if typ != "" {
		dst = append(dst, "event: "...)
		dst = append(dst, typ...)
		dst = append(dst, '\n')
	}
	dst = AppendData(dst, data)
	return append(dst, '\n'), nil
}

// AppendID appends an id field; the caller has checked it with ValidField.
func AppendID(dst []byte, id string) []byte {
	dst = append(dst, "id: "...)
	dst = append(dst, id...)
	return append(dst, '\n')
}

// AppendData appends data as one data line per line of data; nothing ends the event.
func AppendData(dst, data []byte) []byte {
	for {
		i := bytes.IndexAny(data, "\r\n")
		if i < 0 {
			break
		}
		dst = append(dst, "data: "...)
		dst = append(dst, data[:i]...)
		dst = append(dst, '\n')
		if data[i] == '\r' && i+1 < len(data) && data[i+1] == '\n' {
			i++
		}
		data = data[i+1:]
	}
	dst = append(dst, "data: "...)
	dst = append(dst, data...)
	return append(dst, '\n')
}

// AppendComment appends a comment line, which clients ignore: used to open a stream and as a
// heartbeat that keeps proxies from timing an idle stream out. Line breaks in text become spaces.
func AppendComment(dst []byte, text string) []byte {
	dst = append(dst, ':')
	if text != "" {
		dst = append(dst, ' ')
		for i := 0; i < len(text); i++ {
			c := text[i]
			if c == '\r' || c == '\n' {
				c = ' '
			}
			dst = append(dst, c)
		}
	}
	return append(dst, '\n', '\n')
}

// AppendRetry appends the reconnection delay hint in milliseconds.
func AppendRetry(dst []byte, ms int64) []byte {
	dst = append(dst, "retry: "...)
	dst = strconv.AppendInt(dst, ms, 10)
	return append(dst, '\n', '\n')
}
