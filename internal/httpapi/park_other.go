//go:build !linux

package httpapi

import (
	"errors"
	"syscall"
)

// Without epoll, streams are not parked: each keeps its handler's goroutine.
const parkSupported = false

type poller struct{}

var errNoPoller = errors.New("parking streams needs epoll (Linux)")

func newPoller() (*poller, error)                                     { return nil, errNoPoller }
func (*poller) add(syscall.RawConn) error                             { return errNoPoller }
func (*poller) remove(syscall.RawConn)                                {}
func (*poller) run(<-chan struct{}, func(fd int, input, output bool)) {}
func (*poller) wake()                                                 {}
func (*poller) close()                                                {}

type rawWriter struct{}

func newRawWriter() *rawWriter                                   { return &rawWriter{} }
func (*rawWriter) rawWrite(syscall.RawConn, []byte) (int, error) { return 0, errNoPoller }
func rawRead(syscall.RawConn, []byte) (int, error)               { return 0, errNoPoller }
