package herald

import (
	"math"
	"strconv"
	"strings"
	"testing"
)

func TestParseCursorAccepts(t *testing.T) {
	tests := []struct {
		in   string
		want Cursor
	}{
		{"0.0", Cursor{}},
		{"12.7", Cursor{User: 12, Broadcast: 7}},
		{"0.9", Cursor{Broadcast: 9}},
		{"10.0", Cursor{User: 10}},
		{"9223372036854775807.0", Cursor{User: MaxSeq}},
		{"0.9223372036854775807", Cursor{Broadcast: MaxSeq}},
		{"9223372036854775807.9223372036854775807", Cursor{User: MaxSeq, Broadcast: MaxSeq}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseCursor(tt.in)
			if err != nil {
				t.Fatalf("ParseCursor(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Fatalf("ParseCursor(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
			if s := got.String(); s != tt.in {
				t.Fatalf("String() = %q, want %q", s, tt.in)
			}
		})
	}
}

func TestParseCursorRejects(t *testing.T) {
	tests := []struct {
		name string
		in   string
	}{
		{"empty", ""},
		{"dot only", "."},
		{"no broadcast", "1."},
		{"no user", ".1"},
		{"no dot", "12"},
		{"leading zero user", "01.2"},
		{"leading zero broadcast", "1.02"},
		{"double zero", "00.0"},
		{"plus sign", "+1.2"},
		{"minus sign", "-1.2"},
		{"minus broadcast", "1.-2"},
		{"three parts", "1.2.3"},
		{"leading space", " 1.2"},
		{"inner space", "1 .2"},
		{"space after dot", "1. 2"},
		{"trailing space", "1.2 "},
		{"trailing newline", "1.2\n"},
		{"hex", "0x1.2"},
		{"hex digits", "a.b"},
		{"underscore", "1_0.2"},
		{"exponent", "1e3.2"},
		{"comma", "1,2"},
		{"arabic digits", "١.٢"},
		{"fullwidth digits", "１.２"},
		{"NUL", "1\x00.2"},
		{"user overflow", "18446744073709551616.0"},
		{"user beyond int64", "9223372036854775808.0"},
		{"broadcast beyond int64", "0.9223372036854775808"},
		{"broadcast overflow", "0.18446744073709551616"},
		{"21 digits", "100000000000000000000.0"},
		{"long user", strings.Repeat("1", 1000) + ".1"},
		{"long broadcast", "1." + strings.Repeat("9", 1000)},
		{"long zeros", strings.Repeat("0", 30) + "." + strings.Repeat("0", 30)},
		{"too long overall", strings.Repeat("1", 21) + "." + strings.Repeat("1", 21)},
		{"megabyte", strings.Repeat("1.", 1<<19)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseCursor(tt.in)
			if err == nil {
				t.Fatalf("ParseCursor(%q) = %+v, want an error", truncate(tt.in, 60), c)
			}
			if code := ErrorCode(err); code != EINVALID {
				t.Fatalf("ErrorCode = %q, want %q (err %v)", code, EINVALID, err)
			}
			if c != (Cursor{}) {
				t.Fatalf("failed parse returned non-zero cursor %+v", c)
			}
			// The message quotes the input, but bounded: a huge header must not come back whole.
			if msg := ErrorMessage(err); len(msg) > 200 {
				t.Fatalf("error message is %d bytes long", len(msg))
			}
		})
	}
}

func TestCursorStringAppend(t *testing.T) {
	tests := []struct {
		c    Cursor
		want string
	}{
		{Cursor{}, "0.0"},
		{Cursor{User: 1}, "1.0"},
		{Cursor{Broadcast: 1}, "0.1"},
		{Cursor{User: 42, Broadcast: 1000}, "42.1000"},
		{Cursor{User: MaxSeq, Broadcast: MaxSeq}, "9223372036854775807.9223372036854775807"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.c.String(); got != tt.want {
				t.Fatalf("String() = %q, want %q", got, tt.want)
			}
			prefix := []byte("id: ")
			got := tt.c.Append(prefix)
			if string(got) != "id: "+tt.want {
				t.Fatalf("Append = %q, want %q", got, "id: "+tt.want)
			}
			back, err := ParseCursor(tt.want)
			if err != nil || back != tt.c {
				t.Fatalf("ParseCursor(String()) = %+v, %v; want %+v", back, err, tt.c)
			}
		})
	}
}

func TestCursorOfWith(t *testing.T) {
	base := Cursor{User: 3, Broadcast: 8}
	tests := []struct {
		name   string
		stream string
		seq    uint64
		of     uint64 // base.Of(stream)
		want   Cursor // base.With(stream, seq)
	}{
		{"user", "alice", 10, 3, Cursor{User: 10, Broadcast: 8}},
		{"other user", "bob", 0, 3, Cursor{User: 0, Broadcast: 8}},
		{"broadcast", BroadcastStream, 11, 8, Cursor{User: 3, Broadcast: 11}},
		{"broadcast max", BroadcastStream, math.MaxUint64, 8, Cursor{User: 3, Broadcast: math.MaxUint64}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := base.Of(tt.stream); got != tt.of {
				t.Fatalf("Of(%q) = %d, want %d", tt.stream, got, tt.of)
			}
			got := base.With(tt.stream, tt.seq)
			if got != tt.want {
				t.Fatalf("With(%q, %d) = %+v, want %+v", tt.stream, tt.seq, got, tt.want)
			}
			if got.Of(tt.stream) != tt.seq {
				t.Fatalf("With then Of = %d, want %d", got.Of(tt.stream), tt.seq)
			}
			if base != (Cursor{User: 3, Broadcast: 8}) {
				t.Fatalf("With modified its receiver: %+v", base)
			}
		})
	}
}

