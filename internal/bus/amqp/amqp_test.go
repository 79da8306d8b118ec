package amqp

import (
	"context"
	"strings"
	"testing"

	"github.com/heraldhq/herald/internal/bus/bustest"
	"github.com/heraldhq/herald/internal/testenv"
)

func open(t *testing.T, url, channel string) *Bus {
	t.Helper()
	b, err := Open(context.Background(), url, Options{Channel: channel})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestConformance(t *testing.T) {
	url := testenv.RabbitMQ(t)
	bustest.Run(t, func(t *testing.T) bustest.Cluster {
		channel := testenv.Name("herald")
		return bustest.Cluster{
			A: open(t, url, channel), B: open(t, url, channel), Other: open(t, url, testenv.Name("herald")),
			Cut: func() { testenv.CloseRabbitMQConnections(t, "herald:"+channel) },
		}
	})
}

func TestOpenRefusesBadURL(t *testing.T) {
	if _, err := Open(context.Background(), "amqp://guest:s3cret@host:notaport/", Options{}); err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("Open: %v", err)
	}
}
