package main

import (
	"bytes"
	"strconv"
)

// body turns the bytes of a stream's response body, as they arrive in pieces of any size, into
// SSE lines. Herald's parked streams are close-delimited and the others chunked; chunked bodies
// are decoded here rather than through net/http, so that the readers can work on raw sockets.
type body struct {
	chunked bool
	state   int // for a chunked body: inSize, inData, afterData, ended
	left    int // bytes of chunk data still to come (inData)
	size    []byte
	line    []byte // a line begun in an earlier piece
}

const (
	inSize = iota
	inData
	afterData
	ended
)

// feed decodes b and calls onLine for every complete line, without its line ending. It reports
// false on a malformed chunked body.
func (d *body) feed(b []byte, onLine func([]byte)) bool {
	if !d.chunked {
		d.lines(b, onLine)
		return true
	}
	for len(b) > 0 {
		switch d.state {
		case inData:
			n := min(d.left, len(b))
			d.lines(b[:n], onLine)
			b, d.left = b[n:], d.left-n
			if d.left == 0 {
				d.state = afterData
			}
		case inSize, afterData:
			i := bytes.IndexByte(b, '\n')
			if i < 0 {
				d.size = append(d.size, b...)
				return len(d.size) <= 64
			}
			d.size = append(d.size, b[:i]...)
			b = b[i+1:]
			if d.state == afterData { // the CRLF that ends a chunk's data
				if len(bytes.TrimSpace(d.size)) > 0 {
					return false
				}
				d.size, d.state = d.size[:0], inSize
				continue
			}
			hex := d.size
			if j := bytes.IndexByte(hex, ';'); j >= 0 {
				hex = hex[:j]
			}
			n, err := strconv.ParseUint(string(bytes.TrimSpace(hex)), 16, 31)
			if err != nil {
				return false
			}
			d.size = d.size[:0]
			if n == 0 {
				d.state = ended
				return true
			}
			d.state, d.left = inData, int(n)
		case ended:
			return true
		}
	}
	return true
}

func (d *body) lines(b []byte, onLine func([]byte)) {
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			d.line = append(d.line, b...)
			return
		}
		line := b[:i]
		if len(d.line) > 0 {
			d.line = append(d.line, line...)
			line = d.line
		}
		onLine(bytes.TrimSuffix(line, []byte("\r")))
		d.line = d.line[:0]
		b = b[i+1:]
	}
}
