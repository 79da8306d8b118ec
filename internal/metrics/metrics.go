// Package metrics holds Herald's Prometheus metrics, on a registry of its own (no globals), and
// an instrumented Store.
//
// No metric has a label whose values come from users or publishers (user ids, types): their
// number is unbounded, and so would be the series.
package metrics

import (
	"net/http"
	"runtime"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are the collectors the server updates. Create them with New.
type Metrics struct {
	Registry *prometheus.Registry

	StreamsOpen     prometheus.Gauge
	StreamsOpened   prometheus.Counter
	StreamsRejected *prometheus.CounterVec // reason: the error code
	SlowDisconnects prometheus.Counter
	// StreamDisconnects counts the ends of streams by reason (hub.Disconnect).
	StreamDisconnects *prometheus.CounterVec
	Delivered         prometheus.Counter
	Replayed          prometheus.Counter
	DeliveryLatency   prometheus.Histogram

	Published       *prometheus.CounterVec // kind: unicast, multicast, broadcast
	PublishDuration prometheus.Histogram
	PublishRefused  *prometheus.CounterVec // reason: Refused*
	// Muted counts what preferences held back, by channel (issue 17 §2).
	Muted *prometheus.CounterVec // channel: in_app, push

	StoreDuration *prometheus.HistogramVec // op
	StoreErrors   *prometheus.CounterVec   // op

	Requests        *prometheus.CounterVec   // route, code
	RequestDuration *prometheus.HistogramVec // route; streams are not in it

	BusPublished     prometheus.Counter
	BusPublishErrors prometheus.Counter
	BusReceived      prometheus.Counter
	BusReconnects    prometheus.Counter
	BusDecodeErrors  prometheus.Counter
	BusForeign       prometheus.Counter
	Resyncs          prometheus.Counter
	ResyncErrors     prometheus.Counter

	// Connections, by listener ("api", "metrics"): see internal/listener.
	ConnectionsOpen    *prometheus.GaugeVec   // listener
	ConnectionsRefused *prometheus.CounterVec // listener, reason: cap, accept_error
	ConnectionsDropped *prometheus.CounterVec // listener, reason: first_request_timeout, evicted
}

// Publish kinds.
const (
	KindUnicast   = "unicast"
	KindMulticast = "multicast"
	KindBroadcast = "broadcast"
)

// Reasons a publish is refused for its work (herald_publish_refused_total).
const (
	RefusedTooLarge = "too_large"    // over a size limit: body, batch, recipients, burst
	RefusedRate     = "rate_limited" // the publisher's rate limit
	RefusedBusy     = "busy"         // the server's limit of publish work in flight
)

// latencyBuckets span 100 µs to 10 s: a delivery on one node takes well under a millisecond,
// a replay or a cross-node hop a few, a stalled store seconds.
var latencyBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// New returns the metrics on a new registry that also holds the Go runtime and process
// collectors (process_resident_memory_bytes, process_open_fds, ...).
func New() *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	f := promauto.With(reg)
	m := &Metrics{Registry: reg}
	m.StreamsOpen = f.NewGauge(prometheus.GaugeOpts{
		Name: "herald_streams_open", Help: "SSE streams open on this node."})
	m.StreamsOpened = f.NewCounter(prometheus.CounterOpts{
		Name: "herald_streams_opened_total", Help: "SSE streams opened."})
	m.StreamsRejected = f.NewCounterVec(prometheus.CounterOpts{
		Name: "herald_streams_rejected_total",
		Help: "Stream requests refused before the stream opened, by reason (the error code: unauthorized, forbidden, invalid, rate_limited for the per-user limit, unavailable for the server limit, draining or shutdown)."},
		[]string{"reason"})
	m.SlowDisconnects = f.NewCounter(prometheus.CounterOpts{
		Name: "herald_slow_consumer_disconnects_total",
		Help: "Streams closed because their client stopped reading: the sum of herald_stream_disconnects_total for the reasons slow_consumer and write_timeout."})
	m.StreamDisconnects = f.NewCounterVec(prometheus.CounterOpts{
		Name: "herald_stream_disconnects_total",
		Help: "Streams ended, by reason: client_closed, slow_consumer (its buffer overflowed while its write was blocked), write_timeout, credentials_expired, store_failed (a catch-up could not read the store), drain, shutdown."},
		[]string{"reason"})
	m.Delivered = f.NewCounter(prometheus.CounterOpts{
		Name: "herald_events_delivered_total", Help: "Live notifications written to streams."})
	m.Replayed = f.NewCounter(prometheus.CounterOpts{
		Name: "herald_events_replayed_total", Help: "Notifications written to streams from the store (resumes and catch-ups)."})
	m.DeliveryLatency = f.NewHistogram(prometheus.HistogramOpts{
		Name:    "herald_delivery_latency_seconds",
		Help:    "From a notification's commit to its live write to a stream.",
		Buckets: latencyBuckets})
	m.Published = f.NewCounterVec(prometheus.CounterOpts{
		Name: "herald_notifications_published_total",
		Help: "Notifications published (idempotent replays excluded), by kind: unicast (one user), multicast (several; counted once), broadcast."},
		[]string{"kind"})
	m.PublishDuration = f.NewHistogram(prometheus.HistogramOpts{
		Name:    "herald_publish_ack_seconds",
		Help:    "From receiving a publish request to acknowledging it (201): validation and the durable commit.",
		Buckets: latencyBuckets})
	m.PublishRefused = f.NewCounterVec(prometheus.CounterOpts{
		Name: "herald_publish_refused_total",
		Help: "Publish requests refused for the work they ask for, by reason: too_large (over a size limit, --max-request-recipients or --publish-burst among them), rate_limited (the publisher's --publish-rate), busy (the server's --max-publish-inflight)."},
		[]string{"reason"})
	for _, r := range []string{RefusedTooLarge, RefusedRate, RefusedBusy} {
		m.PublishRefused.WithLabelValues(r)
	}
	m.StoreDuration = f.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "herald_store_operation_seconds",
		Help:    "Store operations, by operation.",
		Buckets: latencyBuckets}, []string{"op"})
	m.StoreErrors = f.NewCounterVec(prometheus.CounterOpts{
		Name: "herald_store_errors_total",
		Help: "Store operations that failed for a reason other than the request (unavailable or internal), by operation."},
		[]string{"op"})
	m.Requests = f.NewCounterVec(prometheus.CounterOpts{
		Name: "herald_http_requests_total",
		Help: "HTTP requests answered, by route pattern (\"other\" when none matched) and status code."},
		[]string{"route", "code"})
	m.RequestDuration = f.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "herald_http_request_seconds",
		Help:    "HTTP request durations by route pattern; the stream route is left out (a stream lasts as long as the client stays).",
		Buckets: latencyBuckets}, []string{"route"})
	m.BusPublished = f.NewCounter(prometheus.CounterOpts{
		Name: "herald_bus_published_total", Help: "Notifications this node sent on the bus to the other nodes."})
	m.BusPublishErrors = f.NewCounter(prometheus.CounterOpts{
		Name: "herald_bus_publish_errors_total", Help: "Bus publishes that failed or timed out (every node, this one included, then gets those notifications by resync)."})
	m.BusReceived = f.NewCounter(prometheus.CounterOpts{
		Name: "herald_bus_received_total", Help: "Notifications received from the bus (this node's own included)."})
	m.BusReconnects = f.NewCounter(prometheus.CounterOpts{
		Name: "herald_bus_reconnects_total", Help: "Times the bus reported that messages may have been missed: a subscription (re)established, the first included, or a slow-consumer cut-off. Each starts a resync."})
	m.BusDecodeErrors = f.NewCounter(prometheus.CounterOpts{
		Name: "herald_bus_decode_errors_total", Help: "Bus messages this node could not read (another version, or a foreign publisher on the channel). Each starts a resync."})
	m.BusForeign = f.NewCounter(prometheus.CounterOpts{
		Name: "herald_bus_foreign_messages_total", Help: "Bus messages dropped because they came from another store or epoch: another deployment on the same broker and channel, or a node on a replaced history."})
	m.Resyncs = f.NewCounter(prometheus.CounterOpts{
		Name: "herald_resyncs_total", Help: "Comparisons of this node's open streams with the store (periodic, and after bus reconnects)."})
	m.ResyncErrors = f.NewCounter(prometheus.CounterOpts{
		Name: "herald_resync_errors_total", Help: "Resyncs that failed to read the store."})
	m.ConnectionsOpen = f.NewGaugeVec(prometheus.GaugeOpts{
		Name: "herald_connections_open",
		Help: "Connections open on a listener (api: --addr, streams included; metrics: --metrics-addr)."},
		[]string{"listener"})
	m.ConnectionsRefused = f.NewCounterVec(prometheus.CounterOpts{
		Name: "herald_connections_refused_total",
		Help: "Connections refused, by listener and reason: cap (the connection limit reached with every connection serving a request; a plain-HTTP client gets 503) or accept_error (accepting failed, such as EMFILE: out of file descriptors)."},
		[]string{"listener", "reason"})
	m.ConnectionsDropped = f.NewCounterVec(prometheus.CounterOpts{
		Name: "herald_connections_dropped_total",
		Help: "Connections closed by the server before or between requests, by listener and reason: first_request_timeout (no complete request header within --first-request-timeout) or evicted (unused or idle, closed to admit a new one at the connection limit)."},
		[]string{"listener", "reason"})
	for _, k := range []string{KindUnicast, KindMulticast, KindBroadcast} {
		m.Published.WithLabelValues(k) // present at 0, so rate() sees the first publish
	}
	m.Muted = f.NewCounterVec(prometheus.CounterOpts{
		Name: "herald_notifications_muted_total",
		Help: "Notifications not created for a recipient because the recipient muted them (channel in_app; idempotent replays excluded), or not sent on another channel, by channel. Broadcasts are not counted: they are left out of muting users' streams and inboxes when read."},
		[]string{"channel"})
	m.Muted.WithLabelValues("in_app")
	return m
}

// BuildInfo registers herald_build_info, 1 with the version as a label, so dashboards can show
// which version each node runs.
func (m *Metrics) BuildInfo(version string) {
	if version == "" {
		version = "dev"
	}
	g := promauto.With(m.Registry).NewGaugeVec(prometheus.GaugeOpts{
		Name: "herald_build_info", Help: "Always 1; the labels name the build."}, []string{"version", "go_version"})
	g.WithLabelValues(version, runtime.Version()).Set(1)
}

// CounterFunc registers a counter whose value fn reads from elsewhere (the hub's own counts).
func (m *Metrics) CounterFunc(name, help string, fn func() float64) {
	m.Registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, fn))
}

// GaugeFunc registers a gauge whose value fn reads from elsewhere.
func (m *Metrics) GaugeFunc(name, help string, fn func() float64) {
	m.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, fn))
}

// Handler serves the registry in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})
}
