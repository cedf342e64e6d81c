package htaccess_test

import (
	"fmt"
	"testing/fstest"

	"github.com/gompm/mpm/internal/htaccess"
)

// A WordPress site with a directory that its own .htaccess closes. The
// worker would open the document root as the site's user (os.Root.FS);
// an in-memory one stands in for it here.
func ExampleTree_Resolve() {
	root := fstest.MapFS{
		".htaccess": {Data: []byte(`# BEGIN WordPress
RewriteEngine On
RewriteBase /
RewriteRule ^index\.php$ - [L]
RewriteCond %{REQUEST_FILENAME} !-f
RewriteCond %{REQUEST_FILENAME} !-d
RewriteRule . /index.php [L]
# END WordPress
Options -Indexes
`)},
		"index.php":                    {Data: []byte("<?php require 'wp-blog-header.php';")},
		"wp-content/themes/a.css":      {Data: []byte("body {}")},
		"wp-content/backups/.htaccess": {Data: []byte("<IfModule mod_authz_core.c>\n  Require all denied\n</IfModule>\n")},
		"wp-content/backups/db.sql":    {Data: []byte("INSERT INTO wp_users ...")},
	}
	files := &htaccess.Cache{FS: root, Parsed: func(name string, f *htaccess.File, err error) {
		// The daemon logs this once per change of the file.
		if err != nil {
			fmt.Println(err)
			return
		}
		for _, d := range f.NotApplied {
			fmt.Printf("%s: %v\n", name, d)
		}
	}}
	tree := &htaccess.Tree{FS: root, Htaccess: files.Get}

	for _, path := range []string{"/2024/05/hello-world/", "/wp-content/themes/a.css", "/wp-content/backups/db.sql"} {
		res := tree.Resolve(&htaccess.Request{Method: "GET", Path: path, Query: "utm=x"})
		if res.Status != 0 {
			fmt.Printf("%s: %d (%s)\n", path, res.Status, res.Reason)
			continue
		}
		fmt.Printf("%s: serve %s?%s\n", path, res.Path, res.Query)
	}
	// Output:
	// .htaccess: line 9: Options -Indexes (mpmd never lists directories, has no MultiViews, SSI or CGI scripts, and follows symbolic links out of the document root only when the vhost sets follow_symlinks)
	// /2024/05/hello-world/: serve /index.php?utm=x
	// /wp-content/themes/a.css: serve /wp-content/themes/a.css?utm=x
	// /wp-content/backups/db.sql: 403 (denied by wp-content/backups/.htaccess:2: Require all denied)
}

// Parse reports what a file asks for that mpmd does not do.
func ExampleParse() {
	f, err := htaccess.Parse("/home/alice/www/.htaccess", []byte(`php_value upload_max_filesize 64M
<Files wp-config.php>
  Require all denied
</Files>
AuthType Basic
AuthUserFile /home/alice/.htpasswd
Require valid-user
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, d := range f.NotApplied {
		fmt.Printf("line %d: %s\n", d.Line, d.Text)
	}
	_, err = htaccess.Parse("/home/alice/www/.htaccess", []byte("<IfModule mod_rewrite.c>\nRewriteEngine On\n"))
	fmt.Println(err)
	// Output:
	// line 1: php_value upload_max_filesize 64M
	// line 5: AuthType Basic
	// line 6: AuthUserFile /home/alice/.htpasswd
	// line 7: Require valid-user
	// /home/alice/www/.htaccess:1: <IfModule> is not closed
}
