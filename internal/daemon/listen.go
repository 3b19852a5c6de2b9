package daemon

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"

	"github.com/prescient-sched/prescient/api"
	"github.com/prescient-sched/prescient/internal/web"
)

// --- listeners -------------------------------------------------------------

// listenUnix creates the socket with its final mode and owner before it
// appears under its name (listen on a temporary name, chmod, chown,
// rename), so no one can connect through a looser mode in between. A stale
// socket (nothing answers) is replaced; a live one is ErrSocketInUse.
func (d *Daemon) listenUnix() (net.Listener, error) {
	return listenUnixAt(d.cfg.Socket, d.cfg.SocketGroup)
}

// listenUnixAt is listenUnix for any path: mode 0600, or 0660 for group
// (a name or gid) when it is not empty.
func listenUnixAt(path, group string) (net.Listener, error) {
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("%s: %w", path, ErrSocketInUse)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	tmp := fmt.Sprintf("%s.%d.tmp", path, os.Getpid())
	_ = os.Remove(tmp)
	ln, err := net.Listen("unix", tmp)
	if err != nil {
		return nil, err
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	mode := os.FileMode(0o600)
	if group != "" {
		gid, err := lookupGroup(group)
		if err != nil {
			ln.Close()
			os.Remove(tmp)
			return nil, err
		}
		if err := os.Chown(tmp, -1, gid); err != nil {
			ln.Close()
			os.Remove(tmp)
			return nil, fmt.Errorf("socket group: %w", err)
		}
		mode = 0o660
	}
	if err := os.Chmod(tmp, mode); err != nil {
		ln.Close()
		os.Remove(tmp)
		return nil, err
	}
	if err := os.Rename(tmp, path); err != nil {
		ln.Close()
		os.Remove(tmp)
		return nil, err
	}
	return ln, nil
}

func lookupGroup(g string) (int, error) {
	if n, err := strconv.Atoi(g); err == nil {
		return n, nil
	}
	gr, err := user.LookupGroup(g)
	if err != nil {
		return 0, fmt.Errorf("socket group %q: %w", g, err)
	}
	return strconv.Atoi(gr.Gid)
}

// tcpAuth wraps h: a request needs "Authorization: Bearer <token>" equal
// (in constant time) to the token file's content — or, for reads by a
// browser on the dashboard, the cookie it got by opening a URL with
// ?token=<token> once (web.Gate); the caller is then the token file's
// owner. Anything else answers 401.
func tcpAuth(h http.Handler, token []byte, owner identity) http.Handler {
	return web.NewGate(token).Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), identityKey, owner)))
	}))
}

// readToken reads the token file, which must not be readable by group or
// others, and returns its content and owner.
func readToken(path string) ([]byte, identity, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, identity{}, fmt.Errorf("token file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, identity{}, err
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, identity{}, fmt.Errorf("token file %s is mode %v; it must not be accessible to group or others (chmod 600): %w", path, st.Mode().Perm(), ErrConfig)
	}
	b, err := io.ReadAll(io.LimitReader(f, 4096))
	if err != nil {
		return nil, identity{}, err
	}
	tok := []byte(strings.TrimSpace(string(b)))
	if len(tok) < 16 {
		return nil, identity{}, fmt.Errorf("token in %s is shorter than 16 characters: %w", path, ErrConfig)
	}
	var owner identity
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		owner = identity{UID: sys.Uid, GID: sys.Gid}
	}
	return tok, owner, nil
}

