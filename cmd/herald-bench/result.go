package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// result is one run's figures. Zero fields did not apply to the scenario.
type result struct {
	Name     string `json:"name"`
	Scenario string `json:"scenario"`
	When     string `json:"when"`
	Targets  int    `json:"targets"`

	Streams        int     `json:"streams"`
	Open           int     `json:"open"`
	Failed         int     `json:"failed"`
	ConnectSeconds float64 `json:"connect_seconds"`
	ConnectRate    float64 `json:"connect_per_second"`
	RSSBeforeMB    float64 `json:"rss_before_mb"`
	RSSAfterMB     float64 `json:"rss_after_mb"`
	KBPerStream    float64 `json:"kb_per_stream"`

	Published      int       `json:"published"`
	PublishErrors  int       `json:"publish_errors"`
	PublishRate    float64   `json:"published_per_second"`
	AckLatency     *dist     `json:"ack_latency,omitempty"`
	Delivered      int       `json:"delivered"`
	Latency        *dist     `json:"delivery_latency,omitempty"`
	LastDeliveryMs []float64 `json:"last_delivery_ms,omitempty"` // per broadcast round
	// Per round of broadcast and topic: when the publisher had its 201 (the commit, and the
	// hand-over to the hub, are done), and when the first stream received the event.
	AckMs             []float64 `json:"ack_ms,omitempty"`
	FirstDeliveryMs   []float64 `json:"first_delivery_ms,omitempty"`
	CPUMicrosPerEvent float64   `json:"server_cpu_us_per_event"`

	Missing    int `json:"missing"`
	Duplicate  int `json:"duplicate"`
	Unexpected int `json:"unexpected"`
	Closed     int `json:"closed"` // streams the server ended during the run

	// The stall scenario: delivery, and what is above, are of the streams that kept reading,
	// while the others were stalled; the baseline is every stream's, before.
	BaselineLatency  *dist     `json:"baseline_latency,omitempty"`
	BaselineLastMs   []float64 `json:"baseline_last_delivery_ms,omitempty"`
	RSSStallMB       float64   `json:"rss_before_stall_mb,omitempty"` // after the baseline
	PeakRSSMB        float64   `json:"peak_rss_mb,omitempty"`         // while stalled
	RSSEndMB         float64   `json:"rss_end_mb,omitempty"`
	Stalled          int       `json:"stalled,omitempty"`
	StalledCut       int       `json:"stalled_cut,omitempty"`       // seen ended by the server
	ServerCuts       float64   `json:"server_cuts,omitempty"`       // its slow-client count; -1: unknown
	ServerSlowCuts   float64   `json:"server_slow_cuts,omitempty"`  // of which slow_consumer
	StalledResumed   int       `json:"stalled_resumed,omitempty"`   // got every round after reconnecting
	StalledMissing   int       `json:"stalled_missing,omitempty"`   // over the stalled rounds
	StalledDuplicate int       `json:"stalled_duplicate,omitempty"` // over the stalled rounds

	Storm *stormResult `json:"storm,omitempty"`
}

func (r *result) add(rep *report) {
	r.Delivered = len(rep.Latencies)
	r.Latency = distOf(rep.Latencies)
	r.Missing, r.Duplicate, r.Unexpected, r.Closed = rep.Missing, rep.Duplicate, rep.Unexpect, rep.Closed
}

// rounds records the first and last delivery of each round, from when it was sent (unix ns).
func (r *result) rounds(rep *report, rounds []int, sent map[int]int64) {
	for _, n := range rounds {
		r.LastDeliveryMs = append(r.LastDeliveryMs, float64(rep.LastRecv[n]-sent[n])/1e6)
		r.FirstDeliveryMs = append(r.FirstDeliveryMs, float64(rep.FirstRecv[n]-sent[n])/1e6)
	}
}

func (r *result) lastDeliveryMedian() float64 {
	if len(r.LastDeliveryMs) == 0 {
		return 0
	}
	s := slices.Clone(r.LastDeliveryMs)
	slices.Sort(s)
	return s[len(s)/2]
}

