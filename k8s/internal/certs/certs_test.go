package certs

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"
)

// A server certificate issued by a CA is trusted by a client that trusts
// the CA, for the names it was issued to, after a round trip through files.
func TestServeWithIssuedCert(t *testing.T) {
	dir := t.TempDir()
	ca, err := NewCA("test-ca", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ca.Issue(Request{CommonName: "webhook", DNSNames: []string{"webhook.ns.svc"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, Server: true, Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.Write(filepath.Join(dir, "ca")); err != nil {
		t.Fatal(err)
	}
	if err := srv.Write(filepath.Join(dir, "tls")); err != nil {
		t.Fatal(err)
	}
	ca2, err := Load(filepath.Join(dir, "ca"))
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"))
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }))
	hs.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
	hs.StartTLS()
	defer hs.Close()

	pool := x509.NewCertPool()
	pool.AddCert(ca2.Cert)
	for _, name := range []string{"webhook.ns.svc", ""} { // "" = by IP
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: name}}}
		resp, err := c.Get(hs.URL)
		if err != nil {
			t.Fatalf("server name %q: %v", name, err)
		}
		resp.Body.Close()
		c.CloseIdleConnections()
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "other.svc"}}}
	if _, err := c.Get(hs.URL); err == nil {
		t.Fatal("a name the certificate does not hold was accepted")
	}
	c.CloseIdleConnections()
}

func TestIssueRejects(t *testing.T) {
	ca, err := NewCA("ca", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []Request{
		{CommonName: "", Server: true, Validity: time.Hour},
		{CommonName: "x", Validity: time.Hour},
		{CommonName: "x", Client: true},
	} {
		if _, err := ca.Issue(r); !errors.Is(err, ErrCert) {
			t.Errorf("%+v: err %v, want ErrCert", r, err)
		}
	}
}
