package htaccess

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sync"
	"time"
)

// DefaultCacheEntries is the number of directories a Cache keeps when
// MaxEntries is 0.
const DefaultCacheEntries = 1024

// A Cache reads, parses and keeps the .htaccess files of one document
// root. Every Get stats the file, as Apache opens it on every request,
// and reads and parses it again only when its modification time or size
// has changed. Its Get method is what Tree.Htaccess wants.
//
// Only FS must be set; the zero values of the other fields are useful.
// A Cache is safe for concurrent use.
type Cache struct {
	// FS is the document root, opened as the site's user (os.Root.FS
	// keeps every name inside it).
	FS fs.FS
	// FileName is the name of the files; "" means ".htaccess".
	FileName string
	// Root is prefixed to file names in errors and reasons, to show
	// where they are ("/home/alice/www"); it is never opened.
	Root string
	// MaxSize bounds a file's size; 0 means MaxFileSize. A larger
	// file is an error wrapping ErrTooLarge (and answers 500).
	MaxSize int64
	// MaxEntries bounds the directories kept; 0 means
	// DefaultCacheEntries.
	MaxEntries int
	// Revalidate is how long a directory's file (or its absence) is
	// trusted without a stat: 0 stats on every Get, as Apache does. A
	// stat through an os.Root is a walk of the path, on every request
	// and for every directory level; a second or two spares that while
	// a change still applies almost at once (as PHP's OPcache does with
	// revalidate_freq).
	Revalidate time.Duration
	// Parsed, if set, is called after each parse of a new or changed
	// file, with the parse's result: the place to log f.NotApplied
	// (once per change, rather than once per request) or err. Two
	// requests that find the same change at the same moment may both
	// parse it.
	Parsed func(name string, f *File, err error)

	mu      sync.Mutex
	entries map[string]cacheEntry
}

type cacheEntry struct {
	mod     time.Time
	size    int64
	f       *File
	err     error
	absent  bool      // the directory has no file
	checked time.Time // when the stat was made (monotonic)
}

// Get returns the parsed file of directory dir ("." for the document
// root, "a/b" below it; a name in FS), nil and no error if it has none,
// or the error of reading or parsing it (a parse error is kept until the
// file changes).
func (c *Cache) Get(dir string) (*File, error) {
	if c.FS == nil {
		return nil, nil
	}
	base := c.FileName
	if base == "" {
		base = ".htaccess"
	}
	name := path.Join(dir, base)
	var now time.Time
	if c.Revalidate > 0 {
		now = time.Now()
		c.mu.Lock()
		e, ok := c.entries[dir]
		c.mu.Unlock()
		if ok && now.Sub(e.checked) < c.Revalidate {
			return e.f, e.err
		}
	}
	fi, err := fs.Stat(c.FS, name)
	if errors.Is(err, fs.ErrNotExist) {
		if c.Revalidate > 0 {
			c.store(dir, cacheEntry{absent: true, checked: now})
		} else {
			c.forget(dir)
		}
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", c.display(name))
	}
	c.mu.Lock()
	e, ok := c.entries[dir]
	c.mu.Unlock()
	if ok && !e.absent && e.mod.Equal(fi.ModTime()) && e.size == fi.Size() {
		if c.Revalidate > 0 {
			e.checked = now
			c.store(dir, e)
		}
		return e.f, e.err
	}
	f, err := c.load(name, fi)
	if errors.Is(err, fs.ErrNotExist) { // removed since the stat
		c.forget(dir)
		return nil, nil
	}
	c.store(dir, cacheEntry{mod: fi.ModTime(), size: fi.Size(), f: f, err: err, checked: now})
	if c.Parsed != nil {
		c.Parsed(c.display(name), f, err)
	}
	return f, err
}

func (c *Cache) display(name string) string {
	if c.Root == "" {
		return name
	}
	return path.Join(c.Root, name)
}

func (c *Cache) load(name string, fi fs.FileInfo) (*File, error) {
	limit := c.MaxSize
	if limit <= 0 {
		limit = MaxFileSize
	}
	if fi.Size() > limit {
		return nil, fmt.Errorf("%s: %w (%d bytes, the limit is %d)", c.display(name), ErrTooLarge, fi.Size(), limit)
	}
	r, err := c.FS.Open(name)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.display(name), err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s: %w (the limit is %d bytes)", c.display(name), ErrTooLarge, limit)
	}
	return Parse(c.display(name), data)
}

func (c *Cache) store(dir string, e cacheEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	max := c.MaxEntries
	if max <= 0 {
		max = DefaultCacheEntries
	}
	if c.entries == nil {
		c.entries = make(map[string]cacheEntry)
	}
	if _, ok := c.entries[dir]; !ok && len(c.entries) >= max {
		for k := range c.entries { // evict one, any one
			delete(c.entries, k)
			break
		}
	}
	c.entries[dir] = e
}

func (c *Cache) forget(dir string) {
	c.mu.Lock()
	delete(c.entries, dir)
	c.mu.Unlock()
}