func (r *result) print(w io.Writer) {
	fmt.Fprintf(w, "%s %s", r.Name, r.Scenario)
	if r.Streams > 0 {
		fmt.Fprintf(w, ": %d streams on %d node(s)\n", r.Streams, r.Targets)
		fmt.Fprintf(w, "  opened %d (failed %d) in %.1fs: %.0f/s\n", r.Open, r.Failed, r.ConnectSeconds, r.ConnectRate)
		fmt.Fprintf(w, "  server RSS %.1f MB → %.1f MB: %.2f KB per stream\n", r.RSSBeforeMB, r.RSSAfterMB, r.KBPerStream)
	} else {
		fmt.Fprintln(w)
	}
	if r.Published > 0 {
		fmt.Fprintf(w, "  published %d (%d errors), %.0f/s\n", r.Published, r.PublishErrors, r.PublishRate)
	}
	if d := r.AckLatency; d != nil {
		fmt.Fprintf(w, "  ack latency: p50 %.2f ms  p90 %.2f  p99 %.2f  max %.2f\n", d.P50, d.P90, d.P99, d.Max)
	}
	if d := r.Latency; d != nil {
		fmt.Fprintf(w, "  delivered %d: p50 %.2f ms  p90 %.2f  p99 %.2f  max %.2f\n", r.Delivered, d.P50, d.P90, d.P99, d.Max)
	}
	if len(r.LastDeliveryMs) > 0 {
		parts := make([]string, len(r.LastDeliveryMs))
		for i, v := range r.LastDeliveryMs {
			parts[i] = fmt.Sprintf("%.0f", v)
		}
		fmt.Fprintf(w, "  last delivery per round (ms): %s; median %.0f\n", strings.Join(parts, " "), r.lastDeliveryMedian())
	}
	for _, x := range []struct {
		what string
		ms   []float64
	}{{"201 to the publisher", r.AckMs}, {"first delivery", r.FirstDeliveryMs}} {
		if len(x.ms) == 0 {
			continue
		}
		parts := make([]string, len(x.ms))
		for i, v := range x.ms {
			parts[i] = fmt.Sprintf("%.0f", v)
		}
		fmt.Fprintf(w, "  %s per round (ms): %s; median %.0f\n", x.what, strings.Join(parts, " "), median(x.ms))
	}
	if r.CPUMicrosPerEvent > 0 {
		what := "delivered event"
		if r.Scenario == "unicast" {
			what = "publish and its delivery"
		}
		fmt.Fprintf(w, "  server CPU per %s: %.2f µs\n", what, r.CPUMicrosPerEvent)
	}
	if r.Scenario == "stall" {
		r.printStall(w)
	}
	r.printStorm(w)
	if r.Streams > 0 && r.Scenario != "idle" {
		fmt.Fprintf(w, "  missing %d  duplicate %d  unexpected %d  closed by server %d\n", r.Missing, r.Duplicate, r.Unexpected, r.Closed)
	}
}

func (r *result) printStall(w io.Writer) {
	if d := r.BaselineLatency; d != nil {
		fmt.Fprintf(w, "  baseline, every stream reading: p50 %.2f ms  p90 %.2f  p99 %.2f  max %.2f; last delivery median %.0f ms\n",
			d.P50, d.P90, d.P99, d.Max, median(r.BaselineLastMs))
	}
	fmt.Fprintf(w, "  above: the %d streams still reading while %d were stalled\n", r.Open-r.Stalled, r.Stalled)
	fmt.Fprintf(w, "  server RSS: %.1f MB after the baseline, peak %.1f MB in the second phase (+%.1f MB, %.0f KB per stalled stream), %.1f MB at its end\n",
		r.RSSStallMB, r.PeakRSSMB, r.PeakRSSMB-r.RSSStallMB, (r.PeakRSSMB-r.RSSStallMB)*1024/float64(max(r.Stalled, 1)), r.RSSEndMB)
	fmt.Fprintf(w, "  stalled %d: seen cut %d (server: %.0f slow clients cut, %.0f as slow_consumer); resumed with Last-Event-ID %d, missing %d, duplicate %d\n",
		r.Stalled, r.StalledCut, r.ServerCuts, r.ServerSlowCuts, r.StalledResumed, r.StalledMissing, r.StalledDuplicate)
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

func (r *result) writeJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if path == "-" {
		_, err = os.Stdout.Write(b)
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// compare prints a Markdown table of the first result against the second: the figures of each and
// their ratio.
func compare(w io.Writer, files []string) error {
	if len(files) != 2 {
		return fmt.Errorf("compare wants two result files")
	}
	var rs [2]result
	for i, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(b, &rs[i]); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
	}
	a, b := rs[0], rs[1]
	fmt.Fprintf(w, "| %s, %d streams | %s | %s | ratio |\n|---|---|---|---|\n", a.Scenario, a.Streams, a.Name, b.Name)
	row := func(label, unit string, x, y float64) {
		if x == 0 && y == 0 {
			return
		}
		ratio := "–"
		if y != 0 {
			ratio = fmt.Sprintf("%.2f×", x/y)
		}
		fmt.Fprintf(w, "| %s | %.4g %s | %.4g %s | %s |\n", label, x, unit, y, unit, ratio)
	}
	row("RSS per stream", "KB", a.KBPerStream, b.KBPerStream)
	row("connects per second", "/s", a.ConnectRate, b.ConnectRate)
	row("last delivery (median of rounds)", "ms", a.lastDeliveryMedian(), b.lastDeliveryMedian())
	if a.Latency != nil && b.Latency != nil {
		row("delivery p50", "ms", a.Latency.P50, b.Latency.P50)
		row("delivery p99", "ms", a.Latency.P99, b.Latency.P99)
		row("delivery max", "ms", a.Latency.Max, b.Latency.Max)
	}
	row("server CPU per event (unicast: with its publish)", "µs", a.CPUMicrosPerEvent, b.CPUMicrosPerEvent)
	row("published per second", "/s", a.PublishRate, b.PublishRate)
	row("missing + duplicate", "", float64(a.Missing+a.Duplicate), float64(b.Missing+b.Duplicate))
	return nil
}
