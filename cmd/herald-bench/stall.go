package main

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// stall is the slow-consumer scenario. Every stream reads through -rounds broadcasts (the
// baseline); then every -stall-every-th stream stops reading while -rounds more broadcasts go
// out. It reports the server's peak memory meanwhile, the delivery to the streams still reading
// (against the baseline), how many stalled streams the server cut, and whether each stalled
// stream, back with the last id it received, gets every broadcast exactly once. With
// -stall-every 0 nobody stalls: the control run, the same load with every stream reading.
func stall(ctx context.Context, o options, f *fleet, res *result) error {
	if runtime.GOOS != "linux" {
		return errors.New("the stall scenario needs Linux (epoll readers)")
	}
	if o.stallEvery == 1 || o.stallEvery < 0 {
		return errors.New("stall: -stall-every is 0 (nobody stalls) or at least 2")
	}
	pub := newPublisher(o)
	pad := strings.Repeat("x", o.payload)

	// 1. Everyone reads.
	events0 := f.events()
	base, sent, err := broadcastRounds(ctx, o, pub, 1, pad)
	if err != nil {
		return err
	}
	f.await(ctx, events0+int64(o.rounds*res.Open), time.Minute)
	rep := f.report(reportCmd{Rounds: base})
	if rep.Missing+rep.Duplicate > 0 {
		return fmt.Errorf("baseline: %d missing, %d duplicate", rep.Missing, rep.Duplicate)
	}
	res.BaselineLatency = distOf(rep.Latencies)
	for _, r := range base {
		res.BaselineLastMs = append(res.BaselineLastMs, float64(rep.LastRecv[r]-sent[r])/1e6)
	}
	rssBefore, err := o.rss()
	if err != nil {
		return err
	}

	// 2. Some stop reading; broadcasts go on. The server's memory is sampled meanwhile.
	res.Stalled = f.stall()
	steady := res.Open - res.Stalled
	var peak atomic.Int64
	peak.Store(rssBefore)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				if kb, err := o.rss(); err == nil && kb > peak.Load() {
					peak.Store(kb)
				}
			}
		}
	}()
	events1 := f.events()
	cpu0 := o.cpu()
	rounds, sent, err := broadcastRounds(ctx, o, pub, o.rounds+1, pad)
	if err == nil {
		f.await(ctx, events1+int64(o.rounds*steady), time.Minute)
		res.CPUMicrosPerEvent = o.cpuPerEvent(cpu0, f.events()-events1)
		// The stalled streams are cut within a second or so of their buffer filling.
		err = sleep(ctx, 2*time.Second)
	}
	close(stop)
	wg.Wait()
	if err != nil {
		return err
	}
	rssEnd, _ := o.rss()
	res.RSSStallMB, res.PeakRSSMB, res.RSSEndMB = float64(rssBefore)/1024, float64(peak.Load())/1024, float64(rssEnd)/1024
	rep = f.report(reportCmd{Rounds: rounds, Only: "steady"})
	res.add(rep)
	for _, r := range rounds {
		res.LastDeliveryMs = append(res.LastDeliveryMs, float64(rep.LastRecv[r]-sent[r])/1e6)
	}
	res.Published = len(base) + len(rounds)
	res.ServerCuts, res.ServerSlowCuts = -1, -1
	for i, t := range o.targets {
		all, err1 := metric(t, "herald_slow_consumer_disconnects_total")
		slow, err2 := metric(t, `herald_stream_disconnects_total{reason="slow_consumer"}`)
		if err1 != nil || err2 != nil {
			res.ServerCuts, res.ServerSlowCuts = -1, -1
			break
		}
		if i == 0 {
			res.ServerCuts, res.ServerSlowCuts = 0, 0
		}
		res.ServerCuts += all
		res.ServerSlowCuts += slow
	}

	// 3. The stalled streams read again, and reconnect with their last id.
	rs := f.resume(resumeCmd{Targets: o.targets, Token: o.token, Rounds: rounds, Wait: 20 * time.Second})
	res.StalledCut, res.StalledResumed = rs.Cut, rs.Resumed
	rep = f.report(reportCmd{Rounds: rounds, Only: "stalling"})
	res.StalledMissing, res.StalledDuplicate = rep.Missing, rep.Duplicate
	if rs.Error != "" {
		return fmt.Errorf("%d of %d stalled streams did not resume; first: %s", rs.Stalled-rs.Resumed, rs.Stalled, rs.Error)
	}
	return nil
}

// broadcastRounds publishes o.rounds broadcasts, numbered from first, o.interval apart, each
// with pad in its data. It returns the round numbers and when each was sent (unix ns).
func broadcastRounds(ctx context.Context, o options, pub *publisher, first int, pad string) ([]int, map[int]int64, error) {
	sent := map[int]int64{}
	var rounds []int
	for r := first; r < first+o.rounds; r++ {
		if r > first {
			if err := sleep(ctx, o.interval); err != nil {
				return rounds, sent, err
			}
		}
		t := time.Now().UnixNano()
		body := fmt.Sprintf(`{"broadcast":true,"type":"bench","data":{"bn":%d,"bt":%d,"pad":%q}}`, r, t, pad)
		if _, err := pub.post(ctx, "/v1/notifications", body); err != nil {
			return rounds, sent, fmt.Errorf("round %d: %w", r, err)
		}
		sent[r] = t
		rounds = append(rounds, r)
	}
	return rounds, sent, nil
}

// stall tells the workers to stop reading their stalling streams; it returns how many did.
func (f *fleet) stall() int {
	for _, w := range f.workers {
		_ = w.in.Encode(map[string]any{"stall": true})
	}
	n := 0
	for _, w := range f.workers {
		if m, ok := <-w.msgs; ok && m.Stalled != nil {
			n += *m.Stalled
		}
	}
	return n
}

// resume tells the workers' stalled streams to read again and reconnect (resumeCmd).
func (f *fleet) resume(c resumeCmd) resumed {
	for _, w := range f.workers {
		_ = w.in.Encode(map[string]any{"resume": c})
	}
	var sum resumed
	for _, w := range f.workers {
		m, ok := <-w.msgs
		if !ok || m.Resumed == nil {
			sum.Error = "a worker process ended"
			continue
		}
		sum.Stalled += m.Resumed.Stalled
		sum.Cut += m.Resumed.Cut
		sum.Resumed += m.Resumed.Resumed
		if sum.Error == "" {
			sum.Error = m.Resumed.Error
		}
	}
	return sum
}
