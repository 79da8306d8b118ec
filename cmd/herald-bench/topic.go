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
// long each takes to reach every stream.
func topicRounds(ctx context.Context, o options, f *fleet, res *result) error {
	pub := newPublisher(o)
	cpu0 := o.cpu()
	events0 := f.events()
	sent := map[int]int64{}
	var rounds []int
	for r := 1; r <= o.rounds; r++ {
		if r > 1 {
			if err := sleep(ctx, o.interval); err != nil {
				return err
			}
		}
		t := time.Now().UnixNano()
		body := fmt.Sprintf(`{"topic":%q,"type":"bench","data":{"bn":%d,"bt":%d}}`, benchTopic, r, t)
		if _, err := pub.post(ctx, "/v1/notifications", body); err != nil {
			return fmt.Errorf("round %d: %w", r, err)
		}
		res.AckMs = append(res.AckMs, float64(time.Now().UnixNano()-t)/1e6)
		sent[r] = t
		rounds = append(rounds, r)
	}
	f.await(ctx, events0+int64(o.rounds*res.Open), 60*time.Second)
	res.CPUMicrosPerEvent = o.cpuPerEvent(cpu0, f.events()-events0)
	rep := f.report(reportCmd{Rounds: rounds})
	res.add(rep)
	res.rounds(rep, rounds, sent)
	res.Published = len(rounds)
	return nil
}
