package store

import (
	"fmt"
	"testing"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/config"
)

// TestExpandBoundsATopic: a topic publish reaches at most MaxTopicRecipients subscribers; one
// more is too_large, not an expansion held in memory for its commit.
func TestExpandBoundsATopic(t *testing.T) {
	tests := []struct {
		name        string
		subscribers int
		exclude     []string
		wantCode    string
		wantTo      int
	}{
		{"at the bound", MaxTopicRecipients, nil, "", MaxTopicRecipients},
		{"one over", MaxTopicRecipients + 1, nil, herald.ETOOLARGE, 0},
		{"one over, one excluded", MaxTopicRecipients + 1, []string{"u0"}, herald.ETOOLARGE, 0},
		{"small, one excluded", 3, []string{"u1"}, "", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Resolve("p", []herald.Draft{{Topic: "issue:42", Exclude: tt.exclude, Type: "t"}},
				func(string) (Stored, bool, error) { return Stored{}, false, nil })
			if err != nil {
				t.Fatal(err)
			}
			err = p.Expand(func(*herald.Draft) ([]string, []bool, error) {
				us := make([]string, tt.subscribers)
				for i := range us {
					us[i] = fmt.Sprintf("u%d", i)
				}
				return us, nil, nil
			})
			if code := herald.ErrorCode(err); code != tt.wantCode {
				t.Fatalf("Expand: %v (code %q), want code %q", err, code, tt.wantCode)
			}
			if err == nil && len(p.Drafts[0].To) != tt.wantTo {
				t.Fatalf("expanded to %d users, want %d", len(p.Drafts[0].To), tt.wantTo)
			}
		})
	}
}

// TestMaxTopicRecipientsIsConfigs: --max-topic-subscribers may not allow more subscribers than a
// publish reaches, and config states that bound without importing the stores.
func TestMaxTopicRecipientsIsConfigs(t *testing.T) {
	if MaxTopicRecipients != config.MaxTopicRecipients {
		t.Fatalf("store.MaxTopicRecipients = %d, config.MaxTopicRecipients = %d; they must agree", MaxTopicRecipients, config.MaxTopicRecipients)
	}
}
