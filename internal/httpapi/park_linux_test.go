package httpapi

import (
	"io"
	"net"
	"syscall"
	"testing"
)

// TestRawWriteAllocs: a shard's writer writes to a socket without allocating, as it does once
// per stream for every broadcast and topic publish.
func TestRawWriteAllocs(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	peer, ok := <-accepted
	if !ok {
		t.Fatal("accept failed")
	}
	defer peer.Close()
	raw, err := nc.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	w := newRawWriter()
	frame := []byte("id: 1.2\ndata: {}\n\n")
	const runs = 100
	if allocs := testing.AllocsPerRun(runs, func() {
		if n, err := w.rawWrite(raw, frame); n != len(frame) || err != nil {
			t.Fatalf("wrote %d, %v", n, err)
		}
	}); allocs != 0 {
		t.Errorf("%v allocations per write, want 0", allocs)
	}
	// Every byte reached the peer, in order.
	got := make([]byte, (runs+1)*len(frame)) // AllocsPerRun runs the function once more
	if _, err := io.ReadFull(peer, got); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(got); i += len(frame) {
		if string(got[i:i+len(frame)]) != string(frame) {
			t.Fatalf("byte %d: %q", i, got[i:i+len(frame)])
		}
	}
}
