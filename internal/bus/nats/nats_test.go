package nats

import (
	"context"
	"strings"
	"testing"

	"github.com/heraldhq/herald/internal/bus/bustest"
	"github.com/heraldhq/herald/internal/testenv"
)

func open(t *testing.T, url, subject string) *Bus {
	t.Helper()
	b, err := Open(context.Background(), url, Options{Subject: subject})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestConformance(t *testing.T) {
	url := testenv.NATS(t)
	bustest.Run(t, func(t *testing.T) bustest.Cluster {
		subject := testenv.Name("herald")
		a, b := open(t, url, subject), open(t, url, subject)
		return bustest.Cluster{
			A: a, B: b, Other: open(t, url, testenv.Name("herald")),
			// The connections drop and the clients reconnect, as after a network outage.
			Cut: func() {
				a.nc.ForceReconnect()
				b.nc.ForceReconnect()
			},
		}
	})
}

func TestRedact(t *testing.T) {
	msg := redact("dial nats://user:s3cret@host:4222 failed; token t0ken", "nats://user:s3cret@host:4222,nats://t0ken@other:4222")
	if strings.Contains(msg, "s3cret") || strings.Contains(msg, "t0ken") {
		t.Fatalf("redact: %q", msg)
	}
}
