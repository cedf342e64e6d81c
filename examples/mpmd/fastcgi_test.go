package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestPHPModeConfig(t *testing.T) {
	const site = "\n[identity.a]\nuser = \"2001\"\ngroup = \"2001\"\n\n[[vhost]]\nserver_name = \"a.example\"\ndocument_root = \"/srv/a\"\nidentity = \"a\"\nphp = true\n"
	c, err := ParseConfig("f.toml", []byte(site))
	if err != nil {
		t.Fatal(err)
	}
	if v := c.VHosts[0]; v.PHPMode != "cgi" || v.PHPMaxRequests != defaultPHPMaxRequests {
		t.Errorf("defaults: php_mode %q php_max_requests %d", v.PHPMode, v.PHPMaxRequests)
	}
	if _, err := ParseConfig("f.toml", []byte(site+"php_mode = \"fastcgi\"\nphp_max_requests = 10\n")); err != nil {
		t.Errorf("fastcgi: %v", err)
	}
	for text, want := range map[string]string{
		"php_mode = \"fpm\"\n":    `f.toml:11: vhost "a.example": php_mode "fpm"`,
		"php_max_requests = -1\n": `f.toml:11: vhost "a.example": php_max_requests -1 is negative`,
	} {
		_, err := ParseConfig("f.toml", []byte(site+text))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want %q", text, err, want)
		}
	}
}

func TestEncodeParams(t *testing.T) {
	long := strings.Repeat("x", 200)
	b := encodeParams([]string{"A=b", "L=" + long})
	want := "\x01\x01Ab" + "\x01\x80\x00\x00\xc8L" + long
	if string(b) != want {
		t.Errorf("encodeParams = %q", b)
	}
}

func TestCGIResponse(t *testing.T) {
	for _, c := range []struct {
		chunks []string
		code   int
		hdr    string
		body   string
	}{
		{[]string{"Content-type: text/html\r\n\r\nhello"}, 200, "text/html", "hello"},
		{[]string{"Status: 404 Not Found\r\nContent-Ty", "pe: text/plain\r\n\r", "\nno", "pe"}, 404, "text/plain", "nope"},
		{[]string{"Location: http://x/\nContent-Type: text/plain\n\n"}, 302, "text/plain", ""},
	} {
		rec := httptest.NewRecorder()
		r := &cgiResponse{w: rec}
		for _, ch := range c.chunks {
			if err := r.write([]byte(ch)); err != nil {
				t.Fatal(err)
			}
		}
		r.finish()
		if rec.Code != c.code || rec.Header().Get("Content-Type") != c.hdr || rec.Body.String() != c.body {
			t.Errorf("%q: %d %q %q", c.chunks, rec.Code, rec.Header(), rec.Body)
		}
		if rec.Header().Get("Status") != "" {
			t.Errorf("Status header passed through")
		}
	}
	_ = http.StatusOK
}
