package memory

import (
	"testing"

	"github.com/heraldhq/herald/internal/bus/bustest"
)

func TestConformance(t *testing.T) {
	bustest.Run(t, func(t *testing.T) bustest.Cluster {
		n := NewNetwork()
		return bustest.Cluster{A: n.Bus(), B: n.Bus(), Other: NewNetwork().Bus(), Cut: n.Cut}
	})
}
