// Package fcgi is a FastCGI client: it sends an HTTP request, as a CGI
// environment and a body, to a FastCGI application such as php-fpm, and
// streams the application's response back.
//
// The standard library's net/http/fcgi is the application side; this is
// the web server side of the same protocol (FastCGI 1.0, responder role),
// and it is shaped the same way: a typed record, one record.read, and a
// streamWriter that splits a stream into records.
//
// # One request, one connection
//
// A [Client] dials a connection for each request (its Dial function says
// where: a php-fpm pool's unix socket, say), sends the request without
// FCGI_KEEP_CONN, and closes the connection when the request ends. This
// is php-fpm's own model: it handles one request per connection at a
// time, and a closed connection is how a web server abandons a request.
// With no connection kept between requests, there is no stale connection
// to detect and no state a failed request can leave behind.
//
// [Client.Do] writes FCGI_BEGIN_REQUEST and the params in one write, then
// streams the body as FCGI_STDIN records from a goroutine of its own while
// it reads the response: a script may write its output before it reads
// its input. FCGI_STDOUT goes to the caller's writer as it arrives;
// FCGI_STDERR goes, a line at a time, to [Client.Stderr]; FCGI_END_REQUEST
// ends the request. Anything else from the server (another version, another
// request id, a record type a responder does not send, an END_REQUEST of
// the wrong size) ends it with an error that names what came. Every record
// is read into a fixed buffer that holds the largest one the format allows:
// a server cannot make the client allocate, and the response path does
// not allocate per record.
//
// The response is a CGI response (headers, a blank line, the body): the
// sibling package internal/cgiresp turns it into an HTTP response, and Do
// calls its Flush when it has nothing more at hand, so that what the
// script flushed reaches the client while the script works on.
//
// # Retrying
//
// A request may be retried only if the application cannot have seen it: a
// script that appended to a file and then died must not run twice. The
// error of Do wraps [ErrNotSent] exactly when not a byte of the request
// reached the server: the dial failed, or the first write wrote nothing
// (a server that closed its end before reading). Any later failure, even
// one before the first byte of the response, does not wrap it.
//
// # Cancellation
//
// The context given to Do bounds the request. When it ends, the connection
// is closed under the request and Do returns an error that wraps the
// context's error. php-fpm learns of it when the script next writes its
// output, and then ends the script, unless the script ignores user aborts.
package fcgi
