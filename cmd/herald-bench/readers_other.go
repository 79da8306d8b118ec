//go:build !linux

package main

import "time"

// The stall scenario needs Linux (the coordinator refuses it elsewhere).
func (w *worker) stall() int                             { return 0 }
func (w *worker) drain(*benchStream, time.Duration) bool { return false }

// Elsewhere each stream is read by a goroutine of its own.
func (w *worker) startReading(streams []*benchStream) error {
	for _, s := range streams {
		w.readers.Add(1)
		go func() {
			defer w.readers.Done()
			defer w.closed.Add(1)
			if len(s.pre) > 0 && !w.received(s, s.pre) {
				return
			}
			buf := make([]byte, 4096)
			for {
				n, err := s.conn.Read(buf)
				if n > 0 && !w.received(s, buf[:n]) {
					return
				}
				if err != nil {
					return
				}
			}
		}()
	}
	return nil
}

func (w *worker) stopReading() {
	w.stopping.Store(true)
	for _, s := range w.streams {
		s.conn.Close()
	}
	w.readers.Wait()
}
