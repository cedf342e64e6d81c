package htaccess

import (
	"errors"
	"io/fs"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"
)

func TestCache(t *testing.T) {
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	fsys := fstest.MapFS{
		".htaccess":     {Data: []byte("Require all denied\n"), ModTime: t0},
		"sub/x":         {Data: []byte("x")},
		"bad/.htaccess": {Data: []byte("<IfModule x>\n"), ModTime: t0},
		"dir/.htaccess": {Mode: fs.ModeDir},
	}
	var parsed []string
	c := &Cache{FS: fsys, Root: "/srv/www", Parsed: func(name string, f *File, err error) {
		parsed = append(parsed, name)
	}}

	f1, err := c.Get(".")
	if err != nil || f1 == nil || f1.Name != "/srv/www/.htaccess" {
		t.Fatalf("Get(.) = %v, %v", f1, err)
	}
	f2, _ := c.Get(".")
	if f2 != f1 || len(parsed) != 1 {
		t.Fatalf("an unchanged file was parsed again: %v", parsed)
	}

	// A change of modification time, or of size alone, is a new file.
	fsys[".htaccess"] = &fstest.MapFile{Data: []byte("Require all granted\n"), ModTime: t0.Add(time.Second)}
	f3, _ := c.Get(".")
	if f3 == f1 || len(parsed) != 2 || !f3.dir.authz[0].grant {
		t.Fatalf("a changed file was not parsed again: %v", parsed)
	}
	fsys[".htaccess"] = &fstest.MapFile{Data: []byte("Require all denied  \n"), ModTime: t0.Add(time.Second)}
	if f4, _ := c.Get("."); f4 == f3 || f4.dir.authz[0].grant {
		t.Fatal("a file whose size changed was not parsed again")
	}

	if f, err := c.Get("sub"); f != nil || err != nil {
		t.Errorf("Get(sub) = %v, %v; want nothing", f, err)
	}
	if f, err := c.Get("missing/dir"); f != nil || err != nil {
		t.Errorf("Get(missing/dir) = %v, %v; want nothing", f, err)
	}

	// A parse error is kept (and reported once) until the file changes.
	n := len(parsed)
	for range 3 {
		if f, err := c.Get("bad"); f != nil || err == nil || !strings.Contains(err.Error(), "/srv/www/bad/.htaccess:1:") {
			t.Fatalf("Get(bad) = %v, %v", f, err)
		}
	}
	if len(parsed) != n+1 {
		t.Errorf("the broken file was parsed %d times", len(parsed)-n)
	}

	if _, err := c.Get("dir"); err == nil {
		t.Error("a directory named .htaccess is not an error")
	}

	// Removing the file forgets it.
	delete(fsys, ".htaccess")
	if f, err := c.Get("."); f != nil || err != nil {
		t.Errorf("after removal: %v, %v", f, err)
	}
}

func TestCacheTooLarge(t *testing.T) {
	fsys := fstest.MapFS{
		".htaccess":   {Data: []byte(strings.Repeat("# padding\n", 200))},
		"a/.htaccess": {Data: []byte("Require all denied\n")},
	}
	c := &Cache{FS: fsys, MaxSize: 1000}
	if _, err := c.Get("."); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
	if f, err := c.Get("a"); f == nil || err != nil {
		t.Fatalf("a small file: %v, %v", f, err)
	}
	tree := &Tree{FS: fsys, Htaccess: c.Get}
	if got := tree.Resolve(&Request{Path: "/a/x"}); got.Status != 500 || !strings.Contains(got.Reason, "too large") {
		t.Errorf("a request under a file too large: %+v", got)
	}
}

func TestCacheEviction(t *testing.T) {
	fsys := fstest.MapFS{}
	dirs := []string{"a", "b", "c", "d", "e"}
	for _, d := range dirs {
		fsys[d+"/.htaccess"] = &fstest.MapFile{Data: []byte("Require all denied\n")}
	}
	c := &Cache{FS: fsys, MaxEntries: 2}
	for _, d := range dirs {
		if f, err := c.Get(d); f == nil || err != nil {
			t.Fatalf("Get(%s) = %v, %v", d, f, err)
		}
		if len(c.entries) > 2 {
			t.Fatalf("%d entries, the limit is 2", len(c.entries))
		}
	}
}

