package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// The topic scenario (issue 17): the streams' users, and as many more as -topic-subscribers
// asks, are subscribed to one topic; then -rounds publishes to that topic, each reaching every
// open stream (every stream's user is a subscriber) as a broadcast would, through the users'
// own streams. It measures the same figures as broadcast, so the two compare directly.

// benchTopic is the topic of the scenario. A rerun against the same store subscribes the same
// users again, which changes nothing.
const benchTopic = "herald-bench:topic"

// subscribeTopic subscribes u0 … u(n-1) to benchTopic, 10,000 at a time (the API's bulk limit).
func subscribeTopic(ctx context.Context, p *publisher, n int) error {
	const chunk = 10_000
	for from := 0; from < n; from += chunk {
		users := make([]string, 0, chunk)
		for i := from; i < min(from+chunk, n); i++ {
			users = append(users, fmt.Sprintf("u%d", i))
		}
		body, _ := json.Marshal(map[string][]string{"users": users})
		if _, err := p.post(ctx, "/v1/topics/"+benchTopic+"/subscribers", string(body)); err != nil {
			return fmt.Errorf("subscribe u%d…: %w", from, err)
		}
	}
	return nil
}

// topicRounds publishes -rounds notifications to benchTopic, -interval apart, and measures how
// long each takes to reach every stream (a topic of 100,000 commits for a second or two first).
func topicRounds(ctx context.Context, o options, f *fleet, res *result) error {
	return publishRounds(ctx, o, f, res, fmt.Sprintf(`"topic":%q`, benchTopic), 60*time.Second)
}
