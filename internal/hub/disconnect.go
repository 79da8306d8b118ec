package hub

// Disconnect says why a stream ended: the hub ends subscriptions for a drain or a shutdown, and
// a subscription's owner ends its stream for the other reasons. Its String is the reason in
// logs and the reason label of herald_stream_disconnects_total.
type Disconnect uint8

// Why streams end. The zero value is not a reason: the stream is open.
const (
	// ClientGone: the client closed the connection, or it broke.
	ClientGone Disconnect = iota + 1
	// SlowConsumer: the stream's buffer overflowed while its write had been blocked for a while
	// (the client stopped reading).
	SlowConsumer
	// WriteTimeout: a write stayed blocked for the write timeout.
	WriteTimeout
	// CredentialsExpired: the subscriber's token expired; the client reconnects with a new one.
	CredentialsExpired
	// StoreFailed: a catch-up could not read the store.
	StoreFailed
	// Drain: the server is draining (Hub.Drain); the client reconnects elsewhere.
	Drain
	// Shutdown: the server is stopping.
	Shutdown
	// Closed: the owner closed the subscription (Subscription.Close). A stream that ends reports
	// its own reason, not this one.
	Closed
)

// Disconnects are the reasons a stream reports, for metrics that show each at zero.
var Disconnects = []Disconnect{ClientGone, SlowConsumer, WriteTimeout, CredentialsExpired, StoreFailed, Drain, Shutdown}

var disconnectNames = [...]string{
	ClientGone:         "client_closed",
	SlowConsumer:       "slow_consumer",
	WriteTimeout:       "write_timeout",
	CredentialsExpired: "credentials_expired",
	StoreFailed:        "store_failed",
	Drain:              "drain",
	Shutdown:           "shutdown",
	Closed:             "closed",
}

// String is the reason as logs and metrics name it: client_closed, slow_consumer, and so on.
func (d Disconnect) String() string {
	if int(d) < len(disconnectNames) && disconnectNames[d] != "" {
		return disconnectNames[d]
	}
	return "open"
}

// Slow reports whether the client did not keep up (it stopped reading): the reasons counted as
// slow consumers.
func (d Disconnect) Slow() bool { return d == SlowConsumer || d == WriteTimeout }