func FuzzParseCursor(f *testing.F) {
	for _, s := range []string{
		"0.0", "12.7", "9223372036854775807.9223372036854775807", "9223372036854775808.0",
		"18446744073709551615.0",
		"", ".", "1.", ".1", "01.2", "+1.2", "-1.2", "1.2.3", " 1.2", "1 .2", "1.2 ", "0x1.2", "１.２",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCursor(s)
		if err != nil {
			if code := ErrorCode(err); code != EINVALID {
				t.Fatalf("ParseCursor(%q): code %q, want %q", s, code, EINVALID)
			}
			return
		}
		// Every cursor has exactly one spelling: whatever parses is that spelling.
		if got := c.String(); got != s {
			t.Fatalf("ParseCursor(%q) = %+v, whose String() is %q", s, c, got)
		}
	})
}

func FuzzCursorRoundTrip(f *testing.F) {
	f.Add(uint64(0), uint64(0))
	f.Add(uint64(1), uint64(math.MaxUint64))
	f.Add(uint64(math.MaxUint64), uint64(10))
	f.Fuzz(func(t *testing.T, u, b uint64) {
		u, b = u&MaxSeq, b&MaxSeq
		c := Cursor{User: u, Broadcast: b}
		s := c.String()
		if want := strconv.FormatUint(u, 10) + "." + strconv.FormatUint(b, 10); s != want {
			t.Fatalf("String() = %q, want %q", s, want)
		}
		back, err := ParseCursor(s)
		if err != nil || back != c {
			t.Fatalf("ParseCursor(%q) = %+v, %v; want %+v", s, back, err, c)
		}
	})
}

func TestParsePosition(t *testing.T) {
	tests := []struct {
		in        string
		want      Cursor
		wantEpoch string
		ok        bool
	}{
		{"12.7", Cursor{User: 12, Broadcast: 7}, "", true}, // before epochs: the current one
		{"12.7.5a3c01d2", Cursor{User: 12, Broadcast: 7}, "5a3c01d2", true},
		{"0.0.0", Cursor{}, "0", true},
		{"9223372036854775807.9223372036854775807.0123456789abcdef", Cursor{User: MaxSeq, Broadcast: MaxSeq}, "0123456789abcdef", true},
		{"1.2.", Cursor{}, "", false},
		{"1.2.5A3C01D2", Cursor{}, "", false}, // one spelling: lowercase
		{"1.2.5a3c01d2x", Cursor{}, "", false},
		{"1.2.0123456789abcdef0", Cursor{}, "", false}, // 17 digits
		{"1.2.3.4", Cursor{}, "", false},
		{"1.2.5a 3c", Cursor{}, "", false},
		{"1.2.5a3c\n", Cursor{}, "", false},
		{"01.2.5a", Cursor{}, "", false},
		{"1..5a", Cursor{}, "", false},
		{strings.Repeat("1", 19) + "." + strings.Repeat("1", 19) + "." + strings.Repeat("a", 17), Cursor{}, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			c, epoch, err := ParsePosition(tt.in)
			if !tt.ok {
				if err == nil || ErrorCode(err) != EINVALID || c != (Cursor{}) || epoch != "" {
					t.Fatalf("ParsePosition(%q) = %+v, %q, %v; want an invalid error", tt.in, c, epoch, err)
				}
				return
			}
			if err != nil || c != tt.want || epoch != tt.wantEpoch {
				t.Fatalf("ParsePosition(%q) = %+v, %q, %v; want %+v, %q", tt.in, c, epoch, err, tt.want, tt.wantEpoch)
			}
			if s := c.StringIn(epoch); s != tt.in {
				t.Fatalf("StringIn = %q, want %q", s, tt.in)
			}
		})
	}
}

func FuzzParsePosition(f *testing.F) {
	for _, s := range []string{"0.0", "12.7.5a3c01d2", "1.2.", "1.2.3.4", "1.2.ABC", "1.2.0123456789abcdef0", "..", "1.2.\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, epoch, err := ParsePosition(s)
		if err != nil {
			if code := ErrorCode(err); code != EINVALID {
				t.Fatalf("ParsePosition(%q): code %q, want %q", s, code, EINVALID)
			}
			return
		}
		if epoch != "" && !ValidEpoch(epoch) {
			t.Fatalf("ParsePosition(%q) accepted epoch %q", s, epoch)
		}
		// One spelling, and nothing in it can break an SSE id line.
		if got := c.StringIn(epoch); got != s {
			t.Fatalf("ParsePosition(%q) = %+v, %q, whose StringIn is %q", s, c, epoch, got)
		}
	})
}
