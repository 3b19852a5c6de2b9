package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/prescient-sched/prescient/internal/store"
	"github.com/prescient-sched/prescient/k8s/internal/agent"
	"github.com/prescient-sched/prescient/k8s/internal/predictor"
	"github.com/prescient-sched/prescient/k8s/internal/webhook"
)

func runAgent(ctx context.Context, args []string, log *slog.Logger) error {
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	node := fs.String("node", os.Getenv("NODE_NAME"), "this node's name (default $NODE_NAME)")
	predURL := fs.String("predictor", "http://prescient-predictor:8080", "predictor service URL")
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig; empty: in-cluster")
	mount := fs.String("cgroup-mount", "/sys/fs/cgroup", "where the host's cgroups are mounted")
	root := fs.String("cgroup-root", "", "the kubelet's cgroupRoot (empty: searched for)")
	dir := fs.String("dir", "", "directory of the embedded TSDB of samples (empty: none kept)")
	step := fs.Duration("step", time.Second, "sampling step (the predictor's)")
	resize := fs.Bool("resize", true, "raise a container's memory limit in place before it runs out")
	resizeAt := fs.Float64("resize-at", 0.8, "share of the memory limit the working set reaches before the limit is raised")
	grow := fs.Float64("grow", 1.5, "factor of a raised limit over the larger of the old limit and the working set")
	envDeny := fs.String("env-deny", "", "comma-separated variable-name patterns added to the signature's deny list (as the webhook's)")
	listen := fs.String("listen", "", "address to serve /healthz and /stats on (empty: none)")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	cs, err := clientset(*kubeconfig)
	if err != nil {
		return fmt.Errorf("api client: %w", err)
	}
	cfg := agent.Config{
		Node: *node, CgroupMount: *mount, CgroupRoot: *root, Step: *step,
		Recorder: predictor.NewClient(*predURL, &http.Client{Timeout: 10 * time.Second}),
		Owners:   webhook.NewKubeOwners(cs), ResizeAt: *resizeAt, Grow: *grow, Log: log,
	}
	if *envDeny != "" {
		cfg.EnvDeny = strings.Split(*envDeny, ",")
	}
	if *resize {
		cfg.Resizer = agent.NewKubeResizer(cs)
	}
	if *dir != "" {
		ss, err := store.OpenSamples(store.SamplesConfig{Dir: *dir, Retention: 7 * 24 * time.Hour, Logger: log})
		if err != nil {
			return err
		}
		defer ss.Close()
		cfg.Samples = ss
	}
	a, err := agent.New(cfg)
	if err != nil {
		return err
	}
	defer a.Close()
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return a.Run(gctx, cs) })
	if *listen != "" {
		mux := http.NewServeMux()
		mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
		mux.HandleFunc("GET /stats", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(a.Stats())
		})
		hs := &http.Server{Addr: *listen, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		g.Go(func() error { return serve(gctx, hs, nil, log) })
	}
	return g.Wait()
}
