package store

import (
	"testing"

	"github.com/heraldhq/herald/internal/config"
)

// TestMaxTopicRecipientsIsConfigs: --max-topic-subscribers may not allow more subscribers than a
// publish reaches, and config states that bound without importing the stores.
func TestMaxTopicRecipientsIsConfigs(t *testing.T) {
	if MaxTopicRecipients != config.MaxTopicRecipients {
		t.Fatalf("store.MaxTopicRecipients = %d, config.MaxTopicRecipients = %d; they must agree", MaxTopicRecipients, config.MaxTopicRecipients)
	}
}