// A broken file answers 500 for its directory and below, as in Apache;
// an unreadable one, 403.
func TestTreeFileErrors(t *testing.T) {
	fsys := fstest.MapFS{
		"broken/.htaccess": {Data: []byte("RewriteRule ^ x [Frob]\n")},
		"broken/sub/x":     {Data: []byte("x")},
		"ok/x":             {Data: []byte("x")},
		"locked/x":         {Data: []byte("x")},
	}
	c := &Cache{FS: fsys}
	tree := &Tree{FS: fsys, Htaccess: func(dir string) (*File, error) {
		if dir == "locked" {
			return nil, &fs.PathError{Op: "open", Path: "locked/.htaccess", Err: fs.ErrPermission}
		}
		return c.Get(dir)
	}}
	checkResolve(t, tree, []rq{
		{path: "/broken/sub/x", status: 500, reason: "unknown flag"},
		{path: "/broken", status: 500},
		{path: "/ok/x", want: "/ok/x"},
		{path: "/locked/x", status: 403, reason: "permission denied"},
	})
}

// Many goroutines share a Cache and a Tree (run with -race).
func TestConcurrentUse(t *testing.T) {
	tree := site(t, map[string]string{
		".htaccess":        testdata(t, "wordpress.htaccess"),
		"index.php":        "",
		"a/.htaccess":      "Require all denied\n",
		"b/c/.htaccess":    "Order deny,allow\nDeny from all\nAllow from 10.1\n",
		"drupal/.htaccess": testdata(t, "drupal.htaccess"),
	})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				p := []string{"/post/" + string(rune('a'+g)), "/a/x", "/b/c/d", "/drupal/node/1", "/drupal/composer.json"}[i%5]
				got := tree.Resolve(&Request{Path: p})
				switch {
				case strings.HasPrefix(p, "/post/") && got.Path != "/index.php",
					strings.HasPrefix(p, "/a/") && got.Status != 403,
					p == "/drupal/node/1" && got.Path != "/drupal/index.php",
					p == "/drupal/composer.json" && got.Status != 403:
					t.Errorf("%s: %+v", p, got)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// With Revalidate, a directory is looked at again only once the interval
// has passed: a new file, a changed one and a removed one each apply
// after it, never before it is over and never later.
func TestCacheRevalidate(t *testing.T) {
	fsys := fstest.MapFS{"a/x": {Data: []byte("x")}}
	stats := 0
	c := &Cache{FS: statCounter{fsys, &stats}, Revalidate: 200 * time.Millisecond}
	get := func() *File {
		t.Helper()
		f, err := c.Get("a")
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	if get() != nil || stats != 1 {
		t.Fatalf("no file: got one, or %d stats, want 1", stats)
	}
	fsys["a/.htaccess"] = &fstest.MapFile{Data: []byte("Require all denied\n"), ModTime: time.Now()}
	if get() != nil || stats != 1 {
		t.Fatalf("within the interval: the new file was seen, or stat again (%d)", stats)
	}
	time.Sleep(250 * time.Millisecond)
	if get() == nil || stats != 2 {
		t.Fatalf("after the interval: the new file not seen (%d stats)", stats)
	}
	delete(fsys, "a/.htaccess")
	if get() == nil {
		t.Fatal("within the interval: the removal was seen")
	}
	time.Sleep(250 * time.Millisecond)
	if get() != nil {
		t.Fatal("after the interval: the removed file still applies")
	}
}

// statCounter counts the stats made through it.
type statCounter struct {
	fstest.MapFS
	n *int
}

func (s statCounter) Stat(name string) (fs.FileInfo, error) {
	*s.n++
	return s.MapFS.Stat(name)
}