// isLoopback reports whether a listen address binds loopback only.
func isLoopback(addr string) bool {
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

// serve serves the API on the configured listeners until ctx is
// cancelled; it then stops the daemon's loops and shuts the servers down.
func (d *Daemon) serve(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	h := d.handler()
	var servers []*http.Server
	// fail ends a start cut short by a later listener's error: the loops
	// stop and the servers already serving close (the unix socket's
	// removed), so nothing keeps answering for a daemon that failed.
	fail := func(err error) error {
		d.stopLoops()
		for _, s := range servers {
			_ = s.Close()
		}
		_ = g.Wait()
		return err
	}
	// start serves handler on ln until shutdown; a unix socket's path
	// (rm) is removed when it stops.
	start := func(ln net.Listener, handler http.Handler, rm string, ctxOf func(context.Context, net.Conn) context.Context) {
		srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: d.cfg.IdleTimeout, ConnContext: ctxOf}
		servers = append(servers, srv)
		g.Go(func() error {
			if rm != "" {
				defer os.Remove(rm)
			}
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		})
	}
	if d.cfg.Socket != "" {
		ln, err := d.listenUnix()
		if err != nil {
			return fail(err)
		}
		ln = &peerListener{Listener: ln, d: d}
		start(ln, h, d.cfg.Socket, func(ctx context.Context, c net.Conn) context.Context {
			if pc, ok := c.(*peerConn); ok {
				return context.WithValue(ctx, identityKey, pc.who)
			}
			return ctx
		})
		d.log.Info("serving", "socket", d.cfg.Socket)
	}
	if d.cfg.Listen != "" {
		tok, owner, err := readToken(d.cfg.TokenFile)
		if err != nil {
			return fail(err)
		}
		tlsOn := d.cfg.TLSCert != ""
		if !tlsOn && !isLoopback(d.cfg.Listen) {
			return fail(fmt.Errorf("--listen %s is not a loopback address: it needs --tls-cert and --tls-key: %w", d.cfg.Listen, ErrConfig))
		}
		ln, err := net.Listen("tcp", d.cfg.Listen)
		if err != nil {
			return fail(err)
		}
		if tlsOn {
			cert, err := tls.LoadX509KeyPair(d.cfg.TLSCert, d.cfg.TLSKey)
			if err != nil {
				ln.Close()
				return fail(fmt.Errorf("tls: %w", err))
			}
			ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
		}
		start(ln, tcpAuth(h, tok, owner), "", nil)
		d.log.Info("serving", "tcp", ln.Addr().String(), "tls", tlsOn)
	}
	if d.cfg.MetricsListen != "" {
		ln, err := net.Listen("tcp", d.cfg.MetricsListen)
		if err != nil {
			return fail(fmt.Errorf("--metrics-listen: %w", err))
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", promhttp.HandlerFor(d.cfg.Gatherer, promhttp.HandlerOpts{}))
		start(ln, mux, "", nil)
		d.log.Info("serving metrics", "tcp", ln.Addr().String())
	}
	if d.cfg.DebugSocket != "" {
		// The Go runtime's profiles, for the daemon's own user only (the
		// socket is 0600): heap, goroutines, CPU — what an operator needs
		// to say where the daemon's memory or time goes. Never on TCP.
		ln, err := listenUnixAt(d.cfg.DebugSocket, "")
		if err != nil {
			return fail(fmt.Errorf("--debug-socket: %w", err))
		}
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		start(ln, mux, d.cfg.DebugSocket, nil)
		d.log.Info("serving debug profiles", "socket", d.cfg.DebugSocket)
	}
	g.Go(func() error {
		<-gctx.Done()
		d.stopLoops() // ends event streams and the loops
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for _, s := range servers {
			_ = s.Shutdown(sctx)
		}
		return nil
	})
	return g.Wait()
}

// peerListener accepts unix socket connections, each with its caller's
// identity (SO_PEERCRED), and bounds the connections one user may hold
// open at once (Config.MaxConnsPerUser; root is not bounded). A connection
// over the bound is answered at once with 429 and closed, so one user's
// idle or slow connections cannot take the file descriptors every other
// user needs.
type peerListener struct {
	net.Listener
	d *Daemon
}

func (l *peerListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		who, err := peerIdentity(c)
		if err != nil {
			l.d.log.Warn("peer credentials", "err", err)
			c.Close()
			continue
		}
		if !l.d.takeConn(who) {
			l.d.m.connsRefused.Inc()
			refuse(c, fmt.Sprintf("uid %d holds %d connections, the most one user may (limit max_conns_per_user)", who.UID, l.d.cfg.MaxConnsPerUser))
			continue
		}
		return &peerConn{Conn: c, who: who, d: l.d}, nil
	}
}

// refuse answers 429 on c and closes it, without waiting on the client.
func refuse(c net.Conn, msg string) {
	body := fmt.Sprintf(`{"code":%q,"error":%q,"limit":"max_conns_per_user"}`+"\n", api.CodeLimitExceeded, msg)
	_ = c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	_, _ = fmt.Fprintf(c, "HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	_ = c.Close()
}

// peerConn is an accepted connection with its caller's identity; closing
// it gives its slot back.
type peerConn struct {
	net.Conn
	who  identity
	d    *Daemon
	once sync.Once
}

func (c *peerConn) Close() error {
	c.once.Do(func() { c.d.dropConn(c.who) })
	return c.Conn.Close()
}

// takeConn counts a new connection of who's, if the bound allows it.
func (d *Daemon) takeConn(who identity) bool {
	d.cmu.Lock()
	defer d.cmu.Unlock()
	if !who.root() && d.cfg.MaxConnsPerUser > 0 && d.conns[who.UID] >= d.cfg.MaxConnsPerUser {
		return false
	}
	d.conns[who.UID]++
	return true
}

func (d *Daemon) dropConn(who identity) {
	d.cmu.Lock()
	defer d.cmu.Unlock()
	if d.conns[who.UID]--; d.conns[who.UID] <= 0 {
		delete(d.conns, who.UID)
	}
}
