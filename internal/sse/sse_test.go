package sse

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	gosse "github.com/tmaxmax/go-sse"
)

func TestAppendEvent(t *testing.T) {
	tests := []struct {
		name     string
		id, typ  string
		data     string
		want     string
		wantData string // what a client reads back
	}{
		{"data only", "", "", "hello", "data: hello\n\n", "hello"},
		{"id type data", "3.4", "order.shipped", `{"a":1}`, "id: 3.4\nevent: order.shipped\ndata: {\"a\":1}\n\n", `{"a":1}`},
		{"id only", "7.0", "", "x", "id: 7.0\ndata: x\n\n", "x"},
		{"type only", "", "ping", "x", "event: ping\ndata: x\n\n", "x"},
		{"empty data", "", "", "", "data: \n\n", ""},
		{"LF", "", "", "a\nb", "data: a\ndata: b\n\n", "a\nb"},
		{"CRLF", "", "", "a\r\nb", "data: a\ndata: b\n\n", "a\nb"},
		{"CR", "", "", "a\rb", "data: a\ndata: b\n\n", "a\nb"},
		{"LF CR is two breaks", "", "", "a\n\rb", "data: a\ndata: \ndata: b\n\n", "a\n\nb"},
		{"mixed", "", "", "a\r\nb\rc\nd", "data: a\ndata: b\ndata: c\ndata: d\n\n", "a\nb\nc\nd"},
		{"trailing LF", "", "", "a\n", "data: a\ndata: \n\n", "a\n"},
		{"trailing CRLF", "", "", "a\r\n", "data: a\ndata: \n\n", "a\n"},
		{"trailing CR", "", "", "a\r", "data: a\ndata: \n\n", "a\n"},
		{"only newline", "", "", "\n", "data: \ndata: \n\n", "\n"},
		{"blank lines", "", "", "\n\n", "data: \ndata: \ndata: \n\n", "\n\n"},
		{"leading space kept", "", "", " a", "data:  a\n\n", " a"},
		{"colon in data", "", "", "a: b", "data: a: b\n\n", "a: b"},
		{"field-like data", "", "", "x\nid: evil\nevent: evil\n\ndata: y", "data: x\ndata: id: evil\ndata: event: evil\ndata: \ndata: data: y\n\n", "x\nid: evil\nevent: evil\n\ndata: y"},
		{"NUL in data", "", "", "a\x00b", "data: a\x00b\n\n", "a\x00b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prefix := []byte(": prefix\n\n")
			got, err := AppendEvent(bytes.Clone(prefix), tt.id, tt.typ, []byte(tt.data))
			if err != nil {
				t.Fatalf("AppendEvent: %v", err)
			}
			if !bytes.HasPrefix(got, prefix) {
				t.Fatalf("AppendEvent lost what dst held: %q", got)
			}
			if frame := string(got[len(prefix):]); frame != tt.want {
				t.Fatalf("frame = %q, want %q", frame, tt.want)
			}
			evs := parse(t, got)
			if len(evs) != 1 {
				t.Fatalf("parsed %d events, want 1: %+v", len(evs), evs)
			}
			ev := evs[0]
			if ev.Data != tt.wantData || ev.Type != tt.typ || ev.LastEventID != tt.id {
				t.Fatalf("parsed %+v, want data %q type %q id %q", ev, tt.wantData, tt.typ, tt.id)
			}
		})
	}
}

func TestAppendEventRejectsFields(t *testing.T) {
	tests := []struct {
		name    string
		id, typ string
	}{
		{"LF in id", "1\n2", ""},
		{"CR in id", "1\r2", ""},
		{"CRLF in id", "1\r\n", ""},
		{"NUL in id", "1\x002", ""},
		{"LF in type", "", "a\ndata: injected"},
		{"CR in type", "", "a\r"},
		{"NUL in type", "", "\x00"},
		{"both bad", "\n", "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := []byte("kept")
			got, err := AppendEvent(dst, tt.id, tt.typ, []byte("data"))
			if !errors.Is(err, ErrField) {
				t.Fatalf("err = %v, want ErrField", err)
			}
			if string(got) != "kept" {
				t.Fatalf("dst changed on error: %q", got)
			}
			if ValidField(tt.id) && ValidField(tt.typ) {
				t.Fatalf("ValidField accepts both %q and %q", tt.id, tt.typ)
			}
		})
	}
}

func TestValidField(t *testing.T) {
	tests := []struct {
		in string
		ok bool
	}{
		{"", true},
		{"1.2", true},
		{"with space", true},
		{"ünïcode", true},
		{"\t", true},
		{"\n", false},
		{"\r", false},
		{"\x00", false},
		{"a\nb", false},
	}
	for _, tt := range tests {
		t.Run(strings.ReplaceAll(tt.in, "\x00", "NUL"), func(t *testing.T) {
			if got := ValidField(tt.in); got != tt.ok {
				t.Fatalf("ValidField(%q) = %v, want %v", tt.in, got, tt.ok)
			}
		})
	}
}

func TestAppendID(t *testing.T) {
	got := AppendID([]byte("x"), "12.3")
	if string(got) != "xid: 12.3\n" {
		t.Fatalf("AppendID = %q", got)
	}
	// An id-only frame (as the stream sends after filtered-out notifications) updates the
	// client's last event id without dispatching an event.
	frame := append(AppendID(nil, "9.9"), '\n')
	frame, _ = AppendEvent(frame, "", "x", []byte("y"))
	// (go-sse also yields the id-only frame as an empty event; browsers dispatch nothing for it.)
	evs := parse(t, frame)
	if len(evs) == 0 {
		t.Fatal("parsed no events")
	}
	if last := evs[len(evs)-1]; last.LastEventID != "9.9" || last.Type != "x" || last.Data != "y" {
		t.Fatalf("parsed %+v", evs)
	}
}

