package sqlstore

import (
	"fmt"
	"os"
	"sync"
)

// walSyncer makes SQLite's write-ahead log durable on the store's behalf.
//
// The writer connection runs with synchronous=NORMAL: its COMMIT writes the
// transaction's frames to the log with write(2) — from then on the
// operating system has them, so kill -9 loses nothing — but does not fsync
// the log. Every write is answered only after sync has fsynced the log
// since its COMMIT, which is the fsync synchronous=FULL would have done
// inside COMMIT: what a caller is told was stored survives a power cut
// either way (openSQLite). What moving the fsync out of COMMIT buys is
// overlap: group commit hands a committed group to its syncer goroutine
// and starts the next group's statements on the one writer while the
// fsync runs, instead of holding the writer idle for it. One fsync covers
// every frame written before it, so groups that commit while it runs share
// the next one.
//
// Recovery replays a prefix of the committed transactions, never a later
// one without an earlier: a transaction that used an earlier one's rows
// (a dictionary id, a dedup slot) is durable only with it.
type walSyncer struct {
	path string

	mu sync.Mutex // one fsync at a time; guards the rest
	f  *os.File
	fi os.FileInfo
	// err is sticky. After a failed fsync the kernel may have dropped the
	// dirty pages it could not write, and a later fsync that succeeds would
	// not vouch for them (the PostgreSQL "fsyncgate" lesson): the store
	// answers every later write with the error until it is reopened.
	err error
	// fsync is (*os.File).Sync; tests hold it to watch who waits for it.
	fsync func(*os.File) error
}

func newWALSyncer(dbPath string) *walSyncer {
	return &walSyncer{path: dbPath + "-wal", fsync: (*os.File).Sync}
}

// sync fsyncs the log.
func (w *walSyncer) sync() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	// SQLite removes the log when its last connection closes and creates a
	// new file later; the writer's connection stays open, but a file that
	// is not the one held open is reopened rather than trusted.
	fi, err := os.Stat(w.path)
	if err != nil {
		w.err = fmt.Errorf("sqlstore: the write-ahead log: %w", err)
		return w.err
	}
	if w.f == nil || !os.SameFile(fi, w.fi) {
		if w.f != nil {
			w.f.Close()
		}
		// Read-write: Windows flushes only handles opened for writing.
		f, err := os.OpenFile(w.path, os.O_RDWR, 0)
		if err != nil {
			w.f = nil
			w.err = fmt.Errorf("sqlstore: the write-ahead log: %w", err)
			return w.err
		}
		w.f, w.fi = f, fi
	}
	// os.File.Sync is fsync(2), and F_FULLFSYNC on macOS (what SQLite's
	// fullfsync setting asked for).
	if err := w.fsync(w.f); err != nil {
		w.err = fmt.Errorf("sqlstore: fsync of the write-ahead log failed; writes are refused until the store is reopened: %w", err)
		return w.err
	}
	return nil
}

func (w *walSyncer) close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	if w.err == nil {
		w.err = errClosed
	}
	return err
}
