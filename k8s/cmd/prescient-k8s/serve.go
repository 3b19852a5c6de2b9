package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/prescient-sched/prescient/k8s/internal/podsig"
	"github.com/prescient-sched/prescient/k8s/internal/predictor"
	"github.com/prescient-sched/prescient/k8s/internal/webhook"
)

func runPredictor(ctx context.Context, args []string, log *slog.Logger) error {
	fs := flag.NewFlagSet("predictor", flag.ContinueOnError)
	listen := fs.String("listen", ":8080", "address to serve HTTP on")
	dir := fs.String("dir", "", "directory of the run store (a volume: a restart replays it)")
	step := fs.Duration("step", time.Second, "sampling step of the predictor; runs at other steps are resampled")
	maxRuns := fs.Int("max-runs", 8, "runs kept per signature")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	srv, err := predictor.Open(predictor.Config{Dir: *dir, Step: *step, MaxRuns: *maxRuns}, log)
	if err != nil {
		return err
	}
	defer srv.Close()
	hs := &http.Server{Addr: *listen, Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	return serve(ctx, hs, nil, log)
}

func runWebhook(ctx context.Context, args []string, log *slog.Logger) error {
	fs := flag.NewFlagSet("webhook", flag.ContinueOnError)
	listen := fs.String("listen", ":9443", "address to serve HTTPS on")
	certFile := fs.String("tls-cert", "", "serving certificate (PEM)")
	keyFile := fs.String("tls-key", "", "serving key (PEM)")
	predURL := fs.String("predictor", "http://prescient-predictor:8080", "predictor service URL")
	timeout := fs.Duration("timeout", 2*time.Second, "deadline of the predictor calls of one admission")
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig for owner lookups (Job → CronJob); empty: in-cluster")
	owners := fs.Bool("resolve-owners", true, "resolve a Job to its CronJob (and a ReplicaSet to its Deployment) for the signature")
	envDeny := fs.String("env-deny", "", "comma-separated variable-name patterns added to the default deny list")
	minCPU := fs.String("min-cpu", "10m", "smallest CPU request set")
	minMem := fs.String("min-memory", "16Mi", "smallest memory request set")
	headroom := fs.Float64("limit-headroom", 0.25, "fraction added to the predicted upper peak for limits")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if *certFile == "" || *keyFile == "" {
		return fmt.Errorf("--tls-cert and --tls-key are required: %w", errUsage)
	}
	cfg := podsig.Config{}
	if *envDeny != "" {
		cfg.EnvDenyExtra = strings.Split(*envDeny, ",")
	}
	signer, err := podsig.NewSigner(cfg)
	if err != nil {
		return err
	}
	mc, err := resource.ParseQuantity(*minCPU)
	if err != nil {
		return fmt.Errorf("--min-cpu: %w", err)
	}
	mm, err := resource.ParseQuantity(*minMem)
	if err != nil {
		return fmt.Errorf("--min-memory: %w", err)
	}
	wcfg := webhook.Config{
		Predictor: predictor.NewClient(*predURL, &http.Client{Timeout: *timeout}),
		Signer:    signer, Timeout: *timeout, MinCPU: mc, MinMemory: mm, LimitHeadroom: *headroom,
		Log: log,
	}
	if *owners {
		cs, err := clientset(*kubeconfig)
		if err != nil {
			return fmt.Errorf("owner lookups (disable with --resolve-owners=false): %w", err)
		}
		wcfg.Owners = webhook.NewKubeOwners(cs)
	}
	h, err := webhook.New(wcfg)
	if err != nil {
		return err
	}
	// Load the key pair on every handshake: a renewed Secret takes effect
	// without a restart.
	getCert := func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
		c, err := tls.LoadX509KeyPair(*certFile, *keyFile)
		if err != nil {
			return nil, fmt.Errorf("load serving certificate: %w", err)
		}
		return &c, nil
	}
	if _, err := getCert(nil); err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/mutate", h)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	hs := &http.Server{Addr: *listen, Handler: mux, ReadHeaderTimeout: 10 * time.Second,
		TLSConfig: &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: getCert}}
	return serve(ctx, hs, hs.TLSConfig, log)
}

func clientset(kubeconfig string) (kubernetes.Interface, error) {
	var cfg *rest.Config
	var err error
	if kubeconfig != "" {
		cfg, err = clientcmd.BuildConfigFromFlags("", kubeconfig)
	} else {
		cfg, err = rest.InClusterConfig()
	}
	if err != nil {
		return nil, err
	}
	cfg.Timeout = 5 * time.Second
	return kubernetes.NewForConfig(cfg)
}

// serve runs hs until ctx ends, then shuts it down gracefully.
func serve(ctx context.Context, hs *http.Server, tlsCfg *tls.Config, log *slog.Logger) error {
	ln, err := net.Listen("tcp", hs.Addr)
	if err != nil {
		return err
	}
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
	}
	log.Info("serving", "addr", ln.Addr().String(), "tls", tlsCfg != nil)
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = hs.Shutdown(sctx)
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	log.Info("stopped")
	return err
}
