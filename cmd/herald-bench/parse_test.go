package main

import (
	"fmt"
	"strings"
	"testing"
)

func TestBodyFeed(t *testing.T) {
	events := ": hello\n\nid: 1.0\nevent: b\ndata: {\"bn\":1,\"bt\":2}\n\nid: 2.0\r\ndata: {\"bn\":2}\r\n\r\n"
	want := []string{": hello", "", "id: 1.0", "event: b", `data: {"bn":1,"bt":2}`, "", "id: 2.0", `data: {"bn":2}`, ""}
	chunk := func(parts ...string) string {
		var b strings.Builder
		for _, p := range parts {
			fmt.Fprintf(&b, "%x\r\n%s\r\n", len(p), p)
		}
		return b.String()
	}
	tests := []struct {
		name    string
		chunked bool
		in      string
		ok      bool
	}{
		{"close-delimited", false, events, true},
		{"chunked, one chunk", true, chunk(events), true},
		{"chunked, a chunk per event and lines split across chunks", true, chunk(events[:9], events[9:30], events[30:]) + "0\r\n\r\n", true},
		{"chunked with an extension", true, strings.Replace(chunk(events), "\r\n", ";x=y\r\n", 1), true},
		{"bad chunk size", true, "zz\r\n" + events, false},
		{"chunk data longer than its size", true, "3\r\nabcdef\r\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Every way of cutting the input in two, and byte by byte: the reads' sizes must not
			// matter.
			cuts := [][]string{{tt.in}, strings.Split(tt.in, "")}
			for i := 1; i < len(tt.in); i++ {
				cuts = append(cuts, []string{tt.in[:i], tt.in[i:]})
			}
			for _, pieces := range cuts {
				d := &body{chunked: tt.chunked}
				var got []string
				ok := true
				for _, p := range pieces {
					ok = ok && d.feed([]byte(p), func(l []byte) { got = append(got, string(l)) })
				}
				if ok != tt.ok {
					t.Fatalf("pieces %q: ok = %v, want %v", pieces, ok, tt.ok)
				}
				if ok && fmt.Sprint(got) != fmt.Sprint(want) {
					t.Fatalf("pieces %q: lines %q, want %q", pieces, got, want)
				}
			}
		})
	}
}