func TestAppendComment(t *testing.T) {
	tests := []struct {
		name, text, want string
	}{
		{"empty", "", ":\n\n"},
		{"text", "herald stream", ": herald stream\n\n"},
		{"LF", "a\nb", ": a b\n\n"},
		{"CRLF", "a\r\nb", ": a  b\n\n"},
		{"CR", "a\rb", ": a b\n\n"},
		{"injection", "x\n\ndata: evil\n\n", ": x  data: evil  \n\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := AppendComment([]byte("p"), tt.text)
			if string(got) != "p"+tt.want {
				t.Fatalf("AppendComment = %q, want %q", got, "p"+tt.want)
			}
			// A comment is never an event, whatever its text.
			if evs := parse(t, got[1:]); len(evs) != 0 {
				t.Fatalf("comment parsed as events: %+v", evs)
			}
		})
	}
}

func TestAppendRetry(t *testing.T) {
	tests := []struct {
		ms   int64
		want string
	}{
		{0, "retry: 0\n\n"},
		{2000, "retry: 2000\n\n"},
		{1 << 40, "retry: 1099511627776\n\n"},
	}
	for _, tt := range tests {
		t.Run(tt.want[:len(tt.want)-2], func(t *testing.T) {
			got := AppendRetry([]byte("p"), tt.ms)
			if string(got) != "p"+tt.want {
				t.Fatalf("AppendRetry = %q, want %q", got, "p"+tt.want)
			}
		})
	}
}

func TestStreamOfFrames(t *testing.T) {
	// Several frames, as a connection writes them in one batch, parse back to the same events.
	var b []byte
	b = AppendComment(b, "herald stream")
	b = AppendRetry(b, 2000)
	want := []gosse.Event{
		{LastEventID: "1.0", Type: "a", Data: "one"},
		{LastEventID: "2.0", Type: "b", Data: "two\nlines"},
		{LastEventID: "2.1", Type: "c", Data: ""},
	}
	for _, ev := range want {
		var err error
		if b, err = AppendEvent(b, ev.LastEventID, ev.Type, []byte(ev.Data)); err != nil {
			t.Fatal(err)
		}
		b = AppendComment(b, "")
	}
	got := parse(t, b)
	if len(got) != len(want) {
		t.Fatalf("parsed %d events, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("event %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

// maxFuzzData keeps a fuzzed event well under go-sse's default 64KB event size.
const maxFuzzData = 16 << 10

func FuzzAppendEvent(f *testing.F) {
	for _, s := range []struct{ id, typ, data string }{
		{"", "", ""},
		{"1.2", "notification", `{"a":1}`},
		{"", "", "a\nb"},
		{"", "", "a\r\nb"},
		{"", "", "a\rb"},
		{"", "", "a\n"},
		{"", "", "\r\n\r\n\n\r"},
		{"", "", " leading space"},
		{"x", "y", "data: z\n\nid: w"},
		{"", "", "\xef\xbb\xbfbom"},
		{"\xef\xbb\xbf", "t", "x"},
		{"", "", "\x00\xff"},
		{" id", " type", "  two spaces"},
	} {
		f.Add(s.id, s.typ, []byte(s.data))
	}
	f.Fuzz(func(t *testing.T, id, typ string, data []byte) {
		if len(data) > maxFuzzData || len(id) > 256 || len(typ) > 256 {
			t.Skip()
		}
		out, err := AppendEvent(nil, id, typ, data)
		if !ValidField(id) || !ValidField(typ) {
			if !errors.Is(err, ErrField) || len(out) != 0 {
				t.Fatalf("bad field accepted: %q, %v", out, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("AppendEvent: %v", err)
		}
		// Exactly one blank line, at the end: data can never end the event early.
		if !bytes.HasSuffix(out, []byte("\n\n")) || bytes.Contains(out[:len(out)-1], []byte("\n\n")) {
			t.Fatalf("frame has a blank line before its end: %q", out)
		}
		if bytes.IndexByte(out, '\r') >= 0 {
			t.Fatalf("frame contains CR: %q", out)
		}
		// A client may receive the frame after others (never at the very start of a stream,
		// where a BOM would be stripped), so parse it after a comment as the server sends it.
		stream := append(AppendComment(nil, "herald stream"), out...)
		evs := parse(t, stream)
		if len(evs) != 1 {
			t.Fatalf("parsed %d events from %q", len(evs), out)
		}
		want := strings.ReplaceAll(string(data), "\r\n", "\n")
		want = strings.ReplaceAll(want, "\r", "\n")
		ev := evs[0]
		if ev.Data != want {
			t.Fatalf("data round trip: got %q, want %q (frame %q)", ev.Data, want, out)
		}
		if ev.Type != typ {
			t.Fatalf("type round trip: got %q, want %q", ev.Type, typ)
		}
		if ev.LastEventID != id {
			t.Fatalf("id round trip: got %q, want %q", ev.LastEventID, id)
		}
	})
}

// parse reads a stream with go-sse's parser, an independent implementation of the spec.
func parse(t *testing.T, b []byte) []gosse.Event {
	t.Helper()
	var evs []gosse.Event
	for ev, err := range gosse.Read(bytes.NewReader(b), nil) {
		if err != nil {
			t.Fatalf("go-sse Read(%q): %v", b, err)
		}
		evs = append(evs, ev)
	}
	return evs
}
