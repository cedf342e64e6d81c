package main

// The Prometheus text exposition format (version 0.0.4), written by hand:
// a few dozen lines that a reviewer reads at once, instead of a client
// library whose registry, collectors and goroutines would live in the
// root master (or in the status process, which only renders the numbers
// the master sends it). The format is lines of
//
//	# HELP name text
//	# TYPE name counter|gauge
//	name{label="value",...} number
//
// with backslash, double quote and line feed escaped in label values,
// and backslash and line feed in help text.

import (
	"bufio"
	"io"
	"math"
	"strconv"
	"strings"
)

// promContentType is what a scraper is told it gets.
const promContentType = "text/plain; version=0.0.4; charset=utf-8"

// promWriter writes metric families; the first write error sticks and
// later writes do nothing.
type promWriter struct {
	w   *bufio.Writer
	err error
}

func newPromWriter(w io.Writer) *promWriter { return &promWriter{w: bufio.NewWriter(w)} }

// family starts a metric family: its HELP and TYPE lines. Every sample of
// it follows before the next family (the format wants them together).
func (p *promWriter) family(name, typ, help string) {
	p.printf("# HELP ", name, " ", promHelpEscaper.Replace(help), "\n# TYPE ", name, " ", typ, "\n")
}

// sample writes one sample; labels are name, value pairs.
func (p *promWriter) sample(name string, v float64, labels ...string) {
	var b strings.Builder
	b.WriteString(name)
	if len(labels) > 0 {
		b.WriteByte('{')
		for i := 0; i+1 < len(labels); i += 2 {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(labels[i])
			b.WriteString(`="`)
			b.WriteString(promLabelEscaper.Replace(labels[i+1]))
			b.WriteByte('"')
		}
		b.WriteByte('}')
	}
	b.WriteByte(' ')
	b.WriteString(promFloat(v))
	b.WriteByte('\n')
	p.printf(b.String())
}

func (p *promWriter) printf(parts ...string) {
	for _, s := range parts {
		if p.err != nil {
			return
		}
		_, p.err = p.w.WriteString(s)
	}
}

// flush writes out what is buffered and returns the first error.
func (p *promWriter) flush() error {
	if p.err != nil {
		return p.err
	}
	return p.w.Flush()
}

var (
	promLabelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	promHelpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
)

// promFloat formats v as the format wants: Go's shortest form, and the
// spellings of the special values that Prometheus parses.
func promFloat(v float64) string {
	switch {
	case math.IsNaN(v):
		return "NaN"
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}
