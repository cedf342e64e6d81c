package landlock_test

import (
	"log"

	"github.com/gompm/mpm/internal/landlock"
)

// A site's worker, after its privilege drop and before it serves
// anything, confines itself and the PHP it will run to the system's
// programs and libraries, the site's document root, and the site's own
// writable directories. (No output: running it would confine the
// process that runs it, for good.)
func Example() {
	rs := landlock.DefaultSystemPaths()
	rs.ReadOnly = append(rs.ReadOnly, "/srv/alice/www")
	rs.ReadWrite = append(rs.ReadWrite, "/srv/alice/tmp", "/srv/alice/sessions", "/srv/alice/www/wp-content/uploads")
	st, err := rs.Restrict()
	if err != nil {
		log.Fatalf("landlock: %v", err) // serve nothing unconfined
	}
	log.Print(st) // the ABI, what is enforced, the paths skipped
}
