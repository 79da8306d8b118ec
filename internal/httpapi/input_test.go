package httpapi

import (
	"maps"
	"slices"
	"testing"

	"github.com/heraldhq/herald"
)

// TestParseTypes: a subscriber's ?types= filter takes ordinary types as they are and refuses
// Herald's reserved prefix in any case, as a publisher's type is.
func TestParseTypes(t *testing.T) {
	a := New(Options{NoPark: true})
	tests := []struct {
		name   string
		values []string
		want   []string // nil: refused
	}{
		{"one", []string{"order.shipped"}, []string{"order.shipped"}},
		{"list and repeat", []string{"like,comment.created", "like"}, []string{"comment.created", "like"}},
		{"spaces around", []string{" a , b "}, []string{"a", "b"}},
		{"herald without dot", []string{"herald,Herald"}, []string{"Herald", "herald"}},
		{"herald-like prefixes", []string{"heraldic.x,x.herald.y"}, []string{"heraldic.x", "x.herald.y"}},
		{"reserved", []string{"herald.missed"}, nil},
		{"reserved in upper case", []string{"ok,HERALD.missed"}, nil},
		{"reserved capitalised", []string{"Herald.read"}, nil},
		{"not a type", []string{"a b"}, nil},
		{"empty", []string{","}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			filter, err := a.parseTypes(tt.values)
			if tt.want == nil {
				if err == nil || herald.ErrorCode(err) != herald.EINVALID {
					t.Fatalf("parseTypes(%q) = %v, %v; want an invalid error", tt.values, filter, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseTypes(%q): %v", tt.values, err)
			}
			if got := slices.Sorted(maps.Keys(filter)); !slices.Equal(got, tt.want) {
				t.Fatalf("parseTypes(%q) = %q, want %q", tt.values, got, tt.want)
			}
		})
	}
}
