package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/prescient-sched/prescient/internal/web"
)

func newDashboardCmd(g *globals) *cobra.Command {
	var (
		addr   string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "dashboard",
		Short: "Open the web dashboard on a loopback port, behind a token made for this run",
		Long: `Dashboard serves the daemon's web dashboard (node, queue, tasks, a task's predicted band,
allocations and use, signatures; live over the daemon's events) on a loopback port and
prints its URL, which carries a token made for this run, as Jupyter does. Opening the URL
once gives the browser a cookie (HttpOnly, SameSite=Strict) for the rest of the run;
without the token or the cookie every URL answers 401. It relays only reads (GET) to the
daemon's socket, as you: the dashboard shows what the API shows you — your own tasks, or
all of them for root. It serves until Ctrl-C.

For a browser on another machine, forward the port (ssh -L 7071:127.0.0.1:7071 host) or
use serve --listen with TLS, where the token file guards the dashboard (open
https://host:port/dashboard/?token=TOKEN once).`,
		Example: "  prescient dashboard\n  prescient dashboard --addr 127.0.0.1:7071\n  ssh -L 7071:127.0.0.1:7071 build-host prescient dashboard --addr 127.0.0.1:7071",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !loopbackAddr(addr) {
				return usageError{fmt.Errorf("--addr %s is not a loopback address: the dashboard is served on loopback only (forward the port to reach it from elsewhere)", addr)}
			}
			c, sock, err := g.dial(cmd.Context())
			if err != nil {
				return err
			}
			c.Close()
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return err
			}
			token := web.NewToken()
			url := fmt.Sprintf("http://%s/dashboard/?token=%s", ln.Addr(), token)
			srv := &http.Server{Handler: web.NewGate([]byte(token)).Wrap(readOnly(socketProxy(sock))),
				ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
			if asJSON {
				if err := writeJSON(g.stdout, map[string]string{"url": url, "addr": ln.Addr().String(), "socket": sock}); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(g.stdout, "Prescient dashboard (daemon on %s), until Ctrl-C:\n\n    %s\n\n", sock, url)
			}
			if f, ok := g.stdout.(*os.File); ok {
				_ = f.Sync()
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			done := make(chan error, 1)
			go func() { done <- srv.Serve(ln) }()
			select {
			case err := <-done:
				return err
			case <-ctx.Done():
			}
			sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_ = srv.Shutdown(sctx) // event streams end with the daemon's connection
			if err := <-done; !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:0", "loopback address to serve on (port 0: any free port)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the URL as JSON ({\"url\", \"addr\", \"socket\"})")
	return cmd
}

// loopbackAddr reports whether a listen address binds loopback only.
func loopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// readOnly lets only GET and HEAD through: the dashboard never changes
// anything, so neither can a page that reaches its port.
func readOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "the dashboard is read-only", http.StatusMethodNotAllowed)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// socketProxy relays requests to the daemon's unix socket, as this
// process's user (the daemon reads it from the socket's peer
// credentials). The browser's cookie and token stay here.
func socketProxy(sock string) http.Handler {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
		MaxIdleConns: 8, IdleConnTimeout: 30 * time.Second,
	}
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme, pr.Out.URL.Host, pr.Out.Host = "http", "prescient", "prescient"
			pr.Out.Header.Del("Cookie")
			pr.Out.Header.Del("Authorization")
		},
		Transport:     tr,
		FlushInterval: -1, // the event stream goes through as it comes
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if errors.Is(err, context.Canceled) {
				return // the browser went away (a page left, a stream closed)
			}
			http.Error(w, "prescient dashboard: the daemon: "+err.Error(), http.StatusBadGateway)
		},
	}
}
