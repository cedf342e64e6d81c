// Command plainhttp is the baseline for bench/extra.sh's dispatch
// overhead figure: a plain net/http server serving a directory with
// http.FileServer, nothing else, so that mpmd's worker serving the same
// static file through its multiplexer can be compared with it.
package main

import (
	"flag"
	"log"
	"net/http"
)

func main() {
	addr := flag.String("listen", "127.0.0.1:8102", "address to listen on")
	root := flag.String("root", ".", "directory to serve")
	flag.Parse()
	log.Fatal(http.ListenAndServe(*addr, http.FileServer(http.Dir(*root))))
}
